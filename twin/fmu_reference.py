"""Reference results that travel with each model: models/<Name>/reference.csv.

The file has a column ``time_s``, one column per input port (the values held from that row's time to the
next row's) and one column per output port (the values at that row's time; the first row is the state after
initialization). Parameters are the model description's defaults. ``regenerate`` re-simulates from the input
columns and rewrites the outputs; ``compare`` re-simulates and returns the largest deviation, which the test
suite checks.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from .errors import FmuError
from .fmu import Fmu


def simulate_table(fmu_path: str | Path, times_s: np.ndarray, inputs: Mapping[str, np.ndarray],
                   outputs: list[str] | None = None, parameters: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Step an FMU through ``times_s`` with piecewise-constant inputs (value i held on [t_i, t_i+1)).

    Returns a frame with time_s, the inputs and the outputs at each time (row 0: after initialization).
    """
    times_s = np.asarray(times_s, dtype=float)
    if times_s.ndim != 1 or len(times_s) < 2 or np.any(np.diff(times_s) < 0):
        raise FmuError("simulate_table: times_s must be a non-decreasing 1-D array of at least two times")
    names_in = list(inputs)
    u = np.column_stack([np.asarray(inputs[n], dtype=float) for n in names_in]) if names_in else np.zeros((len(times_s), 0))
    with Fmu(fmu_path) as fmu:
        if outputs is None:
            outputs = [p.name for p in fmu.ports.values() if p.causality == "output"]
        first = {n: float(u[0, i]) for i, n in enumerate(names_in)}
        fmu.setup(float(times_s[0]), parameters=parameters, inputs=first)
        fmu.bind(names_in, outputs)
        y = np.empty((len(times_s), len(outputs)))
        y[0] = fmu.get_outputs()
        for k in range(len(times_s) - 1):
            y[k + 1] = fmu.step(times_s[k], times_s[k + 1] - times_s[k], u[k])
    frame = pd.DataFrame({"time_s": times_s})
    for i, n in enumerate(names_in):
        frame[n] = u[:, i]
    for j, n in enumerate(outputs):
        frame[n] = y[:, j]
    return frame


def _split(model_dir: Path, fmu_path: Path) -> tuple[pd.DataFrame, list[str], list[str]]:
    ref = pd.read_csv(model_dir / "reference.csv")
    with Fmu(fmu_path) as fmu:
        kinds = {n: p.causality for n, p in fmu.ports.items()}
    unknown = [c for c in ref.columns if c != "time_s" and c not in kinds]
    if unknown:
        raise FmuError(f"{model_dir / 'reference.csv'}: columns {unknown} are not ports of {fmu_path.name}")
    ins = [c for c in ref.columns if kinds.get(c) == "input"]
    outs = [c for c in ref.columns if kinds.get(c) == "output"]
    return ref, ins, outs


def regenerate(model_dir: Path, fmu_path: Path) -> pd.DataFrame:
    """Rewrite reference.csv from its input columns; every output port gets a column."""
    ref, ins, _ = _split(model_dir, fmu_path)
    out = simulate_table(fmu_path, ref["time_s"].to_numpy(), {n: ref[n].to_numpy() for n in ins})
    out.to_csv(model_dir / "reference.csv", index=False, float_format="%.12g")
    return out


def compare(model_dir: Path, fmu_path: Path) -> dict[str, float]:
    """Largest deviation of each output from reference.csv, relative to the column's largest magnitude."""
    ref, ins, outs = _split(model_dir, fmu_path)
    sim = simulate_table(fmu_path, ref["time_s"].to_numpy(), {n: ref[n].to_numpy() for n in ins}, outputs=outs)
    result = {}
    for n in outs:
        scale = max(float(np.max(np.abs(ref[n]))), 1e-12)
        result[n] = float(np.max(np.abs(sim[n].to_numpy() - ref[n].to_numpy()))) / scale
    return result
