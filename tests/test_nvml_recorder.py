"""NVML recorder: against a fake NVML (known power waveform and energy counter), a replayed trace, and a real GPU.

The fake clock moves only when the recorder sleeps or an NVML call takes its (simulated) latency, so nothing here
depends on how fast the machine is.
"""
import json
import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from twin import nvml_recorder
from twin.errors import NvmlError
from twin.nvml_fake import FakeClock, FakeGpu, FakeNvml, ReplayNvml
from twin.nvml_recorder import FIELDS, NvmlUnavailableError, main_record, record, sidecar_path

NOT_SUPPORTED = 3        # NVML_ERROR_NOT_SUPPORTED
NO_PERMISSION = 4        # NVML_ERROR_NO_PERMISSION
MW_W = 0.5e-3            # NVML reports power in integer mW: a reading is within half a mW of the true power
MJ_J = 1e-3              # the energy counter counts integer mJ
INTERVAL_S = 0.1
DURATION_S = 2.3         # 24 fast ticks (0..23), slow ticks 0, 10, 20
N_FAST = 24
N_SLOW = 3
PERIOD_S = 1.7           # not commensurate with the interval or the duration: the trapezoid rule is not exact
FIRST_CHOICE = {         # the source of each field where everything works
    "power_W": "nvmlDeviceGetFieldValues(NVML_FI_DEV_POWER_INSTANT)",
    "power_avg_W": "nvmlDeviceGetFieldValues(NVML_FI_DEV_POWER_AVERAGE)",
    "energy_J": "nvmlDeviceGetTotalEnergyConsumption",
    "temperature_K": "nvmlDeviceGetTemperatureV",
    "sm_clock_Hz": "nvmlDeviceGetClockInfo(NVML_CLOCK_SM)",
    "mem_clock_Hz": "nvmlDeviceGetClockInfo(NVML_CLOCK_MEM)",
    "util_gpu_rel": "nvmlDeviceGetUtilizationRates().gpu",
    "util_mem_rel": "nvmlDeviceGetUtilizationRates().memory",
    "power_limit_W": "nvmlDeviceGetEnforcedPowerLimit",
    "throttle_reasons": "nvmlDeviceGetCurrentClocksEventReasons",
    "n_processes": "nvmlDeviceGetComputeRunningProcesses",
}


def two_gpus(**gpu1) -> list[FakeGpu]:
    return [FakeGpu(period_s=PERIOD_S),
            FakeGpu(uuid="GPU-11111111-1111-1111-1111-111111111111", P_base_W=450.0, P_amp_W=150.0,
                    period_s=PERIOD_S * 1.3, **gpu1)]


def run(tmp_path: Path, gpus: list[FakeGpu], *, latency_s: float = 0.0, fake_kw: dict | None = None, **kw):
    """Record the fake into tmp_path/trace.parquet: (result, trace frame, fake, start time on the fake clock)."""
    clock = FakeClock()
    fake = FakeNvml(gpus, clock, call_latency_s=latency_s, **(fake_kw or {}))
    kw.setdefault("duration_s", DURATION_S)
    kw.setdefault("interval_s", INTERVAL_S)
    rec = record(tmp_path / "trace.parquet", nvml=fake, clock=clock, sleep=clock.sleep, **kw)
    assert fake.init_count == 0, "NVML was not shut down"
    return rec, pd.read_parquet(rec.trace_path), fake, rec.sidecar["start_monotonic_s"]


def series(df: pd.DataFrame, gpu: int, field: str) -> tuple[np.ndarray, np.ndarray]:
    s = df[(df["gpu"] == gpu) & (df["field"] == field)]
    return s["t_s"].to_numpy(), s["value"].to_numpy()


def trapezoid_bound_J(gpu: FakeGpu, duration_s: float, h_s: float) -> float:
    """Error bound of the trapezoid rule for the fake's sine: (b - a) h^2 max|P''| / 12, plus the mW rounding."""
    w = 2 * math.pi / gpu.period_s
    return duration_s * h_s**2 * gpu.P_amp_W * w**2 / 12 + duration_s * MW_W


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    return lines[0]


# ------------------------------------------------------------------------------------------------ the trace
def test_trace_format_and_values(tmp_path):
    latency_s = 1e-3
    rec, df, fake, t0 = run(tmp_path, two_gpus(), latency_s=latency_s)
    assert rec.status == "complete" and rec.warnings == ()
    schema = pq.read_schema(rec.trace_path)
    assert schema.names == ["t_s", "gpu", "field", "value"]
    assert schema.field("t_s").type == pa.float64() and schema.field("gpu").type == pa.int16()
    assert schema.field("value").type == pa.float64() and pa.types.is_dictionary(schema.field("field").type)
    assert isinstance(df["field"].dtype, pd.CategoricalDtype) and len(df) == rec.n_rows

    counts = df.groupby(["gpu", "field"], observed=True).size()
    for gpu in (0, 1):
        for field in FIELDS:
            assert counts[(gpu, field)] == (N_FAST if field in nvml_recorder.FAST_FIELDS else N_SLOW), (gpu, field)
        t, _ = series(df, gpu, "power_W")
        ticks = np.arange(N_FAST) * INTERVAL_S
        # each reading is stamped inside its tick: after the tick is due, before the next one
        assert np.all(t >= ticks) and np.all(t < ticks + INTERVAL_S)
        t_slow, _ = series(df, gpu, "temperature_K")
        assert np.all(t_slow >= ticks[::10]) and np.all(t_slow < ticks[::10] + INTERVAL_S)

    for gpu, sim in enumerate(fake.gpus):
        for field in FIELDS:
            t, v = series(df, gpu, field)
            want = np.array([sim.value(field, t0 + ti) for ti in t])
            if field == "energy_J":
                want -= rec.sidecar["gpus"][gpu]["energy_counter_start_J"]
                np.testing.assert_allclose(v, want, rtol=0, atol=MJ_J, err_msg=field)
            elif field in ("power_W", "power_avg_W", "power_limit_W"):
                np.testing.assert_allclose(v, want, rtol=0, atol=MW_W + 1e-9, err_msg=field)
            else:
                np.testing.assert_allclose(v, want, rtol=1e-12, err_msg=field)


def test_sidecar(tmp_path):
    rec, df, fake, _ = run(tmp_path, two_gpus())
    side = json.loads(sidecar_path(rec.trace_path).read_text())
    assert sidecar_path(rec.trace_path) == tmp_path / "trace.json" and side == rec.sidecar
    assert side["status"] == "complete" and side["trace"] == "trace.parquet"
    assert (side["driver_version"], side["nvml_version"], side["cuda_driver_version"]) == ("550.54.15",
                                                                                         "12.550.54.15", "12.4")
    assert datetime.fromisoformat(side["start_wall_clock_utc"]).utcoffset().total_seconds() == 0
    assert side["interval_s"] == INTERVAL_S and side["slow_interval_s"] == pytest.approx(1.0)
    assert (side["n_rows"], side["n_fast_ticks"], side["n_slow_ticks"], side["missed_ticks"]) == (
        len(df), N_FAST, N_SLOW, 0)
    assert side["recorded_s"] == df["t_s"].max()
    for entry, sim in zip(side["gpus"], fake.gpus):
        assert (entry["name"], entry["uuid"]) == (sim.name, sim.uuid)
        assert (entry["power_limit_min_W"], entry["power_limit_max_W"], entry["power_limit_default_W"],
                entry["power_limit_enforced_W"]) == (sim.power_limit_min_W, sim.power_limit_max_W,
                                                     sim.power_limit_default_W, sim.power_limit_W)
        assert {f: e["source"] for f, e in entry["fields"].items()} == FIRST_CHOICE
        assert all(e["measured"] and "failed" not in e for e in entry["fields"].values())


# ------------------------------------------------------------------------------------------------ energy
def test_replayed_trace_energy_matches_the_known_energy(tmp_path):
    """Read the trace back: the integrated power and the counter both give the fake's exact energy."""
    rec, _, fake, t0 = run(tmp_path, two_gpus())
    df = pq.read_table(rec.trace_path).to_pandas()
    for gpu, sim in enumerate(fake.gpus):
        t, p = series(df, gpu, "power_W")
        true_J = sim.true_energy_J(t0 + t[-1]) - sim.true_energy_J(t0 + t[0])
        integrated_J = float(np.sum(0.5 * (p[1:] + p[:-1]) * np.diff(t)))
        assert abs(integrated_J - true_J) <= trapezoid_bound_J(sim, t[-1] - t[0], INTERVAL_S)
        te, e = series(df, gpu, "energy_J")
        assert e[0] == 0.0
        counter_true_J = sim.true_energy_J(t0 + te[-1]) - sim.true_energy_J(t0 + te[0])
        assert e[-1] == pytest.approx(counter_true_J, abs=2 * MJ_J)
        check = rec.sidecar["gpus"][gpu]["energy_check"]
        assert check["counter_J"] == pytest.approx(e[-1], rel=1e-12)
        assert check["rel_diff"]["power_W"] == pytest.approx((integrated_J - e[-1]) / e[-1], rel=1e-9, abs=1e-12)
        assert abs(check["rel_diff"]["power_W"]) < nvml_recorder.ENERGY_CHECK_TOL_REL


def test_energy_check_warns_when_the_counter_disagrees(tmp_path):
    rec, *_ = run(tmp_path, [FakeGpu(period_s=PERIOD_S, energy_scale=1.1)])
    diff = rec.sidecar["gpus"][0]["energy_check"]["rel_diff"]["power_W"]
    assert diff == pytest.approx(1 / 1.1 - 1, abs=5e-3)
    assert len(rec.warnings) == 1 and "GPU 0" in rec.warnings[0] and "energy counter" in rec.warnings[0]
    assert json.loads(rec.sidecar_path.read_text())["warnings"] == list(rec.warnings)


def test_energy_integrated_where_there_is_no_counter(tmp_path):
    gpu = FakeGpu(period_s=PERIOD_S, errors={"nvmlDeviceGetTotalEnergyConsumption": NOT_SUPPORTED})
    rec, df, fake, t0 = run(tmp_path, [gpu])
    entry = rec.sidecar["gpus"][0]
    assert entry["fields"]["energy_J"]["source"] == "integrated from power_W (trapezoid)"
    assert entry["fields"]["energy_J"]["measured"] is False
    assert "Not Supported" in entry["fields"]["energy_J"]["failed"][0]
    assert entry["energy_check"]["reason"] == "no energy counter" and "rel_diff" not in entry["energy_check"]
    assert any("no energy counter" in w for w in rec.warnings)
    t, p = series(df, 0, "power_W")
    te, e = series(df, 0, "energy_J")
    np.testing.assert_array_equal(te, t)
    np.testing.assert_allclose(e, np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(t))]), rtol=1e-12)
    true_J = gpu.true_energy_J(t0 + t[-1]) - gpu.true_energy_J(t0 + t[0])
    assert abs(e[-1] - true_J) <= trapezoid_bound_J(gpu, t[-1] - t[0], INTERVAL_S)


# ------------------------------------------------------------------------------------------------ fallbacks
FALLBACKS = {
    "field values not supported": (
        {"errors": {"nvmlDeviceGetFieldValues": NOT_SUPPORTED}}, {},
        {"power_W": "nvmlDeviceGetPowerUsage", "power_avg_W": None}),
    "average power field not supported": (
        {"errors": {"NVML_FI_DEV_POWER_AVERAGE": NOT_SUPPORTED}}, {},
        {"power_W": "nvmlDeviceGetFieldValues(NVML_FI_DEV_POWER_INSTANT)", "power_avg_W": None}),
    "older driver": (
        {}, {"function_not_found": {"nvmlDeviceGetFieldValues", "nvmlDeviceGetTemperatureV",
                                    "nvmlDeviceGetCurrentClocksEventReasons"}},
        {"power_W": "nvmlDeviceGetPowerUsage", "power_avg_W": None, "temperature_K": "nvmlDeviceGetTemperature",
         "throttle_reasons": "nvmlDeviceGetCurrentClocksThrottleReasons"}),
    "older pynvml": (
        {}, {"missing": {"nvmlDeviceGetTemperatureV", "nvmlDeviceGetCurrentClocksEventReasons"}},
        {"temperature_K": "nvmlDeviceGetTemperature",
         "throttle_reasons": "nvmlDeviceGetCurrentClocksThrottleReasons"}),
    "no enforced limit, no process list": (
        {"errors": {"nvmlDeviceGetEnforcedPowerLimit": NOT_SUPPORTED,
                    "nvmlDeviceGetComputeRunningProcesses": NO_PERMISSION}}, {},
        {"power_limit_W": "nvmlDeviceGetPowerManagementLimit", "n_processes": None}),
}


@pytest.mark.parametrize("case", FALLBACKS)
def test_fallback_chain(tmp_path, case):
    gpu_kw, fake_kw, expected = FALLBACKS[case]
    rec, df, fake, t0 = run(tmp_path, [FakeGpu(period_s=PERIOD_S, **gpu_kw)], fake_kw=fake_kw)
    fields = rec.sidecar["gpus"][0]["fields"]
    for field in FIELDS:
        source = fields[field]["source"]
        assert source == expected.get(field, FIRST_CHOICE[field]), field
        # every source tried before the one used is listed with why it failed
        assert bool(fields[field].get("failed")) == (source != FIRST_CHOICE[field]), field
        n = len(series(df, 0, field)[0])
        assert n == (0 if source is None else N_FAST if field in nvml_recorder.FAST_FIELDS else N_SLOW), field
    t, p = series(df, 0, "power_W")
    np.testing.assert_allclose(p, [fake.gpus[0].power_W(t0 + ti) for ti in t], rtol=0, atol=MW_W + 1e-9)
    if "power_limit_W" in expected:
        assert rec.sidecar["gpus"][0]["power_limit_enforced_W"] is None
        assert "power_limit_enforced_W" in rec.sidecar["gpus"][0]["static_unavailable"]


# ------------------------------------------------------------------------------------------------ replay
def test_replay_reproduces_the_recording(tmp_path):
    """A trace played back through ReplayNvml and recorded again gives the same trace."""
    (tmp_path / "a").mkdir()
    gpus = two_gpus(errors={"NVML_FI_DEV_POWER_AVERAGE": NOT_SUPPORTED,
                            "nvmlDeviceGetTotalEnergyConsumption": NOT_SUPPORTED})
    first, df, *_ = run(tmp_path / "a", gpus)
    clock = FakeClock(start_s=37.0)
    replay = ReplayNvml(first.trace_path, clock)
    again = record(tmp_path / "again.parquet", nvml=replay, clock=clock, sleep=clock.sleep, duration_s=DURATION_S,
                   interval_s=INTERVAL_S)
    df2 = pd.read_parquet(again.trace_path)
    assert len(df2) == len(df) and replay.init_count == 0
    assert (df2["gpu"].to_numpy() == df["gpu"].to_numpy()).all()
    assert (df2["field"].astype(str).to_numpy() == df["field"].astype(str).to_numpy()).all()
    np.testing.assert_allclose(df2["t_s"], df["t_s"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(df2["value"], df["value"], rtol=1e-9)
    for a, b in zip(first.sidecar["gpus"], again.sidecar["gpus"]):
        assert (a["name"], a["uuid"], a["power_limit_max_W"]) == (b["name"], b["uuid"], b["power_limit_max_W"])
        assert {f: e["source"] is None for f, e in a["fields"].items()} == {
            f: e["source"] is None for f, e in b["fields"].items()}
        assert a["fields"]["energy_J"]["measured"] == b["fields"]["energy_J"]["measured"]
    assert again.sidecar["driver_version"] == first.sidecar["driver_version"]


# ------------------------------------------------------------------------------------------------ timing, chunks
def test_ticks_do_not_drift_and_late_ticks_are_skipped(tmp_path):
    # a tick costs 2 GPUs x 2 fast calls x 20 ms (plus the slow calls every 10th): longer than the interval
    rec, df, *_ = run(tmp_path, two_gpus(), latency_s=0.02)
    side = rec.sidecar
    assert side["missed_ticks"] > 0 and any("skipped" in w for w in rec.warnings)
    assert side["n_fast_ticks"] + side["missed_ticks"] == N_FAST
    t, _ = series(df, 0, "power_W")
    ticks = t / INTERVAL_S
    # every tick starts when due (within the 10 ms before the first call returns), never between ticks
    np.testing.assert_allclose(ticks, np.round(ticks), atol=0.011 / INTERVAL_S)
    assert np.all(np.diff(np.round(ticks)) >= 1)


def test_chunks_are_row_groups_with_the_same_content(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    whole, *_ = run(tmp_path / "a", two_gpus())
    chunked, *_ = run(tmp_path / "b", two_gpus(), chunk_rows=7)
    meta = pq.ParquetFile(chunked.trace_path).metadata
    assert meta.num_row_groups == math.ceil(chunked.n_rows / 7)
    assert all(meta.row_group(i).num_rows <= 7 for i in range(meta.num_row_groups))
    assert pq.ParquetFile(whole.trace_path).metadata.num_row_groups == 1
    assert pq.read_table(chunked.trace_path).equals(pq.read_table(whole.trace_path))


# ------------------------------------------------------------------------------------------------ command line
def test_main_record(tmp_path, capsys):
    clock = FakeClock()
    fake = FakeNvml(two_gpus(), clock)
    out = tmp_path / "trace.parquet"
    argv = ["--gpus", "1", "--interval", "0.2", "--slow-interval", "0.6", "--duration", "1.2s", "--out", str(out)]
    assert main_record(argv, nvml=fake, clock=clock, sleep=clock.sleep) == 0
    df = pd.read_parquet(out)
    assert set(df["gpu"]) == {1}
    counts = df.groupby("field", observed=True).size()
    assert counts["power_W"] == 7 and counts["temperature_K"] == 3
    assert json.loads((tmp_path / "trace.json").read_text())["slow_interval_s"] == pytest.approx(0.6)
    captured = capsys.readouterr()
    assert captured.err == "" and str(out) in captured.out


def test_ctrl_c_leaves_a_readable_trace(tmp_path, capsys):
    clock = FakeClock(interrupt_on_sleep=8)
    fake = FakeNvml(two_gpus(), clock)
    out = tmp_path / "trace.parquet"
    assert main_record(["--out", str(out)], nvml=fake, clock=clock, sleep=clock.sleep) == 130
    df = pd.read_parquet(out)
    assert df.groupby(["gpu", "field"], observed=True).size()[(0, "power_W")] == 8
    side = json.loads((tmp_path / "trace.json").read_text())
    assert side["status"] == "interrupted" and side["n_rows"] == len(df) and fake.init_count == 0


def test_gpu_lost_while_recording(tmp_path, capsys):
    clock = FakeClock()
    fake = FakeNvml([FakeGpu(lost_at_s=clock() + 1.05)], clock)
    out = tmp_path / "trace.parquet"
    assert main_record(["--duration", "3", "--out", str(out)], nvml=fake, clock=clock, sleep=clock.sleep) == 1
    assert "GPU is lost" in one_line(capsys.readouterr().err)
    t, _ = series(pd.read_parquet(out), 0, "power_W")
    assert len(t) == 11 and t[-1] <= 1.05
    side = json.loads((tmp_path / "trace.json").read_text())
    assert side["status"] == "failed" and "GPU is lost" in side["error"] and fake.init_count == 0


@pytest.mark.parametrize("mode, gpus, message", [
    ("no_driver", 1, "Driver Not Loaded"),
    ("no_library", 1, "Library Not Found"),
    ("ok", 0, "no GPU"),
])
def test_no_driver_or_no_gpu(tmp_path, capsys, mode, gpus, message):
    clock = FakeClock()
    fake = FakeNvml([FakeGpu() for _ in range(gpus)], clock, mode=mode)
    out = tmp_path / "trace.parquet"
    assert main_record(["--duration", "1", "--out", str(out)], nvml=fake, clock=clock, sleep=clock.sleep) == 2
    assert message in one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == [] and fake.init_count == 0
    if mode != "ok":
        with pytest.raises(NvmlUnavailableError, match=message):
            nvml_recorder.gpu_count(fake)
    else:
        assert nvml_recorder.gpu_count(fake) == 0


@pytest.mark.parametrize("argv, fragment", [
    (["--interval", "0"], "--interval"),
    (["--interval", "-0.1"], "--interval"),
    (["--interval", "fast"], "--interval"),
    (["--duration", "0"], "--duration"),
    (["--gpus", "a"], "--gpus"),
    (["--gpus", "0,0"], "--gpus"),
    (["--gpus", "-1"], "--gpus"),
    (["--slow-interval", "0.05"], "--slow-interval"),
    (["--bogus", "1"], "unrecognized"),
    ([], "--out"),
])
def test_bad_arguments(tmp_path, capsys, argv, fragment):
    clock = FakeClock()
    fake = FakeNvml(two_gpus(), clock)
    if argv:
        argv = argv + ["--out", str(tmp_path / "trace.parquet")]
    assert main_record(argv, nvml=fake, clock=clock, sleep=clock.sleep) == 2
    assert fragment in one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == [] and sum(fake.calls.values()) == 0


@pytest.mark.parametrize("out, fragment", [("trace.csv", ".parquet"), ("missing/trace.parquet", "does not exist")])
def test_bad_out(tmp_path, capsys, out, fragment):
    clock = FakeClock()
    fake = FakeNvml(two_gpus(), clock)
    assert main_record(["--out", str(tmp_path / out)], nvml=fake, clock=clock, sleep=clock.sleep) == 2
    assert fragment in one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == [] and sum(fake.calls.values()) == 0


def test_no_such_gpu(tmp_path, capsys):
    clock = FakeClock()
    fake = FakeNvml(two_gpus(), clock)
    argv = ["--gpus", "0,2", "--out", str(tmp_path / "trace.parquet")]
    assert main_record(argv, nvml=fake, clock=clock, sleep=clock.sleep) == 2
    assert "2 GPU(s)" in one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == [] and fake.init_count == 0


# ------------------------------------------------------------------------------------------------ real NVML
def _real_gpu_count() -> int:
    """GPUs behind the real NVML, from a real nvmlInit attempt; 0 without library or driver."""
    try:
        return nvml_recorder.gpu_count()
    except NvmlError:
        return 0


REAL_GPUS = _real_gpu_count()
needs_gpu = pytest.mark.skipif(REAL_GPUS == 0, reason="no NVIDIA GPU or driver (nvmlInit failed or no device)")


@pytest.mark.skipif(REAL_GPUS > 0, reason="a GPU is present: covered by the gpu-marked tests")
def test_real_nvml_without_a_gpu_exits_2(tmp_path, capsys):
    assert main_record(["--duration", "0.2", "--out", str(tmp_path / "trace.parquet")]) == 2
    assert one_line(capsys.readouterr().err).startswith("twin record: error: ")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.gpu
@needs_gpu
def test_real_gpu_recording(tmp_path):
    rec = record(tmp_path / "trace.parquet", gpus=[0], interval_s=0.05, slow_interval_s=0.5, duration_s=1.0)
    side = rec.sidecar
    assert rec.status == "complete" and side["n_fast_ticks"] + side["missed_ticks"] == 21
    assert side["driver_version"] and side["nvml_version"]
    gpu = side["gpus"][0]
    assert gpu["name"] and gpu["uuid"].startswith(("GPU-", "MIG-"))
    assert gpu["fields"]["power_W"]["source"] is not None
    df = pd.read_parquet(rec.trace_path)
    _, p = series(df, 0, "power_W")
    limit_W = gpu["power_limit_max_W"] or 2000.0
    assert len(p) == side["n_fast_ticks"] and np.all(p > 0) and np.all(p <= 1.5 * limit_W)
    _, temp = series(df, 0, "temperature_K")
    if len(temp):
        assert np.all((temp > 273.15) & (temp < 373.15))
    for field in ("util_gpu_rel", "util_mem_rel"):
        _, u = series(df, 0, field)
        assert np.all((u >= 0) & (u <= 1)), field
    diff = gpu["energy_check"].get("rel_diff", {}).get("power_W")
    if diff is not None:  # a unit slip (mW for W, mJ for J) would be off by orders of magnitude
        assert abs(diff) < 0.5


@pytest.mark.gpu
@needs_gpu
def test_real_gpu_command_line(tmp_path, capsys):
    out = tmp_path / "trace.parquet"
    assert main_record(["--gpus", "0", "--duration", "0.3", "--out", str(out)]) == 0
    assert len(pd.read_parquet(out)) > 0 and (tmp_path / "trace.json").is_file()
