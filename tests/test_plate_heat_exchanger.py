"""PlateHeatExchanger: epsilon-NTU oracles (balanced clean and fouled, general Cr < 1), UA against the flows,
hold-up response, step-size independence, 24 h energy balance, zero flow."""
import math

import numpy as np
import pytest

from twin.fmu_reference import simulate_table
from twin.water import fit

T_ATOL_K = 1e-6          # outlet temperatures against the analytic solution
EPS_ATOL = 1e-9          # effectiveness against the textbook formula
Q_RTOL = 1e-9            # heat duty against the analytic solution
UA_RTOL = 1e-12          # UA is a closed formula in the flows and the fouling
BALANCE_RTOL = 1e-9      # energy balance residual relative to the heat transferred
STEP_ATOL_K = 1e-9       # 1 s and 60 s steps on the same piecewise-constant inputs

WATER = fit()
MODEL = "PlateHeatExchanger"


def cp_mean(T_a, T_b):
    """The README's capacity-rate cp: (h(a) - h(b)) / (a - b), from twin.water's CoolProp fit."""
    if abs(T_a - T_b) < 1e-3:
        return float(WATER.cp_J_kgK(0.5 * (T_a + T_b)))
    return float((WATER.h_J_kg(T_a) - WATER.h_J_kg(T_b)) / (T_a - T_b))


def eps_textbook(ntu, cr):
    """Counterflow effectiveness as printed in Incropera (Table 11.3)."""
    if cr == 1.0:
        return ntu / (1.0 + ntu)
    e = math.exp(-ntu * (1.0 - cr))
    return (1.0 - e) / (1.0 - cr * e)


def counterflow(T_hi, mdot_h, T_ci, mdot_c, UA):
    """Textbook epsilon-NTU with each side's mean cp over its own temperature change (fixed point)."""
    T_ho, T_co = T_hi, T_ci
    for _ in range(100):
        C_h, C_c = mdot_h * cp_mean(T_hi, T_ho), mdot_c * cp_mean(T_ci, T_co)
        C_min, C_max = min(C_h, C_c), max(C_h, C_c)
        eps = eps_textbook(UA / C_min, C_min / C_max)
        Q = eps * C_min * (T_hi - T_ci)
        T_ho, T_co = T_hi - Q / C_h, T_ci + Q / C_c
    return {"Q_W": Q, "epsilon": eps, "NTU": UA / C_min, "T_hot_out_K": T_ho, "T_cold_out_K": T_co}


def ua_formula(UA_nom, f_hot, n, mdot_h, mdot_h_nom, mdot_c, mdot_c_nom, R_f, A):
    R = 1.0 / UA_nom
    return 1.0 / (f_hot * R * (mdot_h_nom / mdot_h) ** n + (1 - f_hot) * R * (mdot_c_nom / mdot_c) ** n + R_f / A)


NO_HOLDUP = {"m_hold_hot_kg": 0.0, "m_hold_cold_kg": 0.0}   # the plate pack alone (the default has 20 kg per side)


def run(fmu_path, t, u, parameters=None):
    n = len(t)
    return simulate_table(fmu_path(MODEL), t, {k: np.broadcast_to(np.asarray(v, float), (n,)).copy() for k, v in u.items()},
                          parameters=NO_HOLDUP | dict(parameters or {}))


# Balanced exchanger of the oracle: C_hot = C_cold = C = 50 kW/K * 3/7 = 21.43 kW/K, inlets 45 C / 35 C,
# clean UA 50 kW/K on A = 10 m2, so NTU = 7/3 and Q_max = C * 10 K = 214.3 kW.
#   clean:  epsilon = (7/3)/(10/3) = 0.700, Q = 150.0 kW
#   fouled (R_f = 1e-4 m2K/W): 1/UA = 1/50 kW/K + 1e-4/10 -> UA = 33.33 kW/K, NTU = 14/9,
#           epsilon = 14/23 = 0.6087, Q = 130.4 kW
# The mass flows that give C exactly are C / cp_mean over each side's temperature change: about
# 5.1274 kg/s hot and 5.1278 kg/s cold (clean); 5.1274 / 5.1279 kg/s (fouled, a little wider cp span).
T_HOT_IN, T_COLD_IN, C_BAL, UA_CLEAN, AREA = 318.15, 308.15, 50e3 * 3 / 7, 50e3, 10.0


@pytest.mark.parametrize("R_f, UA, ntu, eps, Q, brief", [
    (0.0, 50e3, 7 / 3, 0.7, 150e3, (50.0, 0.700, 150.0)),
    (1e-4, 1e5 / 3, 14 / 9, 14 / 23, 14 / 23 * 50e3 * 3 / 7 * 10, (33.33, 0.6087, 130.4)),
], ids=["clean", "fouled"])
def test_balanced_oracle_clean_and_fouled(fmu_path, R_f, UA, ntu, eps, Q, brief):
    dT = eps * (T_HOT_IN - T_COLD_IN)
    mdot_h = C_BAL / cp_mean(T_HOT_IN, T_HOT_IN - dT)
    mdot_c = C_BAL / cp_mean(T_COLD_IN + dT, T_COLD_IN)
    assert 5.12 < mdot_h < 5.13 and 5.12 < mdot_c < 5.13
    out = run(fmu_path, np.array([0.0, 60.0]),
              {"T_hot_in_K": T_HOT_IN, "mdot_hot_kg_s": mdot_h, "T_cold_in_K": T_COLD_IN, "mdot_cold_kg_s": mdot_c,
               "R_f_m2K_W": R_f},
              parameters={"UA_nom_W_K": UA_CLEAN, "A_m2": AREA, "mdot_hot_nom_kg_s": mdot_h,
                          "mdot_cold_nom_kg_s": mdot_c}).iloc[-1]
    assert out["UA_W_K"] == pytest.approx(UA, rel=UA_RTOL)
    assert out["NTU"] == pytest.approx(ntu, rel=1e-9)
    assert out["epsilon"] == pytest.approx(eps, abs=EPS_ATOL)
    assert out["Q_W"] == pytest.approx(Q, rel=Q_RTOL)
    assert out["T_hot_out_K"] == pytest.approx(T_HOT_IN - dT, abs=T_ATOL_K)
    assert out["T_cold_out_K"] == pytest.approx(T_COLD_IN + dT, abs=T_ATOL_K)
    # the figures as the issue states them
    UA_kW, eps_r, Q_kW = brief
    assert round(out["UA_W_K"] / 1e3, 2) == UA_kW
    assert round(out["epsilon"], 4 if R_f else 3) == eps_r
    assert round(out["Q_W"] / 1e3, 1) == Q_kW


@pytest.mark.parametrize("mdot_h, mdot_c, T_hi, T_ci, R_f", [
    (3.0, 6.5, 333.15, 303.15, 2e-4),      # hot side C_min, Cr ~ 0.46, flows off nominal on both sides
    (8.0, 2.5, 323.15, 288.15, 0.0),       # cold side C_min
    (4.0, 4.0 * (1 + 1e-6), 318.15, 308.15, 5e-5),   # nearly balanced: Cr within 1e-6 of 1
], ids=["hot-Cmin", "cold-Cmin", "nearly-balanced"])
def test_general_case_matches_textbook(fmu_path, mdot_h, mdot_c, T_hi, T_ci, R_f):
    p = {"UA_nom_W_K": 40e3, "A_m2": 12.0, "mdot_hot_nom_kg_s": 5.0, "mdot_cold_nom_kg_s": 5.0, "n_flow": 0.8,
         "f_R_hot": 0.4}
    out = run(fmu_path, np.array([0.0, 60.0]),
              {"T_hot_in_K": T_hi, "mdot_hot_kg_s": mdot_h, "T_cold_in_K": T_ci, "mdot_cold_kg_s": mdot_c,
               "R_f_m2K_W": R_f}, parameters=p).iloc[-1]
    UA = ua_formula(40e3, 0.4, 0.8, mdot_h, 5.0, mdot_c, 5.0, R_f, 12.0)
    ref = counterflow(T_hi, mdot_h, T_ci, mdot_c, UA)
    assert out["UA_W_K"] == pytest.approx(UA, rel=UA_RTOL)
    assert out["epsilon"] == pytest.approx(ref["epsilon"], abs=EPS_ATOL)
    assert out["Q_W"] == pytest.approx(ref["Q_W"], rel=Q_RTOL)
    assert out["T_hot_out_K"] == pytest.approx(ref["T_hot_out_K"], abs=T_ATOL_K)
    assert out["T_cold_out_K"] == pytest.approx(ref["T_cold_out_K"], abs=T_ATOL_K)


def test_ua_scales_with_flow_to_the_power_n(fmu_path):
    """Equal film resistances (1e-5 K/W each) at 5 kg/s; hA ~ mdot^0.8; fouling adds R_f / A."""
    t = np.arange(0.0, 241.0, 60.0)   # the output at row k + 1 is the step with the inputs of row k
    out = run(fmu_path, t, {"T_hot_in_K": 318.15, "mdot_hot_kg_s": [5.0, 2.5, 2.5, 2.5, 2.5],
                            "T_cold_in_K": 308.15, "mdot_cold_kg_s": [5.0, 2.5, 5.0, 5.0, 5.0],
                            "R_f_m2K_W": [0.0, 0.0, 0.0, 1e-4, 1e-4]})
    UA = out["UA_W_K"].to_numpy()
    assert UA[1] == pytest.approx(50e3, rel=UA_RTOL)
    assert UA[2] == pytest.approx(50e3 / 2 ** 0.8, rel=UA_RTOL)
    assert UA[3] == pytest.approx(1 / (1e-5 * 2 ** 0.8 + 1e-5), rel=UA_RTOL)
    assert UA[4] == pytest.approx(1 / (1e-5 * 2 ** 0.8 + 1e-5 + 1e-4 / 10.0), rel=UA_RTOL)


@pytest.mark.parametrize("h_s", [1.0, 60.0])
def test_holdup_outlet_follows_the_exact_exponential(fmu_path, h_s):
    """A well-mixed outlet volume of m kg: h_out(t) = h_core + (h_start - h_core) exp(-mdot t / m)."""
    m_h, m_c, mdot_h, mdot_c = 40.0, 25.0, 3.0, 6.0
    t = np.arange(0.0, 601.0, h_s)
    out = run(fmu_path, t, {"T_hot_in_K": 333.15, "mdot_hot_kg_s": mdot_h, "T_cold_in_K": 303.15,
                            "mdot_cold_kg_s": mdot_c, "R_f_m2K_W": 0.0},
              parameters={"m_hold_hot_kg": m_h, "m_hold_cold_kg": m_c, "T_start_hot_K": 313.15,
                          "T_start_cold_K": 313.15})
    core = counterflow(333.15, mdot_h, 303.15, mdot_c, ua_formula(50e3, 0.5, 0.8, mdot_h, 5.0, mdot_c, 5.0, 0.0, 10.0))
    for side, m, mdot in (("hot", m_h, mdot_h), ("cold", m_c, mdot_c)):
        h_core = WATER.h_J_kg(core[f"T_{side}_out_K"])
        h_expected = h_core + (WATER.h_J_kg(313.15) - h_core) * np.exp(-mdot * t / m)
        h_model = WATER.h_J_kg(out[f"T_{side}_out_K"].to_numpy())
        assert np.max(np.abs(h_model - h_expected)) / WATER.cp_J_kgK(313.15) < T_ATOL_K
        # monotone approach, no overshoot of the core outlet
        dT = np.diff(out[f"T_{side}_out_K"].to_numpy())
        assert np.all(dT * np.sign(core[f"T_{side}_out_K"] - 313.15) >= 0.0)


def _random_inputs(t, seed, zero_share=0.05):
    rng = np.random.default_rng(seed)
    n = t.size
    mdot_h = np.where(rng.uniform(size=n) < zero_share, 0.0, rng.uniform(1.0, 8.0, n))
    mdot_c = np.where(rng.uniform(size=n) < zero_share, 0.0, rng.uniform(1.0, 8.0, n))
    return {"T_hot_in_K": 318.15 + 6 * np.sin(t / 5400) + rng.uniform(-1, 1, n),
            "mdot_hot_kg_s": mdot_h,
            "T_cold_in_K": 306.15 + 4 * np.cos(t / 9000) + rng.uniform(-1, 1, n),
            "mdot_cold_kg_s": mdot_c,
            "R_f_m2K_W": 2e-4 * t / t[-1]}      # fouling builds up over the day


HOLDUP = {"m_hold_hot_kg": 35.0, "m_hold_cold_kg": 20.0, "T_start_hot_K": 320.15, "T_start_cold_K": 300.15}


def test_step_sizes_1s_and_60s_agree(fmu_path):
    """Inputs held for 60 s: the exact updates give the same trajectory at 1 s and 60 s steps."""
    t60 = np.arange(0.0, 6 * 3600 + 1, 60.0)
    u60 = _random_inputs(t60, seed=3, zero_share=0.1)
    t1 = np.arange(0.0, t60[-1] + 1, 1.0)
    k = np.minimum((t1 // 60).astype(int), t60.size - 1)
    u1 = {n: v[k] for n, v in u60.items()}
    a = run(fmu_path, t60, u60, HOLDUP)
    b = run(fmu_path, t1, u1, HOLDUP).iloc[::60].reset_index(drop=True)
    for col in ("T_hot_out_K", "T_cold_out_K"):
        assert np.max(np.abs(a[col] - b[col])) < STEP_ATOL_K, col
    for col in ("E_J", "E_hot_out_J", "E_cold_out_J", "E_stored_hot_J", "E_stored_cold_J"):
        assert np.max(np.abs(a[col] - b[col])) <= BALANCE_RTOL * a["E_J"].abs().max(), col
    assert np.all(np.isfinite(b.to_numpy()))


@pytest.mark.parametrize("holdup", [False, True], ids=["no-holdup", "holdup"])
def test_energy_balance_24h_varying_inputs(fmu_path, holdup):
    t = np.arange(0.0, 86401.0, 60.0)
    u = _random_inputs(t, seed=1)
    out = run(fmu_path, t, u, HOLDUP if holdup else None)
    end = out.iloc[-1]
    E = end["E_J"]
    assert E > 1e9                                            # a day of real duty, so the checks mean something
    hot = end["E_hot_in_J"] - end["E_hot_out_J"] - end["E_stored_hot_J"]
    cold = end["E_cold_out_J"] - end["E_cold_in_J"] + end["E_stored_cold_J"]
    total = (end["E_hot_in_J"] + end["E_cold_in_J"]) - (end["E_hot_out_J"] + end["E_cold_out_J"]
                                                       + end["E_stored_hot_J"] + end["E_stored_cold_J"])
    assert hot == pytest.approx(E, rel=BALANCE_RTOL)
    assert cold == pytest.approx(E, rel=BALANCE_RTOL)
    assert abs(total) <= BALANCE_RTOL * E
    # E_J is the integral of the (step-constant) duty
    assert E == pytest.approx(np.sum(out["Q_W"].to_numpy()[1:] * np.diff(t)), rel=1e-12)
    if holdup:
        assert abs(end["E_stored_hot_J"]) > 0.0 and abs(end["E_stored_cold_J"]) > 0.0


@pytest.mark.parametrize("h_s", [1.0, 60.0])
@pytest.mark.parametrize("mdot_h, mdot_c", [(0.0, 5.0), (5.0, 0.0), (0.0, 0.0)], ids=["hot0", "cold0", "both0"])
def test_zero_flow_transfers_nothing(fmu_path, h_s, mdot_h, mdot_c):
    t = np.arange(0.0, 601.0, h_s)
    u = {"T_hot_in_K": 323.15, "mdot_hot_kg_s": mdot_h, "T_cold_in_K": 303.15, "mdot_cold_kg_s": mdot_c,
         "R_f_m2K_W": 1e-4}
    out = run(fmu_path, t, u)
    assert np.all(np.isfinite(out.to_numpy()))
    for col in ("Q_W", "UA_W_K", "NTU", "epsilon", "E_J"):
        assert np.all(out[col] == 0.0), col
    assert np.max(np.abs(out["T_hot_out_K"] - 323.15)) < T_ATOL_K
    assert np.max(np.abs(out["T_cold_out_K"] - 303.15)) < T_ATOL_K
    # with hold-up: a stagnant side keeps its temperature; a flowing side is flushed to its inlet
    held = run(fmu_path, t, u, HOLDUP)
    assert np.all(np.isfinite(held.to_numpy()))
    assert np.all(held["Q_W"] == 0.0)
    end = held.iloc[-1]
    for side, mdot, T_in in (("hot", mdot_h, 323.15), ("cold", mdot_c, 303.15)):
        if mdot == 0.0:
            assert np.max(np.abs(held[f"T_{side}_out_K"] - HOLDUP[f"T_start_{side}_K"])) < T_ATOL_K
            assert np.all(held[f"E_{side}_out_J"] == 0.0)
        else:
            m = HOLDUP[f"m_hold_{side}_kg"]
            h_exp = WATER.h_J_kg(T_in) + (WATER.h_J_kg(HOLDUP[f"T_start_{side}_K"]) - WATER.h_J_kg(T_in)) * math.exp(-mdot * 600 / m)
            assert WATER.h_J_kg(end[f"T_{side}_out_K"]) == pytest.approx(h_exp, abs=T_ATOL_K * 4180)
