"""The job model: validation, defaults, workload classes, request streams and their mapping onto jobs."""
import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest

from twin.cluster.jobs import (DEFAULT_POWER_MODEL, Job, RequestStream, WorkloadClass, job_problems,
                               requests_to_jobs)
from twin.cluster.traces import read_azure
from twin.errors import TwinError

WORK_RTOL = 1e-9


def job(**changes) -> Job:
    base = dict(job_id="j1", submit_time_s=100, duration_s=3600, n_gpus=8, workload_class=WorkloadClass.FINE_TUNING)
    return Job(**(base | changes))


def test_deferrable_classes():
    assert {c for c in WorkloadClass if c.deferrable} == {
        WorkloadClass.FINE_TUNING, WorkloadClass.EVALUATION, WorkloadClass.BATCH_INFERENCE}
    assert not WorkloadClass.PRETRAINING.deferrable
    assert not WorkloadClass.ONLINE_INFERENCE.deferrable


def test_defaults_and_normalisation():
    j = job(submit_time_s=np.int64(100), n_gpus=np.int32(2), gpu_share=1)
    assert j.earliest_start_s == 100
    assert type(j.submit_time_s) is int and type(j.n_gpus) is int and type(j.earliest_start_s) is int
    assert j.gpu_share == 1.0 and type(j.gpu_share) is float
    assert j.power_model == DEFAULT_POWER_MODEL
    assert j.preemptible is False and j.checkpoint_interval_s is None and j.deadline_s is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        j.duration_s = 5


@pytest.mark.parametrize("changes, field", [
    (dict(duration_s=-5), "duration_s"),
    (dict(duration_s=0), "duration_s"),
    (dict(duration_s=1.5), "duration_s"),
    (dict(submit_time_s=-1), "submit_time_s"),
    (dict(n_gpus=0), "n_gpus"),
    (dict(n_gpus=True), "n_gpus"),
    (dict(workload_class="pretraining"), "workload_class"),
    (dict(job_id=""), "job_id"),
    (dict(power_model=""), "power_model"),
    (dict(preemptible=1), "preemptible"),
    (dict(checkpoint_interval_s=0), "checkpoint_interval_s"),
    (dict(gpu_share=0.0), "gpu_share"),
    (dict(gpu_share=1.2), "gpu_share"),
    (dict(earliest_start_s=50), "earliest_start_s"),
    (dict(deadline_s=100 + 3599), "deadline_s"),
])
def test_invalid_fields_are_named(changes, field):
    with pytest.raises(TwinError, match=rf"job '(j1)?': .*{field}: must"):
        job(**changes)


def test_deadline_counts_from_the_earliest_start():
    assert job(earliest_start_s=200, deadline_s=200 + 3600).deadline_s == 3800
    with pytest.raises(TwinError, match="deadline_s"):
        job(earliest_start_s=200, deadline_s=200 + 3599)


def test_job_problems_lists_every_field():
    j = job()
    assert job_problems(j) == []
    # a frozen Job cannot hold bad values; job_problems takes any object with its attributes (a table row)
    row = SimpleNamespace(**{f.name: getattr(j, f.name) for f in dataclasses.fields(Job)})
    row.duration_s, row.n_gpus, row.gpu_share = -1, 0, 2.0
    assert [f for f, _ in job_problems(row)] == ["duration_s", "n_gpus", "gpu_share"]


def test_request_stream_validation():
    ok = RequestStream([0.0, 0.5, 2.0], [10, 20, 30], [1, 2, 3])
    assert len(ok) == 3 and not ok.arrival_s.flags.writeable
    with pytest.raises(TwinError, match="strictly increasing"):
        RequestStream([0.0, 0.5, 0.5], [1, 1, 1], [1, 1, 1])
    with pytest.raises(TwinError, match="strictly increasing"):
        RequestStream([0.0, 2.0, 1.0], [1, 1, 1], [1, 1, 1])
    with pytest.raises(TwinError, match="equal length"):
        RequestStream([0.0, 1.0], [1, 1, 1], [1, 1, 1])
    with pytest.raises(TwinError, match=">= 0"):
        RequestStream([0.0, 1.0], [1, -1], [1, 1])


def test_requests_to_jobs_by_hand():
    # window 60 s; one GPU prefills 1000 tokens/s and decodes 10 tokens/s
    stream = RequestStream(arrival_s=[0.5, 10.0, 59.9, 61.0, 200.0],
                           context_tokens=[30_000, 0, 30_000, 6_000, 1_000],
                           generated_tokens=[300, 200, 500, 0, 0])
    jobs = requests_to_jobs(stream, window_s=60, prefill_tokens_per_gpu_s=1000.0, decode_tokens_per_gpu_s=10.0,
                            power_model="h100", id_prefix="w")
    # window 0: 60 s prefill + 100 s decode = 160 GPU-s -> 3 GPUs at 160/180; window 1: 6 GPU-s; window 3: 1 GPU-s
    assert [(j.job_id, j.submit_time_s, j.duration_s, j.n_gpus) for j in jobs] == [
        ("w0", 0, 60, 3), ("w1", 60, 60, 1), ("w3", 180, 60, 1)]
    assert [j.gpu_share for j in jobs] == pytest.approx([160 / 180, 6 / 60, 1 / 60], rel=WORK_RTOL)
    assert all(j.workload_class is WorkloadClass.ONLINE_INFERENCE and not j.preemptible and j.deadline_s is None
               and j.power_model == "h100" for j in jobs)


def test_requests_to_jobs_rejects_bad_parameters():
    s = RequestStream([0.0], [1], [1])
    with pytest.raises(TwinError, match="window_s"):
        requests_to_jobs(s, window_s=0, prefill_tokens_per_gpu_s=1.0, decode_tokens_per_gpu_s=1.0)
    with pytest.raises(TwinError, match="decode_tokens_per_gpu_s"):
        requests_to_jobs(s, window_s=60, prefill_tokens_per_gpu_s=1.0, decode_tokens_per_gpu_s=math.nan)


def test_azure_requests_to_jobs_conserve_work(shared_data):
    stream = read_azure(shared_data / "llm_inference_azure" / "AzureLLMInferenceTrace_code.csv")
    prefill, decode, window = 8000.0, 400.0, 60
    jobs = requests_to_jobs(stream, window_s=window, prefill_tokens_per_gpu_s=prefill,
                            decode_tokens_per_gpu_s=decode)
    work_gpu_s = float(np.sum(stream.context_tokens / prefill + stream.generated_tokens / decode))
    assert sum(j.n_gpus * j.gpu_share * j.duration_s for j in jobs) == pytest.approx(work_gpu_s, rel=WORK_RTOL)
    starts = [j.submit_time_s for j in jobs]
    assert starts == sorted(set(starts)) and all(s % window == 0 for s in starts)
    assert len(jobs) == len(np.unique(np.floor(stream.arrival_s / window)))
