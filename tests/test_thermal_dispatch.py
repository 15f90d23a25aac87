"""Thermal dispatch against FIFO on a site with fixed inputs: the cluster drives the racks, the racks' heat goes
straight into the DH return through a plate exchanger, a backup boiler tops the supply up, a dry cooler takes
what DH cannot. Heat demand and price alternate every 12 h: hours 0-12 of each day are cold and cheap (350 kW
demand, 40 EUR/MWh), hours 12-24 mild and dear (30 kW, 160 EUR/MWh). Twenty deferrable 8-GPU jobs of 6 h are
submitted at 12 h with deadlines at 48 h. FIFO runs them at once, in the mild and dear half-day; thermal
dispatch holds them to the next cold, cheap half-day, where their heat replaces boiler heat."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from twin import runner

SITE = """
[run]
name = "dispatch-{scheduler}"
start = 2023-01-01T00:00:00
duration = "60h"
step_s = 60

[inputs.site]
file = "inputs.csv"
interpolate = "previous"

[cluster]
racks = 4
nodes_per_rack = 8
gpus_per_node = 8
P_idle_W = 60
P_max_W = 700
f_liquid = 0.75
jobs = "jobs.csv"
scheduler = "{scheduler}"
heat_signal = "inputs.site.Q_demand_W"
price_signal = "inputs.site.price_EUR_MWh"
w_heat = 1.0
w_price = 1.0
max_defer_s = 86400
inputs = {{ T_coolant_K = "drycooler.T_out_K" }}

[components.rack_speed]
block = "FlowForHeat"
parameters = {{ dT_min_K = 10.0, mdot_min_kg_s = 0.3 }}
inputs = {{ Q_W = "cluster.Q_liquid_W", T_hot_K = 318.15, T_cold_K = 308.15 }}

[components.racks]
fmu = "RackLoop"
parameters = {{ f_liquid = 0.75, T_start_K = 308.15 }}
inputs = {{ P_IT_W = "cluster.P_IT_W", mdot_kg_s = "rack_speed.mdot_kg_s", T_in_K = {{ from = "drycooler.T_out_K", initial = 308.15 }} }}

[components.dh_flow]
block = "Linear"
parameters = {{ k1 = 1.0, y_min = 0.5, y_max = 10.0 }}
inputs = {{ u1 = {{ from = "district.mdot_demand_kg_s", initial = 1.0 }} }}

[components.hx]
fmu = "PlateHeatExchanger"
parameters = {{ UA_nom_W_K = 40000, mdot_hot_nom_kg_s = 3.0, mdot_cold_nom_kg_s = 3.0 }}

[components.hx.inputs]
T_hot_in_K = "racks.T_out_K"
mdot_hot_kg_s = "rack_speed.mdot_kg_s"
T_cold_in_K = {{ from = "district.T_return_K", initial = 303.15 }}
mdot_cold_kg_s = "dh_flow.y"

[components.drycooler]
fmu = "DryCooler"
parameters = {{ mode = 1 }}
inputs = {{ T_in_K = "hx.T_hot_out_K", mdot_kg_s = "rack_speed.mdot_kg_s", T_air_K = 278.15, T_set_K = 308.15 }}

[components.district]
fmu = "DistrictLoop"
parameters = {{ n_consumers = 1, Q_boiler_max_W = 800000, L_supply_m = 200, L_return_m = 200 }}

[components.district.inputs]
mdot_plant_kg_s = "dh_flow.y"
T_plant_supply_K = "hx.T_cold_out_K"
T_outdoor_K = 268.15
T_ground_K = 280.15
"heat_demand_W[1]" = "inputs.site.Q_demand_W"

[kpis]
E_IT_J = "cluster.E_IT_J"
E_air_heat_J = "cluster.E_air_J"
E_reused_J = "hx.E_J"
E_heat_to_dh_J = "hx.E_J"
E_boiler_J = "district.E_boiler_J"
E_unmet_J = "district.E_unmet_J"
E_drycooler_J = "drycooler.E_Q_J"
price_signal = "inputs.site.price_EUR_MWh"
"""


def make_site(folder, scheduler: str):
    folder.mkdir(parents=True, exist_ok=True)
    hours = np.arange(0, 61)
    cold = (hours % 24) < 12
    pd.DataFrame({"time_s": hours * 3600.0, "Q_demand_kW": np.where(cold, 350.0, 30.0),
                  "price_EUR_MWh": np.where(cold, 40.0, 160.0)}).to_csv(folder / "inputs.csv", index=False)
    jobs = [{"job_id": f"ft-{i:02d}", "submit_time_s": 12 * 3600, "duration_s": 6 * 3600, "n_gpus": 8,
             "workload_class": "fine_tuning", "preemptible": "false", "deadline_s": 48 * 3600} for i in range(20)]
    pd.DataFrame(jobs).to_csv(folder / "jobs.csv", index=False)
    path = folder / "site.toml"
    path.write_text(SITE.format(scheduler=scheduler))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, fmu_path):
    out = {}
    for scheduler in ("fifo", "thermal"):
        folder = tmp_path_factory.mktemp(scheduler)
        runner.run(make_site(folder / "site", scheduler), folder / "run", progress=False, report=False)
        out[scheduler] = folder / "run"
    return out


def test_thermal_dispatch_lowers_boiler_heat_and_cost_without_missing_a_deadline(runs):
    k = {s: json.loads((p / "kpis.json").read_text())["total"] for s, p in runs.items()}
    sl = {s: json.loads((p / "cluster_service.json").read_text()) for s, p in runs.items()}
    assert sl["fifo"]["deadline_misses"] == 0 and sl["thermal"]["deadline_misses"] == 0
    assert json.loads((runs["thermal"] / "kpis.json").read_text())["jobs"] == sl["thermal"]
    assert sl["thermal"]["wait_p50_s"] == 12 * 3600 and sl["fifo"]["wait_p50_s"] == 0
    # the same work: IT energy within 1 % (idle GPUs draw a little either way)
    assert k["thermal"]["E_IT_MWh"] == pytest.approx(k["fifo"]["E_IT_MWh"], rel=0.01)
    assert k["thermal"]["boiler_heat_MWh"] < k["fifo"]["boiler_heat_MWh"] - EXPECTED_BOILER_SAVING_MWH
    assert k["thermal"]["electricity_cost_EUR"] < (1 - EXPECTED_COST_SAVING) * k["fifo"]["electricity_cost_EUR"]


# What to expect, by hand: the jobs draw 160 GPUs x ~525 W x 6 h = 0.50 MWh. FIFO runs them in the dear
# half-day (160 EUR/MWh), thermal dispatch in the cheap one (40): 0.50 MWh x 120 EUR/MWh = 60 EUR of a FIFO bill
# of ~160 EUR (the idle GPUs draw the rest, the same in both): about 37 % less. In the mild half-day DH takes
# 30 kW; the rest of the jobs' heat (FIFO) goes to the dry cooler, while in the cold half-day all of it replaces
# boiler heat: the saving is FIFO's dry-cooler heat, ~0.25 MWh. Measured (this site, 60 s steps): boiler 12.711
# -> 12.450 MWh (0.261 saved), cost 162.1 -> 105.1 EUR (35 % less), no deadline missed.
EXPECTED_BOILER_SAVING_MWH = 0.2
EXPECTED_COST_SAVING = 0.30


def test_a_run_with_a_cluster_resumes_bit_identically(tmp_path, fmu_path):
    site = make_site(tmp_path / "site", "thermal")
    runner.run(site, tmp_path / "full", progress=False, report=False, checkpoint_every_s=20 * 3600)
    ckpt = sorted((tmp_path / "full" / "checkpoints").glob("*.ckpt"))[0]   # at 20 h: jobs held, in the queue
    runner.resume(ckpt, tmp_path / "resumed", progress=False, report=False)
    a = pd.read_parquet(tmp_path / "full" / "timeseries.parquet")
    b = pd.read_parquet(tmp_path / "resumed" / "timeseries.parquet")
    assert np.array_equal(a.to_numpy(), b.to_numpy())
    ea = pd.read_parquet(tmp_path / "full" / "events.parquet")
    eb = pd.read_parquet(tmp_path / "resumed" / "events.parquet")
    assert len(ea) > 40 and ea[ea.time_s > 20 * 3600].reset_index(drop=True).equals(
        eb[eb.time_s > 20 * 3600].reset_index(drop=True))


def test_cluster_table_problems_are_listed(tmp_path):
    from twin import scenario
    from twin.errors import ScenarioError

    site = make_site(tmp_path / "site", "thermal")
    text = site.read_text().replace('scheduler = "thermal"', 'scheduler = "thermol"').replace("racks = 4", "racks = 0")
    text = text.replace('jobs = "jobs.csv"', 'jobs = "nojobs.csv"')
    site.write_text(text)
    with pytest.raises(ScenarioError) as e:
        scenario.load(site)
    msg = str(e.value)
    assert "cluster.scheduler: expected one of fifo, easy, thermal, found 'thermol' (did you mean 'thermal'?)" in msg
    assert "cluster.racks: expected a whole number >= 1, found 0" in msg
    assert "cluster.jobs: expected an existing file" in msg


def test_a_fitted_power_model_file_drives_its_class(tmp_path, fmu_path):
    """A model file as `twin fit-power` writes it, named for fine-tuning in [cluster] power_models: the jobs draw
    its power (higher than the stand-in's), the energy stays conserved and the plant's balance closes."""
    from twin.cluster.power import MODEL_FORMAT, MODEL_VERSION, Ar1Noise, TrainingPower, model_to_dict

    site = make_site(tmp_path / "site", "fifo")
    model = TrainingPower(60.0, 690.0, 420.0, 0.8, 2.5, 150.0, 1800.0, 30.0, Ar1Noise(10.0, 1.0, 1.0))
    (site.parent / "ft.json").write_text(json.dumps({"format": MODEL_FORMAT, "version": MODEL_VERSION,
                                                     "workload_class": "fine_tuning", "model": model_to_dict(model)}))
    text = site.read_text().replace('scheduler = "fifo"', 'scheduler = "fifo"\npower_models = { fine_tuning = "ft.json" }')
    site.write_text(text)
    runner.run(site, tmp_path / "fitted", progress=False, report=False)
    runner.run(make_site(tmp_path / "site2", "fifo"), tmp_path / "standin", progress=False, report=False)
    fitted = json.loads((tmp_path / "fitted" / "kpis.json").read_text())["total"]
    standin = json.loads((tmp_path / "standin" / "kpis.json").read_text())["total"]
    # the jobs: 160 GPUs x 6 h; fitted ~ (0.8 x 690 + 0.2 x 420) W = 636 W a GPU, the stand-in 525 W: +0.107 MWh
    assert fitted["E_IT_MWh"] - standin["E_IT_MWh"] == pytest.approx(0.160 * 6 * (0.636 - 0.525), rel=0.05)


def test_a_model_fitted_on_a_real_h200_trace_drives_its_class(tmp_path, fmu_path):
    """From a real NVML trace to the plant: `twin fit-power` on the H200 training trace (tests/data/gpu_h200),
    its model file named in [cluster] power_models, the run's IT energy follows the fitted levels."""
    from pathlib import Path

    from twin.cluster.power_fit import fit_power

    site = make_site(tmp_path / "site", "fifo")
    trace = Path(__file__).parent / "data" / "gpu_h200" / "train.parquet"
    m = fit_power(trace, "fine_tuning", site.parent / "h200.json", site.parent / "h200.png").model
    site.write_text(site.read_text().replace('scheduler = "fifo"',
                                             'scheduler = "fifo"\npower_models = { fine_tuning = "h200.json" }'))
    runner.run(site, tmp_path / "fitted", progress=False, report=False)
    runner.run(make_site(tmp_path / "site2", "fifo"), tmp_path / "standin", progress=False, report=False)
    fitted = json.loads((tmp_path / "fitted" / "kpis.json").read_text())["total"]
    standin = json.loads((tmp_path / "standin" / "kpis.json").read_text())["total"]
    # the jobs (160 GPUs x 6 h, no checkpoints asked for: no dips) draw the fitted wave's mean, ~578 W a GPU,
    # against the stand-in's 525 W
    P_fitted_W = m.duty * m.P_high_W + (1.0 - m.duty) * m.P_low_W
    assert 560.0 < P_fitted_W < 600.0
    assert fitted["E_IT_MWh"] - standin["E_IT_MWh"] == pytest.approx(0.160 * 6 * (P_fitted_W / 1e3 - 0.525), rel=0.05)


def test_a_run_with_fitted_models_resumes_bit_identically_mid_job(tmp_path, fmu_path):
    """Fitted models integrate each running job one plant step at a time (its energy so far is part of the
    cluster's state): a checkpoint while jobs run resumes bit-identically."""
    from pathlib import Path

    site = make_site(tmp_path / "site", "thermal")
    (site.parent / "h200.json").write_bytes(
        (Path(__file__).parent.parent / "scenarios" / "reference_cluster" / "power" / "h200_training.power.json")
        .read_bytes())
    site.write_text(site.read_text().replace('scheduler = "thermal"',
                                             'scheduler = "thermal"\npower_models = { fine_tuning = "h200.json" }'))
    runner.run(site, tmp_path / "full", progress=False, report=False, checkpoint_every_s=26 * 3600)
    ckpt = sorted((tmp_path / "full" / "checkpoints").glob("*.ckpt"))[0]   # at 26 h
    ev = pd.read_parquet(tmp_path / "full" / "events.parquet")
    started = ev[(ev.kind == "start") & (ev.time_s < 26 * 3600)].source
    ended_after = ev[(ev.kind == "end") & (ev.time_s > 26 * 3600)].source
    assert len(set(started) & set(ended_after)) > 0                         # jobs run across the checkpoint
    runner.resume(ckpt, tmp_path / "resumed", progress=False, report=False)
    a = pd.read_parquet(tmp_path / "full" / "timeseries.parquet")
    b = pd.read_parquet(tmp_path / "resumed" / "timeseries.parquet")
    assert np.array_equal(a.to_numpy(), b.to_numpy())
