"""GPU power traces: the three formats read right, and malformed traces are rejected naming file, row, column."""
from pathlib import Path

import numpy as np
import pytest

from twin.cluster.gpu_trace import (load_dcgm_text, load_gpu_trace, load_nvidia_smi_csv, load_nvml_parquet,
                                    write_nvml_parquet)
from twin.errors import TraceError

DATA = Path(__file__).parent / "data" / "power"
SMI = DATA / "nvidia_smi_2gpu.csv"
DCGM = DATA / "dcgm_exporter.prom"
DCGM_NO_TS = DATA / "dcgm_exporter_no_timestamps.prom"
PARQUET = DATA / "nvml_long_2gpu.parquet"


# --- reading ------------------------------------------------------------------------------------------------


def _assert_load_rejected(path, expect) -> str:
    """Loading the file raises a TraceError naming the file and every expected part. Returns the message."""
    with pytest.raises(TraceError) as e:
        load_gpu_trace(path)
    msg = str(e.value)
    assert str(path) in msg
    for part in expect:
        assert part in msg
    return msg


def _assert_rejected(path, lines, expect) -> str:
    """Write the lines, load them: a TraceError naming the file and every expected part. Returns the message."""
    path.write_text("\n".join(lines) + "\n")
    return _assert_load_rejected(path, expect)

def test_nvidia_smi_csv():
    tr = load_nvidia_smi_csv(SMI)
    assert tr.gpus == (0, 1)
    g0 = tr.gpu(0)
    assert g0.t_s.size == 40
    assert g0.P_W[0] == 60.69 and tr.gpu(1).P_W[0] == 62.23        # first data rows of the file
    assert g0.P_limit_W == 300.0
    steps = np.diff(g0.t_s)
    assert np.all((steps > 0.095) & (steps < 0.105))                # 100 ms sampling with a few ms jitter
    assert g0.t_s[0] % 60 == pytest.approx(45.123, abs=1e-6)        # 10:23:45.123 (UTC taken for local time)


def test_dcgm_text_with_timestamps():
    tr = load_dcgm_text(DCGM)
    assert tr.gpus == (0, 1)
    g1 = tr.gpu(1)
    assert g1.t_s.tolist() == pytest.approx([1705314225.123 + i for i in range(5)])
    assert g1.P_W.tolist() == [82.5, 522.25, 398.0, 700.75, 105.5]
    assert g1.P_limit_W == 700.0


def test_dcgm_text_without_timestamps_needs_the_scrape_interval():
    with pytest.raises(TraceError, match="scrape_interval_s"):
        load_dcgm_text(DCGM_NO_TS)
    tr = load_dcgm_text(DCGM_NO_TS, scrape_interval_s=2.0)
    assert tr.gpu(0).t_s.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert tr.gpu(0).P_W.tolist() == [72.5, 512.25, 388.0, 690.75, 95.5]


def test_nvml_parquet_reads_power_and_limit_and_ignores_other_fields():
    tr = load_nvml_parquet(PARQUET)
    assert tr.gpus == (0, 1)
    assert tr.gpu(1).t_s.size == 30 and tr.gpu(1).P_limit_W == 700.0
    assert np.all(np.diff(tr.gpu(0).t_s) > 0)


def test_format_is_detected():
    assert load_gpu_trace(SMI).gpu(0).P_W.size == 40
    assert load_gpu_trace(DCGM).gpu(0).P_W.size == 5
    assert load_gpu_trace(PARQUET).gpu(0).P_W.size == 30
    assert load_gpu_trace(DCGM_NO_TS, scrape_interval_s=1.0).gpu(1).P_W.size == 5


def test_series_are_read_only():
    g = load_gpu_trace(SMI).gpu(0)
    with pytest.raises(ValueError):
        g.P_W[0] = 1.0


# --- rejecting bad traces: nvidia-smi CSV ---------------------------------------------------------------------

def _smi_lines():
    return SMI.read_text().splitlines()


def _smi_set(lines, row, col, value):
    """Set field ``col`` of data row ``row`` (1-based; line row + 1)."""
    cells = lines[row].split(", ")
    cells[col] = value
    lines[row] = ", ".join(cells)
    return lines


def _smi_stamp(lines, row):
    return lines[row].split(", ")[0]


@pytest.mark.parametrize("case, expect", [
    ("unsorted", ("row 9 (line 10)", "'timestamp'", "earlier")),
    ("duplicate", ("row 9 (line 10)", "'timestamp'", "repeated")),
    ("nan", ("row 9 (line 10)", "'power.draw [W]'", "not a power")),
    ("nan_number", ("row 9 (line 10)", "'power.draw [W]'", "not a number")),
    ("negative", ("row 9 (line 10)", "'power.draw [W]'", "negative")),
    ("missing", ("'power.draw [W]'", "missing column")),
    ("ragged", ("row 9 (line 10)", "fields")),
    ("bad_time", ("row 9 (line 10)", "'timestamp'")),
])
def test_bad_nvidia_smi_csv(tmp_path, case, expect):
    lines = _smi_lines()
    # data row 9 is GPU 0's fifth sample; rows 5 and 7 are its third and fourth
    if case == "unsorted":
        _smi_set(lines, 9, 0, _smi_stamp(lines, 5))
    elif case == "duplicate":
        _smi_set(lines, 9, 0, _smi_stamp(lines, 7))
    elif case == "nan":
        _smi_set(lines, 9, 2, "[N/A]")
    elif case == "nan_number":
        _smi_set(lines, 9, 2, "nan W")
    elif case == "negative":
        _smi_set(lines, 9, 2, "-4.50 W")
    elif case == "missing":
        lines = [", ".join(c for i, c in enumerate(l.split(", ")) if i != 2) for l in lines]
    elif case == "ragged":
        lines[9] = lines[9] + ", 12"
    elif case == "bad_time":
        _smi_set(lines, 9, 0, "yesterday")
    _assert_rejected(tmp_path / "bad.csv", lines, expect)


def test_repeated_header_lines_are_skipped(tmp_path):
    lines = _smi_lines()
    p = tmp_path / "appended.csv"
    p.write_text("\n".join(lines[:21] + [lines[0]] + lines[21:]) + "\n")
    tr = load_gpu_trace(p)
    assert tr.gpu(0).P_W.tolist() == load_gpu_trace(SMI).gpu(0).P_W.tolist()


# --- rejecting bad traces: DCGM -------------------------------------------------------------------------------

def _dcgm_power_line_index(lines, scrape, gpu):
    hits = [i for i, l in enumerate(lines) if l.startswith("DCGM_FI_DEV_POWER_USAGE{")]
    return hits[2 * scrape + gpu]


@pytest.mark.parametrize("case, expect", [
    ("unsorted", ("row 7", "'timestamp'", "earlier")),
    ("duplicate", ("row 7", "'timestamp'", "repeated")),
    ("nan", ("row 7", "'DCGM_FI_DEV_POWER_USAGE'", "not a number")),
    ("negative", ("row 7", "'DCGM_FI_DEV_POWER_USAGE'", "negative")),
    ("missing", ("'DCGM_FI_DEV_POWER_USAGE'", "no power samples")),
    ("mixed", ("'timestamp'", "some")),
])
def test_bad_dcgm_text(tmp_path, case, expect):
    lines = DCGM.read_text().splitlines()
    i = _dcgm_power_line_index(lines, 3, 0)          # GPU 0's fourth power sample: row 7 of the metric
    head, value, ts = lines[i].rsplit(" ", 2)
    if case == "unsorted":
        lines[i] = f"{head} {value} 1705314225000"
    elif case == "duplicate":
        lines[i] = f"{head} {value} 1705314227123"
    elif case == "nan":
        lines[i] = f"{head} NaN {ts}"
    elif case == "negative":
        lines[i] = f"{head} -1.5 {ts}"
    elif case == "missing":
        lines = [l for l in lines if not l.startswith("DCGM_FI_DEV_POWER_USAGE{")]
    elif case == "mixed":
        lines[i] = f"{head} {value}"
    msg = _assert_rejected(tmp_path / "bad.prom", lines, expect)
    if case not in ("missing", "mixed"):
        assert f"(line {i + 1})" in msg


# --- rejecting bad traces: Parquet ----------------------------------------------------------------------------

def _parquet_columns():
    import pyarrow.parquet as pq

    t = pq.read_table(PARQUET)
    return {c: t.column(c).to_pylist() for c in t.column_names}


@pytest.mark.parametrize("case, expect", [
    ("unsorted", ("'t_s'", "earlier")),
    ("duplicate", ("'t_s'", "repeated")),
    ("nan", ("'value'", "not a number")),
    ("negative", ("'value'", "negative")),
    ("missing", ("'field'", "missing column")),
    ("nan_time", ("'t_s'", "not finite")),
])
def test_bad_nvml_parquet(tmp_path, case, expect):
    cols = _parquet_columns()
    rows = [i for i in range(len(cols["t_s"])) if cols["gpu"][i] == 0 and cols["field"][i] == "power_W"]
    r = rows[5]                                        # GPU 0's sixth power sample
    if case == "unsorted":
        cols["t_s"][r] = cols["t_s"][rows[3]]
    elif case == "duplicate":
        cols["t_s"][r] = cols["t_s"][rows[4]]
    elif case == "nan":
        cols["value"][r] = float("nan")
    elif case == "negative":
        cols["value"][r] = -3.0
    elif case == "nan_time":
        cols["t_s"][r] = float("inf")
    p = tmp_path / "bad.parquet"
    if case == "missing":
        import pyarrow as pa
        import pyarrow.parquet as pq
        pq.write_table(pa.table({k: v for k, v in cols.items() if k != "field"}), str(p))
    else:
        write_nvml_parquet(p, cols["t_s"], cols["gpu"], cols["field"], cols["value"])
    msg = _assert_load_rejected(p, expect)
    if case != "missing":
        assert f"row {r + 1}," in msg


def test_missing_file_is_a_trace_error(tmp_path):
    with pytest.raises(TraceError, match="no such file"):
        load_gpu_trace(tmp_path / "none.csv")
