"""Stand-ins for the pynvml module, so the recorder runs without a GPU: a simulated device and a replayed trace.

``FakeNvml`` offers the pynvml functions the recorder uses, with pynvml's own error classes, constants and
field-value structure (so a fake error is exactly the error NVML raises). Its GPUs are ``FakeGpu``: a known
power waveform with an exact energy counter, and per GPU the functions (or field ids) that fail, with which NVML
error, to drive the recorder down its fallback chains. ``mode`` simulates a machine without the NVML library or
without a driver. Time is an injected clock (``FakeClock``, whose ``sleep`` advances it): each NVML call may
take ``call_latency_s`` of it, and its value is the one at the middle of the call.

``ReplayNvml`` plays a recorded trace (``twin.nvml_recorder`` format) back through the same functions: each
value is the last one recorded at or before the time since ``nvmlInit`` (sample and hold); fields missing from
the trace, or an energy counter the trace did not measure, are "not supported". The GPUs of the trace are
devices 0..n-1 in the sidecar's order.

Units at this interface are NVML's (mW, mJ, integer C, MHz, %); the devices keep SI values.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterable

import numpy as np
import pyarrow.parquet as pq
import pynvml  # for its error classes, constants and structures only: the fake raises what NVML raises

T_ZERO_C_K = 273.15
REPLAY_TIME_TOL_S = 1e-6  # a query within this of a recorded time gets that reading

# what the recorder may look up on the module; a FakeNvml has exactly these constants
_CONSTANTS = [n for n in dir(pynvml) if n.startswith(("NVML_ERROR_", "NVML_VALUE_TYPE_"))] + [
    "NVML_SUCCESS", "NVML_FI_DEV_POWER_INSTANT", "NVML_FI_DEV_POWER_AVERAGE", "NVML_TEMPERATURE_GPU",
    "NVML_CLOCK_SM", "NVML_CLOCK_MEM"]


class FakeClock:
    """A monotonic clock that moves only when told: ``sleep`` advances it; it can raise Ctrl-C on the n-th sleep."""

    def __init__(self, start_s: float = 1000.0, interrupt_on_sleep: int | None = None):
        self.now_s = float(start_s)
        self.n_sleeps = 0
        self.interrupt_on_sleep = interrupt_on_sleep

    def __call__(self) -> float:
        return self.now_s

    def advance(self, dt_s: float) -> None:
        if dt_s < 0:
            raise ValueError(f"a clock cannot go back: {dt_s} s")
        self.now_s += dt_s

    def sleep(self, dt_s: float) -> None:
        if dt_s < 0:
            raise ValueError(f"negative sleep {dt_s} s")
        self.n_sleeps += 1
        if self.interrupt_on_sleep is not None and self.n_sleeps >= self.interrupt_on_sleep:
            raise KeyboardInterrupt
        self.advance(dt_s)


@dataclass
class FakeGpu:
    """A simulated GPU: power ``P_base_W + P_amp_W sin(2 pi t / period_s)`` and an energy counter that integrates it.

    ``t`` is the clock's time. The counter reads ``energy_scale`` times the true energy (1: exact) plus
    ``energy_start_J``. ``errors`` maps an NVML function name, or a field-id constant name such as
    ``NVML_FI_DEV_POWER_AVERAGE``, to the NVML error code it fails with; from ``lost_at_s`` on, every call
    fails with "GPU is lost".
    """
    name: str = "NVIDIA Fake H100 80GB HBM3"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    P_base_W: float = 300.0
    P_amp_W: float = 100.0
    period_s: float = 2.0
    energy_start_J: float = 5.0e6
    energy_scale: float = 1.0
    power_limit_W: float = 700.0
    power_limit_min_W: float = 200.0
    power_limit_max_W: float = 700.0
    power_limit_default_W: float = 700.0
    sm_clock_Hz: float = 1.98e9
    mem_clock_Hz: float = 2.619e9
    throttle_reasons: int = 0x4  # software power cap
    n_processes: int = 2
    errors: dict[str, int] = field(default_factory=dict)
    lost_at_s: float | None = None

    def power_W(self, t: float) -> float:
        return self.P_base_W + self.P_amp_W * math.sin(2.0 * math.pi * t / self.period_s)

    def true_energy_J(self, t: float) -> float:
        """Energy drawn from time 0 to ``t``: the integral of ``power_W``."""
        w = 2.0 * math.pi / self.period_s
        return self.P_base_W * t + self.P_amp_W / w * (1.0 - math.cos(w * t))

    def value(self, field_name: str, t: float) -> float | None:
        """The SI value of a recorder field at time ``t`` (``energy_J``: the counter reading)."""
        p = self.power_W(t)
        util = min(1.0, max(0.0, (p - 60.0) / (self.power_limit_W - 60.0)))
        return {
            "power_W": p,
            "power_avg_W": self.true_energy_J(t) - self.true_energy_J(t - 1.0),  # NVML's 1 s average
            "energy_J": self.energy_start_J + self.energy_scale * self.true_energy_J(t),
            "temperature_K": round(30.0 + 0.06 * p) + T_ZERO_C_K,
            "sm_clock_Hz": self.sm_clock_Hz,
            "mem_clock_Hz": self.mem_clock_Hz,
            "util_gpu_rel": round(100 * util) / 100,
            "util_mem_rel": round(50 * util) / 100,
            "power_limit_W": self.power_limit_W,
            "throttle_reasons": float(self.throttle_reasons),
            "n_processes": float(self.n_processes),
        }[field_name]


@dataclass
class _Handle:
    index: int


class FakeNvml:
    """The pynvml functions the recorder uses, on simulated devices.

    ``mode``: "ok", "no_library" (nvmlInit: NVML shared library not found) or "no_driver" (driver not loaded).
    ``function_not_found``: functions that fail with "function not found" (an older driver); ``missing``:
    functions this module does not have at all (an older pynvml). ``calls`` counts the calls by name.
    """

    NVMLError = pynvml.NVMLError
    c_nvmlFieldValue_t = pynvml.c_nvmlFieldValue_t

    def __init__(self, gpus: list[Any], clock: Callable[[], float], *, mode: str = "ok",
                 call_latency_s: float = 0.0, function_not_found: Iterable[str] = (), missing: Iterable[str] = (),
                 driver_version: str | None = "550.54.15", nvml_version: str | None = "12.550.54.15",
                 cuda_driver_version: int | None = 12040):
        if mode not in ("ok", "no_library", "no_driver"):
            raise ValueError(f"unknown mode {mode!r}")
        for name in _CONSTANTS:
            setattr(self, name, getattr(pynvml, name))
        self.gpus = list(gpus)
        self.clock = clock
        self.mode = mode
        self.call_latency_s = call_latency_s
        self.function_not_found = set(function_not_found)
        self._missing = set(missing)
        self.driver_version, self.nvml_version, self.cuda_driver_version = (driver_version, nvml_version,
                                                                            cuda_driver_version)
        self.init_count = 0
        self.calls: Counter[str] = Counter()
        self._origin_s = 0.0

    def __getattribute__(self, name: str) -> Any:
        if name in object.__getattribute__(self, "_missing"):
            raise AttributeError(name)
        return object.__getattribute__(self, name)

    # --- machinery
    @staticmethod
    def _raise(code: int) -> None:
        raise pynvml.NVMLError(code)

    def _enter(self, name: str, handle: _Handle | None = None) -> tuple[Any, float]:
        """Check the call may run; advance the clock by its latency; the device and the time of its value."""
        self.calls[name] += 1
        if self.init_count == 0:
            self._raise(pynvml.NVML_ERROR_UNINITIALIZED)
        if name in self.function_not_found:
            self._raise(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        gpu = None
        if handle is not None:
            if not isinstance(handle, _Handle) or not 0 <= handle.index < len(self.gpus):
                self._raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
            gpu = self.gpus[handle.index]
        half = 0.5 * self.call_latency_s
        advance = getattr(self.clock, "advance", None)
        if half and advance:
            advance(half)
        t = self.clock() - self._origin_s
        if half and advance:
            advance(half)
        if gpu is not None:
            lost = getattr(gpu, "lost_at_s", None)
            if lost is not None and t >= lost:
                self._raise(pynvml.NVML_ERROR_GPU_IS_LOST)
            code = gpu.errors.get(name)
            if code is not None:
                self._raise(code)
        return gpu, t

    def _get(self, name: str, handle: _Handle, field_name: str, scale: float, offset: float = 0.0) -> int:
        """A device value in NVML's integer units: round((SI - offset) / scale); "not supported" where absent."""
        gpu, t = self._enter(name, handle)
        value = gpu.value(field_name, t)
        if value is None:
            self._raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return int(round((value - offset) / scale))

    @staticmethod
    def _static(value: Any) -> Any:
        if value is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return value

    # --- library
    def nvmlInit(self) -> None:
        self.calls["nvmlInit"] += 1
        if self.mode == "no_library":
            self._raise(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
        if self.mode == "no_driver":
            self._raise(pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
        self.init_count += 1

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")
        self.init_count -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._enter("nvmlSystemGetDriverVersion")
        return self._static(self.driver_version)

    def nvmlSystemGetNVMLVersion(self) -> str:
        self._enter("nvmlSystemGetNVMLVersion")
        return self._static(self.nvml_version)

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._enter("nvmlSystemGetCudaDriverVersion")
        return self._static(self.cuda_driver_version)

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._enter("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            self._raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return _Handle(index)

    # --- static device information
    def nvmlDeviceGetName(self, handle: _Handle) -> str:
        gpu, _ = self._enter("nvmlDeviceGetName", handle)
        return self._static(gpu.name)

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str:
        gpu, _ = self._enter("nvmlDeviceGetUUID", handle)
        return self._static(gpu.uuid)

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: _Handle) -> list[int]:
        gpu, _ = self._enter("nvmlDeviceGetPowerManagementLimitConstraints", handle)
        lo, hi = self._static(gpu.power_limit_min_W), self._static(gpu.power_limit_max_W)
        return [int(round(lo * 1e3)), int(round(hi * 1e3))]

    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle: _Handle) -> int:
        gpu, _ = self._enter("nvmlDeviceGetPowerManagementDefaultLimit", handle)
        return int(round(self._static(gpu.power_limit_default_W) * 1e3))

    # --- fast readings
    def nvmlDeviceGetFieldValues(self, handle: _Handle, field_ids: list[int]) -> Any:
        gpu, t = self._enter("nvmlDeviceGetFieldValues", handle)
        values = (pynvml.c_nvmlFieldValue_t * len(field_ids))()
        names = {pynvml.NVML_FI_DEV_POWER_INSTANT: ("NVML_FI_DEV_POWER_INSTANT", "power_W"),
                 pynvml.NVML_FI_DEV_POWER_AVERAGE: ("NVML_FI_DEV_POWER_AVERAGE", "power_avg_W")}
        for v, fid in zip(values, field_ids):
            v.fieldId = fid
            v.timestamp = int(t * 1e6)
            const, field_name = names.get(fid, (None, None))
            value = None if field_name is None else gpu.value(field_name, t)
            code = gpu.errors.get(const, pynvml.NVML_ERROR_NOT_SUPPORTED if value is None else pynvml.NVML_SUCCESS)
            v.nvmlReturn = code
            if code == pynvml.NVML_SUCCESS:
                v.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
                v.value.uiVal = int(round(value * 1e3))  # mW
        return values

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        return self._get("nvmlDeviceGetPowerUsage", handle, "power_W", 1e-3)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: _Handle) -> int:
        return self._get("nvmlDeviceGetTotalEnergyConsumption", handle, "energy_J", 1e-3)

    # --- slow readings
    def nvmlDeviceGetTemperatureV(self, handle: _Handle, sensor: int) -> int:
        return self._get("nvmlDeviceGetTemperatureV", handle, "temperature_K", 1.0, T_ZERO_C_K)

    def nvmlDeviceGetTemperature(self, handle: _Handle, sensor: int) -> int:
        return self._get("nvmlDeviceGetTemperature", handle, "temperature_K", 1.0, T_ZERO_C_K)

    def nvmlDeviceGetClockInfo(self, handle: _Handle, clock_type: int) -> int:
        field_name = {pynvml.NVML_CLOCK_SM: "sm_clock_Hz", pynvml.NVML_CLOCK_MEM: "mem_clock_Hz"}.get(clock_type)
        if field_name is None:
            self._raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return self._get("nvmlDeviceGetClockInfo", handle, field_name, 1e6)

    def nvmlDeviceGetUtilizationRates(self, handle: _Handle) -> SimpleNamespace:
        gpu, t = self._enter("nvmlDeviceGetUtilizationRates", handle)
        util_gpu, util_mem = gpu.value("util_gpu_rel", t), gpu.value("util_mem_rel", t)
        if util_gpu is None or util_mem is None:
            self._raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return SimpleNamespace(gpu=int(round(util_gpu * 100)), memory=int(round(util_mem * 100)))

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: _Handle) -> int:
        return self._get("nvmlDeviceGetEnforcedPowerLimit", handle, "power_limit_W", 1e-3)

    def nvmlDeviceGetPowerManagementLimit(self, handle: _Handle) -> int:
        return self._get("nvmlDeviceGetPowerManagementLimit", handle, "power_limit_W", 1e-3)

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: _Handle) -> int:
        return self._get("nvmlDeviceGetCurrentClocksEventReasons", handle, "throttle_reasons", 1.0)

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: _Handle) -> int:
        return self._get("nvmlDeviceGetCurrentClocksThrottleReasons", handle, "throttle_reasons", 1.0)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: _Handle) -> list[SimpleNamespace]:
        n = self._get("nvmlDeviceGetComputeRunningProcesses", handle, "n_processes", 1.0)
        return [SimpleNamespace(pid=4000 + i, usedGpuMemory=1 << 30) for i in range(n)]


# ------------------------------------------------------------------------------------------------ replay
class _ReplayGpu:
    """One GPU of a recorded trace: sample-and-hold of each recorded field."""

    def __init__(self, info: dict[str, Any], rows: dict[str, tuple[np.ndarray, np.ndarray]]):
        self.name, self.uuid = info.get("name"), info.get("uuid")
        self.power_limit_min_W, self.power_limit_max_W = info.get("power_limit_min_W"), info.get("power_limit_max_W")
        self.power_limit_default_W = info.get("power_limit_default_W")
        self.errors: dict[str, int] = {}
        self._rows = dict(rows)
        energy = info.get("fields", {}).get("energy_J", {})
        self._counter_start_J = info.get("energy_counter_start_J")
        if not energy.get("measured") or self._counter_start_J is None:
            self._rows.pop("energy_J", None)  # integrated, not measured: there was no counter to replay

    def value(self, field_name: str, t: float) -> float | None:
        if field_name not in self._rows:
            return None
        ts, values = self._rows[field_name]
        i = max(0, int(np.searchsorted(ts, t + REPLAY_TIME_TOL_S, side="right")) - 1)
        v = float(values[i])
        return self._counter_start_J + v if field_name == "energy_J" else v


class ReplayNvml(FakeNvml):
    """A recorded trace (and its sidecar) behind the pynvml functions; time counts from ``nvmlInit``."""

    def __init__(self, trace: str | Path, clock: Callable[[], float], *, call_latency_s: float = 0.0):
        trace = Path(trace)
        sidecar = json.loads(trace.with_suffix(".json").read_text())
        table = pq.read_table(trace).to_pandas()
        gpus = []
        for info in sidecar["gpus"]:
            rows = {}
            for name, g in table[table["gpu"] == info["index"]].groupby("field", observed=True):
                g = g.sort_values("t_s", kind="stable")
                rows[str(name)] = (g["t_s"].to_numpy(), g["value"].to_numpy())
            gpus.append(_ReplayGpu(info, rows))
        cuda = sidecar.get("cuda_driver_version")
        cuda_int = None if cuda is None else int(cuda.split(".")[0]) * 1000 + int(cuda.split(".")[1]) * 10
        super().__init__(gpus, clock, call_latency_s=call_latency_s, driver_version=sidecar.get("driver_version"),
                         nvml_version=sidecar.get("nvml_version"), cuda_driver_version=cuda_int)
        self.sidecar = sidecar

    def nvmlInit(self) -> None:
        super().nvmlInit()
        if self.init_count == 1:
            self._origin_s = self.clock()
