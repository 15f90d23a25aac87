"""KPIs from a run folder: definitions (PUE, ERF, ERE), per-step cost and CO2, months labelled by step start."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from twin import kpis


def make_run(folder, start="2023-01-31T00:00:00"):
    folder.mkdir()
    t = np.arange(0, 49) * 3600.0                      # 48 hourly steps: 24 in January, 24 in February
    it = np.full(t.size, 100e3)                        # 100 kW of IT
    df = pd.DataFrame({"time_s": t, "it.E_J": it * t, "pumps.E_J": 0.02 * it * t, "air.E_J": 0.25 * it * t,
                       "hp.E_evap_J": 0.6 * it * t, "hp.E_el_J": 0.1 * it * t, "hp.E_cond_J": 0.7 * it * t,
                       "price": np.where(t <= 24 * 3600, 100.0, 50.0), "carbon": np.full(t.size, 400.0)})
    df.to_parquet(folder / "timeseries.parquet")
    (folder / "run.json").write_text(json.dumps({"start": start}))
    (folder / "scenario.toml").write_text('''
[kpis]
E_IT_J = "it.E_J"
E_cooling_J = ["pumps.E_J"]
E_air_heat_J = "air.E_J"
E_reused_J = "hp.E_evap_J"
E_hp_el_J = "hp.E_el_J"
E_heat_to_dh_J = "hp.E_cond_J"
price_signal = "price"
carbon_signal = "carbon"
air_cooling_COP = 5.0
''')
    return folder


def test_definitions_and_months(tmp_path):
    k = kpis.compute(make_run(tmp_path / "run"))
    assert list(k["monthly"]) == ["2023-01", "2023-02"]
    jan, total = k["monthly"]["2023-01"], k["total"]
    assert jan["E_IT_MWh"] == pytest.approx(2.4) and k["monthly"]["2023-02"]["E_IT_MWh"] == pytest.approx(2.4)
    E_DC = 1.0 + 0.02 + 0.25 / 5.0                     # per unit of IT energy
    assert total["PUE"] == pytest.approx(E_DC)
    assert total["ERF"] == pytest.approx(0.6 / E_DC)
    assert total["ERE"] == pytest.approx(E_DC - 0.6)
    assert total["heat_recovery_ratio"] == pytest.approx(0.6)
    assert total["heat_pump_SCOP"] == pytest.approx(7.0)
    # cost: grid energy (E_DC + heat pump) of each step at that step's price: 100 EUR/MWh in January, 50 in February
    grid_MWh_per_day = 2.4 * (E_DC + 0.1)
    assert jan["electricity_cost_EUR"] == pytest.approx(grid_MWh_per_day * 100.0)
    assert total["electricity_cost_EUR"] == pytest.approx(grid_MWh_per_day * 150.0)
    assert total["CO2_grid_t"] == pytest.approx(2 * grid_MWh_per_day * 400.0 / 1000.0)
