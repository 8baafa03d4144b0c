"""Sparsey: single-trial, similarity-preserving sparse distributed codes (Rinkus 2010, 2014).

A *mac* (macrocolumn) is a coding field of Q competitive modules (CMs) of K binary cells; a code is
one winner per CM, stored here as an index array of Q cell numbers ``q*K + k`` (-1 = mac inactive).
Code similarity is intersection size. Codes are chosen by the Code Selection Algorithm (CSA,
Rinkus 2014, Front. Comput. Neurosci. 8:160, Table 1):

1. input sums u_i (bottom-up, binary weights from the active inputs of the mac's receptive field)
   and h_i (horizontal, from the mac's previous code, sequence mode only);
2. normalisation: U_i = min(u_i / pi_U, 1) with pi_U the number of active inputs (capped at
   ``pi_max``), H_i = h_i / Q; optionally (``match="cosine"``, our addition) U_i =
   u_i / sqrt(pi_U |w_i|) with |w_i| the cell's set weights, which stops cells that have stored
   many inputs from matching everything once their weights saturate;
3. input match V_i = U_i^lambda_U * H_i^lambda_H (the H factor only when a previous code exists);
4. familiarity G = mean over CMs of max_{i in CM} V_i;
5. expansivity eta = 1 + chi * ((G - G_min) / (1 - G_min))^gamma for G > G_min, else 1;
6. relative win likelihood mu_i = 1 + (eta - 1) / (1 + s1 exp(-s2 (V_i - s3)))^s4 (sigmoid in V);
7. per-CM renormalisation rho_i = mu_i / sum_{k in CM} mu_k, winner drawn from rho (learning);
   at retrieval the winner is argmax V per CM (ties go to the cell with fewest set weights,
   i.e. the most specific stored match; our choice, the papers leave ties open).

A novel input (G <= G_min) gets eta = 1, i.e. a uniformly random code; a familiar one (G ~ 1) gets
a large eta, so the best-matching cells - its stored code - win. Learning is single-trial and
binary: weights from active inputs (and from the previous code) onto the winners are set to 1.
A mac may freeze (stop learning) once a fraction of its afferent weights is set, Rinkus's
"critical period" (2014, section 2.4). Macs are organised in levels over receptive fields; level
l+1 sees the codes of level l. All hot loops are ``numba`` kernels over flat arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np

from biolearn.errors import BiolearnError

__all__ = [
    "CSAParams",
    "Level",
    "Mac",
    "SparseyHierarchy",
    "code_overlap",
    "codes_to_binary",
    "grid_rfs",
    "group_rfs",
    "knn_code_overlap",
    "overlap_matrix",
]


@dataclass
class CSAParams:
    """Parameters of one mac and its Code Selection Algorithm (Rinkus 2014, Table 1 symbols)."""

    Q: int = 8              # competitive modules per mac
    K: int = 8              # binary cells per CM
    G_min: float = 0.2      # G^-: familiarity below which the code choice is uniformly random
    gamma: float = 2.0      # exponent of the (G - G^-)/(1 - G^-) ramp
    chi: float = 1000.0     # eta_max - 1: win-likelihood ratio of a V=1 over a V=0 cell at G=1
    s1: float = 1.0         # sigmoid V -> mu: offset factor
    s2: float = 16.0        # steepness
    s3: float = 0.5         # midpoint (V at which mu is half-way)
    s4: float = 1.0         # exponent
    lambda_u: float = 1.0   # weight of bottom-up match in V
    lambda_h: float = 1.0   # weight of horizontal (temporal context) match in V
    pi_min: int = 1         # fewest active inputs for the mac to become active
    pi_max: int = 0         # cap of the U normaliser (0 = no cap)
    freeze: float = 1.0     # freeze learning when this fraction of U weights is set (1 = never)
    match: str = "fraction"  # U_i = u_i/pi_U (Rinkus) or "cosine": u_i/sqrt(pi_U * |w_i|)

    def __post_init__(self) -> None:
        if self.Q < 1 or self.K < 1:
            raise BiolearnError(f"Q={self.Q}, K={self.K} must be >= 1", "Sparsey mac",
                                "use at least one CM of one cell")
        if self.match not in ("fraction", "cosine"):
            raise BiolearnError(f"match='{self.match}' is unknown", "Sparsey CSA",
                                "use 'fraction' or 'cosine'")
        if not 0.0 <= self.G_min < 1.0:
            raise BiolearnError(f"G_min={self.G_min} must be in [0, 1)", "Sparsey CSA",
                                "pick e.g. 0.2")

    def vector(self) -> np.ndarray:
        return np.array([self.G_min, self.gamma, self.chi, self.s1, self.s2, self.s3, self.s4,
                         self.lambda_u, self.lambda_h, self.pi_min, self.pi_max, self.freeze,
                         1.0 if self.match == "cosine" else 0.0],
                        dtype=np.float64)


# ----------------------------------------------------------------------------- kernels
@numba.njit(cache=True)
def _csa_level(indptr, indices, rf_len, W_U, W_H, use_h, seq_start, Q, K, prm, learn, frozen,
               n_set, n_w, uniforms, prev, codes, G_out):
    """Run the CSA for every frame t and mac m of one level (frames in time order).

    indptr/indices: CSR of the active local inputs of (t, m) at row t*M + m.
    W_U[m, i, c], W_H[m, c_prev, c]: binary weights (uint8), updated in place when learning.
    prev[m, q]: previous code of each mac (sequence mode), updated in place.
    n_set[m], n_w[m, c]: set U weights per mac / per cell; at retrieval, ties in V go to the cell
    with fewer set weights (the most specific match).
    codes[t, m, q] (cell index q*K+k or -1) and G_out[t, m] are written.
    """
    G_min, gamma, chi = prm[0], prm[1], prm[2]
    s1, s2, s3, s4 = prm[3], prm[4], prm[5], prm[6]
    lam_u, lam_h = prm[7], prm[8]
    pi_min, pi_max, freeze = int(prm[9]), int(prm[10]), prm[11]
    cosine = prm[12] > 0.5
    N = seq_start.shape[0]
    M = W_U.shape[0]
    C = Q * K
    u = np.zeros(C)
    h = np.zeros(C)
    V = np.zeros(C)
    mu = np.zeros(K)
    for t in range(N):
        if seq_start[t]:
            prev[:, :] = -1
        for m in range(M):
            r = t * M + m
            a0 = indptr[r]
            a1 = indptr[r + 1]
            na = a1 - a0
            has_u = na >= pi_min and na > 0
            has_h = use_h and prev[m, 0] >= 0
            if not has_u and not has_h:
                codes[t, m, :] = -1
                prev[m, :] = -1
                G_out[t, m] = np.nan
                continue
            for c in range(C):
                V[c] = 1.0
            if has_u:
                u[:] = 0.0
                for j in range(a0, a1):
                    i = indices[j]
                    for c in range(C):
                        u[c] += W_U[m, i, c]
                piu = na if (pi_max <= 0 or na < pi_max) else pi_max
                for c in range(C):
                    if cosine:
                        x = u[c] / np.sqrt(piu * n_w[m, c]) if n_w[m, c] > 0 else 0.0
                    else:
                        x = u[c] / piu
                    if x > 1.0:
                        x = 1.0
                    V[c] *= x ** lam_u
            if has_h:
                h[:] = 0.0
                for q in range(Q):
                    p = prev[m, q]
                    for c in range(C):
                        h[c] += W_H[m, p, c]
                for c in range(C):
                    V[c] *= (h[c] / Q) ** lam_h
            G = 0.0
            for q in range(Q):
                best = 0.0
                for k in range(K):
                    if V[q * K + k] > best:
                        best = V[q * K + k]
                G += best
            G /= Q
            G_out[t, m] = G
            do_learn = learn and not frozen[m]
            if do_learn:
                eta = 1.0
                if G > G_min:
                    eta = 1.0 + chi * ((G - G_min) / (1.0 - G_min)) ** gamma
                for q in range(Q):
                    tot = 0.0
                    for k in range(K):
                        sg = (1.0 + s1 * np.exp(-s2 * (V[q * K + k] - s3))) ** s4
                        mu[k] = 1.0 + (eta - 1.0) / sg
                        tot += mu[k]
                    x = uniforms[t, m, q] * tot
                    win = K - 1
                    acc = 0.0
                    for k in range(K):
                        acc += mu[k]
                        if x < acc:
                            win = k
                            break
                    codes[t, m, q] = q * K + win
            else:
                for q in range(Q):
                    win = 0
                    best = V[q * K]
                    for k in range(1, K):
                        c = q * K + k
                        if V[c] > best or (V[c] == best and n_w[m, c] < n_w[m, q * K + win]):
                            best = V[c]
                            win = k
                    codes[t, m, q] = q * K + win
            if do_learn:
                for q in range(Q):
                    c = codes[t, m, q]
                    if has_u:
                        for j in range(a0, a1):
                            i = indices[j]
                            if W_U[m, i, c] == 0:
                                W_U[m, i, c] = 1
                                n_w[m, c] += 1
                                n_set[m] += 1
                    if has_h:
                        for q2 in range(Q):
                            W_H[m, prev[m, q2], c] = 1
                if freeze < 1.0 and n_set[m] >= freeze * rf_len[m] * C:
                    frozen[m] = True
            for q in range(Q):
                prev[m, q] = codes[t, m, q]


@numba.njit(cache=True)
def _gather(X, rf_idx, rf_len):
    """CSR (row t*M+m) of the local indices j with X[t, rf_idx[m, j]] set."""
    N = X.shape[0]
    M = rf_idx.shape[0]
    indptr = np.zeros(N * M + 1, dtype=np.int64)
    cnt = 0
    for t in range(N):
        for m in range(M):
            for j in range(rf_len[m]):
                if X[t, rf_idx[m, j]]:
                    cnt += 1
            indptr[t * M + m + 1] = cnt
    indices = np.empty(cnt, dtype=np.int32)
    p = 0
    for t in range(N):
        for m in range(M):
            for j in range(rf_len[m]):
                if X[t, rf_idx[m, j]]:
                    indices[p] = j
                    p += 1
    return indptr, indices


@numba.njit(cache=True)
def _overlap_counts(test_flat, inv_ptr, inv_idx, n_train, n_cells):
    """ov[i, j] = number of (mac, CM) winners shared by test code i and train code j."""
    n_test, L = test_flat.shape
    ov = np.zeros((n_test, n_train), dtype=np.int32)
    for i in range(n_test):
        for l in range(L):
            c = test_flat[i, l]
            if c < 0 or c >= n_cells:
                continue
            for p in range(inv_ptr[c], inv_ptr[c + 1]):
                ov[i, inv_idx[p]] += 1
    return ov


# ----------------------------------------------------------------------------- receptive fields
def grid_rfs(height: int, width: int, rf: int, stride: int) -> tuple[list[np.ndarray], tuple]:
    """Square receptive fields (rf x rf pixels, given stride) tiling an image; row-major indices.

    Returns the list of flat pixel-index arrays and the (rows, cols) shape of the mac grid.
    """
    if rf > min(height, width) or rf < 1 or stride < 1:
        raise BiolearnError(f"receptive field {rf} / stride {stride} does not fit "
                            f"{height}x{width}", "Sparsey level 1", "use 1 <= rf <= image side")
    rows = list(range(0, height - rf + 1, stride))
    cols = list(range(0, width - rf + 1, stride))
    rfs = []
    for r in rows:
        for c in cols:
            yy, xx = np.meshgrid(np.arange(r, r + rf), np.arange(c, c + rf), indexing="ij")
            rfs.append((yy * width + xx).ravel())
    return rfs, (len(rows), len(cols))


def group_rfs(grid: tuple[int, int], group: int, stride: int, cells: int
              ) -> tuple[list[np.ndarray], tuple]:
    """Receptive fields of a higher level: group x group blocks of lower macs (all their cells)."""
    rows, cols = grid
    g_r = min(group, rows)
    g_c = min(group, cols)
    rr = list(range(0, rows - g_r + 1, stride)) or [0]
    cc = list(range(0, cols - g_c + 1, stride)) or [0]
    rfs = []
    for r in rr:
        for c in cc:
            macs = [(r + i) * cols + (c + j) for i in range(g_r) for j in range(g_c)]
            rfs.append(np.concatenate([np.arange(mm * cells, (mm + 1) * cells) for mm in macs]))
    return rfs, (len(rr), len(cc))


# ----------------------------------------------------------------------------- fronts
@dataclass
class Level:
    """M macs sharing :class:`CSAParams`, each over its receptive field of the level's input."""

    rfs: list[np.ndarray]
    params: CSAParams = field(default_factory=CSAParams)
    sequence: bool = False

    def __post_init__(self) -> None:
        M = len(self.rfs)
        if M == 0:
            raise BiolearnError("a level needs at least one receptive field", "Sparsey level",
                                "check rf / stride")
        self.rf_len = np.array([len(r) for r in self.rfs], dtype=np.int64)
        self.rf_idx = np.zeros((M, int(self.rf_len.max())), dtype=np.int64)
        for m, r in enumerate(self.rfs):
            self.rf_idx[m, : len(r)] = r
        C = self.params.Q * self.params.K
        self.W_U = np.zeros((M, self.rf_idx.shape[1], C), dtype=np.uint8)
        self.W_H = np.zeros((M, C, C) if self.sequence else (M, 1, 1), dtype=np.uint8)
        self.frozen = np.zeros(M, dtype=np.bool_)
        self.n_set = np.zeros(M, dtype=np.int64)
        self.n_w = np.zeros((M, C), dtype=np.int64)
        self.prev = -np.ones((M, self.params.Q), dtype=np.int64)

    def copy(self) -> Level:
        """An independent copy (weights, freeze state and previous codes)."""
        import copy

        return copy.deepcopy(self)

    @property
    def n_macs(self) -> int:
        return len(self.rfs)

    @property
    def cells(self) -> int:
        return self.params.Q * self.params.K

    def run(self, X: np.ndarray, learn: bool, rng: np.random.Generator | None = None,
            seq_start: np.ndarray | None = None, keep_state: bool = False
            ) -> tuple[np.ndarray, np.ndarray]:
        """Present frames X (bool [N, D], time order) to all macs; returns codes [N,M,Q], G [N,M].

        ``seq_start[t]`` marks the first frame of a sequence (resets the previous code); in
        spatial mode every frame is its own sequence. ``keep_state`` carries the previous code
        over from the last call (sequence mode, frame-by-frame use).
        """
        X = np.ascontiguousarray(X, dtype=np.bool_)
        if X.ndim != 2 or X.shape[1] <= int(self.rf_idx.max()):
            raise BiolearnError(f"input of shape {X.shape} is smaller than the receptive fields",
                                "Sparsey level", "pass [N, D] frames matching the layout")
        N = X.shape[0]
        if seq_start is None:
            seq_start = np.ones(N, dtype=np.bool_) if not self.sequence else np.zeros(N, np.bool_)
            if self.sequence and not keep_state and N:
                seq_start[0] = True
        seq_start = np.asarray(seq_start, dtype=np.bool_)
        indptr, indices = _gather(X, self.rf_idx, self.rf_len)
        p = self.params
        if learn:
            if rng is None:
                raise BiolearnError("learning needs a random generator", "Sparsey level",
                                    "pass rng=np.random.default_rng(seed)")
            uniforms = rng.random((N, self.n_macs, p.Q))
        else:
            uniforms = np.zeros((1, 1, 1))
        codes = np.empty((N, self.n_macs, p.Q), dtype=np.int64)
        G = np.empty((N, self.n_macs))
        _csa_level(indptr, indices, self.rf_len, self.W_U, self.W_H, self.sequence, seq_start,
                   p.Q, p.K, p.vector(), learn, self.frozen, self.n_set, self.n_w, uniforms,
                   self.prev, codes, G)
        return codes, G


def codes_to_binary(codes: np.ndarray, cells: int) -> np.ndarray:
    """Codes [N, M, Q] (cell indices, -1 inactive) -> bool [N, M*cells] activity vectors."""
    N, M, Q = codes.shape
    out = np.zeros((N, M * cells), dtype=np.bool_)
    glob = codes + (np.arange(M) * cells)[None, :, None]
    t, m, q = np.nonzero(codes >= 0)
    out[t, glob[t, m, q]] = True
    return out


class Mac(Level):
    """A single mac over an input of ``n_in`` binary units (convenience front for one RF)."""

    def __init__(self, n_in: int, params: CSAParams | None = None, sequence: bool = False):
        super().__init__([np.arange(n_in)], params or CSAParams(), sequence)

    def present(self, active: np.ndarray | None, learn: bool,
                rng: np.random.Generator | None = None, new_sequence: bool = False
                ) -> tuple[np.ndarray, float]:
        """Present one input (indices of active units, or None = no bottom-up input).

        Returns (code as Q cell indices, familiarity G). In sequence mode the previous code is
        kept between calls until ``new_sequence``.
        """
        X = np.zeros((1, self.rf_idx.shape[1]), dtype=np.bool_)
        if active is not None:
            X[0, np.asarray(active, dtype=np.int64)] = True
        codes, G = self.run(X, learn, rng, seq_start=np.array([new_sequence or not self.sequence]))
        return codes[0, 0], float(G[0, 0])

    def recall_sequence(self, first: np.ndarray, length: int) -> list[np.ndarray]:
        """Retrieve a learned sequence from its first item: later steps use only the horizontal
        input from the previous code (V = H^lambda_H)."""
        if not self.sequence:
            raise BiolearnError("recall_sequence needs a sequence-mode mac", "Sparsey mac",
                                "build it with sequence=True")
        out = [self.present(first, learn=False, new_sequence=True)[0]]
        for _ in range(length - 1):
            out.append(self.present(None, learn=False)[0])
        return out


class SparseyHierarchy:
    """Levels of macs: level 1 over image receptive fields, level l+1 over blocks of level l."""

    def __init__(self, levels: list[Level]):
        self.levels = levels

    @classmethod
    def for_images(cls, height: int, width: int, rf: int, stride: int, p1: CSAParams,
                   group: int, group_stride: int, p2: CSAParams, sequence: bool = False
                   ) -> SparseyHierarchy:
        """Two-level hierarchy: rf x rf pixel fields, then group x group blocks of level-1 macs."""
        rfs1, grid1 = grid_rfs(height, width, rf, stride)
        l1 = Level(rfs1, p1, sequence)
        rfs2, _ = group_rfs(grid1, group, group_stride, l1.cells)
        return cls([l1, Level(rfs2, p2, sequence)])

    def run(self, X: np.ndarray, learn: bool, rng: np.random.Generator | None = None,
            seq_start: np.ndarray | None = None) -> list[np.ndarray]:
        """Codes of every level for frames X (bool [N, D]); learning goes level by level."""
        out = []
        x = X
        for lvl in self.levels:
            codes, _ = lvl.run(x, learn, rng, seq_start)
            out.append(codes)
            x = codes_to_binary(codes, lvl.cells)
        return out


# ----------------------------------------------------------------------------- code similarity
def code_overlap(a: np.ndarray, b: np.ndarray) -> int:
    """Intersection size of two codes given as cell-index arrays (inactive entries ignored)."""
    a = np.asarray(a)
    b = np.asarray(b)
    return int(np.intersect1d(a[a >= 0], b[b >= 0]).size)


def overlap_matrix(test_codes: list[np.ndarray], train_codes: list[np.ndarray],
                   cells: list[int] | None = None) -> np.ndarray:
    """ov[i, j]: shared winners between test item i and train item j, summed over levels/macs."""
    n_train = train_codes[0].shape[0]
    tr = []
    te = []
    offset = 0
    for lvl, (a, b) in enumerate(zip(test_codes, train_codes, strict=True)):
        C = cells[lvl] if cells else int(max(a.max(), b.max())) + 1
        M, Q = a.shape[1], a.shape[2]
        base = offset + (np.arange(M) * C)[None, :, None]
        te.append(np.where(a >= 0, a + base, -1).reshape(a.shape[0], M * Q))
        tr.append(np.where(b >= 0, b + base, -1).reshape(n_train, M * Q))
        offset += M * C
    te_f = np.concatenate(te, axis=1)
    tr_f = np.concatenate(tr, axis=1)
    flat = tr_f.ravel()
    rows = np.repeat(np.arange(n_train), tr_f.shape[1])
    keep = flat >= 0
    flat, rows = flat[keep], rows[keep]
    order = np.argsort(flat, kind="stable")
    inv_idx = rows[order].astype(np.int64)
    inv_ptr = np.zeros(offset + 1, dtype=np.int64)
    np.add.at(inv_ptr, flat + 1, 1)
    inv_ptr = np.cumsum(inv_ptr)
    return _overlap_counts(np.ascontiguousarray(te_f), inv_ptr, inv_idx, n_train, offset)


def knn_code_overlap(ov: np.ndarray, train_labels: np.ndarray, k: int = 1,
                     n_classes: int | None = None) -> np.ndarray:
    """k-NN with code overlap as similarity; votes weighted by overlap, ties -> lower label."""
    n_classes = n_classes or int(train_labels.max()) + 1
    k = min(k, ov.shape[1])
    idx = np.argpartition(-ov, k - 1, axis=1)[:, :k]
    votes = np.zeros((ov.shape[0], n_classes))
    w = np.take_along_axis(ov, idx, axis=1).astype(float)
    np.add.at(votes, (np.repeat(np.arange(ov.shape[0]), k), train_labels[idx].ravel()), w.ravel())
    return votes.argmax(axis=1)
