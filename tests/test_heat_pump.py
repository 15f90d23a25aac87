"""HeatPump: Carnot-fraction oracle, capacity and part-load limits, minimum on/off times, high-pressure trip,
freeze protection, zero flow, 24 h energy balance, plausibility against published operating points."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq

from twin.fmu import Fmu
from twin.water import coolprop, fit

COP_RTOL = 1e-9              # against the same water fit as the FMU: only solver and rounding differences
T_ATOL_K = 1e-8
BALANCE_RTOL = 1e-9          # energy balances of whole runs (they close to rounding)
CP_T_ATOL_K = 2e-3           # against CoolProp directly: the water fit's enthalpy is within 0.5 J/kg of IAPWS-95
CP_COP_RTOL = 1e-4
PUBLISHED_RTOL = 0.20        # acceptance for published operating points (shared/data/dc_heat_reuse_points/SOURCE.txt)

ETA = 0.55                   # the model's documented default eta_carnot, approaches and limits
APPROACH_K = 3.0
Q_MAX_W = 250e3
PLR_MIN = 0.3
NOMINAL = {"T_evap_in_K": 318.15, "mdot_evap_kg_s": 4.0, "T_cond_in_K": 328.15, "mdot_cond_kg_s": 2.5,
           "on": 1.0, "plr_cmd": 0.8, "T_cond_set_K": 343.15}


def simulate(fmu_path, t_s, inputs, parameters=None) -> pd.DataFrame:
    """Step the HeatPump FMU through t_s, inputs piecewise constant (value i held on [t_i, t_i+1)); row i+1 holds
    the outputs over the step [t_i, t_i+1). Inputs not given keep NOMINAL.

    Like twin.fmu_reference.simulate_table, but the values given at setup carry their port's type: the adapter's
    Fmu.set passes floats to fmi2SetBoolean, which ctypes refuses for the Boolean input `on`.
    """
    t_s = np.asarray(t_s, dtype=float)
    unknown = set(inputs) - set(NOMINAL)
    assert not unknown, f"not inputs of HeatPump: {unknown}"
    u = {k: np.broadcast_to(np.asarray(inputs.get(k, v), dtype=float), t_s.shape) for k, v in NOMINAL.items()}
    names = list(u)
    U = np.column_stack([u[n] for n in names])
    with Fmu(fmu_path("HeatPump")) as fmu:
        first = {n: (bool(U[0, i]) if fmu.port(n).type == "Boolean" else float(U[0, i])) for i, n in enumerate(names)}
        fmu.setup(float(t_s[0]), parameters=parameters, inputs=first)
        outputs = [p.name for p in fmu.ports.values() if p.causality == "output"]
        fmu.bind(names, outputs)
        y = np.empty((t_s.size, len(outputs)))
        y[0] = fmu.get_outputs()
        for k in range(t_s.size - 1):
            y[k + 1] = fmu.step(t_s[k], t_s[k + 1] - t_s[k], U[k])
    frame = pd.DataFrame(y, columns=outputs)
    frame.insert(0, "time_s", t_s)
    for i, n in enumerate(names):
        frame[n + "_in"] = U[:, i]
    return frame


def steady(fmu_path, parameters=None, **inputs) -> pd.Series:
    """The outputs over one 60 s step with constant inputs, starting from rest."""
    return simulate(fmu_path, np.array([0.0, 60.0]), inputs, parameters).iloc[1]


def intervals(frame: pd.DataFrame, flag: str = "running") -> list[tuple[float, float]]:
    """[(start, end)] of the steps over which `flag` was true (row i+1 covers [t_i, t_i+1))."""
    t = frame["time_s"].to_numpy()
    on = frame[flag].to_numpy()[1:] > 0.5
    out, start = [], None
    for k, v in enumerate(on):
        if v and start is None:
            start = t[k]
        if not v and start is not None:
            out.append((start, t[k]))
            start = None
    if start is not None:
        out.append((start, t[-1]))
    return out


# ---- oracle: COP = eta_C T_cond / (T_cond - T_evap) with the approaches --------------------------------------

def _oracle(h_J_kg, T_from_h, T_ei, me, T_ci, mc, Q_cond):
    """Independent solution of the operating point: water outlets from enthalpy, COP from the refrigerant
    temperatures, evaporator heat Q_evap = Q_cond (1 - 1/COP) solved with brentq."""
    T_co = T_from_h(h_J_kg(T_ci) + Q_cond / mc)
    T_cond = T_co + APPROACH_K

    def T_evap(Q_evap):
        return T_from_h(h_J_kg(T_ei) - Q_evap / me) - APPROACH_K

    Q_evap = brentq(lambda q: q - Q_cond * (1 - (T_cond - T_evap(q)) / (ETA * T_cond)), 0.0, Q_cond,
                    xtol=1e-9, rtol=4 * np.finfo(float).eps)
    return {"COP": ETA * T_cond / (T_cond - T_evap(Q_evap)), "T_cond_out_K": T_co,
            "T_evap_out_K": T_evap(Q_evap) + APPROACH_K, "Q_evap_W": Q_evap}


def test_cop_oracle_and_first_law(fmu_path):
    op = dict(T_evap_in_K=318.15, mdot_evap_kg_s=4.0, T_cond_in_K=328.15, mdot_cond_kg_s=2.5, plr_cmd=0.8)
    r = steady(fmu_path, **op)
    Q_cond = 0.8 * Q_MAX_W
    assert r["running"] == 1 and r["Q_cond_W"] == pytest.approx(Q_cond, rel=1e-15)

    # the same water fit as the FMU, inverted with brentq
    wf = fit()
    h_fit = lambda T: float(wf.h_J_kg(T))
    T_fit = lambda h: brentq(lambda T: h_fit(T) - h, 250.0, 420.0, xtol=1e-12, rtol=4 * np.finfo(float).eps)
    o = _oracle(h_fit, T_fit, op["T_evap_in_K"], op["mdot_evap_kg_s"], op["T_cond_in_K"], op["mdot_cond_kg_s"], Q_cond)
    assert r["COP"] == pytest.approx(o["COP"], rel=COP_RTOL)
    assert r["T_cond_out_K"] == pytest.approx(o["T_cond_out_K"], abs=T_ATOL_K)
    assert r["T_evap_out_K"] == pytest.approx(o["T_evap_out_K"], abs=T_ATOL_K)
    assert r["Q_evap_W"] == pytest.approx(o["Q_evap_W"], rel=COP_RTOL)

    # CoolProp's water directly (IAPWS-95 at the loop pressure): the physics, to the accuracy of the fit
    h_cp = lambda T: float(coolprop("H", T))
    T_cp = lambda h: brentq(lambda T: h_cp(T) - h, 274.0, 390.0, xtol=1e-7)
    c = _oracle(h_cp, T_cp, op["T_evap_in_K"], op["mdot_evap_kg_s"], op["T_cond_in_K"], op["mdot_cond_kg_s"], Q_cond)
    assert r["COP"] == pytest.approx(c["COP"], rel=CP_COP_RTOL)
    assert r["T_cond_out_K"] == pytest.approx(c["T_cond_out_K"], abs=CP_T_ATOL_K)
    assert r["T_evap_out_K"] == pytest.approx(c["T_evap_out_K"], abs=CP_T_ATOL_K)

    # first law and the outputs' own consistency
    assert r["Q_cond_W"] == pytest.approx(r["Q_evap_W"] + r["P_el_W"], rel=1e-14)
    assert r["COP"] == pytest.approx(r["Q_cond_W"] / r["P_el_W"], rel=1e-13)
    assert r["T_condensing_K"] == pytest.approx(r["T_cond_out_K"] + APPROACH_K, abs=1e-12)
    assert r["T_evaporating_K"] == pytest.approx(r["T_evap_out_K"] - APPROACH_K, abs=1e-12)
    Tc, Te = r["T_condensing_K"], r["T_evaporating_K"]
    assert r["COP"] == pytest.approx(ETA * Tc / (Tc - Te), rel=COP_RTOL)


def test_negative_lift_caps_cop_at_cop_max(fmu_path):
    # evaporator water (80 C) warmer than the condenser water (30 C): no Carnot limit, COP = COP_max
    r = steady(fmu_path, T_evap_in_K=353.15, T_cond_in_K=303.15, plr_cmd=0.5, parameters={"COP_max": 8.0})
    assert r["running"] == 1
    assert r["T_condensing_K"] < r["T_evaporating_K"]
    assert r["COP"] == 8.0
    assert r["Q_evap_W"] == pytest.approx(0.5 * Q_MAX_W * (1 - 1 / 8.0), rel=1e-14)
    assert r["Q_cond_W"] == pytest.approx(r["Q_evap_W"] + r["P_el_W"], rel=1e-14)


# ---- capacity, setpoint mode, minimum part load ------------------------------------------------------------

def test_setpoint_mode_reaches_setpoint_within_capacity(fmu_path):
    r = steady(fmu_path, T_cond_in_K=328.15, mdot_cond_kg_s=2.0, T_cond_set_K=343.15, parameters={"mode": 1})
    wf = fit()
    Q_need = 2.0 * float(wf.h_J_kg(343.15) - wf.h_J_kg(328.15))
    assert Q_need < Q_MAX_W
    assert r["T_cond_out_K"] == pytest.approx(343.15, abs=T_ATOL_K)
    assert r["Q_cond_W"] == pytest.approx(Q_need, rel=1e-12)
    assert r["plr"] == pytest.approx(Q_need / Q_MAX_W, rel=1e-12)


def test_setpoint_mode_part_load_is_capped_by_plr_cmd(fmu_path):
    # 2.5 kg/s from 55 C to 70 C needs ~157 kW (plr ~0.63); a supervisor's cap of 0.4 wins, no cap reaches the setpoint
    capped = steady(fmu_path, parameters={"mode": 1}, plr_cmd=0.4)
    assert capped["plr"] == pytest.approx(0.4, rel=1e-15)
    assert capped["Q_cond_W"] == pytest.approx(0.4 * Q_MAX_W, rel=1e-12)
    free = steady(fmu_path, parameters={"mode": 1}, plr_cmd=1.0)
    assert free["T_cond_out_K"] == pytest.approx(NOMINAL["T_cond_set_K"], abs=T_ATOL_K)


def test_capacity_limit_and_derating(fmu_path):
    # 5 kg/s from 55 C to 75 C needs ~420 kW: the unit gives Q_cond_max_W and falls short of the setpoint
    high = dict(mdot_cond_kg_s=5.0, T_cond_set_K=348.15, mdot_evap_kg_s=10.0, plr_cmd=1.0)
    r = steady(fmu_path, parameters={"mode": 1}, **high)
    assert r["Q_cond_W"] == pytest.approx(Q_MAX_W, rel=1e-15) and r["plr"] == pytest.approx(1.0, rel=1e-15)
    assert r["T_cond_out_K"] < 348.15 - 5.0
    r = steady(fmu_path, parameters={"mode": 1, "derate": 0.6}, **high)
    assert r["Q_cond_W"] == pytest.approx(0.6 * Q_MAX_W, rel=1e-15)
    r = steady(fmu_path, plr_cmd=1.0, parameters={"derate": 0.6})
    assert r["Q_cond_W"] == pytest.approx(0.6 * Q_MAX_W, rel=1e-15)
    # derated below the minimum part load: the unit cannot run
    r = steady(fmu_path, plr_cmd=1.0, parameters={"derate": 0.2})
    assert r["running"] == 0 and r["state_code"] == 4 and r["Q_cond_W"] == 0


def test_minimum_part_load_is_held(fmu_path):
    for plr_cmd in (0.0, 0.1, 0.29):
        r = steady(fmu_path, plr_cmd=plr_cmd)
        assert r["running"] == 1 and r["plr"] == pytest.approx(PLR_MIN, rel=1e-15)
    r = steady(fmu_path, plr_cmd=0.31)
    assert r["plr"] == pytest.approx(0.31, rel=1e-15)
    # setpoint mode: a setpoint needing less than plr_min is overshot at plr_min, not cycled inside the FMU
    r = steady(fmu_path, T_cond_in_K=340.15, T_cond_set_K=341.15, parameters={"mode": 1})
    assert r["running"] == 1 and r["plr"] == pytest.approx(PLR_MIN, rel=1e-15)
    assert r["T_cond_out_K"] > 341.15 + 5.0


# ---- minimum on/off times --------------------------------------------------------------------------------

@pytest.mark.parametrize("h_s", [1.0, 60.0])
def test_fast_toggling_obeys_min_on_and_off_times(fmu_path, h_s):
    # the command toggles every 60 s (on on [0, 60), off on [60, 120), ...); min on 300 s, min off 600 s:
    # run [0, 300) (held on at plr_min from 60 s), off until the first "on" command 600 s after the stop (960 s)
    t = np.arange(0.0, 2400.0 + h_s / 2, h_s)
    cmd = (np.floor(t / 60.0) % 2 == 0).astype(float)
    out = simulate(fmu_path, t, {"on": cmd, "plr_cmd": 0.9}, {"t_min_on_s": 300.0, "t_min_off_s": 600.0})
    assert intervals(out) == [(0.0, 300.0), (960.0, 1260.0), (1920.0, 2220.0)]
    assert out["n_starts"].iloc[-1] == 3
    step = out.iloc[1:].set_index(out["time_s"].iloc[:-1].to_numpy())      # outputs over [t, t+h), by t
    assert step.loc[0.0, "plr"] == pytest.approx(0.9) and step.loc[0.0, "state_code"] == 1
    assert step.loc[60.0, "plr"] == pytest.approx(PLR_MIN) and step.loc[60.0, "state_code"] == 2
    assert step.loc[360.0, "state_code"] == 3 and step.loc[360.0, "Q_cond_W"] == 0       # commanded on, held off
    assert step.loc[300.0, "state_code"] == 0


@pytest.mark.parametrize("h_s, stop_s", [(1.0, 90.0), (60.0, 120.0)])
def test_min_on_time_ends_at_the_next_communication_point(fmu_path, h_s, stop_s):
    # min on-time 90 s, command off after 30 s: the stop comes at the first step start with >= 90 s run time
    t = np.arange(0.0, 600.0 + h_s / 2, h_s)
    out = simulate(fmu_path, t, {"on": (t < 30.0).astype(float)}, {"t_min_on_s": 90.0})
    assert intervals(out) == [(0.0, stop_s)]


# ---- high-pressure trip and flow loss ---------------------------------------------------------------------

@pytest.mark.parametrize("h_s", [1.0, 60.0])
def test_condenser_flow_loss_trips_and_latches_until_reset(fmu_path, h_s):
    # running; condenser flow lost at 600 s, back at 720 s with the command still on: stays tripped;
    # command off on [1020, 1080) resets the trip; on again: held off until 600 s + t_min_off (900 s) = 1500 s
    t = np.arange(0.0, 2100.0 + h_s / 2, h_s)
    mc = np.where((t >= 600.0) & (t < 720.0), 0.0, 2.5)
    on = np.where((t >= 1020.0) & (t < 1080.0), 0.0, 1.0)
    out = simulate(fmu_path, t, {"mdot_cond_kg_s": mc, "on": on}, {"t_min_off_s": 900.0})
    assert intervals(out) == [(0.0, 600.0), (1500.0, 2100.0)]
    assert intervals(out, "hp_trip") == [(600.0, 1020.0)]
    step = out.iloc[1:].set_index(out["time_s"].iloc[:-1].to_numpy())
    assert step.loc[780.0, "state_code"] == 5 and step.loc[1200.0, "state_code"] == 3
    tripped = step["hp_trip"] > 0.5
    assert np.all(step.loc[tripped, ["Q_cond_W", "Q_evap_W", "P_el_W"]].to_numpy() == 0.0)
    assert np.all(np.isfinite(out.to_numpy()))


def test_condensing_temperature_above_limit_trips(fmu_path):
    # 0.6 kg/s (above the 0.5 kg/s flow switch) and 200 kW would heat the water by ~80 K: the condensing
    # temperature passes T_cond_max_K and the high-pressure switch trips
    t = np.arange(0.0, 301.0, 60.0)
    mc = np.where(t < 120.0, 2.5, 0.6)
    out = simulate(fmu_path, t, {"mdot_cond_kg_s": mc})
    assert intervals(out) == [(0.0, 120.0)]
    assert intervals(out, "hp_trip") == [(120.0, 300.0)]
    # below the limit the same low flow just gives a hot outlet
    r = steady(fmu_path, mdot_cond_kg_s=0.6, plr_cmd=0.3, T_cond_in_K=318.15)
    assert r["running"] == 1 and r["T_condensing_K"] < 368.15


@pytest.mark.parametrize("h_s", [1.0, 60.0])
def test_evaporator_flow_loss_stops_without_latching(fmu_path, h_s):
    t = np.arange(0.0, 1800.0 + h_s / 2, h_s)
    me = np.where((t >= 120.0) & (t < 240.0), 0.0, 4.0)
    out = simulate(fmu_path, t, {"mdot_evap_kg_s": me})
    # stop at 120 s, before the minimum on-time (300 s): a safety stop overrides it; restart 600 s after the stop
    assert intervals(out) == [(0.0, 120.0), (720.0, 1800.0)]
    assert out["hp_trip"].max() == 0
    assert out["n_starts"].iloc[-1] == 2


def test_zero_step_does_not_latch(fmu_path):
    names = list(NOMINAL)
    u = np.array([NOMINAL[n] for n in names])
    with Fmu(fmu_path("HeatPump")) as fmu:
        fmu.setup(0.0, inputs={n: (bool(v) if n == "on" else v) for n, v in NOMINAL.items()})
        fmu.bind(names, ["running", "hp_trip", "n_starts", "E_cond_J"])
        y1 = fmu.step(0.0, 60.0, u).copy()
        u0 = u.copy()
        u0[names.index("mdot_cond_kg_s")] = 0.0
        y0 = fmu.step(60.0, 0.0, u0).copy()          # what would happen: a trip, shown but not latched
        y2 = fmu.step(60.0, 60.0, u).copy()
    assert list(y1[:3]) == [1, 0, 1]
    assert list(y0[:3]) == [0, 1, 1] and y0[3] == y1[3]
    assert list(y2[:3]) == [1, 0, 1] and y2[3] == pytest.approx(2 * y1[3], rel=1e-15)


# ---- freeze protection and zero flow ----------------------------------------------------------------------

def test_freeze_protection_unloads_then_stops(fmu_path):
    # source water at 8 C: the evaporator outlet may not go below T_evap_out_min_K = 4 C
    r = steady(fmu_path, T_evap_in_K=281.15, mdot_evap_kg_s=6.0, plr_cmd=1.0)
    assert r["running"] == 1 and PLR_MIN <= r["plr"] < 1.0
    assert r["T_evap_out_K"] >= 277.15 and r["T_evap_out_K"] == pytest.approx(277.15, abs=1e-6)
    assert r["Q_cond_W"] == pytest.approx(r["Q_evap_W"] + r["P_el_W"], rel=1e-14)
    # too little source flow to carry even plr_min: the unit stops (state 6), nothing frozen, nothing NaN
    r = steady(fmu_path, T_evap_in_K=281.15, mdot_evap_kg_s=1.0, plr_cmd=1.0)
    assert r["running"] == 0 and r["state_code"] == 6 and r["Q_evap_W"] == 0


@pytest.mark.parametrize("h_s", [1.0, 60.0])
@pytest.mark.parametrize("side", ["mdot_evap_kg_s", "mdot_cond_kg_s", "both"])
def test_zero_flow_never_pumps_heat(fmu_path, h_s, side):
    t = np.arange(0.0, 600.0 + h_s / 2, h_s)
    zero = {"mdot_evap_kg_s": 0.0, "mdot_cond_kg_s": 0.0} if side == "both" else {side: 0.0}
    out = simulate(fmu_path, t, zero | {"plr_cmd": 1.0})
    assert np.all(np.isfinite(out.to_numpy()))
    assert out["running"].max() == 0 and out["hp_trip"].max() == 0 and out["state_code"].iloc[-1] == 4
    for q in ("Q_cond_W", "Q_evap_W", "P_el_W", "E_cond_J", "E_evap_J", "E_el_J"):
        assert np.all(out[q] == 0.0), q
    assert np.all(out["T_cond_out_K"] == out["T_cond_in_K_in"]) and np.all(out["T_evap_out_K"] == out["T_evap_in_K_in"])


# ---- 24 h energy balance ------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", [0, 1])
def test_energy_balance_24h_varying_inputs(fmu_path, mode):
    rng = np.random.default_rng(7 + mode)
    t = np.arange(0.0, 86401.0, 60.0)
    n = t.size
    inputs = {
        "T_evap_in_K": 313.15 + 5 * np.sin(t / 5000) + rng.normal(0, 0.5, n),
        "mdot_evap_kg_s": np.where(rng.uniform(size=n) < 0.03, 0.0, rng.uniform(1.0, 6.0, n)),
        "T_cond_in_K": 323.15 + 8 * np.sin(t / 13000) + rng.normal(0, 0.5, n),
        "mdot_cond_kg_s": np.where(rng.uniform(size=n) < 0.03, 0.0, rng.uniform(0.8, 4.0, n)),
        "on": (rng.uniform(size=n) < 0.8).astype(float),
        "plr_cmd": rng.uniform(0.0, 1.0, n),
        "T_cond_set_K": 338.15 + 10 * rng.uniform(size=n),
    }
    out = simulate(fmu_path, t, inputs, {"mode": mode, "t_min_on_s": 300.0, "t_min_off_s": 300.0})
    assert np.all(np.isfinite(out.to_numpy()))
    end = out.iloc[-1]
    assert end["E_cond_J"] > 0.3 * Q_MAX_W * 86400 * 0.2        # the run did pump heat
    assert out["hp_trip"].max() == 1 and out["n_starts"].iloc[-1] > 10   # and exercised the trip and restarts
    # first law over the day, and each side against its enthalpy flows
    assert end["E_cond_J"] == pytest.approx(end["E_evap_J"] + end["E_el_J"], rel=BALANCE_RTOL)
    assert end["H_cond_out_J"] - end["H_cond_in_J"] == pytest.approx(end["E_cond_J"], rel=BALANCE_RTOL)
    assert end["H_evap_in_J"] - end["H_evap_out_J"] == pytest.approx(end["E_evap_J"], rel=BALANCE_RTOL)
    # the cumulative energies are the integrals of the powers reported per step
    step = out.iloc[1:]
    for Q, E in (("Q_cond_W", "E_cond_J"), ("Q_evap_W", "E_evap_J"), ("P_el_W", "E_el_J")):
        assert float(np.sum(step[Q].to_numpy() * 60.0)) == pytest.approx(end[E], rel=BALANCE_RTOL)
    # every step: first law, limits, no heat pumped without flow
    run = step["running"].to_numpy() > 0.5
    np.testing.assert_allclose(step["Q_cond_W"], step["Q_evap_W"] + step["P_el_W"], rtol=1e-13, atol=0)
    assert np.all(step["Q_cond_W"] <= Q_MAX_W * (1 + 1e-15))
    assert np.all((step["plr"][run] >= PLR_MIN * (1 - 1e-12)) & (step["plr"][run] <= 1 + 1e-15))
    assert np.all(step["Q_cond_W"][~run] == 0) and np.all(step["P_el_W"][~run] == 0)
    no_flow = (out["mdot_evap_kg_s_in"].to_numpy()[:-1] < 0.5) | (out["mdot_cond_kg_s_in"].to_numpy()[:-1] < 0.5)
    assert not np.any(run & no_flow)
    assert np.all(step["T_evap_out_K"] >= 277.15 - 1e-9)
    assert np.all(step["COP"][run] >= 1.0) and np.all(step["COP"][run] <= 10.0)


# ---- plausibility against published operating points --------------------------------------------------------

def _published(shared_data) -> pd.DataFrame:
    return pd.read_csv(shared_data / "dc_heat_reuse_points" / "published_operating_points.csv")


def _first_number(text: str) -> float:
    return float(re.match(r"\s*([0-9.]+)", str(text)).group(1))


def _cop_lifting(fmu_path, source_in_C: float, source_out_min_C: float, supply_C: float) -> pd.Series:
    """The model (documented defaults) lifting water from source_in_C to supply_C, condenser water entering 30 K
    below the supply, setpoint mode; a generous source flow keeps the source outlet above source_out_min_C."""
    r = steady(fmu_path, T_evap_in_K=source_in_C + 273.15, mdot_evap_kg_s=10.0, T_cond_in_K=supply_C + 243.15,
               mdot_cond_kg_s=1.5, T_cond_set_K=supply_C + 273.15, parameters={"mode": 1})
    assert r["running"] == 1
    assert r["T_cond_out_K"] == pytest.approx(supply_C + 273.15, abs=1e-6)
    assert r["T_evap_out_K"] >= source_out_min_C + 273.15
    return r


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "published COP 4.33 (1300/300 kW, 25-30 C -> 90 C) needs ~0.82 of the Carnot COP between the refrigerant "
    "temperatures; the model with the documented eta_carnot 0.55 gives 2.92 (-33 %). See models/HeatPump/README.md"))
def test_plausibility_verne_global_25_30C_to_90C(fmu_path, shared_data):
    pts = _published(shared_data)
    row = pts[pts["site"].str.startswith("Verne")].iloc[0]
    cop_published = _first_number(row["heat_out_kW"]) / _first_number(row["hp_electric_kW"])
    lo, hi = (float(x) for x in row["source_temp_C"].split("-"))
    r = _cop_lifting(fmu_path, source_in_C=hi, source_out_min_C=lo, supply_C=_first_number(row["supply_temp_C"]))
    assert r["COP"] == pytest.approx(cop_published, rel=PUBLISHED_RTOL)


def test_plausibility_warm_water_45C_to_75C_beats_the_air_cooled_case(fmu_path, shared_data):
    # SOURCE.txt: warm-water cooling at 45 C lifted to 75 C "should give COP well above" the 4-5 of the
    # 25-30 C -> 90 C case (published 4.33); the model must at least exceed that published COP
    pts = _published(shared_data)
    verne = pts[pts["site"].str.startswith("Verne")].iloc[0]
    hpc = pts[pts["site"].str.contains("HPC")].iloc[0]
    source_C, supply_C = _first_number(hpc["source_temp_C"]), _first_number(hpc["supply_temp_C"])
    r = _cop_lifting(fmu_path, source_in_C=source_C, source_out_min_C=source_C - 5.0, supply_C=supply_C)
    assert r["COP"] > _first_number(verne["heat_out_kW"]) / _first_number(verne["hp_electric_kW"])
