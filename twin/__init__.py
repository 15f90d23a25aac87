"""twin: a digital twin of a small GPU data centre that sells its waste heat to district heating.

The command line is ``twin`` (twin/cli.py); the pieces: FMU adapter (fmu.py) and build (fmu_build.py), scenarios
(scenario.py), the site and engine (site.py, engine.py, fastloop.py), outputs and KPIs (output.py, kpis.py,
report.py), the GPU cluster (cluster/), the NVML recorder (nvml_recorder.py).
"""

__version__ = "0.1.0"
