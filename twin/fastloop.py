"""The engine's inner loop in C (twin/csrc/steploop.c): a faster path for sites made of FMI 2.0 FMUs and the
standard blocks, bit-identical to stepping them from Python (tests/test_fastloop.py checks it on whole runs).

Python keeps everything else: the SimPy environment, input cursors, the recorder, checkpoints. Between calls the
blocks' states live in the Python blocks (``sync_in`` / ``sync_out``), so a checkpoint taken between two calls
is the same as on the Python path. A site with a component the C loop does not know (a cluster, an FMI 3.0 FMU,
a block without a C twin) runs on the Python path. ``TWIN_PYTHON_LOOP=1`` forces the Python path.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import sys
import tempfile
from ctypes import POINTER, Structure, c_double, c_int, c_long, c_uint, c_void_p
from pathlib import Path

import numpy as np

from . import fmu_build
from .errors import BuildError, FmuError
from .fmu import fmi_headers_dir

SOURCE = Path(__file__).parent / "csrc" / "steploop.c"
BLOCK_KINDS = {"PI": 1, "Hysteresis": 2, "Linear": 3, "Product": 4, "FlowForHeat": 5, "Throttle": 6}
STATE_KEYS = {"PI": ("I",), "Hysteresis": ("on", "since_s")}
CALLS = {1: "fmi2SetReal", 2: "fmi2SetInteger", 3: "fmi2SetBoolean", 4: "fmi2DoStep", 5: "fmi2GetReal",
         6: "fmi2GetInteger", 7: "fmi2GetBoolean"}


class Unit(Structure):
    _fields_ = [("kind", c_int), ("comp", c_void_p),
                ("set_real", c_void_p), ("get_real", c_void_p), ("do_step", c_void_p), ("set_int", c_void_p),
                ("set_bool", c_void_p), ("get_int", c_void_p), ("get_bool", c_void_p),
                ("n_in_r", c_int), ("n_in_i", c_int), ("n_in_b", c_int),
                ("in_r_idx", c_void_p), ("in_i_idx", c_void_p), ("in_b_idx", c_void_p),
                ("in_r_vr", c_void_p), ("in_i_vr", c_void_p), ("in_b_vr", c_void_p),
                ("n_out_r", c_int), ("n_out_i", c_int), ("n_out_b", c_int),
                ("out_r_pos", c_void_p), ("out_i_pos", c_void_p), ("out_b_pos", c_void_p),
                ("out_r_vr", c_void_p), ("out_i_vr", c_void_p), ("out_b_vr", c_void_p),
                ("rbuf", c_void_p), ("ibuf", c_void_p),
                ("p", c_void_p), ("s", c_void_p), ("u", c_void_p), ("y", c_void_p),
                ("n_u_conn", c_int), ("u_map", c_void_p), ("out_start", c_long), ("n_y", c_int)]


class Failure(Structure):
    _fields_ = [("unit", c_int), ("call", c_int), ("status", c_int), ("step", c_long)]


_lib = None


def library():
    """The compiled loop, built on first use (and again when its source changes)."""
    global _lib
    if _lib is not None:
        return _lib
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    out = fmu_build.BUILD_DIR / f"steploop-{digest}.so"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".so.part")   # unique: parallel workers may build too
        os.close(fd)
        try:
            cmd = [fmu_build.compiler(), "-shared", "-fPIC", "-O2", "-std=gnu11", "-ffp-contract=off",
                   f"-I{fmi_headers_dir()}", str(SOURCE), "-o", tmp]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise BuildError(f"compiling the engine loop failed:\n{' '.join(cmd)}\n{proc.stderr}")
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    lib = ctypes.CDLL(str(out))
    lib.twin_run_steps.restype = c_long
    lib.twin_run_steps.argtypes = [POINTER(Unit), c_int, c_void_p, c_long, c_long, c_long, c_long, c_void_p, c_long,
                                   c_long, c_void_p, c_void_p, c_int, c_void_p, c_void_p, c_long, POINTER(Failure)]
    _lib = lib
    return lib


def available() -> bool:
    """Whether the C loop can be built and loaded here; if not, say so once and run on the Python loop."""
    try:
        library()
        return True
    except (BuildError, OSError) as e:
        print(f"twin: the engine's C loop is not available ({str(e).splitlines()[0]}); running on the Python loop",
              file=sys.stderr)
        return False


def supported(site) -> bool:
    from .site import BlockComponent, FmuComponent

    if os.environ.get("TWIN_PYTHON_LOOP") == "1" or site.post:
        return False
    for r in site.routes:
        c = r.component
        if isinstance(c, FmuComponent):
            if c.fmu.fmi_version != "2.0":
                return False
        elif not (isinstance(c, BlockComponent) and c.spec.model in BLOCK_KINDS):
            return False
    return True


def _addr(a: np.ndarray) -> int:
    return a.ctypes.data if a.size else 0


class FastLoop:
    """The C loop bound to a set-up site (its z must not be reallocated afterwards)."""

    def __init__(self, site):
        from .site import FmuComponent

        self.site = site
        self.lib = library()
        z = site.z
        self._keep: list = []
        self.units = (Unit * len(site.routes))()
        self.blocks = []       # (unit index, BlockComponent, s array, y array)
        self.fmus = []
        for q, r in enumerate(site.routes):
            c, u = r.component, self.units[q]
            if isinstance(c, FmuComponent):
                self._fmu_unit(u, c, r.in_idx, r.out_slice.start)
                self.fmus.append(c)
            else:
                self._block_unit(q, u, c, r.in_idx, r.out_slice.start)
        self.delay_slots = np.ascontiguousarray(site.delay_slots, dtype=np.int64)
        self.delay_srcs = np.ascontiguousarray(site.delay_srcs, dtype=np.int64)
        self.delay_tmp = np.zeros(max(len(self.delay_slots), 1))
        self.failure = Failure()
        self.z = z

    def _arr(self, values, dtype) -> np.ndarray:
        a = np.ascontiguousarray(np.array(values, dtype=dtype))
        self._keep.append(a)
        return a

    def _fmu_unit(self, u: Unit, c, in_idx: np.ndarray, out_start: int) -> None:
        f = c.fmu
        dll = f._slave.dll
        u.kind = 0
        u.comp = f._component
        for field, name in (("set_real", "fmi2SetReal"), ("get_real", "fmi2GetReal"), ("do_step", "fmi2DoStep"),
                            ("set_int", "fmi2SetInteger"), ("set_bool", "fmi2SetBoolean"),
                            ("get_int", "fmi2GetInteger"), ("get_bool", "fmi2GetBoolean")):
            setattr(u, field, ctypes.cast(getattr(dll, name), c_void_p).value)
        ports_in = [f.port(n) for n in f._in_names]
        ports_out = [f.port(n) for n in f._out_names]
        groups_in = {"r": [], "i": [], "b": []}
        for j, p in enumerate(ports_in):
            groups_in["b" if p.type == "Boolean" else "i" if p.type == "Integer" else "r"].append((int(in_idx[j]), p.vr))
        groups_out = {"r": [], "i": [], "b": []}
        for j, p in enumerate(ports_out):
            groups_out["b" if p.type == "Boolean" else "i" if p.type == "Integer" else "r"].append((out_start + j, p.vr))
        for t in ("r", "i", "b"):
            gi, go = groups_in[t], groups_out[t]
            setattr(u, f"n_in_{t}", len(gi))
            setattr(u, f"in_{t}_idx", _addr(self._arr([a for a, _ in gi], np.int64)))
            setattr(u, f"in_{t}_vr", _addr(self._arr([v for _, v in gi], np.uint32)))
            setattr(u, f"n_out_{t}", len(go))
            setattr(u, f"out_{t}_pos", _addr(self._arr([a for a, _ in go], np.int64)))
            setattr(u, f"out_{t}_vr", _addr(self._arr([v for _, v in go], np.uint32)))
        n = max(len(ports_in), len(ports_out), 1)
        u.rbuf = _addr(self._arr(np.zeros(n), np.float64))
        u.ibuf = _addr(self._arr(np.zeros(n), np.int32))

    def _block_unit(self, q: int, u: Unit, c, in_idx: np.ndarray, out_start: int) -> None:
        b = c.block
        u.kind = BLOCK_KINDS[c.spec.model]
        u.p = _addr(self._arr([b.p[prm.name] for prm in b.PARAMS], np.float64))
        s = self._arr(np.zeros(2), np.float64)
        y = self._arr(np.zeros(len(b.OUTPUTS)), np.float64)
        uu = self._arr(c._u.tolist() if hasattr(c._u, "tolist") else list(c._u), np.float64)
        u.s, u.y, u.u = _addr(s), _addr(y), _addr(uu)
        u.n_u_conn = len(c._order)
        u.u_map = _addr(self._arr(c._order, np.int32))
        u.n_in_r = len(in_idx)
        u.in_r_idx = _addr(self._arr(in_idx, np.int64))
        u.out_start = out_start
        u.n_y = len(b.OUTPUTS)
        self.blocks.append((q, c, s, y))

    def sync_in(self) -> None:
        """Python blocks' states -> the C loop's arrays (before a call)."""
        for _, c, s, y in self.blocks:
            keys = STATE_KEYS.get(c.spec.model, ())
            for i, key in enumerate(keys):
                s[i] = c.block.state[key]
            y[:] = c.block._y

    def sync_out(self, t_end_s: float) -> None:
        """The C loop's arrays -> the Python blocks, and each FMU's time (after a call)."""
        for _, c, s, y in self.blocks:
            for i, key in enumerate(STATE_KEYS.get(c.spec.model, ())):
                c.block.state[key] = float(s[i])
            c.block._y[:] = y
        for c in self.fmus:
            c.fmu.time_s = t_end_s

    def run(self, k0: int, n: int, h_ticks: int, ticks_per_s: int, series: np.ndarray | None, rows: np.ndarray) -> int:
        """Steps k0 .. k0+n-1; rows (n x (1 + n_recorded)) receives the recorded rows. Returns the steps done:
        fewer than n after an FMU failure, which ``raise_failure`` then raises."""
        site = self.site
        n_series = site.series_slice.stop - site.series_slice.start
        series_addr = _addr(series) if (series is not None and n_series) else 0
        self.sync_in()
        done = self.lib.twin_run_steps(self.units, len(self.units), self.z.ctypes.data, k0, n, h_ticks, ticks_per_s,
                                       series_addr, n_series, site.series_slice.start,
                                       _addr(self.delay_slots), _addr(self.delay_srcs), len(self.delay_slots),
                                       self.delay_tmp.ctypes.data, rows.ctypes.data, site.n_recorded,
                                       ctypes.byref(self.failure))
        self.sync_out(((k0 + done) * h_ticks) / ticks_per_s)
        self._failed = (done < n, h_ticks, ticks_per_s)
        return done

    def raise_failure(self) -> None:
        """After ``run`` returned fewer steps than asked (and the caller kept those rows): raise the FMU's error."""
        failed, h_ticks, ticks_per_s = getattr(self, "_failed", (False, 0, 1))
        if not failed:
            return
        self._failed = (False, 0, 1)
        f = self.failure
        comp = self.site.routes[f.unit].component
        t_s = (f.step * h_ticks) / ticks_per_s
        if f.status < 0:
            raise FmuError(f"{comp.name}: the engine loop does not know this block")
        comp.fmu.time_s = t_s
        comp.fmu._check(f.status, CALLS.get(f.call, "?"))
        raise FmuError(f"{comp.name}: {CALLS.get(f.call, '?')} failed with status {f.status} at t = {t_s:g} s")
