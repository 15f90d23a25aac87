"""Benchmarks (never timed tests): run with `twin bench`. Medians of repeated runs, ratios from the same run."""
from __future__ import annotations

import statistics
from pathlib import Path
import time

import numpy as np

from . import fmu_build
from .fmu import Fmu


def _median_us_per_step(fn, n_steps: int, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(n_steps)
        samples.append((time.perf_counter() - t0) / n_steps * 1e6)
    return statistics.median(samples)


def bench_fmu_steps(n_steps: int = 2000, repeats: int = 7, h_s: float = 60.0) -> list[dict]:
    """Cost of one communication step of each project FMU through the adapter's hot path (``make_stepper``: all
    Real inputs set and all outputs read in one batched call each), against fmpy's per-variable high-level calls,
    at the inputs' start values."""
    rows = []
    for model in fmu_build.model_names():
        path = fmu_build.ensure_built(model)
        with Fmu(path) as fmu:
            fmu.setup(0.0)
            inputs = [p for p in fmu.ports.values() if p.causality == "input" and p.type == "Real"]
            outputs = [p.name for p in fmu.ports.values() if p.causality == "output"]
            u = np.array([float(p.start) for p in inputs])
            fmu.bind([p.name for p in inputs], outputs)
            z = np.zeros(len(inputs) + len(outputs))
            z[:len(inputs)] = u
            stepper = fmu.make_stepper(z, np.arange(len(inputs)), len(inputs))
            t = [0.0]

            def adapter(n):
                for _ in range(n):
                    stepper(t[0], h_s)
                    t[0] += h_s

            slave = fmu._slave
            in_vr = [p.vr for p in inputs]
            out_ports = [fmu.port(n) for n in outputs if fmu.port(n).type == "Real"]
            out_vr = [p.vr for p in out_ports]
            values = list(u)

            def per_variable(n):
                for _ in range(n):
                    for vr, v in zip(in_vr, values):
                        slave.setReal([vr], [v])
                    slave.doStep(t[0], h_s)
                    t[0] += h_s
                    for vr in out_vr:
                        slave.getReal([vr])

            adapter(100)  # warm-up
            us = _median_us_per_step(adapter, n_steps, repeats)
            us_slow = _median_us_per_step(per_variable, max(n_steps // 4, 50), repeats)
        rows.append({"model": model, "inputs": len(inputs), "outputs": len(outputs), "adapter_us_per_step": us,
                     "fmpy_per_variable_us_per_step": us_slow, "speedup": us_slow / us})
    return rows


def format_fmu_table(rows: list[dict]) -> str:
    lines = ["| FMU | inputs | outputs | adapter hot path, us/step (median) | fmpy per-variable, us/step | speed-up |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['inputs']} | {r['outputs']} | {r['adapter_us_per_step']:.1f} | "
                     f"{r['fmpy_per_variable_us_per_step']:.1f} | {r['speedup']:.1f}x |")
    return "\n".join(lines)


# ---- the reference year: wall time, simulated time per wall time, peak memory, ratio to the floor ----

def _child_run(scenario_path: str, days: float | None, out_dir: str, capture_dir: str | None) -> dict:
    """One run in this process (called in a fresh subprocess so that its peak memory is its own)."""
    import dataclasses
    import resource

    from . import scenario as scenario_mod
    from .engine import Engine

    sc = scenario_mod.load(scenario_path)
    if days is not None:
        run = dataclasses.replace(sc.run, duration_s=int(days * 86400) // sc.run.step_s * sc.run.step_s)
        sc = dataclasses.replace(sc, run=run)
    engine = Engine(sc)
    captures = []
    if capture_dir:
        captures = _install_capture(engine, Path(capture_dir))
    engine.setup()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = engine.run(out, progress=False)
    wall = time.perf_counter() - t0
    for c in captures:
        c.flush()
    engine.site.close()
    return {"wall_s": wall, "steps": result.steps_done, "simulated_s": result.steps_done * sc.run.step_s,
            "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def _install_capture(engine, folder: Path) -> list:
    """Record every FMU's inputs of every step (for the floor), into memory-mapped files."""
    from .site import FmuComponent

    folder.mkdir(parents=True, exist_ok=True)
    n = engine.n_steps
    maps = []
    meta = []
    for r in engine.site.routes:
        c = r.component
        if not isinstance(c, FmuComponent):
            continue
        mm = np.lib.format.open_memmap(folder / f"{c.name}.npy", mode="w+", dtype=float, shape=(n, len(c.inputs)))
        maps.append(mm)
        meta.append({"name": c.name, "model": c.spec.model, "fmu": str(c.fmu.path), "inputs": c.inputs,
                     "outputs": c.outputs, "parameters": dict(c.spec.parameters),
                     "consts": {k: s.value for k, s in c.spec.inputs.items() if s.kind == "const"}})
        make = c.stepper

        def stepper(z, in_idx, out_slice, _make=make, _mm=mm):
            inner = _make(z, in_idx, out_slice)
            k = [0]

            def step(t_s, h_s):
                _mm[k[0]] = z[in_idx]
                k[0] += 1
                inner(t_s, h_s)
            return step

        c.stepper = stepper
    (folder / "fmus.json").write_text(__import__("json").dumps(meta))
    return maps


def floor_s(capture_dir: Path, h_s: float) -> float:
    """Wall time of stepping the captured FMUs with their captured inputs through the shared libraries' own
    fmi2SetReal / fmi2DoStep / fmi2GetReal (ctypes, raw addresses): the cost no co-simulation master can avoid."""
    import ctypes
    import json

    meta = json.loads((Path(capture_dir) / "fmus.json").read_text())
    fmus, calls = [], []
    try:
        for m in meta:
            f = Fmu(m["fmu"], instance_name=m["name"])
            fmus.append(f)
            f.setup(0.0, parameters=m["parameters"], inputs=m["consts"])
            f.bind(m["inputs"], m["outputs"])
            u = np.ascontiguousarray(np.load(Path(capture_dir) / f"{m['name']}.npy"))
            dll = f._slave.dll
            set_real, do_step, get_real = dll.fmi2SetReal, dll.fmi2DoStep, dll.fmi2GetReal
            raw_set = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)(
                ctypes.cast(set_real, ctypes.c_void_p).value)
            raw_get = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)(
                ctypes.cast(get_real, ctypes.c_void_p).value)
            raw_step = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_double, ctypes.c_double, ctypes.c_int)(
                ctypes.cast(do_step, ctypes.c_void_p).value)
            in_vr = np.array(list(f._in_vr), dtype=np.uint32)
            out_vr = np.array(list(f._out_vr), dtype=np.uint32)
            y = np.zeros(len(out_vr))
            keep = (in_vr, out_vr, y, u)  # the arrays must outlive the raw addresses below
            calls.append((f._component, raw_set, raw_step, raw_get, in_vr.ctypes.data, len(in_vr), out_vr.ctypes.data,
                          len(out_vr), y.ctypes.data, u.ctypes.data, u.shape[1] * 8, len(u), keep))
        n = min(c[11] for c in calls)
        plan = [c[:11] for c in calls]
        t0 = time.perf_counter()
        for k in range(n):
            t = k * h_s
            for (comp, raw_set, raw_step, raw_get, in_a, n_in, out_a, n_out, y_a, u_a, row_bytes) in plan:
                raw_set(comp, in_a, n_in, u_a + k * row_bytes)
                raw_step(comp, t, h_s, 1)
                raw_get(comp, out_a, n_out, y_a)
        return time.perf_counter() - t0
    finally:
        for f in fmus:
            f.close()


def bench_year(scenario_path: Path, month_days: float = 30.0) -> dict:
    """Run the scenario (whole horizon), the same for one month, in fresh processes; then the floor."""
    import json
    import os
    import subprocess
    import sys
    import tempfile

    def child(days, capture=None):
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, "-m", "twin.bench", str(scenario_path), out, "" if days is None else str(days),
                   capture or ""]
            # the capture of the FMUs' inputs hooks the Python loop's steppers
            env = dict(os.environ, TWIN_PYTHON_LOOP="1") if capture else None
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if r.returncode != 0:
                raise RuntimeError(f"benchmark run failed:\n{r.stderr[-3000:]}")
            return json.loads(r.stdout.strip().splitlines()[-1])

    year = child(None)
    month = child(month_days)
    with tempfile.TemporaryDirectory() as cap:
        child(None, cap)
        from . import scenario as scenario_mod

        floor = floor_s(Path(cap), float(scenario_mod.load(scenario_path).run.step_s))
    return {"year": year, "month": month, "floor_s": floor, "ratio_to_floor": year["wall_s"] / floor,
            "speed_simulated_per_wall": year["simulated_s"] / year["wall_s"],
            "memory_year_over_month": year["peak_rss_MB"] / month["peak_rss_MB"]}


if __name__ == "__main__":  # the child process of bench_year
    import json
    import sys

    scen, out, days, capture = sys.argv[1:5]
    print(json.dumps(_child_run(scen, float(days) if days else None, out, capture or None)))


def format_year(r: dict) -> str:
    y, m = r["year"], r["month"]
    return "\n".join([
        f"whole run: {y['steps']} steps, wall {y['wall_s']:.1f} s, simulated/wall {r['speed_simulated_per_wall']:,.0f}x, "
        f"peak memory {y['peak_rss_MB']:.0f} MB",
        f"one month: {m['steps']} steps, wall {m['wall_s']:.1f} s, peak memory {m['peak_rss_MB']:.0f} MB "
        f"(whole run / month: {r['memory_year_over_month']:.3f})",
        f"floor (the same FMUs, the same inputs, raw fmi2SetReal/DoStep/GetReal): {r['floor_s']:.1f} s; "
        f"engine / floor = {r['ratio_to_floor']:.2f}",
    ])
