"""Symmetric-STDP MNIST (Hao et al. 2020) with the plastic synapses stored in conductance devices.

The network, protocol and constants are those of :mod:`biolearn.models.sym_stdp`; the plastic
projections named in ``device.projections`` (default: input→E and E→class) live in device arrays
(:mod:`biolearn.hardware.stdp_devices`). The engine's STDP kernel accumulates the rule's changes
in a float shadow during a presentation; before the next presentation that change is written to
the devices as pulses (``ideal`` / ``bidirectional`` NeuroSim / ``unidirectional`` Lim et al.
2017) and the engine continues from the weights the devices hold. Synaptic scaling is a second
write (``scaling_write: separate``), or is folded into the same write (``merged``). How ΔW is
rounded to whole pulses (``rounding``: nearest / stochastic / accumulate) decides whether the
sub-step scaling depression survives (see :mod:`biolearn.hardware.stdp_devices`).

One config sweeps device preset × update scheme × D2D variation, with the ideal-synapse
(software) network in the same run; every variant starts from the same initial weights and input
seed. Per variant: a sub-directory with the usual files (weights, spikes, figures) and
``variant.json``; at the top: ``results_table.md``/``.csv``, ``accuracy_by_device.png`` and
``device_curves.png``.
"""

from __future__ import annotations

import csv
import itertools
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from biolearn.config import Invalid, param, wrap_error
from biolearn.errors import BiolearnError
from biolearn.models.sym_stdp import Params as SymParams
from biolearn.models.sym_stdp import build, train_and_test
from biolearn.registry import register

PLASTIC = ("input_exc", "exc_class")


@dataclass
class DeviceSection:
    """Which device holds the plastic synapses, how they are written, and what to sweep."""

    presets: list[str] = param(factory=lambda: ["ag_si"],
                               help="device presets (ideal, target, ag_si, taox_tio2, pcmo, "
                                    "alox_hfo2) or names defined in custom_devices; one run each")
    schemes: list[str] = param(factory=lambda: ["bidirectional"],
                               help="update schemes: ideal, bidirectional, unidirectional, "
                                    "optionally ':unipolar' or ':differential' (default: "
                                    "differential for unidirectional, else unipolar)")
    d2d_nl: list[float] = param(factory=lambda: [0.0],
                                help="device-to-device sigma of the NL label (NeuroSim "
                                     "sigmaDtoD); one run per value", min=0.0)
    c2c: float | None = param(None, "override the presets' cycle-to-cycle sigma (fraction of "
                              "G_max − G_min)", min=0.0)
    levels: int | None = param(None, "override the presets' pulse levels (both branches)", min=2)
    custom_devices: dict[str, dict] = param(factory=dict, help="user devices: name -> {base: "
                                            "PRESET, key: value} (see docs/hardware.md)")
    projections: list[str] = param(factory=lambda: list(PLASTIC),
                                   help="plastic projections stored in devices "
                                        "(input_exc, exc_class)")
    scaling_write: str = param("separate", "separate: STDP change and synaptic scaling are two "
                               "writes per image; merged: one write of the net change",
                               choices=["separate", "merged"])
    program: str = param("exact", "initial weights: exact (conductances set, NeuroSim) or "
                         "pulses (reset + LTP pulses, program-and-verify)",
                         choices=["exact", "pulses"])
    rounding: str = param("nearest", "ΔW -> whole pulse steps: nearest (NeuroSim; changes "
                          "below half a step are lost), stochastic (unbiased), accumulate "
                          "(remainder kept digitally, Nandakumar et al. 2020)",
                          choices=["nearest", "stochastic", "accumulate"])
    software_baseline: bool = param(True, "also run the ideal-synapse (software) network")

    def validate(self) -> None:
        """Schemes, devices and projections are checked here, not when their run starts."""
        for k, s in enumerate(self.schemes):
            try:
                parse_scheme(s)
            except BiolearnError as e:
                raise wrap_error(e, f"schemes[{k}]") from None
        for k, name in enumerate(self.presets):
            try:
                resolve_device(name, self, 0.0)
            except BiolearnError as e:
                raise wrap_error(e, f"presets[{k}]") from None
        for k, name in enumerate(self.projections):
            if name not in PLASTIC:
                raise Invalid(f"{{0}} = {name!r} is not a plastic projection of this network",
                              f"projections[{k}]", fix="choose from " + ", ".join(PLASTIC))
        if not variants(self):
            raise Invalid("nothing to run: {0} or {1} is empty and {2} is false", "presets",
                          "schemes", "software_baseline",
                          fix="list at least one preset and scheme, or software_baseline: true")


@dataclass
class Params(SymParams):
    device: DeviceSection = param(factory=DeviceSection)


@dataclass(frozen=True)
class Variant:
    tag: str
    device: str | None  # None: software synapses
    scheme: str
    mapping: str
    d2d_nl: float


def parse_scheme(s: str) -> tuple[str, str]:
    """'scheme[:mapping]' -> (scheme, mapping); mapping defaults as in :func:`attach`."""
    from biolearn.hardware.stdp_devices import MAPPINGS
    from biolearn.hardware.update import SCHEMES

    scheme, _, mapping = s.partition(":")
    if scheme not in SCHEMES:
        raise BiolearnError(f"unknown update scheme '{scheme}'", "at 'params.device.schemes'",
                            "choose one of: " + ", ".join(SCHEMES))
    mapping = mapping or ("differential" if scheme == "unidirectional" else "unipolar")
    if mapping not in MAPPINGS:
        raise BiolearnError(f"unknown mapping '{mapping}'", "at 'params.device.schemes'",
                            "use unipolar or differential")
    if scheme == "unidirectional" and mapping != "differential":
        raise BiolearnError("the unidirectional scheme needs a differential pair",
                            "at 'params.device.schemes'", "write unidirectional:differential")
    return scheme, mapping


def variants(d: DeviceSection) -> list[Variant]:
    """Software baseline (if asked) then preset × scheme × D2D, in config order."""
    out = [Variant("software", None, "float", "-", 0.0)] if d.software_baseline else []
    for name, s, v in itertools.product(d.presets, d.schemes, d.d2d_nl):
        scheme, mapping = parse_scheme(s)
        tag = f"{name}_{scheme}_{mapping}" + (f"_d2d{v:g}" if len(d.d2d_nl) > 1 else "")
        out.append(Variant(tag, name, scheme, mapping, float(v)))
    return out


def resolve_device(name: str, d: DeviceSection, d2d: float) -> Any:
    """Device parameters of a preset or custom device with the section's overrides."""
    from biolearn.hardware.presets import device_from_dict

    spec: Any = d.custom_devices.get(name, name)
    dev = device_from_dict(spec)
    if isinstance(spec, dict):
        dev.name = name
    if d2d > 0:
        dev.sigma_d2d_nl = d2d
    if d.c2c is not None:
        dev.sigma_c2c = d.c2c
    if d.levels is not None:
        dev.levels_ltp = dev.levels_ltd = int(d.levels)
    return dev


def run_variant(cfg: Any, ctx: Any, v: Variant) -> dict:
    """One sym-STDP run (:func:`biolearn.models.sym_stdp.train_and_test`), with the plastic
    projections on devices unless ``v.device`` is None: the hook writes each image's STDP and
    scaling changes as pulses."""
    from biolearn.hardware.stdp_devices import attach_all

    p: Params = cfg.params
    d = p.device
    sim = build(p, ctx.rng).compile(seed=int(ctx.rng.integers(2**63)))
    hw = None
    if v.device is not None:
        for name in d.projections:
            if name not in PLASTIC:
                raise BiolearnError(f"'{name}' is not a plastic projection of this network",
                                    "at 'params.device.projections'",
                                    "choose from: " + ", ".join(PLASTIC))
        dev = resolve_device(v.device, d, v.d2d_nl)
        # one device stream for every variant: the same D2D draws across schemes (paired runs)
        hw = attach_all(sim, list(d.projections), dev, np.random.default_rng([cfg.seed, 0xD5]),
                        v.scheme, v.mapping, d.program, d.rounding)
    resync = [hw is not None and ctx.resume and ctx.checkpoint_path.exists()]
    merged = d.scaling_write == "merged"

    def write(s, tag: str) -> None:
        if resync[0]:  # a checkpoint was loaded into the engine: devices follow it
            hw.resync(s)
            resync[0] = False
            return
        hw.commit(s, tag)

    def hook(s, event: str) -> None:
        if event == "pre_scaling":
            if not merged:
                write(s, "stdp")  # the previous presentation's STDP change
        elif event == "post_scaling":
            write(s, "stdp+scaling" if merged else "scaling")
        else:  # "test": the last training presentation
            write(s, "stdp+scaling" if merged else "stdp")

    metrics = train_and_test(cfg, ctx, sim, {"model": "sym_stdp_device", "variant": v.tag},
                             hook if hw is not None else None)
    metrics["device"] = None if hw is None else hw.summary()
    return metrics


def _row(v: Variant, m: dict) -> dict:
    tot = (m.get("device") or {}).get("total", {})
    n_img = max(1, m["n_train_images"])
    return {"variant": v.tag, "device": v.device or "software", "scheme": v.scheme,
            "mapping": v.mapping, "d2d_nl": v.d2d_nl, "test_accuracy": m["test_accuracy"],
            "test_accuracy_vote": m["test_accuracy_vote"],
            "pulses": tot.get("pulses", 0.0), "ltp_pulses": tot.get("ltp_pulses", 0.0),
            "ltd_pulses": tot.get("ltd_pulses", 0.0), "energy_j": tot.get("energy_j", 0.0),
            "refreshes": tot.get("refreshes", 0.0),
            "pulses_per_image": tot.get("pulses", 0.0) / n_img,
            "train_time_s": m["train_time_s"]}


def _table(rows: list[dict]) -> str:
    sw = next((r["test_accuracy"] for r in rows if r["device"] == "software"), None)
    head = ("| device | scheme | mapping | D2D NL σ | accuracy % | Δ vs software (pp) | "
            "vote % | pulses | LTP | LTD | pulses/image | refreshes | energy proxy (J) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        delta = "" if sw is None else f"{100 * (r['test_accuracy'] - sw):+.2f}"
        lines.append(f"| {r['device']} | {r['scheme']} | {r['mapping']} | {r['d2d_nl']:g} | "
                     f"{100 * r['test_accuracy']:.2f} | {delta} | "
                     f"{100 * r['test_accuracy_vote']:.2f} | {r['pulses']:.4g} | "
                     f"{r['ltp_pulses']:.4g} | {r['ltd_pulses']:.4g} | "
                     f"{r['pulses_per_image']:.4g} | {r['refreshes']:.4g} | "
                     f"{r['energy_j']:.4g} |")
    return head + "\n".join(lines) + "\n"


def _plots(ctx: Any, rows: list[dict], devices: dict) -> None:
    import matplotlib.pyplot as plt

    from biolearn.hardware.devices import pulse_response

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, dev in devices.items():
        r = pulse_response(dev, rng=np.random.default_rng(0))[0]
        ax.plot(np.arange(r.size) / dev.levels_ltp, (r - dev.g_min) / (dev.g_max - dev.g_min),
                label=name, lw=1.2)
    ax.set_xlabel("pulse number / levels (LTP, then LTD)")
    ax.set_ylabel("(G − G_min) / (G_max − G_min)")
    ax.set_title("Conductance response (one device, with C2C noise)")
    ax.legend(fontsize=8)
    ctx.save_figure(fig, "device_curves")

    hw = [r for r in rows if r["device"] != "software"]
    if not hw:
        return
    keys = list(dict.fromkeys((r["scheme"], r["mapping"]) for r in hw))
    devs = list(devices)
    d0 = hw[0]["d2d_nl"]
    fig, ax = plt.subplots(figsize=(7.5, 4))
    width = 0.8 / max(1, len(keys))
    for k, key in enumerate(keys):
        vals = [next((100 * r["test_accuracy"] for r in hw if r["device"] == dn
                      and (r["scheme"], r["mapping"]) == key and r["d2d_nl"] == d0), np.nan)
                for dn in devs]
        ax.bar(np.arange(len(devs)) + (k - (len(keys) - 1) / 2) * width, vals, width,
               label=f"{key[0]} ({key[1]})")
    sw = [r for r in rows if r["device"] == "software"]
    if sw:
        ax.axhline(100 * sw[0]["test_accuracy"], color="k", ls="--", lw=1,
                   label="software synapses")
    ax.set_xticks(np.arange(len(devs)), devs, rotation=20)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Sym-STDP MNIST on device synapses")
    ax.legend(fontsize=8)
    ctx.save_figure(fig, "accuracy_by_device")


@register("sym_stdp_device", Params,
          "Hao et al. 2020 sym-STDP MNIST with device synapses: preset × scheme sweep")
def run(cfg: Any, ctx: Any) -> dict:
    from biolearn.runner import RunContext, to_json, write_atomic

    p: Params = cfg.params
    vs = variants(p.device)
    if not vs:
        raise BiolearnError("nothing to run", "at 'params.device'",
                            "list at least one preset and scheme, or software_baseline: true")
    devices = {v.device: resolve_device(v.device, p.device, 0.0) for v in vs if v.device}
    rows: list[dict] = []
    runs: dict[str, dict] = {}
    for v in vs:
        sub = RunContext(ctx.out_dir / v.tag, cfg.seed, config=ctx.config,
                         data_root=ctx.data_root, quiet=ctx.quiet, resume=ctx.resume)
        done = sub.path("variant.json")
        if ctx.resume and done.exists():
            m = json.loads(done.read_text())
        else:
            if not ctx.quiet:
                print(f"[sym_stdp_device] {v.tag}")
            # the running variant's own partial metrics (its tests so far), if interrupted
            ctx.metrics["variant_in_progress"] = {"variant": v.tag, "metrics": sub.metrics}
            m = run_variant(cfg, sub, v)
            write_atomic(done, to_json(m, indent=1))
            del ctx.metrics["variant_in_progress"]
        rows.append(_row(v, m))
        runs[v.tag] = {"test_accuracy": m["test_accuracy"], "device": m.get("device")}
        ctx.metrics["table"] = rows  # partial results if interrupted
    d = p.device
    table = (f"rounding: {d.rounding}, scaling write: {d.scaling_write}, initial programming: "
             f"{d.program}, device projections: {', '.join(d.projections)}\n\n" + _table(rows))
    ctx.path("results_table.md").write_text(table)
    with open(ctx.path("results_table.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    if p.output.figures:
        _plots(ctx, rows, devices)
    hw = [r for r in rows if r["device"] != "software"]
    metrics: dict[str, Any] = {
        "test_accuracy": (hw[0] if hw else rows[0])["test_accuracy"],
        "table": rows,
        "runs": runs,
    }
    sw = [r for r in rows if r["device"] == "software"]
    if sw:
        metrics["software_test_accuracy"] = sw[0]["test_accuracy"]
    if not ctx.quiet:
        print(table)
    return metrics
