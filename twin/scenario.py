"""Scenario files: TOML, read with tomllib, validated as a whole before anything runs.

Every problem is collected and reported at once, each with its path in the file (``components.tank.
parameters.V_m3``), what was expected and what was found, and a suggestion for a misspelt key or port.
Unknown keys are errors. Paths inside a scenario are relative to the scenario file.

Layout of a scenario (see scenarios/ for complete ones)::

    [run]            start, duration, step_s, seed
    [inputs.NAME]    file, interpolate                      time series (twin.inputs)
    [components.NAME]
        fmu = "RackLoop" | "my/own.fmu"   or   block = "PI" | "Hysteresis" | ... (twin.blocks)
        parameters = { NAME = number, ... }
        inputs = { PORT = number | "component.port" | "inputs.NAME.column"
                        | { from = "component.port", initial = number } }   (a delayed connection)
    [kpis]           which recorded signals are IT energy, reused heat, ... (twin.kpis)
    [balance]        sources / sinks / stored: the whole-run energy balance

A connection without ``initial`` passes the value computed in the same step (the source is stepped
first). A loop of such connections cannot be ordered: one connection of every loop must be delayed,
i.e. take the source's value from the previous step, starting from ``initial``.
"""
from __future__ import annotations

import datetime as _dt
import difflib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from . import fmu_build
from .blocks import BLOCKS
from .errors import FmuError, ScenarioError
from .units import parse_duration_s, split_unit, to_si

TOP_KEYS = ("run", "inputs", "components", "cluster", "faults", "kpis", "balance")
FAULT_KEYS = ("at", "until", "component", "port", "value", "description")
CLUSTER_KEYS = ("racks", "nodes_per_rack", "gpus_per_node", "P_idle_W", "P_max_W", "f_liquid", "jobs", "scheduler",
                "heat_signal", "price_signal", "carbon_signal", "w_heat", "w_price", "w_carbon", "max_defer_s", "cap",
                "power_models", "inputs", "description")
CAP_KEYS = ("T_cap_K", "T_release_K", "cap_W")
RUN_KEYS = ("name", "start", "duration", "step_s", "seed", "chunk_rows", "description")
INPUT_KEYS = ("file", "interpolate", "description")
COMPONENT_KEYS = ("fmu", "block", "parameters", "inputs", "description")
BALANCE_KEYS = ("sources", "sinks", "stored", "description")
KPI_LISTS = ("E_IT_J", "E_cooling_J", "E_air_heat_J", "E_hp_el_J", "E_reused_J", "E_heat_to_dh_J", "E_boiler_J",
             "E_unmet_J", "E_delivered_J", "E_drycooler_J", "E_pump_el_J", "E_throttled_J")
KPI_SIGNALS = ("price_signal", "carbon_signal")
KPI_NUMBERS = ("air_cooling_COP", "heat_price_EUR_MWh", "boiler_efficiency", "boiler_CO2_g_kWh",
               "boiler_fuel_price_EUR_MWh")
KPI_KEYS = KPI_LISTS + KPI_SIGNALS + KPI_NUMBERS + ("description",)


@dataclass(frozen=True)
class PortInfo:
    name: str
    unit: str | None
    min: float | None = None
    max: float | None = None
    start: float | None = None
    description: str = ""
    type: str = "Real"
    variability: str = ""


@dataclass(frozen=True)
class Ports:
    inputs: Mapping[str, PortInfo]
    outputs: Mapping[str, PortInfo]
    parameters: Mapping[str, PortInfo]


@dataclass(frozen=True)
class Source:
    """Where an input port takes its value from."""

    kind: str                 # "const", "port" (another component's output) or "input" (a series column)
    value: float = math.nan   # for "const"
    ref: str = ""             # "component.port" or "inputs.NAME.column"
    initial: float | None = None   # not None: a delayed connection (previous step's value)

    @property
    def delayed(self) -> bool:
        return self.initial is not None

    def split(self) -> tuple[str, str]:
        """(component, port) of a "port" source; (series, column) of an "input" source."""
        parts = self.ref.split(".", 2)
        return (parts[1], parts[2]) if self.kind == "input" else (parts[0], parts[1])


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    kind: str                       # "fmu", "block" or "cluster"
    model: str                      # project model name, FMU file name, or block class name
    fmu_path: Path | None           # a user's FMU file; None for a project model (built on demand) or a block
    parameters: Mapping[str, float]
    inputs: Mapping[str, Source]


@dataclass(frozen=True)
class Fault:
    """From ``at_s`` (seconds from the run's start) the FMU port ``port`` of ``component`` (an input no connection
    feeds, or a tunable parameter) takes ``value``; from ``until_s`` (if any) it takes ``value_after`` again (the
    scenario's value of the port, or the model's default)."""

    at_s: int
    until_s: int | None
    component: str
    port: str
    value: float
    value_after: float
    description: str = ""


@dataclass(frozen=True)
class InputSpec:
    name: str
    path: Path
    interpolate: str


@dataclass(frozen=True)
class RunSpec:
    name: str
    start: _dt.datetime
    duration_s: int
    step_s: int
    seed: int
    chunk_rows: int

    @property
    def n_steps(self) -> int:
        return self.duration_s // self.step_s


@dataclass(frozen=True)
class Scenario:
    path: Path
    run: RunSpec
    inputs: Mapping[str, InputSpec]
    components: Mapping[str, ComponentSpec]       # in file order
    kpis: Mapping[str, Any]
    balance: Mapping[str, tuple[str, ...]]
    text: str = field(repr=False, default="")
    cluster: Any = None             # twin.cluster.component.ClusterConfig, or None (IT load from a series)
    faults: tuple = ()              # Fault, in file order


class Problems:
    """Collects problems; raised together as one ScenarioError."""

    def __init__(self, path: Path):
        self.path = path
        self.items: list[str] = []

    def add(self, where: str, expected: str, found: Any = None, hint: str = "") -> None:
        msg = f"{where}: expected {expected}"
        if found is not None:
            msg += f", found {found!r}" if not isinstance(found, str) or not found.startswith("<") else f", found {found[1:-1]}"
        if hint:
            msg += f" ({hint})"
        self.items.append(msg)

    def raise_if_any(self) -> None:
        if self.items:
            lines = "\n".join(f"  - {p}" for p in self.items)
            raise ScenarioError(f"{self.path}: {len(self.items)} problem{'s' if len(self.items) > 1 else ''}:\n{lines}")


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _unknown_key_hint(key: str, choices) -> str:
    """A suggestion for an unknown key: a wrong unit suffix first, then a close spelling."""
    base, unit = split_unit(key)
    if unit is not None:
        for c in choices:
            cbase, cunit = split_unit(c)
            if cbase == base and cunit != unit:
                si, factor, offset = to_si(key)
                conv = f"; convert: {c} = value * {factor:g}{f' + {offset:g}' if offset else ''}" if si == c else ""
                return f"wrong unit suffix: the port is {c!r} ({cunit}){conv}"
    return _suggest(key, choices)


def _check_keys(table: Mapping, allowed, where: str, problems: Problems) -> None:
    for key in table:
        if key not in allowed:
            problems.add(f"{where}.{key}" if where else key, f"one of {', '.join(allowed)}", "<an unknown key>",
                         _unknown_key_hint(key, allowed))


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# ---- ports of a component ----

def _project_ports(model: str) -> Ports:
    _, _, variables = fmu_build.read_variables(fmu_build.MODELS_DIR / model / "modelDescription.xml")
    groups: dict[str, dict[str, PortInfo]] = {"input": {}, "output": {}, "parameter": {}}
    for v in variables:
        if v.causality in groups:
            groups[v.causality][v.name] = PortInfo(
                v.name, split_unit(v.name)[1], None if math.isinf(v.min) else v.min,
                None if math.isinf(v.max) else v.max, v.start, type=v.type, variability=v.variability)
    return Ports(*(MappingProxyType(groups[k]) for k in ("input", "output", "parameter")))


def _fmu_file_ports(path: Path) -> Ports:
    from .fmu import read_ports

    _, ports = read_ports(path)
    groups: dict[str, dict[str, PortInfo]] = {"input": {}, "output": {}, "parameter": {}}
    for p in ports.values():
        if p.causality in groups:
            start = float(p.start) if _is_number(_try_float(p.start)) else None
            groups[p.causality][p.name] = PortInfo(p.name, p.unit, p.min, p.max, start, p.description or "", p.type,
                                                   p.variability)
    return Ports(*(MappingProxyType(groups[k]) for k in ("input", "output", "parameter")))


def _try_float(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _block_ports(name: str) -> Ports:
    cls = BLOCKS[name]
    return Ports(MappingProxyType({n: PortInfo(n, split_unit(n)[1]) for n in cls.INPUTS}),
                 MappingProxyType({n: PortInfo(n, split_unit(n)[1]) for n in cls.OUTPUTS}),
                 MappingProxyType({q.name: PortInfo(q.name, split_unit(q.name)[1],
                                                    None if math.isinf(q.min) else q.min,
                                                    None if math.isinf(q.max) else q.max, q.default, q.description)
                                   for q in cls.PARAMS}))


def _cluster_ports() -> Ports:
    from .cluster.component import INPUTS, OUTPUTS

    return Ports(MappingProxyType({n: PortInfo(n, split_unit(n)[1]) for n in INPUTS}),
                 MappingProxyType({n: PortInfo(n, split_unit(n)[1]) for n in OUTPUTS}), MappingProxyType({}))


def ports_of(spec: ComponentSpec) -> Ports:
    if spec.kind == "cluster":
        return _cluster_ports()
    if spec.kind == "block":
        return _block_ports(spec.model)
    if spec.fmu_path is not None:
        return _fmu_file_ports(spec.fmu_path)
    return _project_ports(spec.model)


# ---- loading ----

def load(path: str | Path) -> Scenario:
    """Read and validate a scenario; raise ScenarioError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError as e:
        raise ScenarioError(f"{path}: no such scenario file") from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{path}: not valid TOML: {e}") from e
    return validate(data, path, text)


def validate(data: Mapping, path: Path, text: str = "") -> Scenario:
    problems = Problems(path)
    base = path.parent
    _check_keys(data, TOP_KEYS, "", problems)
    run = _run_spec(data.get("run"), problems)
    inputs = _input_specs(data.get("inputs", {}), base, problems, run)
    components, ports = _component_specs(data.get("components"), base, problems)
    cluster = _cluster(data.get("cluster"), base, problems, components, ports)
    declared = set(data.get("inputs", {})) if isinstance(data.get("inputs", {}), Mapping) else set()
    _check_connections(components, ports, inputs, declared, problems)
    _check_cycles(components, problems)
    if cluster is not None:
        for name, ref in cluster.signal_refs.items():
            if not _signal_exists(ref, components, ports, inputs):
                problems.add(f"cluster.{name}_signal", "a column of a declared input series (\"inputs.NAME.column\")", ref)
    kpis = _kpis(data.get("kpis", {}), components, ports, inputs, problems)
    balance = _balance(data.get("balance", {}), components, ports, problems)
    faults = _faults(data.get("faults", []), run, components, ports, problems)
    problems.raise_if_any()
    return Scenario(path=path, run=run, inputs=MappingProxyType(inputs), components=MappingProxyType(components),
                    kpis=MappingProxyType(kpis), balance=MappingProxyType(balance), text=text, cluster=cluster,
                    faults=tuple(faults))


def _run_spec(run, problems: Problems) -> RunSpec | None:
    if not isinstance(run, Mapping):
        problems.add("run", "a table [run] with start, duration and step_s", "<nothing>" if run is None else type(run).__name__)
        return None
    _check_keys(run, RUN_KEYS, "run", problems)
    start = run.get("start", _dt.datetime(2023, 1, 1))
    if isinstance(start, _dt.date) and not isinstance(start, _dt.datetime):
        start = _dt.datetime.combine(start, _dt.time())
    if not isinstance(start, _dt.datetime):
        problems.add("run.start", "a TOML date-time such as 2023-01-01T00:00:00 (UTC)", start)
        start = _dt.datetime(2023, 1, 1)
    step = run.get("step_s")
    if not (isinstance(step, int) and not isinstance(step, bool) and step > 0):
        problems.add("run.step_s", "a whole number of seconds > 0", "<nothing>" if step is None else step)
        step = None
    duration = run.get("duration")
    try:
        duration_s = parse_duration_s(duration) if duration is not None else None
    except ValueError:
        duration_s = None
    if duration_s is None or not duration_s > 0 or duration_s != int(duration_s):
        problems.add("run.duration", "a duration such as \"365d\", \"24h\", \"90min\" or a number of seconds > 0",
                     "<nothing>" if duration is None else duration)
        duration_s = None
    if step and duration_s:
        if step > duration_s:
            problems.add("run.step_s", f"a step no longer than the horizon ({int(duration_s)} s)", step)
        elif duration_s % step:
            problems.add("run.duration", f"a whole number of steps of {step} s", duration)
    seed = run.get("seed", 0)
    if not (isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0):
        problems.add("run.seed", "a whole number >= 0", seed)
        seed = 0
    chunk = run.get("chunk_rows", 8192)
    if not (isinstance(chunk, int) and chunk > 0):
        problems.add("run.chunk_rows", "a whole number > 0", chunk)
        chunk = 8192
    name = run.get("name", "")
    if not isinstance(name, str):
        problems.add("run.name", "a string", name)
    if not step or not duration_s:
        return None
    return RunSpec(str(name), start, int(duration_s), int(step), int(seed), int(chunk))


def _subtables(table: Mapping, section: str, expected: str, keys, problems: Problems):
    """(name, spec, path in the file) of each table [section.NAME]; a non-table is reported, unknown keys too."""
    for name, spec in table.items():
        where = f"{section}.{name}"
        if not isinstance(spec, Mapping):
            problems.add(where, expected, spec)
            continue
        _check_keys(spec, keys, where, problems)
        yield name, spec, where


def _input_specs(table, base: Path, problems: Problems, run: RunSpec | None) -> dict[str, InputSpec]:
    from .inputs import INTERPOLATIONS, read_series

    out = {}
    if not isinstance(table, Mapping):
        problems.add("inputs", "tables [inputs.NAME] with a file", type(table).__name__)
        return out
    for name, spec, where in _subtables(table, "inputs", "a table with file = \"...\"", INPUT_KEYS, problems):
        file = spec.get("file")
        interp = spec.get("interpolate", "linear")
        if interp not in INTERPOLATIONS:
            problems.add(f"{where}.interpolate", f"one of {', '.join(INTERPOLATIONS)}", interp)
            interp = "linear"
        if not isinstance(file, str):
            problems.add(f"{where}.file", "a path relative to the scenario file", "<nothing>" if file is None else file)
            continue
        p = (base / file).resolve()
        if not p.is_file():
            problems.add(f"{where}.file", "an existing file (relative to the scenario file)", f"<{p} does not exist>")
            continue
        out[name] = InputSpec(name, p, interp)
        if run is not None:
            try:
                s = read_series(name, p, _timestamp(run.start), interp)
            except ScenarioError as e:
                problems.add(f"{where}.file", "a readable time series", f"<{e}>")
                continue
            if s.t_s[0] > 0 or s.t_s[-1] < run.duration_s:
                problems.add(f"{where}.file", f"times covering the run, 0 .. {run.duration_s} s from {run.start}",
                             f"<{s.t_s[0]:g} .. {s.t_s[-1]:g} s>")
    return out


def _timestamp(d: _dt.datetime):
    import pandas as pd

    return pd.Timestamp(d)


def _component_specs(table, base: Path, problems: Problems):
    components: dict[str, ComponentSpec] = {}
    ports: dict[str, Ports] = {}
    if not isinstance(table, Mapping) or not table:
        problems.add("components", "at least one table [components.NAME]", "<nothing>" if table is None else table)
        return components, ports
    models = fmu_build.model_names()
    for name, spec, where in _subtables(table, "components", "a table with fmu = ... or block = ...", COMPONENT_KEYS,
                                        problems):
        if "." in name:
            problems.add(where, "a name without '.'", name)
        fmu, block = spec.get("fmu"), spec.get("block")
        fmu_path = None
        if (fmu is None) == (block is None):
            problems.add(where, "exactly one of fmu = \"Model\" or block = \"Kind\"", "<both>" if fmu else "<neither>")
            continue
        if block is not None:
            if block not in BLOCKS:
                problems.add(f"{where}.block", f"one of {', '.join(BLOCKS)}", block, _suggest(str(block), BLOCKS))
                continue
            kind, model = "block", block
        elif isinstance(fmu, str) and fmu.endswith(".fmu"):
            fmu_path = (base / fmu).resolve()
            if not fmu_path.is_file():
                problems.add(f"{where}.fmu", "an existing FMU file (relative to the scenario file)", f"<{fmu_path} does not exist>")
                continue
            kind, model = "fmu", fmu_path.stem
        elif fmu in models:
            kind, model = "fmu", fmu
        else:
            problems.add(f"{where}.fmu", f"a project model ({', '.join(models)}) or a path to an .fmu file", fmu,
                         _suggest(str(fmu), models))
            continue
        params = spec.get("parameters", {})
        inputs = spec.get("inputs", {})
        if not isinstance(params, Mapping):
            problems.add(f"{where}.parameters", "a table { NAME = number }", params)
            params = {}
        if not isinstance(inputs, Mapping):
            problems.add(f"{where}.inputs", "a table { PORT = source }", inputs)
            inputs = {}
        c = ComponentSpec(name, kind, model, fmu_path, MappingProxyType({}), MappingProxyType({}))
        try:
            p = ports_of(c)
        except (FmuError, OSError) as e:
            problems.add(f"{where}.fmu", "a readable FMU", f"<{e}>")
            continue
        ports[name] = p
        checked_params = {}
        for key, value in params.items():
            pw = f"{where}.parameters.{key}"
            info = p.parameters.get(key)
            if info is None:
                problems.add(pw, f"a parameter of {model}", "<an unknown parameter>", _unknown_key_hint(key, p.parameters))
                continue
            if isinstance(value, bool):
                value = float(value)
            if not _is_number(value):
                problems.add(pw, "a finite number" + (f" in {info.unit}" if info.unit else ""), value)
                continue
            if info.min is not None and value < info.min:
                problems.add(pw, f"a value >= {info.min:g}" + (f" {info.unit}" if info.unit else ""), value)
                continue
            if info.max is not None and value > info.max:
                problems.add(pw, f"a value <= {info.max:g}" + (f" {info.unit}" if info.unit else ""), value)
                continue
            if info.type not in ("Real", "Float64", "Float32", "Boolean") and value != int(value):
                problems.add(pw, f"a whole number ({model}'s {key} is an {info.type})", value)
                continue
            checked_params[key] = float(value)
        if kind == "block":
            for q in BLOCKS[model].PARAMS:
                if q.default is None and q.name not in checked_params and q.name not in params:
                    problems.add(f"{where}.parameters.{q.name}", f"a value ({q.description})", "<nothing>")
            for port in BLOCKS[model].REQUIRED:
                if port not in inputs:
                    problems.add(f"{where}.inputs.{port}", f"a connection (a {model} block needs {port})", "<nothing>")
        sources = {}
        for key, value in inputs.items():
            iw = f"{where}.inputs.{key}"
            if key not in p.inputs:
                problems.add(iw, f"an input port of {model}", "<an unknown port>", _unknown_key_hint(key, p.inputs))
                continue
            s = _source(value, iw, problems)
            if s is not None:
                sources[key] = s
        components[name] = ComponentSpec(name, kind, model, fmu_path, MappingProxyType(checked_params),
                                         MappingProxyType(sources))
    return components, ports


def _source(value, where: str, problems: Problems) -> Source | None:
    if isinstance(value, bool):
        return Source("const", value=float(value))
    if _is_number(value):
        return Source("const", value=float(value))
    initial = None
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in ("from", "initial")]
        if unknown:
            problems.add(f"{where}.{unknown[0]}", "only 'from' and 'initial'", "<an unknown key>", _suggest(unknown[0], ("from", "initial")))
        initial = value.get("initial")
        if not _is_number(initial):
            problems.add(f"{where}.initial", "a number (the value before the first step)", "<nothing>" if initial is None else initial)
            initial = None
        value = value.get("from")
        if initial is None:
            return None
    if not isinstance(value, str) or value.count(".") < 1:
        problems.add(where, "a number, \"component.port\", \"inputs.NAME.column\" or { from = ..., initial = ... }", value)
        return None
    if value.startswith("inputs."):
        if value.count(".") < 2:
            problems.add(where, "\"inputs.NAME.column\"", value)
            return None
        return Source("input", ref=value, initial=initial)
    return Source("port", ref=value, initial=initial)


def _check_ref(ref: str, where: str, components, ports, problems: Problems, want: str = "output") -> bool:
    comp, _, port = ref.partition(".")
    if comp not in components:
        problems.add(where, "an existing component", comp, _suggest(comp, components))
        return False
    if port not in ports[comp].outputs:
        problems.add(where, f"an output port of {comp} ({components[comp].model})", port,
                     _unknown_key_hint(port, ports[comp].outputs))
        return False
    return True


def _check_connections(components, ports, inputs, declared: set, problems: Problems) -> None:
    """Every connection names an existing output or series column. A series declared but broken was
    reported already; connections to it are not reported again."""
    series_columns: dict[str, set[str]] = {}
    for name, c in components.items():
        for port, s in c.inputs.items():
            where = f"components.{name}.inputs.{port}"
            if s.kind == "port":
                _check_ref(s.ref, where, components, ports, problems)
            elif s.kind == "input":
                series, column = s.split()
                if series in declared and series not in inputs:
                    continue
                if series not in inputs:
                    problems.add(where, "an input series declared as [inputs.NAME]", series, _suggest(series, inputs))
                    continue
                if series not in series_columns:
                    series_columns[series] = _series_columns(inputs[series])
                if column not in series_columns[series]:
                    problems.add(where, f"a column of {inputs[series].path.name} (SI names: {', '.join(sorted(series_columns[series]))})",
                                 column, _suggest(column, series_columns[series]))


def _series_columns(spec: InputSpec) -> set[str]:
    import pandas as pd

    if spec.path.suffix.lower() == ".parquet":
        cols = list(pd.read_parquet(spec.path).columns)
    else:
        cols = list(pd.read_csv(spec.path, comment="#", nrows=0).columns)
    return {to_si(c)[0] for c in cols if c not in ("time", "time_s")}


def _check_cycles(components, problems: Problems) -> None:
    """Every loop of same-step connections is an error naming the loop."""
    graph = {n: sorted({s.split()[0] for s in c.inputs.values() if s.kind == "port" and not s.delayed
                        and s.split()[0] in components}) if c.kind != "cluster" else []
             for n, c in components.items()}
    color: dict[str, int] = {}
    stack: list[str] = []
    reported: set[frozenset] = set()

    def visit(n: str) -> None:
        color[n] = 1
        stack.append(n)
        for m in graph[n]:
            if color.get(m) == 1:
                loop = stack[stack.index(m):] + [m]
                key = frozenset(loop)
                if key not in reported:
                    reported.add(key)
                    chain = " <- ".join(loop)
                    problems.add("components", "no loop of same-step connections",
                                 f"<a cycle without an initial value: {chain}>",
                                 "make one connection of the loop delayed: { from = \"component.port\", initial = value }")
            elif m not in color:
                visit(m)
        stack.pop()
        color[n] = 2

    for n in graph:
        if n not in color:
            visit(n)


def _signal_exists(ref: str, components, ports, inputs) -> bool:
    if ref.startswith("inputs."):
        parts = ref.split(".", 2)
        return len(parts) == 3 and parts[1] in inputs and parts[2] in _series_columns(inputs[parts[1]])
    comp, _, port = ref.partition(".")
    return comp in components and port in ports[comp].outputs


def _kpis(table, components, ports, inputs, problems: Problems) -> dict:
    out: dict[str, Any] = {}
    if not isinstance(table, Mapping):
        problems.add("kpis", "a table", table)
        return out
    _check_keys(table, KPI_KEYS, "kpis", problems)
    for key, value in table.items():
        where = f"kpis.{key}"
        if key in KPI_LISTS:
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.add(where, "a list of \"component.port\" names", value)
                continue
            for v in value:
                if not _signal_exists(v, components, ports, inputs):
                    problems.add(where, "recorded signals (\"component.port\")", v)
            out[key] = tuple(value)
        elif key in KPI_SIGNALS:
            if not isinstance(value, str) or not _signal_exists(value, components, ports, inputs):
                problems.add(where, "a recorded signal (\"component.port\" or \"inputs.NAME.column\")", value)
                continue
            out[key] = value
        elif key in KPI_NUMBERS:
            positive = key in ("air_cooling_COP", "boiler_efficiency")     # they divide
            if not _is_number(value) or value < 0 or (positive and value == 0):
                problems.add(where, "a number > 0" if positive else "a number >= 0", value)
                continue
            out[key] = float(value)
    return out


def _balance(table, components, ports, problems: Problems) -> dict:
    out: dict[str, tuple[str, ...]] = {}
    if not isinstance(table, Mapping):
        problems.add("balance", "a table with sources, sinks and stored", table)
        return out
    _check_keys(table, BALANCE_KEYS, "balance", problems)
    for key in ("sources", "sinks", "stored"):
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.add(f"balance.{key}", "a list of \"component.port\" cumulative energies", value)
            continue
        for v in value:
            _check_ref(v, f"balance.{key}", components, ports, problems)
        out[key] = tuple(value)
    return out


def _cluster(table, base: Path, problems: Problems, components: dict, ports: dict):
    """The [cluster] table: hardware, job table, scheduler, signals, cap policy. Adds the component 'cluster'."""
    if table is None:
        return None
    from .cluster.component import SCHEDULERS, ClusterConfig
    from .cluster.sim import CapPolicy, ClusterSpec
    from .errors import TraceError, TwinError

    if not isinstance(table, Mapping):
        problems.add("cluster", "a table [cluster]", table)
        return None
    _check_keys(table, CLUSTER_KEYS, "cluster", problems)
    if "cluster" in components:
        problems.add("components.cluster", "no component named 'cluster' (the name of the [cluster] table's component)", "<a component>")
        return None
    ints = {k: table.get(k, d) for k, d in (("racks", 1), ("nodes_per_rack", 4), ("gpus_per_node", 8))}
    for k, v in ints.items():
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            problems.add(f"cluster.{k}", "a whole number >= 1", v)
    nums = {k: table.get(k, d) for k, d in (("P_idle_W", 75.0), ("P_max_W", 700.0), ("f_liquid", 0.75),
                                            ("w_heat", 1.0), ("w_price", 1.0), ("w_carbon", 0.0))}
    for k, v in nums.items():
        if not _is_number(v) or v < 0:
            problems.add(f"cluster.{k}", "a number >= 0", v)
    max_defer = table.get("max_defer_s", 43200)
    if not (isinstance(max_defer, int) and max_defer >= 0):
        problems.add("cluster.max_defer_s", "a whole number of seconds >= 0", max_defer)
    scheduler = table.get("scheduler", "fifo")
    if scheduler not in SCHEDULERS:
        problems.add("cluster.scheduler", f"one of {', '.join(SCHEDULERS)}", scheduler, _suggest(str(scheduler), SCHEDULERS))
    jobs = table.get("jobs")
    jobs_path = None
    if not isinstance(jobs, str):
        problems.add("cluster.jobs", "a job table file (CSV or Parquet) relative to the scenario file", "<nothing>" if jobs is None else jobs)
    else:
        jobs_path = (base / jobs).resolve()
        if not jobs_path.is_file():
            problems.add("cluster.jobs", "an existing file (relative to the scenario file)", f"<{jobs_path} does not exist>")
            jobs_path = None
        else:
            from .cluster.traces import read_jobs
            try:
                read_jobs(jobs_path)
            except (TraceError, TwinError) as e:
                problems.add("cluster.jobs", "a valid job table", f"<{e}>")
                jobs_path = None
    refs = {}
    for key, name in (("heat_signal", "heat"), ("price_signal", "price"), ("carbon_signal", "carbon")):
        ref = table.get(key)
        if ref is None:
            continue
        if not (isinstance(ref, str) and ref.startswith("inputs.") and ref.count(".") >= 2):
            problems.add(f"cluster.{key}", "an input series column \"inputs.NAME.column\"", ref)
            continue
        refs[name] = ref
    if scheduler == "thermal" and not refs:
        problems.add("cluster", "at least one of heat_signal, price_signal, carbon_signal for the thermal scheduler", "<none>")
    cap = None
    cap_t = table.get("cap")
    if cap_t is not None:
        if not isinstance(cap_t, Mapping):
            problems.add("cluster.cap", "a table { T_cap_K, T_release_K, cap_W }", cap_t)
        else:
            _check_keys(cap_t, CAP_KEYS, "cluster.cap", problems)
            try:
                cap = CapPolicy(float(cap_t.get("T_cap_K", math.nan)), float(cap_t.get("T_release_K", math.nan)),
                                float(cap_t.get("cap_W", math.nan)))
            except (TwinError, TypeError, ValueError) as e:
                problems.add("cluster.cap", "T_cap_K >= T_release_K > 0 and cap_W > 0", f"<{e}>")
    power_models = {}
    pm = table.get("power_models", {})
    if not isinstance(pm, Mapping):
        problems.add("cluster.power_models", "a table { workload_class = \"model.json\" }", pm)
        pm = {}
    from .cluster.jobs import WorkloadClass

    classes = [c.value for c in WorkloadClass]
    for cls, file in pm.items():
        where = f"cluster.power_models.{cls}"
        if cls not in classes:
            problems.add(where, f"a workload class ({', '.join(classes)})", "<an unknown class>", _suggest(cls, classes))
            continue
        if not isinstance(file, str):
            problems.add(where, "a power model file (from twin fit-power) relative to the scenario file", file)
            continue
        fp = (base / file).resolve()
        if not fp.is_file():
            problems.add(where, "an existing file (relative to the scenario file)", f"<{fp} does not exist>")
            continue
        from .cluster.power import load_power_model
        try:
            load_power_model(fp)
        except (ScenarioError, TwinError) as e:
            problems.add(where, "a valid power model file", f"<{e}>")
            continue
        power_models[cls] = fp
    spec = None
    try:
        spec = ClusterSpec(n_racks=ints["racks"], nodes_per_rack=ints["nodes_per_rack"],
                           gpus_per_node=ints["gpus_per_node"], P_idle_W=float(nums["P_idle_W"]),
                           P_max_W=float(nums["P_max_W"]), f_liquid=float(nums["f_liquid"]))
    except (TwinError, TypeError, ValueError) as e:
        problems.add("cluster", "a valid hardware description", f"<{e}>")
    inputs = table.get("inputs", {})
    sources = {}
    from .cluster.component import INPUTS
    if not isinstance(inputs, Mapping):
        problems.add("cluster.inputs", "a table { T_coolant_K = \"component.port\", can_reject_heat = ... }", inputs)
        inputs = {}
    for key, value in inputs.items():
        if key not in INPUTS:
            problems.add(f"cluster.inputs.{key}", f"one of {', '.join(INPUTS)}", "<an unknown port>", _unknown_key_hint(key, INPUTS))
            continue
        src = _source(value, f"cluster.inputs.{key}", problems)
        if src is not None:
            sources[key] = src
    if "can_reject_heat" in sources and "T_coolant_K" not in sources:
        problems.add("cluster.inputs.T_coolant_K", "a connection (can_reject_heat acts together with it)", "<nothing>")
    spec_c = ComponentSpec("cluster", "cluster", "Cluster", None, MappingProxyType({}), MappingProxyType(sources))
    components["cluster"] = spec_c
    ports["cluster"] = _cluster_ports()
    if spec is None or jobs_path is None or scheduler not in SCHEDULERS:
        return None
    return ClusterConfig(spec=spec, jobs_path=jobs_path, scheduler=scheduler, cap=cap, signal_refs=refs,
                         weights={k: float(nums[k]) for k in ("w_heat", "w_price", "w_carbon")},
                         max_defer_s=int(max_defer), power_models=power_models)


def _time_s(value, run: RunSpec | None, where: str, problems: Problems) -> int | None:
    """A fault time: a TOML date-time (UTC) or a duration from the run's start ("36h", "2d", seconds)."""
    if isinstance(value, _dt.datetime) and run is not None:
        t = (value - run.start).total_seconds()
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        try:
            t = parse_duration_s(value)
        except ValueError:
            t = None
    else:
        t = None
    if t is None or t != t or t < 0 or t != int(t):
        problems.add(where, "a date-time in the run or a whole duration from its start (\"36h\", \"2d\", seconds)", value)
        return None
    if run is not None and t > run.duration_s:
        problems.add(where, f"a time within the run (0 .. {run.duration_s} s)", value)
        return None
    return int(t)


def _faults(table, run, components, ports, problems: Problems) -> list:
    if not isinstance(table, list):
        problems.add("faults", "an array of tables [[faults]]", table)
        return []
    out = []
    for i, f in enumerate(table):
        where = f"faults[{i}]"
        if not isinstance(f, Mapping):
            problems.add(where, "a table with at, component, port, value", f)
            continue
        _check_keys(f, FAULT_KEYS, where, problems)
        comp, port, value = f.get("component"), f.get("port"), f.get("value")
        at = _time_s(f.get("at"), run, f"{where}.at", problems)
        until = _time_s(f["until"], run, f"{where}.until", problems) if "until" in f else None
        if at is not None and until is not None and until <= at:
            problems.add(f"{where}.until", f"a time after at ({at} s)", f["until"])
        if comp not in components or components[comp].kind != "fmu":
            problems.add(f"{where}.component", "an FMU component of the scenario", comp,
                         _suggest(str(comp), [n for n, c in components.items() if c.kind == "fmu"]))
            continue
        spec, p = components[comp], ports[comp]
        info = p.inputs.get(port) or p.parameters.get(port)
        if info is None:
            problems.add(f"{where}.port", f"an input or parameter of {spec.model}", port,
                         _unknown_key_hint(str(port), list(p.inputs) + list(p.parameters)))
            continue
        if port in p.parameters and info.variability == "fixed":
            problems.add(f"{where}.port", f"an input or a tunable parameter ({port} is fixed after initialization)", port)
            continue
        if port in spec.inputs and spec.inputs[port].kind != "const":
            problems.add(f"{where}.port", "an input no connection feeds (a connected input gets its value every step)", port)
            continue
        if isinstance(value, bool):
            value = float(value)
        if not _is_number(value) or (info.min is not None and value < info.min) or (info.max is not None and value > info.max):
            problems.add(f"{where}.value", f"a number in [{info.min}, {info.max}]", value)
            continue
        after = spec.parameters.get(port, spec.inputs[port].value if port in spec.inputs else info.start)
        if at is None or (f.get("until") is not None and until is None):
            continue
        out.append(Fault(at, until, comp, port, float(value), float(after if after is not None else 0.0),
                         str(f.get("description", ""))))
    return out
