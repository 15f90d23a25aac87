"""The FMU build: stale detection, clear errors, water property fits; and the adapter's error messages."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from twin import fmu_build, water
from twin.errors import BuildError, FmuError
from twin.fmu import Fmu

CP_RTOL = 2e-4       # fitted cp vs CoolProp over 0.5..120 C
RHO_RTOL = 2e-5
DH_ATOL_J_KG = 5.0   # enthalpy differences vs CoolProp (about 1 mK of water)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A copy of models/common and models/RackLoop, with the build's folders pointed at it."""
    models = tmp_path / "models"
    shutil.copytree(fmu_build.COMMON_DIR, models / "common")
    shutil.copytree(fmu_build.MODELS_DIR / "RackLoop", models / "RackLoop")
    monkeypatch.setattr(fmu_build, "MODELS_DIR", models)
    monkeypatch.setattr(fmu_build, "COMMON_DIR", models / "common")
    monkeypatch.setattr(fmu_build, "FMUS_DIR", tmp_path / "fmus")
    monkeypatch.setattr(fmu_build, "BUILD_DIR", tmp_path / "build")
    return models


def test_missing_fmu_is_built_and_a_changed_source_makes_it_stale(sandbox):
    assert fmu_build.model_names() == ["RackLoop"]
    assert fmu_build.is_stale("RackLoop")
    path = fmu_build.ensure_built("RackLoop")
    assert path.is_file() and not fmu_build.is_stale("RackLoop")
    mtime = path.stat().st_mtime_ns
    assert fmu_build.ensure_built("RackLoop").stat().st_mtime_ns == mtime  # up to date: not rebuilt
    src = sandbox / "RackLoop" / "model.c"
    src.write_text(src.read_text() + "\n/* changed */\n")
    assert fmu_build.is_stale("RackLoop")
    fmu_build.ensure_built("RackLoop")
    assert not fmu_build.is_stale("RackLoop")


def test_compile_error_names_the_model_and_shows_the_compiler_output(sandbox):
    src = sandbox / "RackLoop" / "model.c"
    src.write_text(src.read_text().replace("return MODEL_OK;", "return MODEL_OK", 1))
    with pytest.raises(BuildError, match=r"compiling RackLoop failed(.|\n)*error"):
        fmu_build.build("RackLoop")


def test_missing_model_file_is_named(sandbox):
    (sandbox / "RackLoop" / "reference.csv").unlink()
    with pytest.raises(BuildError, match="missing reference.csv"):
        fmu_build.build("RackLoop")


def test_unknown_model_is_refused_with_the_known_ones(sandbox):
    with pytest.raises(BuildError, match="no such model.*Rackloop.*known: RackLoop"):
        fmu_build.build_all(["Rackloop"])


def test_water_fits_match_coolprop():
    wf = water.fit()
    T = np.linspace(water.T_MIN_K + 0.1, water.T_MAX_K - 0.1, 97)
    assert np.max(np.abs(wf.cp_J_kgK(T) / water.coolprop("C", T) - 1)) < CP_RTOL
    assert np.max(np.abs(wf.rho_kg_m3(T) / water.coolprop("D", T) - 1)) < RHO_RTOL
    dh_fit = wf.h_J_kg(T) - wf.h_J_kg(T[0])
    dh_cp = water.coolprop("H", T) - water.coolprop("H", T[0])
    assert np.max(np.abs(dh_fit - dh_cp)) < DH_ATOL_J_KG


def test_adapter_suggests_a_port_for_a_misspelt_name(fmu_path):
    with Fmu(fmu_path("RackLoop")) as f:
        with pytest.raises(FmuError, match="no port 'T_out_C'.*did you mean 'T_out_K'"):
            f.port("T_out_C")


def test_fmi_error_names_fmu_function_status_time_and_the_fmus_message(fmu_path):
    with Fmu(fmu_path("RackLoop"), instance_name="racks") as f:
        f.setup(0.0)
        f.bind(["P_IT_W"], ["T_out_K"])
        f.step(0.0, 60.0, np.array([1e5]))
        with pytest.raises(FmuError) as e:
            f.set_inputs(np.array([-5.0]))
        msg = str(e.value)
        for part in ("racks", "RackLoop.fmu", "fmi2SetReal", "error", "t = 60 s", "P_IT_W", "outside"):
            assert part in msg, f"{part!r} missing from: {msg}"


def test_setup_refuses_a_parameter_out_of_range(fmu_path):
    with Fmu(fmu_path("RackLoop")) as f:
        with pytest.raises(FmuError, match="f_liquid"):
            f.setup(0.0, parameters={"f_liquid": 1.5})
