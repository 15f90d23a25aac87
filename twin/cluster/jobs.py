"""The workload model: jobs, their workload classes, and LLM request streams mapped onto jobs.

A ``Job`` is one unit of work the scheduler places on whole GPUs. Time is in integer seconds from the start
of the trace or scenario (the engine's ticks are computed from these, never accumulated); every duration is
the nominal run time at full speed, without queueing. ``gpu_share`` is the fraction of each allocated GPU the
job uses (1.0 for a job that owns its GPUs; Alibaba's GPU-sharing pods and lightly loaded inference windows
have less): the scheduler places ``n_gpus`` whole GPUs, a power model may scale with the share.

A ``RequestStream`` is a stream of LLM inference requests (arrival time in float seconds, prompt and output
tokens). Requests arrive far faster than the engine's tick, so they are not jobs one by one:
``requests_to_jobs`` turns a stream into one online-inference job per window that holds requests (see there).

Invalid values raise ``TwinError`` naming the job and the field; ``job_problems`` lists them without raising,
so a trace reader can report every bad row of a file at once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum

import numpy as np

from ..errors import TwinError

DEFAULT_POWER_MODEL = "default"
"""The power-model name a job gets when its source names none: the site's default GPU power model."""


class WorkloadClass(Enum):
    """What a job does; decides whether the scheduler may defer it."""

    PRETRAINING = "pretraining"            # synchronous across all its GPUs; not deferrable
    FINE_TUNING = "fine_tuning"            # deferrable
    EVALUATION = "evaluation"              # deferrable
    ONLINE_INFERENCE = "online_inference"  # serves live requests; never deferred
    BATCH_INFERENCE = "batch_inference"    # deferrable
    OTHER = "other"                        # unknown work; not deferred (the safe assumption)

    @property
    def deferrable(self) -> bool:
        """True where a scheduler may hold the job back (for cheap power, or heat when it is wanted)."""
        return self in _DEFERRABLE


_DEFERRABLE = frozenset({WorkloadClass.FINE_TUNING, WorkloadClass.EVALUATION, WorkloadClass.BATCH_INFERENCE})


@dataclass(frozen=True, kw_only=True, slots=True)
class Job:
    """One job. The field names are the column names of the job table (``twin.cluster.traces``)."""

    job_id: str
    submit_time_s: int                      # when the job enters the queue
    duration_s: int                         # nominal run time at full speed, > 0
    n_gpus: int                             # whole GPUs it occupies, >= 1
    workload_class: WorkloadClass
    power_model: str = DEFAULT_POWER_MODEL  # name of the power model that gives its GPUs' draw
    preemptible: bool = False               # may be stopped and resumed later
    checkpoint_interval_s: int | None = None  # work lost on preemption is at most this; None: restart from zero
    earliest_start_s: int | None = None     # not started before this; None means submit_time_s
    deadline_s: int | None = None           # should be finished by this; None: no deadline
    gpu_share: float = 1.0                  # fraction of each allocated GPU it uses, in (0, 1]

    def __post_init__(self):
        for name in _INT_FIELDS:  # numpy integers (from arrays and tables) become Python ints
            v = getattr(self, name)
            if isinstance(v, np.integer):
                object.__setattr__(self, name, int(v))
        if isinstance(self.gpu_share, (int, np.integer)) and not isinstance(self.gpu_share, bool):
            object.__setattr__(self, "gpu_share", float(self.gpu_share))
        if isinstance(self.preemptible, np.bool_):
            object.__setattr__(self, "preemptible", bool(self.preemptible))
        if self.earliest_start_s is None and _is_int(self.submit_time_s):
            object.__setattr__(self, "earliest_start_s", self.submit_time_s)
        problems = job_problems(self)
        if problems:
            name = self.job_id if isinstance(self.job_id, str) else repr(self.job_id)
            raise TwinError(f"job {name!r}: " + "; ".join(f"{f}: {m}" for f, m in problems))


JOB_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Job))
_INT_FIELDS = ("submit_time_s", "duration_s", "n_gpus", "checkpoint_interval_s", "earliest_start_s", "deadline_s")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def job_problems(job) -> list[tuple[str, str]]:
    """(field, what is wrong) for each invalid field of ``job`` (a ``Job`` or any object with its attributes).

    ``earliest_start_s`` None is read as ``submit_time_s``. Checks types, ranges and the order
    submit <= earliest start, earliest start + duration <= deadline.
    """
    out: list[tuple[str, str]] = []
    if not isinstance(job.job_id, str) or not job.job_id:
        out.append(("job_id", f"must be a non-empty string, got {job.job_id!r}"))
    for name, low in (("submit_time_s", 0), ("duration_s", 1), ("n_gpus", 1)):
        v = getattr(job, name)
        if not _is_int(v) or v < low:
            out.append((name, f"must be an integer >= {low}, got {v!r}"))
    if not isinstance(job.workload_class, WorkloadClass):
        out.append(("workload_class", f"must be a WorkloadClass, got {job.workload_class!r}"))
    if not isinstance(job.power_model, str) or not job.power_model:
        out.append(("power_model", f"must be a non-empty string, got {job.power_model!r}"))
    if not isinstance(job.preemptible, bool):
        out.append(("preemptible", f"must be True or False, got {job.preemptible!r}"))
    c = job.checkpoint_interval_s
    if c is not None and (not _is_int(c) or c < 1):
        out.append(("checkpoint_interval_s", f"must be empty or an integer >= 1, got {c!r}"))
    g = job.gpu_share
    if not isinstance(g, float) or not (0.0 < g <= 1.0):
        out.append(("gpu_share", f"must be a float in (0, 1], got {g!r}"))
    submit, duration, start, d = job.submit_time_s, job.duration_s, job.earliest_start_s, job.deadline_s
    if start is not None and not _is_int(start):
        out.append(("earliest_start_s", f"must be empty or an integer, got {start!r}"))
    elif start is not None and _is_int(submit) and start < submit:
        out.append(("earliest_start_s", f"must be >= submit_time_s ({submit}), got {start}"))
    if start is None:
        start = submit
    if d is not None and not _is_int(d):
        out.append(("deadline_s", f"must be empty or an integer, got {d!r}"))
    elif d is not None and _is_int(start) and _is_int(duration) and d < start + duration:
        out.append(("deadline_s", f"must be >= earliest start + duration ({start} + {duration}): "
                                  f"no schedule meets {d}"))
    return out


@dataclass(frozen=True, eq=False)
class RequestStream:
    """LLM inference requests: arrival (float seconds from the stream's start), prompt and output tokens.

    The arrays are read-only and of equal length; arrivals are strictly increasing and >= 0.
    ``start_utc`` is the wall-clock time of ``arrival_s == 0`` where the source gives one.
    """

    arrival_s: np.ndarray
    context_tokens: np.ndarray
    generated_tokens: np.ndarray
    start_utc: datetime | None = None

    def __post_init__(self):
        a = np.array(self.arrival_s, dtype=np.float64)
        c = np.array(self.context_tokens, dtype=np.int64)
        g = np.array(self.generated_tokens, dtype=np.int64)
        if not (a.ndim == c.ndim == g.ndim == 1 and a.size == c.size == g.size):
            raise TwinError(f"request stream: arrival_s, context_tokens, generated_tokens must be 1-D and of equal "
                            f"length, got shapes {a.shape}, {c.shape}, {g.shape}")
        if a.size and (not np.all(np.isfinite(a)) or a[0] < 0 or np.any(np.diff(a) <= 0)):
            raise TwinError("request stream: arrival_s must be finite, >= 0 and strictly increasing")
        if np.any(c < 0) or np.any(g < 0):
            raise TwinError("request stream: token counts must be >= 0")
        for name, arr in (("arrival_s", a), ("context_tokens", c), ("generated_tokens", g)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return int(self.arrival_s.size)


def requests_to_jobs(stream: RequestStream, *, window_s: int, prefill_tokens_per_gpu_s: float,
                     decode_tokens_per_gpu_s: float, power_model: str = DEFAULT_POWER_MODEL,
                     id_prefix: str = "inf-") -> tuple[Job, ...]:
    """One online-inference job per window of ``window_s`` seconds that holds at least one request.

    A serving deployment is modelled as GPUs held for the window whose load follows the requests in it: the
    GPU-seconds of work are ``sum(context) / prefill_tokens_per_gpu_s + sum(generated) / decode_tokens_per_gpu_s``
    (throughputs of one GPU with batching, which the user sets for the model and GPU served); the job holds
    ``n_gpus = ceil(work / window_s)`` GPUs (at least 1) for the window, and ``gpu_share = work / (n_gpus *
    window_s)``. Window k covers arrivals in ``[k * window_s, (k+1) * window_s)`` and its job is submitted at
    ``k * window_s``. Windows without requests (or whose requests carry no tokens) give no job (whether an idle
    replica stays reserved is a scenario decision). Jobs are not preemptible and have no deadline: online
    inference is never deferred.
    """
    if not _is_int(window_s) or window_s < 1:
        raise TwinError(f"requests_to_jobs: window_s must be an integer >= 1, got {window_s!r}")
    for name, v in (("prefill_tokens_per_gpu_s", prefill_tokens_per_gpu_s),
                    ("decode_tokens_per_gpu_s", decode_tokens_per_gpu_s)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise TwinError(f"requests_to_jobs: {name} must be a finite number > 0, got {v!r}")
    if len(stream) == 0:
        return ()
    window = np.floor(stream.arrival_s / window_s).astype(np.int64)
    work = stream.context_tokens / prefill_tokens_per_gpu_s + stream.generated_tokens / decode_tokens_per_gpu_s
    ks, first = np.unique(window, return_index=True)
    work_gpu_s = np.add.reduceat(work, first)
    jobs = []
    for k, w in zip(ks.tolist(), work_gpu_s.tolist()):
        if w <= 0:
            continue
        n = max(1, math.ceil(w / window_s))
        jobs.append(Job(job_id=f"{id_prefix}{k}", submit_time_s=k * window_s, duration_s=window_s, n_gpus=n,
                        workload_class=WorkloadClass.ONLINE_INFERENCE, power_model=power_model,
                        gpu_share=min(1.0, w / (n * window_s))))
    return tuple(jobs)
