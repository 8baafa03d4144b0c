"""``biolearn export``: write a run or a network in a format other tools read (NWB, NIR).

Registered on the main command group by :mod:`biolearn.cli`. Needs the ``interop`` extra
(``pip install 'biolearn[interop]'``); without it the command stops with one line naming it.
"""

from __future__ import annotations

from pathlib import Path

import click

from biolearn.errors import BiolearnError


@click.group("export")
def export_group() -> None:
    """Export a run to NWB, or a config's network to NIR (docs/interop.md).

    \b
    Examples:
      biolearn export nwb runs/custom_neuron/20250101-120000
      biolearn export nwb runs/stdp_mnist/20250101-120000/spikes.h5 -o stdp.nwb
      biolearn export nir configs/my_lif_network.yaml -o net.nir
    """


@export_group.command("nwb")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="NWB file to write (default: spikes.nwb beside spikes.h5).")
@click.option("--no-weights", is_flag=True, help="Leave weights.h5 out of the file.")
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
def nwb_cmd(path: Path, out: Path | None, no_weights: bool, debug: bool) -> None:
    """Write the NWB file of a run directory (or of a SONATA spikes.h5).

    Units: one per neuron, spike times in s, columns population and node_id. Trials: the
    stimulus presentations. Processing module 'weights': weights.h5. Metadata: the resolved
    config and the provenance of results.json.
    """
    from biolearn.io.nwb import write_nwb

    written = write_nwb(path, out, weights=not no_weights)
    click.echo(f"nwb: {written}")


@export_group.command("nir")
@click.argument("config", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="NIR file to write (default: <config name>.nir here).")
@click.option("--set", "overrides", multiple=True, metavar="KEY.SUB=VALUE",
              help="Override a config value (as for 'biolearn run'). Repeatable.")
@click.option("--seed", type=int, default=None, help="Override the config's seed.")
@click.option("--convention", type=click.Choice(["step", "delta"]), default="step",
              show_default=True, help="What an input spike is in NIR's equations: a unit "
              "value for one step (snntorch's reading) or a Dirac delta.")
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
def nir_cmd(config: Path, out: Path | None, overrides: tuple[str, ...], seed: int | None,
            convention: str, debug: bool) -> None:
    """Write the network of CONFIG (a 'network' recipe config) as a NIR graph.

    Only recipes that describe their network in the config can be exported from the command
    line; any biolearn Network can be exported from Python with
    biolearn.io.nir.write_nir(net, path).
    """
    from biolearn.config import load_config

    cfg = load_config(config, list(overrides), seed)
    if cfg.model != "network":
        raise BiolearnError(f"recipe '{cfg.model}' does not expose its network",
                            "in 'biolearn export nir CONFIG'",
                            "export a config of the 'network' recipe, or call "
                            "biolearn.io.nir.write_nir(net, path) on a Network in Python")
    from biolearn.io.nir import write_nir
    from biolearn.models.network import build

    net, _ = build(cfg.params, cfg.seed, config)
    dest = out if out is not None else Path(config.stem + ".nir")
    write_nir(net, dest, convention=convention)
    click.echo(f"nir: {dest} ({len(net.populations)} populations, "
               f"{len(net.projections)} projections, dt {net.dt:g} ms, {convention} convention)")
