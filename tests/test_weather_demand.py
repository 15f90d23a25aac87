"""Weather years (EPW, DWD TRY) and the BDEW heat demand: read right, laid onto UTC right, golden against demandlib's
reference year, bad files rejected naming file, line and field."""
import numpy as np
import pandas as pd
import pytest

from twin.cli import main
from twin.errors import TraceError, TwinError
from twin.heat_demand import Consumer, bdew_profile_kW, demand_inputs_csv
from twin.inputs import read_series
from twin.weather import read_dwd_try, read_epw, read_weather

GOLDEN_REL_TOL = 1e-3        # the reference file's stated criterion (heat_demand_profiles/SOURCE.txt)


@pytest.fixture(scope="module")
def paths(shared_data):
    return {"chicago": shared_data / "weather_tmy3_chicago" / "USA_IL_Chicago-OHare.Intl.AP.725300_TMY3.epw",
            "potsdam": shared_data / "weather_dwd_try2010" / "TRY2010_04_Potsdam.csv",
            "fichtelberg": shared_data / "weather_dwd_try2010" / "TRY2010_11_Fichtelberg.csv",
            "potsdam_header": shared_data / "weather_dwd_try2010" / "TRY2010_04_Potsdam_header.txt",
            "golden": shared_data / "heat_demand_profiles" / "bdew_reference_hourly_Potsdam_TRY2010.csv"}


def test_epw(paths):
    w = read_epw(paths["chicago"])
    assert w.location == "Chicago Ohare Intl Ap, IL, USA" and w.utc_offset_h == -6.0
    assert len(w.frame) == 8760
    assert w.T_air_C.min() == -22.8 and w.T_air_C.max() == 35.0
    assert w.T_air_C.iloc[0] == -12.2 and w.frame["T_dew_C"].iloc[0] == -16.1      # the first data row
    assert w.frame["p_Pa"].iloc[0] == 99500.0 and w.frame["RH_pct"].iloc[0] == 73.0


def test_dwd_try_as_stated_in_its_source(paths):
    for name, (t_min, t_mean) in {"potsdam": (-13.4, 9.5), "fichtelberg": (-16.6, 3.8)}.items():
        w = read_weather(paths[name])
        assert len(w.frame) == 8760 and w.utc_offset_h == 1.0
        assert w.T_air_C.min() == t_min and round(w.T_air_C.mean(), 1) == t_mean


def test_dwd_try_dat_reads_as_its_csv(paths, tmp_path):
    csv = pd.read_csv(paths["potsdam"])
    header = paths["potsdam_header"].read_text(encoding="latin-1").rstrip("\n").split("\n")
    cols = ["region", "IS", "month", "day", "hour_1to24", "cloud_cover_octas", "wind_dir_deg", "wind_speed_m_s",
            "T_air_degC", "p_hPa", "x_g_per_kg", "RH_pct", "weather_code", "B_direct_horiz_W_m2",
            "D_diffuse_horiz_W_m2", "IK_flag", "A_atm_longwave_W_m2", "E_terr_longwave_W_m2", "IL_flag"]
    csv["IS"] = 1
    rows = [" ".join(str(v) for v in r) for r in csv[cols].itertuples(index=False)]
    if header[-1].strip() != "***":
        header.append("***")
    dat = tmp_path / "TRY2010_04_Jahr.dat"
    dat.write_text("\n".join(header + rows) + "\n", encoding="latin-1")
    a, b = read_dwd_try(dat), read_dwd_try(paths["potsdam"])
    pd.testing.assert_frame_equal(a.frame, b.frame)


def test_laid_onto_utc_as_the_reference_scenario(paths, tmp_path):
    # scenarios/reference_year/inputs/weather.csv holds Fichtelberg's TRY laid onto 2023 (the first reading, hour 1
    # CET, at 2023-01-01 00:00 UTC): the reader and the layout give the same temperatures at the same times
    out = read_weather(paths["fichtelberg"]).to_inputs_csv(tmp_path / "w.csv", 2023)
    mine = pd.read_csv(out).set_index("time")["T_air_C"]
    ref = pd.read_csv(__import__("pathlib").Path(__file__).parent.parent / "scenarios" / "reference_year" / "inputs"
                      / "weather.csv").set_index("time")["T_air_C"]
    common = ref.index.intersection(mine.index)
    assert len(common) == len(ref) == 8761
    assert np.array_equal(mine[common].to_numpy(), ref[common].to_numpy())


@pytest.mark.parametrize("place", ["chicago", "fichtelberg"])
def test_the_utc_year_is_covered_and_readable(paths, tmp_path, place):
    out = read_weather(paths[place]).to_inputs_csv(tmp_path / "w.csv", 2023)
    s = read_series("weather", out, pd.Timestamp("2023-01-01"))
    assert s.t_s[0] <= 0.0 and s.t_s[-1] >= 365 * 86400.0
    T = s.columns["T_air_K"]
    assert 240.0 < T.min() and T.max() < 315.0 and s.columns["RH_rel"].max() <= 1.0


def test_bdew_profiles_match_demandlibs_reference_year(paths):
    # the golden file: demandlib 0.2.2 on Potsdam's TRY 2010, year 2010, no holidays, calm, hot water included;
    # its values are rounded to 0.1 W
    golden = pd.read_csv(paths["golden"])
    w = read_weather(paths["potsdam"]).on_year(2010)
    T = pd.Series(w["T_air_C"].to_numpy(), index=w.index - pd.Timedelta(hours=1))
    assert np.array_equal(T.to_numpy(), golden["T_air_degC"].to_numpy())
    for consumer, col in [(Consumer("efh", "EFH", 25_000.0), "EFH_kW_annual25000kWh"),
                          (Consumer("mfh", "MFH", 80_000.0), "MFH_kW_annual80000kWh"),
                          (Consumer("ghd", "GHD", 140_000.0), "GHD_kW_annual140000kWh")]:
        mine, ref = bdew_profile_kW(consumer, T).to_numpy(), golden[col].to_numpy()
        assert np.max(np.abs(mine / ref - 1.0)) <= GOLDEN_REL_TOL            # measured: 8.1e-4 at most (EFH)
        assert abs(mine.sum() - ref.sum()) <= 0.5e-4 * ref.size               # the sums agree to the rounding
        assert mine.sum() == pytest.approx(consumer.annual_kWh, rel=1e-4)


def test_demand_file_holds_the_year_and_reads_as_hourly_means(paths, tmp_path):
    w = read_weather(paths["potsdam"])
    consumers = [Consumer("homes", "MFH", 650e3), Consumer("school", "GHD", 330e3)]
    out = demand_inputs_csv(tmp_path / "d.csv", w, 2023, consumers)
    s = read_series("demand", out, pd.Timestamp("2023-01-01"), interpolate="previous")
    assert s.t_s[0] <= 0.0 and s.t_s[-1] >= 365 * 86400.0
    year = np.array([0.0, 365 * 86400.0])
    for c in consumers:
        E_J = np.diff(s.cumulative(f"Q_{c.name}_W", year))[0]
        # the UTC year is the local year shifted by an hour, repeated cyclically: the same total to an hour's demand
        assert E_J / 3.6e6 == pytest.approx(c.annual_kWh, rel=2e-3)


@pytest.mark.parametrize("lines, where", [
    (["LOCATION,X,,,,,0,0,1.0,0"] + ["H"] * 7 + ["2001,1,1,1,0,x,99.9,0,50,100000,0,0,0,0,0,0,0,0,0,0,0,0"],
     "line 9, field 7 (T_air_C): the EPW missing-value code"),
    (["LOCATION,X,,,,,0,0,1.0,0"] + ["H"] * 7 + ["2001,1,1,1,0,x,1.0,0,50"], "line 9, field -: expected at least 22"),
    (["LOCATION,X,,,,,0,0,1.0,0"] + ["H"] * 7 + ["2001,1,1,2,0,x,1,0,50,100000" + ",0" * 12,
                                              "2001,1,1,1,0,x,1,0,50,100000" + ",0" * 12], "line 10, field month/day/hour"),
    (["LOCATION,X,,,,,0,0,1.0,0"] + ["H"] * 7 + ["2001,1,1,1,0,x,1,0,50,100000" + ",0" * 12,
                                              "2001,1,1,4,0,x,1,0,50,100000" + ",0" * 12],
     "line 10, field month/day/hour: 2 hour(s) missing (1/1 hour 4 after 1/1 hour 1)"),
    (["LOCATION,X,,,,,0,0,1.0,0"] + ["H"] * 7 + ["2001,2,30,1,0,x,1,0,50,100000" + ",0" * 12],
     "line 9, field month/day: no such date 2/30"),
    (["LOCATION,X,,,,,0,0,1.0,0"] + ["H"] * 7 + ["2001,1,1,1,0,x,abc,0,50,100000" + ",0" * 12],
     "line 9, field 7 (T_air_C): expected a number, found 'abc'"),
    (["Not an EPW"], "line 1, field 1: expected an EPW header"),
])
def test_bad_epw(tmp_path, lines, where):
    p = tmp_path / "bad.epw"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceError) as e:
        read_weather(p)
    assert str(p) in str(e.value) and where in str(e.value)


def test_bad_dwd_files(tmp_path):
    dat = tmp_path / "try.dat"
    dat.write_text("header without the end marker\n4 1 1 1 1 7 230 5.7 -2.6 1005.3 2.2 93 70 0 0 1 251 -285 9\n")
    with pytest.raises(TraceError, match=r"try\.dat: line -, field -: expected the DWD TRY header to end"):
        read_weather(dat)
    dat.write_text("***\n4 1 1 1 1 7 230 5.7 -2.6 1005.3\n")
    with pytest.raises(TraceError, match=r"line 2, field -: expected 19 fields"):
        read_weather(dat)
    dat.write_text("***\n4 1 1 1 1 7 230 5.7 -99.0 1005.3 2.2 93 70 0 0 1 251 -285 9\n")
    with pytest.raises(TraceError, match=r"line 2, field T_air: expected -90..60 C, found -99"):
        read_weather(dat)
    csv = tmp_path / "try.csv"
    csv.write_text("month,day,hour_1to24,T_air_degC\n1,1,1,0.5\n")
    with pytest.raises(TraceError, match=r"try\.csv: line 1, field p_hPa: missing column"):
        read_weather(csv)
    txt = tmp_path / "w.txt"
    txt.write_text("x\n")
    with pytest.raises(TraceError, match="expected an EnergyPlus .epw or a DWD TRY"):
        read_weather(txt)


def test_a_typical_year_must_fit_the_calendar(paths):
    w = read_weather(paths["potsdam"])
    with pytest.raises(TraceError, match="8760 hours cannot be laid onto 2024, which has 8784"):
        w.on_year(2024)


@pytest.mark.parametrize("kwargs, match", [
    (dict(profile="XYZ"), "not a BDEW type"),
    (dict(profile="MFH", building_class=12), "must be 1..11"),
    (dict(profile="GHD", building_class=3), "must be 0"),
    (dict(profile="EFH", annual_kWh=-1.0), "annual_kWh must be a number > 0"),
])
def test_bad_consumers(kwargs, match):
    args = dict(name="c", profile="EFH", annual_kWh=1e4) | kwargs
    with pytest.raises(TwinError, match=match):
        Consumer(**args)


def test_command_line(paths, tmp_path, capsys):
    out = tmp_path / "d.csv"
    assert main(["demand", str(paths["chicago"]), "--consumer", "homes:MFH:650", "--consumer", "pool:GBH:420",
                 "--out", str(out)]) == 0
    d = pd.read_csv(out)
    assert list(d.columns) == ["time", "Q_homes_kW", "Q_pool_kW"]
    # Chicago is colder than the BDEW reference climate, but the profile is scaled to the annual demand
    assert d["Q_homes_kW"].iloc[:8760].sum() == pytest.approx(650e3, rel=5e-3)
    assert main(["weather", str(paths["chicago"]), "--out", str(tmp_path / "w.csv")]) == 0
    assert "UTC-6 h" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["demand", str(paths["chicago"]), "--consumer", "homes:MFH", "--out", str(out)])


def test_a_dwd_csv_error_names_the_files_own_column(tmp_path):
    csv = tmp_path / "try.csv"
    csv.write_text("month,day,hour_1to24,T_air_degC,p_hPa,RH_pct\n1,1,1,warm,1000,80\n")
    with pytest.raises(TraceError, match=r"try\.csv: line 2, field T_air_degC: expected a number, found 'warm'"):
        read_weather(csv)
