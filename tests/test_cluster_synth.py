"""The synthetic workload generator: determinism, oracles for its parts, and fit-on-one-part, check-on-the-other.

The held-out checks fit on one part of a trace and compare a long synthetic stream with the other part:
two-sample KS statistics (scipy.stats.ks_2samp) of inter-arrival times (gaps inside each held-out window only),
durations and token counts, and the GPU-count shares.
"""
import math

import numpy as np
import pytest
from scipy.stats import ks_2samp

from twin.cluster.jobs import Job, WorkloadClass
from twin.cluster.synth import (ArrivalProcess, Exponential, JobTemplate, LogKde, WorkloadModel, fit_arrivals,
                                fit_requests, fit_workload)
from twin.cluster.traces import read_alibaba, read_azure
from twin.errors import CalibrationError

KS_MAX = 0.1              # the bound on the KS statistic, held-out data
SHARE_MAX_PP = 2.0        # the bound on GPU-count shares, percentage points
ALIBABA_SYNTH_S = 200 * 86_400  # ~35 000 synthetic jobs against ~1 500 held-out ones
AZURE_SYNTH_S = 10 * 3_600.0    # ~100 000 synthetic requests against ~4 000 held-out ones
AZURE_WINDOW_S = 300.0
DIURNAL_ATOL = 0.08       # hourly factors from ~3 600 arrivals per hour bin: 1 standard error is <= 0.021
RATE_RTOL = 0.01          # the rate of ~86 000 Poisson arrivals: 1 standard error is 0.34 %
MEAN_RTOL = 0.01          # mean of 10^6 kernel draws vs the training mean (sd ~0.2 % here)
ATOM_ATOL = 0.002         # share of draws in an atom of 13 %, 10^6 draws (sd 0.03 %)


@pytest.fixture(scope="module")
def alibaba(shared_data):
    return read_alibaba(shared_data / "gpu_jobs_alibaba" / "openb_pod_list_first_half.csv")


@pytest.fixture(scope="module")
def azure(shared_data):
    return read_azure(shared_data / "llm_inference_azure" / "AzureLLMInferenceTrace_code.csv")


def halves(start, end):
    mid = (start + end) // 2
    return [(start, mid)], [(mid, end)]


def alternate(start, end, width):
    windows = []
    s = start
    while s < end:
        windows.append((s, min(end, s + width)))
        s += width
    return windows[0::2], windows[1::2]


def gaps_inside(times, windows) -> np.ndarray:
    t = np.sort(np.asarray(times, dtype=np.float64))
    return np.concatenate([np.diff(t[(t >= s) & (t < e)]) for s, e in windows])


def inside(jobs, windows) -> list[Job]:
    return [j for j in jobs if any(s <= j.submit_time_s < e for s, e in windows)]


def gpu_share_gap_pp(a: list[Job], b: list[Job]) -> float:
    na, nb = np.array([j.n_gpus for j in a]), np.array([j.n_gpus for j in b])
    return 100 * max(abs(np.mean(na == k) - np.mean(nb == k)) for k in set(na) | set(nb))


def held_out_jobs(trace, train, test, seed=1) -> dict[str, float]:
    """KS statistics and GPU-share gap of a synthetic stream fitted on ``train`` against the jobs in ``test``."""
    model = fit_workload(trace.jobs, train)
    synth = model.generate(np.random.default_rng(seed), 0, ALIBABA_SYNTH_S)
    real = inside(trace.jobs, test)
    return {"inter_arrival": ks_2samp(np.diff([j.submit_time_s for j in synth]),
                                      gaps_inside([j.submit_time_s for j in real], test)).statistic,
            "duration": ks_2samp([j.duration_s for j in synth], [j.duration_s for j in real]).statistic,
            "gpu_share_pp": gpu_share_gap_pp(synth, real)}


def held_out_requests(stream, train, test, seed=2) -> dict[str, float]:
    synth = fit_requests(stream, train).generate(np.random.default_rng(seed), 0.0, AZURE_SYNTH_S)
    a = stream.arrival_s
    mask = np.zeros(a.size, bool)
    for s, e in test:
        mask |= (a >= s) & (a < e)
    return {"inter_arrival": ks_2samp(np.diff(synth.arrival_s), gaps_inside(a, test)).statistic,
            "context_tokens": ks_2samp(synth.context_tokens, stream.context_tokens[mask]).statistic,
            "generated_tokens": ks_2samp(synth.generated_tokens, stream.generated_tokens[mask]).statistic}


def azure_end(stream) -> float:
    return float(np.nextafter(stream.arrival_s[-1], math.inf))


# -------------------------------------------------------------------------------------- determinism, validity
def test_same_seed_same_jobs(alibaba):
    model = fit_workload(alibaba.jobs, [(alibaba.start_s, alibaba.end_s)])
    a = model.generate(np.random.default_rng(7), 0, 30 * 86_400)
    assert a == model.generate(np.random.default_rng(7), 0, 30 * 86_400)
    assert a != model.generate(np.random.default_rng(8), 0, 30 * 86_400)


def test_classes_draw_independent_streams(alibaba):
    model = fit_workload(alibaba.jobs, [(alibaba.start_s, alibaba.end_s)])
    one = WorkloadModel(classes=model.classes[:1])
    wc = one.classes[0].workload_class

    def strip(jobs):
        return [(j.submit_time_s, j.duration_s, j.n_gpus, j.gpu_share) for j in jobs if j.workload_class is wc]

    assert strip(one.generate(np.random.default_rng(3), 0, 10 * 86_400)) == \
        strip(model.generate(np.random.default_rng(3), 0, 10 * 86_400))


def test_generated_jobs(alibaba):
    model = fit_workload(alibaba.jobs, [(alibaba.start_s, alibaba.end_s)])
    templates = {WorkloadClass.BATCH_INFERENCE: JobTemplate(power_model="l40s", preemptible=True,
                                                            checkpoint_interval_s=600, deadline_factor=3.0)}
    start, end = 5 * 86_400, 12 * 86_400
    jobs = model.generate(np.random.default_rng(5), start, end, templates=templates, id_prefix="s")
    assert [j.job_id for j in jobs] == [f"s{k}" for k in range(len(jobs))]
    submits = [j.submit_time_s for j in jobs]
    assert submits == sorted(submits) and start <= submits[0] and submits[-1] < end
    assert {j.workload_class for j in jobs} == {j.workload_class for j in alibaba.jobs
                                                if alibaba.start_s <= j.submit_time_s < alibaba.end_s}
    for j in jobs:
        if j.workload_class is WorkloadClass.BATCH_INFERENCE:
            assert (j.power_model, j.preemptible, j.checkpoint_interval_s) == ("l40s", True, 600)
            assert j.deadline_s == j.submit_time_s + math.ceil(3.0 * j.duration_s)
        else:
            assert (j.power_model, j.preemptible, j.deadline_s) == ("default", False, None)
    seen = {(j.n_gpus, j.gpu_share) for j in alibaba.jobs}
    assert {(j.n_gpus, j.gpu_share) for j in jobs} <= seen


def test_fit_and_generate_reject_bad_arguments(alibaba):
    with pytest.raises(CalibrationError, match="nothing to fit"):
        fit_workload(alibaba.jobs, [(1, 1000)])  # pod 0 is created at 0, the next long after
    with pytest.raises(CalibrationError, match="must not overlap"):
        fit_workload(alibaba.jobs, [(alibaba.start_s, alibaba.end_s), (alibaba.start_s + 1, alibaba.end_s + 10)])
    with pytest.raises(CalibrationError, match="before end"):
        fit_workload(alibaba.jobs, [(alibaba.end_s, alibaba.start_s)])
    with pytest.raises(CalibrationError, match="deadline_factor"):
        JobTemplate(deadline_factor=0.5)
    model = fit_workload(alibaba.jobs, [(alibaba.start_s, alibaba.end_s)])
    with pytest.raises(CalibrationError, match="start_s < end_s"):
        model.generate(np.random.default_rng(0), 100, 100)


# --------------------------------------------------------------------------------------------- part oracles
def test_diurnal_poisson_process_recovered():
    hours = np.arange(24)
    shape = 1 + 0.6 * np.sin(2 * np.pi * (hours + 0.5) / 24)
    shape = shape / shape.mean()
    truth = ArrivalProcess(shape=shape, p_zero=0.0, gaps=Exponential(60.0))
    t = truth.times(np.random.default_rng(11), 0.0, 60 * 86_400.0)
    fitted = fit_arrivals(t, [(0.0, 60 * 86_400.0)])
    assert np.max(np.abs(fitted.shape - shape)) <= DIURNAL_ATOL
    assert fitted.rate_per_s == pytest.approx(1 / 60.0, rel=RATE_RTOL)
    probe = np.linspace(0, 3 * 86_400, 10_001)
    assert fitted.clock(fitted.operational(probe)) == pytest.approx(probe, abs=1e-6)


def test_short_window_has_flat_rate(azure):
    model = fit_requests(azure, [(0.0, azure_end(azure))])
    assert np.all(model.arrivals.shape == 1.0)


def test_diurnal_shape_needs_every_hour_covered(alibaba):
    days = range((alibaba.end_s - alibaba.start_s) // 86_400)
    mornings = [(alibaba.start_s + d * 86_400, alibaba.start_s + d * 86_400 + 43_200) for d in days]
    model = fit_workload(alibaba.jobs, mornings)  # half of each day, always the same half: no diurnal shape
    assert all(np.all(c.arrivals.shape == 1.0) for c in model.classes)
    model = fit_workload(alibaba.jobs, [(alibaba.start_s, alibaba.end_s)])
    assert any(np.ptp(c.arrivals.shape) > 0.5 for c in model.classes)


def test_log_kde_keeps_mean_and_atoms():
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.lognormal(5.0, 1.0, 2000), np.full(300, 60.0)])
    kde = LogKde.fit(x)
    draws = kde.sample(np.random.default_rng(5), 1_000_000)
    assert draws.mean() == pytest.approx(x.mean(), rel=MEAN_RTOL)
    # 300 equal values (more than k = ceil(sqrt(2300)) = 48) stay an atom: those draws are exactly 60
    assert np.mean(np.isclose(draws, 60.0, rtol=1e-12)) == pytest.approx(300 / 2300, abs=ATOM_ATOL)


# ----------------------------------------------------------------------------------- held-out: Alibaba pods
def test_alibaba_first_half_predicts_second_half_arrivals_and_sizes(alibaba):
    figures = held_out_jobs(alibaba, *halves(alibaba.start_s, alibaba.end_s))
    assert figures["inter_arrival"] <= KS_MAX
    assert figures["gpu_share_pp"] <= SHARE_MAX_PP


@pytest.mark.xfail(strict=True, reason="the trace's own halves differ in duration (KS ~0.24: the first half has "
                                       "twice the short failed best-effort pods), see the next test")
def test_alibaba_first_half_predicts_second_half_durations(alibaba):
    assert held_out_jobs(alibaba, *halves(alibaba.start_s, alibaba.end_s))["duration"] <= KS_MAX


def test_alibaba_halves_differ_in_duration_themselves(alibaba):
    first, second = halves(alibaba.start_s, alibaba.end_s)
    a, b = inside(alibaba.jobs, first), inside(alibaba.jobs, second)
    assert ks_2samp([j.duration_s for j in a], [j.duration_s for j in b]).statistic > KS_MAX
    # ... while the model reproduces the half it was fitted on
    assert held_out_jobs(alibaba, first, first)["duration"] <= KS_MAX


@pytest.mark.parametrize("parity", [0, 1])
def test_alibaba_alternate_days(alibaba, parity):
    even, odd = alternate(alibaba.start_s, alibaba.end_s, 86_400)
    train, test = (even, odd) if parity == 0 else (odd, even)
    figures = held_out_jobs(alibaba, train, test)
    assert figures["inter_arrival"] <= KS_MAX
    assert figures["duration"] <= KS_MAX
    assert figures["gpu_share_pp"] <= SHARE_MAX_PP


# --------------------------------------------------------------------------------- held-out: Azure requests
def test_azure_first_half_predicts_second_half(azure):
    figures = held_out_requests(azure, *halves(0.0, azure_end(azure)))
    assert max(figures.values()) <= KS_MAX, figures


@pytest.mark.parametrize("parity", [0, 1])
def test_azure_alternate_windows(azure, parity):
    even, odd = alternate(0.0, azure_end(azure), AZURE_WINDOW_S)
    figures = held_out_requests(azure, *((even, odd) if parity == 0 else (odd, even)))
    assert max(figures.values()) <= KS_MAX, figures
