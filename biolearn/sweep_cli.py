"""The ``biolearn sweep CONFIG`` subcommand (added to the main group with ``add_command``)."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from biolearn.errors import BiolearnError


@click.command("sweep")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY.SUB=VALUE",
              help="Override a config value in every run (YAML), as in 'biolearn run'. "
                   "Repeatable.")
@click.option("--grid", "grids", multiple=True, metavar="KEY.SUB=[V1,V2,...]",
              help="A grid axis: the runs take every value of the YAML list; several --grid "
                   "give their Cartesian product. Quote it for the shell.")
@click.option("--seeds", type=int, default=None,
              help="Run every grid point with seeds 0 … N-1 (default: the config's seed).")
@click.option("--seed-list", default=None, metavar="S1,S2,...",
              help="Run every grid point with these seeds, e.g. 0,1,2.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Sweep directory (default: sweeps/<config name>/<YYYYmmdd-HHMMSS>). The same "
                   "sweep run again into it finishes what is missing.")
@click.option("--resume", is_flag=True,
              help="Continue the newest sweep of this config (without --out).")
@click.option("--workers", type=int, default=None,
              help="Worker processes of the local Dask cluster (default: one per core, divided "
                   "by --threads-per-run).")
@click.option("--threads-per-run", type=int, default=1, show_default=True,
              help="numba / BLAS threads of each run.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Use the workers of a running dask.distributed scheduler, e.g. "
                   "tcp://10.0.0.5:8786 (or a scheduler JSON file) instead of a local cluster.")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory with the datasets (else data.root, $BIOLEARN_DATA, "
                   "~/.cache/biolearn).")
@click.option("--quiet", "-q", is_flag=True,
              help="No progress bar and no table; print failures and the output paths.")
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
def sweep_command(config: Path, overrides: tuple[str, ...], grids: tuple[str, ...],
                  seeds: int | None, seed_list: str | None, out_dir: Path | None, resume: bool,
                  workers: int | None, threads_per_run: int, scheduler: str | None,
                  data_root: Path | None, quiet: bool, debug: bool) -> int:
    """Run CONFIG over a grid of values × seeds on Dask; tabulate and plot the metrics.

    Each run is an ordinary 'biolearn run' in its own directory under the sweep directory
    (named after its grid values and seed). The sweep directory gets sweep.json (the
    definition), sweep.csv (one row per run), summary.csv (n, mean, sd, 95 % CI per grid point
    and metric) and figures/ (each metric against each grid axis). Running the same sweep
    again skips finished runs and resumes interrupted ones; a failing run does not stop the
    others (exit code 1 when any run did not complete). Ctrl-C, SIGTERM or SIGHUP stop the
    sweep: sweep.csv and summary.csv keep what finished, and the command to continue it is
    printed.

    \b
    Examples:
      biolearn sweep configs/example_lif.yaml --grid 'params.tau_m_ms=[10, 20, 40]'
      biolearn sweep configs/stdp_mnist_smoke.yaml --grid 'params.plasticity.eta_in=[0.01, 0.02]' \\
          --seeds 3 --workers 2 --out sweeps/eta
      biolearn sweep configs/stdp_mnist_smoke.yaml ... --out sweeps/eta   # continue it
      biolearn sweep configs/stdp_mnist.yaml --seeds 5 --scheduler tcp://10.0.0.5:8786
    """
    from biolearn.sweep import SweepInterrupted, format_summary, parse_seed_list, run_sweep

    if seeds is not None and seed_list is not None:
        raise BiolearnError("--seeds and --seed-list exclude each other", "in 'biolearn sweep'",
                            "give a count (--seeds 3) or a list (--seed-list 0,1,2)")
    if resume and out_dir is not None:
        raise BiolearnError("--resume is for the default sweep directory", "with --out",
                            "leave out --resume: the same sweep run again into --out continues")
    seed_arg = parse_seed_list(seed_list) if seed_list is not None else seeds
    try:
        res = run_sweep(config, list(overrides), list(grids), seed_arg, out=out_dir,
                        workers=workers, threads_per_run=threads_per_run, scheduler=scheduler,
                        quiet=quiet, resume=resume, data_root=data_root)
    except SweepInterrupted as e:
        cmd = ["biolearn", "sweep", str(config)]
        cmd += sum((["--set", o] for o in overrides), [])
        cmd += sum((["--grid", g] for g in grids), [])
        if seeds is not None:
            cmd += ["--seeds", str(seeds)]
        if seed_list is not None:
            cmd += ["--seed-list", seed_list]
        if workers is not None:
            cmd += ["--workers", str(workers)]
        if threads_per_run != 1:
            cmd += ["--threads-per-run", str(threads_per_run)]
        if scheduler:
            cmd += ["--scheduler", scheduler]
        if data_root is not None:
            cmd += ["--data-root", str(data_root)]
        cmd += ["--out", str(e.dir)]
        from biolearn.cli import echo_err, signal_exit_code, signal_words, signals_ignored

        how = signal_words(e.signal)
        with signals_ignored():  # the sweep has stopped: a further signal must not cut this
            echo_err(f"\ninterrupted by {how}: finished runs are kept in {e.dir}")
            echo_err(f"continue with: {shlex.join(cmd)}")
        return signal_exit_code(e.signal)
    if not quiet and any(r["status"] == "completed" for r in res.rows):
        click.echo(format_summary(res.plan, res.summary))
    bad = res.failed
    for r in bad:
        click.echo(f"{r['status']}: {r['run']}: {r['error'] or '(no error recorded)'}", err=True)
    for r in res.rows:
        if r["status"] == "diverged":
            click.echo(f"diverged: {r['run']}: {r['error'] or ''}".rstrip(), err=True)
    n = len(res.rows)
    if not quiet:
        click.echo(f"{n - len(bad)} of {n} runs finished ({len(res.ran)} run now, "
                   f"{len(res.skipped)} before)")
        if res.figures:
            click.echo(f"figures: {res.dir / 'figures'} ({len(res.figures)} PNG)")
    click.echo(f"runs:    {res.dir / 'sweep.csv'}")
    click.echo(f"summary: {res.dir / 'summary.csv'}")
    return 1 if bad else 0
