"""The FMU adapter: loads any FMI 2.0 or 3.0 co-simulation FMU and steps it fast. The only module importing fmpy.

Two layers, as in fmpy: fmpy's FMU classes handle the life cycle (instantiate, initialize, terminate) and
this class owns the hot path. After ``bind(inputs, outputs)`` each step is one batched set call for all Real
inputs, one doStep, and one batched get call for all Real outputs, on preallocated ctypes arrays, calling the
shared library's functions directly (fmpy's per-variable Python calls are several times slower).

Every FMI status worse than warning becomes ``FmuError`` naming the FMU, the function, the status, the
simulated time and the FMU's own logged message: one choke point (``_check``).
"""
from __future__ import annotations

import ctypes
import difflib
import hashlib
import os
import shutil
import tempfile
from ctypes import byref, c_double, c_int, c_size_t, c_uint, c_void_p, c_char_p
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

import fmpy
from fmpy.fmi1 import FMICallException

from .errors import FmuError

_STATUS = ["ok", "warning", "discard", "error", "fatal", "pending"]
_REAL_TYPES = {"Real", "Float64"}


def fmi_headers_dir() -> Path:
    """The FMI 2.0/3.0 C headers that fmpy ships (used to compile the project's FMUs)."""
    return Path(fmpy.__file__).parent / "c-code"


def platform_tag() -> str:
    """The binaries/<platform> folder name of this machine (e.g. linux64)."""
    return fmpy.platform


def platform_tuple() -> str:
    """The FMI 3.0 binaries/<platform tuple> folder name of this machine (e.g. x86_64-linux)."""
    return fmpy.platform_tuple


@dataclass(frozen=True)
class Port:
    """A variable of an FMU, as declared in its model description."""

    name: str
    vr: int
    type: str            # Real, Integer, Boolean (FMI 2.0); Float64, Int32, Boolean, ... (FMI 3.0)
    causality: str       # parameter, calculatedParameter, input, output, local, independent, structuralParameter
    variability: str
    unit: str | None
    start: object
    min: float | None
    max: float | None
    description: str | None


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_ports(path: str | os.PathLike) -> tuple[object, dict[str, Port]]:
    """(model description, ports by name) of an FMU file, without instantiating it."""
    try:
        md = fmpy.read_model_description(str(path))
    except Exception as e:  # fmpy raises bare Exception for a bad zip or XML
        raise FmuError(f"{path}: cannot read the model description: {e}") from e
    ports = {}
    for v in md.modelVariables:
        ports[v.name] = Port(
            name=v.name, vr=int(v.valueReference), type=v.type, causality=v.causality, variability=v.variability,
            unit=v.unit if v.unit else (v.declaredType.unit if v.declaredType is not None else None),
            start=v.start, min=_float_or_none(v.min), max=_float_or_none(v.max), description=v.description)
    return md, ports


def _api_type(port_type: str, fmi_version: str = "2.0") -> str:
    """The fmpy setter/getter suffix of a port type: an Enumeration goes through the Integer calls (FMI 2.0) or
    the Int64 calls (FMI 3.0)."""
    if port_type == "Enumeration":
        return "Integer" if fmi_version == "2.0" else "Int64"
    return port_type


def _as_type(port: Port, value):
    """A value converted for the FMI setter of the port's type (scenarios and the engine carry floats)."""
    if port.type == "Boolean":
        return bool(value)
    if port.type in _REAL_TYPES or port.type.startswith("Float"):
        return float(value)
    if port.type in ("Integer", "Enumeration") or port.type.startswith(("Int", "UInt")):
        if float(value) != int(value):
            raise FmuError(f"port {port.name} is an {port.type}; {value!r} is not a whole number")
        return int(value)
    return value


def _float_or_none(x):
    return None if x is None else float(x)


class Fmu:
    """One instance of a co-simulation FMU.

    >>> fmu = Fmu("fmus/Pump.fmu")
    >>> fmu.setup(parameters={"H0_Pa": 5e4})
    >>> fmu.bind(["speed_rel"], ["V_flow_m3_s"])
    >>> y = fmu.step(0.0, 60.0, np.array([0.8]))
    """

    def __init__(self, path: str | os.PathLike, instance_name: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise FmuError(f"{self.path}: no such FMU file")
        self.md, self.ports = read_ports(self.path)
        self.fmi_version = "3.0" if self.md.fmiVersion.startswith("3") else "2.0"
        if self.md.coSimulation is None:
            raise FmuError(f"{self.path}: {self.md.modelName} is not a co-simulation FMU (only co-simulation is supported)")
        self.model_name = self.md.modelName
        self.instance_name = instance_name or self.model_name
        self.sha256 = file_sha256(self.path)
        self.can_get_state = bool(self.md.coSimulation.canGetAndSetFMUstate)
        self.can_serialize = bool(self.md.coSimulation.canSerializeFMUstate)
        self._unzip_dir = tempfile.mkdtemp(prefix=f"twin-{self.model_name}-")
        try:
            fmpy.extract(str(self.path), self._unzip_dir)
        except Exception as e:
            shutil.rmtree(self._unzip_dir, ignore_errors=True)
            raise FmuError(f"{self.path}: cannot extract: {e}") from e
        self.messages: list[str] = []
        self.time_s = 0.0
        self._slave = None
        self._in_vr = self._out_vr = None
        self._in_other: list[tuple[Port, int]] = []
        self._out_other: list[tuple[Port, int]] = []

    # ---- errors: the one choke point ----

    def _check(self, status: int, function: str) -> None:
        if status > 1:
            label = _STATUS[status] if 0 <= status < len(_STATUS) else f"illegal status {status}"
            detail = f": {self.messages[-1]}" if self.messages else ""
            raise FmuError(f"{self.instance_name} ({self.path.name}): {function} returned {label} at t = {self.time_s:g} s{detail}")

    def _call(self, function: str, fn: Callable, *args, **kwargs):
        """A life-cycle call through fmpy, its exception turned into FmuError."""
        try:
            return fn(*args, **kwargs)
        except FMICallException as e:
            self._check(e.status, function)
            raise
        except FmuError:
            raise
        except Exception as e:  # fmpy raises bare Exception when instantiation fails
            detail = f": {self.messages[-1]}" if self.messages else ""
            raise FmuError(f"{self.instance_name} ({self.path.name}): {function} failed: {e}{detail}") from e

    def _log(self, status: int, category: bytes, message: bytes) -> None:
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
        self.messages.append(text)
        del self.messages[:-100]  # keep the last ones only: a chatty FMU must not grow memory

    # ---- ports ----

    def port(self, name: str) -> Port:
        try:
            return self.ports[name]
        except KeyError:
            close = difflib.get_close_matches(name, self.ports, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise FmuError(f"{self.path.name}: no port {name!r}{hint}") from None

    def ports_by_causality(self, causality: str) -> list[Port]:
        return [p for p in self.ports.values() if p.causality == causality]

    # ---- life cycle ----

    def setup(self, start_time_s: float = 0.0, parameters: Mapping[str, float] | None = None,
              inputs: Mapping[str, float] | None = None) -> None:
        """Instantiate, set parameters and initial inputs, and initialize at start_time_s."""
        self.time_s = float(start_time_s)
        kwargs = dict(guid=self.md.guid, unzipDirectory=self._unzip_dir,
                      modelIdentifier=self.md.coSimulation.modelIdentifier, instanceName=self.instance_name)
        if self.fmi_version == "2.0":
            from fmpy.fmi2 import FMU2Slave, fmi2CallbackFunctions, fmi2CallbackLoggerTYPE, \
                fmi2CallbackAllocateMemoryTYPE, fmi2CallbackFreeMemoryTYPE
            self._slave = self._call("load", FMU2Slave, **kwargs)
            cb = fmi2CallbackFunctions()
            cb.logger = fmi2CallbackLoggerTYPE(lambda env, inst, status, cat, msg: self._log(status, cat, msg))
            cb.allocateMemory = fmi2CallbackAllocateMemoryTYPE(fmpy.calloc)
            cb.freeMemory = fmi2CallbackFreeMemoryTYPE(fmpy.free)
            self._callbacks = cb
            self._call("fmi2Instantiate", self._slave.instantiate, False, cb, False)
            self._call("fmi2SetupExperiment", self._slave.setupExperiment, None, self.time_s)
            self._call("fmi2EnterInitializationMode", self._slave.enterInitializationMode)
            self.set(dict(parameters or {}) | dict(inputs or {}))
            self._call("fmi2ExitInitializationMode", self._slave.exitInitializationMode)
        else:
            from fmpy.fmi3 import FMU3Slave
            self._slave = self._call("load", FMU3Slave, **kwargs)
            self._call("fmi3InstantiateCoSimulation", self._slave.instantiate, False, False, False, False,
                       lambda env, status, cat, msg: self._log(status, cat, msg))
            self._call("fmi3EnterInitializationMode", self._slave.enterInitializationMode, None, self.time_s)
            self.set(dict(parameters or {}) | dict(inputs or {}))
            self._call("fmi3ExitInitializationMode", self._slave.exitInitializationMode)
        self._bind_raw_functions()

    def _bind_raw_functions(self) -> None:
        dll = self._slave.dll
        if self.fmi_version == "2.0":
            self._set_real = dll.fmi2SetReal
            self._set_real.argtypes = [c_void_p, ctypes.POINTER(c_uint), c_size_t, ctypes.POINTER(c_double)]
            self._get_real = dll.fmi2GetReal
            self._get_real.argtypes = [c_void_p, ctypes.POINTER(c_uint), c_size_t, ctypes.POINTER(c_double)]
            self._do_step = dll.fmi2DoStep
            self._do_step.argtypes = [c_void_p, c_double, c_double, c_int]
            for f in (self._set_real, self._get_real, self._do_step):
                f.restype = c_int
        else:
            self._set_real = dll.fmi3SetFloat64
            self._set_real.argtypes = [c_void_p, ctypes.POINTER(c_uint), c_size_t, ctypes.POINTER(c_double), c_size_t]
            self._get_real = dll.fmi3GetFloat64
            self._get_real.argtypes = [c_void_p, ctypes.POINTER(c_uint), c_size_t, ctypes.POINTER(c_double), c_size_t]
            self._do_step = dll.fmi3DoStep
            self._do_step.argtypes = [c_void_p, c_double, c_double, ctypes.c_bool, ctypes.POINTER(ctypes.c_bool),
                                      ctypes.POINTER(ctypes.c_bool), ctypes.POINTER(ctypes.c_bool), ctypes.POINTER(c_double)]
            self._flags = [ctypes.c_bool() for _ in range(3)]
            self._last_t = c_double()
            for f in (self._set_real, self._get_real, self._do_step):
                f.restype = c_int
        self._component = self._slave.component

    def _require_setup(self) -> None:
        if self._slave is None:
            raise FmuError(f"{self.instance_name}: call setup() before stepping or reading values")

    # ---- convenience (slow path: per-call arrays) ----

    def set(self, values: Mapping[str, float]) -> None:
        by_type: dict[str, tuple[list[int], list]] = {}
        for name, value in values.items():
            p = self.port(name)
            vrs, vals = by_type.setdefault(p.type, ([], []))
            vrs.append(p.vr)
            vals.append(_as_type(p, value))
        for t, (vrs, vals) in by_type.items():
            api = _api_type(t, self.fmi_version)
            self._call(f"set{api}", getattr(self._slave, "set" + api), vrs, vals)

    def get(self, names: Iterable[str]) -> dict[str, float]:
        self._require_setup()
        out = {}
        for name in names:
            p = self.port(name)
            api = _api_type(p.type, self.fmi_version)
            out[name] = self._call(f"get{api}", getattr(self._slave, "get" + api), [p.vr])[0]
        return out

    # ---- hot path ----

    def bind(self, inputs: Sequence[str], outputs: Sequence[str]) -> None:
        """Fix the ports of ``step``: Real ones go through one batched call each way; others (a Boolean fault
        flag, say) through the per-type calls."""
        self._in_names, self._out_names = list(inputs), list(outputs)
        for name in self._in_names:
            p = self.port(name)
            if p.causality not in ("input", "parameter"):
                raise FmuError(f"{self.path.name}: port {name!r} has causality {p.causality}; expected an input or a tunable parameter")
        ins = [(i, self.port(n)) for i, n in enumerate(self._in_names)]
        outs = [(i, self.port(n)) for i, n in enumerate(self._out_names)]
        self._in_real_idx = np.array([i for i, p in ins if p.type in _REAL_TYPES], dtype=np.intp)
        self._out_real_idx = np.array([i for i, p in outs if p.type in _REAL_TYPES], dtype=np.intp)
        self._in_other = [(p, i) for i, p in ins if p.type not in _REAL_TYPES]
        self._out_other = [(p, i) for i, p in outs if p.type not in _REAL_TYPES]
        n_in, n_out = len(self._in_real_idx), len(self._out_real_idx)
        self._in_vr = (c_uint * n_in)(*[ins[i][1].vr for i in self._in_real_idx])
        self._out_vr = (c_uint * n_out)(*[outs[i][1].vr for i in self._out_real_idx])
        self._in_buf = np.zeros(n_in)
        self._out_buf = np.zeros(n_out)
        self._in_ptr = self._in_buf.ctypes.data_as(ctypes.POINTER(c_double))
        self._out_ptr = self._out_buf.ctypes.data_as(ctypes.POINTER(c_double))
        self._n_in, self._n_out = n_in, n_out
        self._all_real_in = not self._in_other
        self._all_real_out = not self._out_other
        self._y = np.zeros(len(self._out_names))

    def set_inputs(self, u: np.ndarray) -> None:
        if self._all_real_in:
            self._in_buf[:] = u
        else:
            self._in_buf[:] = np.asarray(u)[self._in_real_idx]
            if self._in_other:
                self.set({p.name: u[i] for p, i in self._in_other})
        if self._n_in:
            if self.fmi_version == "2.0":
                self._check(self._set_real(self._component, self._in_vr, self._n_in, self._in_ptr), "fmi2SetReal")
            else:
                self._check(self._set_real(self._component, self._in_vr, self._n_in, self._in_ptr, self._n_in), "fmi3SetFloat64")

    def get_outputs(self) -> np.ndarray:
        """The bound outputs, in the order given to ``bind``. The array is reused: copy it to keep it."""
        if self._n_out:
            if self.fmi_version == "2.0":
                self._check(self._get_real(self._component, self._out_vr, self._n_out, self._out_ptr), "fmi2GetReal")
            else:
                self._check(self._get_real(self._component, self._out_vr, self._n_out, self._out_ptr, self._n_out), "fmi3GetFloat64")
        if self._all_real_out:
            return self._out_buf
        self._y[self._out_real_idx] = self._out_buf
        for p, i in self._out_other:
            self._y[i] = float(self.get([p.name])[p.name])
        return self._y

    def do_step(self, t_s: float, h_s: float) -> None:
        self.time_s = t_s
        if self.fmi_version == "2.0":
            self._check(self._do_step(self._component, t_s, h_s, 1), "fmi2DoStep")
        else:
            f = self._flags
            self._check(self._do_step(self._component, t_s, h_s, True, byref(f[0]), byref(f[1]), byref(f[2]),
                                      byref(self._last_t)), "fmi3DoStep")
        self.time_s = t_s + h_s

    def step(self, t_s: float, h_s: float, u: np.ndarray) -> np.ndarray:
        """Set the bound inputs, advance from t_s by h_s, return the bound outputs at t_s + h_s."""
        self.set_inputs(u)
        self.do_step(t_s, h_s)
        return self.get_outputs()

    def make_stepper(self, z: np.ndarray, in_idx: np.ndarray, out_start: int) -> Callable[[float, float], None]:
        """The engine's hot path: a function step(t_s, h_s) that gathers the bound inputs from z[in_idx],
        steps, and writes the bound outputs into z[out_start : out_start + n_outputs].

        FMI 2.0: raw function addresses and buffers are fixed here once (z must not be reallocated afterwards);
        Real ports go through one batched call each way, straight into z when every output is Real; Integer and
        Boolean ports through one batched fmi2SetInteger/SetBoolean/GetInteger/GetBoolean call per type.
        FMI 3.0 FMUs take the general path (``step``)."""
        n_out_all = len(self._out_names)
        if self.fmi_version != "2.0":
            def general(t_s: float, h_s: float) -> None:
                z[out_start:out_start + n_out_all] = self.step(t_s, h_s, z[in_idx])
            return general
        if z.dtype != np.float64 or not z.flags.c_contiguous:
            raise FmuError("make_stepper: z must be a contiguous float64 array")
        fn = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t, c_void_p)
        dll = self._slave.dll

        def raw(name):
            return fn(ctypes.cast(getattr(dll, name), c_void_p).value)

        raw_set, raw_get = raw("fmi2SetReal"), raw("fmi2GetReal")
        raw_step = ctypes.CFUNCTYPE(c_int, c_void_p, c_double, c_double, c_int)(ctypes.cast(dll.fmi2DoStep, c_void_p).value)
        comp = self._component
        in_idx = np.ascontiguousarray(in_idx, dtype=np.intp)
        real_idx = in_idx[self._in_real_idx]
        buf = self._in_buf
        in_vr, out_vr = ctypes.addressof(self._in_vr), ctypes.addressof(self._out_vr)
        buf_a = buf.ctypes.data
        n_in, n_out = self._n_in, self._n_out
        take = z.take
        # Integer / Boolean inputs and outputs: (FMI function, value references, z positions, int32 buffer) per type
        int_in, int_out = [], []
        for kind, api_set, api_get in (("Integer", "fmi2SetInteger", "fmi2GetInteger"),
                                       ("Boolean", "fmi2SetBoolean", "fmi2GetBoolean")):
            ins = [(p, i) for p, i in self._in_other if p.type == kind]
            if ins:
                vr = np.array([p.vr for p, _ in ins], dtype=np.uint32)
                int_in.append((raw(api_set), api_set, vr, in_idx[[i for _, i in ins]], np.zeros(len(ins), np.int32),
                               kind == "Boolean"))
            outs = [(p, i) for p, i in self._out_other if p.type == kind]
            if outs:
                vr = np.array([p.vr for p, _ in outs], dtype=np.uint32)
                int_out.append((raw(api_get), api_get, vr, out_start + np.array([i for _, i in outs], dtype=np.intp),
                                np.zeros(len(outs), np.int32), kind == "Boolean"))
        unsupported = [p.name for p, _ in self._in_other + self._out_other if p.type not in ("Integer", "Boolean")]
        if unsupported:
            raise FmuError(f"{self.path.name}: ports {unsupported} are of a type the engine cannot route")
        direct = not self._out_other                   # every output Real: fmi2GetReal writes into z itself
        out_a = z.ctypes.data + 8 * out_start if direct else self._out_buf.ctypes.data
        out_pos = out_start + self._out_real_idx
        out_buf = self._out_buf
        self._keep = (raw_set, raw_get, raw_step, in_idx, real_idx, int_in, int_out)  # alive as long as the instance

        check = self._check

        def step(t_s: float, h_s: float) -> None:
            if n_in:
                take(real_idx, out=buf)
                if (st := raw_set(comp, in_vr, n_in, buf_a)) > 1:
                    check(st, "fmi2SetReal")
            for api, name, vr, idx, ibuf, boolean in int_in:
                ibuf[:] = (take(idx) != 0.0) if boolean else take(idx)
                if (st := api(comp, vr.ctypes.data, len(vr), ibuf.ctypes.data)) > 1:
                    check(st, name)
            self.time_s = t_s
            if (st := raw_step(comp, t_s, h_s, 1)) > 1:
                check(st, "fmi2DoStep")
            self.time_s = t_s + h_s
            if n_out and (st := raw_get(comp, out_vr, n_out, out_a)) > 1:
                check(st, "fmi2GetReal")
            if not direct:
                z[out_pos] = out_buf
                for api, name, vr, pos, ibuf, boolean in int_out:
                    if (st := api(comp, vr.ctypes.data, len(vr), ibuf.ctypes.data)) > 1:
                        check(st, name)
                    z[pos] = (ibuf != 0) if boolean else ibuf   # a Boolean reads 0 or 1, as on the C loop
        return step

    # ---- state ----

    def _state_api(self, name2: str, name3: str):
        self._require_setup()
        if not self.can_get_state:
            raise FmuError(f"{self.path.name}: the FMU does not declare canGetAndSetFMUstate")
        return getattr(self._slave, name2 if self.fmi_version == "2.0" else name3)

    def get_state(self):
        return self._call("getFMUstate", self._state_api("getFMUstate", "getFMUState"))

    def set_state(self, state) -> None:
        self._call("setFMUstate", self._state_api("setFMUstate", "setFMUState"), state)

    def free_state(self, state) -> None:
        self._call("freeFMUstate", self._state_api("freeFMUstate", "freeFMUState"), state)

    def serialize(self) -> bytes:
        """The FMU's whole state as bytes (time included), for checkpoints."""
        if not self.can_serialize:
            raise FmuError(f"{self.path.name}: the FMU does not declare canSerializeFMUstate")
        state = self.get_state()
        try:
            return self._call("serializeFMUstate", self._state_api("serializeFMUstate", "serializeFMUState"), state)
        finally:
            self.free_state(state)

    def deserialize(self, data: bytes, time_s: float) -> None:
        """Restore a state made by ``serialize`` (of this FMU or another instance of the same FMU)."""
        if not self.can_serialize:
            raise FmuError(f"{self.path.name}: the FMU does not declare canSerializeFMUstate")
        state = self._call("deSerializeFMUstate", self._state_api("deSerializeFMUstate", "deserializeFMUState"), data)
        try:
            self.set_state(state)
        finally:
            self.free_state(state)
        self.time_s = time_s

    def close(self) -> None:
        if self._slave is not None:
            try:
                self._slave.terminate()
            except Exception:
                pass  # an instance in error may refuse to terminate; it is freed all the same
            self._slave.freeInstance()
            self._slave = None
        shutil.rmtree(self._unzip_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_unzip_dir", None) and os.path.isdir(self._unzip_dir) and getattr(self, "_slave", None) is None:
            shutil.rmtree(self._unzip_dir, ignore_errors=True)
