"""The ``biolearn compare CONFIG`` subcommand (added to the main group with ``add_command``)."""

from __future__ import annotations

from pathlib import Path

import click

from biolearn.errors import BiolearnError


@click.command("compare")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run directory (default: runs/<config name>/<YYYYmmdd-HHMMSS>).")
@click.option("--set", "overrides", multiple=True, metavar="KEY.SUB=VALUE",
              help="Override a config value (YAML), e.g. --set params.methods=[bp_mlp]. "
                   "Repeatable.")
@click.option("--seed", type=int, default=None, help="Override the config's seed.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory with the datasets (else data.root, $BIOLEARN_DATA, "
                   "~/.cache/biolearn).")
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
def compare_command(config: Path, out_dir: Path | None, overrides: tuple[str, ...],
                    seed: int | None, quiet: bool, data_root: Path | None, debug: bool) -> None:
    """Compare learning methods on one task: print a table, write results.json, CSV and PNG.

    CONFIG is a YAML file with ``model: compare`` (see configs/compare_mnist.yaml). Each STDP
    method runs as a full biolearn run in a sub-directory of the run directory.

    \b
    Examples:
      biolearn compare configs/compare_smoke.yaml
      biolearn compare configs/compare_mnist.yaml --set params.methods=[bp_mlp,surrogate_snn]
    """
    from biolearn.alloc import keep_freed_memory
    from biolearn.bridge.compare import format_table
    from biolearn.config import load_config
    from biolearn.runner import RESULTS, execute, run_dir_for

    keep_freed_memory()
    cfg = load_config(config, list(overrides), seed)
    if cfg.model != "compare":
        raise BiolearnError(f"'{config}' has model '{cfg.model}', not 'compare'",
                            "in 'biolearn compare CONFIG'",
                            f"use 'biolearn run {config}' or a config with 'model: compare'")
    out = run_dir_for(cfg.name, out_dir, False)
    res = execute(cfg, out_dir=out, quiet=quiet,
                  data_root=str(data_root) if data_root else None, config_path=config)
    rows = res.get("metrics", {}).get("methods", [])
    click.echo(format_table(rows))
    click.echo(f"wall time: {res['wall_time_s']:.1f} s")
    click.echo(f"results: {out / RESULTS}")
    click.echo(f"table:   {out / 'compare.csv'}")
