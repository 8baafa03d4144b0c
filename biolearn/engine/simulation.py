"""Compiled network: flat arrays plus the controls used between presentations.

:class:`Simulation` owns every state array; :meth:`Simulation.run` hands them to the generated
kernel ``run_steps`` (one thread) or to ``run_steps_mt`` on each of ``threads`` threads. Between
runs (image presentations) the state can be reset, input rates swapped, teachers switched and
weights rescaled without recompiling and without per-step Python work.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from biolearn.engine import kernels as K
from biolearn.engine.codegen import kernel_module
from biolearn.engine.definitions import neuron_ir, synapse_ir, value_of
from biolearn.engine.front import (
    KIND_NEURONS,
    KIND_POISSON,
    KIND_SPIKES,
    Network,
    SpikeMonitor,
    SpikeSource,
    StateMonitor,
    check_dead_time,
    dead_steps,
)
from biolearn.errors import BiolearnError

_TABLE = 4096  # length of the lazy-decay lookup tables (steps)
NEVER = -(2**62)
_ALIGN = 8  # thread parts of a population start at multiples of this (vector width)
_MIN_PART = 256  # with a thread count asked for: populations under threads × this stay whole
# With the default thread count, only populations of at least threads × this are split: below it
# a step is so little work (~10 µs at a few thousand neurons) that barriers cost more than they
# save (measured: Hao et al.'s 1600-hidden network trains at 140 img/s on one thread, 109 on two;
# the 10k-100k fixed in-degree networks run 1.5-2.0x faster on two; docs/engine.md "Threads").
_AUTO_MIN_PART = 4096
_DEFAULT_THREADS: int | None = None


def set_default_threads(n: int | None) -> None:
    """Set the number of kernel threads of simulations compiled from now on in this process
    (``None``: back to the default of :func:`threads`)."""
    global _DEFAULT_THREADS
    if n is not None and int(n) < 1:
        raise BiolearnError(f"threads = {n} is not positive", "in set_default_threads",
                            "use 1 or more")
    _DEFAULT_THREADS = None if n is None else int(n)


def default_threads() -> int:
    """Kernel threads of a new simulation: :func:`set_default_threads`, else
    ``BIOLEARN_THREADS``, else ``NUMBA_NUM_THREADS`` (a sweep sets it to one per run), else every
    core this process may use."""
    if _DEFAULT_THREADS is not None:
        return _DEFAULT_THREADS
    for var in ("BIOLEARN_THREADS", "NUMBA_NUM_THREADS"):
        v = os.environ.get(var, "").strip()
        if v:
            try:
                n = int(v)
            except ValueError:
                raise BiolearnError(f"{var}={v!r} is not an integer", "in the environment",
                                    f"set {var} to a thread count, e.g. 2") from None
            if n < 1:
                raise BiolearnError(f"{var}={n} is not positive", "in the environment",
                                    f"set {var} to 1 or more")
            return n
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_chosen() -> bool:
    """Whether a thread count was asked for (:func:`set_default_threads` or the environment)
    rather than taken from the number of cores."""
    return _DEFAULT_THREADS is not None or any(
        os.environ.get(v, "").strip() for v in ("BIOLEARN_THREADS", "NUMBA_NUM_THREADS"))
# Columns of the per-population integer table ``pop_i``: refractory steps, recorded, teacher
# mode, and the dead time (steps) of Poisson firing (sources and teachers).
PI_REF, PI_REC, PI_TEACH, PI_PREF = 0, 1, 2, 3


@dataclass
class SpikeRecord:
    """Spikes recorded by one :meth:`Simulation.run` call: step index and global neuron id."""

    steps: np.ndarray
    gids: np.ndarray


class Simulation:
    """A compiled :class:`Network`. Create with ``network.compile(seed)``.

    State lives in flat arrays: ``S[slot, neuron]`` holds every neuron variable (one slot per
    variable name in the network; ``sim.v``, ``sim.theta``, … are views of a slot), synapses are
    CSR rows, traces are per neuron with the step of their last update."""

    def __init__(self, net: Network, seed: int = 0, target: str = "numba_cpu",
                 threads: int | None = None):
        self.net, self.dt = net, float(net.dt)
        self.rng = np.random.default_rng(seed)
        self.t = 0  # next step to run
        pops = net.populations
        if not pops:
            raise BiolearnError("the network has no populations", "in Network.compile",
                                "add populations before compiling")
        self.pop_index = {p.name: k for k, p in enumerate(pops)}
        sizes = np.array([p.n for p in pops], np.int64)
        self.pop_lo = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.pop_hi = (self.pop_lo + sizes).astype(np.int64)
        self.pop_kind = np.array([p.kind for p in pops], np.int64)
        n = int(sizes.sum())
        self.n = n
        # neuron models of the network, and one state slot per variable name
        self.models: list = []
        self.slots: dict[str, int] = {}
        self.pop_model = np.full(len(pops), -1, np.int64)
        self.pop_values: dict[int, dict] = {}
        for k, p in enumerate(pops):
            if p.kind != KIND_NEURONS:
                continue
            ir = neuron_ir(p.definition)
            if ir not in self.models:
                self.models.append(ir)
            self.pop_model[k] = self.models.index(ir)
            for v in ir.variables:
                self.slots.setdefault(v, len(self.slots))
            self.pop_values[k] = p.values()
        n_par = max([len(ir.params) for ir in self.models] + [1])
        self.pop_i = np.zeros((len(pops), 4), np.int64)
        self.pop_f = np.zeros((len(pops), n_par), np.float64)
        self.hold = np.zeros((len(pops), max(len(self.slots), 1)), np.int64)
        self.frozen_vals = np.zeros((len(pops), n_par))
        self.S = np.zeros((max(len(self.slots), 1), n))
        self.last_spike = np.full(n, NEVER, np.int64)
        self.next_spike = np.full(n, -1, np.int64)
        self.rate = np.zeros(n)
        self.counts = np.zeros(n, np.int64)
        self.frozen_on = np.zeros(len(pops), np.int64)  # freeze_theta: saved parameter values
        sg_t, sg_g = [], []
        for k, p in enumerate(pops):
            lo = self.pop_lo[k]
            if p.kind == KIND_NEURONS:
                self._compile_neurons(k, p)
            elif p.kind == KIND_POISSON:
                self.pop_i[k, PI_PREF] = p.dead_steps(self.dt)
                self.set_rates(p.name, p.rates)
            elif isinstance(p, SpikeSource):
                steps = np.round(np.asarray(p.times, float) / self.dt).astype(np.int64)
                sg_t.append(steps)
                sg_g.append(np.asarray(p.indices, np.int64) + lo)
        if sg_t:
            st, sgid = np.concatenate(sg_t), np.concatenate(sg_g)
            order = np.lexsort((sgid, st))
            self.sg_step, self.sg_gid = st[order], sgid[order]
            self._sg_repeats = bool(np.any((np.diff(self.sg_step) == 0)
                                           & (np.diff(self.sg_gid) == 0)))
        else:
            self.sg_step, self.sg_gid = np.zeros(0, np.int64), np.zeros(0, np.int64)
            self._sg_repeats = False
        self.sg_ptr = np.zeros(1, np.int64)
        self._compile_projections(net)
        self._compile_monitors(net)
        self.kernels = kernel_module(self.models, self.rules, self.slots, target)
        self.threads = 1
        self._pool: tuple[int, ThreadPoolExecutor] | None = None
        self._bar = np.zeros(3, np.int64)  # threaded loop's barrier: count, generation, sleepers
        self._stop = np.zeros(1, np.int64)
        self._compiled_mt = False
        self.set_threads(default_threads() if threads is None else threads,
                         auto=threads is None and not threads_chosen())

    # ------------------------------------------------------------------ compilation
    def _compile_neurons(self, k: int, p: Any) -> None:
        ir = self.models[self.pop_model[k]]
        vals = self.pop_values[k]
        self.pop_f[k, :len(ir.params)] = [vals[q] for q in ir.param_names]
        where = f"in population '{p.name}'"
        self.pop_i[k, PI_REF] = self.refractory_steps(ir, vals, self.dt, p.name)
        self._check_constants(ir, vals, p.name)
        for v in ir.held:
            self.hold[k, self.slots[v]] = 1
        lo, hi = self.pop_lo[k], self.pop_hi[k]
        for v, x in p.initial().items():
            self.S[self.slots[v], lo:hi] = value_of(x, vals, f"{where}.init['{v}']")

    def _check_constants(self, ir: Any, vals: dict, pop: str) -> None:
        """The integrator's loop-invariant factors must be finite for finite parameters (an
        exact solution divides by differences of time constants, e.g. τm − τs)."""
        env = {"__builtins__": {}, "_inf": np.inf, "dt": self.dt, "t": 0.0, **vals}
        import math

        env.update({f: getattr(math, f) for f in ("exp", "log", "sqrt", "sin", "cos", "tanh")})
        from biolearn.engine.definitions import identifiers

        with np.errstate(all="ignore"):
            for var, expr in ir.scalar:
                try:
                    env[var] = float(eval(expr, env))  # noqa: S307 - generated expression
                except (ZeroDivisionError, OverflowError):
                    env[var] = np.nan
                except Exception:  # noqa: BLE001 - functions the check does not evaluate
                    return
                if "_inf" in identifiers(expr):  # an explicit infinity (an open bound)
                    continue
                inputs = [env[n] for n in identifiers(expr) if n in env
                          and isinstance(env[n], float)]
                if not np.isfinite(env[var]) and all(np.isfinite(inputs)):
                    raise BiolearnError(
                        f"the '{ir.model.method}' update of {ir.model.name} is not finite for "
                        f"these parameters ({expr} = {env[var]})", f"in population '{pop}'",
                        "make the time constants differ or use method 'euler'")

    @staticmethod
    def refractory_steps(ir: Any, values: dict, dt: float, pop: str) -> int:
        """The model's refractory period (a parameter name or a duration) in whole steps."""
        from biolearn.engine.units import to_value, unit_dim

        ref = ir.refractory
        if isinstance(ref, str) and ref in values:
            ref_ms = values[ref]
        else:
            where = f"in population '{pop}'"
            ref_ms = float(to_value(ref, unit_dim("ms"), where)) if ref else 0.0
        return int(np.round(ref_ms / dt))

    def _compile_projections(self, net: Network) -> None:
        dt = self.dt
        projs = net.projections
        self.proj_index = {q.name: k for k, q in enumerate(projs)}
        nq = len(projs)
        self.rules: list = []
        specs = [q.rule_spec() for q in projs]
        for sp in specs:
            if sp is not None and synapse_ir(sp[0]) not in self.rules:
                self.rules.append(synapse_ir(sp[0]))
        n_par = max([len(r.params) for r in self.rules] + [1])
        n_pre_tr = max([len(r.pre_traces) for r in self.rules] + [1])
        n_post_tr = max([len(r.post_traces) for r in self.rules] + [1])
        n_tr = max([len(r.traces) for r in self.rules] + [1])
        n_x = max([len(r.syn_vars) + len(r.syn_traces) for r in self.rules] + [0])
        self.pr_pre = np.zeros(nq, np.int64)
        self.pr_post = np.zeros(nq, np.int64)
        self.pr_slot = np.zeros(nq, np.int64)
        self.pr_delay = np.zeros(nq, np.int64)
        self.pr_rule = np.zeros(nq, np.int64)
        self.pr_on = np.ones(nq, np.int64)
        self.pr_par = np.zeros((nq, n_par))
        self.pr_dense = np.zeros(nq, np.bool_)  # rows hold every post neuron in order
        self.pr_npre_tr = np.zeros(nq, np.int64)
        self.pr_npost_tr = np.zeros(nq, np.int64)
        self.pr_pre_in_post = np.zeros(nq, np.int64)  # on_post reads pre traces
        self.pr_post_in_pre = np.zeros(nq, np.int64)  # on_pre reads post traces
        self.pr_active = np.zeros(nq, np.int64)  # the few-active-posts path applies
        self.dec_tab = np.ones((max(nq, 1), n_tr, _TABLE))
        self.tau_s = np.full((max(nq, 1), n_tr), np.inf)
        rows, cols, syn_pre, syn_post, syn_w, syn_delay, csc = [], [], [], [], [], [], []
        rp_off, cp_off, tp_off, to_off = [], [], [], []
        self.syn_off = np.zeros(nq + 1, np.int64)
        s_base = r_base = tp = to = 0
        max_delay = 0
        het_slots: set[int] = set()
        for k, q in enumerate(projs):
            a, b = self.pop_index[q.pre], self.pop_index[q.post]
            n_pre, n_post = net.populations[a].n, net.populations[b].n
            self.pr_pre[k], self.pr_post[k] = a, b
            self.pr_slot[k] = self.slots[q.target_var]
            d = np.broadcast_to(np.round(np.asarray(q.delay, float) / dt).astype(np.int64),
                                q.i.shape)
            if len(d) and d.min() < 0:
                raise BiolearnError("negative delay", f"in projection '{q.name}'",
                                    "use delays ≥ 0 ms")
            homog = len(d) == 0 or bool(np.all(d == d[0]))
            max_delay = max(max_delay, int(d.max()) if len(d) else 0)
            if specs[k] is not None:
                if not homog:
                    raise BiolearnError("a plastic projection needs one delay for all synapses",
                                        f"in projection '{q.name}'",
                                        "give a scalar delay or drop the rule")
                ir = synapse_ir(specs[k][0])
                self.pr_rule[k] = self.rules.index(ir) + 1
                self.pr_par[k, :len(ir.params)] = [specs[k][1][p] for p in ir.param_names]
                self.pr_npre_tr[k], self.pr_npost_tr[k] = len(ir.pre_traces), len(ir.post_traces)
                self.pr_pre_in_post[k] = int(ir.reads_pre_in_post)
                self.pr_post_in_pre[k] = int(ir.reads_post_in_pre)
                self.pr_active[k] = int(ir.clip_when_silent is not None)
                steps = np.arange(_TABLE)
                for c, tr in enumerate(ir.traces):
                    from biolearn.engine.definitions import render

                    rate = float(eval(render(ir.rates_raw[tr], set(specs[k][1])),  # noqa: S307
                                      {"__builtins__": {}, "_inf": np.inf}, dict(specs[k][1])))
                    self.tau_s[k, c] = 1.0 / (rate * dt) if rate > 0 else np.inf
                    self.dec_tab[k, c] = np.exp(-steps * dt * rate)
            self.pr_delay[k] = (int(d[0]) if len(d) else 0) if homog else -1
            if not homog:
                het_slots.add(int(self.pr_slot[k]))
            order = np.lexsort((q.j, q.i))  # CSR: by pre, then post
            ii, jj = q.i[order], q.j[order]
            self.pr_dense[k] = len(jj) == n_pre * n_post and bool(
                np.array_equal(jj.reshape(n_pre, n_post) if n_pre else jj,
                               np.broadcast_to(np.arange(n_post), (n_pre, n_post))))
            syn_pre.append(ii)
            syn_post.append(jj)
            syn_w.append(q.w[order])
            syn_delay.append(d[order])
            q._order = order  # maps our storage back to the user's synapse order
            width = max(n_pre, n_post) + 1  # pad both pointer blocks to one shared offset
            rp = np.searchsorted(ii, np.arange(width)) + s_base
            rows.append(rp)
            corder = np.argsort(jj, kind="stable")
            csc.append(corder + s_base)
            cols.append(np.searchsorted(jj[corder], np.arange(width)) + s_base)
            rp_off.append(r_base)
            cp_off.append(r_base)  # one (n_pre+1)-row and one (n_post+1)-column pointer block
            tp_off.append(tp)
            to_off.append(to)
            r_base += max(n_pre, n_post) + 1
            s_base += len(ii)
            tp += n_pre
            to += n_post
            self.syn_off[k + 1] = s_base
        self.pr_par0 = self.pr_par.copy()  # the rules' own parameters (learning-rate schedules)
        self.rule_specs = specs

        def cat(xs: list, dtype: Any) -> np.ndarray:
            return np.concatenate(xs).astype(dtype) if xs else np.zeros(0, dtype)

        self.row_ptr = cat(rows, np.int64)
        self.col_ptr = cat(cols, np.int64)
        # unsigned indices: the kernels index with them without negative-index checks
        self.csc_syn = cat(csc, np.uint64)
        self.syn_pre = cat(syn_pre, np.uint32)
        self.syn_post = cat(syn_post, np.uint32)
        self.syn_w = cat(syn_w, np.float64)
        self.syn_delay = cat(syn_delay, np.int64)
        self.syn_x = np.zeros((n_x, s_base) if n_x else (1, 1))
        self.syn_t = np.zeros(s_base if n_x else 1, np.int64)
        self.rp_off = np.array(rp_off, np.int64)
        self.cp_off = np.array(cp_off, np.int64)
        self.tp_off = np.array(tp_off, np.int64)
        self.to_off = np.array(to_off, np.int64)
        self.trp = np.zeros((n_pre_tr, tp))
        self.trp_t = np.zeros(tp, np.int64)
        self.tro = np.zeros((n_post_tr, to))
        self.tro_t = np.zeros(to, np.int64)
        self.xpr = np.zeros((n_pre_tr, tp))  # per-step caches of lazily decayed traces
        self.xpo = np.zeros((n_post_tr, to))
        self.cache_t = np.full((max(nq, 1), 2), -1, np.int64)
        # posts (local index, per projection segment of to_off) whose stored trace is nonzero:
        # a pre spike's update only touches these (kernels: mode 2)
        self.act_idx = np.zeros(to, np.int64)
        self.act_n = np.zeros(max(nq, 1), np.int64)
        # a ring of max_delay + 2 steps: threads still reading step t's arrivals never meet a
        # thread already writing step t + 1; columns past n hold spike-generator spikes
        L = max_delay + 2
        sg_cap = int(np.unique(self.sg_step, return_counts=True)[1].max()) if len(
            self.sg_step) else 0
        self.hist = np.zeros((L, self.n + sg_cap), np.int64)
        self.hist_n = np.zeros(L, np.int64)
        self.het_slots = np.array(sorted(het_slots), np.int64)
        self.acc = np.zeros((L, self.S.shape[0], self.n) if het_slots else (1, 1, 1))

    # ------------------------------------------------------------------ threads
    def set_threads(self, n: int, auto: bool = False) -> None:
        """Run the kernels on ``n`` threads from the next :meth:`run` on. Spikes, weights and
        states do not depend on ``n`` (each sum is taken in the one-thread order). ``auto``
        (the default count, every core): split only populations large enough to gain."""
        self._min_part = _AUTO_MIN_PART if auto else _MIN_PART
        if int(n) != n or n < 1:
            raise BiolearnError(f"threads = {n} is not a positive integer", "in Simulation",
                                "use 1 or more threads")
        flat = self._hist_flat()
        self.threads = int(n)
        self._partition()
        # the threaded loop only where some population is split between threads, and not when
        # a spike source repeats a neuron within a step while rules run: the one-thread loop
        # updates that neuron's pre traces between the two arrivals
        self._mt = (self.threads > 1 and bool((self.part_hi[:, 1:] > self.part_lo[:, 1:]).any())
                    and not (self._sg_repeats and bool(self.pr_rule.any())))
        self._hist_load(*flat)
        self._rebuild_active()

    def _partition(self) -> None:
        """Which thread owns which neurons, and where each row's part for each thread begins.

        A population of neurons is cut into ``threads`` contiguous parts at multiples of
        ``_ALIGN``; sources, populations drawing random numbers and small populations belong to
        thread 0 whole (so the one generator is drawn from in the serial order)."""
        T = self.threads
        P = len(self.pop_lo)
        self.part_lo = np.repeat(self.pop_hi[:, None], T, axis=1).astype(np.int64)
        self.part_hi = self.part_lo.copy()
        for p in range(P):
            lo, hi = int(self.pop_lo[p]), int(self.pop_hi[p])
            whole = (T == 1 or self.pop_kind[p] != KIND_NEURONS
                     or hi - lo < getattr(self, "_min_part", _MIN_PART) * T
                     or self.models[self.pop_model[p]].uses_rand)
            if whole:
                self.part_lo[p, 0], self.part_hi[p, 0] = lo, hi
                continue
            b = lo + (np.arange(T + 1) * (hi - lo) // T) // _ALIGN * _ALIGN
            b[-1] = hi
            self.part_lo[p], self.part_hi[p] = b[:-1], b[1:]
        self.seg_lo = np.append(self.part_lo.ravel(), self.n).astype(np.int64)
        self.segn = np.zeros((self.hist.shape[0], P * T + 1), np.int64)
        self.act_nt = np.zeros((max(len(self.pr_pre), 1), T), np.int64)
        self.row_split = np.zeros((max(len(self.row_ptr), 1), T + 1), np.int64)
        for q in range(len(self.pr_pre)):
            a, b = int(self.syn_off[q]), int(self.syn_off[q + 1])
            pp, po = self.pr_pre[q], self.pr_post[q]
            n_pre = int(self.pop_hi[pp] - self.pop_lo[pp])
            n_post = int(self.pop_hi[po] - self.pop_lo[po])
            key = (self.syn_pre[a:b].astype(np.int64) * (n_post + 1)
                   + self.syn_post[a:b].astype(np.int64))  # sorted: CSR by pre, then post
            bounds = np.append(self.part_lo[po] - self.pop_lo[po], n_post)
            query = np.arange(n_pre)[:, None] * (n_post + 1) + bounds[None, :]
            r0 = int(self.rp_off[q])
            self.row_split[r0:r0 + n_pre] = np.searchsorted(key, query) + a
        owner = np.zeros(self.n, np.int64)
        for p in range(P):
            for k in range(T):
                owner[self.part_lo[p, k]:self.part_hi[p, k]] = k
        self.sm_own = owner[self.sm_gid] if len(self.sm_gid) else np.zeros(0, np.int64)

    def _segment(self, n: int) -> int:
        """The spike segment a spike of neuron ``n`` is kept in (threaded layout)."""
        p = int(np.searchsorted(self.pop_hi, n, side="right"))
        T = self.threads
        if self.pop_kind[p] == KIND_SPIKES:
            return len(self.pop_lo) * T
        k = int(np.searchsorted(self.part_hi[p], n, side="right"))
        return p * T + k

    def _hist_flat(self) -> tuple[np.ndarray, np.ndarray]:
        """Spikes in flight as one list per ring slot in the serial order (copies)."""
        if not getattr(self, "_mt", False):
            return self.hist.copy(), self.hist_n.copy()
        hist = np.zeros_like(self.hist)
        hist_n = np.zeros_like(self.hist_n)
        for slot in range(self.hist.shape[0]):
            parts = [self.hist[slot, lo:lo + c] for lo, c in zip(self.seg_lo, self.segn[slot],
                                                                 strict=True) if c]
            if parts:
                x = np.concatenate(parts)
                hist[slot, :len(x)] = x
                hist_n[slot] = len(x)
        return hist, hist_n

    def _hist_load(self, hist: np.ndarray, hist_n: np.ndarray) -> None:
        """Set the spikes in flight from serial-order lists, in this thread count's layout."""
        self.hist[...] = hist
        self.hist_n[...] = hist_n
        if not self._mt:
            return
        self.segn[:] = 0
        for slot in range(hist.shape[0]):
            for n in hist[slot, :hist_n[slot]]:
                g = self._segment(int(n))
                self.hist[slot, self.seg_lo[g] + self.segn[slot, g]] = n
                self.segn[slot, g] += 1

    # trace views under the names of the first engine version (tests, tools)
    @property
    def tr_pre(self) -> np.ndarray:
        return self.trp[0]

    @property
    def tr_post1(self) -> np.ndarray:
        return self.tro[0]

    def __getattr__(self, name: str) -> np.ndarray:
        """``sim.v``, ``sim.theta``, …: the state slot of a variable (all neurons, a view)."""
        slots = self.__dict__.get("slots")
        if slots is not None and name in slots:
            return self.__dict__["S"][slots[name]]
        raise AttributeError(name)

    def _compile_monitors(self, net: Network) -> None:
        self.recorded: list[str] = []
        sm_gid, sm_slot, every = [], [], []
        self.state_monitors: list[tuple[StateMonitor, slice]] = []
        for m in net.monitors:
            if isinstance(m, SpikeMonitor):
                names = m.populations or [p.name for p in net.populations]
                for name in names:
                    k = self._pop(name)
                    self.pop_i[k, PI_REC] = 1
                    self.recorded.append(name)
            elif isinstance(m, StateMonitor):
                k = self._pop(m.population)
                p = net.populations[k]
                variables = (neuron_ir(p.definition).variables if p.kind == KIND_NEURONS else [])
                if m.variable not in variables:
                    raise BiolearnError(f"unknown variable '{m.variable}'", "in StateMonitor",
                                        "record one of " + (", ".join(variables) or
                                                            "the variables of a neuron model"))
                idx = (np.arange(p.n) if m.neurons is None else np.asarray(m.neurons, np.int64))
                start = len(sm_gid)
                sm_gid.extend(self.pop_lo[k] + idx)
                sm_slot.extend([self.slots[m.variable]] * len(idx))
                every.append(m.every)
                self.state_monitors.append((m, slice(start, len(sm_gid))))
        self.sm_gid = np.array(sm_gid, np.int64)
        self.sm_slot = np.array(sm_slot, np.int64)
        self.sm_every = int(min(every)) if every else 1
        if any(e % self.sm_every for e in every):
            raise BiolearnError("state monitors need intervals that are multiples of the smallest",
                                "in StateMonitor.every", "use e.g. 1, 10, 100")
        self.rec_cap = max(1 << 16, 4 * self.n) if self.recorded else 0

    # ------------------------------------------------------------------ helpers
    def _pop(self, name: str) -> int:
        if name not in self.pop_index:
            raise BiolearnError(f"unknown population '{name}'", "in Simulation",
                                "use one of " + ", ".join(self.pop_index))
        return self.pop_index[name]

    def _proj(self, name: str) -> int:
        if name not in self.proj_index:
            raise BiolearnError(f"unknown projection '{name}'", "in Simulation",
                                "use one of " + ", ".join(self.proj_index) or "(none)")
        return self.proj_index[name]

    def slice(self, name: str) -> slice:
        """Global neuron ids of a population."""
        k = self._pop(name)
        return slice(int(self.pop_lo[k]), int(self.pop_hi[k]))

    # ------------------------------------------------------------------ controls
    def set_rates(self, name: str, rates: Any) -> None:
        """Set Poisson rates (Hz) of a source, or teacher rates of a LIF population in teacher mode.

        Next spike steps are redrawn from the current step, or from the end of a source's dead
        time (geometric waiting times, exact for per-step Bernoulli firing with probability
        rate·dt)."""
        k = self._pop(name)
        lo, hi = self.pop_lo[k], self.pop_hi[k]
        r = np.broadcast_to(np.asarray(rates, np.float64), (hi - lo,))
        if np.any(r < 0) or not np.all(np.isfinite(r)):
            raise BiolearnError("rates must be finite and ≥ 0 Hz", f"for population '{name}'",
                                "check the rate array")
        self.rate[lo:hi] = r
        if self.pop_kind[k] == KIND_POISSON:
            q = np.minimum(r * self.dt / 1000.0, 1.0)
            nxt = np.full(hi - lo, -1, np.int64)
            on = q > 0
            # the kernel keeps a source's last spike step only when it has a dead time
            start = np.maximum(self.t, self.last_spike[lo:hi] + self.pop_i[k, PI_PREF])
            nxt[on] = start[on] - 1 + self.rng.geometric(q[on])
            self.next_spike[lo:hi] = nxt

    def set_teacher(self, name: str, rates: Any | None, t_ref: float = 0.0) -> None:
        """Force a neuron population to fire as Poisson at ``rates`` (Hz); ``None`` restores it.

        While taught, the model's integration is skipped; a forced spike runs the reset except
        for statements writing variables with a differential equation (θ still adapts).
        ``t_ref`` (ms) is the teacher's dead time, as :class:`PoissonSource`'s, counted from
        its last forced spike (a new value applies from the next one); :meth:`reset_state`
        ends it."""
        k = self._pop(name)
        if self.pop_kind[k] != KIND_NEURONS:
            raise BiolearnError(f"'{name}' is not a neuron population", "in set_teacher",
                                "teachers drive neuron populations")
        check_dead_time(t_ref, f"in set_teacher('{name}')")
        self.pop_i[k, PI_TEACH] = 0 if rates is None else 1
        self.pop_i[k, PI_PREF] = dead_steps(t_ref, self.dt)
        if rates is not None:
            self.set_rates(name, rates)

    def set_plastic(self, name: str, on: bool) -> None:
        """Switch a projection's plasticity on or off (e.g. frozen weights at test time)."""
        self.pr_on[self._proj(name)] = int(bool(on))

    def _rule(self, name: str, where: str) -> tuple[int, Any]:
        k = self._proj(name)
        if self.pr_rule[k] == 0:
            raise BiolearnError(f"projection '{name}' has no plasticity rule", f"in {where}",
                                "give the projection a rule")
        return k, self.rules[self.pr_rule[k] - 1]

    def scale_learning_rate(self, name: str, factor: float) -> None:
        """Set a plastic projection's learning rates (the rule's ``learning_rates``) to
        ``factor`` × the rule's own (schedules)."""
        k, ir = self._rule(name, "scale_learning_rate")
        idx = [ir.param_names.index(p) for p in ir.model.learning_rates]
        self.pr_par[k, idx] = self.pr_par0[k, idx] * factor

    def set_rule_param(self, name: str, param: str, value: float) -> None:
        """Set one parameter of a projection's rule between runs (e.g. a third factor)."""
        k, ir = self._rule(name, "set_rule_param")
        if param not in ir.param_names:
            raise BiolearnError(f"unknown parameter '{param}'", f"in projection '{name}'",
                                f"{ir.model.name} has " + ", ".join(ir.param_names))
        self.pr_par[k, ir.param_names.index(param)] = value

    def apply_event(self, name: str, event: str, **values: float) -> None:
        """Run a rule's ``events[event]`` statements on every synapse of a projection, after
        setting the given rule parameters (e.g. ``apply_event("p", "reward", reward=1.0)``)."""
        k, ir = self._rule(name, "apply_event")
        if event not in ir.events:
            raise BiolearnError(f"rule {ir.model.name} has no event '{event}'",
                                f"in apply_event('{name}')",
                                "use one of " + (", ".join(ir.events) or "(none)"))
        for p, v in values.items():
            self.set_rule_param(name, p, v)
        fn = getattr(self.kernels, f"_event_{self.pr_rule[k]}_{event}")
        fn(self.t, k, int(self.syn_off[k]), int(self.syn_off[k + 1]), self.syn_w, self.pr_par[k],
           self.syn_x, self.syn_t, self.dec_tab, self.tau_s)

    def set_param(self, name: str, param: str, value: float) -> None:
        """Set a parameter of a neuron population between runs (takes effect on the next step)."""
        k = self._pop(name)
        ir = self.models[self.pop_model[k]] if self.pop_model[k] >= 0 else None
        if ir is None or param not in ir.param_names:
            raise BiolearnError(f"unknown parameter '{param}'", f"in population '{name}'",
                                "use one of " + (", ".join(ir.param_names) if ir else "(none)"))
        self.pop_f[k, ir.param_names.index(param)] = value

    def freeze_theta(self, name: str, frozen: bool = True) -> None:
        """Freeze (or release) a population's slow adaptation: the model's ``frozen``
        parameter values (LIF: θ neither decays nor grows)."""
        k = self._pop(name)
        ir = self.models[self.pop_model[k]]
        idx = [ir.param_names.index(p) for p in ir.model.frozen]
        if frozen and not self.frozen_on[k]:
            self.frozen_vals[k, idx] = self.pop_f[k, idx]
            self.pop_f[k, idx] = list(ir.model.frozen.values())
            self.frozen_on[k] = 1
        elif not frozen and self.frozen_on[k]:
            self.pop_f[k, idx] = self.frozen_vals[k, idx]
            self.frozen_on[k] = 0

    freeze = freeze_theta

    def adapts_theta(self, name: str) -> bool:
        """Whether population ``name``'s model changes θ on its steps or at its reset. Every LIF
        carries θ in its state; only one with a ``theta_rule`` adapts it."""
        k = self._pop(name)
        if self.pop_model[k] < 0:
            return False
        ir = self.models[self.pop_model[k]]
        return any(v == "theta" for v, _, _ in [*ir.vector, *ir.reset])

    def decay_theta(self, steps: int) -> None:
        """Let every unfrozen adaptive threshold θ decay over ``steps`` silent steps
        (θ·exp(−dt/τθ)^steps, or step by step in float32 for the ``hao_f32`` rule), as it would
        during a simulated rest that :meth:`reset_state` replaces."""
        for k in range(len(self.net.populations)):
            if self.pop_model[k] < 0 or self.frozen_on[k]:
                continue
            ir = self.models[self.pop_model[k]]
            if "theta" in ir.variables and "tau_theta" in ir.param_names and any(
                    v == "theta" for v, _, _ in ir.vector):
                lo, hi = self.pop_lo[k], self.pop_hi[k]
                tau = self.pop_f[k, ir.param_names.index("tau_theta")]
                if "_theta_hao_f32" in ir.model.name:  # lif_model's θ in float32, step by step
                    th = np.ascontiguousarray(self.theta[lo:hi])
                    K.decay_float32(th, self.dt / tau, steps)
                    self.theta[lo:hi] = th
                else:
                    self.theta[lo:hi] *= np.exp(-self.dt / tau) ** steps

    def reset_state(self, names: list[str] | None = None) -> None:
        """Rest state: the model's ``rest`` values (LIF: v = v_rest, conductances 0),
        refractoriness, the dead times of teachers and sources (a source's from its next
        :meth:`set_rates`), and traces cleared.

        Other variables (θ) and weights are kept. Spikes in flight are dropped."""
        for k, p in enumerate(self.net.populations):
            if names is not None and p.name not in names:
                continue
            lo, hi = self.pop_lo[k], self.pop_hi[k]
            if self.pop_model[k] >= 0:
                ir = self.models[self.pop_model[k]]
                rest = ir.model.rest
                if rest is None:
                    init = p.initial()
                    rest = {v: init[v] for v in ir.diff_vars}
                vals = dict(zip(ir.param_names, self.pop_f[k, :len(ir.params)].tolist(),
                                strict=True))
                for v, x in rest.items():
                    self.S[self.slots[v], lo:hi] = value_of(x, vals, f"in {ir.model.name}.rest")
                self.next_spike[lo:hi] = -1  # a teacher's dead time
            self.last_spike[lo:hi] = NEVER
        self.hist_n[:] = 0
        self.segn[:] = 0
        self.acc[:] = 0.0
        self.clear_traces()

    def clear_traces(self) -> None:
        """Set every plasticity trace to zero (what a long silent rest does to them)."""
        self.trp[:] = 0.0
        self.tro[:] = 0.0
        self.trp_t[:] = self.t  # re-anchor: keeps lazy decays inside the lookup table
        self.tro_t[:] = self.t
        for k, r in enumerate(self.rules):
            if r.syn_traces:
                rows = [len(r.syn_vars) + c for c in range(len(r.syn_traces))]
                for q in np.flatnonzero(self.pr_rule == k + 1):
                    seg = slice(self.syn_off[q], self.syn_off[q + 1])
                    self.syn_x[rows, seg] = 0.0
                    self.syn_t[seg] = self.t
        self.cache_t[:] = -1
        self.act_n[:] = 0
        self.act_nt[:] = 0

    def silence(self) -> None:
        """Every Poisson source and teacher stops firing (rates 0) until its rates are set.

        Their dead times run on (a rest of at least the dead time ends them)."""
        self.rate[:] = 0.0
        for k in np.flatnonzero(self.pop_kind == KIND_POISSON):
            self.next_spike[self.pop_lo[k]:self.pop_hi[k]] = -1

    def reset_counts(self) -> None:
        self.counts[:] = 0

    def spike_counts(self, name: str) -> np.ndarray:
        """Spikes per neuron of a population since the last :meth:`reset_counts`."""
        return self.counts[self.slice(name)].copy()

    def set_recording(self, names: list[str] | None, on: bool = True) -> None:
        """Switch spike recording of populations on or off between runs (all if ``None``)."""
        for name in names if names is not None else list(self.pop_index):
            k = self._pop(name)
            self.pop_i[k, PI_REC] = int(bool(on))
            if on and name not in self.recorded:
                self.recorded.append(name)
            if not on and name in self.recorded:
                self.recorded.remove(name)
        self.rec_cap = max(1 << 16, 4 * self.n) if self.recorded else 0

    _STATE = ("S", "last_spike", "next_spike", "rate", "counts", "syn_w", "syn_x", "syn_t",
              "trp", "trp_t", "tro", "tro_t", "hist", "hist_n", "acc", "sg_ptr", "pop_i",
              "pop_f", "frozen_on", "frozen_vals", "pr_on", "pr_par")

    def state_dict(self) -> dict:
        """Every mutable array, the step counter and the RNG state (for checkpoints)."""
        d = {k: getattr(self, k).copy() for k in self._STATE}
        d["hist"], d["hist_n"] = self._hist_flat()  # the same for every thread count
        d["t"] = self.t
        d["rng"] = self.rng.bit_generator.state
        return d

    def load_state_dict(self, d: dict) -> None:
        """Restore a :meth:`state_dict`; the network must be the one it was taken from."""
        for k in self._STATE:
            if k not in d:
                raise BiolearnError(f"checkpoint has no array '{k}'",
                                    "in Simulation.load_state_dict",
                                    "it was written by an older biolearn: start the run again")
            arr = getattr(self, k)
            if k == "pop_i" and np.shape(d[k]) == (arr.shape[0], arr.shape[1] - 1):
                # written before the dead-time column (the last) existed: no dead time
                d = {**d, k: np.column_stack([d[k], np.zeros(arr.shape[0], np.int64)])}
            if arr.shape != np.shape(d[k]):
                raise BiolearnError(f"checkpoint array '{k}' has shape {np.shape(d[k])}, "
                                    f"expected {arr.shape}", "in Simulation.load_state_dict",
                                    "resume with the same config the checkpoint was made with")
            arr[...] = d[k]
        self.t = int(d["t"])
        self.cache_t[:] = -1
        self._hist_load(self.hist.copy(), self.hist_n.copy())
        self._rebuild_active()
        self.rng.bit_generator.state = d["rng"]
        self.recorded = [n for n, k in self.pop_index.items() if self.pop_i[k, PI_REC]]
        self.rec_cap = max(1 << 16, 4 * self.n) if self.recorded else 0

    def _rebuild_active(self) -> None:
        """Recompute the kernels' active-post lists from the traces (after a state load)."""
        self.act_n[:] = 0
        self.act_nt[:] = 0
        for q in range(len(self.net.projections)):
            lo = int(self.to_off[q])
            po = self.pr_post[q]
            n = int(self.pop_hi[po] - self.pop_lo[po])
            nz = np.flatnonzero((self.tro[:, lo:lo + n] != 0).any(axis=0))
            self.act_idx[lo:lo + nz.size] = nz
            self.act_n[q] = nz.size
            if self._mt:  # one list per thread, at the thread's first post
                for k in range(self.threads):
                    a = self.part_lo[po, k] - self.pop_lo[po]
                    b = self.part_hi[po, k] - self.pop_lo[po]
                    mine = nz[(nz >= a) & (nz < b)]
                    self.act_idx[lo + a:lo + a + mine.size] = mine
                    self.act_nt[q, k] = mine.size

    # ------------------------------------------------------------------ weights
    def weights(self, name: str) -> np.ndarray:
        """Weights of a projection: an [n_pre, n_post] matrix if dense, else per synapse in the
        order the projection was given. Returns a copy."""
        k = self._proj(name)
        q = self.net.projections[k]
        w = self.syn_w[self.syn_off[k]:self.syn_off[k + 1]]
        if q.dense_shape is not None:  # storage order (pre, post) is row-major already
            return w.reshape(q.dense_shape).copy()
        out = np.empty_like(w)
        out[q._order] = w
        return out

    def set_weights(self, name: str, w: np.ndarray) -> None:
        k = self._proj(name)
        q = self.net.projections[k]
        seg = self.syn_w[self.syn_off[k]:self.syn_off[k + 1]]
        w = np.asarray(w, np.float64)
        if q.dense_shape is not None:
            seg[:] = w.reshape(-1)
        else:
            seg[:] = w[q._order]

    def normalize(self, name: str, target: Any) -> None:
        """Synaptic scaling: each postsynaptic neuron's incoming weights sum to ``target``."""
        k = self._proj(name)
        n_post = self.net.populations[self.pr_post[k]].n
        tgt = np.atleast_1d(np.asarray(target, np.float64))
        if self.pr_dense[k]:
            K.normalize_dense(self.syn_w[self.syn_off[k]:self.syn_off[k + 1]], n_post, tgt)
            return
        K.normalize_columns(self.syn_w, self.col_ptr, int(self.cp_off[k]), n_post, self.csc_syn,
                            tgt)

    # ------------------------------------------------------------------ running
    def run(self, duration_ms: float | None = None, steps: int | None = None) -> dict:
        """Advance by ``duration_ms`` (or ``steps``). Returns recorded spikes and states.

        Result: ``{"spikes": {pop: (times_ms, local_ids)}, "states": {k: array}}``; both empty
        when nothing is monitored."""
        n_steps = int(np.round(duration_ms / self.dt)) if steps is None else int(steps)
        t0, t_end = self.t, self.t + n_steps
        cap = self.rec_cap
        rec_step = np.zeros(cap, np.int64)
        rec_gid = np.zeros(cap, np.int64)
        rec_n = np.zeros(1, np.int64)
        steps_s, gids_s = [], []
        n_rows = (n_steps + self.sm_every - 1) // self.sm_every if len(self.sm_gid) else 0
        sm_out = np.zeros((n_rows, len(self.sm_gid)))
        sm_n = np.zeros(1, np.int64)
        t = t0
        room = self.n if not self._mt else 2 * self.n  # (the threaded loop looks ahead)
        while t < t_end:
            if cap and rec_n[0] + room > cap:  # buffer full: keep it and start a new one
                steps_s.append(rec_step[:rec_n[0]].copy())
                gids_s.append(rec_gid[:rec_n[0]].copy())
                rec_n[0] = 0
            if self._mt:
                t = self._run_threads(t, t_end - t, rec_step, rec_gid, rec_n, sm_out, sm_n, t0)
                continue
            t = self.kernels.run_steps(
                t, t_end - t, *self._loop_args(),
                self.xpr, self.xpo, self.cache_t, self.act_idx, self.act_n,
                self.hist, self.hist_n, self.acc, self.het_slots,
                rec_step, rec_gid, rec_n,
                self.sm_gid, self.sm_slot, self.sm_every, sm_out, sm_n, t0)
        self.t = t
        steps_s.append(rec_step[:rec_n[0]])
        gids_s.append(rec_gid[:rec_n[0]])
        st, gd = np.concatenate(steps_s), np.concatenate(gids_s)
        spikes = {}
        for name in self.recorded:
            k = self.pop_index[name]
            m = (gd >= self.pop_lo[k]) & (gd < self.pop_hi[k])
            spikes[name] = (st[m] * self.dt, gd[m] - self.pop_lo[k])
        states = {}
        for m, sl in self.state_monitors:
            stride = m.every // self.sm_every
            states[f"{m.population}.{m.variable}"] = sm_out[:sm_n[0]:stride, sl]
        return {"spikes": spikes, "states": states}


    def _loop_args(self) -> tuple:
        """The arguments both loops (``run_steps``, ``run_steps_mt``) take after the step range,
        in their order: dt, the generator, state, populations, projections, synapses, traces."""
        return (self.dt, self.rng, self.S, self.last_spike, self.next_spike,
                self.rate, self.counts,
                self.pop_lo, self.pop_hi, self.pop_kind, self.pop_model, self.pop_i, self.pop_f,
                self.hold, self.sg_step, self.sg_gid, self.sg_ptr,
                self.pr_pre, self.pr_post, self.pr_slot, self.pr_delay, self.pr_rule,
                self.pr_on, self.pr_par, self.pr_dense,
                self.pr_npre_tr, self.pr_npost_tr, self.pr_pre_in_post, self.pr_post_in_pre,
                self.pr_active,
                self.row_ptr, self.rp_off, self.col_ptr, self.cp_off, self.csc_syn,
                self.syn_pre, self.syn_post, self.syn_w, self.syn_delay, self.syn_x, self.syn_t,
                self.trp, self.trp_t, self.tp_off, self.tro, self.tro_t, self.to_off,
                self.dec_tab, self.tau_s)

    def _run_threads(self, t: int, n_steps: int, rec_step: np.ndarray, rec_gid: np.ndarray,
                     rec_n: np.ndarray, sm_out: np.ndarray, sm_n: np.ndarray, t0: int) -> int:
        """``run_steps_mt`` on every thread (this one is thread 0); returns the step reached."""
        T = self.threads
        args = (T, self._bar, self._stop, self.part_lo, self.part_hi, self.seg_lo, self.segn,
                self.row_split, self.act_nt, self.sm_own,
                t, n_steps, *self._loop_args(),
                self.xpr, self.xpo, self.act_idx,
                self.hist, self.acc, self.het_slots,
                rec_step, rec_gid, rec_n,
                self.sm_gid, self.sm_slot, self.sm_every, sm_out, sm_n, t0)
        fn = self.kernels.run_steps_mt
        if not self._compiled_mt:  # compile here (0 steps), not in the threads
            fn(0, 1, *args[1:10], t, 0, *args[12:])
            self._compiled_mt = True
        self._stop[0] = 2**62
        self._bar[:] = 0  # no thread is inside: a failed earlier call leaves no stale count
        pool = self._threads_pool()
        futures = [pool.submit(fn, k, *args) for k in range(1, T)]
        reached = fn(0, *args)
        others = [f.result() for f in futures]
        assert all(x == reached for x in others), "threads ended at different steps"
        self.act_n[:] = self.act_nt.sum(axis=1)  # posts with a trace, as the serial loop counts
        return int(reached)

    def _threads_pool(self) -> ThreadPoolExecutor:
        """The worker threads (made again in a forked child, where the parent's are gone)."""
        pid = os.getpid()
        if self._pool is None or self._pool[0] != pid:
            self._pool = (pid, ThreadPoolExecutor(self.threads - 1,
                                                  thread_name_prefix="biolearn-kernel"))
        if self._pool[1]._max_workers < self.threads - 1:
            self._pool[1].shutdown(wait=False)
            self._pool = (pid, ThreadPoolExecutor(self.threads - 1,
                                                  thread_name_prefix="biolearn-kernel"))
        return self._pool[1]
