"""The `nnrun` command. Commands stay thin: parse, call the library, print.

`nnrun FILE.toml` runs an experiment; `plugins`, `check`, `resume`, `show`, `compare` and
`predict` sit beside it.
Heavy imports (torch, the plugins) happen inside the commands, so `nnrun --help` stays fast.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

import nnrun
from nnrun.errors import NnrunError

EXIT_BAD_INPUT, EXIT_RUN_FAILED, EXIT_INTERRUPTED = 2, 1, 130


NO_PLUGINS_FLAG = "--no-plugins"


def _no_plugins(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """Set through the environment, so that the `--jobs` workers load the same plugins."""
    if value:
        from nnrun.loading import NO_PLUGINS

        os.environ[NO_PLUGINS] = "1"


NO_PLUGINS_OPTION: dict[str, Any] = {
    "is_flag": True,
    "expose_value": False,
    "callback": _no_plugins,
    "help": "Load nnrun's built-ins only, no third-party plugin (NNRUN_NO_PLUGINS=1).",
}


class DefaultToRun(click.Group):
    """`nnrun FILE ...` means `nnrun run FILE ...`; subcommands are matched first. Every command
    takes `--no-plugins` too, before or after its name."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = next((i for i, arg in enumerate(args) if arg != NO_PLUGINS_FLAG), len(args))
        if (
            first < len(args)
            and args[first] not in self.commands
            and args[first]
            not in (
                "--help",
                "-h",
                "--version",
            )
        ):
            args = [*args[:first], "run", *args[first:]]
        return super().parse_args(ctx, args)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        cmd.params.append(click.Option([NO_PLUGINS_FLAG], **NO_PLUGINS_OPTION))
        super().add_command(cmd, name)


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Bad input is one paragraph on stderr and exit status 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except Exception as error:
            from nnrun.experiment.reporting import printable

            if _interrupted(error):
                click.echo(printable(str(error)), err=True)
                sys.exit(EXIT_INTERRUPTED)
            if isinstance(error, NnrunError):  # it may quote the user's text: no raw escapes
                click.echo(f"Error: {printable(str(error))}", err=True)
                sys.exit(EXIT_BAD_INPUT)
            raise

    return wrapper


def _interrupted(error: BaseException) -> bool:
    """Whether `error` is the runner's `Interrupted`, without importing the runner (and torch
    with it) for commands that never run anything: if it is not imported, it raised nothing."""
    runner = sys.modules.get("nnrun.experiment.runner")
    return runner is not None and isinstance(error, runner.Interrupted)


@click.group(cls=DefaultToRun, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(nnrun.__version__, prog_name="nnrun")
@click.option(NO_PLUGINS_FLAG, **NO_PLUGINS_OPTION)
def main() -> None:
    """Train small hand-written neural networks and run gradient-descent solvers from TOML files.

    \b
    nnrun experiment.toml           run an experiment (same as `nnrun run experiment.toml`)
    nnrun check experiment.toml     validate it and print the resolved runs
    nnrun plugins                   list every component and where it comes from
    nnrun verify DIST_OR_NAME       run the conformance kit on installed components
    nnrun new-plugin NAME --kind K  write a ready plugin package
    """
    show_plugin_warnings_plainly()


def show_plugin_warnings_plainly() -> None:
    """A broken plugin is reported in one line on stderr, not as a warning with a source location."""
    import warnings

    from nnrun.errors import PluginLoadWarning

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, PluginLoadWarning):
            from nnrun.experiment.reporting import printable

            click.echo(f"warning: {printable(str(message))}", err=True)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


overrides_option = click.option(
    "-o",
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a dotted key with a TOML value, e.g. -o optimizer.lr=0.01 (repeatable).",
)
output_options = [
    click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1),
        default=None,
        help="Runs in parallel worker processes (the local executor's [executor] jobs) [default: 1].",
    ),
    click.option(
        "--executor",
        metavar="NAME",
        help="Where the runs execute: local, ray, submitit or a plugin's ([executor] name) "
        "[default: local].",
    ),
    click.option("-q", "--quiet", is_flag=True, help="No progress or per-epoch lines."),
    click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print the summary as JSON on stdout instead of the table.",
    ),
    click.option(
        "--runs",
        "every_run",
        is_flag=True,
        help="One row per run, also when configurations repeat over seeds (one row per group).",
    ),
]


nproc_option = click.option(
    "--nproc",
    type=click.IntRange(min=1),
    help="Data-parallel training on N processes of this node (torchrun's agent; README, "
    "Data-parallel training).",
)


def with_output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(output_options):
        command = option(command)
    return command


def _run_dir_path(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """An empty path would mean the working directory: never what was meant."""
    if value is None:
        return None
    if not value.strip():
        raise click.BadParameter("is empty; give a run directory's path")
    return Path(value)


@main.command("run")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(),
    callback=_run_dir_path,
    help="Run directory [default: runs/<name>/<timestamp>].",
)
@overrides_option
@click.option("--resume", is_flag=True, help="Continue the unfinished runs in --out.")
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite a run directory nnrun wrote in --out (only nnrun's files; refused if it holds others).",
)
@with_output_options
@nproc_option
@reports_errors
def run_command(
    file: Path,
    out: Path | None,
    overrides: tuple[str, ...],
    resume: bool,
    force: bool,
    jobs: int | None,
    executor: str | None,
    quiet: bool,
    as_json: bool,
    every_run: bool,
    nproc: int | None,
) -> None:
    """Run the experiment in FILE."""
    seed = None
    if resume:
        if out is None:
            raise click.UsageError("--resume needs --out DIR (the run directory to continue)")
        seed = _saved_seed(out)
    _run(
        file,
        overrides,
        seed,
        out,
        jobs=jobs,
        executor=executor,
        resume=resume,
        force=force,
        quiet=quiet,
        as_json=as_json,
        every_run=every_run,
        nproc=nproc,
        rank_args=[
            str(file),
            *(["--out", str(out)] if out is not None else []),
            *[arg for text in overrides for arg in ("-o", text)],
            *[flag for flag, given in [("--resume", resume), ("--force", force)] if given],
            *_output_flags(quiet, as_json, every_run),
        ],
    )


def _output_flags(quiet: bool, as_json: bool, every_run: bool) -> list[str]:
    """The output options given, as each rank's command line repeats them."""
    return [f for f, given in [("-q", quiet), ("--json", as_json), ("--runs", every_run)] if given]


def _saved_seed(run_dir: Path) -> int | None:
    """The seed a run directory was started with: a file without a seed resumes with it."""
    from nnrun.experiment.rundir import RunDirectory

    seed = RunDirectory(run_dir).read_config()["experiment"].get("seed")
    return seed if isinstance(seed, int) else None


@main.command("resume")
@click.argument("run_dir", type=click.Path(), callback=_run_dir_path)
@with_output_options
@nproc_option
@reports_errors
def resume_command(
    run_dir: Path,
    jobs: int | None,
    executor: str | None,
    quiet: bool,
    as_json: bool,
    every_run: bool,
    nproc: int | None,
) -> None:
    """Continue RUN_DIR's unfinished runs from their last checkpoints; finished runs are skipped.
    A damaged newest checkpoint is replaced by the one before it, with a warning."""
    from nnrun.experiment.rundir import CONFIG, RunDirectory

    RunDirectory(run_dir).read_config()  # a run directory, its config.toml intact and no link
    config = run_dir / CONFIG
    _run(
        config,
        (),
        None,
        run_dir,
        jobs=jobs,
        executor=executor,
        resume=True,
        force=False,
        quiet=quiet,
        as_json=as_json,
        every_run=every_run,
        nproc=nproc,
        rank_args=["resume", str(run_dir), *_output_flags(quiet, as_json, every_run)],
    )


def _run(
    file: Path,
    overrides: tuple[str, ...],
    seed: int | None,
    out: Path | None,
    *,
    jobs: int | None,
    executor: str | None = None,
    resume: bool,
    force: bool,
    quiet: bool,
    as_json: bool,
    every_run: bool = False,
    nproc: int | None = None,
    rank_args: list[str] | None = None,
) -> None:
    """Load the plugins once, validate the experiment against them, run it, print the summary.
    With `--nproc N`, validate for N processes, then start them (each runs `nnrun RANK_ARGS`);
    under torchrun, take this process's part."""
    from nnrun.config import load_experiment
    from nnrun.experiment import distributed
    from nnrun.loading import load_registry

    world = distributed.launched()
    if (world is not None or (nproc or 1) > 1) and (jobs or 1) > 1:
        raise click.UsageError(
            "--jobs runs whole runs in parallel; with --nproc (or torchrun) "
            "the processes share each run: drop --jobs"
        )
    if world is not None and nproc is not None and nproc != world.local_size:
        raise click.UsageError(
            f"--nproc {nproc} under torchrun, which started "
            f"{world.local_size} processes here: drop --nproc"
        )
    registry = load_registry()
    processes = world.local_size if world is not None else nproc
    if world is not None and world.rank != 0:
        _follow(file, overrides, seed, registry, world)  # trains alongside rank 0, silently
        return
    experiment = load_experiment(
        file, overrides, registry=registry, seed=seed, executor=executor, nproc=processes
    )
    if world is None and processes is not None and processes > 1:
        assert rank_args is not None
        sys.exit(distributed.launch(processes, rank_args))
    if world is None:
        _run_experiment(experiment, out, registry, jobs, resume, force, quiet, as_json, every_run)
        return
    from nnrun.config.distributed import settings

    first = experiment.runs[0]
    parallel = distributed.DataParallel.start(world, settings(first), first.experiment.device)
    try:
        with distributed.activated(parallel):
            try:
                _run_experiment(
                    experiment, out, registry, 1, resume, force, quiet, as_json, every_run
                )
            except NnrunError:  # bad input found at a run's start, or interrupted: at a step
                parallel.finish()  # all ranks agreed on, so the others wait to be released
                raise
            except SystemExit:
                parallel.finish()
                raise
            parallel.finish()
    except distributed.PeerLost as error:
        if not os.environ.get(distributed.LAUNCHER_ENV):  # else the launcher says which died
            click.echo(f"Error: {error}", err=True)
        sys.exit(distributed.EXIT_PEER_LOST)
    finally:
        parallel.close()


def _follow(
    file: Path, overrides: tuple[str, ...], seed: int | None, registry: Any, world: Any
) -> None:
    """A rank other than 0: check the file as rank 0 does (which reports any problem), join
    the process group, then train each run rank 0 announces."""
    from nnrun.config import load_experiment
    from nnrun.config.distributed import settings
    from nnrun.experiment import distributed

    try:
        experiment = load_experiment(file, overrides, registry, seed, nproc=world.local_size)
    except NnrunError as error:  # rank 0 finds it too and prints it; torchrun then ends this rank
        import time

        time.sleep(60)  # exiting first would make this rank the failure torchrun reports
        click.echo(f"Error (rank {world.rank}): {error}", err=True)  # rank 0 did not: say it here
        sys.exit(EXIT_BAD_INPUT)
    first = experiment.runs[0]
    parallel = distributed.DataParallel.start(world, settings(first), first.experiment.device)
    try:
        from nnrun.experiment.runner import stop_on_signals

        with stop_on_signals():  # a stop request counts at the next all-reduce, as on rank 0
            parallel.follow(registry)
    except distributed.PeerLost:
        sys.exit(distributed.EXIT_PEER_LOST)  # rank 0, or the launcher, says why
    finally:
        parallel.close()


def _run_experiment(
    experiment: Any,
    out: Path | None,
    registry: Any,
    jobs: int | None,
    resume: bool,
    force: bool,
    quiet: bool,
    as_json: bool,
    every_run: bool,
) -> None:
    from nnrun.experiment.reporting import ConsoleReporter, QuietReporter
    from nnrun.experiment.runner import run_experiment

    for note in experiment.notes:  # e.g. the bad rows a CSV file's on_bad_rows = "skip" left out
        click.echo(f"nnrun: {note}", err=True)
    quiet_reporter = QuietReporter(announce=quiet) if quiet or as_json else None
    summary = run_experiment(
        experiment,
        out,
        registry=registry,
        jobs=jobs,
        resume=resume,
        force=force,
        reporter=quiet_reporter or ConsoleReporter(),
    )
    _print_summary(summary, as_json, quiet_reporter.out if quiet_reporter else None, every_run)
    if any(run["status"] == "failed" for run in summary["runs"]):
        sys.exit(EXIT_RUN_FAILED)


def _print_summary(
    summary: dict[str, Any], as_json: bool, run_dir: Path | None, every_run: bool = False
) -> None:
    if as_json:
        import json

        run_dir_field = {"run_dir": str(run_dir)} if run_dir is not None else {}
        click.echo(json.dumps({**summary, **run_dir_field}, indent=2))
        return
    from nnrun.experiment.reporting import (
        group_table,
        has_groups,
        results_table,
        stdout_console,
        tune_table,
    )

    grouped = has_groups(summary) and not every_run
    stdout_console().print(group_table(summary) if grouped else results_table(summary))
    tuned = tune_table(summary)
    if tuned is not None:
        stdout_console().print(tuned)


@main.command("check")
@click.argument("file", type=click.Path(path_type=Path))
@overrides_option
@nproc_option
@reports_errors
def check_command(file: Path, overrides: tuple[str, ...], nproc: int | None) -> None:
    """Validate FILE and print the fully resolved experiment without running anything; with
    --nproc N, also for data-parallel training on N processes."""
    from nnrun.experiment.inspection import describe_experiment

    click.echo(describe_experiment(file, overrides, nproc=nproc))


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print the listing as JSON.")
@reports_errors
def plugins_command(as_json: bool) -> None:
    """List every component by kind, with its hyperparameters and the distribution providing it,
    and the problems: plugins that failed to load, names that two distributions register."""
    import warnings

    from nnrun.experiment.inspection import plugin_listing, render_plugin_listing

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # failures are part of the listing
        listing = plugin_listing()
    if as_json:
        import json

        click.echo(json.dumps(listing, indent=2))
    else:
        render_plugin_listing(listing)


@main.command("verify")
@click.argument("target", metavar="DIST_OR_NAME")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@reports_errors
def verify_command(target: str, as_json: bool) -> None:
    """Run the conformance kit on every component of an installed distribution (or on one
    component): each check of its kind, with the figure it measured and the tolerance.
    Exit status 0 when every check passes, 1 when one fails."""
    import json

    from nnrun.verify import render_verify, verify, verify_listing

    def progress(component: Any) -> None:
        click.echo(f"verifying {component.kind[:-1]} {component.name!r}", err=True)

    listing = verify_listing(target, verify(target, progress=progress))
    if as_json:
        click.echo(json.dumps(listing, indent=2))
    else:
        from nnrun.experiment.reporting import stdout_console

        render_verify(listing, stdout_console())
    if not listing["passed"]:
        sys.exit(EXIT_RUN_FAILED)


@main.command("new-plugin")
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice(
        [
            "optimizer",
            "activation",
            "loss",
            "initializer",
            "scheduler",
            "solver",
            "dataset",
            "metric",
        ]
    ),
    default="optimizer",
    show_default=True,
    help="The kind of the example component.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    help="Where to write the package [default: ./NAME]; must not exist or be empty.",
)
@reports_errors
def new_plugin_command(name: str, kind: str, directory: Path | None) -> None:
    """Write a plugin package NAME (a distribution name, e.g. nnrun-fancy-sgd) with one working
    component of the kind, its tests, a README and a CI workflow; it installs and passes its tests
    as written."""
    from nnrun.scaffold import new_plugin

    target = new_plugin(name, kind, directory)
    click.echo(f'wrote {target}: pip install -e "{target}[test]", then python -m pytest {target}')


@main.command("show")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--runs", "every_run", is_flag=True, help="One row per run, not per group.")
@reports_errors
def show_command(run_dir: Path, as_json: bool, every_run: bool) -> None:
    """Print a run directory's results table again."""
    from nnrun.experiment.rundir import RunDirectory

    _print_summary(RunDirectory(run_dir).verify(), as_json, None, every_run)


@main.command("compare")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--metric",
    metavar="FIGURE",
    help="The final figure to compare: final_loss, final_val_loss or a metric's name "
    "[default: final_val_loss if the runs have it, else final_loss].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the groups and pairs as JSON.")
@click.option("--runs", "every_run", is_flag=True, help="One row per run, not per group.")
@reports_errors
def compare_command(
    run_dirs: tuple[Path, ...], metric: str | None, as_json: bool, every_run: bool
) -> None:
    """Put several run directories' results side by side, and compare every pair of groups
    (configurations over their seeds): paired by seed where they share seeds (mean difference,
    its 95% t-interval, wins per seed, Wilcoxon signed-rank p), else Welch's t-test."""
    from nnrun.experiment.comparison import compare_groups, pairs_table
    from nnrun.experiment.inspection import comparison_table
    from nnrun.experiment.reporting import stdout_console

    comparison = compare_groups(run_dirs, metric)  # a damaged directory is a one-line error
    if as_json:
        import json

        click.echo(json.dumps(comparison, indent=2))
        return
    console = stdout_console()
    console.print(comparison_table(run_dirs, every_run))
    if comparison["pairs"]:
        console.print(pairs_table(comparison))


@main.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Where to write the page [default: RUN_DIR/report.html for one directory; "
    "required for several].",
)
@reports_errors
def report_command(run_dirs: tuple[Path, ...], out: Path | None) -> None:
    """Write one self-contained HTML page (no network, no server) for RUN_DIR: the experiment,
    a sortable results table, loss curves, lr sensitivity, tuning and failures; for several
    run directories, one comparison page with their groups side by side."""
    from nnrun.experiment.report_html import REPORT, report_html
    from nnrun.experiment.safefiles import write_atomic

    if out is None and len(run_dirs) > 1:
        raise click.UsageError("give --out PATH for a page over several run directories")
    target = out if out is not None else run_dirs[0] / REPORT
    page = report_html(run_dirs).encode("utf-8")
    write_atomic(target, lambda stream: stream.write(page))
    click.echo(f"wrote {target}")


@main.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Choice(["csv", "parquet", "tensorboard", "mlflow"]),
    help="csv or parquet: an epochs and a runs table; tensorboard: event files; mlflow: runs.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Where to write [default: RUN_DIR-FORMAT beside RUN_DIR; mlflow: mlflow.db beside it].",
)
@click.option("--uri", help="mlflow only: the tracking URI [default: sqlite:///OUT].")
@reports_errors
def export_command(run_dir: Path, to: str, out: Path | None, uri: str | None) -> None:
    """Write RUN_DIR's results in a format other tools read (csv and parquet: one row per run x
    epoch and one per run, with every hyperparameter as a column)."""
    from nnrun.experiment.export import export

    click.echo(f"wrote {export(run_dir, to, out, uri)}")


@main.command("predict")
@click.argument("run_dir", type=click.Path(), callback=_run_dir_path)
@click.argument("input_csv", type=click.Path(path_type=Path))
@click.option("--run", "run_name", metavar="NAME", help="The run to use, when RUN_DIR has several.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Write the predictions to FILE (replacing it) instead of printing them.",
)
@reports_errors
def predict_command(run_dir: Path, input_csv: Path, run_name: str | None, out: Path | None) -> None:
    """Predict with a finished run's final model for the inputs in INPUT_CSV (the training data's
    input columns, by name when it has a header); print a CSV with a `prediction` column."""
    from nnrun.experiment.predict import predict
    from nnrun.experiment.safefiles import write_atomic

    text = predict(run_dir, input_csv, run_name)
    if out is None:
        click.echo(text, nl=False)
    else:
        data = text.encode("utf-8")
        write_atomic(out, lambda stream: stream.write(data))


if __name__ == "__main__":
    main()
