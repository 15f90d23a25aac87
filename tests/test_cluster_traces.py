"""Trace readers and the job table: real traces read as documented, bad traces rejected naming file, row, column."""
import csv
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.cluster.jobs import WorkloadClass
from twin.cluster.traces import MAX_REPORTED, read_alibaba, read_azure, read_jobs, write_jobs
from twin.errors import TraceError

EXAMPLE = Path(__file__).parent / "data" / "traces" / "jobs_example.csv"
TIME_ATOL_S = 1e-9


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problem(path: Path, row: int | None, column: str, fragment: str) -> str:
    """A regex for one listed problem of a TraceError."""
    where = "file" if row is None else f"data row {row}"
    return rf"(?s){re.escape(str(path))}: .*{where}, column '{re.escape(column)}': [^\n]*{re.escape(fragment)}"


# ------------------------------------------------------------------------------------------------ job table
def test_example_table():
    jobs = read_jobs(EXAMPLE)
    assert [j.job_id for j in jobs] == ["llm-pretrain-1", "ft-7", "eval-3", "chat-serve", "embed-batch", "misc"]
    pre, ft, ev, chat, batch, misc = jobs
    assert (pre.n_gpus, pre.duration_s, pre.checkpoint_interval_s, pre.power_model) == (64, 604800, 3600, "h100-sxm")
    assert pre.workload_class is WorkloadClass.PRETRAINING and pre.earliest_start_s == 0 and pre.gpu_share == 1.0
    assert ft.preemptible and ft.deadline_s == 86400 and ft.earliest_start_s == 3600
    assert ev.power_model == "default" and ev.earliest_start_s == 7200 and ev.checkpoint_interval_s is None
    assert chat.gpu_share == 0.6 and not chat.preemptible
    assert batch.deadline_s == 100000 and batch.gpu_share == 1.0
    assert misc.workload_class is WorkloadClass.OTHER and misc.preemptible is False


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_round_trip(tmp_path, shared_data, suffix):
    alibaba = read_alibaba(shared_data / "gpu_jobs_alibaba" / "openb_pod_list_first_half.csv").jobs
    jobs = sorted(read_jobs(EXAMPLE) + alibaba, key=lambda j: j.submit_time_s)
    back = read_jobs(write_jobs(jobs, tmp_path / f"jobs{suffix}"))
    assert back == tuple(jobs)


GOOD = "job_id,submit_time_s,duration_s,n_gpus,workload_class\na,0,10,1,other\nb,5,10,2,pretraining\n"


@pytest.mark.parametrize("text, row, column, fragment", [
    ("job_id,submit_time_s,n_gpus,workload_class\na,0,1,other\n", None, "duration_s", "missing column"),
    (GOOD.replace("workload_class\n", "workload_class,deadline\n").replace("other\n", "other,5\n")
     .replace("pretraining\n", "pretraining,\n"), None, "deadline", "unknown column"),
    (GOOD.replace("b,5,10", "b,5,-3"), 2, "duration_s", "got -3"),
    (GOOD.replace("b,5,10", "b,5,nan"), 2, "duration_s", "missing value"),
    (GOOD.replace("b,5,10", "b,5,"), 2, "duration_s", "missing value"),
    (GOOD.replace("b,5,10,2", "b,5,10,two"), 2, "n_gpus", "not a number: 'two'"),
    (GOOD.replace("b,5,10,2", "b,5,10,2.5"), 2, "n_gpus", "not an integer"),
    (GOOD.replace("b,5,", "b,-5,"), 2, "submit_time_s", "not sorted: -5 is earlier than 0 in data row 1"),
    (GOOD.replace("a,0,", "a,9,"), 2, "submit_time_s", "not sorted: 5 is earlier than 9 in data row 1"),
    (GOOD.replace("b,5,", "a,5,"), 2, "job_id", "duplicate 'a', first in data row 1"),
    (GOOD.replace("pretraining", "training"), 2, "workload_class", "unknown class 'training'"),
    (GOOD.replace("workload_class\n", "workload_class,gpu_share\n").replace("other\n", "other,0\n")
     .replace("pretraining\n", "pretraining,\n"), 1, "gpu_share", "(0, 1]"),
    (GOOD.replace("workload_class\n", "workload_class,preemptible\n").replace("other\n", "other,maybe\n")
     .replace("pretraining\n", "pretraining,\n"), 1, "preemptible", "not true/false: 'maybe'"),
    (GOOD.replace("workload_class\n", "workload_class,deadline_s\n").replace("other\n", "other,9\n")
     .replace("pretraining\n", "pretraining,\n"), 1, "deadline_s", "no schedule meets 9"),
])
def test_bad_job_tables(tmp_path, text, row, column, fragment):
    path = write(tmp_path, "jobs.csv", text)
    with pytest.raises(TraceError, match=problem(path, row, column, fragment)):
        read_jobs(path)


def test_simultaneous_submissions_are_allowed(tmp_path):
    jobs = read_jobs(write(tmp_path, "jobs.csv", GOOD.replace("b,5,", "b,0,")))
    assert [j.submit_time_s for j in jobs] == [0, 0]


def test_all_problems_reported_together(tmp_path):
    rows = "".join(f"j{i},{i},{-i - 1},1,other\n" for i in range(30))
    path = write(tmp_path, "jobs.csv", "job_id,submit_time_s,duration_s,n_gpus,workload_class\n" + rows
                 + "x,99,10,1,nonsense\n")
    with pytest.raises(TraceError) as e:
        read_jobs(path)
    message = str(e.value)
    assert message.startswith(f"{path}: 31 problems")
    assert len(re.findall(r"data row \d+, column 'duration_s'", message)) == MAX_REPORTED
    assert message.rstrip().endswith(f"... and {31 - MAX_REPORTED} more")


def test_several_problems_in_one_row(tmp_path):
    path = write(tmp_path, "jobs.csv", GOOD.replace("b,5,10,2,pretraining", "b,5,-1,0,chatbot"))
    with pytest.raises(TraceError) as e:
        read_jobs(path)
    for column in ("duration_s", "n_gpus", "workload_class"):
        assert re.search(problem(path, 2, column, ""), str(e.value))


def test_parquet_nan_and_types(tmp_path):
    frame = pd.DataFrame({"job_id": ["a", "b"], "submit_time_s": [0, 5], "duration_s": [10.0, np.nan],
                          "n_gpus": [1, 2], "workload_class": ["other", "other"]})
    path = tmp_path / "jobs.parquet"
    frame.to_parquet(path)
    with pytest.raises(TraceError, match=problem(path, 2, "duration_s", "missing value")):
        read_jobs(path)
    frame["duration_s"] = [10.0, 20.0]
    frame["preemptible"] = [True, False]
    frame.to_parquet(path)
    assert [(j.duration_s, j.preemptible) for j in read_jobs(path)] == [(10, True), (20, False)]


def test_unreadable_files(tmp_path):
    with pytest.raises(TraceError, match="unknown file type '.txt'"):
        read_jobs(write(tmp_path, "jobs.txt", GOOD))
    with pytest.raises(TraceError, match="cannot read the file"):
        read_jobs(tmp_path / "absent.csv")
    with pytest.raises(TraceError, match="unknown file type"):
        write_jobs([], tmp_path / "jobs.json")


# -------------------------------------------------------------------------------------------------- Alibaba
ALI_HEADER = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time," \
             "scheduled_time\n"
ALI_ROWS = ["p0,1000,1024,1,500,,LS,Running,100,500,110",
            "p1,1000,1024,0,0,,BE,Failed,120,300,120",        # CPU only: dropped
            "p2,1000,1024,8,1000,,BE,Succeeded,130,900,140",
            "p3,1000,1024,1,1000,,LS,Pending,150,160,",       # never scheduled: dropped
            "p4,1000,1024,2,1000,,Burstable,Running,160,900,170"]  # still running at the trace end: censored


def alibaba(tmp_path: Path, rows=ALI_ROWS, header=ALI_HEADER) -> Path:
    return write(tmp_path, "pods.csv", header + "\n".join(rows) + "\n")


def test_alibaba_decisions(tmp_path):
    trace = read_alibaba(alibaba(tmp_path), power_model="v100")
    assert [j.job_id for j in trace.jobs] == ["p0", "p2", "p4"]
    p0, p2, p4 = trace.jobs
    assert (p0.submit_time_s, p0.duration_s, p0.n_gpus, p0.gpu_share) == (100, 390, 1, 0.5)
    assert p0.workload_class is WorkloadClass.ONLINE_INFERENCE and not p0.preemptible and p0.power_model == "v100"
    assert (p2.duration_s, p2.n_gpus, p2.gpu_share, p2.preemptible) == (760, 8, 1.0, True)
    assert p2.workload_class is WorkloadClass.BATCH_INFERENCE
    assert p4.workload_class is WorkloadClass.OTHER and p4.duration_s == 730
    assert trace.censored == {"p4"}
    assert (trace.start_s, trace.end_s) == (160, 161)


@pytest.mark.parametrize("row_index, new_row, column, fragment", [
    (0, "p0,1000,1024,1,500,,LS,Running,100,105,110", "deletion_time", "negative duration"),
    (0, "p0,1000,1024,1,500,,LS,Running,100,500,90", "scheduled_time", "before creation_time"),
    (2, "p2,1000,1024,8,1000,,BE,Succeeded,90,900,140", "creation_time", "not sorted: 90 is earlier than 120"),
    (1, "p0,1000,1024,0,0,,BE,Failed,120,300,120", "name", "duplicate 'p0'"),
    (0, "p0,1000,1024,1,500,,Gold,Running,100,500,110", "qos", "unknown class 'Gold'"),
    (0, "p0,1000,1024,1,500,,LS,Lost,100,500,110", "pod_phase", "unknown phase 'Lost'"),
    (0, "p0,1000,1024,1,500,,LS,Running,NaN,500,110", "creation_time", "missing value"),
    (0, "p0,1000,1024,1,500,,LS,Running,100,500,", "scheduled_time", "missing for a pod in phase Running"),
    (0, "p0,1000,1024,1,1500,,LS,Running,100,500,110", "gpu_milli", "[1, 1000]"),
    (0, "p0,1000,1024,-1,500,,LS,Running,100,500,110", "num_gpu", "negative"),
])
def test_alibaba_bad(tmp_path, row_index, new_row, column, fragment):
    rows = list(ALI_ROWS)
    rows[row_index] = new_row
    path = alibaba(tmp_path, rows)
    with pytest.raises(TraceError, match=problem(path, row_index + 1, column, fragment)):
        read_alibaba(path)


def test_alibaba_missing_column(tmp_path):
    path = alibaba(tmp_path, [r.rsplit(",", 1)[0] for r in ALI_ROWS], ALI_HEADER.replace(",scheduled_time", ""))
    with pytest.raises(TraceError, match=problem(path, None, "scheduled_time", "missing column")):
        read_alibaba(path)


def test_alibaba_shared_trace(shared_data):
    path = shared_data / "gpu_jobs_alibaba" / "openb_pod_list_first_half.csv"
    trace = read_alibaba(path)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    end = max(int(r["deletion_time"]) for r in rows)
    kept = [r for r in rows if int(r["num_gpu"]) >= 1 and r["scheduled_time"] != ""]
    assert [j.job_id for j in trace.jobs] == [r["name"] for r in kept]
    assert trace.censored == {r["name"] for r in kept if r["pod_phase"] == "Running" and int(r["deletion_time"]) == end}
    assert trace.start_s == min(int(r["deletion_time"]) for r in rows)
    assert trace.end_s == max(int(r["creation_time"]) for r in rows) + 1
    by_id = {j.job_id: j for j in trace.jobs}
    j = by_id["openb-pod-0017"]  # 8 GPUs, Burstable, Succeeded, created 9437497, deleted 10769854
    assert (j.n_gpus, j.duration_s, j.workload_class, j.gpu_share) == (8, 10769854 - 9437497, WorkloadClass.OTHER, 1.0)
    j = by_id["openb-pod-0001"]  # a 460-milli GPU share, LS, still running at the trace end
    assert (j.n_gpus, j.gpu_share, j.duration_s) == (1, 0.46, end - 427061) and j.job_id in trace.censored
    assert sum(j.submit_time_s < trace.start_s for j in trace.jobs) > 0  # survivors from before the recording


# ---------------------------------------------------------------------------------------------------- Azure
AZ_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
AZ_ROWS = ["2023-11-16 18:17:03.9799600,4808,10", "2023-11-16 18:17:04.0319600,3180,8",
           "2023-11-16 18:17:04.0781490,110,27"]


@pytest.mark.parametrize("row_index, new_row, column, fragment", [
    (2, "2023-11-16 18:17:04.0319600,110,27", "TIMESTAMP",
     "duplicate time: 2023-11-16 18:17:04.0319600 is also in data row 2"),
    (2, "2023-11-16 18:17:04.0000000,110,27", "TIMESTAMP", "is earlier than"),
    (1, "yesterday,3180,8", "TIMESTAMP", "not a time"),
    (1, ",3180,8", "TIMESTAMP", "missing value"),
    (1, "2023-11-16 18:17:04.0319600,,8", "ContextTokens", "missing value"),
    (1, "2023-11-16 18:17:04.0319600,3180,nan", "GeneratedTokens", "missing value"),
    (1, "2023-11-16 18:17:04.0319600,3180,-8", "GeneratedTokens", "negative"),
    (1, "2023-11-16 18:17:04.0319600,31.5,8", "ContextTokens", "not an integer"),
])
def test_azure_bad(tmp_path, row_index, new_row, column, fragment):
    rows = list(AZ_ROWS)
    rows[row_index] = new_row
    path = write(tmp_path, "azure.csv", AZ_HEADER + "\n".join(rows) + "\n")
    with pytest.raises(TraceError, match=problem(path, row_index + 1, column, fragment)):
        read_azure(path)


def test_azure_missing_column(tmp_path):
    path = write(tmp_path, "azure.csv", "TIMESTAMP,ContextTokens\n2023-11-16 18:17:03.9799600,4808\n")
    with pytest.raises(TraceError, match=problem(path, None, "GeneratedTokens", "missing column")):
        read_azure(path)


def test_azure_shared_trace(shared_data):
    stream = read_azure(shared_data / "llm_inference_azure" / "AzureLLMInferenceTrace_code.csv")
    assert len(stream) == 8819
    assert stream.start_utc == datetime(2023, 11, 16, 18, 17, 3, 979960, tzinfo=timezone.utc)
    assert stream.arrival_s[:3] == pytest.approx([0.0, 0.052, 0.098189], abs=TIME_ATOL_S)
    # last request 2023-11-16 19:14:19.9280160
    assert stream.arrival_s[-1] == pytest.approx(57 * 60 + 15.9480560, abs=TIME_ATOL_S)
    assert (stream.context_tokens[0], stream.generated_tokens[0]) == (4808, 10)
