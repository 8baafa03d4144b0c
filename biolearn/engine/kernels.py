"""Numba kernels of the engine: pure functions over flat arrays.

One call of :func:`run_steps` advances the whole network by up to ``n_steps`` time steps. Each step
follows Brian2's default schedule so that results are comparable spike for spike:

1. *groups*: integrate every LIF neuron (clamped while refractory), decay θ; draw source spikes;
2. *thresholds*: detect spikes, record them in the spike-history ring;
3. *synapses*: deliver spikes whose delay has elapsed (only spiking presynaptic neurons touch
   synapses) and apply pre-synaptic plasticity on arrival; then post-synaptic plasticity for the
   neurons that spiked in this step;
4. *resets*: v ← v_reset, start the refractory period, raise θ.

Plasticity traces are stored per neuron with the step of their last update and decayed lazily
when read, so silent neurons and synapses cost nothing.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from biolearn.rules.stdp import (
    DIEHL_COOK,
    P_ETA_POST,
    P_ETA_PRE,
    P_INC_POST,
    P_INC_PRE,
    P_SET,
    P_TAU_POST1,
    P_TAU_POST2,
    P_TAU_PRE,
    P_WMAX,
    P_WMIN,
    PAIR_ADD,
    PAIR_MULT,
    SYMMETRIC,
)

# Column layout of the per-population integer table ``pop_i``.
PI_SYN, PI_INT, PI_THETA, PI_REF, PI_REC, PI_TEACH, PI_FREEZE = 0, 1, 2, 3, 4, 5, 6
N_PI = 7
# Column layout of the per-population float table ``pop_f``.
(PF_TAUM, PF_VREST, PF_VRESET, PF_VTH, PF_TAUE, PF_TAUI, PF_EE, PF_EI, PF_VFLOOR, PF_THPLUS,
 PF_THOFF, PF_DM, PF_DE, PF_DI, PF_DTH, PF_IBIAS) = range(16)
N_PF = 16
# State variables a StateMonitor can record.
VAR_V, VAR_GE, VAR_GI, VAR_THETA = 0, 1, 2, 3


@njit(cache=True, inline="always")
def decayed(x: float, t_last: int, t: int, tau_steps: float, table: np.ndarray) -> float:
    """Trace value ``x`` set at step ``t_last`` seen at step ``t`` (exponential decay)."""
    d = t - t_last
    if d <= 0:
        return x
    if d < table.shape[0]:
        return x * table[d]
    if x == 0.0:
        return 0.0
    return x * np.exp(-d / tau_steps)


@njit(cache=True, inline="always")
def _step_lif(lo, hi, t, pf, pi, dt, v_all, ge_all, gi_all, th_all, ls_all, hist, slot, nh):
    """Advance LIF neurons [lo, hi) by one step and detect spikes (Brian2 'groups' + 'thresholds').

    Integration: 0 forward Euler (Brian2 'euler'), 1 exact (CUBA) / exponential Euler (COBA),
    2 forward Euler for v with exactly decaying conductances (GeNN EXPDECAY). v is held while
    refractory. Each case is a branch-free loop over neurons (vectorised by LLVM), followed by a
    threshold scan. Returns the new number of spikes in ``hist[slot]``. Loops run over slices
    from index 0 so that the compiler can prove indices non-negative (no wrap-around checks).
    """
    v, ge, gi = v_all[lo:hi], ge_all[lo:hi], gi_all[lo:hi]
    theta, last_spike = th_all[lo:hi], ls_all[lo:hi]
    m = hi - lo
    syn, integ, ref = pi[PI_SYN], pi[PI_INT], pi[PI_REF]
    taum, vrest = pf[PF_TAUM], pf[PF_VREST] + pf[PF_IBIAS]  # constant input current, in mV
    taue, taui, ee, ei = pf[PF_TAUE], pf[PF_TAUI], pf[PF_EE], pf[PF_EI]
    dm, de, di = pf[PF_DM], pf[PF_DE], pf[PF_DI]
    vfloor = pf[PF_VFLOOR]
    vth, off = pf[PF_VTH], pf[PF_THOFF]
    # exact CUBA coupling of ge, gi into v over one step (solution of the linear system)
    ke = taue / (taue - taum) * (de - dm) if taue != taum else dt / taum * dm
    ki = taui / (taui - taum) * (di - dm) if taui != taum else dt / taum * dm
    km, ke_, ki_ = dt / taum, dt / taue, dt / taui  # multiply, not divide, inside the loops
    if syn == 0:  # current based: taum dv/dt = vrest - v + ge + gi
        if integ == 1:
            for n in range(m):
                vv, e, g = v[n], ge[n], gi[n]
                nv = vrest + (vv - vrest) * dm + e * ke + g * ki
                v[n] = nv if (t - last_spike[n]) >= ref else vv
                ge[n] = e * de
                gi[n] = g * di
        else:
            for n in range(m):
                vv, e, g = v[n], ge[n], gi[n]
                nv = vv + km * (vrest - vv + e + g)
                v[n] = nv if (t - last_spike[n]) >= ref else vv
                if integ == 0:
                    ge[n] = e - ke_ * e
                    gi[n] = g - ki_ * g
                else:
                    ge[n] = e * de
                    gi[n] = g * di
    else:  # conductance based: taum dv/dt = (vrest - v) + ge (ee - v) + gi (ei - v)
        if integ == 1:
            for n in range(m):
                vv, e, g = v[n], ge[n], gi[n]
                if (t - last_spike[n]) >= ref:
                    b = (1.0 + e + g) / taum
                    a = (vrest + e * ee + g * ei) / (1.0 + e + g)
                    v[n] = a + (vv - a) * np.exp(-dt * b)
                ge[n] = e * de
                gi[n] = g * di
        elif integ == 0:
            for n in range(m):
                vv, e, g = v[n], ge[n], gi[n]
                nv = vv + km * ((vrest - vv) + e * (ee - vv) + g * (ei - vv))
                v[n] = nv if (t - last_spike[n]) >= ref else vv
                ge[n] = e - ke_ * e
                gi[n] = g - ki_ * g
        else:
            for n in range(m):
                vv, e, g = v[n], ge[n], gi[n]
                nv = vv + km * ((vrest - vv) + e * (ee - vv) + g * (ei - vv))
                v[n] = nv if (t - last_spike[n]) >= ref else vv
                ge[n] = e * de
                gi[n] = g * di
    if vfloor > -np.inf:
        for n in range(m):
            if v[n] < vfloor:
                v[n] = vfloor
    if pi[PI_THETA] != 0 and pi[PI_FREEZE] == 0:
        dth = pf[PF_DTH]
        for n in range(m):
            theta[n] *= dth
    for n in range(m):
        if v[n] > vth + theta[n] - off and (t - last_spike[n]) >= ref:
            hist[slot, nh] = lo + n
            nh += 1
    return nh


@njit(cache=True)
def run_steps(t0, n_steps, dt, rng,
              v, ge, gi, theta, last_spike, next_spike, rate, counts,
              pop_lo, pop_hi, pop_kind, pop_i, pop_f,
              sg_step, sg_gid, sg_ptr,
              pr_pre, pr_post, pr_target, pr_delay, pr_rule, pr_on, pr_par, pr_dense,
              row_ptr, rp_off, col_ptr, cp_off, csc_syn,
              syn_pre, syn_post, syn_w, syn_delay,
              tr_pre, tr_pre_t, tp_off, tr_post1, tr_post2, tr_post_t, to_off, dec_tab,
              x_pre, x_post, cache_t, act_idx, act_n,
              hist, hist_n, acc, has_het,
              rec_step, rec_gid, rec_n,
              sm_gid, sm_var, sm_every, sm_out, sm_n, sm_t0):
    """Advance the network from step ``t0`` by ``n_steps``; return the next step to run.

    Stops early (returning the step reached) if the spike record buffer could overflow, so the
    caller can grow it and continue.
    """
    n_pops = pop_lo.shape[0]
    n_proj = pr_pre.shape[0]
    L = hist.shape[0]
    pdt = dt / 1000.0
    t = t0
    t_end = t0 + n_steps
    n_all = v.shape[0]
    while t < t_end:
        if rec_step.shape[0] > 0 and rec_n[0] + n_all > rec_step.shape[0]:
            return t
        slot = t % L
        hist_n[slot] = 0
        # ---- groups + thresholds -------------------------------------------------------------
        for p in range(n_pops):
            lo, hi, kind = pop_lo[p], pop_hi[p], pop_kind[p]
            pi, pf = pop_i[p], pop_f[p]
            if kind == 0:
                if pi[PI_TEACH] != 0:  # teacher: forced Poisson firing at `rate`
                    for n in range(lo, hi):
                        if rate[n] > 0.0 and rng.random() < rate[n] * pdt:
                            hist[slot, hist_n[slot]] = n
                            hist_n[slot] += 1
                    continue
                hist_n[slot] = _step_lif(lo, hi, t, pf, pi, dt, v, ge, gi, theta, last_spike,
                                         hist, slot, hist_n[slot])
            elif kind == 1:
                nxt, rt = next_spike[lo:hi], rate[lo:hi]
                for k in range(hi - lo):
                    if nxt[k] == t:
                        hist[slot, hist_n[slot]] = lo + k
                        hist_n[slot] += 1
                        q = rt[k] * pdt
                        nxt[k] = t + (1 if q >= 1.0 else rng.geometric(q))
        # spike-time generators (all SpikeSources share one time-sorted table)
        while sg_ptr[0] < sg_step.shape[0] and sg_step[sg_ptr[0]] <= t:
            if sg_step[sg_ptr[0]] == t:
                hist[slot, hist_n[slot]] = sg_gid[sg_ptr[0]]
                hist_n[slot] += 1
            sg_ptr[0] += 1
        # record
        for k in range(hist_n[slot]):
            n = hist[slot, k]
            counts[n] += 1
        if rec_step.shape[0] > 0:
            for k in range(hist_n[slot]):
                n = hist[slot, k]
                for p in range(n_pops):
                    if pop_lo[p] <= n < pop_hi[p]:
                        if pop_i[p, PI_REC] != 0:
                            rec_step[rec_n[0]] = t
                            rec_gid[rec_n[0]] = n
                            rec_n[0] += 1
                        break
        # ---- synapses: heterogeneous delays go through the accumulator ring --------------------
        if has_het:
            for q in range(n_proj):
                if pr_delay[q] >= 0:
                    continue
                plo, phi = pop_lo[pr_pre[q]], pop_hi[pr_pre[q]]
                olo = pop_lo[pr_post[q]]
                tg = pr_target[q]
                for k in range(hist_n[slot]):
                    n = hist[slot, k]
                    if n < plo or n >= phi:
                        continue
                    r = rp_off[q] + n - plo
                    for s in range(row_ptr[r], row_ptr[r + 1]):
                        acc[(t + syn_delay[s]) % L, tg, olo + syn_post[s]] += syn_w[s]
            for p in range(n_pops):
                rf = pop_i[p, PI_REF]
                for n in range(pop_lo[p], pop_hi[p]):
                    ge[n] += acc[slot, 0, n]
                    gi[n] += acc[slot, 1, n]
                    if (t - last_spike[n]) >= rf:  # v is clamped while refractory (as Brian2)
                        v[n] += acc[slot, 2, n]
                    acc[slot, 0, n] = 0.0
                    acc[slot, 1, n] = 0.0
                    acc[slot, 2, n] = 0.0
        # ---- synapses: homogeneous delay, deliver on arrival + pre-synaptic plasticity -------
        for q in range(n_proj):
            d = pr_delay[q]
            if d < 0:
                continue
            src = (t - d) % L
            plo, phi = pop_lo[pr_pre[q]], pop_hi[pr_pre[q]]
            olo, ohi = pop_lo[pr_post[q]], pop_hi[pr_post[q]]
            tg = pr_target[q]
            rule = pr_rule[q] if pr_on[q] != 0 else 0
            par = pr_par[q]
            for k in range(hist_n[src]):
                n = hist[src, k]
                if n < plo or n >= phi:
                    continue
                i = n - plo
                r = rp_off[q] + i
                s0, s1 = row_ptr[r], row_ptr[r + 1]
                w_row, j_row = syn_w[s0:s1], syn_post[s0:s1]  # j_row is unsigned: no wrap checks
                if tg == 0:
                    g_t = ge[olo:ohi]
                    if pr_dense[q]:  # row = every post neuron in order: contiguous, vectorised
                        for k3 in range(s1 - s0):
                            g_t[k3] += w_row[k3]
                    else:
                        for k3 in range(s1 - s0):
                            g_t[j_row[k3]] += w_row[k3]
                elif tg == 1:
                    g_t = gi[olo:ohi]
                    for k3 in range(s1 - s0):
                        g_t[j_row[k3]] += w_row[k3]
                else:
                    rf = pop_i[pr_post[q], PI_REF]
                    g_t, ls_t = v[olo:ohi], last_spike[olo:ohi]
                    for k3 in range(s1 - s0):
                        m = j_row[k3]
                        if (t - ls_t[m]) >= rf:  # v is clamped while refractory (as Brian2)
                            g_t[m] += w_row[k3]
                if rule == 0:
                    continue
                ob = to_off[q]
                if pr_dense[q] and 4 * act_n[q] < ohi - olo:  # few posts with a trace
                    _on_pre_active(rule, par, w_row, act_idx[ob:ob + act_n[q]],
                                   tr_post1[ob:ob + ohi - olo], tr_post_t[ob:ob + ohi - olo], t,
                                   dt, dec_tab[q, 1])
                else:
                    if cache_t[q, 1] != t:  # decayed post traces, once per step and projection
                        tau1 = par[P_TAU_POST1] / dt
                        xs, tr1, tt = x_post[ob:ob + ohi - olo], tr_post1[ob:ob + ohi - olo], \
                            tr_post_t[ob:ob + ohi - olo]
                        for j in range(ohi - olo):
                            xs[j] = decayed(tr1[j], tt[j], t, tau1, dec_tab[q, 1])
                        cache_t[q, 1] = t
                    if pr_dense[q]:
                        _on_pre_dense(rule, par, w_row, x_post[ob:ob + ohi - olo])
                    else:
                        _on_pre(rule, par, w_row, j_row, x_post[ob:ob + ohi - olo])
                kk = tp_off[q] + i
                x = decayed(tr_pre[kk], tr_pre_t[kk], t, par[P_TAU_PRE] / dt, dec_tab[q, 0])
                tr_pre[kk] = par[P_INC_PRE] if par[P_SET] != 0.0 else x + par[P_INC_PRE]
                tr_pre_t[kk] = t
        # ---- post-synaptic plasticity for neurons that spiked now ------------------------------
        for q in range(n_proj):
            rule = pr_rule[q] if pr_on[q] != 0 else 0
            if rule == 0:
                continue
            olo, ohi = pop_lo[pr_post[q]], pop_hi[pr_post[q]]
            for k in range(hist_n[slot]):
                n = hist[slot, k]
                if n < olo or n >= ohi:
                    continue
                par = pr_par[q]
                pb = tp_off[q]
                npre = pop_hi[pr_pre[q]] - pop_lo[pr_pre[q]]
                if cache_t[q, 0] != t:  # decayed pre traces, once per step and projection
                    tau0 = par[P_TAU_PRE] / dt
                    xs, trp, tt = x_pre[pb:pb + npre], tr_pre[pb:pb + npre], tr_pre_t[pb:pb + npre]
                    for k2 in range(npre):
                        xs[k2] = decayed(trp[k2], tt[k2], t, tau0, dec_tab[q, 0])
                    cache_t[q, 0] = t
                j = n - olo
                jj = to_off[q] + j
                x1 = decayed(tr_post1[jj], tr_post_t[jj], t, par[P_TAU_POST1] / dt, dec_tab[q, 1])
                x2 = decayed(tr_post2[jj], tr_post_t[jj], t, par[P_TAU_POST2] / dt, dec_tab[q, 2])
                c = cp_off[q] + j
                _on_post(rule, par, csc_syn[col_ptr[c]:col_ptr[c + 1]], syn_pre, syn_w,
                         x_pre[pb:pb + npre], x2)
                inc, setm = par[P_INC_POST], par[P_SET] != 0.0
                was_zero = tr_post1[jj] == 0.0 and tr_post2[jj] == 0.0
                tr_post1[jj] = inc if setm else x1 + inc
                tr_post2[jj] = inc if setm else x2 + inc
                tr_post_t[jj] = t
                if was_zero and inc != 0.0:  # joins the posts with a nonzero trace
                    act_idx[to_off[q] + act_n[q]] = j
                    act_n[q] += 1
        # ---- resets -----------------------------------------------------------------------------
        for k in range(hist_n[slot]):
            n = hist[slot, k]
            for p in range(n_pops):
                if pop_lo[p] <= n < pop_hi[p]:
                    if pop_kind[p] == 0:
                        last_spike[n] = t
                        if pop_i[p, PI_TEACH] == 0:
                            v[n] = pop_f[p, PF_VRESET]
                        th = pop_i[p, PI_THETA]
                        if th != 0 and pop_i[p, PI_FREEZE] == 0:
                            if th == 1:
                                theta[n] += pop_f[p, PF_THPLUS]
                            else:  # Hao et al. 2020: θ += θ+ · 10 / |θ − 10|
                                den = abs(theta[n] - 10.0)
                                if den < 1e-3:
                                    den = 1e-3
                                theta[n] += pop_f[p, PF_THPLUS] * 10.0 / den
                    break
        # ---- state monitors ----------------------------------------------------------------------
        if sm_gid.shape[0] > 0 and (t - sm_t0) % sm_every == 0 and sm_n[0] < sm_out.shape[0]:
            row = sm_n[0]
            for k in range(sm_gid.shape[0]):
                n, var = sm_gid[k], sm_var[k]
                if var == VAR_V:
                    sm_out[row, k] = v[n]
                elif var == VAR_GE:
                    sm_out[row, k] = ge[n]
                elif var == VAR_GI:
                    sm_out[row, k] = gi[n]
                else:
                    sm_out[row, k] = theta[n]
            sm_n[0] += 1
        t += 1
    return t


@njit(cache=True, inline="always")
def _clip(w, lo, hi):
    if w < lo:
        return lo
    if w > hi:
        return hi
    return w


@njit(cache=True, inline="always")
def _pre_rule(rule, w, x, eta, wmin, wmax):
    """One weight after a pre-synaptic spike, given the post trace ``x`` decayed to now."""
    if rule == SYMMETRIC:  # Hao et al. 2020: w = min(w + eta·x_post, w_max)
        v = w + eta * x
        return wmax if v > wmax else v
    if rule == PAIR_ADD or rule == DIEHL_COOK:  # w = clip(w − eta·x_post1)
        return _clip(w - eta * x, wmin, wmax)
    if rule == PAIR_MULT:  # w = clip(w − eta·x_post1·(w − w_min))
        return _clip(w - eta * x * (w - wmin), wmin, wmax)
    return w


@njit(cache=True)
def _on_pre(rule, par, w, j, x_post):
    """Weight updates ``w`` (a row of synapses onto posts ``j``) for a pre-synaptic spike, with
    the post traces ``x_post`` already decayed to now."""
    eta, wmin, wmax = par[P_ETA_PRE], par[P_WMIN], par[P_WMAX]
    for k in range(w.shape[0]):
        w[k] = _pre_rule(rule, w[k], x_post[j[k]], eta, wmin, wmax)


@njit(cache=True)
def _on_pre_dense(rule, par, w, x_post):
    """:func:`_on_pre` for a full row (synapse k targets post neuron k): vectorisable."""
    eta, wmin, wmax = par[P_ETA_PRE], par[P_WMIN], par[P_WMAX]
    if rule == SYMMETRIC:
        for k in range(w.shape[0]):
            x = w[k] + eta * x_post[k]
            w[k] = wmax if x > wmax else x
    elif rule == PAIR_ADD or rule == DIEHL_COOK:
        for k in range(w.shape[0]):
            w[k] = _clip(w[k] - eta * x_post[k], wmin, wmax)
    elif rule == PAIR_MULT:
        for k in range(w.shape[0]):
            w[k] = _clip(w[k] - eta * x_post[k] * (w[k] - wmin), wmin, wmax)


@njit(cache=True)
def _on_pre_active(rule, par, w, active, tr1, tr_t, t, dt, table):
    """:func:`_on_pre_dense` for a row when few posts have a nonzero trace.

    ``active`` lists the posts whose stored trace is nonzero (those that spiked since the last
    trace reset). Those are updated first, from the unclipped weights. For every other
    post the rule with a zero trace only clips ``w``, so a clip pass over the row finishes the
    job (a no-op for the posts just updated). Bit-identical to the full-row update."""
    eta, wmin, wmax = par[P_ETA_PRE], par[P_WMIN], par[P_WMAX]
    tau1 = par[P_TAU_POST1] / dt
    for a in range(active.shape[0]):
        j = active[a]
        w[j] = _pre_rule(rule, w[j], decayed(tr1[j], tr_t[j], t, tau1, table), eta, wmin, wmax)
    lo = -np.inf if rule == SYMMETRIC else wmin  # the symmetric rule has no lower bound
    out = False
    for k in range(w.shape[0]):  # a read-only scan first: rows rarely need the clip
        out |= (w[k] > wmax) | (w[k] < lo)
    if out:
        for k in range(w.shape[0]):
            w[k] = _clip(w[k], lo, wmax)


@njit(cache=True)
def _on_post(rule, par, syns, syn_pre, syn_w, x_pre, x2):
    """Weight updates of the synapses ``syns`` onto a neuron that spiked.

    ``x_pre`` holds the projection's pre traces decayed to now; ``x2`` is the neuron's post2
    trace before its update."""
    eta, wmin, wmax = par[P_ETA_POST], par[P_WMIN], par[P_WMAX]
    for k in range(syns.shape[0]):
        s = syns[k]
        xp = x_pre[syn_pre[s]]
        w = syn_w[s]
        if rule == SYMMETRIC:
            w = w + eta * xp
            if w > wmax:
                w = wmax
        elif rule == DIEHL_COOK:
            w = _clip(w + eta * xp * x2, wmin, wmax)
        elif rule == PAIR_ADD:
            w = _clip(w + eta * xp, wmin, wmax)
        elif rule == PAIR_MULT:
            w = _clip(w + eta * xp * (wmax - w), wmin, wmax)
        syn_w[s] = w


@njit(cache=True)
def normalize_columns(syn_w, col_ptr, c0, n_post, csc_syn, target):
    """Synaptic scaling: rescale each postsynaptic neuron's incoming weights to sum ``target``.

    ``target`` is a scalar array of length 1 or one value per neuron (Diehl & Cook 2015, Hao et al.
    2020: w_ij ← w_ij · target / Σ_i w_ij). Neurons whose weights sum to 0 are left unchanged.
    """
    for j in range(n_post):
        c = c0 + j
        tot = 0.0
        for k in range(col_ptr[c], col_ptr[c + 1]):
            tot += syn_w[csc_syn[k]]
        if tot > 0.0:
            f = (target[j] if target.shape[0] > 1 else target[0]) / tot
            for k in range(col_ptr[c], col_ptr[c + 1]):
                syn_w[csc_syn[k]] *= f


@njit(cache=True)
def normalize_dense(w, n_post, target):
    """:func:`normalize_columns` for a dense projection stored row-major ([n_pre, n_post] flat):
    two contiguous passes instead of strided column walks."""
    n_pre = w.shape[0] // n_post
    tot = np.zeros(n_post)
    for i in range(n_pre):
        row = w[i * n_post:(i + 1) * n_post]
        for j in range(n_post):
            tot[j] += row[j]
    f = np.ones(n_post)
    for j in range(n_post):
        if tot[j] > 0.0:
            f[j] = (target[j] if target.shape[0] > 1 else target[0]) / tot[j]
    for i in range(n_pre):
        row = w[i * n_post:(i + 1) * n_post]
        for j in range(n_post):
            row[j] *= f[j]
