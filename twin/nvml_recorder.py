"""The NVML recorder: samples NVIDIA GPUs through NVML and streams a long-format Parquet trace plus a JSON sidecar.

This is the module of twin that talks to NVML (``twin.nvml_fake`` borrows pynvml's error classes and constants so
its stand-ins raise what NVML raises). The NVML module is a parameter everywhere (``nvml=None`` means
``pynvml``), so the recorder runs unchanged against ``twin.nvml_fake.FakeNvml`` (a simulated device) or
``twin.nvml_fake.ReplayNvml`` (a recorded trace played back). Every NVML call goes through ``Nvml.call``, the one
place where NVML error codes become twin errors: ``NvmlUnavailableError`` (no library, no driver, no GPU),
``NvmlError`` (any other refusal); "not supported", "function not found" and "no permission" only move a field
down its fallback chain while the recording is being set up.

Trace (``trace.parquet``), one row per reading, in chunks of ``chunk_rows`` rows (one Parquet row group each):

========  ==============================  ==========================================================================
column    type                            meaning
========  ==============================  ==========================================================================
t_s       float64                         seconds since the recording start on the monotonic clock: the middle of
                                          the NVML call that read the value
gpu       int16                           NVML device index
field     dictionary<int8, string>        one of ``FIELDS`` (read by pandas as a category)
value     float64                         SI, unit in the field name
========  ==============================  ==========================================================================

Fields and their fallback chains (the first source that works on a GPU is used for the whole recording; the
sidecar names it and every source that failed before it):

=================  ====  ====================================================================================
field              loop  sources, in order
=================  ====  ====================================================================================
power_W            fast  nvmlDeviceGetFieldValues(NVML_FI_DEV_POWER_INSTANT), nvmlDeviceGetPowerUsage (mW)
power_avg_W        fast  nvmlDeviceGetFieldValues(NVML_FI_DEV_POWER_AVERAGE) (NVML's 1 s average), none
energy_J           fast  nvmlDeviceGetTotalEnergyConsumption (mJ since driver load), else integrated from
                         power_W by the trapezoid rule (flagged ``measured: false``); both count from the
                         first reading of the recording (the counter's start value is in the sidecar)
temperature_K      slow  nvmlDeviceGetTemperatureV, nvmlDeviceGetTemperature (GPU sensor, integer C)
sm_clock_Hz        slow  nvmlDeviceGetClockInfo(NVML_CLOCK_SM) (MHz)
mem_clock_Hz       slow  nvmlDeviceGetClockInfo(NVML_CLOCK_MEM) (MHz)
util_gpu_rel       slow  nvmlDeviceGetUtilizationRates().gpu (%): fraction of time a kernel ran
util_mem_rel       slow  nvmlDeviceGetUtilizationRates().memory (%): fraction of time memory was read/written
power_limit_W      slow  nvmlDeviceGetEnforcedPowerLimit, nvmlDeviceGetPowerManagementLimit (mW)
throttle_reasons   slow  nvmlDeviceGetCurrentClocksEventReasons, nvmlDeviceGetCurrentClocksThrottleReasons:
                         the bitmask as a float (exact below 2**53)
n_processes        slow  len(nvmlDeviceGetComputeRunningProcesses)
=================  ====  ====================================================================================

Timing: one thread, one schedule in integer ticks of ``interval_s`` from the start (tick k is due at
``k * interval_s``: no drift, nothing accumulated). Every tick reads the fast fields of each GPU; every
``round(slow_interval_s / interval_s)``-th tick also reads the slow fields, after the fast ones. A tick that is
already past when the previous one ends is skipped and counted (``missed_ticks`` in the sidecar, and a
warning). With a duration, the last tick is the last one due at or before it.

Sidecar (``sidecar_path(out)``: ``trace.json`` next to ``trace.parquet``): written when the recording starts
(``status: "recording"``) and rewritten when it ends (``complete``, ``interrupted`` by Ctrl-C, or ``failed``
with the error): driver, NVML and CUDA driver versions, start wall-clock time (UTC) and monotonic time,
interval, per GPU its name, UUID, power limits (min, max, default, enforced at the start), the source of each
field, and the energy check: the energy integrated from ``power_W`` (and ``power_avg_W``) against the energy
counter over the same recording, as a relative difference; for ``power_W``, above ``ENERGY_CHECK_TOL_REL`` it is a
warning (``power_avg_W`` lags by about half its 1 s window, so on a short recording of a changing load it differs
more: it is reported only).

``main_record`` is ``twin record``; its exit codes: 0 done, 1 NVML failed while recording (what was recorded
is kept), 2 bad arguments, no NVML library or driver, or no such GPU, 130 stopped by Ctrl-C (what was
recorded is kept).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pynvml

from .errors import NvmlError
from .units import parse_duration_s

FORMAT = "twin.nvml_trace"
FORMAT_VERSION = 1

FAST_FIELDS = ("power_W", "power_avg_W", "energy_J")
SLOW_FIELDS = ("temperature_K", "sm_clock_Hz", "mem_clock_Hz", "util_gpu_rel", "util_mem_rel", "power_limit_W",
               "throttle_reasons", "n_processes")
FIELDS = FAST_FIELDS + SLOW_FIELDS
FIELD_UNITS = {"power_W": "W", "power_avg_W": "W", "energy_J": "J", "temperature_K": "K", "sm_clock_Hz": "Hz",
               "mem_clock_Hz": "Hz", "util_gpu_rel": "1", "util_mem_rel": "1", "power_limit_W": "W",
               "throttle_reasons": "bitmask", "n_processes": "1"}
SCHEMA = pa.schema([("t_s", pa.float64()), ("gpu", pa.int16()), ("field", pa.dictionary(pa.int8(), pa.string())),
                    ("value", pa.float64())])

DEFAULT_INTERVAL_S = 0.1
DEFAULT_SLOW_INTERVAL_S = 1.0
CHUNK_ROWS = 16384
ENERGY_CHECK_TOL_REL = 0.05  # integrated power vs the energy counter; NVML's power readings are good to a few %
T_ZERO_C_K = 273.15
W_PER_MW = 1e-3
J_PER_MJ = 1e-3
HZ_PER_MHZ = 1e6
REL_PER_PCT = 1e-2

_FIELD_DICTIONARY = pa.array(FIELDS, pa.string())
_FIELD_CODE = {f: i for i, f in enumerate(FIELDS)}
_UNAVAILABLE = ("NVML_ERROR_LIBRARY_NOT_FOUND", "NVML_ERROR_DRIVER_NOT_LOADED", "NVML_ERROR_LIB_RM_VERSION_MISMATCH")
_UNSUPPORTED = ("NVML_ERROR_NOT_SUPPORTED", "NVML_ERROR_FUNCTION_NOT_FOUND", "NVML_ERROR_NO_PERMISSION")
_VALUE_TYPES = {"NVML_VALUE_TYPE_DOUBLE": "dVal", "NVML_VALUE_TYPE_UNSIGNED_INT": "uiVal",
                "NVML_VALUE_TYPE_UNSIGNED_LONG": "ulVal", "NVML_VALUE_TYPE_UNSIGNED_LONG_LONG": "ullVal",
                "NVML_VALUE_TYPE_SIGNED_LONG_LONG": "sllVal", "NVML_VALUE_TYPE_SIGNED_INT": "siVal",
                "NVML_VALUE_TYPE_UNSIGNED_SHORT": "usVal"}


class NvmlUnavailableError(NvmlError):
    """No NVML to record from: the library or the driver is missing, or there is no (such) GPU."""


class _Unsupported(NvmlError):
    """This NVML source does not work here (not supported, not found, not permitted): try the next one."""


def sidecar_path(out: str | Path) -> Path:
    """The JSON sidecar of a trace: ``trace.json`` for ``trace.parquet``."""
    return Path(out).with_suffix(".json")


# ------------------------------------------------------------------------------------------------ NVML boundary
class Nvml:
    """The NVML module (pynvml or a stand-in) behind one choke point that turns NVML errors into twin errors."""

    def __init__(self, module: Any = None):
        self.module = pynvml if module is None else module
        m = self.module
        self._unavailable = {getattr(m, name) for name in _UNAVAILABLE}
        self._unsupported = {getattr(m, name) for name in _UNSUPPORTED}
        self._value_attr = {getattr(m, name): attr for name, attr in _VALUE_TYPES.items()}

    def call(self, name: str, *args: Any, label: str | None = None) -> Any:
        """``module.name(*args)``; ``label`` names the call in messages (default: ``name``)."""
        label = label or name
        fn = getattr(self.module, name, None)
        if fn is None:
            raise _Unsupported(f"{label}: not in this NVML binding")
        try:
            return fn(*args)
        except self.module.NVMLError as e:
            raise self._translate(label, e) from e

    def _translate(self, label: str, e: Exception) -> NvmlError:
        code = getattr(e, "value", None)
        if code in self._unsupported:
            return _Unsupported(f"{label}: {e}")
        if code in self._unavailable:
            return NvmlUnavailableError(f"{label}: {e}")
        return NvmlError(f"{label} failed: {e} (NVML error {code})")

    def init(self) -> None:
        """nvmlInit; any failure means there is no NVML to record from."""
        try:
            self.call("nvmlInit")
        except NvmlError as e:
            raise NvmlUnavailableError(f"cannot start NVML: {e}") from e

    def field_values(self, handle: Any, field_ids: list[int], labels: list[str]) -> list[float | _Unsupported]:
        """Raw values of nvmlDeviceGetFieldValues, one per id: a number, or ``_Unsupported`` for that field."""
        out: list[float | _Unsupported] = []
        values = self.call("nvmlDeviceGetFieldValues", handle, field_ids, label="nvmlDeviceGetFieldValues")
        for v, label in zip(values, labels):
            if v.nvmlReturn != self.module.NVML_SUCCESS:
                error = self._translate(label, self.module.NVMLError(v.nvmlReturn))
                if not isinstance(error, _Unsupported):
                    raise error
                out.append(error)
                continue
            attr = self._value_attr.get(v.valueType)
            if attr is None:
                raise NvmlError(f"{label}: unknown NVML value type {v.valueType}")
            out.append(float(getattr(v.value, attr)))
        return out


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def gpu_count(nvml: Any = None) -> int:
    """Number of GPUs NVML sees (initializes and shuts NVML down); NvmlUnavailableError without library or driver."""
    lib = Nvml(nvml)
    lib.init()
    try:
        return int(lib.call("nvmlDeviceGetCount"))
    finally:
        lib.call("nvmlShutdown")


# ------------------------------------------------------------------------------------------------ sources
@dataclass(frozen=True)
class _Read:
    """One NVML call giving one or more fields, in SI."""
    label: str                              # the call as named in the sidecar
    fields: tuple[str, ...]
    sources: tuple[str, ...]                # per field: its source as named in the sidecar
    fn: Callable[[], tuple[float, ...]]


def _chain(fields: tuple[str, ...], candidates: list[_Read], failed: dict[str, list[str]]) -> _Read | None:
    """The first candidate that reads; each failure is appended to ``failed`` of its fields."""
    for read in candidates:
        try:
            read.fn()
        except _Unsupported as e:
            for f in fields:
                failed[f].append(str(e))
            continue
        return read
    return None


def _power_reads(lib: Nvml, h: Any, failed: dict[str, list[str]]) -> list[_Read]:
    """power_W and power_avg_W: the field values in one call where they work, else the power usage for power_W."""
    m = lib.module
    wanted = {"power_W": ("NVML_FI_DEV_POWER_INSTANT", getattr(m, "NVML_FI_DEV_POWER_INSTANT", None)),
              "power_avg_W": ("NVML_FI_DEV_POWER_AVERAGE", getattr(m, "NVML_FI_DEV_POWER_AVERAGE", None))}
    got: list[tuple[str, str, int]] = []
    for f, (const, fid) in wanted.items():
        if fid is None:
            failed[f].append(f"nvmlDeviceGetFieldValues({const}): {const} not in this NVML binding")
    probe = [(f, const, fid) for f, (const, fid) in wanted.items() if fid is not None]
    if probe:
        labels = [f"nvmlDeviceGetFieldValues({const})" for _, const, _ in probe]
        try:
            results = lib.field_values(h, [fid for _, _, fid in probe], labels)
        except _Unsupported as e:  # the whole call: every field falls back, for the same reason
            results = [e for _ in labels]
        for (f, const, fid), r, label in zip(probe, results, labels):
            if isinstance(r, _Unsupported):
                failed[f].append(str(r))
            else:
                got.append((f, label, fid))
    reads = []
    if got:
        ids = [fid for _, _, fid in got]
        labels = [label for _, label, _ in got]

        def fields_fn() -> tuple[float, ...]:
            values = lib.field_values(h, ids, labels)
            for v in values:
                if isinstance(v, _Unsupported):
                    raise NvmlError(f"{v} (it worked when the recording started)")
            return tuple(v * W_PER_MW for v in values)

        reads.append(_Read("nvmlDeviceGetFieldValues", tuple(f for f, _, _ in got), tuple(labels), fields_fn))
    if "power_W" not in {f for f, _, _ in got}:
        usage = _Read("nvmlDeviceGetPowerUsage", ("power_W",), ("nvmlDeviceGetPowerUsage",),
                      lambda: (lib.call("nvmlDeviceGetPowerUsage", h) * W_PER_MW,))
        found = _chain(("power_W",), [usage], failed)
        if found:
            reads.append(found)
    return reads


def _single(lib: Nvml, h: Any, field: str, name: str, args: tuple, convert: Callable[[Any], float],
            label: str | None = None) -> _Read:
    label = label or name
    return _Read(label, (field,), (label,), lambda: (convert(lib.call(name, h, *args, label=label)),))


def _slow_reads(lib: Nvml, h: Any, failed: dict[str, list[str]]) -> list[_Read]:
    m = lib.module
    sensor = m.NVML_TEMPERATURE_GPU
    to_K = lambda c: float(c) + T_ZERO_C_K  # noqa: E731
    to_W = lambda mw: float(mw) * W_PER_MW  # noqa: E731
    to_Hz = lambda mhz: float(mhz) * HZ_PER_MHZ  # noqa: E731
    chains: list[tuple[tuple[str, ...], list[_Read]]] = [
        (("temperature_K",), [_single(lib, h, "temperature_K", "nvmlDeviceGetTemperatureV", (sensor,), to_K),
                              _single(lib, h, "temperature_K", "nvmlDeviceGetTemperature", (sensor,), to_K)]),
        (("sm_clock_Hz",), [_single(lib, h, "sm_clock_Hz", "nvmlDeviceGetClockInfo", (m.NVML_CLOCK_SM,), to_Hz,
                                    "nvmlDeviceGetClockInfo(NVML_CLOCK_SM)")]),
        (("mem_clock_Hz",), [_single(lib, h, "mem_clock_Hz", "nvmlDeviceGetClockInfo", (m.NVML_CLOCK_MEM,), to_Hz,
                                     "nvmlDeviceGetClockInfo(NVML_CLOCK_MEM)")]),
        (("util_gpu_rel", "util_mem_rel"), [_utilization(lib, h)]),
        (("power_limit_W",), [_single(lib, h, "power_limit_W", "nvmlDeviceGetEnforcedPowerLimit", (), to_W),
                              _single(lib, h, "power_limit_W", "nvmlDeviceGetPowerManagementLimit", (), to_W)]),
        (("throttle_reasons",), [_single(lib, h, "throttle_reasons", "nvmlDeviceGetCurrentClocksEventReasons", (),
                                         float),
                                 _single(lib, h, "throttle_reasons", "nvmlDeviceGetCurrentClocksThrottleReasons",
                                         (), float)]),
        (("n_processes",), [_single(lib, h, "n_processes", "nvmlDeviceGetComputeRunningProcesses", (),
                                    lambda procs: float(len(procs)))]),
    ]
    return [r for fields, candidates in chains if (r := _chain(fields, candidates, failed)) is not None]


def _utilization(lib: Nvml, h: Any) -> _Read:
    name = "nvmlDeviceGetUtilizationRates"

    def fn() -> tuple[float, float]:
        u = lib.call(name, h)
        return float(u.gpu) * REL_PER_PCT, float(u.memory) * REL_PER_PCT

    return _Read(name, ("util_gpu_rel", "util_mem_rel"), (f"{name}().gpu", f"{name}().memory"), fn)


def _static(lib: Nvml, name: str, *args: Any, convert: Callable[[Any], Any] = lambda v: v,
            unavailable: dict[str, str] | None = None, key: str = "") -> Any:
    """A value read once for the sidecar; None (and the reason in ``unavailable``) where NVML does not give it."""
    try:
        return convert(lib.call(name, *args))
    except _Unsupported as e:
        if unavailable is not None:
            unavailable[key] = str(e)
        return None


# ------------------------------------------------------------------------------------------------ writer
class _TraceWriter:
    """Rows into fixed numpy buffers, written as one Parquet row group each time they fill: memory stays flat."""

    def __init__(self, path: Path, chunk_rows: int):
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        self.chunk_rows = chunk_rows
        self._t = np.empty(chunk_rows)
        self._gpu = np.empty(chunk_rows, np.int16)
        self._field = np.empty(chunk_rows, np.int8)
        self._value = np.empty(chunk_rows)
        self._n = 0
        self.rows_written = 0
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(path, SCHEMA, compression="zstd")

    def append(self, t_s: float, gpu: int, field: str, value: float) -> None:
        n = self._n
        self._t[n], self._gpu[n], self._field[n], self._value[n] = t_s, gpu, _FIELD_CODE[field], value
        self._n = n + 1
        if self._n == self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        if self._n and self._writer is not None:
            n = self._n
            field = pa.DictionaryArray.from_arrays(pa.array(self._field[:n]), _FIELD_DICTIONARY)
            table = pa.Table.from_arrays([pa.array(self._t[:n]), pa.array(self._gpu[:n]), field,
                                          pa.array(self._value[:n])], schema=SCHEMA)
            self._writer.write_table(table, row_group_size=self.chunk_rows)
            self.rows_written += n
            self._n = 0

    def close(self) -> None:
        if self._writer is not None:
            try:
                self.flush()
            finally:
                self._writer.close()
                self._writer = None


class _Trapezoid:
    """Running integral of a sampled signal by the trapezoid rule."""

    def __init__(self) -> None:
        self.integral = 0.0
        self.n = 0
        self._t = self._y = math.nan

    def add(self, t: float, y: float) -> float:
        if self.n:
            self.integral += 0.5 * (y + self._y) * (t - self._t)
        self._t, self._y = t, y
        self.n += 1
        return self.integral


# ------------------------------------------------------------------------------------------------ recording
class _Gpu:
    """One GPU being recorded: its reads, its static info, and the running energy bookkeeping."""

    def __init__(self, lib: Nvml, index: int):
        self.index = index
        h = self.handle = lib.call("nvmlDeviceGetHandleByIndex", index)
        unavailable: dict[str, str] = {}
        limits = _static(lib, "nvmlDeviceGetPowerManagementLimitConstraints", h,
                         convert=lambda mm: [float(v) * W_PER_MW for v in mm], unavailable=unavailable,
                         key="power_limit_min_W/power_limit_max_W") or [None, None]
        w = lambda mw: float(mw) * W_PER_MW  # noqa: E731
        self.info: dict[str, Any] = {
            "index": index,
            "name": _static(lib, "nvmlDeviceGetName", h, convert=_text, unavailable=unavailable, key="name"),
            "uuid": _static(lib, "nvmlDeviceGetUUID", h, convert=_text, unavailable=unavailable, key="uuid"),
            "power_limit_min_W": limits[0],
            "power_limit_max_W": limits[1],
            "power_limit_default_W": _static(lib, "nvmlDeviceGetPowerManagementDefaultLimit", h, convert=w,
                                             unavailable=unavailable, key="power_limit_default_W"),
            "power_limit_enforced_W": _static(lib, "nvmlDeviceGetEnforcedPowerLimit", h, convert=w,
                                              unavailable=unavailable, key="power_limit_enforced_W"),
        }
        self.failed: dict[str, list[str]] = {f: [] for f in FIELDS}
        self.fast = _power_reads(lib, h, self.failed)
        energy = _chain(("energy_J",), [_single(lib, h, "energy_J", "nvmlDeviceGetTotalEnergyConsumption", (),
                                                lambda mj: float(mj) * J_PER_MJ)], self.failed)
        if energy:
            self.fast.append(energy)
        self.slow = _slow_reads(lib, h, self.failed)
        self.sources: dict[str, str] = {}
        for read in self.fast + self.slow:
            self.sources.update(zip(read.fields, read.sources))
        self.energy_integrated = energy is None and "power_W" in self.sources
        if self.energy_integrated:
            self.sources["energy_J"] = "integrated from power_W (trapezoid)"
        self.static_unavailable = unavailable
        self.energy_counter_start_J: float | None = None
        self.energy_last_J = math.nan  # the energy counter at its last reading, from its first one
        self.integrals = {"power_W": _Trapezoid(), "power_avg_W": _Trapezoid()}

    def store(self, out: _TraceWriter, t_s: float, field: str, value: float) -> None:
        if field == "energy_J" and not self.energy_integrated:
            if self.energy_counter_start_J is None:
                self.energy_counter_start_J = value
            value -= self.energy_counter_start_J
            self.energy_last_J = value
        out.append(t_s, self.index, field, value)
        if field in self.integrals:
            energy = self.integrals[field].add(t_s, value)
            if field == "power_W" and self.energy_integrated:
                out.append(t_s, self.index, "energy_J", energy)

    def fields_info(self) -> dict[str, Any]:
        info = {}
        for f in FIELDS:
            source = self.sources.get(f)
            entry: dict[str, Any] = {"source": source, "loop": "fast" if f in FAST_FIELDS else "slow",
                                     "measured": source is not None and not (f == "energy_J" and
                                                                             self.energy_integrated)}
            if self.failed[f]:
                entry["failed"] = list(self.failed[f])
            info[f] = entry
        return info

    def energy_check(self) -> dict[str, Any]:
        """Energy integrated from power against the energy counter over the recording."""
        check: dict[str, Any] = {"tolerance_rel": ENERGY_CHECK_TOL_REL}
        if self.energy_integrated or "energy_J" not in self.sources:
            check["reason"] = "no energy counter"
            return check
        counter_J = self.energy_last_J
        check["counter_J"] = None if math.isnan(counter_J) else counter_J
        check["integrated_J"] = {f: tz.integral for f, tz in self.integrals.items() if tz.n >= 2}
        if math.isnan(counter_J) or not check["integrated_J"]:
            check["reason"] = "fewer than two readings"
        elif counter_J <= 0.0:
            check["reason"] = f"the energy counter did not advance ({counter_J:g} J)"
        else:
            check["rel_diff"] = {f: (e - counter_J) / counter_J for f, e in check["integrated_J"].items()}
        return check


@dataclass(frozen=True)
class Recording:
    """What ``record`` wrote: the trace, its sidecar (also as a dict), and the warnings (also in the sidecar)."""
    trace_path: Path
    sidecar_path: Path
    status: str            # "complete" or "interrupted" (Ctrl-C)
    n_rows: int
    sidecar: dict[str, Any]
    warnings: tuple[str, ...]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


def record(out: str | Path, *, gpus: list[int] | None = None, interval_s: float = DEFAULT_INTERVAL_S,
           slow_interval_s: float = DEFAULT_SLOW_INTERVAL_S, duration_s: float | None = None, nvml: Any = None,
           clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
           chunk_rows: int = CHUNK_ROWS, on_start: Callable[[dict[str, Any]], None] | None = None) -> Recording:
    """Record GPUs ``gpus`` (default: all) into ``out`` (Parquet) and its sidecar, for ``duration_s`` or until Ctrl-C.

    Ctrl-C (KeyboardInterrupt) while recording ends the recording: what was read is written and the result has
    ``status == "interrupted"``. An NVML failure while recording also closes the files (sidecar ``status:
    "failed"``) before the NvmlError propagates. ``clock`` and ``sleep`` are the monotonic clock and its sleep;
    ``on_start`` gets the sidecar when the first reading is about to be taken.
    """
    if not (math.isfinite(interval_s) and interval_s > 0):
        raise ValueError(f"interval_s must be a positive number, got {interval_s}")
    if not (math.isfinite(slow_interval_s) and slow_interval_s >= interval_s):
        raise ValueError(f"slow_interval_s must be >= interval_s ({interval_s}), got {slow_interval_s}")
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s >= 0):
        raise ValueError(f"duration_s must be a number >= 0, got {duration_s}")
    out = Path(out)
    side = sidecar_path(out)
    if side == out:
        raise ValueError(f"{out}: the trace needs a suffix other than .json (e.g. .parquet)")
    lib = Nvml(nvml)
    lib.init()
    try:
        return _record(lib, out, side, gpus, interval_s, slow_interval_s, duration_s, clock, sleep, chunk_rows,
                       on_start)
    finally:
        lib.call("nvmlShutdown")


def _record(lib: Nvml, out: Path, side: Path, gpus: list[int] | None, interval_s: float, slow_interval_s: float,
            duration_s: float | None, clock: Callable[[], float], sleep: Callable[[float], None],
            chunk_rows: int, on_start: Callable[[dict[str, Any]], None] | None) -> Recording:
    count = int(lib.call("nvmlDeviceGetCount"))
    if count == 0:
        raise NvmlUnavailableError("NVML sees no GPU")
    indices = list(range(count)) if gpus is None else list(gpus)
    bad = [i for i in indices if not 0 <= i < count]
    if bad or len(set(indices)) != len(indices) or not indices:
        raise NvmlUnavailableError(f"GPUs {indices} asked for, but NVML sees {count} GPU(s): indices 0..{count - 1},"
                                   " each at most once")
    devices = [_Gpu(lib, i) for i in indices]
    slow_every = max(1, round(slow_interval_s / interval_s))
    n_last = None if duration_s is None else math.floor(duration_s / interval_s + 1e-9)
    cuda = _static(lib, "nvmlSystemGetCudaDriverVersion")
    sidecar: dict[str, Any] = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "status": "recording",
        "trace": out.name,
        "start_wall_clock_utc": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        "start_monotonic_s": None,
        "interval_s": interval_s,
        "slow_interval_s": slow_every * interval_s,
        "duration_s": duration_s,
        "driver_version": _static(lib, "nvmlSystemGetDriverVersion", convert=_text),
        "nvml_version": _static(lib, "nvmlSystemGetNVMLVersion", convert=_text),
        "cuda_driver_version": None if cuda is None else f"{int(cuda) // 1000}.{int(cuda) % 1000 // 10}",
        "field_units": FIELD_UNITS,
        "gpus": [{**d.info, "fields": d.fields_info(), **({"static_unavailable": d.static_unavailable}
                                                         if d.static_unavailable else {})} for d in devices],
    }
    writer = _TraceWriter(out, chunk_rows)
    status, error = "complete", None
    k = n_fast = n_slow = missed = next_slow = 0
    t_last = math.nan
    try:
        t0 = clock()
        sidecar["start_monotonic_s"] = t0
        _write_json(side, sidecar)
        if on_start is not None:
            on_start(sidecar)
        while True:
            slow_due = k >= next_slow
            if slow_due:
                next_slow = (k // slow_every + 1) * slow_every
            for d in devices:
                for read in d.fast + (d.slow if slow_due else []):
                    before = clock()
                    values = read.fn()
                    t_last = 0.5 * (before + clock()) - t0
                    for f, v in zip(read.fields, values):
                        d.store(writer, t_last, f, v)
            n_fast += 1
            n_slow += slow_due
            k_next = k + 1
            now = clock() - t0
            if now >= k_next * interval_s:  # behind: skip the ticks already past
                k_late = math.floor(now / interval_s) + 1
                missed += k_late - k_next
                k_next = k_late
            if n_last is not None and k_next > n_last:
                break
            sleep(k_next * interval_s - now)
            k = k_next
    except KeyboardInterrupt:
        status = "interrupted"
    except NvmlError as e:
        status, error = "failed", e
        raise
    except Exception as e:            # a full disk, a binding returning the unexpected: not "complete"
        status, error = "failed", e
        raise
    finally:
        writer.close()
        sidecar["status"] = status
        if error is not None:
            sidecar["error"] = str(error)
        warnings = _finish(sidecar, devices, writer.rows_written, n_fast, n_slow, missed, t_last, interval_s)
        _write_json(side, sidecar)
    return Recording(out, side, status, writer.rows_written, sidecar, tuple(warnings))


def _finish(sidecar: dict[str, Any], devices: list[_Gpu], n_rows: int, n_fast: int, n_slow: int, missed: int,
            t_last: float, interval_s: float) -> list[str]:
    """Fill in the sidecar's results; the warnings (also stored in it)."""
    warnings = []
    sidecar.update(n_rows=n_rows, n_fast_ticks=n_fast, n_slow_ticks=n_slow, missed_ticks=missed,
                   recorded_s=None if math.isnan(t_last) else t_last)
    if missed:
        warnings.append(f"{missed} tick(s) of {interval_s:g} s skipped: reading the GPUs took longer than the "
                        "interval")
    for d, entry in zip(devices, sidecar["gpus"]):
        entry["energy_counter_start_J"] = d.energy_counter_start_J
        check = entry["energy_check"] = d.energy_check()
        if d.energy_integrated:
            warnings.append(f"GPU {d.index}: no energy counter ({'; '.join(d.failed['energy_J'])}); energy_J is "
                            "integrated from power_W")
        diff = check.get("rel_diff", {}).get("power_W")
        if diff is not None and abs(diff) > ENERGY_CHECK_TOL_REL:
            warnings.append(f"GPU {d.index}: the energy integrated from power_W differs from the energy counter by "
                            f"{diff:+.1%} (tolerance {ENERGY_CHECK_TOL_REL:.0%})")
        if "power_W" not in d.sources:
            warnings.append(f"GPU {d.index}: no power reading ({'; '.join(d.failed['power_W'])})")
    sidecar["warnings"] = warnings
    return warnings


# ------------------------------------------------------------------------------------------------ command line
class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print the usage and exit; we want one line and code 2
        raise _ArgumentError(message)


def _gpu_list(text: str) -> list[int]:
    try:
        indices = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected GPU indices like 0,1, got {text!r}") from None
    if any(i < 0 for i in indices) or len(set(indices)) != len(indices):
        raise argparse.ArgumentTypeError(f"expected distinct GPU indices >= 0, got {text!r}")
    return indices


def _positive_s(text: str) -> float:
    try:
        value = parse_duration_s(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds (or 90s, 10min, 2h), got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive time, got {text!r}")
    return value


def _parser() -> _Parser:
    p = _Parser(prog="twin record", description="Record GPU power, energy, temperature, clocks and utilization "
                "through NVML into a long-format Parquet trace and a JSON sidecar.")
    p.add_argument("--gpus", type=_gpu_list, default=None, help="GPU indices, e.g. 0,1 (default: all)")
    p.add_argument("--interval", type=_positive_s, default=DEFAULT_INTERVAL_S,
                   help=f"seconds between power/energy readings (default {DEFAULT_INTERVAL_S})")
    p.add_argument("--slow-interval", type=_positive_s, default=DEFAULT_SLOW_INTERVAL_S,
                   help=f"seconds between temperature/clock/utilization readings (default {DEFAULT_SLOW_INTERVAL_S})")
    p.add_argument("--duration", type=_positive_s, default=None, help="seconds to record (default: until Ctrl-C)")
    p.add_argument("--out", required=True, help="the trace, e.g. trace.parquet (its sidecar: trace.json)")
    return p


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def main_record(argv: list[str], *, nvml: Any = None, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> int:
    """``twin record [--gpus 0,1] [--interval 0.1] [--slow-interval 1] [--duration S] --out trace.parquet``."""
    err = sys.stderr
    try:
        args = _parser().parse_args(argv)
    except _ArgumentError as e:
        print(f"twin record: error: {_one_line(e)}", file=err)
        return 2
    except SystemExit as e:  # --help
        return int(e.code or 0)
    out = Path(args.out)
    problem = None
    if out.suffix != ".parquet":
        problem = f"--out must name a .parquet file, got {args.out!r}"
    elif not out.parent.is_dir():
        problem = f"--out: the folder {str(out.parent)!r} does not exist"
    elif args.slow_interval < args.interval:
        problem = (f"--slow-interval ({args.slow_interval:g} s) must not be shorter than --interval "
                   f"({args.interval:g} s)")
    if problem:
        print(f"twin record: error: {problem}", file=err)
        return 2

    def started(sidecar: dict[str, Any]) -> None:
        if args.duration is None:
            gpus = ", ".join(f"{g['index']} ({g['name']})" for g in sidecar["gpus"])
            print(f"twin record: recording GPU {gpus} to {out} every {args.interval:g} s; Ctrl-C to stop", file=err)

    try:
        rec = record(out, gpus=args.gpus, interval_s=args.interval, slow_interval_s=args.slow_interval,
                     duration_s=args.duration, nvml=nvml, clock=clock, sleep=sleep, on_start=started)
    except NvmlUnavailableError as e:
        print(f"twin record: error: {_one_line(e)}", file=err)
        return 2
    except NvmlError as e:
        print(f"twin record: error while recording (what was recorded is in {out}): {_one_line(e)}", file=err)
        return 1
    except KeyboardInterrupt:
        print("twin record: interrupted before recording started", file=err)
        return 130
    for w in rec.warnings:
        print(f"twin record: warning: {_one_line(w)}", file=err)
    gpus = ", ".join(str(g["index"]) for g in rec.sidecar["gpus"])
    print(f"{rec.status}: {rec.n_rows} readings of GPU {gpus} over {rec.sidecar['recorded_s'] or 0.0:.1f} s "
          f"in {rec.trace_path} and {rec.sidecar_path}")
    return 130 if rec.status == "interrupted" else 0
