"""Compiled network: flat arrays plus the controls used between presentations.

:class:`Simulation` owns every state array; :meth:`Simulation.run` hands them to the kernel
:func:`biolearn.engine.kernels.run_steps`. Between runs (image presentations) the state can be
reset, input rates swapped, teachers switched and weights rescaled without recompiling and
without per-step Python work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from biolearn.engine import kernels as K
from biolearn.engine.front import (
    KIND_LIF,
    KIND_POISSON,
    LIF,
    TARGETS,
    Network,
    PoissonSource,
    SpikeMonitor,
    SpikeSource,
    StateMonitor,
)
from biolearn.errors import BiolearnError
from biolearn.rules.stdp import (
    N_PARAMS,
    P_ETA_POST,
    P_ETA_PRE,
    P_TAU_POST1,
    P_TAU_POST2,
    P_TAU_PRE,
)

_THETA = {"none": 0, "add": 1, "hao": 2}
_VARS = {"v": K.VAR_V, "ge": K.VAR_GE, "gi": K.VAR_GI, "theta": K.VAR_THETA}
_TABLE = 4096  # length of the lazy-decay lookup tables (steps)
NEVER = -(2**62)


@dataclass
class SpikeRecord:
    """Spikes recorded by one :meth:`Simulation.run` call: step index and global neuron id."""

    steps: np.ndarray
    gids: np.ndarray


class Simulation:
    """A compiled :class:`Network`. Create with ``network.compile(seed)``."""

    def __init__(self, net: Network, seed: int = 0):
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
        self.pop_i = np.zeros((len(pops), K.N_PI), np.int64)
        self.pop_f = np.zeros((len(pops), K.N_PF), np.float64)
        self.v = np.zeros(n)
        self.ge = np.zeros(n)
        self.gi = np.zeros(n)
        self.theta = np.zeros(n)
        self.last_spike = np.full(n, NEVER, np.int64)
        self.next_spike = np.full(n, -1, np.int64)
        self.rate = np.zeros(n)
        self.counts = np.zeros(n, np.int64)
        sg_t, sg_g = [], []
        for k, p in enumerate(pops):
            lo, hi = self.pop_lo[k], self.pop_hi[k]
            if isinstance(p, LIF):
                self._compile_lif(k, p)
                self.v[lo:hi] = p.v_rest if p.v_init is None else p.v_init
                self.ge[lo:hi] = p.ge_init
                self.gi[lo:hi] = p.gi_init
                self.theta[lo:hi] = p.theta_init
            elif isinstance(p, PoissonSource):
                self.set_rates(p.name, p.rates)
            elif isinstance(p, SpikeSource):
                steps = np.round(np.asarray(p.times, float) / self.dt).astype(np.int64)
                sg_t.append(steps)
                sg_g.append(np.asarray(p.indices, np.int64) + lo)
        if sg_t:
            st, sgid = np.concatenate(sg_t), np.concatenate(sg_g)
            order = np.lexsort((sgid, st))
            self.sg_step, self.sg_gid = st[order], sgid[order]
        else:
            self.sg_step, self.sg_gid = np.zeros(0, np.int64), np.zeros(0, np.int64)
        self.sg_ptr = np.zeros(1, np.int64)
        self._compile_projections(net)
        self._compile_monitors(net)

    # ------------------------------------------------------------------ compilation
    def _compile_lif(self, k: int, p: LIF) -> None:
        dt = self.dt
        pi, pf = self.pop_i[k], self.pop_f[k]
        pi[K.PI_SYN] = 0 if p.synapse == "current" else 1
        pi[K.PI_INT] = {"euler": 0, "exact": 1, "euler_expsyn": 2}[p.integration]
        pi[K.PI_THETA] = _THETA[p.theta_rule]
        pi[K.PI_REF] = int(np.round(p.t_ref / dt))
        pf[K.PF_TAUM], pf[K.PF_VREST], pf[K.PF_VRESET] = p.tau_m, p.v_rest, p.v_reset
        pf[K.PF_VTH], pf[K.PF_TAUE], pf[K.PF_TAUI] = p.v_thresh, p.tau_e, p.tau_i
        pf[K.PF_EE], pf[K.PF_EI], pf[K.PF_VFLOOR] = p.e_e, p.e_i, p.v_floor
        pf[K.PF_THPLUS], pf[K.PF_THOFF] = p.theta_plus, p.theta_offset
        pf[K.PF_IBIAS] = p.i_bias
        pf[K.PF_DM], pf[K.PF_DE] = np.exp(-dt / p.tau_m), np.exp(-dt / p.tau_e)
        pf[K.PF_DI], pf[K.PF_DTH] = np.exp(-dt / p.tau_i), np.exp(-dt / p.tau_theta)

    def _compile_projections(self, net: Network) -> None:
        dt = self.dt
        projs = net.projections
        self.proj_index = {q.name: k for k, q in enumerate(projs)}
        nq = len(projs)
        self.pr_pre = np.zeros(nq, np.int64)
        self.pr_post = np.zeros(nq, np.int64)
        self.pr_target = np.zeros(nq, np.int64)
        self.pr_delay = np.zeros(nq, np.int64)
        self.pr_rule = np.zeros(nq, np.int64)
        self.pr_on = np.ones(nq, np.int64)
        self.pr_par = np.zeros((nq, N_PARAMS))
        self.pr_dense = np.zeros(nq, np.bool_)  # rows hold every post neuron in order
        self.dec_tab = np.ones((max(nq, 1), 3, _TABLE))
        rows, cols, syn_pre, syn_post, syn_w, syn_delay, csc = [], [], [], [], [], [], []
        rp_off, cp_off, tp_off, to_off = [], [], [], []
        self.syn_off = np.zeros(nq + 1, np.int64)
        s_base = r_base = tp = to = 0
        max_delay = 0
        has_het = False
        for k, q in enumerate(projs):
            a, b = self.pop_index[q.pre], self.pop_index[q.post]
            n_pre, n_post = net.populations[a].n, net.populations[b].n
            self.pr_pre[k], self.pr_post[k] = a, b
            self.pr_target[k] = TARGETS[q.target]
            d = np.broadcast_to(np.round(np.asarray(q.delay, float) / dt).astype(np.int64),
                                q.i.shape)
            if len(d) and d.min() < 0:
                raise BiolearnError("negative delay", f"in projection '{q.name}'",
                                    "use delays ≥ 0 ms")
            homog = len(d) == 0 or bool(np.all(d == d[0]))
            max_delay = max(max_delay, int(d.max()) if len(d) else 0)
            if q.rule is not None:
                if not homog:
                    raise BiolearnError("a plastic projection needs one delay for all synapses",
                                        f"in projection '{q.name}'",
                                        "give a scalar delay or drop the rule")
                self.pr_rule[k] = q.rule.code
                self.pr_par[k] = q.rule.params()
                steps = np.arange(_TABLE)
                for c, idx in enumerate((P_TAU_PRE, P_TAU_POST1, P_TAU_POST2)):
                    self.dec_tab[k, c] = np.exp(-steps * dt / self.pr_par[k, idx])
            self.pr_delay[k] = (int(d[0]) if len(d) else 0) if homog else -1
            has_het |= not homog
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
        self.rp_off = np.array(rp_off, np.int64)
        self.cp_off = np.array(cp_off, np.int64)
        self.tp_off = np.array(tp_off, np.int64)
        self.to_off = np.array(to_off, np.int64)
        self.tr_pre = np.zeros(tp)
        self.tr_pre_t = np.zeros(tp, np.int64)
        self.tr_post1 = np.zeros(to)
        self.tr_post2 = np.zeros(to)
        self.tr_post_t = np.zeros(to, np.int64)
        self.x_pre = np.zeros(tp)  # per-step caches of lazily decayed traces
        self.x_post = np.zeros(to)
        self.cache_t = np.full((max(nq, 1), 2), -1, np.int64)
        # posts (local index, per projection segment of to_off) whose stored trace is nonzero:
        # a pre spike's update only touches these (kernels: act_*)
        self.act_idx = np.zeros(to, np.int64)
        self.act_n = np.zeros(max(nq, 1), np.int64)
        L = max_delay + 1
        self.hist = np.zeros((L, self.n), np.int64)
        self.hist_n = np.zeros(L, np.int64)
        self.has_het = has_het
        self.acc = np.zeros((L, 3, self.n) if has_het else (1, 3, 1))

    def _compile_monitors(self, net: Network) -> None:
        self.recorded: list[str] = []
        sm_gid, sm_var, every = [], [], []
        self.state_monitors: list[tuple[StateMonitor, slice]] = []
        for m in net.monitors:
            if isinstance(m, SpikeMonitor):
                names = m.populations or [p.name for p in net.populations]
                for name in names:
                    k = self._pop(name)
                    self.pop_i[k, K.PI_REC] = 1
                    self.recorded.append(name)
            elif isinstance(m, StateMonitor):
                k = self._pop(m.population)
                if m.variable not in _VARS:
                    raise BiolearnError(f"unknown variable '{m.variable}'", "in StateMonitor",
                                        "record one of v, ge, gi, theta")
                idx = (np.arange(net.populations[k].n) if m.neurons is None
                       else np.asarray(m.neurons, np.int64))
                start = len(sm_gid)
                sm_gid.extend(self.pop_lo[k] + idx)
                sm_var.extend([_VARS[m.variable]] * len(idx))
                every.append(m.every)
                self.state_monitors.append((m, slice(start, len(sm_gid))))
        self.sm_gid = np.array(sm_gid, np.int64)
        self.sm_var = np.array(sm_var, np.int64)
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

        Next spike steps are redrawn from the current step (geometric waiting times, exact for
        per-step Bernoulli firing with probability rate·dt)."""
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
            nxt[on] = self.t - 1 + self.rng.geometric(q[on])
            self.next_spike[lo:hi] = nxt

    def set_teacher(self, name: str, rates: Any | None) -> None:
        """Force a LIF population to fire as Poisson at ``rates`` (Hz); ``None`` restores it."""
        k = self._pop(name)
        if self.pop_kind[k] != KIND_LIF:
            raise BiolearnError(f"'{name}' is not a LIF population", "in set_teacher",
                                "teachers drive LIF populations")
        self.pop_i[k, K.PI_TEACH] = 0 if rates is None else 1
        if rates is not None:
            self.set_rates(name, rates)

    def set_plastic(self, name: str, on: bool) -> None:
        """Switch a projection's plasticity on or off (e.g. frozen weights at test time)."""
        self.pr_on[self._proj(name)] = int(bool(on))

    def scale_learning_rate(self, name: str, factor: float) -> None:
        """Set a plastic projection's learning rates to ``factor`` × the rule's own (schedules)."""
        k = self._proj(name)
        if self.pr_rule[k] == 0:
            raise BiolearnError(f"projection '{name}' has no plasticity rule",
                                "in scale_learning_rate", "give the projection a rule")
        self.pr_par[k, [P_ETA_PRE, P_ETA_POST]] = self.pr_par0[k, [P_ETA_PRE, P_ETA_POST]] * factor

    def freeze_theta(self, name: str, frozen: bool = True) -> None:
        """Freeze (or release) the adaptive threshold of a population."""
        self.pop_i[self._pop(name), K.PI_FREEZE] = int(bool(frozen))

    def decay_theta(self, steps: int) -> None:
        """Let every unfrozen adaptive threshold decay over ``steps`` silent steps
        (θ·exp(−steps·dt/τθ)), as it would during a simulated rest that :meth:`reset_state`
        replaces."""
        for k in range(len(self.net.populations)):
            if self.pop_i[k, K.PI_THETA] != 0 and self.pop_i[k, K.PI_FREEZE] == 0:
                lo, hi = self.pop_lo[k], self.pop_hi[k]
                self.theta[lo:hi] *= self.pop_f[k, K.PF_DTH] ** steps

    def reset_state(self, names: list[str] | None = None) -> None:
        """Exact rest state: v = v_rest, conductances 0, refractoriness and traces cleared.

        θ and weights are kept. Spikes in flight are dropped. Equivalent to a long silent rest."""
        for k, p in enumerate(self.net.populations):
            if names is not None and p.name not in names:
                continue
            lo, hi = self.pop_lo[k], self.pop_hi[k]
            if isinstance(p, LIF):
                self.v[lo:hi] = p.v_rest
            self.ge[lo:hi] = 0.0
            self.gi[lo:hi] = 0.0
            self.last_spike[lo:hi] = NEVER
        self.hist_n[:] = 0
        self.acc[:] = 0.0
        self.clear_traces()

    def clear_traces(self) -> None:
        """Set every STDP trace to zero (what a long silent rest does to them)."""
        self.tr_pre[:] = 0.0
        self.tr_post1[:] = 0.0
        self.tr_post2[:] = 0.0
        self.tr_pre_t[:] = self.t  # re-anchor: keeps lazy decays inside the lookup table
        self.tr_post_t[:] = self.t
        self.cache_t[:] = -1
        self.act_n[:] = 0

    def silence(self) -> None:
        """Every Poisson source and teacher stops firing (rates 0) until its rates are set."""
        self.rate[:] = 0.0
        self.next_spike[:] = -1

    def reset_counts(self) -> None:
        self.counts[:] = 0

    def spike_counts(self, name: str) -> np.ndarray:
        """Spikes per neuron of a population since the last :meth:`reset_counts`."""
        return self.counts[self.slice(name)].copy()

    def set_recording(self, names: list[str] | None, on: bool = True) -> None:
        """Switch spike recording of populations on or off between runs (all if ``None``)."""
        for name in names if names is not None else list(self.pop_index):
            k = self._pop(name)
            self.pop_i[k, K.PI_REC] = int(bool(on))
            if on and name not in self.recorded:
                self.recorded.append(name)
            if not on and name in self.recorded:
                self.recorded.remove(name)
        self.rec_cap = max(1 << 16, 4 * self.n) if self.recorded else 0

    _STATE = ("v", "ge", "gi", "theta", "last_spike", "next_spike", "rate", "counts", "syn_w",
              "tr_pre", "tr_pre_t", "tr_post1", "tr_post2", "tr_post_t", "hist", "hist_n", "acc",
              "sg_ptr", "pop_i", "pr_on", "pr_par")

    def state_dict(self) -> dict:
        """Every mutable array, the step counter and the RNG state (for checkpoints)."""
        d = {k: getattr(self, k).copy() for k in self._STATE}
        d["t"] = self.t
        d["rng"] = self.rng.bit_generator.state
        return d

    def load_state_dict(self, d: dict) -> None:
        """Restore a :meth:`state_dict`; the network must be the one it was taken from."""
        for k in self._STATE:
            arr = getattr(self, k)
            if arr.shape != np.shape(d[k]):
                raise BiolearnError(f"checkpoint array '{k}' has shape {np.shape(d[k])}, "
                                    f"expected {arr.shape}", "in Simulation.load_state_dict",
                                    "resume with the same config the checkpoint was made with")
            arr[...] = d[k]
        self.t = int(d["t"])
        self.cache_t[:] = -1
        self._rebuild_active()
        self.rng.bit_generator.state = d["rng"]
        self.recorded = [n for n, k in self.pop_index.items() if self.pop_i[k, K.PI_REC]]
        self.rec_cap = max(1 << 16, 4 * self.n) if self.recorded else 0

    def _rebuild_active(self) -> None:
        """Recompute the kernels' active-post lists from the traces (after a state load)."""
        self.act_n[:] = 0
        for q in range(len(self.net.projections)):
            lo = int(self.to_off[q])
            n = int(self.pop_hi[self.pr_post[q]] - self.pop_lo[self.pr_post[q]])
            nz = np.flatnonzero((self.tr_post1[lo:lo + n] != 0) | (self.tr_post2[lo:lo + n] != 0))
            self.act_idx[lo:lo + nz.size] = nz
            self.act_n[q] = nz.size

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
        while t < t_end:
            if cap and rec_n[0] + self.n > cap:  # buffer full: keep it and start a new one
                steps_s.append(rec_step[:rec_n[0]].copy())
                gids_s.append(rec_gid[:rec_n[0]].copy())
                rec_n[0] = 0
            t = K.run_steps(
                t, t_end - t, self.dt, self.rng,
                self.v, self.ge, self.gi, self.theta, self.last_spike, self.next_spike,
                self.rate, self.counts,
                self.pop_lo, self.pop_hi, self.pop_kind, self.pop_i, self.pop_f,
                self.sg_step, self.sg_gid, self.sg_ptr,
                self.pr_pre, self.pr_post, self.pr_target, self.pr_delay, self.pr_rule,
                self.pr_on, self.pr_par, self.pr_dense,
                self.row_ptr, self.rp_off, self.col_ptr, self.cp_off, self.csc_syn,
                self.syn_pre, self.syn_post, self.syn_w, self.syn_delay,
                self.tr_pre, self.tr_pre_t, self.tp_off, self.tr_post1, self.tr_post2,
                self.tr_post_t, self.to_off, self.dec_tab,
                self.x_pre, self.x_post, self.cache_t, self.act_idx, self.act_n,
                self.hist, self.hist_n, self.acc, self.has_het,
                rec_step, rec_gid, rec_n,
                self.sm_gid, self.sm_var, self.sm_every, sm_out, sm_n, t0)
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

