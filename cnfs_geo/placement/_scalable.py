"""Engine of the national MCLP solver: exact reductions, greedy, swap search, LNS windows
re-solved by HiGHS and the Lagrangian bound (block-coordinate descent on regional LPs).

The public entry point is :func:`cnfs_geo.placement.mclp_scalable_from_od`; method in
``docs/methods_placement.md``. The bound's LPs call :func:`scipy.optimize.linprog`
directly (continuous LPs, no tie-break or stdout issue); every MILP goes through
:mod:`._milp`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import LinearConstraint, linprog

from .._errors import PlacementError
from . import _milp
from ._base import CompiledRules, Instance, PlacementResult, Solution, build_result, coverage_sets

log = logging.getLogger(__name__)

SCALABLE_SOLVER = "greedy+swap+LNS / Lagrangian bound"
SCALABLE_TIE_BREAK = (
    "deterministic: greedy and swaps break ties by candidate rank (ids "
    "sorted); LNS windows are solved by HiGHS in a fixed order; identical "
    "when the search ends before time_limit_s"
)
AUTO_EXACT_MAX = 2_000  # method="auto": exact up to this many candidates and rows
# LNS window size: open posts × candidates in a window (the window MILP's effort). Measured
# on metropolitan France (p=4000/10 min and p=1000/20 min, 30 s of LNS from the same start):
# 1000 → +0.39/+0.41 pt, 1600 → +0.41/+0.48 pt, 2500 → +0.34/+0.33 pt, 4000 → +0.22/+0.23 pt.
_LNS_WORK = 1_600
_LNS_MAX_CANDIDATES = 400


@dataclass
class Reduced:
    """MCLP instance after exact reductions (see :func:`reduce_mclp`)."""

    a: sparse.csr_array  # merged demand rows × kept candidates (0/1)
    at: sparse.csr_array  # its transpose (kept candidates × rows)
    w: np.ndarray  # weight of each merged row
    cand: np.ndarray  # kept candidate positions (inst.cand order)
    n_dominated: int  # candidates dropped as dominated
    n_useless: int  # candidates covering no live unit


@dataclass
class _Progress:
    """Best objective and bound found so far by the search threads, and why they stop."""

    best: float = 0.0
    bound: float = np.inf
    stopped_by: str | None = None


def _csr_bool(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sparse.csr_array:
    a = sparse.csr_array((np.ones(len(rows)), (rows, cols)), shape=shape)
    a.sum_duplicates()
    a.data[:] = 1.0
    a.sort_indices()
    return a


def _merge_identical_rows(
    a: sparse.csr_array, w: np.ndarray
) -> tuple[sparse.csr_array, np.ndarray]:
    """Merge rows with the same column set (weights summed), in first-occurrence order."""
    ind, ptr = a.indices, a.indptr
    keys: dict[bytes, int] = {}
    grp = np.empty(a.shape[0], dtype=np.int64)
    for r in range(a.shape[0]):
        grp[r] = keys.setdefault(ind[ptr[r] : ptr[r + 1]].tobytes(), len(keys))
    g = sparse.csr_array(
        (np.ones(len(grp)), (grp, np.arange(len(grp)))), shape=(len(keys), len(grp))
    )
    merged = sparse.csr_array(g @ a)
    merged.data[:] = 1.0
    merged.sort_indices()
    return merged, g @ w


def _dominated_columns(at: sparse.csr_array) -> np.ndarray:
    """Candidates whose coverage set is inside another one's (equal sets: keep the first)."""
    deg = np.diff(at.indptr)
    if np.square(deg.astype(float)).sum() > 5e8:  # guard: skip on pathological density
        return deg == 0
    c = sparse.coo_array(at @ at.T)
    sub = (c.data >= deg[c.row] - 0.5) & (c.row != c.col)  # N(row) ⊆ N(col)
    eq = sub & (deg[c.col] == deg[c.row])
    dom = deg == 0
    dom[c.row[sub & ~eq]] = True
    dom[c.row[eq & (c.col < c.row)]] = True
    return dom


def reduce_mclp(inst: Instance, by_exist: np.ndarray, cu: np.ndarray, cj: np.ndarray) -> Reduced:
    """Exact reductions of the MCLP: the optimum value of the reduced instance is that of
    the full one (so a bound of the reduced instance bounds the full one).

    * demand units already covered, with zero weight or that no candidate reaches are
      left out (they contribute the same to every solution);
    * units with the same candidate set are merged (weights summed);
    * a candidate whose set is included in another candidate's set is dropped (swapping
      it for the other one, or for any unused candidate when that one is open already,
      never lowers coverage); of identical sets the lowest-ranked is kept.
    """
    live = ~by_exist[cu] & (inst.w[cu] > 0)
    u, j = cu[live], cj[live]
    rows = np.unique(u)
    pos = np.full(inst.nd, -1, dtype=np.int64)
    pos[rows] = np.arange(len(rows))
    a = _csr_bool(pos[u], j, (len(rows), inst.nc))
    a, w = _merge_identical_rows(a, inst.w[rows])
    at = sparse.csr_array(a.T)
    at.sort_indices()
    deg = np.diff(at.indptr)
    dom = _dominated_columns(at)
    keep = np.flatnonzero(~dom)
    a = sparse.csr_array(a[:, keep])
    a.sort_indices()
    at = sparse.csr_array(a.T)
    at.sort_indices()
    return Reduced(
        a=a,
        at=at,
        w=np.asarray(w, dtype=float),
        cand=keep,
        n_dominated=int((dom & (deg > 0)).sum()),
        n_useless=int((deg == 0).sum()),
    )


def _coverage_value(a: sparse.csr_array, w: np.ndarray, x: np.ndarray) -> float:
    return float(w[(a @ x.astype(float)) > 0].sum())


def _greedy(a: sparse.csr_array, at: sparse.csr_array, w: np.ndarray, p: int) -> np.ndarray:
    """Greedy: repeatedly open the candidate adding the most uncovered weight (ties: rank)."""
    m, n = a.shape
    gain = at @ w
    covered = np.zeros(m, dtype=bool)
    x = np.zeros(n, dtype=bool)
    for _ in range(min(p, n)):
        j = int(np.argmax(gain))
        if not gain[j] > 0:
            break
        x[j] = True
        gain[j] = -np.inf
        us = at.indices[at.indptr[j] : at.indptr[j + 1]]
        new = us[~covered[us]]
        if len(new):
            covered[new] = True
            sub = a[new]
            np.subtract.at(gain, sub.indices, np.repeat(w[new], np.diff(sub.indptr)))
    short = min(p, n) - int(x.sum())
    if short > 0:  # nothing left to gain: lowest-ranked candidates
        x[np.flatnonzero(~x)[:short]] = True
    return x


def _swap_search(
    a: sparse.csr_array,
    at: sparse.csr_array,
    w: np.ndarray,
    x: np.ndarray,
    deadline: float,
    stop: Any = None,
    max_rounds: int = 10_000,
) -> tuple[np.ndarray, int]:
    """Best-improvement swap (interchange) local search, vectorised on sparse products.

    Every swap (open ``k``, close ``j``) is valued exactly: gain(k) − loss(j) + E[k, j],
    where gain(k) is the uncovered weight ``k`` reaches, loss(j) the weight only ``j``
    covers and E[k, j] the part of that weight ``k`` would cover too (sparse product).
    Each round applies the best improving swaps whose demand rows do not overlap (their
    gains then add up exactly); it stops at a swap-optimal solution.
    """
    m, n = a.shape
    x = x.copy()
    rounds = 0
    if x.all() or not x.any():
        return x, rounds
    while (
        rounds < max_rounds
        and time.perf_counter() < deadline
        and not (stop is not None and stop.is_set())
    ):
        rounds += 1
        cnt = a @ x.astype(float)
        u0, u1 = cnt == 0, cnt == 1
        gain = at @ (w * u0)
        gain[x] = -np.inf
        loss = at @ (w * u1)
        loss[~x] = np.inf
        one = np.flatnonzero(u1)
        sub = a[one]
        lens = np.diff(sub.indptr)
        is_open = x[sub.indices]
        sole = np.empty(len(one), dtype=np.int64)
        sole[np.repeat(np.arange(len(one)), lens)[is_open]] = sub.indices[is_open]
        kk, jj = sub.indices, np.repeat(sole, lens)
        ww = np.repeat(w[one], lens)
        closed = ~is_open
        e = sparse.csr_array((ww[closed], (kk[closed], jj[closed])), shape=(n, n))
        e.sum_duplicates()
        ec = sparse.coo_array(e)
        delta_e = gain[ec.row] - loss[ec.col] + ec.data
        top = min(2_000, int((~x).sum()), int(x.sum()))
        top_in = np.argsort(-gain, kind="stable")[:top]
        top_out = np.argsort(loss, kind="stable")[:top]
        delta_f = gain[top_in] - loss[top_out] + np.asarray(e[top_in, top_out]).ravel()
        ks = np.r_[ec.row, top_in]
        js = np.r_[ec.col, top_out]
        dl = np.r_[delta_e, delta_f]
        tol = 1e-9 * max(1.0, float(w.sum()))
        good = np.flatnonzero(dl > tol)
        if not len(good):
            break
        order = good[np.argsort(-dl[good], kind="stable")]
        used_u = np.zeros(m, dtype=bool)
        used_c = np.zeros(n, dtype=bool)
        for o in order:
            k, j = ks[o], js[o]
            if used_c[k] or used_c[j]:
                continue
            uk = at.indices[at.indptr[k] : at.indptr[k + 1]]
            uj = at.indices[at.indptr[j] : at.indptr[j + 1]]
            if used_u[uk].any() or used_u[uj].any():
                continue
            used_u[uk] = True
            used_u[uj] = True
            used_c[k] = used_c[j] = True
            x[k], x[j] = True, False
    return x, rounds


def _window(
    a: sparse.csr_array,
    at: sparse.csr_array,
    x: np.ndarray,
    u: int,
    *,
    work: int,
    max_candidates: int,
) -> np.ndarray:
    """Candidates around demand row ``u`` for one LNS move.

    Breadth-first over rows and candidates (a row's candidates, a candidate's rows) from
    ``u``, candidates by rank within a level, until (open posts in the window) ×
    (candidates in the window) reaches ``work`` or ``max_candidates`` candidates: the
    window MILP stays small where posts are dense and spreads where they are sparse.
    """
    seen_r = np.zeros(a.shape[0], dtype=bool)
    seen_c = np.zeros(a.shape[1], dtype=bool)
    seen_r[u] = True
    rows, found, total, n_open = np.array([u]), [], 0, 0
    while len(rows) and total < max_candidates and n_open * total < work:
        cands = np.unique(a[rows].indices)
        cands = cands[~seen_c[cands]]
        if not len(cands):
            break
        size = total + np.arange(1, len(cands) + 1)
        opened = n_open + np.cumsum(x[cands])
        over = np.flatnonzero((opened * size >= work) | (size >= max_candidates))
        if len(over):
            cands = cands[: over[0] + 1]
        seen_c[cands] = True
        found.append(cands)
        total += len(cands)
        n_open += int(x[cands].sum())
        rows = np.unique(at[cands].indices)
        rows = rows[~seen_r[rows]]
        seen_r[rows] = True
    return np.sort(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)


def _solve_window(
    a: sparse.csr_array,
    at: sparse.csr_array,
    w: np.ndarray,
    x: np.ndarray,
    cnt: np.ndarray,
    cands: np.ndarray,
    time_limit: float,
) -> tuple[float, np.ndarray | None]:
    """Re-place optimally (HiGHS) the open posts among ``cands``, the others fixed.

    Returns the exact gain and the new open flags of ``cands`` (None if no gain).
    """
    sub = at[cands]
    rows = np.unique(sub.indices)
    open_c = x[cands]
    k = int(open_c.sum())
    if k == 0 or len(rows) == 0:
        return 0.0, None
    inside = np.asarray(sub[open_c][:, rows].sum(axis=0)).ravel()
    free = rows[(cnt[rows] - inside) <= 0]  # rows no post outside the window covers
    if len(free) == 0:
        return 0.0, None
    m_full = sparse.csr_array(sub[:, free].T)  # free rows × window candidates
    wf = w[free]
    current = float(wf[(m_full @ open_c.astype(float)) > 0].sum())
    m2, w2 = _merge_identical_rows(m_full, wf)
    keep = np.flatnonzero(~_dominated_columns(sparse.csr_array(m2.T)))
    nk, nr = len(keep), m2.shape[0]
    new = np.zeros(len(cands), dtype=bool)
    if nk <= k:
        new[keep] = True
        new[np.flatnonzero(~new)[: k - nk]] = True
    else:
        m3 = sparse.csr_array(m2[:, keep])
        c = np.r_[np.zeros(nk), -w2]
        cons = [
            LinearConstraint(sparse.hstack([-m3, sparse.identity(nr)]).tocsr(), -np.inf, 0),
            LinearConstraint(np.r_[np.ones(nk), np.zeros(nr)].reshape(1, -1), k, k),
        ]
        res, _ = _milp.solve(
            c,
            integrality=np.r_[np.ones(nk), np.zeros(nr)],
            lb=0,
            ub=1,
            constraints=cons,
            time_limit_s=max(time_limit, 0.05),
        )
        if res.x is None:
            return 0.0, None
        new[keep[res.x[:nk] > 0.5]] = True
    value = float(wf[(m_full @ new.astype(float)) > 0].sum())
    if value > current + 1e-9 * max(1.0, float(wf.sum())):
        return value - current, new
    return 0.0, None


def _lns(
    a: sparse.csr_array,
    at: sparse.csr_array,
    w: np.ndarray,
    x: np.ndarray,
    *,
    work: int,
    max_candidates: int,
    deadline: float,
    stop: Any,
    on_improve: Callable[[float], None],
    window_time_s: float = 2.0,
) -> tuple[np.ndarray, dict[str, int]]:
    """Large neighbourhood search: windows around uncovered rows re-solved exactly.

    Seeds are the uncovered demand rows, heaviest first (ties: row order); a seed is tried
    once, and tried again when a later move changes a post near it. Ends when no seed is
    left, at the deadline or when ``stop`` is set.
    """
    x = x.copy()
    cnt = a @ x.astype(float)
    tried = np.zeros(a.shape[0], dtype=bool)
    stats: dict[str, Any] = {"windows": 0, "improvements": 0, "ended": "deadline"}
    value = float(w[cnt > 0].sum())
    while time.perf_counter() < deadline:
        if stop.is_set():
            stats["ended"] = "stop"
            break
        seeds = np.flatnonzero((cnt == 0) & ~tried)
        if not len(seeds):
            stats["ended"] = "exhausted"
            break
        u = int(seeds[np.lexsort((seeds, -w[seeds]))[0]])
        tried[u] = True
        cands = _window(a, at, x, u, work=work, max_candidates=max_candidates)
        gain, new = _solve_window(
            a, at, w, x, cnt, cands, min(window_time_s, deadline - time.perf_counter())
        )
        stats["windows"] += 1
        if new is None:
            continue
        changed = cands[x[cands] != new]
        for j in changed:
            us = at.indices[at.indptr[j] : at.indptr[j + 1]]
            cnt[us] += 1.0 if new[np.searchsorted(cands, j)] else -1.0
        x[cands] = new
        tried[np.unique(at[changed].indices)] = False
        tried[u] = cnt[u] == 0
        stats["improvements"] += 1
        value += gain
        on_improve(value)
    return x, stats


def lagrangian_value(at: sparse.csr_array, w: np.ndarray, lam: np.ndarray, p: int) -> float:
    """L(λ) = Σ_i max(0, w_i − λ_i) + (sum of the p largest Σ_i a_ij λ_i): for any λ ≥ 0 an
    upper bound of the MCLP (relaxing y_i ≤ Σ_j a_ij x_j with multipliers λ_i)."""
    s = at @ lam
    top = (
        np.partition(s, len(s) - p)[len(s) - p :].sum()
        if 0 < p < len(s)
        else (s.sum() if p >= len(s) else 0.0)
    )
    return float(np.maximum(w - lam, 0.0).sum() + top)


def _dual_ascent(
    a: sparse.csr_array, at: sparse.csr_array, w: np.ndarray, mu: float, iters: int = 30
) -> np.ndarray:
    """Raise the multipliers of every row together while no candidate exceeds ``mu``."""
    m = a.shape[0]
    lam = np.zeros(m)
    s = np.zeros(a.shape[1])
    empty = np.diff(a.indptr) == 0
    for _ in range(iters):
        slack = mu - s
        tight = slack <= 1e-9 * mu
        active = (lam < w - 1e-12) & ((a @ tight.astype(float)) == 0) & ~empty
        if not active.any():
            break
        deg = at @ active.astype(float)
        ratio = np.where(deg > 0, slack / np.maximum(deg, 1.0), np.inf)
        rmin = np.full(m, np.inf)
        rmin[~empty] = np.minimum.reduceat(ratio[a.indices], a.indptr[:-1][~empty])
        step = np.where(active, np.minimum(w - lam, rmin), 0.0)
        if not (step > 0).any():
            break
        lam += step
        s = at @ lam
    return np.minimum(lam, w)


def _row_blocks(
    a: sparse.csr_array, at: sparse.csr_array, order: np.ndarray, target_nnz: int
) -> np.ndarray:
    """Partition demand rows into connected blocks grown breadth-first from seeds taken in
    ``order`` until their coverage entries reach ``target_nnz``."""
    m = a.shape[0]
    label = np.full(m, -1, dtype=np.int64)
    row_nnz = np.diff(a.indptr)
    b = 0
    for s in order:
        if label[s] >= 0:
            continue
        label[s] = b
        size, frontier = int(row_nnz[s]), np.array([s])
        while size < target_nnz and len(frontier):
            cands = np.unique(a[frontier].indices)
            rows = np.unique(at[cands].indices)
            new = rows[label[rows] < 0]
            label[new] = b
            size += int(row_nnz[new].sum())
            frontier = new
        b += 1
    return label


def _bcd_bound(
    a: sparse.csr_array,
    at: sparse.csr_array,
    w: np.ndarray,
    p: int,
    mu0: float,
    *,
    deadline: float,
    stop: Any,
    on_bound: Callable[[float], None],
    seed: int,
    target_nnz: int = 40_000,
    max_sweeps: int = 200,
    rel_tol: float = 2e-6,
) -> tuple[float, dict[str, Any]]:
    """Lagrangian bound min_λ L(λ) by block-coordinate descent on regional LPs.

    For a facility price μ, min_λ G(λ, μ) = pμ + Σ_i (w_i − λ_i) + Σ_j (s_j − μ)^+ (s = Aᵀλ,
    0 ≤ λ ≤ w) is the LP dual of the MCLP with Σx = p priced at μ. One sweep partitions the
    rows into blocks and, block after block, minimises G over the block's λ exactly (a small
    LP solved by HiGHS, the other λ fixed); μ is re-estimated after each sweep from the
    blocks' primal posts. Every λ gives a valid bound L(λ) = min_μ G(λ, μ) (evaluated
    exactly after each sweep), so the search may stop at any time.
    """
    m, n = a.shape
    rng = np.random.default_rng(seed)
    mu = float(mu0)
    lam = _dual_ascent(a, at, w, mu)
    best = lagrangian_value(at, w, lam, p)
    on_bound(best)
    history = [best]
    sweeps = 0
    first_rows = None
    ended = "max_sweeps"
    while sweeps < max_sweeps:
        if time.perf_counter() >= deadline:
            ended = "deadline"
            break
        if stop.is_set():
            ended = "stop"
            break
        order = np.arange(m) if sweeps == 0 else rng.permutation(m)
        label = _row_blocks(a, at, order, target_nnz)
        nb = int(label.max()) + 1
        if first_rows is None:
            first_rows = nb
        # home block of each candidate: the block holding most of its rows
        home = sparse.csr_array(
            (
                np.ones(len(at.indices)),
                (np.repeat(np.arange(n), np.diff(at.indptr)), label[at.indices]),
            ),
            shape=(n, nb),
        )
        home = np.asarray(home.argmax(axis=1)).ravel()
        xs = np.zeros(n)
        s = at @ lam
        members = np.argsort(label, kind="stable")
        cuts = np.searchsorted(label[members], np.arange(nb + 1))
        for b in range(nb):
            if time.perf_counter() >= deadline or stop.is_set():
                break
            rows = members[cuts[b] : cuts[b + 1]]
            ab = a[rows]
            cands = np.unique(ab.indices)
            if len(cands) == 0:
                continue
            abc = sparse.csr_array(ab[:, cands])
            s_out = s[cands] - abc.T @ lam[rows]
            nr, nc = len(rows), len(cands)
            cost = np.r_[-np.ones(nr), np.ones(nc)]
            a_ub = sparse.hstack([sparse.csr_array(abc.T), -sparse.identity(nc)]).tocsr()
            bounds = np.c_[np.zeros(nr + nc), np.r_[w[rows], np.full(nc, np.inf)]]
            res = linprog(cost, A_ub=a_ub, b_ub=mu - s_out, bounds=bounds, method="highs-ipm")
            if res.status != 0 or res.x is None:
                continue
            new = np.clip(res.x[:nr], 0.0, w[rows])
            s[cands] += abc.T @ (new - lam[rows])
            lam[rows] = new
            mine = home[cands] == b
            xs[cands[mine]] = np.clip(-res.ineqlin.marginals[mine], 0.0, 1.0)
        sweeps += 1
        value = lagrangian_value(at, w, lam, p)
        if value < best:
            best = value
            on_bound(best)
        history.append(best)
        # price of a post: more posts than p in the blocks' LPs → μ too low
        total_x = float(xs.sum())
        if total_x > 0:
            mu *= float(np.clip((total_x / p) ** 2, 2 / 3, 1.5))
        if len(history) >= 3 and history[-3] - history[-1] <= rel_tol * history[-1]:
            ended = "converged"
            break
    return best, {
        "sweeps": sweeps,
        "blocks": first_rows or 0,
        "mu": mu,
        "ended": ended,
        "history": [float(h) for h in history],
    }


def check_scalable_args(
    time_limit_s: Any, target_gap: Any, seed: Any, threads: Any, window_work: Any
) -> None:
    problems = []
    if (
        isinstance(time_limit_s, bool)
        or not isinstance(time_limit_s, (int, float, np.number))
        or not np.isfinite(time_limit_s)
        or time_limit_s <= 0
    ):
        problems.append(
            f"time_limit_s={time_limit_s!r}: must be a positive number of seconds; "
            "fix: e.g. time_limit_s=60"
        )
    if (
        isinstance(target_gap, bool)
        or not isinstance(target_gap, (int, float, np.number))
        or not 0 <= target_gap < 1
    ):
        problems.append(
            f"target_gap={target_gap!r}: must be a fraction in [0, 1); fix: e.g. "
            "target_gap=0.01 to stop at a proven 1 % gap, 0 to search until the "
            "time limit or convergence"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        problems.append(f"seed={seed!r}: must be an integer")
    if threads not in (1, 2):
        problems.append(
            f"threads={threads!r}: must be 1 (sequential) or 2 (bound and search run side by side)"
        )
    if window_work is not None and (
        isinstance(window_work, bool)
        or not isinstance(window_work, (int, np.integer))
        or window_work < 1
    ):
        problems.append(
            f"window_work={window_work!r}: must be a whole number >= 1 (open posts "
            f"× candidates per LNS window), or None ({_LNS_WORK})"
        )
    if problems:
        raise PlacementError("mclp_scalable", problems)


def mclp_scalable(
    inst: Instance,
    rules: CompiledRules,
    threshold: float,
    *,
    t_start: float,
    time_limit_s: float,
    target_gap: float,
    seed: int,
    threads: int,
    window_work: int | None,
) -> PlacementResult:
    """Scalable MCLP on a prepared instance (see :func:`mclp_scalable_from_od`)."""
    deadline = t_start + float(time_limit_s)
    assert rules.p is not None  # the callers pass rules with p set (only_p)
    p = int(rules.p)
    nc = inst.nc
    by_exist, cu, cj = coverage_sets(inst, threshold)
    reach = np.zeros(inst.nd, dtype=bool)
    reach[cu] = True
    uncoverable = ~by_exist & ~reach & (inst.w > 0)
    red = reduce_mclp(inst, by_exist, cu, cj)
    a, at, w = red.a, red.at, red.w
    m, n = a.shape
    w_live = float(w.sum())
    t_reduced = time.perf_counter() - t_start
    events: list[tuple[float, float, float]] = []
    state = _Progress()
    lock = threading.Lock()
    stop = threading.Event()
    info: dict[str, Any] = {}

    def note() -> None:
        events.append((time.perf_counter() - t_start, state.best, state.bound))
        bound, best = state.bound, state.best
        if not np.isfinite(bound):
            return
        if bound <= best + 1e-9 * max(1.0, bound):
            state.stopped_by = state.stopped_by or "optimal"
            stop.set()
        elif target_gap > 0 and (bound - best) / bound <= target_gap:
            state.stopped_by = state.stopped_by or "target_gap"
            stop.set()

    def on_improve(value: float) -> None:
        with lock:
            if value > state.best:
                state.best = value
                note()

    def on_bound(value: float) -> None:
        with lock:
            if value < state.bound:
                state.bound = value
                note()

    if p == 0 or m == 0:
        x = np.zeros(n, dtype=bool)
        x[: min(p, n)] = True
        state.best = state.bound = w_live if (m and p) else 0.0
        state.stopped_by = "optimal"
    elif n <= p:
        x = np.ones(n, dtype=bool)
        state.best = state.bound = w_live
        state.stopped_by = "optimal"
    else:
        x = _greedy(a, at, w, p)
        info["greedy_objective"] = _coverage_value(a, w, x)
        x, rounds = _swap_search(a, at, w, x, deadline)
        info["swap_rounds"] = rounds
        info["swap_objective"] = _coverage_value(a, w, x)
        state.best = info["swap_objective"]
        events.append((time.perf_counter() - t_start, state.best, np.inf))
        # first price of a post for the bound: a share of the best unopened candidate's gain
        cnt = a @ x.astype(float)
        gain = at @ (w * (cnt == 0))
        mu0 = 0.6 * float(gain[~x].max()) if (~x).any() else 0.0
        if not mu0 > 0:
            mu0 = float(np.min(w[w > 0])) if (w > 0).any() else 1.0
        work = int(window_work) if window_work is not None else _LNS_WORK
        target_nnz = int(np.clip(a.nnz / 60, 5_000, 40_000))

        def bound_job(until: float) -> tuple[float, dict[str, Any]]:
            return _bcd_bound(
                a,
                at,
                w,
                p,
                mu0,
                deadline=until,
                stop=stop,
                on_bound=on_bound,
                seed=seed,
                target_nnz=target_nnz,
            )

        def primal_job() -> tuple[np.ndarray, dict[str, Any]]:
            xx = x
            totals: dict[str, Any] = {
                "windows": 0,
                "improvements": 0,
                "passes": 0,
                "ended": "deadline",
            }
            k = work
            for _ in range(3):  # passes with growing windows
                if time.perf_counter() >= deadline or stop.is_set():
                    break
                xx, st = _lns(
                    a,
                    at,
                    w,
                    xx,
                    work=k,
                    max_candidates=_LNS_MAX_CANDIDATES,
                    deadline=deadline,
                    stop=stop,
                    on_improve=on_improve,
                )
                totals["windows"] += st["windows"]
                totals["improvements"] += st["improvements"]
                totals["passes"] += 1
                totals["ended"] = st["ended"]
                if st["improvements"] == 0 or st["ended"] != "exhausted":
                    break
                k = int(k * 1.5)
            xx, r2 = (
                _swap_search(a, at, w, xx, deadline + 0.0, stop=None, max_rounds=50)
                if time.perf_counter() < deadline
                else (xx, 0)
            )
            on_improve(_coverage_value(a, w, xx))
            totals["window_work"] = work
            return xx, totals

        if threads == 2:
            with ThreadPoolExecutor(max_workers=1) as pool:
                fut = pool.submit(bound_job, deadline)
                try:
                    x, lns_info = primal_job()
                except BaseException:
                    stop.set()
                    raise
                bound_value, bcd_info = fut.result()
        else:
            half = time.perf_counter() + (deadline - time.perf_counter()) / 2
            bound_value, bcd_info = bound_job(half)
            x, lns_info = primal_job()
        info.update({f"lns_{k}": v for k, v in lns_info.items()})
        info.update({f"bound_{k}": v for k, v in bcd_info.items()})
        info["bound_block_target_nnz"] = target_nnz
        info["mu_start"] = mu0
    # posts in the candidates' order; pad with the lowest-ranked when fewer than p
    chosen = np.zeros(nc, dtype=bool)
    chosen[red.cand[x]] = True
    short = p - int(chosen.sum())
    if short > 0:
        chosen[np.flatnonzero(~chosen)[:short]] = True
    objective = _coverage_value(a, w, x)
    bound = float(min(state.bound, w_live))
    if bound < objective:  # float noise only: the bound is valid by construction
        bound = objective
    gap = 0.0 if bound <= objective + 1e-9 * max(1.0, bound) else (bound - objective) / bound
    elapsed = time.perf_counter() - t_start
    if gap == 0.0:
        status = "optimal"
    elif state.stopped_by == "target_gap":
        status = "target_gap"
    elif "deadline" in (info.get("lns_ended"), info.get("bound_ended")):
        status = "time_limit"
    else:
        status = "converged"
    time_to = {}
    for g in (0.01, 0.005, 0.001):
        hit = [t for t, b, ub in events if np.isfinite(ub) and ub > 0 and (ub - b) / ub <= g]
        time_to[g] = round(min(hit), 3) if hit else None
    total = float(inst.w.sum())
    before = float(inst.w[by_exist].sum())
    details = {
        "weight_total": total,
        "weight_covered_before": before,
        "weight_covered_after": before + objective,
        "weight_uncoverable": float(inst.w[uncoverable].sum()),
        "units": inst.nd,
        "units_covered_before": int(by_exist.sum()),
        "units_uncoverable": int(uncoverable.sum()),
        "model_rows_merged": m,
        "candidates": nc,
        "candidates_in_model": n,
        "candidates_dominated": red.n_dominated,
        "candidates_covering_nothing": red.n_useless,
        "existing_sites": len(inst.exist_ids),
        "threshold_min": threshold,
        "rules": list(rules.labels),
        "time_reduction_s": round(t_reduced, 3),
        "time_to_gap_s": time_to,
        "gap_definition": "(bound - objective) / bound",
        "seed": seed,
        "threads": threads,
        "time_limit_s": float(time_limit_s),
        "target_gap": float(target_gap),
        **info,
    }
    sol = Solution(
        "mclp",
        objective,
        bound,
        gap,
        SCALABLE_SOLVER,
        status,
        round(elapsed, 4),
        n + m,
        m + 1,
        SCALABLE_TIE_BREAK,
        details,
    )
    log.info(
        "mclp (scalable): %d posts among %d candidates (%d in the reduced model), %.0f "
        "newly covered (%.2f %% → %.2f %% of weight at %g min), bound %.0f, gap %.3f %%, "
        "%s, %.1f s",
        p,
        nc,
        n,
        objective,
        100 * before / max(total, 1e-12),
        100 * (before + objective) / max(total, 1e-12),
        threshold,
        bound,
        100 * gap,
        status,
        elapsed,
    )
    return build_result(
        inst,
        chosen,
        threshold=threshold,
        model="mclp",
        covered_before=by_exist,
        rules=rules,
        solution=sol,
        uncoverable=uncoverable,
    )
