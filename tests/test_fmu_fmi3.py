"""The adapter with an FMI 3.0 co-simulation FMU (a first-order lag built here from tests/fmi3/)."""
from __future__ import annotations

import math
import re
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from twin import fmu_build
from twin.errors import FmuError
from twin.fmu import Fmu, fmi_headers_dir, platform_tuple

HERE = Path(__file__).parent / "fmi3"
Y_ATOL_K = 1e-12


def _stubs(implemented: set[str]) -> str:
    """fmpy loads every FMI 3.0 function: the ones lag.c does not define return fmi3Error."""
    header = (fmi_headers_dir() / "fmi3FunctionTypes.h").read_text()
    out = []
    for m in re.finditer(r"typedef\s+([\w\s\*]+?)\s*(fmi3\w+)TYPE\s*\(([^;]*?)\)\s*;", header, re.S):
        ret, name, args = m.group(1).strip(), m.group(2), " ".join(m.group(3).split())
        if name in implemented:
            continue
        body = "return NULL;" if "Instance" in ret else "return;" if ret == "void" else \
               "return \"\";" if "char" in ret else "return fmi3Error;"
        out.append(f"{ret} {name}({args}) {{ {body} }}")
    return "\n".join(out)


@pytest.fixture(scope="module")
def lag_fmu(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("fmi3")
    src = (HERE / "lag.c").read_text()
    implemented = set(re.findall(r"^\S.*?\b(fmi3\w+)\(", src, re.M))
    (work / "lag_all.c").write_text(src + "\n" + _stubs(implemented) + "\n")
    lib = work / "Lag3.so"
    subprocess.run([fmu_build.compiler(), "-shared", "-fPIC", "-O2", f"-I{fmi_headers_dir()}", str(work / "lag_all.c"),
                    "-o", str(lib), "-lm"], check=True, capture_output=True)
    fmu = work / "Lag3.fmu"
    with zipfile.ZipFile(fmu, "w") as zf:
        zf.write(HERE / "modelDescription.xml", "modelDescription.xml")
        zf.write(lib, f"binaries/{platform_tuple()}/Lag3.so")
    return fmu


def test_fmi3_steps_with_batched_calls(lag_fmu):
    with Fmu(lag_fmu) as f:
        assert f.fmi_version == "3.0"
        f.setup(0.0, parameters={"tau_s": 20.0})
        f.bind(["u_K"], ["y_K"])
        y = [f.step(k * 5.0, 5.0, np.array([10.0]))[0] for k in range(4)]
    expected = [10.0 * (1 - math.exp(-5.0 * (k + 1) / 20.0)) for k in range(4)]
    assert np.allclose(y, expected, atol=Y_ATOL_K, rtol=0)


def test_fmi3_state_serialization_round_trip(lag_fmu):
    with Fmu(lag_fmu) as a:
        a.setup(0.0)
        a.bind(["u_K"], ["y_K"])
        a.step(0.0, 3.0, np.array([1.0]))
        blob = a.serialize()
        y_a = a.step(3.0, 3.0, np.array([1.0]))[0]
    with Fmu(lag_fmu) as b:
        b.setup(0.0)
        b.bind(["u_K"], ["y_K"])
        b.deserialize(blob, 3.0)
        assert b.step(3.0, 3.0, np.array([1.0]))[0] == y_a


def test_fmi3_error_status_becomes_fmu_error(lag_fmu):
    with Fmu(lag_fmu) as f:
        f.setup(0.0)
        f.bind(["u_K"], ["y_K"])
        with pytest.raises(FmuError, match="fmi3SetFloat64 returned error at t = 0 s: u is NaN"):
            f.set_inputs(np.array([np.nan]))
