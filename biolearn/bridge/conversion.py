"""Conversions between biolearn feed-forward spiking networks and PyTorch / snntorch modules.

Two bridges, with the discretisation of each stated exactly:

1. **Torch twin** (:func:`to_torch`, :func:`to_network`). A feed-forward biolearn network of LIF
   populations (current- or conductance-based, ``exact``, ``euler`` or ``euler_expsyn``
   integration, refractoriness, fixed thresholds; mapped by model definition, :data:`TORCH_NEURONS`:
   a ``LIF`` or ``Neurons`` of a :func:`biolearn.engine.neurons.lif_model` definition, which
   :func:`to_network` gives back as ``LIF``; other models are an error naming the population)
   becomes a :class:`torch.nn.Module` that runs the *same* discrete-time update as the engine
   kernel, step for step and in the engine's schedule (Brian2 order: integrate → threshold →
   deliver spikes whose delay elapsed → reset). Weights are copied bit for bit (``float64``), and
   :func:`to_network` gives the identical network back.
   Spike trains are identical on the same input spikes; membrane traces agree to the last bits
   (simultaneous spikes onto one neuron are summed in a different order; conductance-based
   ``exact`` uses the platform ``exp``). Spikes go through a surrogate-gradient Heaviside
   (fast sigmoid, Zenke & Ganguli 2018, Neural Comput 30:1514, eq. 5), so the twin can be trained
   by BPTT and converted back.

2. **snntorch Leaky** (:func:`from_snntorch`, :func:`to_snntorch`). A stack ``Linear → Leaky(β,
   ϑ, reset_mechanism="zero")`` with time step ``dt`` evolves (snntorch 0.x–1.x, Eshraghian et al.
   2023, Proc IEEE 111:1016, eq. 4 discrete LIF)::

       U[t] = β·U[t−1]·(1 − S[t−1]) + W·X[t] + b,     S[t] = H(U[t] − ϑ)

   It maps onto biolearn current-based LIF with forward Euler for v and instantly decaying
   synaptic currents (``integration="euler_expsyn"``, ``tau_e = dt/1000`` so ``exp(−dt/τe)``
   underflows to 0): ``τm = dt/(1 − β)``, ``v_rest = v_reset = 0``, ``v_thresh = ϑ``,
   ``t_ref = 0``, weights ``W/(1 − β)`` onto ``ge`` (so that ``dt/τm · ge = W·X``) and the bias as
   a one-neuron source firing every step with weights ``b/(1 − β)`` (delayed by k steps onto
   layer k+1). The engine delivers spikes
   after its threshold test, so layer k of the biolearn network fires at step ``t + k`` where
   snntorch's layer k fires at ``t``: run the biolearn network for ``T + n_layers`` steps and shift
   by ``k``. The update ``v + dt/τm·(−v + ge)`` equals ``β·v + W·X`` up to rounding (≈1e-16).

Inputs are spike tensors ``[T, batch, n]`` (0/1); outputs are spike tensors per population.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from biolearn.engine import LIF, Network, PoissonSource, SpikeSource, connect
from biolearn.engine.front import KIND_NEURONS, TARGETS, Projection
from biolearn.errors import BiolearnError, missing_extra, require_torch
from biolearn.mapping.lif_family import as_lif, cannot_map, lif_options

#: State variable of a layer a projection's target increments (``"e"``/``"i"`` or the name).
_TARGET_CODE = {"ge": 0, "gi": 1, "v": 2}


def _target_code(target: str) -> int:
    return _TARGET_CODE[TARGETS.get(target, target)]


# ------------------------------------------------------------------------------------------------
# A plain description of a feed-forward network (no torch needed)
# ------------------------------------------------------------------------------------------------

@dataclass
class LayerSpec:
    """One LIF population with the parameters the engine uses (mV, ms)."""

    name: str
    n: int
    synapse: str
    integration: str
    tau_m: float
    v_rest: float
    v_reset: float
    v_thresh: float
    t_ref: float
    tau_e: float
    tau_i: float
    e_e: float
    e_i: float
    v_floor: float
    i_bias: float
    theta: np.ndarray  # per-neuron threshold shift (frozen adaptive threshold), mV
    theta_offset: float
    v_init: Any = None  # initial v (scalar or per neuron), default v_rest
    ge_init: Any = 0.0
    gi_init: Any = 0.0


@dataclass
class ProjectionSpec:
    """Synapses as a dense ``[n_pre, n_post]`` matrix plus the mask of existing synapses."""

    name: str
    pre: str
    post: str
    w: np.ndarray
    mask: np.ndarray | None  # None = all-to-all
    target: str
    delay_steps: int


def _lif_layer(p: Any, theta: np.ndarray | None) -> LayerSpec:
    """A population of a LIF-variant definition as a layer (θ frozen at ``theta`` or its
    initial value)."""
    p = as_lif(p)
    if theta is None:
        theta = np.broadcast_to(np.asarray(p.theta_init, np.float64), (p.n,)).copy()
    return LayerSpec(p.name, p.n, p.synapse, p.integration, p.tau_m, p.v_rest, p.v_reset,
                     p.v_thresh, p.t_ref, p.tau_e, p.tau_i, p.e_e, p.e_i, p.v_floor, p.i_bias,
                     theta, p.theta_offset, p.v_init, p.ge_init, p.gi_init)


#: Neuron definitions the torch twin runs, by family (:func:`neuron_family`): every LIF variant of
#: :func:`biolearn.engine.neurons.lif_model` (current/conductance, exact/euler/euler_expsyn,
#: v_floor; θ frozen), as (population, θ or None) → :class:`LayerSpec`. Every other model is an
#: error naming the population and its model.
TORCH_NEURONS: dict[str, Any] = {"lif": _lif_layer}


def neuron_family(definition: Any) -> str | None:
    """The :data:`TORCH_NEURONS` key of a neuron definition, ``None`` if it has none."""
    return "lif" if lif_options(definition) is not None else None


@dataclass
class NetSpec:
    """Feed-forward network: input sources, LIF layers in engine order, projections."""

    dt: float
    inputs: dict[str, int] = field(default_factory=dict)
    layers: list[LayerSpec] = field(default_factory=list)
    projections: list[ProjectionSpec] = field(default_factory=list)


def spec_from_network(net: Network, sim: Any = None) -> NetSpec:
    """Describe ``net`` (and, if given, the weights and θ of its compiled ``sim``) as a NetSpec.

    Sources (Poisson or spike generators) become inputs whose spikes the caller supplies. Adaptive
    thresholds are frozen at their current value (as at test time in the MNIST recipes);
    plasticity rules and teacher modes are not part of the converted network.
    """
    spec = NetSpec(dt=float(net.dt))
    for p in net.populations:
        if p.kind != KIND_NEURONS:  # Poisson or spike-time sources
            spec.inputs[p.name] = p.n
            continue
        layer = TORCH_NEURONS.get(neuron_family(p.definition))
        if layer is None:
            raise cannot_map(p, "the torch bridge", "in spec_from_network",
                             "use LIF populations (lif_* models), or add its family to "
                             "TORCH_NEURONS in biolearn.bridge.conversion")
        theta = sim.theta[sim.slice(p.name)].copy() if sim is not None else None
        spec.layers.append(layer(p, theta))
    sizes = {p.name: p.n for p in net.populations}
    for q in net.projections:
        if TARGETS.get(q.target, q.target) not in _TARGET_CODE:
            raise BiolearnError(f"target '{q.target}' cannot be mapped", f"projection '{q.name}'",
                                "target " + ", ".join(_TARGET_CODE) + " (or 'e', 'i')")
        w_syn = sim.weights(q.name) if sim is not None else None
        n_pre, n_post = sizes[q.pre], sizes[q.post]
        d = np.unique(np.round(np.asarray(q.delay, float) / net.dt).astype(np.int64))
        if len(d) > 1:
            raise BiolearnError("heterogeneous delays are not supported", f"projection '{q.name}'",
                                "give the projection one delay")
        if q.dense_shape is not None:
            w = (w_syn if w_syn is not None else q.w.reshape(q.dense_shape)).astype(np.float64)
            mask = None
        else:
            flat = w_syn if w_syn is not None else q.w
            w = np.zeros((n_pre, n_post))
            mask = np.zeros((n_pre, n_post), bool)
            if np.any(np.bincount(q.i * n_post + q.j, minlength=n_pre * n_post) > 1):
                raise BiolearnError("duplicate synapses (same pre and post) are not supported",
                                    f"projection '{q.name}'", "merge them into one weight")
            w[q.i, q.j] = flat
            mask[q.i, q.j] = True
        spec.projections.append(ProjectionSpec(q.name, q.pre, q.post, w.copy(), mask, q.target,
                                               int(d[0]) if len(d) else 0))
    return spec


def network_from_spec(spec: NetSpec, input_kind: str = "spikes") -> Network:
    """Rebuild a biolearn Network; inputs become empty SpikeSources (or PoissonSources)."""
    net = Network(dt=spec.dt)
    for name, n in spec.inputs.items():
        net.add(SpikeSource(name, n) if input_kind == "spikes" else PoissonSource(name, n))
    for ly in spec.layers:
        net.add(LIF(ly.name, ly.n, synapse=ly.synapse, integration=ly.integration,
                    tau_m=ly.tau_m, v_rest=ly.v_rest, v_reset=ly.v_reset, v_thresh=ly.v_thresh,
                    t_ref=ly.t_ref, tau_e=ly.tau_e, tau_i=ly.tau_i, e_e=ly.e_e, e_i=ly.e_i,
                    v_floor=ly.v_floor, i_bias=ly.i_bias, theta_init=ly.theta.copy(),
                    theta_offset=ly.theta_offset, v_init=ly.v_init, ge_init=ly.ge_init,
                    gi_init=ly.gi_init))
    for q in spec.projections:
        kw = {"delay": q.delay_steps * spec.dt, "target": q.target}
        if q.mask is None:
            net.connect(connect.dense(q.name, q.pre, q.post, q.w, **kw))
        else:
            i, j = np.nonzero(q.mask)
            net.connect(Projection(q.name, q.pre, q.post, i, j, q.w[i, j], **kw))
    return net


def spikes_to_tensor(indices: Any, times_ms: Any, n: int, n_steps: int, dt: float,
                     batch: int = 1) -> Any:
    """Spike-generator events (index, time in ms) as a ``[n_steps, batch, n]`` float64 tensor.

    Times are rounded to steps as the engine does (``round(t/dt)``); an index firing twice in one
    step counts 2 (the engine delivers both). The same events go to every batch entry."""
    torch = require_torch()
    x = torch.zeros(n_steps, batch, n, dtype=torch.float64)
    steps = np.round(np.asarray(times_ms, float) / dt).astype(np.int64)
    idx = np.asarray(indices, np.int64)
    keep = (steps >= 0) & (steps < n_steps)
    flat = x.view(n_steps, batch, n).permute(1, 0, 2).reshape(batch, n_steps * n)
    ones = torch.ones(int(keep.sum()), dtype=torch.float64)
    for b in range(batch):  # repeated (step, index) events count twice, as in the engine
        flat[b].index_put_((torch.as_tensor(steps[keep] * n + idx[keep]),), ones, accumulate=True)
    return flat.reshape(batch, n_steps, n).permute(1, 0, 2).contiguous()


def _check_feedforward(spec: NetSpec) -> None:
    order = {ly.name: k for k, ly in enumerate(spec.layers)}
    for q in spec.projections:
        if q.post not in order:
            raise BiolearnError(f"projection '{q.name}' targets a source", "in to_torch",
                                "only LIF populations receive synapses")
        if q.pre in order and order[q.pre] >= order[q.post] and q.delay_steps == 0:
            raise BiolearnError(f"projection '{q.name}' is recurrent or goes backwards without "
                                "delay", "in to_torch",
                                "order populations input → output (recurrence needs a delay)")


# ------------------------------------------------------------------------------------------------
# Torch twin
# ------------------------------------------------------------------------------------------------

_CLASSES: dict[str, Any] = {}


def _classes() -> dict[str, Any]:
    """Build the torch classes on first use (torch is imported lazily)."""
    if _CLASSES:
        return _CLASSES
    torch = require_torch()
    nn = torch.nn

    class SpikeFn(torch.autograd.Function):
        """Heaviside ``H(x)`` (x > 0) forward; fast-sigmoid surrogate ``1/(1+k|x|)²`` backward
        (Zenke & Ganguli 2018, eq. 5)."""

        @staticmethod
        def forward(ctx: Any, x: Any, slope: float) -> Any:
            ctx.save_for_backward(x)
            ctx.slope = slope
            return (x > 0).to(x.dtype)

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            (x,) = ctx.saved_tensors
            return grad / (1.0 + ctx.slope * x.abs()) ** 2, None

    class TorchSpikingNet(nn.Module):
        """The engine's discrete-time LIF update in torch (see the module docstring).

        ``forward(inputs)`` takes ``{source name: [T, B, n]}`` (or one tensor if there is one
        source) and returns ``{population: spikes [T, B, n]}``; with ``record_v=True`` also
        ``{"<population>.v": [T, B, n]}`` (v after the step, as a StateMonitor records it).
        """

        def __init__(self, spec: NetSpec, surrogate_slope: float = 25.0,
                     dtype: Any = torch.float64):
            super().__init__()
            _check_feedforward(spec)
            self.spec = spec
            self.slope = float(surrogate_slope)
            self.weights = nn.ParameterDict({
                q.name: nn.Parameter(torch.as_tensor(q.w, dtype=dtype).clone())
                for q in spec.projections})
            for q in spec.projections:
                if q.mask is not None:
                    self.register_buffer(f"mask_{q.name}", torch.as_tensor(q.mask))
            for ly in spec.layers:
                self.register_buffer(f"theta_{ly.name}",
                                     torch.as_tensor(ly.theta, dtype=dtype).clone())
            self.dtype_ = dtype

        def weight(self, name: str) -> Any:
            w = self.weights[name]
            m = getattr(self, f"mask_{name}", None)
            return w if m is None else w * m

        def forward(self, inputs: Any, record_v: bool = False) -> dict:
            spec, dt = self.spec, self.spec.dt
            if not isinstance(inputs, dict):
                if len(spec.inputs) != 1:
                    raise BiolearnError("several sources need a dict of input tensors",
                                        "in TorchSpikingNet.forward",
                                        f"pass {{name: tensor}} for {list(spec.inputs)}")
                inputs = {next(iter(spec.inputs)): inputs}
            x0 = next(iter(inputs.values()))
            T, B = x0.shape[0], x0.shape[1]
            dev, dtp = x0.device, self.dtype_
            st: dict[str, dict] = {}
            for ly in spec.layers:
                z = torch.zeros(B, ly.n, dtype=dtp, device=dev)
                v0, g0, g1 = (z + torch.as_tensor(np.asarray(x, np.float64), dtype=dtp,
                                                  device=dev)
                              for x in (ly.v_rest if ly.v_init is None else ly.v_init,
                                        ly.ge_init, ly.gi_init))
                st[ly.name] = {"v": v0, "ge": g0, "gi": g1,
                               "last": torch.full((B, ly.n), -(2 ** 40), dtype=torch.int64,
                                                  device=dev)}
            L = max([q.delay_steps for q in spec.projections], default=0) + 1
            hist: dict[str, list] = {name: [None] * L for name in
                                     list(spec.inputs) + [ly.name for ly in spec.layers]}
            out: dict[str, list] = {name: [] for name in hist}
            vrec: dict[str, list] = {ly.name: [] for ly in spec.layers}
            consts = [_layer_consts(ly, dt) for ly in spec.layers]
            for t in range(T):
                slot = t % L
                # groups + thresholds
                for ly, c in zip(spec.layers, consts, strict=True):
                    s = st[ly.name]
                    _integrate(torch, ly, c, s, t, dt)
                    thr = ly.v_thresh + getattr(self, f"theta_{ly.name}") - ly.theta_offset
                    ok = (t - s["last"]) >= c["ref"]
                    spk = SpikeFn.apply(s["v"] - thr, self.slope) * ok.to(dtp)
                    hist[ly.name][slot] = spk
                    out[ly.name].append(spk)
                for name in spec.inputs:
                    xi = inputs[name][t].to(dtp)
                    hist[name][slot] = xi
                    out[name].append(xi)
                # synapses (spikes whose delay has elapsed)
                for q in spec.projections:
                    src = hist[q.pre][(t - q.delay_steps) % L] if t >= q.delay_steps else None
                    if src is None:
                        continue
                    key = ("ge", "gi", "v")[_target_code(q.target)]
                    st[q.post][key] = st[q.post][key] + src @ self.weight(q.name)
                # resets
                for ly in spec.layers:
                    s = st[ly.name]
                    spk = hist[ly.name][slot]
                    sd = spk.detach()
                    s["v"] = s["v"] * (1.0 - sd) + ly.v_reset * sd
                    s["last"] = torch.where(sd > 0, torch.full_like(s["last"], t), s["last"])
                    if record_v:
                        vrec[ly.name].append(s["v"])
            res = {name: torch.stack(v) for name, v in out.items()}
            if record_v:
                res.update({f"{k}.v": torch.stack(v) for k, v in vrec.items()})
            return res

    _CLASSES["SpikeFn"] = SpikeFn
    _CLASSES["TorchSpikingNet"] = TorchSpikingNet
    return _CLASSES


def _layer_consts(ly: LayerSpec, dt: float) -> dict:
    """Per-step constants of the LIF update (decay factors, exact CUBA input kernel, refractory
    steps rounded as the engine rounds them)."""
    dm, de, di = np.exp(-dt / ly.tau_m), np.exp(-dt / ly.tau_e), np.exp(-dt / ly.tau_i)
    taue, taui, taum = ly.tau_e, ly.tau_i, ly.tau_m
    ke = taue / (taue - taum) * (de - dm) if taue != taum else dt / taum * dm
    ki = taui / (taui - taum) * (di - dm) if taui != taum else dt / taum * dm
    return {"dm": float(dm), "de": float(de), "di": float(di), "ke": float(ke), "ki": float(ki),
            "vrest": ly.v_rest + ly.i_bias, "ref": int(np.round(ly.t_ref / dt))}


def _integrate(torch: Any, ly: LayerSpec, c: dict, s: dict, t: int, dt: float) -> None:
    """One integration step of a layer: the update the engine generates from the layer's
    :func:`biolearn.engine.neurons.lif_model` definition (checked step for step by the tests)."""
    vv, e, g = s["v"], s["ge"], s["gi"]
    vrest, taum = c["vrest"], ly.tau_m
    if ly.synapse == "current":
        if ly.integration == "exact":
            nv = vrest + (vv - vrest) * c["dm"] + e * c["ke"] + g * c["ki"]
        else:
            nv = vv + dt * ((vrest - vv + e + g) / taum)
    else:
        if ly.integration == "exact":
            b = (1.0 + e + g) / taum
            a = (vrest + e * ly.e_e + g * ly.e_i) / (1.0 + e + g)
            nv = a + (vv - a) * torch.exp(-dt * b)
        else:
            nv = vv + dt * (((vrest - vv) + e * (ly.e_e - vv) + g * (ly.e_i - vv)) / taum)
    ok = (t - s["last"]) >= c["ref"]
    nv = torch.where(ok, nv, vv)
    if ly.v_floor > -np.inf:
        nv = torch.clamp(nv, min=ly.v_floor)
    s["v"] = nv
    if ly.integration == "euler":
        s["ge"] = e + dt * (-e / ly.tau_e)
        s["gi"] = g + dt * (-g / ly.tau_i)
    else:
        s["ge"] = e * c["de"]
        s["gi"] = g * c["di"]


def to_torch(net: Network | NetSpec, sim: Any = None, surrogate_slope: float = 25.0,
             dtype: Any = None) -> Any:
    """A torch module running ``net`` (weights and θ from ``sim`` if given) step for step.

    ``dtype`` defaults to ``torch.float64`` (bit-identical weights and spike trains)."""
    torch = require_torch()
    spec = net if isinstance(net, NetSpec) else spec_from_network(net, sim)
    return _classes()["TorchSpikingNet"](spec, surrogate_slope,
                                         torch.float64 if dtype is None else dtype)


def to_network(module: Any, input_kind: str = "spikes") -> Network:
    """The biolearn Network of a :func:`to_torch` module, with its current (trained) weights."""
    spec = module.spec
    projs = []
    for q in spec.projections:
        w = module.weights[q.name].detach().cpu().to(dtype=module.dtype_).numpy().astype(
            np.float64)
        projs.append(ProjectionSpec(q.name, q.pre, q.post, w, q.mask, q.target, q.delay_steps))
    layers = []
    for ly in spec.layers:
        th = getattr(module, f"theta_{ly.name}").detach().cpu().numpy().astype(np.float64)
        layers.append(LayerSpec(**{**ly.__dict__, "theta": th}))
    return network_from_spec(NetSpec(spec.dt, dict(spec.inputs), layers, projs), input_kind)


# ------------------------------------------------------------------------------------------------
# snntorch Leaky stacks
# ------------------------------------------------------------------------------------------------

BIAS = "bias"


def _leaky_layers(module: Any) -> list[tuple[Any, Any]]:
    """(Linear, Leaky) pairs of a module, in registration order."""
    torch = require_torch()
    try:
        import snntorch as snn
    except ImportError:
        raise missing_extra("snntorch", "torch") from None
    mods = [m for m in module.modules() if isinstance(m, (torch.nn.Linear, snn.Leaky))]
    pairs = []
    for a, b in zip(mods[::2], mods[1::2], strict=False):
        if not (isinstance(a, torch.nn.Linear) and isinstance(b, snn.Leaky)):
            raise BiolearnError("the module is not a stack of Linear → Leaky layers",
                                "in from_snntorch", "convert a Linear/Leaky feed-forward stack")
        pairs.append((a, b))
    if not pairs or len(mods) % 2:
        raise BiolearnError("no Linear → Leaky layers found", "in from_snntorch",
                            "convert a Linear/Leaky feed-forward stack")
    return pairs


def from_snntorch(module: Any, dt: float = 1.0, input_name: str = "input",
                  names: list[str] | None = None) -> Network:
    """The biolearn network equivalent to a ``Linear → snn.Leaky(reset_mechanism="zero")`` stack.

    Mapping (module docstring): τm = dt/(1−β), euler_expsyn, τe = dt/1000, v_rest = v_reset = 0,
    v_thresh = ϑ, W/(1−β) onto ge, bias via a source ``"bias"`` firing every step. Layer k fires
    ``k`` steps later than in snntorch. ``dt`` is in ms (snntorch steps have no unit)."""
    pairs = _leaky_layers(module)
    net = Network(dt=dt)
    n_in = pairs[0][0].in_features
    net.add(SpikeSource(input_name, n_in))
    net.add(PoissonSource(BIAS, 1, rates=1000.0 / dt))  # p = rate·dt = 1: a spike every step
    names = names or [f"layer{k + 1}" for k in range(len(pairs))]
    prev = input_name
    for k, (lin, lk) in enumerate(pairs):
        if lk.reset_mechanism != "zero":
            raise BiolearnError(f"Leaky layer {k + 1} resets by '{lk.reset_mechanism}'",
                                "in from_snntorch", "use reset_mechanism='zero' (the engine "
                                "resets v to v_reset)")
        beta = float(lk.beta.detach().clamp(0, 1).reshape(-1)[0])
        if lk.beta.numel() != 1 or not 0.0 < beta < 1.0:
            raise BiolearnError("β must be one scalar in (0, 1)", f"Leaky layer {k + 1}",
                                "use a shared decay 0 < β < 1")
        thr = float(lk.threshold.detach().reshape(-1)[0])
        n = lin.out_features
        net.add(LIF(names[k], n, synapse="current", integration="euler_expsyn",
                    tau_m=dt / (1.0 - beta), tau_e=dt / 1000.0, tau_i=dt / 1000.0, v_rest=0.0,
                    v_reset=0.0, v_thresh=thr, t_ref=0.0))
        w = lin.weight.detach().double().cpu().numpy().T / (1.0 - beta)
        net.connect(connect.dense(f"{prev}_{names[k]}", prev, names[k], w, target="e"))
        if lin.bias is not None:
            b = lin.bias.detach().double().cpu().numpy()[None, :] / (1.0 - beta)
            net.connect(connect.dense(f"{BIAS}_{names[k]}", BIAS, names[k], b, target="e",
                                      delay=k * dt))  # layer k+1 runs k steps behind
        prev = names[k]
    return net


def to_snntorch(net: Network, sim: Any = None) -> Any:
    """The inverse of :func:`from_snntorch`: ``nn.Sequential`` of Linear and Leaky(zero reset).

    Requires the form :func:`from_snntorch` produces (current LIF, euler_expsyn, exp(−dt/τe) = 0,
    v_rest = v_reset = 0, t_ref = 0, θ = 0, one chain input → layer1 → …). Leaky layers are built
    with ``init_hidden=False``; call them step by step as snntorch does."""
    torch = require_torch()
    try:
        import snntorch as snn
    except ImportError:
        raise missing_extra("snntorch", "torch") from None
    spec = spec_from_network(net, sim)
    dt = spec.dt
    mods = []
    for ly in spec.layers:
        ok = (ly.synapse == "current" and ly.integration == "euler_expsyn"
              and np.exp(-dt / ly.tau_e) == 0.0 and ly.v_rest == 0.0 and ly.v_reset == 0.0
              and ly.t_ref == 0.0 and ly.i_bias == 0.0 and not np.any(ly.theta - ly.theta_offset)
              and ly.tau_m > dt and not any(np.any(np.asarray(x, float)) for x in (
                  0.0 if ly.v_init is None else ly.v_init, ly.ge_init, ly.gi_init)))
        if not ok:
            raise BiolearnError(f"population '{ly.name}' has no snntorch Leaky equivalent",
                                "in to_snntorch", "see from_snntorch for the supported form "
                                "(or use to_torch, which supports every engine LIF)")
        beta = 1.0 - dt / ly.tau_m
        inc = [q for q in spec.projections if q.post == ly.name]
        main = [q for q in inc if q.pre != BIAS]
        bias = [q for q in inc if q.pre == BIAS]
        if (len(main) != 1 or main[0].target != "e" or main[0].delay_steps
                or main[0].mask is not None):
            raise BiolearnError(f"population '{ly.name}' needs one dense delay-free input "
                                "projection onto 'e'", "in to_snntorch", "see from_snntorch")
        q = main[0]
        lin = torch.nn.Linear(q.w.shape[0], q.w.shape[1], bias=bool(bias)).double()
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(q.w.T * (1.0 - beta)))
            if bias:
                lin.bias.copy_(torch.as_tensor(bias[0].w[0] * (1.0 - beta)))
        mods += [lin, snn.Leaky(beta=beta, threshold=ly.v_thresh, reset_mechanism="zero")]
    return torch.nn.Sequential(*mods).double()


def run_snntorch_stack(model: Any, x: Any) -> list:
    """Run a Linear/Leaky stack on ``x`` ``[T, B, n_in]``; return each layer's spikes [T, B, n]."""
    torch = require_torch()
    pairs = _leaky_layers(model)
    outs = []
    cur_in = x
    with torch.no_grad():
        for lin, lk in pairs:
            cur = lin(cur_in.to(lin.weight.dtype))
            mem = torch.zeros_like(cur[0])
            spk = []
            for t in range(cur.shape[0]):
                s, mem = lk(cur[t], mem)
                spk.append(s)
            cur_in = torch.stack(spk)
            outs.append(cur_in)
    return outs
