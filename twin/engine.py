"""The co-simulation engine: a SimPy environment with integer time ticks that steps the plant every
communication step, streams the recorded signals, and writes checkpoints.

Time is an integer count of ticks (TICKS_PER_S per second); seconds are computed from ticks, never
accumulated. The plant process wakes at the end of each step [t, t+h) and steps the site over it, so every
SimPy event inside the step (job arrivals and completions, faults) has happened before the step is taken.
"""
from __future__ import annotations

import io
import json
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import simpy

from .errors import TwinError
from .inputs import InputCursor, read_series
from .output import SeriesWriter
from .scenario import Scenario
from .site import Site

TICKS_PER_S = 1000
CHECKPOINT_VERSION = 1


@dataclass
class RunResult:
    out_dir: Path
    steps_done: int
    n_steps: int
    interrupted: bool
    wall_s: float


class Engine:
    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        run = scenario.run
        self.h_s = float(run.step_s)
        self.h_ticks = run.step_s * TICKS_PER_S
        self.n_steps = run.n_steps
        import pandas as pd

        start = pd.Timestamp(run.start)
        series = {name: read_series(name, spec.path, start, spec.interpolate) for name, spec in scenario.inputs.items()}
        self.k = 0                       # steps done
        self.env = simpy.Environment(initial_time=0)
        self.fault_log: list[dict] = []  # faults that happened (events.parquet)
        self.cluster = None
        if scenario.cluster is not None:
            from .cluster.component import ClusterComponent

            self.cluster = ClusterComponent(scenario.cluster, lambda: self.env, TICKS_PER_S,
                                            self._hourly_signals(series, scenario.cluster.signal_refs))
            self.cluster.seed = scenario.run.seed     # the fitted power models' noise
        self.site = Site(scenario, cluster=self.cluster)
        self.cursor = InputCursor(series, self.site.series_refs, self.h_s)

    def _hourly_signals(self, series: dict, refs: dict) -> dict:
        """Hourly means of the thermal-dispatch signals over the run (hour k covers [3600 k, 3600 (k+1)) s)."""
        n = -(-self.scenario.run.duration_s // 3600)
        t0 = np.arange(n) * 3600.0
        out = {}
        for name, ref in refs.items():
            _, s_name, column = ref.split(".", 2)
            out[name] = series[s_name].step_means(column, t0, 3600.0)
        return out

    # ---- time ----

    def t_s(self, k: int) -> float:
        return (k * self.h_ticks) / TICKS_PER_S

    # ---- run ----

    def setup(self) -> None:
        self.site.setup(0.0)
        if self.site.series_refs:
            self.site.z[self.site.series_slice] = self.cursor.row(0)

    def run(self, out_dir: Path, *, checkpoint_every_s: int | None = None, until_step: int | None = None,
            progress: bool = True, writer: SeriesWriter | None = None, record_first_row: bool = True) -> RunResult:
        """Run from the current step to until_step (default: the end), streaming rows into out_dir."""
        out_dir = Path(out_dir)
        site, z, n_rec = self.site, self.site.z, self.site.n_recorded
        end = self.n_steps if until_step is None else min(until_step, self.n_steps)
        if writer is None:
            writer = SeriesWriter(out_dir / "timeseries.parquet", site.recorded_names, self.scenario.run.chunk_rows)
        if record_first_row:
            writer.append(self.t_s(self.k), z[:n_rec])
        ckpt_every = None if not checkpoint_every_s else max(1, checkpoint_every_s // self.scenario.run.step_s)
        bar = _progress(self, end, progress)
        progress_every = max(1, int(3600 // self.h_s))  # one update per simulated hour
        series_slice, cursor, has_series = site.series_slice, self.cursor, bool(site.series_refs)
        interrupted = False
        from . import fastloop

        fast = fastloop.FastLoop(site) if fastloop.supported(site) and fastloop.available() else None
        wall0 = time.perf_counter()
        env = self.env
        engine = self

        def plant():
            # Without a cluster, steps are taken in batches up to the next event someone else scheduled (a
            # fault): between two such events nothing but the plant happens, so one SimPy timeout per batch gives
            # the same results as one per step, for a fraction of the cost. The cluster reports its energy up to
            # the environment's present, so with one the plant wakes at the end of every step. An event at the
            # end of a step is processed before that step is taken.
            k = engine.k
            h_ticks = engine.h_ticks
            while k < end:
                nxt = env.peek()
                batch = end - k
                if engine.cluster is not None:
                    batch = 1
                elif nxt != simpy.core.Infinity:
                    batch = max(1, min(batch, (int(nxt) - env.now) // h_ticks))
                if ckpt_every:
                    batch = min(batch, ckpt_every - k % ckpt_every)
                yield _urgent_timeout(env, batch * h_ticks)
                if fast is not None:
                    stop = k + batch
                    while k < stop:
                        m = min(stop - k, writer.space(), progress_every)
                        rows = cursor.rows(k, m) if has_series else None
                        if rows is not None:
                            m = len(rows)
                        done = fast.run(k, m, h_ticks, TICKS_PER_S, rows, writer.reserve(m))
                        writer.commit(done)          # the rows computed before a failure are kept
                        k += done
                        engine.k = k
                        if bar is not None:
                            bar.update(done * engine.h_s / 86400.0)
                        fast.raise_failure()
                else:
                    for _ in range(batch):
                        t0 = (k * h_ticks) / TICKS_PER_S
                        if has_series:
                            z[series_slice] = cursor.row(k)
                        site.step(t0, engine.h_s)
                        k += 1
                        engine.k = k
                        writer.append(((k * h_ticks) / TICKS_PER_S), z[:n_rec])
                        if bar is not None and k % progress_every == 0:
                            bar.update(progress_every * engine.h_s / 86400.0)
                if ckpt_every and k % ckpt_every == 0 and k < end:
                    writer.flush()
                    engine.checkpoint(out_dir / "checkpoints" / f"step_{k:09d}.ckpt", writer.rows_written)

        for f in self.scenario.faults:       # the faults still to come (on a resume: from the checkpoint's time)
            if f.at_s * TICKS_PER_S >= env.now:
                env.process(self._fault(f, f.at_s, f.value, "fault"))
            if f.until_s is not None and f.until_s * TICKS_PER_S >= env.now:
                env.process(self._fault(f, f.until_s, f.value_after, "fault_end"))
        try:
            proc = env.process(plant())
            env.run(until=proc)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            writer.close()
            if bar is not None:
                bar.close()
        return RunResult(out_dir, self.k, end, interrupted, time.perf_counter() - wall0)

    def _fault(self, fault, t_s: int, value: float, kind: str):
        """A fault's SimPy process: at t_s, after the plant step that ends there, the port takes the value; it
        acts from the next step on."""
        yield self.env.timeout(t_s * TICKS_PER_S - self.env.now)
        self.site.components[fault.component].fmu.set({fault.port: value})
        self.fault_log.append({"time_s": float(t_s), "kind": kind, "source": fault.component,
                               "detail": f"{fault.port} = {value:g}" + (f" ({fault.description})" if fault.description else "")})

    # ---- checkpoints ----

    def checkpoint(self, path: Path, rows_written: int) -> None:
        """Everything needed to continue bit-identically: the scenario, the step, the site's whole state."""
        path.parent.mkdir(parents=True, exist_ok=True)
        run = self.scenario.run
        blob = {"version": CHECKPOINT_VERSION, "scenario_path": str(self.scenario.path.resolve()),
                "scenario_text": self.scenario.text, "k": self.k, "rows_written": rows_written,
                "run": {"start": run.start.isoformat(), "duration_s": run.duration_s, "step_s": run.step_s},
                "input_sha256": input_hashes(self.scenario), "fmus": self.site.fmu_info(),
                "fault_log": list(self.fault_log), "site": self.site.get_state()}
        tmp = path.with_suffix(".part")
        with open(tmp, "wb") as f:
            pickle.dump(blob, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)

    def restore(self, blob: dict) -> None:
        self.k = blob["k"]
        self.env = simpy.Environment(initial_time=self.k * self.h_ticks)   # before the site: the cluster lives in it
        self.site.set_state(blob["site"])
        self.fault_log = list(blob.get("fault_log", []))


def _urgent_timeout(env: simpy.Environment, delay: int) -> simpy.Event:
    """A timeout that, at its time, comes before the ordinary events of that time: the plant steps over [t-h, t)
    first; a job or fault event at t then acts from the next step on."""
    ev = simpy.Event(env)
    ev._ok = True
    ev._value = None
    env.schedule(ev, simpy.core.URGENT, delay)
    return ev


def input_hashes(scenario: Scenario) -> dict:
    from .fmu import file_sha256

    return {name: file_sha256(spec.path) for name, spec in scenario.inputs.items()}


def read_checkpoint(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            blob = pickle.load(f)
    except FileNotFoundError as e:
        raise TwinError(f"{path}: no such checkpoint") from e
    except (pickle.UnpicklingError, EOFError) as e:
        raise TwinError(f"{path}: not a twin checkpoint ({e})") from e
    if not isinstance(blob, dict) or blob.get("version") != CHECKPOINT_VERSION:
        raise TwinError(f"{path}: not a twin checkpoint of version {CHECKPOINT_VERSION}")
    return blob


def _progress(engine: Engine, end: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    days = (end - engine.k) * engine.h_s / 86400.0
    return tqdm(total=round(days, 3), unit="d", file=sys.stderr, mininterval=0.5, leave=False,
                desc=f"{engine.scenario.run.name or 'run'}: simulated days",
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} d [{elapsed}<{remaining}, {rate_fmt}]")
