"""Trace readers and the job table: the only module of the cluster that reads or writes workload files.

Every reader checks the whole file and raises one ``TraceError`` listing the problems it found (the first
``MAX_REPORTED``, then how many more), each with the file, the data row (1-based, the header not counted:
data row 1 is line 2 of a CSV file) and the column. A file that is missing, unreadable, or of an unknown
suffix is a ``TraceError`` too.

Job table (``read_jobs``, ``write_jobs``; ``.csv`` or ``.parquet``): one row per job, the columns are the
fields of ``Job``, times in integer seconds:

=======================  ========  =========================================================================
column                   required  meaning
=======================  ========  =========================================================================
job_id                   yes       non-empty text, unique in the file
submit_time_s            yes       integer >= 0; rows sorted by it (equal values allowed: batch submissions)
duration_s               yes       integer >= 1: nominal run time at full speed
n_gpus                   yes       integer >= 1: whole GPUs
workload_class           yes       pretraining, fine_tuning, evaluation, online_inference, batch_inference,
                                   other
power_model              no        non-empty text; default ``default`` (the site's default power model)
preemptible              no        true/false (also 1/0, yes/no); default false
checkpoint_interval_s    no        integer >= 1 or empty (no checkpoints); default empty
earliest_start_s         no        integer >= submit_time_s, or empty (= submit_time_s)
deadline_s               no        integer >= earliest start + duration, or empty (no deadline)
gpu_share                no        number in (0, 1]: fraction of each GPU used; default 1
=======================  ========  =========================================================================

Any other column is an error (a misspelt optional column would otherwise be silently ignored). Missing values
are empty cells (or NaN/NA/null); in a required column they are errors.

Alibaba GPU pod trace (``read_alibaba``; cluster-trace-gpu-v2023 ``openb_pod_list_*.csv``), decisions:

- GPU pods only: CPU-only pods (``num_gpu`` 0) draw no GPU power and are dropped; so are pods that were never
  scheduled (``scheduled_time`` empty, phase Pending): they never ran, so they have no run time.
- ``submit_time_s`` = ``creation_time``; ``duration_s`` = ``deletion_time - scheduled_time``, the run time
  (the trace's own queueing is left out: our scheduler makes its own); a run under one second counts as 1 s.
- Fractional GPUs: ``n_gpus`` = ``num_gpu`` whole GPUs (a GPU-sharing pod occupies one GPU: the cluster does
  not pack pods onto shared GPUs), ``gpu_share`` = ``gpu_milli / 1000`` keeps the fraction for power models.
- Censoring: pods still Running at the trace end (their ``deletion_time`` is the trace's last one) are kept,
  with the run time seen so far, a lower bound; their ids are in ``Trace.censored``.
- Recording window: the trace lists pods alive while it was recorded, so no pod ended before recording began;
  ``Trace.start_s`` is the earliest ``deletion_time``. Pods created before it were already running (they are
  kept for replay, but are survivors, not a sample of arrivals: fit arrival models on ``[start_s, end_s)``).
  ``Trace.end_s`` is one second after the last creation.
- Workload class from ``qos`` (the trace has no job type; a heuristic, overridable): LS and Guaranteed ->
  online inference, BE (best effort) -> batch inference and preemptible, Burstable -> other.
- Checks: sorted ``creation_time``, unique ``name``, ``creation <= scheduled <= deletion``, ``gpu_milli`` in
  [1, 1000] for GPU pods, known ``qos`` and ``pod_phase``, ``scheduled_time`` present unless Pending.

Azure LLM inference trace (``read_azure``; ``AzureLLMInferenceTrace_*.csv``): columns ``TIMESTAMP`` (UTC,
``YYYY-MM-DD HH:MM:SS.fffffff``), ``ContextTokens``, ``GeneratedTokens``. Read as a ``RequestStream``
(arrivals in float seconds from the first request, which must be strictly increasing: a repeated timestamp
is an error); ``twin.cluster.jobs.requests_to_jobs`` maps it onto online-inference jobs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ..errors import TraceError
from .jobs import DEFAULT_POWER_MODEL, JOB_FIELDS, Job, RequestStream, WorkloadClass, job_problems

MAX_REPORTED = 20
"""How many problems a ``TraceError`` lists before it says how many more there are."""

REQUIRED_COLUMNS = ("job_id", "submit_time_s", "duration_s", "n_gpus", "workload_class")
OPTIONAL_COLUMNS = tuple(f for f in JOB_FIELDS if f not in REQUIRED_COLUMNS)

ALIBABA_QOS_CLASSES: Mapping[str, WorkloadClass] = {
    "LS": WorkloadClass.ONLINE_INFERENCE,
    "Guaranteed": WorkloadClass.ONLINE_INFERENCE,
    "BE": WorkloadClass.BATCH_INFERENCE,
    "Burstable": WorkloadClass.OTHER,
}
ALIBABA_PREEMPTIBLE_QOS = frozenset({"BE"})
_ALIBABA_PHASES = frozenset({"Pending", "Running", "Succeeded", "Failed"})
_ALIBABA_COLUMNS = ("name", "num_gpu", "gpu_milli", "qos", "pod_phase", "creation_time", "deletion_time",
                    "scheduled_time")
_AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
_MISSING_TOKENS = frozenset({"", "nan", "na", "n/a", "null", "none"})
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


@dataclass(frozen=True)
class Trace:
    """Jobs read from a trace, with the window in which its arrivals were recorded."""

    path: Path
    jobs: tuple[Job, ...]
    start_s: int                # arrivals at or after this were observed; earlier jobs were already running
    end_s: int                  # end (exclusive) of the arrival window
    censored: frozenset[str]    # ids of jobs still running at the trace end: their duration is a lower bound


class _Problems:
    """Collects (row, column, message) for one file and raises them all as one TraceError."""

    def __init__(self, path: Path):
        self.path = path
        self.items: list[tuple[int, int, str, str]] = []  # (row or 0 for the file, column order, column, text)
        self._order: dict[str, int] = {}

    def add(self, row: int | None, column: str, message: str) -> None:
        order = self._order.setdefault(column, len(self._order))
        self.items.append((row or 0, order, column, message))

    def add_rows(self, mask: np.ndarray, column: str, message) -> None:
        """One problem per row where ``mask`` is true; ``message(i)`` gives the text for 0-based index i."""
        for i in np.flatnonzero(mask):
            self.add(int(i) + 1, column, message(int(i)))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        items = sorted(self.items)
        lines = [f"  {'file' if r == 0 else f'data row {r}'}, column {c!r}: {m}" for r, _, c, m in items[:MAX_REPORTED]]
        if len(items) > MAX_REPORTED:
            lines.append(f"  ... and {len(items) - MAX_REPORTED} more")
        n = len(items)
        raise TraceError(f"{self.path}: {n} problem{'s' if n > 1 else ''} "
                         f"(rows are 1-based data rows, the header not counted):\n" + "\n".join(lines))


def _read_frame(path: Path) -> pd.DataFrame:
    """The file as a frame: a CSV with every cell as text, a Parquet file with its own types."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise TraceError(f"{path}: cannot read the file: {e}") from e
    raise TraceError(f"{path}: unknown file type {path.suffix!r}: expected .csv or .parquet")


def _missing(raw: pd.Series) -> np.ndarray:
    miss = raw.isna().to_numpy().copy()
    if raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
        text = raw.astype(str).str.strip().str.lower()
        miss |= text.isin(_MISSING_TOKENS).to_numpy()
    return miss


def _numbers(raw: pd.Series, column: str, problems: _Problems, *, required: bool, integer: bool
             ) -> tuple[np.ndarray, np.ndarray]:
    """(values as float64, valid mask). Records missing (when required), non-numeric, non-finite, non-integer."""
    miss = _missing(raw)
    num = pd.to_numeric(raw.where(~miss), errors="coerce").astype("float64").to_numpy()
    text = raw.astype(str).to_numpy()
    if required:
        problems.add_rows(miss, column, lambda i: "missing value (empty or NaN)")
    bad = np.isnan(num) & ~miss
    problems.add_rows(bad, column, lambda i: f"not a number: {text[i]!r}")
    with np.errstate(invalid="ignore"):
        inf = np.isinf(num)
        problems.add_rows(inf, column, lambda i: f"not finite: {text[i]!r}")
        frac = np.isfinite(num) & (num != np.floor(num)) if integer else np.zeros(num.size, bool)
    problems.add_rows(frac, column, lambda i: f"not an integer: {text[i]!r}")
    ok = np.isfinite(num) & ~frac
    return num, ok


def _texts(raw: pd.Series, column: str, problems: _Problems, *, required: bool) -> tuple[np.ndarray, np.ndarray]:
    """(stripped text, None where missing; valid mask). Records missing values when required."""
    miss = _missing(raw)
    if required:
        problems.add_rows(miss, column, lambda i: "missing value (empty or NaN)")
    text = raw.astype(str).str.strip().to_numpy(dtype=object)
    text[miss] = None
    return text, ~miss


def _check_columns(frame: pd.DataFrame, required: Iterable[str], allowed: Iterable[str] | None,
                   problems: _Problems) -> None:
    for c in required:
        if c not in frame.columns:
            problems.add(None, c, "missing column")
    if allowed is not None:
        allowed = set(allowed)
        for c in frame.columns:
            if c not in allowed:
                problems.add(None, str(c), f"unknown column (allowed: {', '.join(JOB_FIELDS)})")


def _check_sorted(values: np.ndarray, ok: np.ndarray, column: str, problems: _Problems, *, strict: bool,
                  shown: np.ndarray | None = None) -> None:
    """Each valid value must be >= (> if strict) the previous valid one; ``shown`` gives the text to quote."""
    idx = np.flatnonzero(ok)
    if idx.size < 2:
        return
    v = values[idx]
    bad = v[1:] <= v[:-1] if strict else v[1:] < v[:-1]
    show = (lambda i: str(shown[i]).strip()) if shown is not None else (lambda i: _fmt(values[i]))
    for j in np.flatnonzero(bad):
        prev, this = int(idx[j]), int(idx[j + 1])
        if v[j + 1] == v[j]:
            problems.add(this + 1, column, f"duplicate time: {show(this)} is also in data row {prev + 1}")
        else:
            problems.add(this + 1, column, f"not sorted: {show(this)} is earlier than {show(prev)} "
                                           f"in data row {prev + 1}")


def _check_unique(values: np.ndarray, ok: np.ndarray, column: str, problems: _Problems) -> None:
    first: dict[object, int] = {}
    for i in np.flatnonzero(ok):
        v = values[i]
        if v in first:
            problems.add(int(i) + 1, column, f"duplicate {v!r}, first in data row {first[v] + 1}")
        else:
            first[v] = int(i)


def _fmt(x) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def read_jobs(path: str | Path) -> tuple[Job, ...]:
    """The jobs of a job table (``.csv`` or ``.parquet``, schema in the module docstring), in file order."""
    path = Path(path)
    return jobs_from_frame(_read_frame(path), path)


def jobs_from_frame(frame: pd.DataFrame, source: str | Path) -> tuple[Job, ...]:
    """The jobs of a job table already in memory; ``source`` names it in errors."""
    problems = _Problems(Path(source))
    _check_columns(frame, REQUIRED_COLUMNS, JOB_FIELDS, problems)
    present = [name for name in JOB_FIELDS if name in frame.columns]
    cols: dict[str, np.ndarray] = {}
    cell_ok: dict[str, np.ndarray] = {}
    for name in present:
        raw, required = frame[name], name in REQUIRED_COLUMNS
        if name in ("job_id", "power_model", "workload_class"):
            values, ok = _texts(raw, name, problems, required=required)
        elif name == "preemptible":
            values, ok = _flags(raw, name, problems)
        else:
            values, ok = _numbers(raw, name, problems, required=required, integer=name != "gpu_share")
        if not required:
            ok = ok | _missing(raw)
        cols[name], cell_ok[name] = values, ok
    if "workload_class" in cols:
        text, known = cols["workload_class"], sorted(c.value for c in WorkloadClass)
        unknown = cell_ok["workload_class"] & ~np.isin(text.astype(str), known)
        problems.add_rows(unknown, "workload_class",
                          lambda i: f"unknown class {text[i]!r} (expected one of: {', '.join(known)})")
        cell_ok["workload_class"] = cell_ok["workload_class"] & ~unknown
    if "submit_time_s" in cols:
        t = cols["submit_time_s"]
        _check_sorted(t, ~np.isnan(t), "submit_time_s", problems, strict=False)
    if "job_id" in cols:
        _check_unique(cols["job_id"], ~_missing(frame["job_id"]), "job_id", problems)

    jobs: list[Job] = []
    complete = all(c in cols for c in REQUIRED_COLUMNS)
    for i in range(len(frame)):
        # the rules across fields (job_problems), on this row's well-formed cells; a bad cell is reported once
        kwargs, bad_cells = {}, set()
        for name in cols:
            if not cell_ok[name][i]:
                bad_cells.add(name)
            elif (v := _cell(name, cols[name][i])) is not None:
                kwargs[name] = v
        if "workload_class" in kwargs:
            kwargs["workload_class"] = WorkloadClass(kwargs["workload_class"])
        found = [(f, m) for f, m in job_problems(SimpleNamespace(**({f: None for f in JOB_FIELDS} | _DEFAULTS
                                                                     | kwargs)))
                 if f in cols and f not in bad_cells]
        for field, message in found:
            problems.add(i + 1, field, message)
        if complete and not bad_cells and not found:
            jobs.append(Job(**kwargs))
    problems.raise_if_any()
    return tuple(jobs)


_DEFAULTS = {"power_model": DEFAULT_POWER_MODEL, "preemptible": False, "gpu_share": 1.0}


def _cell(name: str, v):
    """A parsed cell as the Python value of its Job field; None for an empty cell."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if name in ("job_id", "power_model", "workload_class"):
        return str(v)
    if name == "preemptible":
        return bool(v)
    return float(v) if name == "gpu_share" else int(v)


def _flags(raw: pd.Series, column: str, problems: _Problems) -> tuple[np.ndarray, np.ndarray]:
    """(True/False/None per row, valid mask). Bool columns as they are; text true/false, 1/0, yes/no."""
    miss = _missing(raw)
    if pd.api.types.is_bool_dtype(raw.dtype):
        out = np.array([None if m else bool(v) for v, m in zip(raw.tolist(), miss)], dtype=object)
        return out, np.ones(len(raw), bool)
    text = raw.astype(str).str.strip().str.lower().to_numpy()
    out = np.array([None if m else (True if t in _TRUE else False if t in _FALSE else None)
                    for t, m in zip(text, miss)], dtype=object)
    bad = np.array([o is None for o in out], bool) & ~miss
    raw_text = raw.astype(str).to_numpy()
    problems.add_rows(bad, column, lambda i: f"not true/false: {raw_text[i]!r}")
    return out, ~bad


def jobs_to_frame(jobs: Iterable[Job]) -> pd.DataFrame:
    """The job table of ``jobs``: one row per job, one column per ``Job`` field, empty cells for None."""
    jobs = list(jobs)
    data = {}
    for name in JOB_FIELDS:
        values = [getattr(j, name) for j in jobs]
        if name == "workload_class":
            data[name] = pd.array([v.value for v in values], dtype="string")
        elif name in ("job_id", "power_model"):
            data[name] = pd.array(values, dtype="string")
        elif name == "preemptible":
            data[name] = np.array(values, dtype=bool)
        elif name == "gpu_share":
            data[name] = np.array(values, dtype=np.float64)
        else:
            data[name] = pd.array(values, dtype="Int64")
    return pd.DataFrame(data, columns=list(JOB_FIELDS))


def write_jobs(jobs: Iterable[Job], path: str | Path) -> Path:
    """Writes the job table of ``jobs`` to ``path`` (``.parquet`` or ``.csv``); ``read_jobs`` reads it back."""
    path = Path(path)
    frame = jobs_to_frame(jobs)
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame.to_parquet(path, index=False)
        elif suffix == ".csv":
            frame.to_csv(path, index=False)
        else:
            raise TraceError(f"{path}: unknown file type {path.suffix!r}: expected .csv or .parquet")
    except OSError as e:
        raise TraceError(f"{path}: cannot write the file: {e}") from e
    return path


def read_alibaba(path: str | Path, *, qos_classes: Mapping[str, WorkloadClass] = ALIBABA_QOS_CLASSES,
                 power_model: str = DEFAULT_POWER_MODEL) -> Trace:
    """The GPU pods of an Alibaba cluster-trace-gpu-v2023 pod list as jobs (decisions in the module docstring)."""
    path = Path(path)
    frame = _read_frame(path)
    problems = _Problems(path)
    _check_columns(frame, _ALIBABA_COLUMNS, None, problems)
    problems.raise_if_any()

    name, name_ok = _texts(frame["name"], "name", problems, required=True)
    qos, qos_ok = _texts(frame["qos"], "qos", problems, required=True)
    phase, phase_ok = _texts(frame["pod_phase"], "pod_phase", problems, required=True)
    num_gpu, ng_ok = _numbers(frame["num_gpu"], "num_gpu", problems, required=True, integer=True)
    milli, mi_ok = _numbers(frame["gpu_milli"], "gpu_milli", problems, required=True, integer=True)
    created, cr_ok = _numbers(frame["creation_time"], "creation_time", problems, required=True, integer=True)
    deleted, de_ok = _numbers(frame["deletion_time"], "deletion_time", problems, required=True, integer=True)
    sched_missing = _missing(frame["scheduled_time"])
    sched, sc_ok = _numbers(frame["scheduled_time"], "scheduled_time", problems, required=False, integer=True)

    unknown_qos = qos_ok & ~np.isin(qos.astype(str), list(qos_classes))
    problems.add_rows(unknown_qos, "qos", lambda i: f"unknown class {qos[i]!r} (expected one of: "
                                                    f"{', '.join(sorted(qos_classes))})")
    unknown_phase = phase_ok & ~np.isin(phase.astype(str), list(_ALIBABA_PHASES))
    problems.add_rows(unknown_phase, "pod_phase", lambda i: f"unknown phase {phase[i]!r} (expected one of: "
                                                            f"{', '.join(sorted(_ALIBABA_PHASES))})")
    with np.errstate(invalid="ignore"):
        problems.add_rows(ng_ok & (num_gpu < 0), "num_gpu", lambda i: f"negative: {_fmt(num_gpu[i])}")
        gpu_pod = ng_ok & (num_gpu >= 1)
        problems.add_rows(gpu_pod & mi_ok & ((milli < 1) | (milli > 1000)), "gpu_milli",
                          lambda i: f"must be in [1, 1000] for a GPU pod, got {_fmt(milli[i])}")
        problems.add_rows(cr_ok & (created < 0), "creation_time", lambda i: f"negative: {_fmt(created[i])}")
        pending = phase == "Pending"
        problems.add_rows(sched_missing & phase_ok & ~pending, "scheduled_time",
                          lambda i: f"missing for a pod in phase {phase[i]}")
        problems.add_rows(sc_ok & cr_ok & (sched < created), "scheduled_time",
                          lambda i: f"{_fmt(sched[i])} is before creation_time {_fmt(created[i])}")
        start = np.where(sc_ok, sched, created)
        problems.add_rows(de_ok & cr_ok & (deleted < start), "deletion_time",
                          lambda i: f"negative duration: {_fmt(deleted[i])} is before "
                                    f"{'scheduled_time' if sc_ok[i] else 'creation_time'} {_fmt(start[i])}")
    _check_sorted(created, cr_ok, "creation_time", problems, strict=False)
    _check_unique(name, name_ok, "name", problems)
    problems.raise_if_any()

    trace_end = int(deleted.max()) if deleted.size else 0
    jobs, censored = [], set()
    keep = (num_gpu >= 1) & sc_ok
    for i in np.flatnonzero(keep):
        run_s = max(1, int(deleted[i]) - int(sched[i]))
        j = Job(job_id=str(name[i]), submit_time_s=int(created[i]), duration_s=run_s, n_gpus=int(num_gpu[i]),
                workload_class=qos_classes[qos[i]], power_model=power_model,
                preemptible=qos[i] in ALIBABA_PREEMPTIBLE_QOS, gpu_share=float(milli[i]) / 1000.0)
        jobs.append(j)
        if phase[i] == "Running" and int(deleted[i]) == trace_end:
            censored.add(j.job_id)
    start_s = int(deleted.min()) if deleted.size else 0
    end_s = int(created.max()) + 1 if created.size else 0
    return Trace(path=path, jobs=tuple(jobs), start_s=start_s, end_s=end_s, censored=frozenset(censored))


def read_azure(path: str | Path) -> RequestStream:
    """The requests of an Azure LLM inference trace (``AzureLLMInferenceTrace_*.csv``) as a ``RequestStream``."""
    path = Path(path)
    frame = _read_frame(path)
    problems = _Problems(path)
    _check_columns(frame, _AZURE_COLUMNS, None, problems)
    problems.raise_if_any()

    raw_t = frame["TIMESTAMP"]
    miss = _missing(raw_t)
    problems.add_rows(miss, "TIMESTAMP", lambda i: "missing value")
    stamps = pd.to_datetime(raw_t.where(~miss), format="%Y-%m-%d %H:%M:%S.%f", errors="coerce")
    text = raw_t.astype(str).to_numpy()
    bad_t = stamps.isna().to_numpy() & ~miss
    problems.add_rows(bad_t, "TIMESTAMP", lambda i: f"not a time (YYYY-MM-DD HH:MM:SS.fffffff): {text[i]!r}")
    t_ok = ~stamps.isna().to_numpy()
    ns = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    _check_sorted(ns, t_ok, "TIMESTAMP", problems, strict=True, shown=text)
    tokens = {}
    for column in ("ContextTokens", "GeneratedTokens"):
        num, ok = _numbers(frame[column], column, problems, required=True, integer=True)
        with np.errstate(invalid="ignore"):
            problems.add_rows(ok & (num < 0), column, lambda i, num=num: f"negative: {_fmt(num[i])}")
        tokens[column] = num
    problems.raise_if_any()

    if ns.size == 0:
        return RequestStream(np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))
    first = stamps.iloc[0]
    return RequestStream(arrival_s=(ns - ns[0]) / 1e9,
                         context_tokens=tokens["ContextTokens"].astype(np.int64),
                         generated_tokens=tokens["GeneratedTokens"].astype(np.int64),
                         start_utc=first.tz_localize("UTC").to_pydatetime())
