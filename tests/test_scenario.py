"""Invalid scenarios fail in validation, before any simulation, with every problem listed (path, expected,
found, a suggestion), `twin validate` exits with code 2, and `twin run` leaves no output folder behind."""
from __future__ import annotations

import subprocess
import sys

import pytest

from twin import runner, scenario
from twin.errors import ScenarioError

from test_engine import SMALL, make_site


def problems_of(tmp_path, text) -> str:
    path = make_site(tmp_path / "site", text)
    with pytest.raises(ScenarioError) as e:
        scenario.load(path)
    return str(e.value)


def test_missing_file(tmp_path):
    msg = problems_of(tmp_path, SMALL.replace("inputs/load.csv", "inputs/nope.csv"))
    assert "inputs.site.file: expected an existing file" in msg and "nope.csv does not exist" in msg


def test_unknown_key_with_suggestion(tmp_path):
    msg = problems_of(tmp_path, SMALL.replace("step_s = 60", "step_s = 60\nsed = 3"))
    assert "run.sed: expected one of" in msg and "did you mean 'seed'?" in msg


def test_wrong_unit_suffix(tmp_path):
    msg = problems_of(tmp_path, SMALL.replace("f_liquid = 0.75", "f_liquid = 0.75, T_start_C = 30"))
    assert "components.racks.parameters.T_start_C" in msg
    assert "wrong unit suffix: the port is 'T_start_K' (K)" in msg and "value * 1 + 273.15" in msg


def test_port_that_does_not_exist(tmp_path):
    msg = problems_of(tmp_path, SMALL.replace('mdot_kg_s = "ctl.u"', 'mdot_kg_s = "ctl.y"'))
    assert "components.racks.inputs.mdot_kg_s: expected an output port of ctl (PI), found 'y'" in msg


def test_input_port_that_does_not_exist(tmp_path):
    msg = problems_of(tmp_path, SMALL.replace('T_in_K = "inputs', 'T_inlet_K = "inputs'))
    assert "components.racks.inputs.T_inlet_K: expected an input port of RackLoop" in msg and "'T_in_K'" in msg


def test_negative_volume(tmp_path, fmu_path):
    text = SMALL + '\n[components.tank]\nfmu = "BufferTank"\nparameters = { V_m3 = -6.5 }\n'
    msg = problems_of(tmp_path, text)
    assert "components.tank.parameters.V_m3: expected a value >=" in msg and "found -6.5" in msg


def test_step_larger_than_the_horizon(tmp_path):
    msg = problems_of(tmp_path, SMALL.replace('duration = "2d"', 'duration = "1h"').replace("step_s = 60", "step_s = 7200"))
    assert "run.step_s: expected a step no longer than the horizon (3600 s), found 7200" in msg


def test_cycle_without_initial_value(tmp_path):
    msg = problems_of(tmp_path, SMALL.replace('measured = { from = "racks.T_out_K", initial = 313.15 }',
                                              'measured = "racks.T_out_K"'))
    assert "a cycle without an initial value: ctl <- racks <- ctl" in msg or \
           "a cycle without an initial value: racks <- ctl <- racks" in msg
    assert "initial = value" in msg


def test_all_problems_are_reported_at_once(tmp_path):
    text = (SMALL.replace("inputs/load.csv", "inputs/nope.csv").replace("step_s = 60", "step_s = 60\nsed = 3")
            .replace('mdot_kg_s = "ctl.u"', 'mdot_kg_s = "ctl.y"').replace("f_liquid = 0.75", "f_liquid = 1.5"))
    msg = problems_of(tmp_path, text)
    assert "4 problems" in msg
    for part in ("inputs.site.file", "run.sed", "inputs.mdot_kg_s", "parameters.f_liquid: expected a value <= 1"):
        assert part in msg


def test_validate_exits_2_and_run_writes_nothing(tmp_path):
    path = make_site(tmp_path / "site", SMALL.replace("sed", "x").replace("step_s = 60", "step_s = 60\nsed = 3"))
    r = subprocess.run([sys.executable, "-m", "twin.cli", "validate", str(path)], capture_output=True, text=True)
    assert r.returncode == 2 and "run.sed" in r.stderr
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "twin.cli", "run", str(path), "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 2 and "run.sed" in r.stderr
    assert not out.exists()


def test_input_file_not_covering_the_run(tmp_path):
    msg = problems_of(tmp_path, SMALL.replace('duration = "2d"', 'duration = "10d"'))
    assert "inputs.site.file: expected times covering the run" in msg


def test_a_valid_scenario_loads(tmp_path):
    path = make_site(tmp_path / "site")
    sc = scenario.load(path)
    assert list(sc.components) == ["throttle", "ctl", "racks"]
    assert sc.components["throttle"].inputs["T_coolant_K"].delayed
    assert sc.run.n_steps == 2880


def test_block_inputs_it_needs_must_be_connected(tmp_path):
    msg = problems_of(tmp_path, SMALL.replace(', setpoint = 318.15 }', ' }'))
    assert "components.ctl.inputs.setpoint: expected a connection (a PI block needs setpoint)" in msg


def test_integer_parameter_must_be_whole_and_ratios_that_divide_must_be_positive(tmp_path, fmu_path):
    text = SMALL + '\n[components.tank]\nfmu = "BufferTank"\nparameters = { n_layers = 10.5 }\n'
    text = text.replace('[kpis]\n', '[kpis]\nair_cooling_COP = 0\n')
    msg = problems_of(tmp_path, text)
    assert "components.tank.parameters.n_layers: expected a whole number (BufferTank's n_layers is an Integer), found 10.5" in msg
    assert "kpis.air_cooling_COP: expected a number > 0, found 0" in msg


@pytest.mark.parametrize("content, expected", [
    ("time_s,P_IT_kW,T_supply_C\n", "expected at least two rows of data, found 0"),
    ("time_s,P_IT_kW,T_supply_C\n0,1,30\nabc,1,30\n", "row 2, column 'time_s': expected seconds, found 'abc'"),
    ("P_IT_kW,time_s,T_supply_C\n1,0,30\n1,0,30\n", "row 2, column 'time_s': times must increase strictly; found 0 after 0"),
])
def test_bad_input_files_name_the_row_and_column(tmp_path, content, expected):
    path = make_site(tmp_path / "site")
    (path.parent / "inputs" / "load.csv").write_text(content)
    with pytest.raises(ScenarioError) as e:
        scenario.load(path)
    assert expected in str(e.value)
