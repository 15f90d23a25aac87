"""The GPU cluster: jobs, traces, workload generator, power models, schedulers."""
