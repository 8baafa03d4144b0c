"""Device presets with sources, and user-defined devices from YAML / dict.

Table I of Chen, Peng & Yu, "NeuroSim: A circuit-level macro model for benchmarking neuro-inspired
architectures in online learning", IEEE TCAD 37(12):3067-3080, 2018 lists, per device: number of
conductance states, nonlinearity labels (LTP / LTD), on/off ratio, cycle-to-cycle variation, and the
online-learning accuracy of the 400-100-10 MLP on MNIST. The absolute conductance scale is not in
the table; all presets use NeuroSim's default G_max = 38.462 nS (MLP+NeuroSim v3 ``RealDevice``,
Ag:a-Si) and G_min = G_max / (on/off). Write voltage 3.2 V (LTP) / 2.8 V (LTD) and 300 us pulses
(NeuroSim ``RealDevice`` defaults) only feed the energy proxy. Where Table I gives "<1 %" C2C we use
0.5 %.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from biolearn.errors import BiolearnError

from .devices import DeviceParams, params_from_dict

_G_MAX = 3.8462e-8
_T1 = "Chen, Peng & Yu, IEEE TCAD 37:3067 (2018), Table I"


def _p(name: str, levels: int | tuple[int, int], nl: tuple[float, float], on_off: float,
       c2c: float, cite: str, acc: float | None, **kw: Any) -> DeviceParams:
    lu, ld = (levels, levels) if isinstance(levels, int) else levels
    return DeviceParams(name=name, kind="exp", g_max=_G_MAX, g_min=_G_MAX / on_off,
                        levels_ltp=lu, levels_ltd=ld, nl_ltp=nl[0], nl_ltd=nl[1],
                        sigma_c2c=c2c, citation=cite,
                        notes="" if acc is None else f"NeuroSim online accuracy {acc:.1f} %", **kw)


PRESETS: dict[str, DeviceParams] = {
    "ideal": _p("ideal", 64, (0.0, 0.0), 50.0, 0.0, _T1 + " ('ideal')", 94.8),
    "target": _p("target", 64, (1.0, -1.0), 50.0, 0.02, _T1 + " ('target')", 90.0),
    # 97 LTP / 100 LTD states as in MLP+NeuroSim v3 RealDevice; Jo et al., Nano Lett. 10:1297 (2010)
    "ag_si": _p("ag_si", (97, 100), (2.4, -4.88), 12.5, 0.035,
                _T1 + "; Ag:a-Si, Jo et al., Nano Lett. 10:1297 (2010)", 73.0),
    # Wang et al., Nanoscale 8:14015 (2016)
    "taox_tio2": _p("taox_tio2", 102, (1.85, -1.79), 2.0, 0.005,
                    _T1 + "; TaOx/TiO2, Wang et al., Nanoscale 8:14015 (2016)", 10.0),
    # Park et al., IEDM 2013 (PCMO synapse)
    "pcmo": _p("pcmo", 50, (3.68, -6.76), 6.84, 0.005,
               _T1 + "; PCMO, Park et al., IEDM (2013)", 10.0),
    # Woo et al., IEEE EDL 37:994 (2016)
    "alox_hfo2": _p("alox_hfo2", 40, (1.94, -0.61), 4.43, 0.05,
                    _T1 + "; AlOx/HfO2, Woo et al., IEEE EDL 37:994 (2016)", 41.0),
}

#: NeuroSim Table I online-learning accuracies (%), for comparison tables.
NEUROSIM_ACCURACY = {"ideal": 94.8, "target": 90.0, "ag_si": 73.0, "taox_tio2": 10.0,
                     "pcmo": 10.0, "alox_hfo2": 41.0}

ALIASES = {"ag:a-si": "ag_si", "agsi": "ag_si", "taox/tio2": "taox_tio2", "alox/hfo2": "alox_hfo2"}


def get_preset(name: str) -> DeviceParams:
    """A copy of the named preset (``ideal``, ``target``, ``ag_si``, ``taox_tio2``, ``pcmo``,
    ``alox_hfo2``)."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in PRESETS:
        from biolearn.registry import closest

        hint = closest(name, list(PRESETS))
        raise BiolearnError(f"unknown device preset '{name}'", "in device name",
                            (hint + " " if hint else "") + "choose one of: " + ", ".join(PRESETS))
    return params_from_dict({}, PRESETS[key])


def device_from_dict(d: dict[str, Any] | str) -> DeviceParams:
    """A device from a preset name, or a dict ``{base: PRESET, key: value, ...}`` (``base``
    optional; keys are :class:`~biolearn.hardware.devices.DeviceParams` fields plus ``on_off``,
    ``levels`` and ``lut_csv``)."""
    if isinstance(d, str):
        return get_preset(d)
    d = dict(d)
    base = get_preset(d.pop("base")) if "base" in d else None
    p = params_from_dict(d, base)
    return p


def load_device(path: str | Path) -> DeviceParams:
    """A user-defined device from a YAML file holding the mapping accepted by
    :func:`device_from_dict` (relative ``lut_csv`` paths are taken next to the YAML)."""
    import yaml

    path = Path(path)
    try:
        d = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise BiolearnError(f"cannot read device YAML ({e})", f"file {path}",
                            "give a YAML mapping of device parameters") from e
    if not isinstance(d, dict):
        raise BiolearnError("device YAML must be a mapping", f"file {path}",
                            "write key: value lines, e.g. base: ag_si")
    if "lut_csv" in d and not Path(d["lut_csv"]).is_absolute():
        d["lut_csv"] = str(path.parent / d["lut_csv"])
    d.setdefault("name", path.stem)
    return device_from_dict(d)
