"""What every project FMU must show: fmpy's validation, fmpy's own simulation, its reference result, exact
state save/restore (also across instances by serialization), and refusal of bad input naming the variable."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from fmpy import simulate_fmu
from fmpy.validation import validate_fmu

from twin import fmu_build, fmu_reference
from twin.errors import FmuError
from twin.fmu import Fmu

MODELS = fmu_build.model_names()
REFERENCE_RTOL = 1e-9


def test_every_model_folder_is_complete_and_its_fmu_is_ignored_by_git():
    gitignore = (fmu_build.ROOT / ".gitignore").read_text().splitlines()
    for model in MODELS:
        for f in fmu_build.MODEL_FILES:
            assert (fmu_build.MODELS_DIR / model / f).is_file(), f"models/{model}/{f} missing"
        assert f"/fmus/{model}.fmu" in gitignore, f"fmus/{model}.fmu is a build output and must be in .gitignore"


@pytest.mark.parametrize("model", MODELS)
def test_fmpy_validation_passes(fmu_path, model):
    assert validate_fmu(str(fmu_path(model))) == []


@pytest.mark.parametrize("model", MODELS)
def test_runs_under_fmpy_simulate_fmu(fmu_path, model):
    result = simulate_fmu(str(fmu_path(model)), stop_time=3600.0, step_size=60.0, output_interval=60.0)
    assert len(result) == 61
    for name in result.dtype.names:
        assert np.all(np.isfinite(result[name].astype(float))), f"{model}: {name} not finite under simulate_fmu"


@pytest.mark.parametrize("model", MODELS)
def test_reproduces_its_reference_result(fmu_path, model):
    deviations = fmu_reference.compare(fmu_build.MODELS_DIR / model, fmu_path(model))
    worst = max(deviations, key=deviations.get)
    assert deviations[worst] <= REFERENCE_RTOL, f"{model}: {worst} deviates {deviations[worst]:.3g} (relative)"


def _reference_inputs(model):
    ref = pd.read_csv(fmu_build.MODELS_DIR / model / "reference.csv")
    with Fmu(fmu_build.fmu_path(model)) as f:
        kinds = {n: p.causality for n, p in f.ports.items()}
        outputs = [n for n, p in f.ports.items() if p.causality == "output"]
    inputs = [c for c in ref.columns if kinds.get(c) == "input"]
    return ref["time_s"].to_numpy(), ref[inputs].to_numpy(), inputs, outputs


def _run(fmu, t, u, k0, k1):
    return np.array([fmu.step(t[k], t[k + 1] - t[k], u[k]).copy() for k in range(k0, k1)])


@pytest.mark.parametrize("model", MODELS)
def test_state_restore_and_serialization_are_bit_identical(fmu_path, model):
    path = fmu_path(model)
    t, u, inputs, outputs = _reference_inputs(model)
    n = len(t) - 1
    half = n // 2
    with Fmu(path) as a:
        a.setup(t[0], inputs=dict(zip(inputs, u[0])))
        a.bind(inputs, outputs)
        _run(a, t, u, 0, half)
        state = a.get_state()
        blob = a.serialize()
        first = _run(a, t, u, half, n)
        a.set_state(state)
        again = _run(a, t, u, half, n)
        a.free_state(state)
    assert np.array_equal(first, again), f"{model}: restoring the FMU state does not reproduce the run"
    with Fmu(path, instance_name="other") as b:
        b.setup(t[0], inputs=dict(zip(inputs, u[0])))
        b.bind(inputs, outputs)
        b.deserialize(blob, t[half])
        other = _run(b, t, u, half, n)
    assert np.array_equal(first, other), f"{model}: a deserialized state in a new instance does not reproduce the run"


def _real_inputs(path):
    with Fmu(path) as f:
        return [p for p in f.ports.values() if p.causality == "input" and p.type == "Real"]


@pytest.mark.parametrize("model", MODELS)
def test_nan_and_out_of_range_inputs_are_refused_naming_the_variable(fmu_path, model):
    path = fmu_path(model)
    ports = _real_inputs(path)
    assert ports, f"{model} has no Real inputs"
    with Fmu(path) as f:
        f.setup(0.0)
        for p in ports:
            f.bind([p.name], [])
            name = re.escape(p.name)
            with pytest.raises(FmuError, match=rf"{name}.*NaN|NaN.*{name}"):
                f.set_inputs(np.array([np.nan]))
            for bad in [b for b in ((p.min - 1.0 - abs(p.min)) if p.min is not None else None,
                                    (p.max + 1.0 + abs(p.max)) if p.max is not None else None) if b is not None]:
                with pytest.raises(FmuError, match=rf"{name}.*outside"):
                    f.set_inputs(np.array([bad]))
        # the instance is still usable after refused inputs: outputs finite after a step
        f.bind([], [p.name for p in f.ports.values() if p.causality == "output"])
        y = f.step(0.0, 60.0, np.array([]))
        assert np.all(np.isfinite(y))


@pytest.mark.parametrize("model", MODELS)
def test_every_flow_input_refuses_reversed_flow(fmu_path, model):
    flows = [p for p in _real_inputs(fmu_path(model)) if p.name.startswith("mdot")]
    for p in flows:
        assert p.min is not None and p.min >= 0.0, f"{model}: {p.name} must refuse reversed flow (min >= 0)"


@pytest.mark.parametrize("model", MODELS)
def test_a_state_saved_before_initialization_is_not_stepped(fmu_path, model):
    """FMI 2.0 allows fmi2GetFMUstate before initialization; setting such a state back must not let the FMU step
    on an empty state (that would read uninitialized layers, parcels, ...): fmi2DoStep is refused."""
    from fmpy import extract, read_model_description
    from fmpy.fmi1 import FMICallException
    from fmpy.fmi2 import FMU2Slave

    path = str(fmu_path(model))
    md = read_model_description(path)
    slave = FMU2Slave(guid=md.guid, unzipDirectory=extract(path), modelIdentifier=md.coSimulation.modelIdentifier)
    slave.instantiate()
    early = slave.getFMUstate()
    slave.setupExperiment(startTime=0.0)
    slave.enterInitializationMode()
    slave.exitInitializationMode()
    slave.doStep(0.0, 60.0)
    slave.setFMUstate(early)
    with pytest.raises(FMICallException):
        slave.doStep(60.0, 60.0)
    slave.freeFMUstate(early)
    slave.freeInstance()


@pytest.mark.parametrize("model", MODELS)
def test_outputs_read_in_initialization_mode_are_those_initialization_gives(fmu_path, model):
    from fmpy import extract, read_model_description
    from fmpy.fmi2 import FMU2Slave

    path = str(fmu_path(model))
    md = read_model_description(path)
    outs = [v.valueReference for v in md.modelVariables if v.causality == "output" and v.type == "Real"]
    slave = FMU2Slave(guid=md.guid, unzipDirectory=extract(path), modelIdentifier=md.coSimulation.modelIdentifier)
    slave.instantiate()
    slave.setupExperiment(startTime=0.0)
    slave.enterInitializationMode()
    during = slave.getReal(outs)
    slave.exitInitializationMode()
    after = slave.getReal(outs)
    slave.freeInstance()
    assert during == after
