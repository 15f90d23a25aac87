"""DryCooler: cross-flow epsilon-NTU oracle, air properties against CoolProp, capacity against air temperature,
setpoint mode, cubic fan law, hold-up response, step-size independence, 24 h energy balance, zero flow."""
import math

import numpy as np
import pytest

from twin.fmu_reference import simulate_table
from twin.water import fit

T_ATOL_K = 1e-6          # outlet temperatures against the analytic solution / the setpoint
EPS_ATOL = 1e-9          # effectiveness against the textbook formula
Q_RTOL = 1e-9            # heat against the analytic solution
RHO_AIR_RTOL = 2e-3      # ideal gas at 1 atm against CoolProp's Air (real gas): 0.13 % at -40 C
CP_AIR_RTOL = 1e-4       # the README's quadratic cp against CoolProp's Air
BALANCE_RTOL = 1e-9      # energy balance residual relative to the heat rejected
STEP_ATOL_K = 1e-9       # 1 s and 60 s steps on the same piecewise-constant inputs

WATER = fit()
MODEL = "DryCooler"
# the model description's defaults: a ~200 kW dry cooler (40 C -> 30 C water at 25 C air)
UA_NOM, MDOT_NOM, V_AIR_NOM, F_R_AIR, N_AIR, N_WATER, P_FAN_NOM, SPEED_MIN = 45e3, 4.8, 24.0, 0.8, 0.6, 0.8, 6000.0, 0.1


def air_rho(T_K):
    return 101325.0 / (287.05 * T_K)


def air_cp(T_K):
    x = (T_K - 273.15) / 100.0
    return 1005.68 + 1.52 * x + 3.95 * x * x


def cp_mean(T_a, T_b):
    if abs(T_a - T_b) < 1e-3:
        return float(WATER.cp_J_kgK(0.5 * (T_a + T_b)))
    return float((WATER.h_J_kg(T_a) - WATER.h_J_kg(T_b)) / (T_a - T_b))


def eps_textbook(ntu, C_air, C_w):
    """Cross-flow, air unmixed, water mixed (Incropera Table 11.3)."""
    if C_air <= C_w:     # C_max (water) mixed, C_min (air) unmixed
        cr = C_air / C_w
        return (1.0 / cr) * (1.0 - math.exp(-cr * (1.0 - math.exp(-ntu))))
    cr = C_w / C_air     # C_min (water) mixed, C_max (air) unmixed
    return 1.0 - math.exp(-(1.0 / cr) * (1.0 - math.exp(-cr * ntu)))


def coil(T_in, mdot, T_air, speed):
    R = 1.0 / UA_NOM
    UA = 1.0 / (F_R_AIR * R * speed ** -N_AIR + (1 - F_R_AIR) * R * (MDOT_NOM / mdot) ** N_WATER)
    mdot_air = speed * V_AIR_NOM * air_rho(T_air)
    C_air = mdot_air * air_cp(T_air)
    T_out = T_in
    for _ in range(100):
        C_w = mdot * cp_mean(T_in, T_out)
        C_min = min(C_w, C_air)
        eps = eps_textbook(UA / C_min, C_air, C_w)
        Q = eps * C_min * (T_in - T_air)
        T_out = T_in - Q / C_w
    return {"Q_W": Q, "epsilon": eps, "UA_W_K": UA, "T_out_K": T_out, "T_air_out_K": T_air + Q / C_air,
            "mdot_air_kg_s": mdot_air, "C_air": C_air, "C_w": C_w}


def run(fmu_path, t, u, parameters=None):
    n = len(t)
    full = {"T_in_K": 313.15, "mdot_kg_s": MDOT_NOM, "T_air_K": 298.15, "fan_speed_rel": 1.0, "T_set_K": 303.15} | u
    # the coil alone unless asked: no hold-up, frost protection at its lowest (0.5 C)
    return simulate_table(fmu_path(MODEL), t, {k: np.broadcast_to(np.asarray(v, float), (n,)).copy() for k, v in full.items()},
                          parameters={"m_hold_kg": 0.0, "T_out_min_K": 273.65} | dict(parameters or {}))


def one_step(fmu_path, parameters=None, **u):
    return run(fmu_path, np.array([0.0, 60.0]), u, parameters).iloc[-1]


@pytest.mark.parametrize("speed, mdot, T_air, C_min_side", [
    (1.0, 4.8, 298.15, "water"),     # design point: 40 C water, 25 C air, ~204 kW
    (0.45, 6.0, 288.15, "air"),      # part speed, off-nominal water flow
], ids=["water-Cmin", "air-Cmin"])
def test_crossflow_epsilon_ntu_oracle(fmu_path, speed, mdot, T_air, C_min_side):
    out = one_step(fmu_path, T_in_K=313.15, mdot_kg_s=mdot, T_air_K=T_air, fan_speed_rel=speed)
    ref = coil(313.15, mdot, T_air, speed)
    assert (ref["C_air"] < ref["C_w"]) == (C_min_side == "air")
    assert out["UA_W_K"] == pytest.approx(ref["UA_W_K"], rel=1e-12)
    assert out["mdot_air_kg_s"] == pytest.approx(ref["mdot_air_kg_s"], rel=1e-12)
    assert out["epsilon"] == pytest.approx(ref["epsilon"], abs=EPS_ATOL)
    assert out["Q_W"] == pytest.approx(ref["Q_W"], rel=Q_RTOL)
    assert out["T_out_K"] == pytest.approx(ref["T_out_K"], abs=T_ATOL_K)
    assert out["T_air_out_K"] == pytest.approx(ref["T_air_out_K"], abs=T_ATOL_K)
    if speed == 1.0:   # the design figure stated in the README
        assert round(out["Q_W"] / 1e3, 1) == 203.7


def test_air_properties_against_coolprop(fmu_path):
    from CoolProp.CoolProp import PropsSI

    T_air = np.linspace(233.15, 323.15, 10)
    t = np.arange(0.0, 60.0 * T_air.size + 1, 60.0)
    out = run(fmu_path, t, {"T_in_K": 343.15, "T_air_K": np.append(T_air, T_air[-1]), "fan_speed_rel": 0.7})
    out = out.iloc[1:]       # row k + 1 is the step with the inputs of row k
    rho = out["mdot_air_kg_s"].to_numpy() / (0.7 * V_AIR_NOM)
    cp = out["Q_W"].to_numpy() / (out["mdot_air_kg_s"].to_numpy() * (out["T_air_out_K"].to_numpy() - T_air))
    rho_cp = np.array([PropsSI("D", "T", T, "P", 101325.0, "Air") for T in T_air])
    cp_cp = np.array([PropsSI("C", "T", T, "P", 101325.0, "Air") for T in T_air])
    assert np.max(np.abs(rho / rho_cp - 1)) < RHO_AIR_RTOL
    assert np.max(np.abs(cp / cp_cp - 1)) < CP_AIR_RTOL


def test_capacity_falls_as_the_air_warms(fmu_path):
    T_air = np.arange(263.15, 323.16, 5.0)        # -10 C .. 50 C, water in at 40 C
    t = np.arange(0.0, 60.0 * T_air.size + 1, 60.0)
    out = run(fmu_path, t, {"T_in_K": 313.15, "T_air_K": np.append(T_air, T_air[-1])}).iloc[1:]
    Q = out["Q_W"].to_numpy()
    assert np.all(np.diff(Q) < 0.0)
    assert Q[T_air == 313.15][0] == 0.0                 # no capacity at air = water temperature
    assert np.all(Q[T_air > 313.15] < 0.0)              # warmer air heats the water (mode 0 runs the fans regardless)
    # at every air temperature the heat is the analytic one
    for T, q in zip(T_air, Q):
        assert q == pytest.approx(coil(313.15, MDOT_NOM, T, 1.0)["Q_W"], rel=Q_RTOL, abs=1e-6)


MODE1 = {"mode": 1}


@pytest.mark.parametrize("parameters", [{}, MODE1])
def test_frost_protection_bypasses_so_the_water_never_leaves_below_its_floor(fmu_path, parameters):
    # -20 C air at full speed would cool 10 C water to below zero; the valve holds the outlet at 5 C
    u = dict(T_in_K=283.15, T_air_K=253.15, T_set_K=275.15, mdot_kg_s=2.0)
    assert coil(u["T_in_K"], 2.0, u["T_air_K"], 1.0)["T_out_K"] < 273.15
    out = one_step(fmu_path, {"T_out_min_K": 278.15} | parameters, **u)
    assert out["T_out_K"] == pytest.approx(278.15, abs=T_ATOL_K) and 0.0 < out["bypass_rel"] < 1.0
    # water already at the floor passes the coil by entirely
    cold = one_step(fmu_path, {"T_out_min_K": 278.15}, **(u | {"T_in_K": 277.15}))
    assert cold["bypass_rel"] == 1.0 and cold["Q_W"] == 0.0 and cold["T_out_K"] == pytest.approx(277.15, abs=T_ATOL_K)


def test_setpoint_mode_reaches_the_setpoint_with_the_smallest_speed(fmu_path):
    out = one_step(fmu_path, MODE1, T_in_K=313.15, T_air_K=293.15, T_set_K=303.15)
    s = out["fan_speed_out_rel"]
    assert SPEED_MIN < s < 1.0
    assert out["T_out_K"] == pytest.approx(303.15, abs=T_ATOL_K)
    assert out["P_fan_W"] == pytest.approx(P_FAN_NOM * s ** 3, rel=1e-12)
    # the smallest speed: a little less does not reach the setpoint (mode 0 at that speed)
    assert one_step(fmu_path, T_in_K=313.15, T_air_K=293.15, fan_speed_rel=s * (1 - 1e-6))["T_out_K"] > 303.15
    assert coil(313.15, MDOT_NOM, 293.15, s)["T_out_K"] == pytest.approx(303.15, abs=T_ATOL_K)


@pytest.mark.parametrize("case, u, speed, cmp", [
    ("air above setpoint", dict(T_in_K=313.15, T_air_K=305.15, T_set_K=303.15), 1.0, ">"),
    ("nothing to cool", dict(T_in_K=302.15, T_air_K=293.15, T_set_K=303.15), 0.0, "<"),
    ("air warmer than water", dict(T_in_K=313.15, T_air_K=318.15, T_set_K=303.15), 0.0, ">"),
    ("fans failed", dict(T_in_K=313.15, T_air_K=293.15, T_set_K=303.15, fan_speed_rel=0.0), 0.0, ">"),
    ("half the fans available", dict(T_in_K=313.15, T_air_K=293.15, T_set_K=296.15, fan_speed_rel=0.5), 0.5, ">"),
])
def test_setpoint_mode_limits(fmu_path, case, u, speed, cmp):
    out = one_step(fmu_path, MODE1, **u)
    assert out["fan_speed_out_rel"] == speed
    assert (out["T_out_K"] > u["T_set_K"]) if cmp == ">" else (out["T_out_K"] < u["T_set_K"])
    if speed > 0.0:
        assert out["Q_W"] == pytest.approx(coil(u["T_in_K"], MDOT_NOM, u["T_air_K"], speed)["Q_W"], rel=Q_RTOL)
    else:
        assert out["Q_W"] == 0.0 and out["P_fan_W"] == 0.0 and out["T_out_K"] == pytest.approx(u["T_in_K"], abs=T_ATOL_K)


def test_minimum_speed_overcooling_is_met_by_the_bypass_valve(fmu_path):
    # cold air: the lowest fan speed would cool 31 C water to well below 30 C; the valve bypasses the coil
    u = dict(T_in_K=304.15, T_air_K=273.15, T_set_K=303.15)
    assert coil(u["T_in_K"], MDOT_NOM, u["T_air_K"], SPEED_MIN)["T_out_K"] < u["T_set_K"] - 0.5
    out = one_step(fmu_path, MODE1, **u)
    b = out["bypass_rel"]
    assert out["fan_speed_out_rel"] == SPEED_MIN and 0.0 < b < 1.0
    assert out["T_out_K"] == pytest.approx(u["T_set_K"], abs=T_ATOL_K)
    # the coil sees the rest of the water: the heat is that of the coil at (1 - b) of the flow
    assert out["Q_W"] == pytest.approx(coil(u["T_in_K"], (1 - b) * MDOT_NOM, u["T_air_K"], SPEED_MIN)["Q_W"], rel=Q_RTOL)
    # mode 0 does not bypass above the frost-protection floor
    assert one_step(fmu_path, T_in_K=304.15, T_air_K=273.15, fan_speed_rel=SPEED_MIN)["bypass_rel"] == 0.0


def test_setpoint_held_over_a_day_whenever_capacity_allows(fmu_path):
    t = np.arange(0.0, 86401.0, 60.0)
    T_air = 293.15 + 12 * np.sin(2 * np.pi * (t - 6 * 3600) / 86400)    # 8 C .. 32 C
    T_in = 311.15 + 2 * np.sin(t / 3000)
    out = run(fmu_path, t, {"T_in_K": T_in, "T_air_K": T_air, "T_set_K": 303.15}, MODE1).iloc[1:]
    s, T_out = out["fan_speed_out_rel"].to_numpy(), out["T_out_K"].to_numpy()
    modulating = (s > SPEED_MIN) & (s < 1.0)
    full = s == 1.0
    assert modulating.sum() > 100 and full.sum() > 100                    # both regimes occur
    assert np.max(np.abs(T_out[modulating] - 303.15)) < T_ATOL_K
    assert np.all(T_out[full] > 303.15)


def test_fan_power_cubic_law(fmu_path):
    speeds = np.array([0.0, 0.25, 0.5, 0.8, 1.0, 1.0])
    t = np.arange(0.0, 60.0 * speeds.size, 60.0)
    out = run(fmu_path, t, {"fan_speed_rel": speeds})
    P = out["P_fan_W"].to_numpy()[1:]
    assert P == pytest.approx(P_FAN_NOM * speeds[:-1] ** 3, rel=1e-12)
    assert P[2] == pytest.approx(P[4] / 8, rel=1e-12)
    assert out["E_fan_J"].iloc[-1] == pytest.approx(np.sum(P * 60.0), rel=1e-12)


HOLDUP = {"m_hold_kg": 150.0, "T_start_K": 308.15}


@pytest.mark.parametrize("h_s", [1.0, 60.0])
def test_holdup_outlet_follows_the_exact_exponential(fmu_path, h_s):
    t = np.arange(0.0, 601.0, h_s)
    out = run(fmu_path, t, {"T_in_K": 313.15, "T_air_K": 293.15}, HOLDUP)
    h_coil = WATER.h_J_kg(coil(313.15, MDOT_NOM, 293.15, 1.0)["T_out_K"])
    h_exp = h_coil + (WATER.h_J_kg(308.15) - h_coil) * np.exp(-MDOT_NOM * t / 150.0)
    assert np.max(np.abs(WATER.h_J_kg(out["T_out_K"].to_numpy()) - h_exp)) / 4180.0 < T_ATOL_K
    assert np.all(np.diff(out["T_out_K"].to_numpy()) <= 0.0)        # monotone, no undershoot


def _random_inputs(t, seed, zero_share=0.05):
    rng = np.random.default_rng(seed)
    n = t.size
    return {"T_in_K": 309.15 + 4 * np.sin(t / 4000) + rng.uniform(-1, 1, n),
            "mdot_kg_s": np.where(rng.uniform(size=n) < zero_share, 0.0, rng.uniform(1.0, 8.0, n)),
            "T_air_K": 291.15 + 10 * np.sin(2 * np.pi * t / 86400) + rng.uniform(-0.5, 0.5, n),
            "fan_speed_rel": np.where(rng.uniform(size=n) < zero_share, 0.0, rng.uniform(0.0, 1.0, n)),
            "T_set_K": np.where(t < 43200, 302.15, 300.15)}


@pytest.mark.parametrize("mode", [0, 1])
def test_step_sizes_1s_and_60s_agree(fmu_path, mode):
    t60 = np.arange(0.0, 6 * 3600 + 1, 60.0)
    u60 = _random_inputs(t60, seed=5, zero_share=0.1)
    t1 = np.arange(0.0, t60[-1] + 1, 1.0)
    k = np.minimum((t1 // 60).astype(int), t60.size - 1)
    u1 = {n: v[k] for n, v in u60.items()}
    p = HOLDUP | {"mode": mode}
    a = run(fmu_path, t60, u60, p)
    b = run(fmu_path, t1, u1, p).iloc[::60].reset_index(drop=True)
    assert np.max(np.abs(a["T_out_K"] - b["T_out_K"])) < STEP_ATOL_K
    for col in ("E_Q_J", "E_out_J", "E_stored_J", "E_fan_J"):
        assert np.max(np.abs(a[col] - b[col])) <= BALANCE_RTOL * a[col].abs().max(), col
    assert np.all(np.isfinite(b.to_numpy()))


@pytest.mark.parametrize("mode", [0, 1])
@pytest.mark.parametrize("holdup", [False, True], ids=["no-holdup", "holdup"])
def test_energy_balance_24h_varying_inputs(fmu_path, mode, holdup):
    t = np.arange(0.0, 86401.0, 60.0)
    out = run(fmu_path, t, _random_inputs(t, seed=2), (HOLDUP if holdup else {}) | {"mode": mode})
    end = out.iloc[-1]
    E_Q = end["E_Q_J"]
    assert E_Q > 1e9
    residual = end["E_in_J"] - end["E_out_J"] - end["E_stored_J"] - E_Q
    assert abs(residual) <= BALANCE_RTOL * E_Q
    assert E_Q == pytest.approx(np.sum(out["Q_W"].to_numpy()[1:] * np.diff(t)), rel=1e-12)
    assert end["E_fan_J"] == pytest.approx(np.sum(out["P_fan_W"].to_numpy()[1:] * np.diff(t)), rel=1e-12)
    if holdup:
        assert end["E_stored_J"] != 0.0


@pytest.mark.parametrize("h_s", [1.0, 60.0])
@pytest.mark.parametrize("mode", [0, 1])
def test_zero_water_flow(fmu_path, h_s, mode):
    t = np.arange(0.0, 601.0, h_s)
    out = run(fmu_path, t, {"mdot_kg_s": 0.0, "T_in_K": 318.15, "T_air_K": 288.15}, {"mode": mode})
    assert np.all(np.isfinite(out.to_numpy()))
    for col in ("Q_W", "UA_W_K", "epsilon", "E_Q_J", "E_in_J", "E_out_J"):
        assert np.all(out[col] == 0.0), col
    assert np.max(np.abs(out["T_out_K"] - 318.15)) < T_ATOL_K
    assert np.all(out["T_air_out_K"] == 288.15)
    # mode 0 runs the fans as commanded; mode 1 has nothing to cool and stops them
    assert np.all(out["fan_speed_out_rel"] == (1.0 if mode == 0 else 0.0))
    held = run(fmu_path, t, {"mdot_kg_s": 0.0, "T_in_K": 318.15, "T_air_K": 288.15}, HOLDUP | {"mode": mode})
    assert np.max(np.abs(held["T_out_K"] - HOLDUP["T_start_K"])) < T_ATOL_K     # the hold-up keeps its temperature
    assert np.all(held["E_stored_J"] == 0.0)


@pytest.mark.parametrize("h_s", [1.0, 60.0])
def test_fan_failure_speed_zero(fmu_path, h_s):
    """Fans stopped (mode 0, speed 0): no air, no heat, no fan power; the water passes unchanged."""
    t = np.arange(0.0, 601.0, h_s)
    out = run(fmu_path, t, {"fan_speed_rel": 0.0, "T_in_K": 318.15, "T_air_K": 288.15})
    assert np.all(np.isfinite(out.to_numpy()))
    for col in ("Q_W", "P_fan_W", "mdot_air_kg_s", "UA_W_K", "E_Q_J", "E_fan_J"):
        assert np.all(out[col] == 0.0), col
    assert np.max(np.abs(out["T_out_K"] - 318.15)) < T_ATOL_K
    end = out.iloc[-1]
    assert end["E_in_J"] == pytest.approx(end["E_out_J"], rel=1e-12)
