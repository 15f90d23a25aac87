"""A site built from a scenario: its components (FMU instances and Python blocks), the order they are
stepped in, and the routing of values between them.

All values of one communication step live in one vector ``z``: every component's outputs, the input-series
values of the step, the constants, and one slot per delayed connection (the source's value of the previous
step). A component's inputs are gathered from ``z`` with one index array; its outputs are written back into
its own slice. The plant and the cluster never meet here: they meet in the engine, through ``z``.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter

import numpy as np

from . import fmu_build
from .blocks import BLOCKS, Block
from .errors import ScenarioError
from .fmu import Fmu
from .scenario import ComponentSpec, Scenario, ports_of


class FmuComponent:
    """An FMU in the plant: its connected inputs are bound for the batched hot path."""

    def __init__(self, spec: ComponentSpec):
        self.name = spec.name
        self.spec = spec
        path = spec.fmu_path or fmu_build.ensure_built(spec.model)
        self.fmu = Fmu(path, instance_name=spec.name)
        # constant inputs are set once, at setup (a fault may change them later); the others are routed each step
        self.inputs = [port for port, s in spec.inputs.items() if s.kind != "const"]
        self.outputs = [p.name for p in self.fmu.ports.values() if p.causality == "output"]

    def setup(self, t_s: float) -> np.ndarray:
        consts = {k: s.value for k, s in self.spec.inputs.items() if s.kind == "const"}
        self.fmu.setup(t_s, parameters=dict(self.spec.parameters), inputs=consts)
        self.fmu.bind(self.inputs, self.outputs)
        return self.fmu.get_outputs()

    def step(self, t_s: float, h_s: float, u: np.ndarray) -> np.ndarray:
        return self.fmu.step(t_s, h_s, u)

    def stepper(self, z: np.ndarray, in_idx: np.ndarray, out_slice: slice):
        """step(t_s, h_s) reading inputs from z and writing outputs into z (the adapter's hot path)."""
        return self.fmu.make_stepper(z, in_idx, out_slice.start)

    def get_state(self):
        if self.fmu.can_serialize:
            return {"fmu": self.fmu.serialize(), "time_s": self.fmu.time_s}
        return None

    def set_state(self, s) -> None:
        if s is None:
            raise ScenarioError(f"{self.name}: its FMU cannot serialize its state, so it cannot be restored from a checkpoint")
        self.fmu.deserialize(s["fmu"], s["time_s"])

    def close(self) -> None:
        self.fmu.close()


class BlockComponent:
    def __init__(self, spec: ComponentSpec):
        self.name = spec.name
        self.spec = spec
        self.block: Block = BLOCKS[spec.model](spec.name, dict(spec.parameters))
        self.inputs = list(spec.inputs)
        self.outputs = list(self.block.OUTPUTS)
        # unconnected block inputs read 0, except 'enable' (1); validation requires the others a block needs
        self._defaults = {n: (1.0 if n == "enable" else 0.0) for n in self.block.INPUTS}
        self._order = [self.block.INPUTS.index(n) for n in self.inputs]
        self._u = np.array([self._defaults[n] for n in self.block.INPUTS])

    def setup(self, t_s: float) -> np.ndarray:
        return self.block.setup(t_s)

    def step(self, t_s: float, h_s: float, u: np.ndarray) -> np.ndarray:
        self._u[self._order] = u
        return self.block.step(t_s, h_s, self._u)

    def stepper(self, z: np.ndarray, in_idx: np.ndarray, out_slice: slice):
        # blocks compute on Python floats (numpy scalars are several times slower in scalar arithmetic)
        u = self._u.tolist()
        order, block_step = self._order, self.block.step
        pairs = list(zip(order, range(len(order))))
        take = z.take

        def step(t_s: float, h_s: float) -> None:
            vals = take(in_idx).tolist()
            for i, j in pairs:
                u[i] = vals[j]
            z[out_slice] = block_step(t_s, h_s, u)
        return step

    def get_state(self):
        return self.block.get_state()

    def set_state(self, s) -> None:
        self.block.set_state(s)

    def close(self) -> None:
        pass


@dataclass
class Route:
    component: object
    in_idx: np.ndarray      # indices into z of its bound inputs
    out_slice: slice        # its outputs in z


class Site:
    def __init__(self, scenario: Scenario, cluster=None):
        """``cluster``: the component of the scenario's [cluster] table, built by the engine (it needs the SimPy
        environment); its inputs are read after each plant step (``post_step``), not routed into its step."""
        self.scenario = scenario
        self.components = {}
        try:
            for name, spec in scenario.components.items():
                if spec.kind == "cluster":
                    if cluster is None:
                        raise ScenarioError("the scenario has a [cluster] table but no cluster component was built")
                    self.components[name] = cluster
                else:
                    self.components[name] = FmuComponent(spec) if spec.kind == "fmu" else BlockComponent(spec)
        except BaseException:
            self.close()
            raise
        self.order = self._order()
        self._layout()

    def _order(self) -> list[str]:
        ts = TopologicalSorter()
        for name, spec in self.scenario.components.items():
            deps = [s.split()[0] for s in spec.inputs.values() if s.kind == "port" and not s.delayed]
            ts.add(name, *(deps if spec.kind != "cluster" else ()))
        try:
            # static_order is deterministic for a given insertion order (the file order)
            return list(ts.static_order())
        except CycleError as e:  # validated before; kept as a guard
            raise ScenarioError(f"a cycle without an initial value: {e.args[1]}") from e

    def _layout(self) -> None:
        index: dict[str, int] = {}
        names: list[str] = []

        def slot(key: str) -> int:
            if key not in index:
                index[key] = len(names)
                names.append(key)
            return index[key]

        out_slices = {}
        for name in self.order:
            c = self.components[name]
            first = len(names)
            for port in c.outputs:
                slot(f"{name}.{port}")
            out_slices[name] = slice(first, len(names))
        self.n_outputs = len(names)
        self.series_refs: list[tuple[str, str]] = []
        for spec in self.scenario.components.values():
            for s in spec.inputs.values():
                if s.kind == "input" and s.ref not in index:
                    slot(s.ref)
                    self.series_refs.append(s.split())
        # series the KPIs name are recorded even if no component reads them
        for value in self.scenario.kpis.values():
            for ref in ([value] if isinstance(value, str) else value if isinstance(value, tuple) else ()):
                if isinstance(ref, str) and ref.startswith("inputs.") and ref not in index:
                    slot(ref)
                    self.series_refs.append(tuple(ref.split(".", 2)[1:]))
        self.series_slice = slice(self.n_outputs, len(names))
        self.n_recorded = len(names)
        consts, delays = [], []
        for name, spec in self.scenario.components.items():
            for port, s in spec.inputs.items():
                if s.kind == "const":
                    consts.append((slot(f"const:{name}.{port}"), s.value))
                elif s.delayed:
                    delays.append((slot(f"delay:{name}.{port}"), s))
        self.signal_names = names
        self.index = index
        self.z = np.zeros(len(names))
        for i, v in consts:
            self.z[i] = v
        self.delay_slots = np.array([i for i, _ in delays], dtype=np.intp)
        self.delay_srcs = np.array([index[s.ref] for _, s in delays], dtype=np.intp)
        self.delay_initial = np.array([s.initial for _, s in delays], dtype=float)
        self.routes = []
        self.post = []      # (component, indices into z of its post-step inputs, in its INPUTS order)
        for name in self.order:
            c = self.components[name]
            spec = self.scenario.components[name]
            if spec.kind == "cluster":
                from .cluster.component import INPUTS as cluster_inputs

                post_idx = []
                for port in cluster_inputs:
                    s = spec.inputs.get(port)
                    if s is None:
                        break
                    post_idx.append(index[f"const:{name}.{port}"] if s.kind == "const" else
                                    index[f"delay:{name}.{port}"] if s.delayed else index[s.ref])
                self.post.append((c, np.array(post_idx, dtype=np.intp)))
            idx = []
            for port in c.inputs:
                s = spec.inputs[port]
                if s.kind == "const":
                    idx.append(index[f"const:{name}.{port}"])
                elif s.delayed:
                    idx.append(index[f"delay:{name}.{port}"])
                else:
                    idx.append(index[s.ref])
            self.routes.append(Route(c, np.array(idx, dtype=np.intp), out_slices[name]))

    @property
    def recorded_names(self) -> list[str]:
        return self.signal_names[: self.n_recorded]

    def setup(self, t_s: float) -> None:
        for r in self.routes:
            self.z[r.out_slice] = r.component.setup(t_s)
        self.z[self.delay_slots] = self.delay_initial
        self._steppers = [r.component.stepper(self.z, r.in_idx, r.out_slice) for r in self.routes]

    def step(self, t_s: float, h_s: float) -> None:
        """One communication step [t_s, t_s + h_s): components in dependency order, then the delayed values."""
        for step in self._steppers:
            step(t_s, h_s)
        z = self.z
        for comp, idx in self.post:
            comp.post_step(z[idx])
        z[self.delay_slots] = z[self.delay_srcs]

    def get_state(self) -> bytes:
        return pickle.dumps({"z": self.z.copy(), "components": {n: c.get_state() for n, c in self.components.items()}})

    def set_state(self, blob: bytes) -> None:
        s = pickle.loads(blob)
        self.z[:] = s["z"]
        for n, c in self.components.items():
            c.set_state(s["components"][n])

    def fmu_info(self) -> dict:
        return {n: {"file": str(c.fmu.path), "sha256": c.fmu.sha256, "model": c.fmu.model_name,
                    "fmi_version": c.fmu.fmi_version, "version": c.fmu.md.version}
                for n, c in self.components.items() if isinstance(c, FmuComponent)}

    def close(self) -> None:
        for c in self.components.values():
            c.close()
