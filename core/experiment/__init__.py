"""Running experiments: data, the training loop, run directories, plots and terminal output.

`runner.run_experiment` is the entry point; `execute` runs one run (train or solve) with the
pieces `assemble` builds from its resolved config, `train` is the training loop, `rundir` what a
run leaves on disk, `figures` draws, `run_plots` reads a run directory to draw it, and
`reporting`/`inspection` are what the CLI prints.
"""
