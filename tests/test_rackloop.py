"""RackLoop: analytic steady state and step response, energy balance, zero flow."""
import math

import numpy as np
import pytest

from twin.fmu_reference import simulate_table
from twin.water import fit

T_ATOL_K = 1e-6
BALANCE_RTOL = 1e-9


def test_steady_state_and_exponential_approach(fmu_path):
    P, mdot, T_in, C, f = 150e3, 2.0, 313.15, 2e5, 0.75
    t = np.arange(0, 3601, 60.0)
    out = simulate_table(fmu_path("RackLoop"), t, {"P_IT_W": np.full(t.size, P), "mdot_kg_s": np.full(t.size, mdot),
                                                    "T_in_K": np.full(t.size, T_in)},
                         parameters={"C_J_K": C, "f_liquid": f, "T_start_K": T_in})
    cp = fit().cp_J_kgK(T_in + 0.5 * f * P / (mdot * 4180))  # cp near the film temperature
    T_eq = T_in + f * P / (mdot * cp)
    assert out["T_out_K"].iloc[-1] == pytest.approx(T_eq, abs=0.01)
    # the first step (cp at T_in, where the node starts) follows the exponential with tau = C / (mdot cp)
    cp0 = fit().cp_J_kgK(T_in)
    T_eq0, tau = T_in + f * P / (mdot * cp0), C / (mdot * cp0)
    assert out["T_out_K"].iloc[1] == pytest.approx(T_in + (T_eq0 - T_in) * (1 - math.exp(-60 / tau)), abs=T_ATOL_K)


def test_energy_balance_24h_varying_inputs(fmu_path):
    rng = np.random.default_rng(1)
    t = np.arange(0, 86401, 60.0)
    P = 200e3 * rng.uniform(0.2, 1.0, t.size)
    mdot = np.where(rng.uniform(size=t.size) < 0.05, 0.0, rng.uniform(0.5, 3.0, t.size))
    T_in = 308.15 + 5 * np.sin(t / 7200)
    out = simulate_table(fmu_path("RackLoop"), t, {"P_IT_W": P, "mdot_kg_s": mdot, "T_in_K": T_in})
    end = out.iloc[-1]
    assert end["E_IT_J"] == pytest.approx(end["E_liquid_J"] + end["E_air_J"], rel=BALANCE_RTOL)
    assert end["E_liquid_J"] == pytest.approx(end["E_coolant_J"] + end["E_stored_J"], rel=BALANCE_RTOL)


@pytest.mark.parametrize("h_s", [1.0, 60.0])
def test_zero_flow_heats_linearly_without_overshoot(fmu_path, h_s):
    t = np.arange(0, 601, h_s)
    n = t.size
    out = simulate_table(fmu_path("RackLoop"), t, {"P_IT_W": np.full(n, 100e3), "mdot_kg_s": np.zeros(n),
                                                    "T_in_K": np.full(n, 303.15)},
                         parameters={"C_J_K": 2e6, "f_liquid": 0.8})
    assert out["T_out_K"].iloc[-1] == pytest.approx(303.15 + 0.8 * 100e3 * 600 / 2e6, abs=T_ATOL_K)
    assert np.all(np.isfinite(out.to_numpy()))


def test_mean_outlet_carries_exactly_the_coolant_heat_of_the_step(fmu_path):
    rng = np.random.default_rng(3)
    t = np.arange(0, 7201, 60.0)
    n = t.size
    mdot = np.where(rng.uniform(size=n) < 0.1, 0.0, rng.uniform(0.5, 3.0, n))
    T_in = rng.uniform(303.0, 310.0, n)
    out = simulate_table(fmu_path("RackLoop"), t, {"P_IT_W": rng.uniform(0, 2e5, n), "mdot_kg_s": mdot, "T_in_K": T_in})
    cp = fit().cp_J_kgK(0.5 * (T_in[:-1] + out["T_out_K"].to_numpy()[:-1]))     # the step's cp, as the model uses
    heat = mdot[:-1] * cp * (out["T_out_mean_K"].to_numpy()[1:] - T_in[:-1]) * 60.0
    assert np.allclose(heat, np.diff(out["E_coolant_J"].to_numpy()), rtol=1e-12, atol=1e-6)


def test_without_flow_the_node_is_held_at_T_max_and_the_rest_is_shed(fmu_path):
    # 150 kW, 75 % to the liquid, C = 2e5 J/K: 0.5625 K/s; from 40 C the node reaches 80 C after 71.1 s
    t = np.arange(0, 601, 60.0)
    n = t.size
    out = simulate_table(fmu_path("RackLoop"), t, {"P_IT_W": np.full(n, 150e3), "mdot_kg_s": np.zeros(n),
                                                    "T_in_K": np.full(n, 313.15)},
                         parameters={"T_start_K": 313.15, "T_max_K": 353.15})
    assert out["T_out_K"].max() == pytest.approx(353.15, abs=T_ATOL_K)
    t_hit = 40.0 * 2e5 / (0.75 * 150e3)
    assert out["E_IT_J"].iloc[-1] == pytest.approx(150e3 * t_hit, rel=1e-12)       # then no flow carries heat away
    assert out["E_shed_J"].iloc[-1] == pytest.approx(150e3 * (600 - t_hit), rel=1e-12)
    end = out.iloc[-1]
    assert end["E_IT_J"] == pytest.approx(end["E_liquid_J"] + end["E_air_J"], rel=BALANCE_RTOL)
    assert end["E_liquid_J"] == pytest.approx(end["E_coolant_J"] + end["E_stored_J"], rel=BALANCE_RTOL)
    assert list(out["overtemp"].iloc[2:]) == [1.0] * (n - 2)


def test_tiny_flows_behave_like_zero_flow(fmu_path):
    t = np.array([0.0, 60.0])
    runs = [simulate_table(fmu_path("RackLoop"), t, {"P_IT_W": np.full(2, 150e3), "mdot_kg_s": np.full(2, m),
                                                      "T_in_K": np.full(2, 303.15)}).iloc[-1]
            for m in (0.0, 1e-300, 1e-16, 1e-12)]
    for r in runs[1:]:
        assert r["T_out_K"] == pytest.approx(runs[0]["T_out_K"], abs=1e-6)
        assert abs(r["E_coolant_J"]) < 1e-3 and np.isfinite(r["T_out_mean_K"])
