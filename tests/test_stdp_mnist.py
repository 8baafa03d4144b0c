"""The headline recipes: each mechanism against its equation, the smoke run end to end, the spike
file, and exact resumption after an interrupt."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from mnist_data import FASHION_MNIST_ROOT, needs_fashion_mnist, needs_mnist
from mnist_data import mnist_root as _mnist_root

from biolearn.engine import LIF, Network, SpikeMonitor, SpikeSource, connect
from biolearn.rules.stdp import SymmetricSTDP

ROOT = Path(__file__).resolve().parents[1]


def _pair_change(dt_ms: float, eta: float = 0.01, inc: float = 0.1, tau: float = 20.0,
                 lr_factor: float | None = None) -> float:
    """Weight change of one pre/post pair at t_post − t_pre = dt_ms under symmetric STDP."""
    net = Network(dt=0.1)
    t_pre = 50.0
    t_post = t_pre + dt_ms
    net.add(SpikeSource("pre", 1, [0], [t_pre]))
    net.add(SpikeSource("drive", 1, [0], [t_post - 0.1]))  # forces the post spike at t_post
    net.add(LIF("post", 1, synapse="current", t_ref=1.0))
    net.connect(connect.dense("syn", "pre", "post", np.array([[0.5]]), target="v",
                              rule=SymmetricSTDP(eta=eta, tau=tau, inc=inc, w_max=10.0)))
    net.connect(connect.dense("d", "drive", "post", np.array([[100.0]]), target="v"))
    net.monitor(SpikeMonitor(["post"]))
    sim = net.compile()
    if lr_factor is not None:
        sim.scale_learning_rate("syn", lr_factor)
    out = sim.run(120.0)
    assert np.allclose(out["spikes"]["post"][0], [t_post])
    return float(sim.weights("syn")[0, 0] - 0.5)


@pytest.mark.parametrize("dt_ms", [-30.0, -7.5, -1.0, 1.0, 5.0, 12.3, 40.0])
def test_symmetric_stdp_potentiates_both_orders_with_trace_shape(dt_ms):
    # Hao et al. 2020: Δw = η·a·exp(−|Δt|/τ) whichever neuron fires first.
    expected = 0.01 * 0.1 * np.exp(-abs(dt_ms) / 20.0)
    assert _pair_change(dt_ms) == pytest.approx(expected, rel=1e-9)


def test_learning_rate_schedule_scales_the_rules_eta():
    # eta_final schedules multiply the rule's own η: the pair change scales exactly.
    expected = 0.25 * 0.01 * 0.1 * np.exp(-5.0 / 20.0)
    assert _pair_change(5.0, lr_factor=0.25) == pytest.approx(expected, rel=1e-9)
    assert _pair_change(-5.0, lr_factor=0.0) == 0.0


def test_synaptic_scaling_restores_target_sums():
    rng = np.random.default_rng(3)
    net = Network(dt=0.5)
    net.add(SpikeSource("a", 50))
    net.add(LIF("b", 7))
    net.connect(connect.dense("w", "a", "b", rng.uniform(0, 1, (50, 7))))
    sim = net.compile()
    sim.normalize("w", 78.4)
    assert np.allclose(sim.weights("w").sum(axis=0), 78.4, rtol=0, atol=1e-12)
    target = np.arange(1.0, 8.0)
    sim.normalize("w", target)
    assert np.allclose(sim.weights("w").sum(axis=0), target, rtol=0, atol=1e-12)


def test_dynamic_threshold_follows_hao_update_and_decay():
    # θ += θ₊·10/|θ − 10| per spike; dθ/dt = −θ/τθ in between (Hao et al. code).
    theta0, plus, tau = 20.0, 0.07, 1000.0
    net = Network(dt=0.5)
    net.add(SpikeSource("d", 1, [0, 0], [10.0, 60.0]))
    net.add(LIF("n", 1, synapse="current", theta_rule="hao", theta_init=theta0, theta_plus=plus,
                tau_theta=tau, theta_offset=20.0, t_ref=0.0))
    net.connect(connect.dense("w", "d", "n", np.array([[100.0]]), target="v"))
    net.monitor(SpikeMonitor())
    sim = net.compile()
    out = sim.run(100.0)
    spikes = out["spikes"]["n"][0]
    assert np.allclose(spikes, [10.5, 60.5])
    th = theta0
    t_prev = -0.5  # θ decays once in every step, the first one (t = 0) included
    for ts in spikes:
        th *= np.exp(-(ts - t_prev) / tau)
        th += plus * 10.0 / abs(th - 10.0)
        t_prev = ts
    th *= np.exp(-(100.0 - 0.5 - t_prev) / tau)  # last step run is t = 99.5 ms
    assert sim.theta[sim.slice("n")][0] == pytest.approx(th, rel=1e-9)


def _f32(x: float) -> float:
    return float(np.float32(x))


def test_float32_theta_follows_the_authors_single_precision_update():
    """theta_rule "hao_f32" is the GeNN code's θ in float32 (model.h: scalar float;
    add_model.cc: θ −= θ/τθ·dt every step, θ += θ₊·10/|θ − 10| per spike), step by step."""
    theta0, plus, tau = 20.0, 0.07, 1000.0
    net = Network(dt=0.5)
    net.add(SpikeSource("d", 1, [0, 0], [10.0, 60.0]))
    net.add(LIF("n", 1, synapse="current", theta_rule="hao_f32", theta_init=theta0,
                theta_plus=plus, tau_theta=tau, theta_offset=20.0, t_ref=0.0))
    net.connect(connect.dense("w", "d", "n", np.array([[100.0]]), target="v"))
    net.monitor(SpikeMonitor())
    sim = net.compile()
    spikes = sim.run(100.0)["spikes"]["n"][0]
    assert np.allclose(spikes, [10.5, 60.5])
    th = theta0
    for t in np.arange(0.0, 100.0, 0.5):  # decay every step; the spike's increment after it
        th = _f32(th - th / tau * 0.5)
        if t in spikes:
            th = _f32(th + plus * 10.0 / abs(th - 10.0))
    assert sim.theta[sim.slice("n")][0] == th  # bit for bit


@pytest.mark.parametrize(("tau", "per_step"), [(2e7, 0.0), (6e6, 2.0 ** -19)])
def test_float32_theta_decay_is_lost_below_half_its_spacing(tau, per_step):
    """Closed form of single-precision θ decay at dt 0.5 ms. θ in [16, 32) mV has the float32
    spacing 2^-19 mV. τθ 2e7 ms (the authors' 6400 neurons): θ·dt/τθ ≤ 0.42 spacings for every θ,
    so rounding keeps θ forever. τθ 6e6 ms (their 400): 0.70–1.4 spacings, so θ falls by exactly
    one spacing per step. The same holds in the rest that the exact reset replaces."""
    from biolearn.config import load_config
    from biolearn.models import sym_stdp
    from biolearn.protocols.image_stdp import EXC

    # inside [16, 32) mV: 1000 steps of one spacing (0.0019 mV) stay in it
    theta = np.array([16.5, 20.3, 24.9, 31.0]).astype(np.float32).astype(np.float64)
    net = Network(dt=0.5)
    net.add(LIF("n", 4, synapse="current", theta_rule="hao_f32", theta_init=20.0,
                theta_plus=0.05, tau_theta=tau, theta_offset=20.0))
    sim = net.compile()
    sim.theta[sim.slice("n")] = start = theta
    sim.run(500.0)  # 1000 silent steps
    np.testing.assert_array_equal(sim.theta[sim.slice("n")], start - 1000 * per_step)
    f64 = theta * np.exp(-500.0 / tau)
    assert np.all(np.abs(f64 - theta) > 1e-4)  # float64 would have decayed visibly

    cfg = load_config(ROOT / "configs" / "stdp_mnist_smoke.yaml",
                      ["params.n_exc=4", "params.exc.theta_precision=float32",
                       f"params.exc.tau_theta={tau}"])
    rest = sym_stdp.build(cfg.params, np.random.default_rng(0)).compile(seed=1)
    rest.theta[rest.slice(EXC)] = start
    rest.decay_theta(1000)
    np.testing.assert_array_equal(rest.theta[rest.slice(EXC)], start - 1000 * per_step)


def test_float32_is_a_function_of_the_model_language():
    """float32(x) in any definition rounds to single precision and keeps x's unit."""
    from biolearn.engine.definitions import NeuronModel
    from biolearn.engine.front import Neurons

    model = NeuronModel("f32_probe", "dv/dt = -v/tau : volt\nx : volt\n", threshold="v > 1*mV",
                        after_update="x = float32(v)", init={"v": "0.1*mV"},
                        parameters={"tau": "1e12 ms"})
    net = Network(dt=0.5)
    net.add(Neurons("p", 1, model))
    sim = net.compile()
    sim.run(1.0)
    v = sim.v[sim.slice("p")][0]
    assert v != _f32(v) and sim.x[sim.slice("p")][0] == _f32(v)


def _genn_timer_lif(exc_at: dict, inh_at: dict, n_steps: int, refrac: float, dt: float = 0.5,
                    tau_m: float = 100.0, v_rest: float = -65.0, v_reset: float = -65.0,
                    v_thresh: float = -52.0) -> list[int]:
    """Spike steps of the authors' hidden neuron (add_model.cc, LIF_Exc; θ fixed at its start,
    so θ − offset = 0), step by step as GeNN 2.2.2 runs it: the step's input is added to the
    conductances, then ``if (timer > Refrac) V += (Vrest − V + Isyn)/TV·DT``, the −100 mV floor,
    ``timer += DT``, the threshold ``V > Vthresh && timer > Refrac`` with the reset ``V = Vreset;
    timer = 0``, and last the exponential decay of the conductances (τ 1 and 2 ms)."""
    v, timer, ge, gi, spikes = -105.0, 10.0, 0.0, 0.0, []
    for k in range(n_steps):
        ge += exc_at.get(k, 0.0)
        gi += inh_at.get(k, 0.0)
        if timer > refrac:
            v += (v_rest - v + ge * (0.0 - v) + gi * (-100.0 - v)) / tau_m * dt
        v = max(v, -100.0)
        timer += dt
        if v > v_thresh and timer > refrac:
            v, timer = v_reset, 0.0
            spikes.append(k)
        ge *= np.exp(-dt / 1.0)
        gi *= np.exp(-dt / 2.0)
    return spikes


@pytest.mark.parametrize(("t_ref", "same"), [(3.0, True), (2.0, False)])
def test_the_authors_2ms_refractory_timer_is_t_ref_3ms_on_the_engine(t_ref, same):
    """The authors' neurons hold V for 5 steps after a spike (the timer test ``timer > 2`` comes
    before ``timer += 0.5``) and can fire again 6 steps (3 ms) after it. The engine holds
    ``round(t_ref/dt) − 1`` steps, so their ``Refrac 2`` is ``t_ref`` 3 ms here: with it every
    spike step equals a step-by-step emulation of their code under random excitatory and
    inhibitory input; with 2 ms it does not."""
    from biolearn.models.sym_stdp import Excitatory, hidden_neurons

    rng = np.random.default_rng(7)
    n_steps, dt = 4000, 0.5

    def pulses(n: int, low: float, high: float) -> dict:  # step → conductance jump
        steps, w = rng.choice(n_steps, n, replace=False), rng.uniform(low, high, n)
        return dict(zip(steps.tolist(), w.tolist(), strict=True))

    exc_at, inh_at = pulses(2000, 2.0, 6.0), pulses(300, 1.0, 17.0)
    want = _genn_timer_lif(exc_at, inh_at, n_steps, refrac=2.0)
    assert len(want) > 100

    net = Network(dt=dt)
    for name, at in (("e_in", exc_at), ("i_in", inh_at)):
        steps = np.array(sorted(at))
        net.add(SpikeSource(name, len(steps), np.arange(len(steps)), (steps - 1) * dt))
    # θ stays at its start (no increment, no decay), so the threshold is v_thresh as emulated
    net.add(hidden_neurons("n", 1, Excitatory(t_ref=t_ref, theta_plus=0.0,
                                              tau_theta=float("inf"))))
    for name, at, target in (("e_in", exc_at, "e"), ("i_in", inh_at, "i")):
        w = np.array([at[k] for k in sorted(at)])[:, None]
        net.connect(connect.dense(f"{name}_n", name, "n", w, target=target))
    net.monitor(SpikeMonitor(["n"]))
    sim = net.compile()
    sim.v[sim.slice("n")] = -105.0  # the authors' start, Exc_V = Vrest − 40
    got = np.round(sim.run(n_steps * dt)["spikes"]["n"][0] / dt).astype(int)
    assert (list(got) == want) is same


@pytest.mark.parametrize("frozen", [False, True])
def test_reset_between_images_decays_theta_as_the_papers_rest(frozen):
    """With the exact reset, θ decays over presentation + rest time, as in the papers' simulated
    150 ms rest; frozen at test. A blank image: no hidden spikes, so θ only decays, through 31
    presentations (intensity 2 → 32)."""
    from biolearn.config import load_config
    from biolearn.models import sym_stdp
    from biolearn.protocols.image_stdp import EXC, Presenter

    cfg = load_config(ROOT / "configs" / "stdp_mnist_smoke.yaml", ["params.n_exc=5"])
    p = cfg.params
    sim = sym_stdp.build(p, np.random.default_rng(0)).compile(seed=1)
    sim.freeze_theta(EXC, frozen)
    tr = Presenter(sim, p.presentation)
    th0 = sim.theta[sim.slice(EXC)].copy()
    tr.present(np.zeros((28, 28)))
    assert tr.presentations == 31
    pr = p.presentation
    ms = 0.0 if frozen else tr.presentations * (pr.t_present_ms + pr.t_rest_ms)
    np.testing.assert_allclose(sim.theta[sim.slice(EXC)], th0 * np.exp(-ms / p.exc.tau_theta),
                               rtol=1e-9)
    assert pr.rest == "reset" and pr.t_rest_ms == 150.0


@pytest.mark.parametrize("mode", ["relax", "simulate"])
def test_simulated_rest_is_silent_and_relax_clears_the_traces(mode):
    """A simulated rest runs with inputs and teachers silent; 'relax' then clears the traces,
    'simulate' keeps them decaying; either way v has not fully returned to rest."""
    from biolearn.config import load_config
    from biolearn.models import sym_stdp
    from biolearn.protocols.image_stdp import CLS, EXC, INPUT, Presenter

    cfg = load_config(ROOT / "configs" / "stdp_mnist_smoke.yaml",
                      ["params.n_exc=20", f"params.presentation.rest={mode}"])
    p = cfg.params
    sim = sym_stdp.build(p, np.random.default_rng(0)).compile(seed=1)
    tr = Presenter(sim, p.presentation)
    img = np.full((28, 28), 255.0)

    def teach() -> None:
        sim.set_teacher(CLS, np.where(np.arange(10) == 3, 200.0, 0.0))

    tr.present(img, teach)  # rest, then teacher on, then the image
    assert sim.spike_counts(EXC).sum() >= 5 and sim.spike_counts(CLS)[3] > 0
    traces = sim.tr_post1.copy()
    assert traces.max() > 0
    sim.silence()
    sim.reset_counts()
    sim.run(steps=tr.n_rest)
    # inputs and teacher are silent in the rest (hidden neurons may still fire on input that
    # was in flight when the image ended)
    assert sim.spike_counts(INPUT).sum() == 0 and sim.spike_counts(CLS).sum() == 0
    v = sim.v[sim.slice(EXC)]
    assert np.abs(v - p.exc.v_rest).max() > 0.5  # 150 ms is not enough to reach rest (τ 100 ms)
    if mode == "relax":
        sim.clear_traces()
        assert not sim.tr_post1.any() and not sim.tr_pre.any() and not sim.act_n.any()
    else:
        assert sim.tr_post1.max() > 0


def test_teacher_drives_only_the_labels_neuron():
    net = Network(dt=0.5)
    net.add(LIF("cls", 10))
    sim = net.compile(seed=5)
    rates = np.zeros(10)
    rates[3] = 200.0
    sim.set_teacher("cls", rates)
    sim.run(2000.0)
    counts = sim.spike_counts("cls")
    assert counts[np.arange(10) != 3].sum() == 0
    mean = 200.0 * 2.0  # Bernoulli(rate·dt) per step over 4000 steps
    sd = np.sqrt(4000 * 0.1 * 0.9)
    assert abs(counts[3] - mean) < 5 * sd


def _learned(run_dir: Path) -> dict:
    """The learned arrays of a run's weights.h5 (without its attributes)."""
    from biolearn.io.store import load_weights

    w = load_weights(run_dir / "weights.h5")
    w = w[0] if isinstance(w, tuple) else w
    return {key: np.asarray(w[key]) for key in ("input_exc", "exc_class", "theta_exc")}


def _assert_same_weights(a: Path, b: Path) -> None:
    """The learned arrays of two runs' weights.h5 are identical."""
    w_a, w_b = _learned(a), _learned(b)
    for key in w_a:
        assert np.array_equal(w_a[key], w_b[key]), key


def _tiny_config(tmp_path: Path, **over) -> object:
    from biolearn.config import load_config

    sets = [f"data.root={_mnist_root()}", "data.n_train=240", "data.n_test=60",
            "params.n_exc=30", "params.output.checkpoint_every=80",
            "params.output.spikes_test_images=10", "params.output.curve_every=60",
            "params.output.figures=false"] + [f"{k}={v}" for k, v in over.items()]
    return load_config(ROOT / "configs" / "stdp_mnist_smoke.yaml", sets)


@needs_mnist
def test_smoke_config_learns_and_writes_everything(tmp_path, monkeypatch):
    from biolearn.analysis import plots
    from biolearn.config import load_config
    from biolearn.runner import execute

    rasters = []
    draw = plots.raster
    monkeypatch.setattr(plots, "raster", lambda *a, **k: rasters.append(draw(*a, **k)) or
                        rasters[-1])
    cfg = load_config(ROOT / "configs" / "stdp_mnist_smoke.yaml", [f"data.root={_mnist_root()}"])
    res = execute(cfg, out_dir=tmp_path, quiet=True)
    # the raster shows test presentation 0 from its start (the run's clock is far past 0 by then)
    # and a row for each of the 10 class neurons
    (fig,) = rasters
    x = np.concatenate([line.get_xdata() for ax in fig.axes for line in ax.lines])
    assert x.size and 0.0 <= x.min() and x.max() <= 350.0
    assert fig.axes[-1].get_xlim() == pytest.approx((0.0, 350.0))
    (cls,) = [ax for ax in fig.axes if ax.get_ylabel() == "class"]
    assert list(cls.get_yticks()) == list(range(10))
    m = res["metrics"]
    # 1000 training images, 100 hidden neurons: far above the 10% of chance.
    assert m["test_accuracy"] > 0.35
    assert m["test_accuracy_vote"] > 0.35
    for name in ("results.json", "spikes.h5", "weights.h5", "receptive_fields.png",
                 "confusion_matrix.png", "raster.png", "accuracy_curve.png"):
        assert (tmp_path / name).exists(), name
    cm = np.array(m["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.trace() / 300 == pytest.approx(m["test_accuracy"])


@needs_mnist
def test_spike_file_matches_in_memory_counts(tmp_path):
    from biolearn.io.sonata import read_presentations, read_spikes
    from biolearn.runner import execute

    res = execute(_tiny_config(tmp_path), out_dir=tmp_path, quiet=True)
    written = res["metrics"]["spikes_written"]
    spikes = read_spikes(tmp_path / "spikes.h5")
    assert set(spikes) == {"input", "exc", "inh", "class"}
    for pop, (t, _ids) in spikes.items():
        assert len(t) == written[pop] > 0
        assert t.min() >= 0 and t.max() < 10 * 350.0
    with h5py.File(tmp_path / "spikes.h5", "r") as f:
        assert f.attrs["magic"] == 0x0A7A
    pres = read_presentations(tmp_path / "spikes.h5")
    assert len(np.asarray(pres["test"]["labels"] if "test" in pres else pres["labels"])) == 10


def _stopped_at_image_130(out: Path, monkeypatch) -> None:
    """The tiny config run into ``out`` and stopped by Ctrl-C at its 130th presentation, between
    the checkpoints at 80 and 160 images."""
    from biolearn.protocols import image_stdp
    from biolearn.runner import RunInterrupted, execute

    real = image_stdp.Presenter.present
    calls = {"n": 0}

    def flaky(self, image, before=None):
        calls["n"] += 1
        if calls["n"] == 130:
            raise KeyboardInterrupt
        return real(self, image, before)

    monkeypatch.setattr(image_stdp.Presenter, "present", flaky)
    with pytest.raises(RunInterrupted):
        execute(_tiny_config(out), out_dir=out, quiet=True)
    monkeypatch.setattr(image_stdp.Presenter, "present", real)


@needs_mnist
def test_interrupt_and_resume_gives_identical_weights(tmp_path, monkeypatch):
    from biolearn.runner import execute

    full = tmp_path / "full"
    execute(_tiny_config(full), out_dir=full, quiet=True)

    part = tmp_path / "part"
    _stopped_at_image_130(part, monkeypatch)
    execute(_tiny_config(part), out_dir=part, quiet=True, resume=True)
    _assert_same_weights(full, part)


@needs_mnist
def test_presentations_per_image_is_carried_over_a_resume_or_left_unknown(tmp_path, monkeypatch):
    """A resumed run counts the presentations before the stop too; one resumed from a checkpoint
    that never kept the count reports None rather than the part of the count it saw."""
    import json

    from biolearn.runner import execute

    full = execute(_tiny_config(tmp_path / "full"), out_dir=tmp_path / "full", quiet=True)
    want = full["metrics"]["presentations_per_image"]
    assert want >= 1.0
    got = {}
    for case in ("kept", "lost"):
        out = tmp_path / case
        _stopped_at_image_130(out, monkeypatch)
        if case == "lost":  # a checkpoint as written before the count was kept
            ckpt = out / "checkpoint.npz"
            with np.load(ckpt, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            extra = json.loads(str(arrays["_extra"]))
            del extra["pos"]["presentations"]
            arrays["_extra"] = np.array(json.dumps(extra))
            np.savez(ckpt, **arrays)
        res = execute(_tiny_config(out), out_dir=out, quiet=True, resume=True)
        got[case] = res["metrics"]["presentations_per_image"]
    assert got["kept"] == pytest.approx(want)
    assert got["lost"] is None


@needs_mnist
@pytest.mark.parametrize("workers", [1, 2])
def test_test_after_every_pass_leaves_training_unchanged(tmp_path, workers):
    """The per-pass test runs on a frozen copy: final weights are those of a run without it, and
    the test after pass 1 equals the final test of a one-pass run with the same seed."""
    from biolearn.runner import execute

    common = {"params.epochs": 2, "params.output.test_workers": workers}
    plain = execute(_tiny_config(tmp_path, **common), out_dir=tmp_path / "plain", quiet=True)
    tested = execute(_tiny_config(tmp_path, **common, **{"params.output.test_every_epoch": True}),
                     out_dir=tmp_path / "tested", quiet=True)
    one = execute(_tiny_config(tmp_path, **{"params.output.test_workers": workers}),
                  out_dir=tmp_path / "one", quiet=True)
    _assert_same_weights(tmp_path / "plain", tmp_path / "tested")
    m = tested["metrics"]
    assert m["test_accuracy"] == plain["metrics"]["test_accuracy"]
    assert plain["metrics"]["epoch_tests"] == []
    (ep,) = m["epoch_tests"]
    assert ep["epoch"] == 1 and ep["images_trained"] == 240 and ep["n_test_images"] == 60
    assert ep["test_accuracy"] == one["metrics"]["test_accuracy"]
    assert ep["test_accuracy_vote"] == pytest.approx(one["metrics"]["test_accuracy_vote"])


@needs_mnist
def test_periodic_tests_in_file_order_match_a_run_on_the_first_images(tmp_path, monkeypatch):
    """output.test_every tests a frozen copy every N images (Hao et al.'s code: every 10 000).
    In file order (presentation.order: file, as in their train.cc) the test after 100 images is
    the final test of a run trained on the first 100 images; training is unchanged by the tests;
    a run interrupted after a periodic test and resumed repeats none and gives the same tests."""
    from biolearn.runner import execute

    common = {"params.epochs": 2, "params.presentation.order": "file",
              "params.output.test_workers": 1}
    plain = execute(_tiny_config(tmp_path, **common), out_dir=tmp_path / "plain", quiet=True)
    every = {**common, "params.output.test_every": 100, "params.output.figures": "true"}
    tested = execute(_tiny_config(tmp_path, **every), out_dir=tmp_path / "tested", quiet=True)
    first = execute(_tiny_config(tmp_path, **{**common, "params.epochs": 1, "data.n_train": 100}),
                    out_dir=tmp_path / "first", quiet=True)
    _assert_same_weights(tmp_path / "plain", tmp_path / "tested")
    m = tested["metrics"]
    assert m["test_accuracy"] == plain["metrics"]["test_accuracy"]
    assert [r["images_trained"] for r in m["epoch_tests"]] == [100, 200, 300, 400]
    assert m["epoch_tests"][0]["test_accuracy"] == first["metrics"]["test_accuracy"]
    best = max([*m["epoch_tests"], m], key=lambda r: r["test_accuracy"])
    assert m["best_test"]["test_accuracy"] == best["test_accuracy"]
    assert (tmp_path / "tested" / "training_tests.png").exists()
    # θ is recorded as training left it: after 100 images that of the run trained on them, at
    # the end that of weights.h5
    assert m["epoch_tests"][0]["hidden_theta"] == first["metrics"]["hidden_theta"]
    theta = _learned(tmp_path / "tested")["theta_exc"]
    assert m["hidden_theta"]["percentiles"] == [5, 25, 50, 75, 95]
    np.testing.assert_array_equal(m["hidden_theta"]["theta_mv"],
                                  np.percentile(theta, [5, 25, 50, 75, 95]))
    assert m["hidden_theta"]["mean_mv"] == pytest.approx(theta.mean(), rel=1e-12)
    assert m["epoch_tests"][0]["hidden_theta"]["mean_mv"] < m["hidden_theta"]["mean_mv"]

    resumed = _interrupt_and_resume(tmp_path / "part", every, monkeypatch, at_call=170)
    # calls 1-100 train, 101-160 are the test at 100 (60 images), 170 is training image 110: the
    # resumed run starts from the checkpoint written after that test and repeats no test
    assert resumed["tests_run"] == 3
    assert resumed["metrics"]["epoch_tests"] == m["epoch_tests"]
    assert resumed["metrics"]["test_accuracy"] == m["test_accuracy"]


def _interrupt_and_resume(out: Path, sets: dict, monkeypatch, at_call: int) -> dict:
    """Stop a run with Ctrl-C at the ``at_call``-th presentation, resume it; count its tests."""
    from biolearn.protocols import image_stdp, trainer
    from biolearn.runner import RunInterrupted, execute

    real, real_test = image_stdp.Presenter.present, trainer.epoch_test
    calls = {"n": 0, "tests": 0}

    def flaky(self, image, before=None):
        calls["n"] += 1
        if calls["n"] == at_call:
            raise KeyboardInterrupt
        return real(self, image, before)

    def counted(*a, **k):
        calls["tests"] += 1
        return real_test(*a, **k)

    monkeypatch.setattr(image_stdp.Presenter, "present", flaky)
    with pytest.raises(RunInterrupted):
        execute(_tiny_config(out, **sets), out_dir=out, quiet=True)
    if sets.get("params.output.figures") == "true":  # the tests so far, drawn
        assert (out / "training_tests.png").exists()
    monkeypatch.setattr(image_stdp.Presenter, "present", real)
    monkeypatch.setattr(trainer, "epoch_test", counted)
    res = execute(_tiny_config(out, **sets), out_dir=out, quiet=True, resume=True)
    monkeypatch.setattr(trainer, "epoch_test", real_test)
    return {**res, "tests_run": calls["tests"]}


@needs_mnist
def test_a_resumed_run_stopped_again_still_reports_the_tests_before_the_resume(tmp_path,
                                                                               monkeypatch):
    """The partial results.json of a resumed run that is stopped before its next test keeps the
    tests made before the resume (they come back from the checkpoint), also when it is stopped
    before it has read the checkpoint."""
    from biolearn.protocols import image_stdp
    from biolearn.runner import RunInterrupted, execute

    sets = {"params.epochs": 2, "params.presentation.order": "file",
            "params.output.test_workers": 1, "params.output.test_every": 100}
    out = tmp_path / "part"
    real = image_stdp.Presenter.present

    def stop_at(n: int):
        calls = {"n": 0}

        def flaky(self, image, before=None):
            calls["n"] += 1
            if calls["n"] == n:
                raise KeyboardInterrupt
            return real(self, image, before)
        return flaky

    # calls 1-100 train, 101-160 are the test at 100, 170 is training image 110
    monkeypatch.setattr(image_stdp.Presenter, "present", stop_at(170))
    with pytest.raises(RunInterrupted):
        execute(_tiny_config(out, **sets), out_dir=out, quiet=True)
    first = json.loads((out / "results.json").read_text())["metrics"]["epoch_tests"]
    assert [r["images_trained"] for r in first] == [100]
    # resumed from the checkpoint after that test, stopped at image 120, before the next test
    monkeypatch.setattr(image_stdp.Presenter, "present", stop_at(20))
    with pytest.raises(RunInterrupted):
        execute(_tiny_config(out, **sets), out_dir=out, quiet=True, resume=True)
    again = json.loads((out / "results.json").read_text())
    assert again["status"] == "interrupted"
    assert again["metrics"].get("epoch_tests") == first
    # resumed again and stopped before the checkpoint is read (as while loading the data)
    from biolearn.protocols import trainer

    def stopped(path, sim):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "load_checkpoint", stopped)
    with pytest.raises(RunInterrupted):
        execute(_tiny_config(out, **sets), out_dir=out, quiet=True, resume=True)
    third = json.loads((out / "results.json").read_text())
    assert third["status"] == "interrupted"
    assert third["metrics"].get("epoch_tests") == first
    assert len(third["provenance"]["resumed_from"]) == 2


@needs_mnist
def test_periodic_and_per_pass_tests_in_layerwise_training_resume_exactly(tmp_path, monkeypatch):
    """Two phases of one pass over 200 images, a test every 100 images and after every pass: the
    test at the end of a pass is taken once, the run's last image gets only the final test, and
    a run interrupted after the end-of-phase test resumes without repeating a test."""
    from biolearn.runner import execute

    sets = {"params.training": "layerwise", "data.n_train": 200, "params.epochs": 1,
            "params.output.test_every": 100, "params.output.test_every_epoch": True,
            "params.output.test_workers": 1}
    full = execute(_tiny_config(tmp_path, **sets), out_dir=tmp_path / "full", quiet=True)
    tests = full["metrics"]["epoch_tests"]
    assert [(r["images_trained"], r["phase"]) for r in tests] == [
        (100, "hidden"), (200, "hidden"), (300, "class")]
    # calls: 1-100 train, 101-160 test, 161-260 train, 261-320 test at 200 (end of phase 1);
    # call 330 is image 210, in phase 2
    resumed = _interrupt_and_resume(tmp_path / "part", sets, monkeypatch, at_call=330)
    assert resumed["tests_run"] == 1  # the one at 300
    assert resumed["metrics"]["epoch_tests"] == tests
    assert resumed["metrics"]["test_accuracy"] == full["metrics"]["test_accuracy"]


@needs_mnist
def test_class_epochs_train_only_the_class_layer_on_the_frozen_hidden_layer(tmp_path):
    """The authors' released build (global.h, FIXED_HIDDEN_LAYER): more E→class passes on a
    frozen hidden layer change the class weights and nothing of the hidden layer."""
    from biolearn.runner import execute

    sets = {"params.training": "layerwise", "data.n_train": 100, "params.epochs": 1,
            "params.output.test_every_epoch": True, "params.output.test_workers": 1}
    runs = {k: execute(_tiny_config(tmp_path, **sets, **{"params.class_epochs": k}),
                       out_dir=tmp_path / str(k), quiet=True) for k in (1, 3)}
    tests = runs[3]["metrics"]["epoch_tests"]
    assert [(r["images_trained"], r["phase"], r["epoch"]) for r in tests] == [
        (100, "hidden", 1), (200, "class", 1), (300, "class", 2)]
    assert runs[3]["metrics"]["epochs_trained"] == 4
    # the one-pass run's final test is the three-pass run's test after its first class pass
    assert tests[1]["test_accuracy"] == runs[1]["metrics"]["test_accuracy"]
    w1, w3 = _learned(tmp_path / "1"), _learned(tmp_path / "3")
    for key in ("input_exc", "theta_exc"):
        assert np.array_equal(w1[key], w3[key]), key
    assert not np.array_equal(w1["exc_class"], w3["exc_class"])


@needs_mnist
def test_poisson_t_ref_gives_the_inputs_and_the_teacher_their_dead_time(tmp_path, monkeypatch):
    """params.poisson_t_ref reaches both Poisson drives of training: the input source and the
    class layer's teacher (the engine's dead time itself: tests/test_engine.py)."""
    from biolearn.engine.simulation import PI_PREF, Simulation
    from biolearn.runner import execute

    seen = []
    set_teacher = Simulation.set_teacher

    def spy(self, name, rates, t_ref=0.0):  # noqa: ANN001, ANN202
        set_teacher(self, name, rates, t_ref)
        if rates is not None:
            seen.append((t_ref, int(self.pop_i[self._pop("input"), PI_PREF]),
                         int(self.pop_i[self._pop(name), PI_PREF])))

    monkeypatch.setattr(Simulation, "set_teacher", spy)
    execute(_tiny_config(tmp_path, **{"data.n_train": 20, "data.n_test": 10,
                                      "params.poisson_t_ref": 1.0}),
            out_dir=tmp_path / "run", quiet=True)
    assert seen and set(seen) == {(1.0, 2, 2)}


@needs_mnist
def test_scale_before_test_tests_with_input_sums_at_norm_in(tmp_path):
    """The authors scale the input weights before test images too: the weights the test ran
    with (saved after it) sum to norm_in per hidden neuron; without it the last training image's
    growth is left in them."""
    from biolearn.runner import execute

    sums = {}
    for on in (False, True):
        execute(_tiny_config(tmp_path, **{"data.n_train": 40, "data.n_test": 10,
                                          "params.scale_before_test": on}),
                out_dir=tmp_path / str(on), quiet=True)
        sums[on] = _learned(tmp_path / str(on))["input_exc"].sum(axis=0)
    np.testing.assert_allclose(sums[True], 78.4, rtol=1e-12)
    assert np.abs(sums[False] - 78.4).max() > 1e-6


def test_class_epochs_needs_layerwise_training(tmp_path):
    """Joint training has no E→class phase whose passes class_epochs could set: refused."""
    from biolearn.errors import BiolearnError

    with pytest.raises(BiolearnError, match="class_epochs"):
        _tiny_config(tmp_path, **{"params.class_epochs": 2})


def test_the_authors_read_out_calls_a_silent_class_layer_zero():
    """Hao et al.'s evaluation.cc takes the first maximum: ties go to the lower class and an image
    with no class spike is a 0; biolearn's own read-out calls it silent (−1)."""
    from biolearn.analysis import readout

    counts = np.array([[0, 0, 0], [1, 3, 3], [0, 0, 2], [5, 5, 0]])
    assert readout.argmax_first(counts).tolist() == [0, 1, 2, 0]
    assert readout.argmax_or_silent(counts).tolist() == [-1, 1, 2, 0]


@needs_mnist
def test_pixel_mean_scales_every_presented_image(tmp_path, monkeypatch):
    """presentation.pixel_mean (the authors' Fashion-MNIST preprocessing) reaches the encoder:
    every training and test image the network sees is the scaled one."""
    from biolearn.protocols import image_stdp
    from biolearn.runner import execute

    seen = []
    real = image_stdp.Presenter.present

    def spy(self, image, *a, **k):
        seen.append(float(np.asarray(image, np.float64).mean()))
        return real(self, image, *a, **k)

    monkeypatch.setattr(image_stdp.Presenter, "present", spy)
    cfg = _tiny_config(tmp_path, **{"data.n_train": 20, "data.n_test": 10,
                                    "params.presentation.pixel_mean": 30.0})
    execute(cfg, out_dir=tmp_path, quiet=True)
    from biolearn.data import load_mnist, scale_to_mean

    x_tr, _, x_te, _ = load_mnist(_mnist_root(), n_train=20, n_test=10)
    raw = np.concatenate([x_tr, x_te]).reshape(30, -1).astype(np.float64).mean(1)
    scaled = scale_to_mean(np.concatenate([x_tr, x_te]), 30.0).reshape(30, -1).mean(1)
    assert len(seen) >= 30 and max(seen) < 30.05
    # each presented image is a scaled one (bright MNIST digits saturate below 30)
    assert all(np.isclose(scaled, m, atol=1e-9).any() for m in seen)
    assert not all(np.isclose(raw, m, atol=1e-9).any() for m in seen)


def test_race_fraction_sets_the_warp_bounded_increments_of_both_rules():
    import numpy as np

    from biolearn.models import sym_stdp

    p = sym_stdp.Params(n_exc=400)
    p.plasticity.race_fraction = 1.0
    net = sym_stdp.build(p, np.random.default_rng(0))
    rules = {pr.name: pr.rule.values() for pr in net.projections if pr.rule is not None}
    assert rules["input_exc"]["inc"] == pytest.approx(1.3)       # 400 threads: 13 warps
    assert rules["input_exc"]["inc_post"] == pytest.approx(2.5)  # 784 threads: 25 warps
    assert rules["exc_class"]["inc"] == pytest.approx(0.1)       # 10 threads: one warp
    assert rules["exc_class"]["inc_post"] == pytest.approx(1.3)


@needs_fashion_mnist
@pytest.mark.slow
def test_fashion_mnist_at_a_quarter_of_the_authors_input_rate_holds_over_passes(tmp_path):
    """The smallest setting that shows the authors' Fashion-MNIST η_in (0.02) failing over passes
    (docs/sym_stdp.md): their 400-neuron settings at 100 hidden neurons, 20 000 training images,
    three passes, a test on 2000 test images every 5000. With a quarter of their η_in the
    accuracy holds over the passes and no test drops far. On the kept runs with their η_in
    (results/stdp_fashion_mnist_100_passes, seeds 0-2) the last two checks fail for every seed
    (steps of 19-34 points, tests down to 33-47 %), the first for two; with a quarter the
    margins are 1.8 / 3.2 / 3.4 points (seed 0, the run this test repeats)."""
    from biolearn.config import load_config
    from biolearn.runner import execute

    sets = [f"data.root={FASHION_MNIST_ROOT}", "data.n_train=20000", "data.n_test=2000",
            "params.n_exc=100", "params.epochs=3", "params.plasticity.eta_in=0.005",
            "params.output.test_every=5000", "params.output.test_workers=1",
            "params.output.figures=false", "params.output.spikes_test_images=0"]
    cfg = load_config(ROOT / "configs" / "stdp_fashion_mnist.yaml", sets)
    m = execute(cfg, out_dir=tmp_path, quiet=True)["metrics"]
    tests = [t["test_accuracy"] for t in m["epoch_tests"]] + [m["test_accuracy"]]
    assert len(tests) == 12
    first, third = np.mean(tests[:4]), np.mean(tests[8:])
    assert third >= first - 0.01, tests
    assert np.abs(np.diff(tests[1:])).max() < 0.08, tests
    assert min(tests[1:]) > 0.66, tests


_CLOCKS = ("time_s", "_per_s", "peak_rss_mb")


def _without_clocks(m: object) -> object:
    """Metrics without wall-clock times, speeds and memory (they differ between equal runs)."""
    if isinstance(m, dict):
        return {k: _without_clocks(v) for k, v in m.items() if not k.endswith(_CLOCKS)}
    if isinstance(m, list):
        return [_without_clocks(v) for v in m]
    return m


@needs_mnist
@pytest.mark.parametrize("tests", [{"params.output.test_every_epoch": True},
                                   {"params.output.test_every": 120}])
def test_a_finished_run_resumed_with_more_passes_equals_a_run_given_them_at_the_start(
        tmp_path, tests):
    """--resume with a larger params.epochs continues a finished run from its end-of-training
    checkpoint: the same weights, tests (the end of the first run's last pass gets the test a
    longer run takes there) and accuracy as the longer run, and presentations counted over both
    parts. Fewer passes, and more under an η schedule, are refused."""
    from biolearn.errors import BiolearnError
    from biolearn.runner import execute

    sets = {"params.output.test_workers": 1, "data.n_train": 120, **tests}
    longer = execute(_tiny_config(tmp_path, **sets, **{"params.epochs": 2}),
                     out_dir=tmp_path / "two", quiet=True)
    out = tmp_path / "one"
    first = execute(_tiny_config(tmp_path, **sets), out_dir=out, quiet=True)
    assert first["metrics"]["epoch_tests"] == []
    more = execute(_tiny_config(tmp_path, **sets, **{"params.epochs": 2}), out_dir=out,
                   quiet=True, resume=True)
    assert more["status"] == "completed"
    assert [t["images_trained"] for t in more["metrics"]["epoch_tests"]] == [120]
    files = set(more["metrics"].pop("files"))
    assert files == set(longer["metrics"].pop("files")) and "results.json" in files
    assert _without_clocks(more["metrics"]) == _without_clocks(longer["metrics"])
    _assert_same_weights(tmp_path / "two", out)
    (part,) = more["provenance"]["resumed_from"]
    assert part["status"] == "completed"
    assert part["test_accuracy"] == first["metrics"]["test_accuracy"]
    with pytest.raises(BiolearnError, match="can add passes, not take them away"):
        execute(_tiny_config(tmp_path, **sets), out_dir=out, quiet=True, resume=True)
    # a checkpoint of an earlier version, without the passes it was written for
    from biolearn.protocols.checkpoint import saved_extra

    ckpt = out / "checkpoint.npz"
    with np.load(ckpt) as z:
        arrays = dict(z)
    extra = saved_extra(ckpt)
    del extra["phase_epochs"]
    np.savez(ckpt, **{**arrays, "_extra": np.array(json.dumps(extra))})
    with pytest.raises(BiolearnError, match="does not record its passes"):
        execute(_tiny_config(tmp_path, **sets, **{"params.epochs": 3}), out_dir=out,
                quiet=True, resume=True)
    sched = {**sets, "params.plasticity.eta_final": 0.5}
    execute(_tiny_config(tmp_path, **sched), out_dir=tmp_path / "s", quiet=True)
    with pytest.raises(BiolearnError, match="config differs.*η falls over the passes"):
        execute(_tiny_config(tmp_path, **sched, **{"params.epochs": 2}),
                out_dir=tmp_path / "s", quiet=True, resume=True)


@needs_mnist
@pytest.mark.parametrize("case", ["layerwise", "extension stopped", "stopped at the end"])
def test_more_passes_in_the_other_ways_a_run_can_get_them(tmp_path, monkeypatch, case):
    """More E→class passes of a layerwise run; an extension stopped in its first test and
    resumed again (its partial results.json shows none of the finished run's final metrics); a
    run stopped while writing its end-of-training checkpoint, right after one written at the
    end of its last pass. Each equals the run given the passes from the start."""
    from biolearn.protocols import trainer
    from biolearn.runner import RunInterrupted, execute

    sets = {"params.output.test_workers": 1, "data.n_train": 120, "params.output.test_every": 120,
            "params.output.checkpoint_every": 60}
    key, more = "params.epochs", 2
    if case == "layerwise":
        sets |= {"params.training": "layerwise", "params.output.test_every_epoch": True}
        key = "params.class_epochs"
    sets[key] = 1
    longer = execute(_tiny_config(tmp_path, **{**sets, key: more}), out_dir=tmp_path / "two",
                     quiet=True)
    out = tmp_path / "one"
    if case == "stopped at the end":
        real = trainer.save_checkpoint

        def stop_at_the_end(path, sim, extra):
            if extra["pos"]["phase"] == 1:  # the end-of-training checkpoint
                raise KeyboardInterrupt
            real(path, sim, extra)

        monkeypatch.setattr(trainer, "save_checkpoint", stop_at_the_end)
        with pytest.raises(RunInterrupted):
            execute(_tiny_config(tmp_path, **sets), out_dir=out, quiet=True)
        monkeypatch.setattr(trainer, "save_checkpoint", real)
    else:
        execute(_tiny_config(tmp_path, **sets), out_dir=out, quiet=True)
    if case == "extension stopped":
        real_test = trainer.epoch_test

        def stopped(*a, **k):
            raise KeyboardInterrupt

        monkeypatch.setattr(trainer, "epoch_test", stopped)
        with pytest.raises(RunInterrupted):
            execute(_tiny_config(tmp_path, **{**sets, key: more}), out_dir=out, quiet=True,
                    resume=True)
        monkeypatch.setattr(trainer, "epoch_test", real_test)
        partial = json.loads((out / "results.json").read_text())
        assert partial["status"] == "interrupted"
        assert "test_accuracy" not in partial["metrics"]
    res = execute(_tiny_config(tmp_path, **{**sets, key: more}), out_dir=out, quiet=True,
                  resume=True)
    res["metrics"].pop("files"), longer["metrics"].pop("files")
    assert _without_clocks(res["metrics"]) == _without_clocks(longer["metrics"])
    _assert_same_weights(tmp_path / "two", out)
