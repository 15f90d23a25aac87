"""Benchmarks (never timed tests): run with `twin bench`. Medians of repeated runs, ratios from the same run."""
from __future__ import annotations

import statistics
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
    """Cost of one communication step of each project FMU: all Real inputs set and all outputs read in one
    batched call each (the adapter's hot path), against fmpy's per-variable high-level calls."""
    rows = []
    for model in fmu_build.model_names():
        path = fmu_build.ensure_built(model)
        with Fmu(path) as fmu:
            fmu.setup(0.0)
            inputs = [p for p in fmu.ports.values() if p.causality == "input" and p.type == "Real"]
            outputs = [p.name for p in fmu.ports.values() if p.causality == "output"]
            u = np.array([float(p.start) for p in inputs])
            fmu.bind([p.name for p in inputs], outputs)
            t = [0.0]

            def adapter(n):
                for _ in range(n):
                    fmu.step(t[0], h_s, u)
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
    lines = ["| FMU | inputs | outputs | adapter, us/step (median) | fmpy per-variable, us/step | speed-up |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['inputs']} | {r['outputs']} | {r['adapter_us_per_step']:.1f} | "
                     f"{r['fmpy_per_variable_us_per_step']:.1f} | {r['speedup']:.1f}x |")
    return "\n".join(lines)
