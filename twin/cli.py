"""The `twin` command line. Nothing imports this module; it only wires commands to the library.

Exit codes: 0 success, 1 a failure while running, 2 bad input (a scenario, a file, an argument).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import TwinError


def _cmd_fmus_build(args) -> int:
    from . import fmu_build

    paths = fmu_build.build_all(args.models or None, force=args.force)
    for p in paths:
        print(p.relative_to(Path.cwd()) if p.is_relative_to(Path.cwd()) else p)
    return 0


def _cmd_fmus_list(args) -> int:
    from . import fmu_build
    from .fmu import read_ports

    if args.fmu:
        paths = [Path(p) for p in args.fmu]
    else:
        fmu_build.build_all()
        paths = sorted(fmu_build.FMUS_DIR.glob("*.fmu"))
    for path in paths:
        md, ports = read_ports(path)
        print(f"{path.name}  (FMI {md.fmiVersion}, {md.modelName})")
        if md.description:
            print(f"  {md.description}")
        for causality in ("input", "output", "parameter"):
            group = [p for p in ports.values() if p.causality == causality]
            if not group:
                continue
            print(f"  {causality}s:")
            for p in group:
                bounds = ""
                if p.min is not None or p.max is not None:
                    bounds = f" [{'' if p.min is None else f'{p.min:g}'}..{'' if p.max is None else f'{p.max:g}'}]"
                start = f" = {p.start}" if p.start is not None and causality != "output" else ""
                print(f"    {p.name:28s} {p.type:8s} {(p.unit or '-'):10s}{start}{bounds}  {p.description or ''}")
        print()
    return 0


def _cmd_validate(args) -> int:
    from . import scenario

    sc = scenario.load(args.scenario)
    print(f"{args.scenario}: valid ({len(sc.components)} components, {sc.run.n_steps} steps of {sc.run.step_s} s)")
    return 0


def _cmd_weather(args) -> int:
    from .weather import read_weather

    w = read_weather(args.file)
    out = w.to_inputs_csv(args.out, args.year)
    T = w.T_air_C
    print(f"{w.location} (UTC{w.utc_offset_h:+g} h): {len(T)} hours, air {T.min():.1f} .. {T.max():.1f} C, "
          f"mean {T.mean():.2f} C; wrote {out} for {args.year} (UTC)")
    return 0


def _consumer(text: str):
    from .heat_demand import Consumer

    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise argparse.ArgumentTypeError(f"expected NAME:PROFILE:ANNUAL_MWH[:BUILDING_CLASS], got {text!r}")
    try:
        annual_MWh = float(parts[2])
        cls = int(parts[3]) if len(parts) == 4 else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of MWh (and a whole building class), got {text!r}") from None
    try:
        return Consumer(parts[0], parts[1], annual_MWh * 1e3, cls)
    except TwinError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _cmd_demand(args) -> int:
    from .heat_demand import demand_inputs_csv
    from .weather import read_weather

    w = read_weather(args.weather)
    out = demand_inputs_csv(args.out, w, args.year, args.consumer)
    for c in args.consumer:
        print(f"{c.name}: BDEW {c.profile.upper()}, {c.annual_kWh / 1e3:g} MWh/a")
    print(f"wrote {out} for {args.year} (read it with interpolate = \"previous\": hourly means)")
    return 0


def _default_out(scenario_path: str) -> Path:
    return Path("runs") / Path(scenario_path).stem


def _cmd_run(args) -> int:
    from . import runner
    from .units import parse_duration_s

    every = int(parse_duration_s(args.checkpoint_every)) if args.checkpoint_every else None
    out = Path(args.out) if args.out else _default_out(args.scenario)
    result = runner.run(Path(args.scenario), out, checkpoint_every_s=every, progress=not args.quiet,
                        report=not args.no_report)
    if result.interrupted:
        return 130
    print(f"{out}: {result.steps_done} steps in {result.wall_s:.1f} s wall time")
    return 0


def _cmd_resume(args) -> int:
    from . import runner
    from .units import parse_duration_s

    every = int(parse_duration_s(args.checkpoint_every)) if args.checkpoint_every else None
    result = runner.resume(Path(args.checkpoint), Path(args.out) if args.out else None, checkpoint_every_s=every,
                           progress=not args.quiet, report=not args.no_report)
    if result.interrupted:
        return 130
    print(f"{result.out_dir}: resumed, now at step {result.steps_done} ({result.wall_s:.1f} s wall time)")
    return 0


def _cmd_bench(args) -> int:
    from . import bench

    print("Cost of one FMU step through the adapter (batched set/doStep/get), medians of repeated runs:")
    print(bench.format_fmu_table(bench.bench_fmu_steps(n_steps=args.steps)))
    if args.fmus_only:
        return 0
    if args.cluster:
        from .cluster import bench as cluster_bench

        print("\nCluster: 10,000 jobs on 1,024 GPUs over 30 simulated days, energy queried every 60 s (median of 3):")
        for name in ("fifo", "easy", "thermal"):
            r = cluster_bench.bench_cluster(name)
            print(f"  {name:8s} {r['wall_s']:.2f} s (samples {', '.join('%.2f' % x for x in r['samples_s'])}), "
                  f"{r['events']} events, conservation {r['conservation_rel']:.1e}")
        return 0
    print(f"\n{args.scenario}: the whole horizon, one month, and the floor, each in a fresh process ...")
    r = bench.bench_year(Path(args.scenario))
    print(bench.format_year(r))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twin", description="Digital twin of a GPU data centre selling heat to district heating")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, _, text) in DELEGATED.items():
        sub.add_parser(name, help=text, add_help=False)

    fmus = sub.add_parser("fmus", help="build and list the hydronic FMUs")
    fsub = fmus.add_subparsers(dest="fmus_command", required=True)
    b = fsub.add_parser("build", help="compile models/* into fmus/*.fmu (only what is missing or stale)")
    b.add_argument("models", nargs="*", help="model names (default: all)")
    b.add_argument("--force", action="store_true", help="rebuild even if up to date")
    b.set_defaults(func=_cmd_fmus_build)
    ls = fsub.add_parser("list", help="show each FMU with its ports and units")
    ls.add_argument("fmu", nargs="*", help="FMU files (default: the project's, built first)")
    ls.set_defaults(func=_cmd_fmus_list)

    v = sub.add_parser("validate", help="check a scenario file; list every problem (exit code 2 if any)")
    v.add_argument("scenario")
    v.set_defaults(func=_cmd_validate)

    r = sub.add_parser("run", help="run a scenario into a run folder")
    r.add_argument("scenario")
    r.add_argument("--out", help="run folder (default: runs/<scenario name>)")
    r.add_argument("--checkpoint-every", help="write a checkpoint every so much simulated time, e.g. 7d")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--no-report", action="store_true", help="skip report.html")
    r.set_defaults(func=_cmd_run)

    rs = sub.add_parser("resume", help="continue a run from one of its checkpoints, into a new run folder")
    rs.add_argument("checkpoint")
    rs.add_argument("--out", help="run folder (default: <run>-resumed)")
    rs.add_argument("--checkpoint-every", help="write further checkpoints every so much simulated time")
    rs.add_argument("--quiet", action="store_true")
    rs.add_argument("--no-report", action="store_true")
    rs.set_defaults(func=_cmd_resume)

    we = sub.add_parser("weather", help="a weather year (EnergyPlus .epw, DWD TRY .dat/.csv) as a scenario input file")
    we.add_argument("file")
    we.add_argument("--year", type=int, default=2023, help="calendar year to lay the typical year onto (default 2023)")
    we.add_argument("--out", required=True, help="CSV to write (time in UTC, T_air_C, RH_rel, p_Pa)")
    we.set_defaults(func=_cmd_weather)

    de = sub.add_parser("demand", help="hourly DH heat demand of consumers (BDEW standard load profiles) from a weather year")
    de.add_argument("weather", help="EnergyPlus .epw or DWD TRY .dat/.csv")
    de.add_argument("--consumer", type=_consumer, action="append", required=True,
                    help="NAME:PROFILE:ANNUAL_MWH[:BUILDING_CLASS], e.g. homes:MFH:650 or school:GHD:330 (repeatable)")
    de.add_argument("--year", type=int, default=2023, help="calendar year (default 2023)")
    de.add_argument("--out", required=True, help="CSV to write (time in UTC, Q_<name>_kW)")
    de.set_defaults(func=_cmd_demand)

    bn = sub.add_parser("bench", help="benchmarks: FMU step cost; the reference year: wall time, speed, memory, ratio to the floor")
    bn.add_argument("--steps", type=int, default=2000, help="FMU steps per timed repeat (default 2000)")
    bn.add_argument("--scenario", default=str(Path(__file__).resolve().parent.parent / "scenarios" / "reference_year.toml"),
                    help="scenario for the engine benchmark (default: the reference year)")
    bn.add_argument("--fmus-only", action="store_true", help="only the FMU step costs")
    bn.add_argument("--cluster", action="store_true", help="the FMU step costs and the cluster simulator's benchmark")
    bn.set_defaults(func=_cmd_bench)
    return parser


# Commands whose modules parse their own arguments (they are also usable on their own).
DELEGATED = {
    "record": ("twin.nvml_recorder", "main_record", "record NVML power traces of this machine's GPUs"),
    "fit-power": ("twin.cluster.power_fit", "main_fit_power",
                  "fit a GPU power model to a trace (NVML Parquet, nvidia-smi CSV, DCGM); writes the model and a plot"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in DELEGATED:
        import importlib

        module, function, _ = DELEGATED[argv[0]]
        return getattr(importlib.import_module(module), function)(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except TwinError as e:
        print(f"twin: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("twin: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
