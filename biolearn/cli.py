"""The ``biolearn`` command: run configs, inspect output files, run benchmarks, list what exists.

Installed as ``biolearn.cli`` (console script ``biolearn = biolearn.cli:main``). Errors a user can
cause are printed as one line ``error: <what>, <where>, <how to fix>`` on stderr with exit code 2;
``--debug`` (or ``BIOLEARN_DEBUG=1``) adds the traceback.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

import biolearn
from biolearn.errors import BiolearnError

EXIT_USER = 2  # bad config, bad arguments, unreadable files
EXIT_BUG = 1  # anything unexpected
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT

_debug_flag = False


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _err(msg: str) -> None:
    click.echo(_one_line("error: " + msg), err=True)


class _Group(click.Group):
    """A click group whose errors all end as one ``error:`` line (traceback only with --debug)."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv or os.environ.get("BIOLEARN_DEBUG", "") not in ("", "0")
        code = 0
        try:
            rv = super().main(argv, prog_name=prog_name or "biolearn", complete_var=complete_var,
                              standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
        except click.exceptions.NoArgsIsHelpError as e:  # bare `biolearn`: show help
            click.echo(e.ctx.get_help() if e.ctx else "", err=False)
            code = 0
        except click.UsageError as e:
            if debug:
                traceback.print_exc()
            cmd = e.ctx.command_path if e.ctx else "biolearn"
            _err(f"{e.format_message()}, in '{cmd}', see '{cmd} --help'")
            code = EXIT_USER
        except click.ClickException as e:
            if debug:
                traceback.print_exc()
            _err(f"{e.format_message()}, in 'biolearn', see 'biolearn --help'")
            code = EXIT_USER
        except BiolearnError as e:
            if debug:
                traceback.print_exc()
            _err(str(e))
            code = EXIT_USER
        except _Interrupted as e:
            code = e.code
        except click.Abort:
            _err("interrupted, by Ctrl-C, run the command again to restart")
            code = EXIT_INTERRUPTED
        except (BrokenPipeError, KeyboardInterrupt):
            code = EXIT_INTERRUPTED
        except OSError as e:  # unwritable run directory, full disk, unreadable file, ...
            if debug:
                traceback.print_exc()
            what = e.strerror or str(e) or type(e).__name__
            where = f"at '{e.filename}'" if e.filename else "in biolearn"
            _err(f"{what}, {where}, check the path, its permissions and the free disk space")
            code = EXIT_USER
        except Exception as e:
            if debug:
                traceback.print_exc()
            where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
            loc = f"in {Path(where.filename).name}:{where.lineno}" if where else "in biolearn"
            _err(f"unexpected {type(e).__name__}: {e}, {loc}, rerun with --debug for the "
                 "traceback and report it")
            code = EXIT_BUG
        if standalone_mode:
            sys.exit(code)
        return code


class _Interrupted(Exception):
    def __init__(self, code: int):
        self.code = code


def _print_version(ctx: click.Context, _param: Any, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"biolearn {biolearn.__version__}")
    ctx.exit(0)


_debug_opt = click.option("--debug", is_flag=True, help="Show the full traceback on errors.")


@click.group(name="biolearn", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version, help="Print the biolearn version and exit.")
@_debug_opt
def cli(debug: bool) -> None:
    """biolearn: event-driven spiking networks and biologically plausible learning.

    \b
    Examples:
      biolearn list                                  # configs, models, benchmarks
      biolearn run configs/stdp_mnist.yaml           # train + evaluate, files in runs/
      biolearn run configs/stdp_mnist.yaml --set data.n_train=1000 --seed 3
      biolearn inspect runs/stdp_mnist/<time>/spikes.h5
      biolearn bench coba --json
    """


# --------------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------------

@cli.command("run")
@click.argument("config", type=click.Path(dir_okay=True, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run directory (default: a new runs/<config name>/<YYYYmmdd-HHMMSS>[-N]). "
                   "It must be new or empty unless --resume or --overwrite is given.")
@click.option("--set", "overrides", multiple=True, metavar="KEY.SUB=VALUE",
              help="Override a config value; VALUE is read as YAML (1, 0.5, true, null, [1, 2], "
                   "text). Repeatable.")
@click.option("--seed", type=int, default=None, help="Override the config's seed.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run (in --out DIR, else the newest run of this "
                   "config); with a larger --set params.epochs=N, give a finished sym_stdp "
                   "run more passes.")
@click.option("--overwrite", is_flag=True,
              help="Start again in --out DIR, deleting the files an earlier run left there.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars; print only the results path.")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory with the datasets (else data.root, $BIOLEARN_DATA, "
                   "~/.cache/biolearn, /usr/share/datasets).")
@click.option("--backend", metavar="NAME", default="biolearn", show_default=True,
              help="A backend of biolearn.backends. biolearn: the engine trains and tests; "
                   "another name (nest: needs the nest extra) then evaluates the trained run "
                   "there, for recipes with an evaluation on it (sym_stdp on nest: "
                   "nest_eval.json).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Threads of the engine's kernels (default: the config's 'threads', else "
                   "$BIOLEARN_THREADS or $NUMBA_NUM_THREADS, else every core; results do not "
                   "depend on it), and NEST's local_num_threads for --backend nest.")
@_debug_opt
def run_cmd(config: Path, out_dir: Path | None, overrides: tuple[str, ...], seed: int | None,
            resume: bool, overwrite: bool, quiet: bool, data_root: Path | None, backend: str,
            threads: int | None, debug: bool) -> None:
    """Run the experiment described by the YAML file CONFIG.

    Writes config.resolved.yaml, results.json (config, metrics, status, warnings, wall time,
    version, seed, provenance) and the recipe's spike files, weights and figures into the run
    directory. Ctrl-C, SIGTERM and SIGHUP stop the run, keep the partial results (status
    "interrupted") and print the command to resume; a run whose network state turns NaN or
    infinite stops with status "diverged".

    \b
    Examples:
      biolearn run configs/stdp_mnist.yaml
      biolearn run configs/stdp_mnist.yaml --set data.n_train=1000 --set data.n_test=1000
      biolearn run configs/stdp_mnist.yaml --seed 7 --out runs/seed7 --quiet
      biolearn run configs/stdp_mnist.yaml --out runs/seed7 --resume
      biolearn run configs/stdp_mnist.yaml --out runs/seed7 --resume --set params.epochs=3
      biolearn run configs/stdp_mnist.yaml --out runs/seed7 --overwrite
      biolearn run configs/stdp_mnist.yaml --threads 2
      biolearn run configs/stdp_mnist.yaml --backend nest --threads 2
    """
    from biolearn.alloc import keep_freed_memory
    from biolearn.backends import evaluation_for
    from biolearn.config import load_config
    from biolearn.runner import (
        RESOLVED,
        RESULTS,
        RunInterrupted,
        check_data_root,
        execute,
        run_dir_for,
    )

    keep_freed_memory()
    if resume and overwrite:
        raise BiolearnError("--resume and --overwrite exclude each other", "in 'biolearn run'",
                            "use --resume to continue a run, or --overwrite to start it again")
    cfg = load_config(config, list(overrides), seed)
    evaluate = evaluation_for(backend, cfg.model)  # before training: it runs after it
    check_data_root(str(data_root) if data_root else None, cfg.data.root, cfg.data.dataset)
    created = out_dir is None and not resume
    out = run_dir_for(cfg.name, out_dir, resume)

    def resume_command(where: Path) -> str:
        import shlex

        cmd = ["biolearn", "run", str(config), *sum((["--set", o] for o in overrides), [])]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        if data_root is not None:
            cmd += ["--data-root", str(data_root)]
        return shlex.join([*cmd, "--out", str(where), "--resume"])

    def stopped(where: Path, by: str) -> None:
        how = signal_words(by)
        with signals_ignored():  # the run has stopped: a further Ctrl-C must not cut this
            echo_err(f"\ninterrupted by {how}: partial results in {where / RESULTS}")
            echo_err(f"resume with: {resume_command(where)}")
        raise _Interrupted(signal_exit_code(by)) from None

    try:
        res = execute(cfg, out_dir=out, quiet=quiet, resume=resume, overwrite=overwrite,
                      data_root=str(data_root) if data_root else None, config_path=config,
                      threads=threads)
    except RunInterrupted as e:
        stopped(e.out_dir, e.signal)
    except KeyboardInterrupt:  # before the run started, or a second signal while it stopped
        if (out / RESOLVED).exists():
            stopped(out, "SIGINT")
        _remove_if_empty(out, created)
        raise
    except OSError as e:  # full disk, unwritable file: the recipe's I/O
        _remove_if_empty(out, created)
        reason = e.strerror or _one_line(str(e)) or type(e).__name__
        where = f"at '{e.filename}'" if e.filename else f"in {out}"
        full = e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        what = (f"cannot write the run's files ({reason})" if full or e.errno == errno.EROFS
                else f"file error ({reason})")
        fix = "free some disk space" if full else "check the path and its permissions"
        if (out / RESOLVED).exists():
            fix += f", then continue with: {resume_command(out)}"
        raise BiolearnError(what, where, fix) from e
    except BaseException:
        _remove_if_empty(out, created)
        raise
    if evaluate is not None:
        evaluate(out, threads=threads or 1, data_root=str(data_root) if data_root else None,
                 quiet=quiet)
    if not quiet:
        _print_table("metrics", res.get("metrics", {}))
        click.echo(f"wall time: {res['wall_time_s']:.2f} s")
    click.echo(f"results: {out / RESULTS}")


_SIGNAL_EXIT = {"SIGINT": 130, "SIGHUP": 129, "SIGTERM": 143}  # 128 + signal number, as shells


def signal_exit_code(name: str) -> int:
    """The exit code of a command stopped by the signal ``name`` (``"SIGTERM"``: 143)."""
    return _SIGNAL_EXIT.get(name, EXIT_INTERRUPTED)


def signal_words(name: str) -> str:
    """How the stop is named to the user: ``"Ctrl-C"`` for SIGINT, else the signal's name."""
    return "Ctrl-C" if name == "SIGINT" else name


@contextlib.contextmanager
def signals_ignored() -> Any:
    """Ignore Ctrl-C, SIGTERM and SIGHUP for the block (main thread only), then restore."""
    import signal
    import threading

    saved = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            if hasattr(signal, name):
                sig = getattr(signal, name)
                with contextlib.suppress(OSError, ValueError):
                    saved[sig] = signal.signal(sig, signal.SIG_IGN)
    try:
        yield
    finally:
        for sig, old in saved.items():
            with contextlib.suppress(OSError, ValueError, TypeError):
                signal.signal(sig, old)


def echo_err(text: str) -> None:
    """One line on stderr, or nothing when the terminal has gone (SIGHUP)."""
    with contextlib.suppress(OSError, ValueError):  # the terminal may be gone (SIGHUP)
        click.echo(text, err=True)


def _remove_if_empty(path: Path, created: bool) -> None:
    """Remove a run directory this command created when the run never wrote into it."""
    if created:
        with contextlib.suppress(OSError):
            path.rmdir()  # fails when not empty: then it stays
            path.parent.rmdir()  # runs/<config name>, if this was its only run


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, dict)):
        s = json.dumps(v)
        return s if len(s) <= 70 else s[:67] + "..."
    return str(v)


def _print_table(title: str, d: dict, err: bool = False) -> None:
    if not d:
        click.echo(f"{title}: (none)", err=err)
        return
    w = max(len(str(k)) for k in d)
    click.echo(f"{title}:", err=err)
    for k, v in d.items():
        click.echo(f"  {str(k):<{w}}  {_fmt(v)}", err=err)


# --------------------------------------------------------------------------------------------
# inspect
# --------------------------------------------------------------------------------------------

@cli.command("inspect")
@click.argument("file", type=click.Path(path_type=Path))
@_debug_opt
def inspect_cmd(file: Path, debug: bool) -> None:
    """Describe a biolearn output FILE: populations, spike counts, time span, stored arrays.

    Reads SONATA spike files (spikes.h5), weight stores (weights.h5) and results.json.

    \b
    Examples:
      biolearn inspect runs/stdp_mnist/20250101-120000/spikes.h5
      biolearn inspect runs/stdp_mnist/20250101-120000/weights.h5
    """
    if not file.exists():
        raise BiolearnError(f"file '{file}' does not exist", "in 'biolearn inspect FILE'",
                            "check the path (run directories are under runs/<config name>/)")
    if file.is_dir():
        raise BiolearnError(f"'{file}' is a directory", "in 'biolearn inspect FILE'",
                            "pass a file inside it, e.g. spikes.h5 or results.json")
    try:
        from biolearn.io.inspect import describe
    except ImportError as e:
        raise BiolearnError("the inspect reader is not available", f"({e})",
                            "reinstall biolearn: pip install -e .") from e
    try:
        text = describe(file)
    except BiolearnError:
        raise
    except (OSError, KeyError, ValueError, UnicodeDecodeError) as e:
        raise BiolearnError(
            f"cannot read '{file}' ({type(e).__name__}: {_one_line(str(e))})",
            "in 'biolearn inspect FILE'",
            "pass an HDF5 or JSON file written by biolearn (the file may be truncated or of "
            "another format)",
        ) from e
    click.echo(text.rstrip("\n"))


# --------------------------------------------------------------------------------------------
# bench
# --------------------------------------------------------------------------------------------

@cli.command("bench")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON object (one line).")
@click.option("--quiet", "-q", is_flag=True, help="No progress output from the benchmark.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="Also run biolearn and its peers (Brian2 C++ OpenMP, NEST) on this many "
                   "threads and report speed-ups and ratios at equal thread counts.")
@_debug_opt
def bench_cmd(name: str | None, as_json: bool, quiet: bool, threads: int, debug: bool) -> None:
    """Time benchmark NAME against its peer simulator(s), side by side in one invocation.

    Prints a table, then always one JSON object as the last line (figures and the side-by-side
    ratios). With --json only that line is printed. Without NAME, lists the benchmarks.

    \b
    Examples:
      biolearn bench                  # list benchmarks
      biolearn bench coba
      biolearn bench coba --threads 2 --json | tail -n 1 > coba.json
    """
    from biolearn.registry import benches, get_bench
    from biolearn.runner import to_json

    if name is None:
        table = benches()
        if not table:
            click.echo("no benchmarks registered")
        for b in table.values():
            click.echo(f"  {b.name:<20} {_first_line(b.description)}")
        return
    bench = get_bench(name)
    kw = {}
    if threads > 1:
        import inspect

        if "threads" not in inspect.signature(bench.run).parameters:
            raise BiolearnError(f"benchmark '{name}' has no thread option", "in --threads",
                                "run it without --threads")
        kw["threads"] = threads
    # anything the benchmark prints goes to stderr, so stdout ends with the JSON line
    with contextlib.redirect_stdout(sys.stderr):
        res = bench.run(quiet=quiet or as_json, **kw)
    if not isinstance(res, dict):
        raise TypeError(f"benchmark '{name}' returned {type(res).__name__}, not a dict")
    res = {"bench": name, **res}
    line = to_json(res)
    if not as_json:
        _print_table(f"benchmark {name}", {k: v for k, v in res.items() if k != "bench"})
    click.echo(line)


# --------------------------------------------------------------------------------------------
# list
# --------------------------------------------------------------------------------------------

def _first_line(text: str) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def _config_summary(path: Path) -> tuple[str, str]:
    """(model, one-line description) of a config file; the description is its first comment."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return "?", f"(unreadable: {e})"
    desc = ""
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#"):
            desc = s.lstrip("#").strip()
            if desc:
                break
        elif s:
            break
    try:
        data = yaml.safe_load(text)
        model = str(data.get("model", "?")) if isinstance(data, dict) else "?"
    except yaml.YAMLError:
        model, desc = "?", "(invalid YAML: 'biolearn run' shows where)"
    return model, desc


@cli.command("list")
@click.argument("model", required=False)
@click.option("--configs", "configs_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("configs"), show_default=True, help="Directory of config files.")
@_debug_opt
def list_cmd(model: str | None, configs_dir: Path, debug: bool) -> None:
    """List the config files, the registered models and the benchmarks.

    With MODEL, list that model's params: keys with type, default and meaning.

    \b
    Examples:
      biolearn list
      biolearn list sym_stdp
    """
    from biolearn.registry import benches, get_recipe, load_errors, recipes

    if model is not None:
        import dataclasses

        from biolearn.config import DataConfig, describe_params

        recipe = get_recipe(model, where="in 'biolearn list MODEL'")
        click.echo(f"{recipe.name}: {_first_line(recipe.description)}")
        rows = describe_params(DataConfig, "data")
        if recipe.params is not None and dataclasses.is_dataclass(recipe.params):
            rows += describe_params(recipe.params, "params")
        w = max(len(r[0]) for r in rows)
        for key, tp, default, help_ in rows:
            click.echo(f"  {key:<{w}}  {_fmt(default):<12} {tp}. {help_}".rstrip(". "))
        return

    click.echo(f"configs (in {configs_dir}/):")
    files = sorted(configs_dir.glob("*.yaml")) + sorted(configs_dir.glob("*.yml")) \
        if configs_dir.is_dir() else []
    if not files:
        click.echo("  (none here; run from the biolearn checkout or pass --configs DIR)")
    for f in files:
        model, desc = _config_summary(f)
        click.echo(f"  {str(f):<34} model={model:<16} {desc}")
    click.echo("models:")
    rs = recipes()
    if not rs:
        click.echo("  (none)")
    for r in rs.values():
        click.echo(f"  {r.name:<20} {_first_line(r.description)}")
    click.echo("benchmarks:")
    bs = benches()
    if not bs:
        click.echo("  (none)")
    for b in bs.values():
        click.echo(f"  {b.name:<20} {_first_line(b.description)}")
    for mod, err in load_errors().items():
        click.echo(f"warning: module {mod} failed to import ({err})", err=True)


def _add_compare() -> None:
    from biolearn.bridge.cli import compare_command

    cli.add_command(compare_command)


_add_compare()


def _add_sweep() -> None:
    from biolearn.sweep_cli import sweep_command

    cli.add_command(sweep_command)


_add_sweep()


def _add_export() -> None:
    from biolearn.export_cli import export_group

    cli.add_command(export_group)


_add_export()


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    return cli.main(argv, standalone_mode=True)


if __name__ == "__main__":  # pragma: no cover
    main()
