"""KPIs of a finished run, read from its folder (timeseries.parquet, scenario.toml): no engine import.

Names as in the standards: PUE = E_DC / E_IT (ISO/IEC 30134-2); ERF = E_reused / E_DC (ISO/IEC 30134-6);
ERE = (E_DC - E_reused) / E_IT; heat recovery ratio = E_reused / E_IT.

Which recorded signals are the IT energy, the cooling energy, the reused heat... is declared in the
scenario's [kpis] table (cumulative energies, J). Decisions, stated once here:
- E_DC = E_IT + E_cooling (pumps and dry-cooler fans of the data centre's loops) + E_air_heat / air_cooling_COP
  (the room air handling that removes the heat not captured by the liquid).
- E_reused is the data centre's heat that left its boundary for reuse: the heat pump's evaporator heat (and
  any direct exchanger heat to DH). The heat pump's electricity is accounted on the heat side: it is not in E_DC.
- Grid CO2 and electricity cost are integrated step by step (energy of each step times that step's carbon
  intensity and price); avoided CO2 is the boiler fuel that the heat delivered to DH replaced.
"""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .errors import TwinError

J_PER_KWH = 3.6e6
J_PER_MWH = 3.6e9

DEFAULTS = {"air_cooling_COP": 4.0, "heat_price_EUR_MWh": 40.0, "boiler_efficiency": 0.92,
            "boiler_CO2_g_kWh": 202.0, "boiler_fuel_price_EUR_MWh": 45.0}


def _read_config(run_dir: Path) -> tuple[dict, dict, dict]:
    data = tomllib.loads((run_dir / "scenario.toml").read_text())
    return data.get("kpis", {}), data.get("balance", {}), data.get("run", {})


def _as_list(v) -> list[str]:
    return [v] if isinstance(v, str) else list(v or [])


def _columns_needed(kpis: dict, balance: dict) -> list[str]:
    cols = {"time_s"}
    for k, v in kpis.items():
        if k.startswith("E_") or k.endswith("_signal"):
            cols.update(_as_list(v))
    for k in ("sources", "sinks", "stored"):
        cols.update(balance.get(k, []))
    return sorted(cols)


def _delta(df: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """Per-row increments (row 0 = 0) of the sum of cumulative columns."""
    if not cols:
        return np.zeros(len(df))
    total = df[cols].sum(axis=1).to_numpy()
    return np.concatenate(([0.0], np.diff(total)))


def compute(run_dir: Path) -> dict:
    run_dir = Path(run_dir)
    kpis_cfg, balance, run = _read_config(run_dir)
    cfg = DEFAULTS | {k: v for k, v in kpis_cfg.items() if k in DEFAULTS}
    cols = _columns_needed(kpis_cfg, balance)
    available = set(pq.ParquetFile(run_dir / "timeseries.parquet").schema_arrow.names)
    missing = [c for c in cols if c not in available]
    if missing:
        raise TwinError(f"{run_dir / 'timeseries.parquet'}: the [kpis]/[balance] signals {missing} were not recorded")
    df = pd.read_parquet(run_dir / "timeseries.parquet", columns=cols)
    info = run_dir / "run.json"  # the start actually run (a caller may have changed the scenario's)
    start = pd.Timestamp(json.loads(info.read_text())["start"] if info.exists() else run.get("start", "2023-01-01T00:00:00"))
    # a row holds the increments of the step that ended at its time: label it by the step's start
    step_start_s = df["time_s"].shift(1).fillna(df["time_s"].iloc[0])
    df["month"] = (start + pd.to_timedelta(step_start_s, unit="s")).dt.strftime("%Y-%m")
    d = {k: _delta(df, _as_list(kpis_cfg.get(k))) for k in
         ("E_IT_J", "E_cooling_J", "E_air_heat_J", "E_hp_el_J", "E_reused_J", "E_heat_to_dh_J", "E_boiler_J",
          "E_unmet_J", "E_delivered_J", "E_drycooler_J", "E_throttled_J", "E_pump_el_J")}
    d["E_DC_J"] = d["E_IT_J"] + d["E_cooling_J"] + d["E_air_heat_J"] / cfg["air_cooling_COP"]
    d["E_grid_J"] = d["E_DC_J"] + d["E_hp_el_J"]
    price = df[kpis_cfg["price_signal"]].to_numpy() if "price_signal" in kpis_cfg else None
    carbon = df[kpis_cfg["carbon_signal"]].to_numpy() if "carbon_signal" in kpis_cfg else None
    d["cost_EUR"] = d["E_grid_J"] / J_PER_MWH * price if price is not None else np.zeros(len(df))
    d["CO2_grid_kg"] = d["E_grid_J"] / J_PER_KWH * carbon / 1000.0 if carbon is not None else np.zeros(len(df))
    frame = pd.DataFrame(d)
    frame["month"] = df["month"]
    year = _summarise(frame.drop(columns="month").sum(), cfg)
    months = {m: _summarise(g.drop(columns="month").sum(), cfg) for m, g in frame.groupby("month", sort=True)}
    result = {"period": {"start": str(start), "end_s": float(df["time_s"].iloc[-1]), "rows": int(len(df))},
              "total": year, "monthly": months, "assumptions": cfg}
    service = run_dir / "cluster_service.json"      # job service levels of a run with a cluster
    if service.exists():
        result["jobs"] = json.loads(service.read_text())
    if any(balance.get(k) for k in ("sources", "sinks", "stored")):
        result["energy_balance"] = energy_balance(run_dir, balance)
    return result


def _ratio(a: float, b: float) -> float | None:
    return float(a / b) if b > 0 else None


def _summarise(s: pd.Series, cfg: dict) -> dict:
    E = {k: float(v) for k, v in s.items()}
    boiler_fuel_J = E["E_boiler_J"] / cfg["boiler_efficiency"]
    avoided_fuel_J = E["E_heat_to_dh_J"] / cfg["boiler_efficiency"]
    return {
        "PUE": _ratio(E["E_DC_J"], E["E_IT_J"]),
        "ERF": _ratio(E["E_reused_J"], E["E_DC_J"]),
        "ERE": _ratio(E["E_DC_J"] - E["E_reused_J"], E["E_IT_J"]),
        "heat_recovery_ratio": _ratio(E["E_reused_J"], E["E_IT_J"]),
        "heat_pump_SCOP": _ratio(E["E_heat_to_dh_J"], E["E_hp_el_J"]),
        "E_IT_MWh": E["E_IT_J"] / J_PER_MWH,
        "E_DC_MWh": E["E_DC_J"] / J_PER_MWH,
        "E_cooling_MWh": E["E_cooling_J"] / J_PER_MWH,
        "E_hp_el_MWh": E["E_hp_el_J"] / J_PER_MWH,
        "pump_el_MWh": E["E_pump_el_J"] / J_PER_MWH,
        "heat_reused_MWh": E["E_reused_J"] / J_PER_MWH,
        "heat_to_dh_MWh": E["E_heat_to_dh_J"] / J_PER_MWH,
        "heat_delivered_MWh": E["E_delivered_J"] / J_PER_MWH,
        "boiler_heat_MWh": E["E_boiler_J"] / J_PER_MWH,
        "unmet_demand_MWh": E["E_unmet_J"] / J_PER_MWH,
        "drycooler_heat_MWh": E["E_drycooler_J"] / J_PER_MWH,
        "throttled_IT_MWh": E["E_throttled_J"] / J_PER_MWH,
        "CO2_grid_t": E["CO2_grid_kg"] / 1000.0,
        "CO2_avoided_boiler_t": avoided_fuel_J / J_PER_KWH * cfg["boiler_CO2_g_kWh"] / 1e6,
        "CO2_boiler_t": boiler_fuel_J / J_PER_KWH * cfg["boiler_CO2_g_kWh"] / 1e6,
        "electricity_cost_EUR": E["cost_EUR"],
        "boiler_fuel_cost_EUR": boiler_fuel_J / J_PER_MWH * cfg["boiler_fuel_price_EUR_MWh"],
        "heat_revenue_EUR": E["E_heat_to_dh_J"] / J_PER_MWH * cfg["heat_price_EUR_MWh"],
    }


def energy_balance(run_dir: Path, balance: dict) -> dict:
    """sources - sinks - (stored_end - stored_start), as a fraction of the sources."""
    cols = sorted(set(balance.get("sources", [])) | set(balance.get("sinks", [])) | set(balance.get("stored", [])))
    pf = pq.ParquetFile(Path(run_dir) / "timeseries.parquet")
    first = pf.read_row_group(0, columns=cols).slice(0, 1).to_pandas().iloc[0]
    last_group = pf.read_row_group(pf.num_row_groups - 1, columns=cols).to_pandas()
    last = last_group.iloc[-1]
    src = sum(last[c] - first[c] for c in balance.get("sources", []))
    snk = sum(last[c] - first[c] for c in balance.get("sinks", []))
    sto = sum(last[c] - first[c] for c in balance.get("stored", []))
    residual = src - snk - sto
    return {"sources_MWh": src / J_PER_MWH, "sinks_MWh": snk / J_PER_MWH, "stored_change_MWh": sto / J_PER_MWH,
            "residual_MWh": residual / J_PER_MWH, "residual_rel": residual / src if src else None}


def write(run_dir: Path) -> dict:
    result = _finite(compute(run_dir))
    (Path(run_dir) / "kpis.json").write_text(json.dumps(result, indent=2, allow_nan=False))
    return result


def _finite(x):
    """NaN and infinities become null (JSON has neither)."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x
