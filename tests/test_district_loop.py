"""DistrictLoop: reset-curve oracle, backup boiler, substations (delivered / unmet), transport delay of the
supply main, 24 h energy balance at 1 s and 60 s steps, zero flow (DH outage)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from twin.fmu_reference import simulate_table
from twin.water import fit

C0 = 273.15
T_ORACLE_ATOL_K = 0.01      # the reset-curve oracle is given to 0.01 K
T_ATOL_K = 1e-6             # temperatures the model computes from the same water fit as this test
Q_RTOL = 1e-9               # heats the model computes from the same water fit as this test
BALANCE_RTOL = 1e-9         # 24 h balance, relative to the heat delivered plus lost
RETARDATION_RTOL = 0.01     # front arrival vs the retardation formula (exact for an infinite film coefficient)
STEP_RTOL = 1e-3            # 24 h energies at 1 s vs 60 s steps (same inputs, held per minute)
PRECURSOR_ATOL_K = 1e-3     # with wall capacity: what may show before the water delay, 1e-4 of the 10 K step
                            # (the wall segments of plugflow.h pass a trace ahead of the front: ~1e-5 K, 6 s ahead)
N_MAX = 8

W = fit()


def h(T_K):
    return float(W.h_J_kg(T_K))


def T_from_h(h_J_kg):
    return brentq(lambda T: h(T) - h_J_kg, 273.0, 400.0, xtol=1e-12)


def run(fmu_path, t, inputs, parameters=None):
    t = np.asarray(t, dtype=float)
    full = {k: (np.full(t.size, v, dtype=float) if np.isscalar(v) else np.asarray(v, dtype=float))
            for k, v in inputs.items()}
    return simulate_table(fmu_path("DistrictLoop"), t, full, parameters=parameters)


def demands(*q_W):
    return {f"heat_demand_W[{i + 1}]": q for i, q in enumerate(q_W)}


# ---- reset curve ----

def test_reset_curve_oracle_55_25_design(fmu_path):
    """Nominal 55/25 C at -12 C outdoor, room 20 C, heating limit 12 C, n = 1.3: 36.45/23.95 C at 2 C outdoor."""
    T_out = np.array([2.0, -12.0, -25.0, 12.0, 20.0]) + C0
    t = np.arange(T_out.size + 1) * 60.0
    out = run(fmu_path, t, {"T_outdoor_K": np.append(T_out, T_out[-1])},
              parameters={"T_supply_min_K": 20.0 + C0})
    Ts = out["T_supply_setpoint_K"].to_numpy()[1:] - C0  # row k+1 holds the outputs for the inputs of row k
    Tr = out["T_return_setpoint_K"].to_numpy()[1:] - C0
    assert Ts[0] == pytest.approx(36.45, abs=T_ORACLE_ATOL_K)
    assert Tr[0] == pytest.approx(23.95, abs=T_ORACLE_ATOL_K)
    assert (Ts[1], Tr[1]) == (pytest.approx(55.0, abs=T_ORACLE_ATOL_K), pytest.approx(25.0, abs=T_ORACLE_ATOL_K))
    # colder than design: load ratio clipped to 1; at or above the heating limit: no space heating, room temperature
    assert (Ts[2], Tr[2]) == (pytest.approx(55.0, abs=T_ATOL_K), pytest.approx(25.0, abs=T_ATOL_K))
    for k in (3, 4):
        assert (Ts[k], Tr[k]) == (pytest.approx(20.0, abs=T_ATOL_K), pytest.approx(20.0, abs=T_ATOL_K))


def test_reset_curve_is_clipped_to_the_minimum_supply(fmu_path):
    t = np.array([0.0, 60.0])
    out = run(fmu_path, t, {"T_outdoor_K": 2.0 + C0}, parameters={"T_supply_min_K": 50.0 + C0})
    assert out["T_supply_setpoint_K"].iloc[-1] == pytest.approx(50.0 + C0, abs=T_ATOL_K)
    assert out["T_return_setpoint_K"].iloc[-1] == pytest.approx(23.95 + C0, abs=T_ORACLE_ATOL_K)


# ---- backup boiler ----

@pytest.mark.parametrize("T_plant_C, Q_max_W", [(45.0, 1e6), (45.0, 20e3), (60.0, 1e6), (45.0, 0.0)])
def test_boiler_tops_up_to_setpoint_within_capacity(fmu_path, T_plant_C, Q_max_W):
    mdot, T_plant = 2.0, T_plant_C + C0
    t = np.array([0.0, 60.0, 120.0])
    out = run(fmu_path, t, {"mdot_plant_kg_s": mdot, "T_plant_supply_K": T_plant, "T_outdoor_K": -12.0 + C0},
              parameters={"Q_boiler_max_W": Q_max_W}).iloc[-1]
    T_set = 55.0 + C0
    assert out["T_supply_setpoint_K"] == pytest.approx(T_set, abs=T_ATOL_K)
    Q_full = mdot * (h(T_set) - h(T_plant))          # heat to lift the plant supply to the setpoint
    Q_expected = min(max(Q_full, 0.0), Q_max_W)
    assert out["Q_boiler_W"] == pytest.approx(Q_expected, rel=Q_RTOL, abs=1e-6)
    T_expected = T_from_h(h(T_plant) + Q_expected / mdot)
    assert out["T_supply_boiler_K"] == pytest.approx(T_expected, abs=T_ATOL_K)
    if T_plant_C == 45.0 and Q_max_W == 1e6:
        assert out["T_supply_boiler_K"] == pytest.approx(T_set, abs=T_ATOL_K)
    assert out["E_boiler_J"] == pytest.approx(2 * 60.0 * Q_expected, rel=Q_RTOL, abs=1e-3)


# ---- substations ----

SHORT_PIPES = {"L_supply_m": 200.0, "L_return_m": 200.0}
STEADY_S = 4 * 3600.0   # a few transport delays of the short pipes at >= 1 kg/s (about 1 000 s each)


def steady(fmu_path, mdot, T_plant_C, q_W, available=None, parameters=None):
    t = np.arange(0.0, STEADY_S + 1, 60.0)
    inputs = {"mdot_plant_kg_s": mdot, "T_plant_supply_K": T_plant_C + C0, "T_outdoor_K": -12.0 + C0,
              "T_ground_K": 8.0 + C0, **demands(*q_W)}
    for i, a in enumerate(available or []):
        inputs[f"available_frac[{i + 1}]"] = a
    return run(fmu_path, t, inputs, parameters={"Q_boiler_max_W": 0.0, **SHORT_PIPES, **(parameters or {})}).iloc[-1]


def test_delivered_heat_equals_demand_when_the_loop_can_deliver(fmu_path):
    q = (100e3, 60e3, 40e3)
    end = steady(fmu_path, 2.0, 55.0, q)
    for i in range(3):
        assert end[f"Q_delivered_W[{i + 1}]"] == pytest.approx(q[i], rel=Q_RTOL)
    assert end["Q_unmet_W"] == pytest.approx(0.0, abs=1e-6)
    # junction balance: the mixed return carries the arriving enthalpy less the heat delivered
    h_arr = h(end["T_supply_consumers_K"])
    assert h(end["T_return_consumers_K"]) == pytest.approx(h_arr - sum(q) / 2.0, rel=1e-9)
    # the flow the substations ask for: each cools its share from the arrival to return setpoint + approach
    h_ret = h(25.0 + 3.0 + C0)
    assert end["mdot_demand_kg_s"] == pytest.approx(sum(q) / (h_arr - h_ret), rel=1e-9)
    assert end["mdot_demand_kg_s"] < 2.0


def test_short_flow_leaves_demand_unmet_in_proportion(fmu_path):
    q = (100e3, 60e3, 40e3)
    mdot = 1.0
    end = steady(fmu_path, mdot, 55.0, q)
    h_arr, h_ret = h(end["T_supply_consumers_K"]), h(25.0 + 3.0 + C0)
    Q_possible = mdot * (h_arr - h_ret)              # all the flow cooled to the return target, no bypass
    assert Q_possible < sum(q)
    for i in range(3):
        assert end[f"Q_delivered_W[{i + 1}]"] == pytest.approx(q[i] * Q_possible / sum(q), rel=1e-9)
    assert end["Q_unmet_W"] == pytest.approx(sum(q) - Q_possible, rel=1e-9)
    assert end["T_return_consumers_K"] == pytest.approx(25.0 + 3.0 + C0, abs=T_ATOL_K)


def test_supply_too_cold_delivers_nothing(fmu_path):
    """Plant supply at 27 C, below the return target 25 + 3 C, boiler off: nothing can be delivered."""
    q = (100e3, 60e3, 40e3)
    end = steady(fmu_path, 2.0, 27.0, q)
    assert end["T_supply_consumers_K"] < 28.0 + C0
    for i in range(N_MAX):
        assert end[f"Q_delivered_W[{i + 1}]"] == 0.0
    assert end["Q_unmet_W"] == pytest.approx(sum(q), rel=Q_RTOL)
    assert end["mdot_demand_kg_s"] == 0.0


def test_unavailable_substations_and_consumers_beyond_n_consumers(fmu_path):
    """Substation 2 disconnected, substation 3 able to take half its demand (stuck valve); consumer 4 is not in
    use (n_consumers = 3): its demand is ignored, not unmet."""
    q = (100e3, 60e3, 40e3, 500e3)
    end = steady(fmu_path, 2.0, 55.0, q, available=[1.0, 0.0, 0.5, 1.0])
    assert end["Q_delivered_W[1]"] == pytest.approx(q[0], rel=Q_RTOL)
    assert end["Q_delivered_W[2]"] == 0.0
    assert end["Q_delivered_W[3]"] == pytest.approx(0.5 * q[2], rel=Q_RTOL)
    assert end["Q_delivered_W[4]"] == 0.0
    assert end["Q_unmet_W"] == pytest.approx(q[1] + 0.5 * q[2], rel=Q_RTOL)


# ---- transport delay ----

DELAY_PIPE = {"L_supply_m": 500.0, "D_supply_m": 0.1, "U_supply_W_mK": 0.0, "T_start_supply_K": 50.0 + C0,
              "T_supply_min_K": 20.0 + C0}


def delay_run(fmu_path, h_s, parameters):
    """Plant supply steps 50 -> 60 C at t = 600 s; 5 kg/s; boiler idle (setpoint 20 C at 15 C outdoor)."""
    t = np.arange(0.0, 3600.0 + h_s / 2, h_s)
    T_plant = np.where(t < 600.0, 50.0, 60.0) + C0
    return run(fmu_path, t, {"mdot_plant_kg_s": 5.0, "T_plant_supply_K": T_plant, "T_outdoor_K": 15.0 + C0,
                             **demands(0.0, 0.0, 0.0)}, parameters={**DELAY_PIPE, **parameters})


def test_supply_change_reaches_consumers_after_the_transport_delay(fmu_path):
    """No wall capacity: a sharp front arrives after the water delay rho V / mdot (rho between 50 and 60 C)."""
    out = delay_run(fmu_path, 5.0, {"C_wall_supply_J_mK": 0.0})
    V = np.pi / 4 * 0.1 ** 2 * 500.0
    lo, hi = float(W.rho_kg_m3(60.0 + C0)) * V / 5.0, float(W.rho_kg_m3(50.0 + C0)) * V / 5.0
    delay = out["delay_supply_s"].iloc[-1]
    assert lo - 1e-6 <= delay <= hi + 1e-6
    t, T = out["time_s"].to_numpy(), out["T_supply_consumers_K"].to_numpy()
    before = t <= 600.0 + lo - 5.0
    after = t >= 600.0 + hi + 5.0
    assert np.all(np.abs(T[before] - (50.0 + C0)) < T_ATOL_K)
    assert np.all(np.abs(T[after] - (60.0 + C0)) < T_ATOL_K)


def test_wall_capacity_retards_the_front(fmu_path):
    """With the wall's heat capacity the front travels at v / (1 + C_wall / (rho A cp)) (thermal retardation);
    no new water arrives before the water delay, and the rise never undershoots."""
    for C_wall in (3500.0, 7000.0):
        out = delay_run(fmu_path, 5.0, {"C_wall_supply_J_mK": C_wall})
        t, T = out["time_s"].to_numpy() - 2.5, out["T_supply_consumers_K"].to_numpy()  # step means: mid-step
        A, rho, cp = np.pi / 4 * 0.1 ** 2, float(W.rho_kg_m3(50.0 + C0)), float(W.cp_J_kgK(55.0 + C0))
        delay = rho * A * 500.0 / 5.0
        assert np.all(np.abs(T[t <= 600.0 + delay - 5.0] - (50.0 + C0)) < PRECURSOR_ATOL_K)
        assert np.all(np.diff(T) >= -T_ATOL_K)
        assert T[-1] == pytest.approx(60.0 + C0, abs=0.01)
        k = int(np.argmax(T >= 55.0 + C0))                    # the front's midpoint, interpolated
        t_front = np.interp(55.0 + C0, T[k - 1:k + 1], t[k - 1:k + 1]) - 600.0
        assert t_front == pytest.approx(delay * (1.0 + C_wall / (rho * A * cp)), rel=RETARDATION_RTOL)


# ---- energy balance ----

def varying_inputs(h_s, seed=3):
    """24 h: demands, outdoor temperature, plant supply and loop flow varying every minute, with pump trips."""
    rng = np.random.default_rng(seed)
    t_min = np.arange(0.0, 86400.0 + 1, 60.0)
    n = t_min.size
    mdot = np.where(rng.uniform(size=n) < 0.05, 0.0, rng.uniform(0.3, 3.0, n))
    mdot[600:640] = 0.0  # a 40 min DH outage
    inputs = {
        "mdot_plant_kg_s": mdot,
        "T_plant_supply_K": C0 + 45.0 + 10.0 * np.sin(t_min / 9000.0) + rng.uniform(-1, 1, n),
        "T_outdoor_K": C0 + 2.0 - 10.0 * np.cos(2 * np.pi * t_min / 86400.0),
        "T_ground_K": np.full(n, C0 + 8.0),
        **{f"heat_demand_W[{i + 1}]": q * rng.uniform(0.0, 1.2, n) for i, q in enumerate((120e3, 70e3, 50e3, 30e3))},
    }
    t = np.arange(0.0, 86400.0 + h_s / 2, h_s)
    idx = np.minimum((t // 60.0).astype(int), n - 1)  # the same minute-by-minute inputs, held, at any step
    return t, {k: v[idx] for k, v in inputs.items()}


@pytest.fixture(scope="module")
def runs_24h(fmu_path):
    """The 24 h run at 60 s and at 1 s steps, each simulated once for the tests below."""
    cache = {}

    def get(h_s):
        if h_s not in cache:
            t, inputs = varying_inputs(h_s)
            out = simulate_table(fmu_path("DistrictLoop"), t, inputs,
                                 parameters={"n_consumers": 4, "Q_boiler_max_W": 150e3})
            cache[h_s] = (t, inputs, out)
        return cache[h_s]

    return get


@pytest.mark.parametrize("h_s", [60.0, 1.0])
def test_energy_balance_24h_varying_inputs(runs_24h, h_s):
    t, inputs, out = runs_24h(h_s)
    assert np.all(np.isfinite(out.to_numpy()))
    end = out.iloc[-1]
    E_del = sum(end[f"E_delivered_J[{i + 1}]"] for i in range(N_MAX))
    lhs = end["E_in_plant_J"] - end["E_out_plant_J"] + end["E_boiler_J"]
    rhs = E_del + end["E_loss_J"] + end["E_stored_J"]
    assert abs(lhs - rhs) <= BALANCE_RTOL * (E_del + end["E_loss_J"])
    # the run exercised every part: heat delivered, demand unmet, boiler and losses all non-zero
    assert E_del > 0 and end["E_unmet_J"] > 0 and end["E_boiler_J"] > 0 and end["E_loss_J"] > 0
    # demand = delivered + unmet, integrated
    E_dem = sum(np.sum(inputs[f"heat_demand_W[{i + 1}]"][:-1] * np.diff(t)) for i in range(4))
    assert E_del + end["E_unmet_J"] == pytest.approx(E_dem, rel=1e-12)


def test_24h_energies_do_not_depend_on_the_step_size(runs_24h):
    coarse, fine = runs_24h(60.0)[2].iloc[-1], runs_24h(1.0)[2].iloc[-1]
    for name in ["E_unmet_J", "E_boiler_J", "E_loss_J", "E_out_plant_J"] + [f"E_delivered_J[{i + 1}]" for i in range(4)]:
        assert coarse[name] == pytest.approx(fine[name], rel=STEP_RTOL), name


# ---- zero flow ----

@pytest.mark.parametrize("h_s", [1.0, 60.0])
def test_zero_flow_all_demand_unmet_and_finite(fmu_path, h_s):
    t = np.arange(0.0, 7200.0 + h_s / 2, h_s)
    q = (100e3, 60e3, 40e3)
    out = run(fmu_path, t, {"mdot_plant_kg_s": 0.0, "T_ground_K": 8.0 + C0, "T_outdoor_K": -5.0 + C0,
                            **demands(*q)})
    assert np.all(np.isfinite(out.to_numpy()))
    assert np.all(out["Q_unmet_W"].to_numpy()[1:] == pytest.approx(sum(q), rel=Q_RTOL))
    for i in range(N_MAX):
        assert np.all(out[f"Q_delivered_W[{i + 1}]"].to_numpy() == 0.0)
    assert np.all(out["Q_boiler_W"].to_numpy() == 0.0)
    assert out["E_unmet_J"].iloc[-1] == pytest.approx(sum(q) * 7200.0, rel=Q_RTOL)
    # the standing water cools towards the ground, monotonically, never below it
    for col in ("T_supply_consumers_K", "T_return_K"):
        T = out[col].to_numpy()
        assert np.all(np.diff(T) <= T_ATOL_K) and np.all(T >= 8.0 + C0 - T_ATOL_K)
    assert out["T_supply_consumers_K"].iloc[-1] < out["T_supply_consumers_K"].iloc[0]
    # the heat lost is the heat the mains gave up
    assert out["E_loss_J"].iloc[-1] == pytest.approx(-out["E_stored_J"].iloc[-1], rel=1e-9)


def test_zero_length_step_changes_no_state(fmu_path):
    """h = 0 recomputes outputs only: the energies stay, and the next step is the one without it."""
    inputs = {"mdot_plant_kg_s": 2.0, **demands(50e3, 50e3, 50e3)}
    with_zero = run(fmu_path, [0.0, 600.0, 600.0, 1200.0], inputs)
    without = run(fmu_path, [0.0, 600.0, 1200.0], inputs)
    energies = [c for c in with_zero.columns if c.startswith("E_")]
    assert np.array_equal(with_zero.loc[2, energies].to_numpy(), with_zero.loc[1, energies].to_numpy())
    assert np.array_equal(with_zero.iloc[-1].to_numpy(), without.iloc[-1].to_numpy())
