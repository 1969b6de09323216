"""Covering models: maximal covering (MCLP) and location set covering (LSCP).

Each has two entry points, like spopt's ``from_cost_matrix`` / ``from_geodataframe`` but
sparse: ``*_from_od`` takes a long OD table and ``*_from_geodataframes`` checks the CRS,
builds that table by crow-fly and delegates. Method: ``docs/methods_placement.md``.
"""

from __future__ import annotations

import logging
import time

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import LinearConstraint

from .._errors import PlacementError
from ..settings import DEFAULT, Settings
from ._base import (
    PlacementResult,
    Sites,
    Solved,
    build_result,
    check_threshold,
    compile_rules,
    coverage_sets,
    exact_solution,
    gdf_inputs,
    prepare,
    sample,
    two_phase,
)
from ._scalable import AUTO_EXACT_MAX, check_scalable_args, mclp_scalable
from .rules import Rules

__all__ = ["lscp_from_geodataframes", "lscp_from_od", "mclp_from_geodataframes", "mclp_from_od"]

log = logging.getLogger(__name__)


def _merge_rows(
    units: np.ndarray, cands: np.ndarray, weight: np.ndarray
) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Group units with identical candidate sets; returns sets and summed weights."""
    order = np.lexsort((cands, units))
    u, j = units[order], cands[order]
    sets: dict[tuple[int, ...], float] = {}
    if len(u):
        cuts = np.flatnonzero(np.r_[True, u[1:] != u[:-1], True])
        for a, b in zip(cuts[:-1], cuts[1:]):
            key = tuple(j[a:b].tolist())
            sets[key] = sets.get(key, 0.0) + float(weight[u[a]])
    keys = sorted(sets)
    return keys, np.array([sets[k] for k in keys], dtype=float)


def _rows_matrix(
    keys: list[tuple[int, ...]], nvars: int, *, offset_y: int | None
) -> sparse.csr_array:
    """Coverage rows: −Σ x_j (+ y_r when ``offset_y`` is given)."""
    r = np.repeat(np.arange(len(keys)), [len(k) for k in keys])
    cidx = np.fromiter((j for k in keys for j in k), dtype=np.int64, count=len(r))
    data = -np.ones(len(r))
    if offset_y is not None:
        r = np.r_[r, np.arange(len(keys))]
        cidx = np.r_[cidx, offset_y + np.arange(len(keys))]
        data = np.r_[data, np.ones(len(keys))]
    return sparse.csr_array((data, (r, cidx)), shape=(len(keys), nvars))


# ----------------------------------------------------------------------------------------
# MCLP
# ----------------------------------------------------------------------------------------
def mclp_from_od(
    od: pd.DataFrame,
    weights: pd.Series,
    *,
    p: int | None,
    threshold: float,
    candidates: Sites = None,
    already_covered: pd.Series | None = None,
    demand: pd.DataFrame | None = None,
    rules: Rules | None = None,
    method: str = "auto",
    time_limit_s: float | None = None,
    settings: Settings = DEFAULT,
) -> PlacementResult:
    """Maximal covering location: ``p`` new posts maximising the weight newly covered.

    Parameters
    ----------
    od : DataFrame
        Long OD table ``origin_id`` (demand unit), ``destination_id`` (candidate or
        existing site), ``minutes``; pairs absent are unreachable. Only pairs within
        ``threshold`` matter, so the table may be cut there.
    weights : Series
        Demand weight per unit (index = demand id, e.g. ``communes["need"]``),
        finite and >= 0.
    p : int or None
        Exactly ``p`` new posts (None: as many as ``budget_eur`` pays).
    threshold : float
        Coverage threshold in minutes (``settings.threshold_minutes``).
    candidates : list of ids, DataFrame or None
        Candidate sites (ids present in ``od.destination_id``). A DataFrame is indexed
        by candidate id (or has a ``candidate_id`` column) and may carry ``insee``,
        ``host``, group columns, ``x``/``y`` and a point ``geometry`` (then ``posts``
        is a GeoDataFrame). None: every destination of ``od`` that is not existing.
    already_covered : Series of bool, optional
        Demand units already covered by the existing offer (alternative or complement
        to ``rules.existing``).
    demand : DataFrame, optional
        Indexed like ``weights``; its ``population`` / ``need`` columns fill the posts'
        ``covered_population`` / ``covered_need``. Without it, the column named like
        ``weights`` (``weights.name``) is filled from the weights, the other is NaN.
    rules : Rules, optional
        Existing sites, eligible hosts, budget, quotas, separation
        (:class:`~cnfs_geo.placement.Rules`; None: no rule).
    method : {"auto", "exact", "scalable"}
        ``"exact"``: sparse MILP solved to optimality by HiGHS (within
        ``settings.milp_time_limit_s``). ``"scalable"``: :func:`mclp_scalable_from_od`
        (heuristic posts with a proven bound and gap; ``p`` only, no budget, quota or
        separation rule). ``"auto"`` (default): exact when a budget, quota or separation
        rule is given or when there are at most 2 000 candidates and 2 000 demand units
        left to cover (every département), scalable otherwise (national scale).
    time_limit_s : float, optional
        Time limit: of each HiGHS solve for the exact method (default
        ``settings.milp_time_limit_s``), of the whole search for the scalable one
        (default 60 s).
    settings : Settings
        ``milp_time_limit_s``, ``cost_per_post_eur``, travel model for separation.

    Returns
    -------
    PlacementResult
        ``solution.objective`` = weight newly covered; ``solution.details`` holds
        ``weight_total``, ``weight_covered_before``, ``weight_covered_after``,
        ``weight_uncoverable``, ``units_merged_rows``. ``solution.solver`` says which
        method ran.

    Raises
    ------
    PlacementError
        Bad weights, threshold, p, candidates, rules; infeasible rules.
    """
    t_start = time.perf_counter()
    threshold = check_threshold(threshold)
    if method not in ("auto", "exact", "scalable"):
        raise PlacementError(
            "method", [f"method={method!r}: must be 'auto', 'exact' or 'scalable'"]
        )
    if time_limit_s is not None:
        check_scalable_args(time_limit_s, 0.0, 0, 2, None)
    given = Rules() if rules is None else rules
    inst = prepare(
        od,
        weights,
        candidates=candidates,
        existing=given.existing,
        eligible=given.eligible,
        demand=demand,
        already_covered=already_covered,
    )
    compiled = compile_rules(inst, given, model="mclp", p=p, settings=settings)
    only_p = (
        compiled.budget_eur is None
        and compiled.p is not None
        and not compiled.min_per_group
        and not compiled.max_per_group
        and compiled.min_separation_min is None
    )
    if method == "scalable" and not only_p:
        raise PlacementError(
            "method",
            [
                "method='scalable' supports p, rules.existing, "
                "rules.eligible and already_covered only; budget_eur, "
                "quotas and min_separation_min need method='exact' "
                "(or 'auto')"
            ],
        )
    nc = inst.nc
    by_exist, cu, cj = coverage_sets(inst, threshold)
    live = ~by_exist[cu] & (inst.w[cu] > 0)
    if method == "auto" and only_p:
        n_rows = len(np.unique(cu[live]))  # before merging: a cheap upper bound
        if nc > AUTO_EXACT_MAX or n_rows > AUTO_EXACT_MAX:
            method = "scalable"
    if method == "scalable":
        return mclp_scalable(
            inst,
            compiled,
            threshold,
            t_start=t_start,
            time_limit_s=60.0 if time_limit_s is None else time_limit_s,
            target_gap=0.0,
            seed=0,
            threads=2,
            window_work=None,
        )
    if time_limit_s is not None:
        settings = settings.replace(milp_time_limit_s=float(time_limit_s))
    keys, wsum = _merge_rows(cu[live], cj[live], inst.w)
    reach = np.zeros(inst.nd, dtype=bool)
    reach[cu] = True
    uncoverable = ~by_exist & ~reach & (inst.w > 0)
    m = len(keys)
    nvars = nc + m
    c = np.r_[np.zeros(nc), -wsum]
    integrality = np.r_[np.ones(nc), np.zeros(m)]
    lb, ub = np.zeros(nvars), np.ones(nvars)
    constraints = []
    if m:
        constraints.append(LinearConstraint(_rows_matrix(keys, nvars, offset_y=nc), -np.inf, 0))
    constraints += compiled.constraints(nvars)
    cover_u, cover_j = cu[~by_exist[cu]], cj[~by_exist[cu]]

    def newly(chosen: np.ndarray) -> float:
        hit = np.zeros(inst.nd, dtype=bool)
        hit[cover_u[chosen[cover_j]]] = True
        return float(inst.w[hit].sum())

    s = two_phase(
        c,
        integrality,
        lb,
        ub,
        constraints,
        nc=nc,
        sense=-1,
        true_objective=newly,
        rules=compiled,
        model="mclp",
        settings=settings,
    )
    total = float(inst.w.sum())
    before = float(inst.w[by_exist].sum())
    details = {
        "weight_total": total,
        "weight_covered_before": before,
        "weight_covered_after": before + s.objective,
        "weight_uncoverable": float(inst.w[uncoverable].sum()),
        "units": inst.nd,
        "units_covered_before": int(by_exist.sum()),
        "units_uncoverable": int(uncoverable.sum()),
        "model_rows_merged": m,
        "candidates": nc,
        "existing_sites": len(inst.exist_ids),
        "threshold_min": threshold,
        "rules": list(compiled.labels),
    }
    sol = exact_solution("mclp", s, details)
    log.info(
        "mclp: %d posts among %d candidates, %.0f newly covered (%.1f %% → %.1f %% of "
        "weight at %g min), %s, %.2f s",
        int(s.chosen.sum()),
        nc,
        s.objective,
        100 * before / max(total, 1e-12),
        100 * (before + s.objective) / max(total, 1e-12),
        threshold,
        s.status,
        s.time_s,
    )
    return build_result(
        inst,
        s.chosen,
        threshold=threshold,
        model="mclp",
        covered_before=by_exist,
        rules=compiled,
        solution=sol,
        uncoverable=uncoverable,
    )


# ----------------------------------------------------------------------------------------
# LSCP
# ----------------------------------------------------------------------------------------
def lscp_from_od(
    od: pd.DataFrame,
    weights: pd.Series,
    *,
    threshold: float,
    candidates: Sites = None,
    already_covered: pd.Series | None = None,
    demand: pd.DataFrame | None = None,
    rules: Rules | None = None,
    settings: Settings = DEFAULT,
) -> PlacementResult:
    """Location set covering: the fewest new posts covering every unit within ``threshold``.

    Every demand unit with a positive weight that is not already covered must get a
    new post within ``threshold``. Units that no eligible candidate can reach are
    reported in ``result.uncoverable`` (and ``solution.details``) and left out of
    the constraints; they stay uncovered.

    Parameters
    ----------
    od, weights, threshold, candidates, already_covered, demand, settings
        As in :func:`mclp_from_od`.
    rules : Rules, optional
        As in :func:`mclp_from_od`; ``rules.max_posts``: at most this many new posts
        (PlacementError if that is not enough).

    Returns
    -------
    PlacementResult
        ``solution.objective`` = number of new posts.
    """
    threshold = check_threshold(threshold)
    given = Rules() if rules is None else rules
    inst = prepare(
        od,
        weights,
        candidates=candidates,
        existing=given.existing,
        eligible=given.eligible,
        demand=demand,
        already_covered=already_covered,
    )
    compiled = compile_rules(inst, given, model="lscp", p=None, settings=settings)
    nc = inst.nc
    by_exist, cu, cj = coverage_sets(inst, threshold)
    live = ~by_exist[cu] & (inst.w[cu] > 0)
    keys, _ = _merge_rows(cu[live], cj[live], inst.w)
    reach = np.zeros(inst.nd, dtype=bool)
    reach[cu] = True
    uncoverable = ~by_exist & ~reach & (inst.w > 0)
    if uncoverable.any():
        log.warning(
            "lscp: %d demand unit(s) cannot be covered within %g min by any eligible site: %s",
            int(uncoverable.sum()),
            threshold,
            sample(inst.demand_ids[uncoverable]),
        )
    needed = len(keys) > 0 or compiled.min_per_group
    if needed and nc == 0:
        raise PlacementError(
            "candidates",
            [
                "no eligible candidate site; fix: pass candidates "
                "(town halls, places) and check the eligible filter"
            ],
        )
    constraints = []
    if keys:
        constraints.append(LinearConstraint(_rows_matrix(keys, nc, offset_y=None), -np.inf, -1))
    constraints += compiled.constraints(nc)
    if not constraints and nc:  # nothing to cover and no rule: one trivial row for HiGHS
        constraints.append(LinearConstraint(sparse.csr_array(np.ones((1, nc))), 0, np.inf))
    c = np.ones(nc)

    def count(chosen: np.ndarray) -> float:
        return float(chosen.sum())

    if nc == 0:
        s = Solved(np.zeros(0, bool), 0.0, 0.0, "optimal", 0.0, 0, 0, None)
    else:
        s = two_phase(
            c,
            np.ones(nc),
            np.zeros(nc),
            np.ones(nc),
            constraints,
            nc=nc,
            sense=1,
            true_objective=count,
            rules=compiled,
            model="lscp",
            settings=settings,
            hint=" (every coverable unit must be covered; mclp_from_od covers as "
            "much as the rules allow)",
        )
        s.bound = float(np.ceil(s.bound - 1e-6))
    total = float(inst.w.sum())
    details = {
        "weight_total": total,
        "weight_covered_before": float(inst.w[by_exist].sum()),
        "weight_uncoverable": float(inst.w[uncoverable].sum()),
        "units": inst.nd,
        "units_covered_before": int(by_exist.sum()),
        "units_uncoverable": int(uncoverable.sum()),
        "model_rows_merged": len(keys),
        "candidates": nc,
        "existing_sites": len(inst.exist_ids),
        "cost_eur": float(compiled.cost[s.chosen].sum()) if nc else 0.0,
        "threshold_min": threshold,
        "rules": list(compiled.labels),
    }
    sol = exact_solution("lscp", s, details)
    log.info(
        "lscp: %d new posts cover every coverable unit at %g min (%d uncoverable), %s, %.2f s",
        int(s.objective),
        threshold,
        int(uncoverable.sum()),
        s.status,
        s.time_s,
    )
    return build_result(
        inst,
        s.chosen,
        threshold=threshold,
        model="lscp",
        covered_before=by_exist,
        rules=compiled,
        solution=sol,
        uncoverable=uncoverable,
    )


# ----------------------------------------------------------------------------------------
# GeoDataFrame entry points
# ----------------------------------------------------------------------------------------
def mclp_from_geodataframes(
    demand_gdf: gpd.GeoDataFrame,
    candidates_gdf: gpd.GeoDataFrame,
    *,
    weight_col: str = "need",
    p: int | None = None,
    threshold: float | None = None,
    rules: Rules | None = None,
    method: str = "auto",
    time_limit_s: float | None = None,
    settings: Settings = DEFAULT,
) -> PlacementResult:
    """MCLP from GeoDataFrames: crow-fly OD (:func:`access.od_crowfly`), then :func:`mclp_from_od`.

    Parameters
    ----------
    demand_gdf : GeoDataFrame
        Demand units indexed by id (communes: index ``insee``), projected CRS. Travel
        starts at ``ref_x``/``ref_y`` when present (communes' representative point),
        else ``x``/``y``, else the geometry's representative point. ``weight_col``
        holds the weight; ``population`` / ``need`` are reported per post if present.
    candidates_gdf : GeoDataFrame
        Candidate sites indexed by candidate id (or a ``candidate_id`` column), point
        geometry or ``x``/``y`` in the same CRS; optional ``insee``, ``host`` and
        group columns (e.g. ``epci``).
    weight_col : str
        Column of ``demand_gdf`` to maximise (default ``"need"``).
    p, threshold : optional
        Default ``settings.posts`` (unless ``budget_eur`` is given) and
        ``settings.threshold_minutes``.
    rules : Rules, optional
        As in :func:`mclp_from_od`, except that ``rules.existing`` is a GeoDataFrame
        of points (ids from ``place_id`` or its index) or ids of rows of
        ``candidates_gdf``, ``rules.groups`` may name a column of ``candidates_gdf``
        and the separation is computed by crow-fly between candidates.
    method, time_limit_s, settings
        As in :func:`mclp_from_od`.

    Returns
    -------
    PlacementResult
        ``posts`` is a GeoDataFrame in the CRS of ``candidates_gdf``.
    """
    threshold = check_threshold(settings.threshold_minutes if threshold is None else threshold)
    rules = Rules() if rules is None else rules
    if p is None and rules.budget_eur is None:
        p = settings.posts
    od, weights, info, cand, rules = gdf_inputs(
        demand_gdf,
        candidates_gdf,
        rules,
        weight_col=weight_col,
        max_minutes=threshold,
        settings=settings,
    )
    return mclp_from_od(
        od,
        weights,
        p=p,
        threshold=threshold,
        candidates=cand,
        demand=info,
        rules=rules,
        method=method,
        time_limit_s=time_limit_s,
        settings=settings,
    )


def lscp_from_geodataframes(
    demand_gdf: gpd.GeoDataFrame,
    candidates_gdf: gpd.GeoDataFrame,
    *,
    weight_col: str = "need",
    threshold: float | None = None,
    rules: Rules | None = None,
    settings: Settings = DEFAULT,
) -> PlacementResult:
    """LSCP from GeoDataFrames (crow-fly OD), delegating to :func:`lscp_from_od`.

    Parameters are those of :func:`mclp_from_geodataframes` and :func:`lscp_from_od`.
    """
    threshold = check_threshold(settings.threshold_minutes if threshold is None else threshold)
    rules = Rules() if rules is None else rules
    od, weights, info, cand, rules = gdf_inputs(
        demand_gdf,
        candidates_gdf,
        rules,
        weight_col=weight_col,
        max_minutes=threshold,
        settings=settings,
    )
    return lscp_from_od(
        od,
        weights,
        threshold=threshold,
        candidates=cand,
        demand=info,
        rules=rules,
        settings=settings,
    )
