"""`twin run` and `twin resume`: a scenario in, a run folder out.

The run folder (DESIGN.md): timeseries.parquet (streamed), kpis.json, scenario.toml (the scenario as run),
run.json (seed, versions, FMU hashes, status), events.parquet, report.html with plots. The scenario is
validated before the folder is touched: an invalid scenario leaves nothing behind.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import tomllib
import platform
import shutil
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import kpis, scenario as scenario_mod
from .engine import Engine, RunResult, read_checkpoint
from .engine import input_hashes as engine_input_hashes
from .errors import TwinError
from .output import SeriesWriter

PACKAGES = ("twin", "fmpy", "simpy", "numpy", "scipy", "pandas", "pyarrow", "CoolProp")


def versions() -> dict:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def prepare_out_dir(out_dir: Path) -> None:
    """Use out_dir for a new run: empty or a previous twin run (replaced); refuse anything else."""
    if out_dir.exists():
        if any(out_dir.iterdir()) and not (out_dir / "run.json").exists():
            raise TwinError(f"{out_dir}: exists and is not a twin run folder; choose another --out")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)


def _write_scenario_copy(sc: scenario_mod.Scenario, out_dir: Path) -> None:
    r = sc.run
    header = [f"# The scenario as run: {sc.path.resolve()}",
              f"# run as: start {r.start.isoformat()}, duration {r.duration_s} s, step {r.step_s} s, seed {r.seed}"
              " (run.json holds these too; they win over [run] below if a caller changed them)",
              *(f"# inputs.{n}.file resolves to {s.path}" for n, s in sc.inputs.items()), ""]
    (out_dir / "scenario.toml").write_text("\n".join(header) + sc.text)


ALARM_PORTS = ("overtemp", "hp_trip", "tripped")   # 0/1 outputs of the project's FMUs that are alarms


def _alarm_rows(timeseries: Path) -> list[dict]:
    """An alarm event where an alarm output rises above 0.5, an alarm_end where it falls back."""
    names = [n for n in pq.ParquetFile(timeseries).schema_arrow.names if n.rsplit(".", 1)[-1] in ALARM_PORTS]
    if not names:
        return []
    df = pq.read_table(timeseries, columns=["time_s"] + names).to_pandas()
    rows = []
    for n in names:
        on = (df[n].to_numpy() > 0.5).astype(int)
        edges = np.flatnonzero(np.diff(on)) + 1
        comp, port = n.rsplit(".", 1)
        for i in edges:
            rows.append({"time_s": float(df["time_s"].iloc[i]), "kind": "alarm" if on[i] else "alarm_end",
                         "source": comp, "detail": port})
    return rows


def _write_events(out_dir: Path, engine: Engine) -> None:
    """events.parquet (jobs, faults, alarms) and, with a cluster, cluster_service.json (job service levels)."""
    schema = pa.schema([("time_s", pa.float64()), ("kind", pa.string()), ("source", pa.string()), ("detail", pa.string())])
    rows = list(engine.fault_log) + (engine.cluster.event_rows() if engine.cluster is not None else [])
    rows += _alarm_rows(out_dir / "timeseries.parquet")
    rows.sort(key=lambda r: r["time_s"])          # stable: faults before job events of the same time
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), out_dir / "events.parquet")
    if engine.cluster is not None and engine.cluster.cluster is not None:
        import dataclasses
        import math

        sl = dataclasses.asdict(engine.cluster.cluster.service_levels())
        sl = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in sl.items()}
        (out_dir / "cluster_service.json").write_text(json.dumps(sl, indent=2))


def _run_info(sc, engine: Engine, result: RunResult | None, status: str) -> dict:
    return {"scenario": str(sc.path.resolve()), "name": sc.run.name, "seed": sc.run.seed,
            "start": sc.run.start.isoformat(), "step_s": sc.run.step_s, "duration_s": sc.run.duration_s,
            "steps_done": engine.k, "n_steps": engine.n_steps, "status": status,
            "wall_s": None if result is None else result.wall_s,
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "versions": versions(), "fmus": engine.site.fmu_info()}


def _finish(sc, engine: Engine, result: RunResult, out_dir: Path, report: bool) -> RunResult:
    status = "interrupted" if result.interrupted else "complete"
    (out_dir / "run.json").write_text(json.dumps(_run_info(sc, engine, result, status), indent=2))
    _write_events(out_dir, engine)
    if result.interrupted:
        print(f"twin: interrupted at t = {engine.t_s(engine.k):g} s (step {engine.k} of {engine.n_steps}); "
              f"{out_dir / 'timeseries.parquet'} holds what was simulated and is readable", file=sys.stderr)
    kpis.write(out_dir)
    if report:
        from . import report as report_mod

        report_mod.write(out_dir)
    return result


def run(scenario_path: Path, out_dir: Path, *, checkpoint_every_s: int | None = None, progress: bool = True,
        report: bool = True) -> RunResult:
    sc = scenario_mod.load(scenario_path)          # raises ScenarioError before anything is written
    return run_scenario(sc, out_dir, checkpoint_every_s=checkpoint_every_s, progress=progress, report=report)


def _check_checkpointable(engine: Engine, checkpoint_every_s: int | None) -> None:
    if not checkpoint_every_s:
        return
    info = engine.site.fmu_info()
    stuck = [n for n, c in engine.site.components.items() if n in info and not c.fmu.can_serialize]
    if stuck:
        raise TwinError(f"checkpoints asked for, but the FMUs of {', '.join(stuck)} cannot serialize their state; "
                        f"run without --checkpoint-every")


def _failed(sc, engine: Engine, out_dir: Path, error: BaseException) -> None:
    """A run that stopped on an error says so in run.json (what was simulated stays in timeseries.parquet)."""
    info = _run_info(sc, engine, None, "failed")
    info["error"] = str(error)
    (out_dir / "run.json").write_text(json.dumps(info, indent=2))


def run_scenario(sc: scenario_mod.Scenario, out_dir: Path, *, checkpoint_every_s: int | None = None,
                 progress: bool = True, report: bool = True) -> RunResult:
    """Run a validated scenario (possibly with its [run] changed, e.g. a shorter horizon for a test)."""
    engine = Engine(sc)
    try:
        _check_checkpointable(engine, checkpoint_every_s)
        prepare_out_dir(out_dir)
        _write_scenario_copy(sc, out_dir)
        (out_dir / "run.json").write_text(json.dumps(_run_info(sc, engine, None, "running"), indent=2))
        engine.setup()
        try:
            result = engine.run(out_dir, checkpoint_every_s=checkpoint_every_s, progress=progress)
        except TwinError as e:
            _failed(sc, engine, out_dir, e)
            raise
        return _finish(sc, engine, result, out_dir, report)
    finally:
        engine.site.close()


def resume(checkpoint_path: Path, out_dir: Path | None = None, *, checkpoint_every_s: int | None = None,
           progress: bool = True, report: bool = True) -> RunResult:
    """Continue a run from a checkpoint. The new run folder gets the rows before the checkpoint copied from
    the original run's timeseries.parquet, then the rest."""
    blob = read_checkpoint(checkpoint_path)
    original_dir = checkpoint_path.resolve().parent.parent
    sc = scenario_mod.validate(tomllib.loads(blob["scenario_text"]), Path(blob["scenario_path"]), blob["scenario_text"])
    run = blob["run"]      # the [run] actually run (a caller may have changed the file's)
    sc = dataclasses.replace(sc, run=dataclasses.replace(sc.run, start=_dt.datetime.fromisoformat(run["start"]),
                                                         duration_s=run["duration_s"], step_s=run["step_s"]))
    changed = [n for n, h in engine_input_hashes(sc).items() if blob["input_sha256"].get(n) != h]
    if changed:
        raise TwinError(f"{checkpoint_path}: the input files of {', '.join(changed)} changed since the checkpoint was "
                        f"written; a resumed run would not continue the same run")
    out_dir = out_dir or original_dir.with_name(original_dir.name + "-resumed")
    if out_dir.resolve() == original_dir.resolve():
        raise TwinError(f"{out_dir}: resume writes a new run folder; choose another --out than the checkpoint's run")
    engine = Engine(sc)
    try:
        now = engine.site.fmu_info()
        moved = [n for n, f in blob["fmus"].items() if now.get(n, {}).get("sha256") != f["sha256"]]
        if moved:
            raise TwinError(f"{checkpoint_path}: the FMUs of {', '.join(moved)} differ from the ones the checkpoint "
                            f"was written with (rebuilt or replaced); resume with the same FMUs")
        engine.setup()
        engine.restore(blob)
        prepare_out_dir(out_dir)
        _write_scenario_copy(sc, out_dir)
        writer = SeriesWriter(out_dir / "timeseries.parquet", engine.site.recorded_names, sc.run.chunk_rows)
        writer.copy_from(original_dir / "timeseries.parquet", blob["rows_written"])
        result = engine.run(out_dir, checkpoint_every_s=checkpoint_every_s, progress=progress, writer=writer,
                            record_first_row=False)
        return _finish(sc, engine, result, out_dir, report)
    finally:
        engine.site.close()
