"""BufferTank: analytic oracles (mixed-tank decay, tanks-in-series step response), measured stand-by decay,
energy balance, buoyancy mixing, zero flow and high flow without under- or overshoot."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import brentq, minimize_scalar
from scipy.stats import gamma

from twin import tank_ua
from twin.fmu import read_ports
from twin.fmu_reference import simulate_table
from twin.water import fit

N_MAX = 32
LAYERS = [f"T_layer_K[{i}]" for i in range(1, N_MAX + 1)]
# The trapezoidal rule's error on the decay after time t: dT0 * (a^2 / 12) * (t / tau) * exp(-t / tau)
# <= dT0 * a^2 / (12 e), a = h * UA / (m cp) per step. For the oracle below (dT0 = 60 K, tau = 22.6 h):
# 1.0e-6 K at 60 s steps (measured 1.01e-6 K); 2.8e-10 K at 1 s (measured 1.6e-9 K: rounding and the
# per-step cp linearization).
DECAY_ATOL_K = {1.0: 1e-8, 60.0: 3e-6}
# Tanks in series, n = 10, trapezoidal rule with a = mdot dt / m_layer per sub-step: the largest deviation of the
# outflow step response from the Erlang curve is about 0.011 a^2 (0.0007 at the model's largest a, 0.25).
# tau = 3600 s (tau_layer = 360 s): one sub-step per 60 s step, a = 0.167 (measured 3.1e-4); a = 0.0028 at 1 s
# (measured 8.6e-8). tau = 600 s: a 60 s step takes 4 sub-steps of a = 0.25 (measured 6.9e-4); a = 0.017 at 1 s
# (measured 3.1e-6). Keyed by (step, tau).
ERLANG_ATOL = {(1.0, 3600.0): 1e-6, (60.0, 3600.0): 5e-4, (1.0, 600.0): 1e-5, (60.0, 600.0): 1e-3}
BALANCE_RTOL = 1e-9           # energy balance residual relative to the heat that passed through the tank
T_ROUND_K = 1e-9              # rounding allowance for bounds and equalities of temperatures
# 60 s against 1 s steps with zero flow, strong conduction and loss: the time-discretization error, largest in
# the first minutes at the kinks of the initial profile (measured 0.0047 K; an oscillation would show far larger)
ZERO_FLOW_60S_VS_1S_K = 0.01
STANDBY_RMSE_PP = 0.5         # the target for the measured stand-by level (data noise ~0.3 pp)
STANDBY_UA_RTOL = 0.30        # SOURCE.txt's alternative: fitted UA within +-30 % of the insulation value


def simulate(fmu_path, t, inputs, parameters, outputs=None):
    n = t.size
    full = {"mdot_charge_kg_s": np.zeros(n), "T_charge_in_K": np.full(n, 353.15),
            "mdot_discharge_kg_s": np.zeros(n), "T_discharge_in_K": np.full(n, 313.15),
            "T_amb_K": np.full(n, 293.15)}
    full.update({k: np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy() for k, v in inputs.items()})
    path = fmu_path("BufferTank")
    if outputs is None:   # every output, and the water mass (a calculated parameter)
        outputs = [p.name for p in read_ports(path)[1].values() if p.causality in ("output", "calculatedParameter")]
    return simulate_table(path, t, full, outputs=outputs, parameters=parameters)


def layers(out, n):
    return out[LAYERS[:n]].to_numpy()


def m_h_scale(out):
    """Enthalpy content of the tank, J: the scale of rounding in E_stored_J."""
    return out["m_water_kg"].iloc[0] * float(fit().h_J_kg(out["T_mean_K"].iloc[0]))


# ---- oracle 1: one fully mixed layer cooling through UA ----

@pytest.mark.parametrize("h_s", [1.0, 60.0])
def test_mixed_tank_decays_exponentially(fmu_path, h_s):
    wf = fit()
    V, UA, T0, T_amb = 1.0, 50.0, 353.15, 293.15
    t = np.arange(0, 48 * 3600 + 1, h_s)
    out = simulate(fmu_path, t, {"T_amb_K": T_amb},
                   {"n_layers": 1, "V_m3": V, "H_m": 1.2, "UA_W_K": UA, "T_top_start_K": T0, "T_bottom_start_K": T0},
                   outputs=["T_top_K", "T_mean_K", "E_loss_J", "E_stored_J", "m_water_kg"])
    m = V * float(wf.rho_kg_m3(T0))
    assert out["m_water_kg"].iloc[0] == pytest.approx(m, rel=1e-12)
    T = out["T_top_K"].to_numpy()
    # exact solution of m cp(T) dT/dt = -UA (T - T_amb) with the model's cp(T)
    ode = solve_ivp(lambda _, y: -UA * (y - T_amb) / (m * wf.cp_J_kgK(y)), (0, t[-1]), [T0], t_eval=t,
                    rtol=1e-12, atol=1e-12, method="DOP853")
    assert np.max(np.abs(T - ode.y[0])) <= DECAY_ATOL_K[h_s]
    # the oracle: T = T_amb + (T0 - T_amb) exp(-UA t / (m cp)); cp varies over the decay (0.4 %), so the
    # exact solution lies between the exponentials with the smallest and largest cp of the temperature range
    cp_range = wf.cp_J_kgK(np.linspace(T.min(), T0, 2001))
    lower = T_amb + (T0 - T_amb) * np.exp(-UA * t / (m * cp_range.min()))
    upper = T_amb + (T0 - T_amb) * np.exp(-UA * t / (m * cp_range.max()))
    assert np.all(T >= lower - DECAY_ATOL_K[h_s])
    assert np.all(T <= upper + DECAY_ATOL_K[h_s])
    assert np.max(upper - lower) < 0.1           # so the exponential pins T within 0.1 K (cp varies 0.4 %)
    assert T[-1] < T_amb + (T0 - T_amb) * math.exp(-1.5)  # the decay is substantial (t = 2.1 tau)
    # the heat lost is the heat the water gave up
    assert out["E_loss_J"].iloc[-1] == pytest.approx(-out["E_stored_J"].iloc[-1], rel=BALANCE_RTOL)
    assert out["E_stored_J"].iloc[-1] == pytest.approx(m * float(wf.h_J_kg(T[-1]) - wf.h_J_kg(T0)), rel=1e-9)


# ---- oracle 2: ten layers, advection only, step at the inlet ----

@pytest.mark.parametrize("direction", ["charge", "discharge"])
@pytest.mark.parametrize("h_s", [1.0, 60.0])
@pytest.mark.parametrize("tau", [3600.0, 600.0])
def test_ten_layers_follow_erlang_step_response(fmu_path, h_s, direction, tau):
    wf = fit()
    V, T_cold, T_hot = 6.5, 313.15, 343.15
    atol = ERLANG_ATOL[(h_s, tau)]
    T_start, T_in = (T_cold, T_hot) if direction == "charge" else (T_hot, T_cold)
    m = V * float(wf.rho_kg_m3(T_start))
    mdot = m / tau                        # tau = V rho / mdot
    t = np.arange(0, 3 * tau + 1, h_s)
    if direction == "charge":             # hot water in at the top, out at the bottom
        inputs, port = {"mdot_charge_kg_s": mdot, "T_charge_in_K": T_in}, "T_bottom_K"
    else:                                 # cold return in at the bottom, out at the top
        inputs, port = {"mdot_discharge_kg_s": mdot, "T_discharge_in_K": T_in}, "T_top_K"
    out = simulate(fmu_path, t, inputs, {"n_layers": 10, "V_m3": V, "UA_W_K": 0.0, "k_eff_W_mK": 0.0,
                                         "T_top_start_K": T_start, "T_bottom_start_K": T_start})
    # the model carries enthalpy: compare the enthalpy response, free of cp's variation with temperature
    h_out = wf.h_J_kg(out[port].to_numpy())
    response = (h_out - wf.h_J_kg(T_start)) / (wf.h_J_kg(T_in) - wf.h_J_kg(T_start))
    erlang = gamma.cdf(10 * t / tau, 10)
    assert np.max(np.abs(response - erlang)) <= atol
    for x in (0.5, 1.0, 1.5, 2.0, 2.5):
        k = int(round(x * tau / h_s))
        assert t[k] == x * tau
        assert response[k] == pytest.approx(gamma.cdf(10 * x, 10), abs=atol)
    assert response[int(round(tau / h_s))] == pytest.approx(0.542, abs=0.001 + atol)
    assert np.all(np.diff(response) >= -1e-12)   # monotone: no oscillation


# ---- measured stand-by decay (Naturstrom tank, oemof-thermal validation data) ----

# The samples are a quarter of an hour apart, not an hour as SOURCE.txt and the file name say: the source
# (oemof-thermal 0.0.8, docs/validation_stratified_thermal_storage.rst) tabulates them at 0.0, 0.25, ... 5.5 h
# and plots them at np.arange(0, n / 4, 0.25) h. See models/BufferTank/README.md.
STANDBY_SAMPLE_H = 0.25


def standby_case(shared_data):
    folder = shared_data / "storage_tank_standby"
    p = pd.read_csv(folder / "storage_parameters.csv").set_index("var_name")["var_value"].astype(float)
    measured = pd.read_csv(folder / "storage_level_measured_hourly.csv")
    measured["hour"] = measured["hour"] * STANDBY_SAMPLE_H      # the sample index -> hours
    ua = tank_ua.cylinder_ua(p["height"], p["diameter"], p["s_iso"] * 1e-3, p["lamb_iso"], p["alpha_inside"],
                             p["alpha_outside"])
    return p, measured, ua


def standby_level_pct(fmu_path, p, hours, UA):
    T_hot, T_cold = p["temp_h"] + 273.15, p["temp_c"] + 273.15
    T_mean0 = T_cold + p["initial_storage_level"] * (T_hot - T_cold)
    t = np.arange(0, hours[-1] * 3600 + 1, 60.0)
    out = simulate(fmu_path, t, {"T_amb_K": p["temp_env"] + 273.15},
                   {"V_m3": tank_ua.cylinder_volume_m3(p["height"], p["diameter"]), "H_m": p["height"],
                    "UA_W_K": UA, "T_top_start_K": T_mean0, "T_bottom_start_K": T_mean0},
                   outputs=["T_mean_K"])
    T_mean = out["T_mean_K"].to_numpy()[(hours * 60).astype(int)]
    return 100.0 * (T_mean - T_cold) / (T_hot - T_cold)


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def flat_wall_U(s_m, lam, h_in, h_out):
    return 1.0 / (1.0 / h_in + s_m / lam + 1.0 / h_out)


def test_tank_ua_flat_wall_limit_and_trends():
    U = flat_wall_U(0.1, 0.039, 7.0, 4.0)
    # a very wide, very tall cylinder: the side wall is a flat wall, the ends are flat walls of (almost) equal areas
    big = tank_ua.cylinder_ua(1000.0, 1000.0, 0.1, 0.039, 7.0, 4.0)
    assert big.side_W_K == pytest.approx(U * math.pi * 1000.0 * 1000.0, rel=1e-3)
    assert big.top_W_K == big.bottom_W_K == pytest.approx(U * math.pi * 500.0 ** 2, rel=1e-3)
    # thicker insulation, lower UA; better insulation conductivity, lower UA
    thin, thick = (tank_ua.cylinder_ua(3.0, 1.5, s, 0.039, 7.0, 4.0).total_W_K for s in (0.05, 0.15))
    assert thick < thin
    assert tank_ua.cylinder_ua(3.0, 1.5, 0.1, 0.030, 7.0, 4.0).total_W_K < tank_ua.cylinder_ua(3.0, 1.5, 0.1, 0.039, 7.0, 4.0).total_W_K
    with pytest.raises(ValueError, match="insulation_m"):
        tank_ua.cylinder_ua(3.0, 1.5, 0.0, 0.039, 7.0, 4.0)


def test_standby_ua_from_insulation_data(shared_data):
    p, _, ua = standby_case(shared_data)
    # 2.96 m x 1.15 m, 100 mm at 0.039 W/(m K), films 7 and 4 W/(m2 K): a flat wall of 0.338 W/(m2 K) on the
    # inner surface (12.8 m2) gives 4.32 W/K; the cylinder's larger outer surface raises it by a few per cent
    U = flat_wall_U(p["s_iso"] * 1e-3, p["lamb_iso"], p["alpha_inside"], p["alpha_outside"])
    area = math.pi * p["diameter"] * p["height"] + 2 * math.pi * p["diameter"] ** 2 / 4
    assert U * area < ua.total_W_K < 1.10 * U * area
    assert ua.top_W_K == ua.bottom_W_K


def test_standby_level_with_insulation_ua_within_target(fmu_path, shared_data):
    p, measured, ua = standby_case(shared_data)
    level = standby_level_pct(fmu_path, p, measured["hour"].to_numpy(), ua.total_W_K)
    assert level[0] == pytest.approx(measured["level_pct"].iloc[0], abs=1e-6)
    assert rmse(level, measured["level_pct"]) <= STANDBY_RMSE_PP


def fitted_standby_ua(fmu_path, p, measured):
    hours = measured["hour"].to_numpy()
    res = minimize_scalar(lambda ua: rmse(standby_level_pct(fmu_path, p, hours, ua), measured["level_pct"]),
                          bounds=(0.0, 30.0), method="bounded", options={"xatol": 1e-3})
    return float(res.x), float(res.fun)


def test_standby_level_with_calibrated_ua_within_noise(fmu_path, shared_data):
    """Calibration (DESIGN job 3): with UA fitted to the data the model's decay reproduces it within the target."""
    p, measured, _ = standby_case(shared_data)
    ua_fit, err = fitted_standby_ua(fmu_path, p, measured)
    assert 0.0 < ua_fit < 30.0
    assert err <= STANDBY_RMSE_PP


@pytest.mark.xfail(strict=True, reason="fitted UA 6.59 W/K is 1.42 x the insulation-data UA 4.65 W/K, which "
                                       "leaves out thermal bridges (SOURCE.txt's alternative criterion: within "
                                       "+-30 %); see models/BufferTank/README.md")
def test_standby_fitted_ua_close_to_insulation_ua(fmu_path, shared_data):
    p, measured, ua = standby_case(shared_data)
    ua_fit, _ = fitted_standby_ua(fmu_path, p, measured)
    assert ua_fit == pytest.approx(ua.total_W_K, rel=STANDBY_UA_RTOL)


# ---- energy balance ----

@pytest.mark.parametrize("h_s", [1.0, 60.0])
def test_energy_balance_24h_varying_flows(fmu_path, h_s):
    wf = fit()
    rng = np.random.default_rng(7)
    t = np.arange(0, 86400 + 1, h_s)
    n = t.size
    block = np.repeat(np.arange(n // int(600 / h_s) + 1), int(600 / h_s))[:n]   # inputs change every 10 min
    u = {k: rng.uniform(size=block.max() + 1)[block] for k in ("c", "d", "Tc", "Td", "off_c", "off_d")}
    inputs = {
        "mdot_charge_kg_s": np.where(u["off_c"] < 0.2, 0.0, 6.0 * u["c"]),
        "T_charge_in_K": 323.15 + 35.0 * u["Tc"],          # sometimes colder than the top: inversions
        "mdot_discharge_kg_s": np.where(u["off_d"] < 0.2, 0.0, 6.0 * u["d"]),
        "T_discharge_in_K": 303.15 + 15.0 * u["Td"],
        "T_amb_K": 288.15 + 10.0 * np.sin(2 * np.pi * t / 86400),
    }
    params = {"n_layers": 12, "UA_W_K": 20.0, "T_top_start_K": 348.15, "T_bottom_start_K": 318.15}
    out = simulate(fmu_path, t, inputs, params)
    Ec, Ed, El, Es = (out[k].to_numpy() for k in ("E_charge_J", "E_discharge_J", "E_loss_J", "E_stored_J"))
    scale = max(np.max(np.abs(Ec)), np.max(np.abs(Ed)))
    assert scale > 1e10                                   # plenty of heat went through (order 10 GJ)
    assert np.max(np.abs(Ec - Ed - El - Es)) <= BALANCE_RTOL * scale
    # the stored energy agrees with the layer temperatures, evaluated here with the Python water fit
    m_layer = out["m_water_kg"].iloc[0] / 12
    h = wf.h_J_kg(layers(out, 12))
    assert np.max(np.abs(m_layer * np.sum(h - h[0], axis=1) - Es)) <= BALANCE_RTOL * scale
    # the mean flows over each step integrate to the cumulative energies
    for q, e in (("Q_charge_W", Ec), ("Q_discharge_W", Ed), ("Q_loss_W", El)):
        assert np.max(np.abs(np.cumsum(out[q].to_numpy()[1:] * h_s) - e[1:])) <= BALANCE_RTOL * scale
    assert np.all(np.diff(layers(out, 12), axis=1) <= T_ROUND_K)   # never an inversion after a step


# ---- buoyancy mixing ----

def test_initial_inversion_mixes_to_the_mean_enthalpy(fmu_path):
    wf = fit()
    T_top, T_bot, n = 313.15, 353.15, 12
    out = simulate(fmu_path, np.array([0.0, 60.0]), {}, {"n_layers": n, "UA_W_K": 0.0, "T_top_start_K": T_top,
                                                          "T_bottom_start_K": T_bot})
    h_mean = float(np.mean(wf.h_J_kg(np.linspace(T_top, T_bot, n))))
    T_mix = brentq(lambda T: float(wf.h_J_kg(T)) - h_mean, T_top, T_bot, xtol=1e-12)
    T0 = layers(out, n)[0]
    assert np.all(T0 == T0[0])
    assert T0[0] == pytest.approx(T_mix, abs=1e-8)


def test_cold_charge_on_top_mixes_downwards(fmu_path):
    n = 12
    t = np.arange(0, 3600 + 1, 60.0)
    out = simulate(fmu_path, t, {"mdot_charge_kg_s": 1.0, "T_charge_in_K": 303.15},
                   {"n_layers": n, "UA_W_K": 0.0, "k_eff_W_mK": 0.0, "T_top_start_K": 353.15,
                    "T_bottom_start_K": 323.15})
    T = layers(out, n)
    assert np.all(np.diff(T, axis=1) <= T_ROUND_K)        # no cold layer left above a warm one
    # the first step: cold water entering the hot top would sit above warmer water; mixing makes the top layers
    # one block, colder than the top started and warmer than the inflow
    assert T[1, 0] == T[1, 1]
    assert 303.15 < T[1, 0] < 353.15
    # with advection only, no water in the tank can end colder than the inflow nor warmer than the start
    assert T.min() >= 303.15 - T_ROUND_K and T.max() <= 353.15 + T_ROUND_K


# ---- zero flow, high flow: bounds and no oscillation ----

def sign_changes(x, eps=1e-9):
    d = np.diff(x)
    s = np.sign(d[np.abs(d) > eps])
    return int(np.sum(s[1:] != s[:-1]))


@pytest.mark.parametrize("h_s", [1.0, 60.0])
def test_zero_flow_conduction_is_monotone(fmu_path, h_s):
    """Pure conduction from a linear profile in an insulated column: the exact solution moves every point
    monotonically (the upper half cools, the lower half warms, nothing turns), so any turn is a numerical
    oscillation; the energy stays in the tank."""
    n, T_top, T_bot = 32, 353.15, 313.15
    t = np.arange(0, 12 * 3600 + 1, h_s)
    out = simulate(fmu_path, t, {"T_amb_K": 283.15},
                   {"n_layers": n, "V_m3": 0.5, "H_m": 1.5, "UA_W_K": 0.0, "k_eff_W_mK": 20.0,
                    "T_top_start_K": T_top, "T_bottom_start_K": T_bot})
    T = layers(out, n)
    assert T.min() >= T_bot - T_ROUND_K and T.max() <= T_top + T_ROUND_K
    for i in range(n):
        assert sign_changes(T[:, i]) == 0, f"layer {i + 1} turns"
    assert T[-1, 0] < T_top - 5.0 and T[-1, -1] > T_bot + 5.0        # conduction did move heat down
    assert np.max(np.abs(out["E_stored_J"])) <= 1e-12 * m_h_scale(out)
    assert np.all(out["E_loss_J"] == 0.0)


def test_zero_flow_with_losses_no_undershoot(fmu_path):
    """Losses to an ambient as cold as the bottom, with strong conduction: at 1 s and 60 s no layer goes below
    the ambient or above the start, the profile stays stratified, and the 60 s run tracks the 1 s run."""
    n, T_top, T_bot, T_amb = 32, 353.15, 313.15, 313.15
    params = {"n_layers": n, "V_m3": 0.5, "H_m": 1.5, "UA_W_K": 30.0, "k_eff_W_mK": 20.0,
              "T_top_start_K": T_top, "T_bottom_start_K": T_bot}
    runs = {h: layers(simulate(fmu_path, np.arange(0, 12 * 3600 + 1, h), {"T_amb_K": T_amb}, params), n)
            for h in (1.0, 60.0)}
    for T in runs.values():
        assert T.min() >= T_amb - T_ROUND_K
        assert T.max() <= T_top + T_ROUND_K
        assert np.all(np.diff(T, axis=1) <= T_ROUND_K)
    assert np.max(np.abs(runs[60.0] - runs[1.0][::60])) < ZERO_FLOW_60S_VS_1S_K


@pytest.mark.parametrize("V_m3, n, mdot, steps", [(0.1, 16, 90.0, 30), (0.02, 32, 1000.0, 8)])
def test_high_flow_bounded_at_60s(fmu_path, V_m3, n, mdot, steps):
    """Flows that replace the tank's water 50 (0.1 m3) to 3000 (0.02 m3) times per 60 s step, switching on and
    off, with inlet temperatures jumping: every layer stays within the inlet, start and ambient temperatures and
    the balance closes. The second case hits the sub-step cap (N_SUB_MAX), where the model falls back from the
    trapezoidal rule to backward Euler (a ~ 5 per sub-step)."""
    t = np.arange(0, 60.0 * steps + 1, 60.0)
    k = np.arange(t.size)
    inputs = {"mdot_charge_kg_s": np.where(k % 3 == 0, 0.0, 0.9 * mdot),
              "T_charge_in_K": np.where(k % 2, 363.15, 333.15),
              "mdot_discharge_kg_s": np.where(k % 4 == 1, 0.0, mdot),
              "T_discharge_in_K": np.where(k % 5, 303.15, 318.15), "T_amb_K": 293.15}
    out = simulate(fmu_path, t, inputs, {"n_layers": n, "V_m3": V_m3, "H_m": 0.6, "UA_W_K": 1.0,
                                         "T_top_start_K": 343.15, "T_bottom_start_K": 323.15})
    T = layers(out, n)
    assert np.all(np.isfinite(T))
    assert T.min() >= 293.15 - T_ROUND_K and T.max() <= 363.15 + T_ROUND_K
    assert np.all(np.diff(T, axis=1) <= T_ROUND_K)
    Ec, Ed, El, Es = (out[c].to_numpy() for c in ("E_charge_J", "E_discharge_J", "E_loss_J", "E_stored_J"))
    assert np.max(np.abs(Ec - Ed - El - Es)) <= BALANCE_RTOL * max(np.max(np.abs(Ec)), np.max(np.abs(Ed)))


def test_unused_layers_report_the_bottom_layer(fmu_path):
    out = simulate(fmu_path, np.arange(0, 601, 60.0), {"mdot_discharge_kg_s": 2.0}, {"n_layers": 12})
    T = out[LAYERS].to_numpy()
    assert np.all(T[:, 12:] == T[:, [11]])
    assert np.all(out["T_bottom_K"].to_numpy() == T[:, 11])
    assert np.all(out["T_top_K"].to_numpy() == T[:, 0])
    assert np.all(T[:, 0] > T[:, 11])   # stratified: the default profile is 70 C at the top, 40 C at the bottom


@pytest.mark.parametrize("h_s", [1.0, 60.0])
def test_port_coupling_outflows_carry_the_outlet_values_the_master_saw(fmu_path, h_s):
    """port_coupling = 1: each step's charge and discharge heat is exactly the flow times the enthalpy difference
    between the inlet and the outlet temperature output at the step's start (what a master passed on), so a
    master coupling through T_top_K / T_bottom_K conserves energy; the tank's own balance still closes."""
    rng = np.random.default_rng(7)
    t = np.arange(0.0, 6 * 3600.0 + h_s / 2, h_s)
    n = t.size
    md = np.where(rng.uniform(size=n) < 0.3, 0.0, rng.uniform(0.5, 4.0, n))    # a load that cycles on and off
    inputs = {"mdot_charge_kg_s": rng.uniform(0.0, 4.0, n), "T_charge_in_K": rng.uniform(310.0, 320.0, n),
              "mdot_discharge_kg_s": md, "T_discharge_in_K": rng.uniform(295.0, 305.0, n), "T_amb_K": np.full(n, 293.15)}
    out = simulate(fmu_path, t, inputs, {"port_coupling": 1, "T_top_start_K": 315.0, "T_bottom_start_K": 300.0})
    W = fit()
    E_dis = np.diff(out["E_discharge_J"].to_numpy())
    E_chg = np.diff(out["E_charge_J"].to_numpy())
    top, bottom = out["T_top_K"].to_numpy()[:-1], out["T_bottom_K"].to_numpy()[:-1]
    want_dis = md[:-1] * (W.h_J_kg(top) - W.h_J_kg(inputs["T_discharge_in_K"][:-1])) * h_s
    want_chg = inputs["mdot_charge_kg_s"][:-1] * (W.h_J_kg(inputs["T_charge_in_K"][:-1]) - W.h_J_kg(bottom)) * h_s
    scale = np.max(np.abs(want_dis))
    assert np.max(np.abs(E_dis - want_dis)) < 1e-4 * scale   # the fit's h vs the FMU's enthalpy from T: ~1e-6 K
    assert np.max(np.abs(E_chg - want_chg)) < 1e-4 * scale
    end = out.iloc[-1]
    residual = end["E_charge_J"] - end["E_discharge_J"] - end["E_loss_J"] - end["E_stored_J"]
    assert abs(residual) < 1e-9 * (end["E_charge_J"] + end["E_discharge_J"])


def test_port_coupling_refuses_a_step_that_moves_more_than_a_layer(fmu_path):
    from twin.errors import FmuError

    t = np.array([0.0, 60.0])
    with pytest.raises(FmuError, match=r"port_coupling = 1: .* more than a layer holds"):
        simulate(fmu_path, t, {"mdot_discharge_kg_s": 10.0}, {"port_coupling": 1, "V_m3": 0.2})
