"""report.html of a finished run folder: the KPIs as tables and the plots people would rather look at.

Reads kpis.json and timeseries.parquet only (no engine import), so it works on any finished or interrupted run.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from .units import split_unit  # noqa: E402

MAX_TEMPERATURE_SIGNALS = 8


def _monthly_energy_plot(k: dict, path: Path) -> None:
    months = list(k["monthly"])
    keys = [("heat_to_dh_MWh", "heat to DH"), ("boiler_heat_MWh", "backup boiler"),
            ("drycooler_heat_MWh", "dry cooler"), ("unmet_demand_MWh", "unmet demand"), ("E_IT_MWh", "IT electricity")]
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / len(keys)
    for i, (key, label) in enumerate(keys):
        ax.bar([m + (i - len(keys) / 2) * width for m in range(len(months))],
               [k["monthly"][m][key] for m in months], width=width, label=label)
    ax.set_xticks(range(len(months)), months, rotation=45, ha="right")
    ax.set_ylabel("MWh")
    ax.set_title("Monthly energy")
    ax.legend(ncol=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _temperature_plot(run_dir: Path, path: Path) -> bool:
    names = pq.ParquetFile(run_dir / "timeseries.parquet").schema_arrow.names
    temps = [n for n in names if split_unit(n)[1] == "K" and "[" not in n and not n.startswith("inputs.")
             and "set" not in n][:MAX_TEMPERATURE_SIGNALS]
    if not temps:
        return False
    df = pd.read_parquet(run_dir / "timeseries.parquet", columns=["time_s"] + temps)
    span_d = df["time_s"].iloc[-1] / 86400.0
    bucket_s = 86400.0 if span_d > 20 else 3600.0 if span_d > 1 else 60.0
    g = df.groupby((df["time_s"] // bucket_s) * bucket_s / 86400.0).mean()
    fig, ax = plt.subplots(figsize=(10, 4))
    for n in temps:
        ax.plot(g.index, g[n] - 273.15, label=n, lw=1)
    ax.set_xlabel("day")
    ax.set_ylabel("C")
    ax.set_title(f"Temperatures ({'daily' if bucket_s == 86400 else 'hourly' if bucket_s == 3600 else 'minute'} means)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _table(rows: dict) -> str:
    def fmt(v):
        return "-" if v is None else f"{v:,.3f}" if isinstance(v, float) else html.escape(str(v))

    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{fmt(v)}</td></tr>" for k, v in rows.items()) + "</table>"


def write(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    k = json.loads((run_dir / "kpis.json").read_text())
    info = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    _monthly_energy_plot(k, run_dir / "monthly_energy.png")
    has_t = _temperature_plot(run_dir, run_dir / "temperatures.png")
    parts = [f"<h1>twin run: {html.escape(info.get('name') or run_dir.name)}</h1>",
             f"<p>status: <b>{html.escape(info.get('status', '?'))}</b>, steps {info.get('steps_done')} of "
             f"{info.get('n_steps')}, step {info.get('step_s')} s, seed {info.get('seed')}</p>",
             "<h2>Totals</h2>", _table(k["total"])]
    if "jobs" in k:
        parts += ["<h2>Jobs (service levels)</h2>", _table(k["jobs"])]
    if "energy_balance" in k:
        parts += ["<h2>Energy balance</h2>", _table(k["energy_balance"])]
    parts += ['<h2>Monthly energy</h2><img src="monthly_energy.png">']
    if has_t:
        parts += ['<h2>Temperatures</h2><img src="temperatures.png">']
    months = pd.DataFrame(k["monthly"]).T
    parts += ["<h2>Monthly KPIs</h2>", months.to_html(float_format=lambda v: f"{v:,.3f}", na_rep="-")]
    parts += ["<h2>Assumptions</h2>", _table(k["assumptions"])]
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>twin report</title><style>"
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}th{text-align:left}</style></head><body>"
            + "\n".join(parts) + "</body></html>")
    out = run_dir / "report.html"
    out.write_text(page)
    return out
