"""p-median: new posts minimising the weighted travel time to the nearest open site.

Sparse model grown per unit (k nearest sites, doubled where needed) so the optimum is
exact over every pair of the OD table; method in ``docs/methods_placement.md``.
"""

from __future__ import annotations

import logging

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
    build_result,
    check_threshold,
    compile_rules,
    exact_solution,
    gdf_inputs,
    nearest_open,
    prepare,
    raise_if_failed,
    run,
    sample,
    two_phase,
)
from .rules import Rules

__all__ = ["pmedian_from_geodataframes", "pmedian_from_od"]

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------
# p-median
# ----------------------------------------------------------------------------------------
def pmedian_from_od(
    od: pd.DataFrame,
    weights: pd.Series,
    *,
    p: int | None,
    candidates: Sites = None,
    demand: pd.DataFrame | None = None,
    k: int = 10,
    threshold: float | None = None,
    rules: Rules | None = None,
    settings: Settings = DEFAULT,
) -> PlacementResult:
    """p-median: ``p`` new posts minimising weight × minutes to the nearest open site.

    Every demand unit with a positive weight is assigned to its nearest open site
    (existing sites are open). The model is sparse: a unit may only use sites no
    farther than its nearest existing site, and at first only its ``k`` nearest;
    ``k`` grows for the units that need more (see ``docs/methods_placement.md``), so the result
    is optimal over every pair listed in ``od``.

    Parameters
    ----------
    od : DataFrame
        Long OD table; its cutoff must be wide enough for every unit to reach a site
        (units with no site at all raise PlacementError).
    weights : Series
        Demand weight per unit.
    p : int or None
        Exactly ``p`` new posts (None: as many as ``budget_eur`` pays).
    k : int
        Initial number of nearest sites per unit (default 10).
    threshold : float, optional
        Only for the ``covered`` output (default ``settings.threshold_minutes``).
    candidates, demand, rules, settings
        As in :func:`~cnfs_geo.placement.mclp_from_od`.

    Returns
    -------
    PlacementResult
        ``solution.objective`` = Σ weight × minutes to the nearest open site;
        ``solution.details`` holds ``rounds`` and ``mean_minutes`` (weighted).
    """
    threshold = check_threshold(settings.threshold_minutes if threshold is None else threshold)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise PlacementError(
            "k", [f"k={k!r}: must be a whole number >= 1 (initial nearest sites per unit)"]
        )
    given = Rules() if rules is None else rules
    inst = prepare(
        od,
        weights,
        candidates=candidates,
        existing=given.existing,
        eligible=given.eligible,
        demand=demand,
        already_covered=None,
    )
    compiled = compile_rules(inst, given, model="pmedian", p=p, settings=settings)
    nc = inst.nc
    # per unit: sorted sites up to and including the nearest existing one
    oi, sj, mm = inst.oi, inst.sj, inst.minutes
    is_exist = sj >= nc
    grp_start = np.flatnonzero(np.r_[True, oi[1:] != oi[:-1]]) if len(oi) else np.array([], int)
    grp_end = np.r_[grp_start[1:], len(oi)]
    lists: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    const = 0.0
    for a, b in zip(grp_start, grp_end):
        i = int(oi[a])
        if inst.w[i] <= 0:
            continue
        ex = np.flatnonzero(is_exist[a:b])
        end = a + ex[0] + 1 if len(ex) else b
        if ex.size and ex[0] == 0:  # nearest site is existing: fixed cost
            const += inst.w[i] * mm[a]
            continue
        lists[i] = (sj[a:end], mm[a:end])
    listed = np.zeros(inst.nd, dtype=bool)
    listed[np.unique(oi)] = True
    lost = (inst.w > 0) & ~listed
    if lost.any():
        raise PlacementError(
            "od",
            [
                f"{int(lost.sum())} demand unit(s) with positive weight have "
                f"no site at all in the OD table: "
                f"{sample(inst.demand_ids[lost])}; fix: build the OD table "
                "with a larger max_minutes, or give them weight 0"
            ],
        )
    units = np.array(sorted(lists), dtype=np.int64)
    kk = {int(i): int(k) for i in units}

    def cost_of(chosen: np.ndarray) -> float:
        open_sites = np.r_[chosen, np.ones(len(inst.exist_ids), dtype=bool)]
        _, mins = nearest_open(inst, open_sites)
        pos = inst.w > 0
        return float((inst.w[pos] * mins[pos]).sum())

    rounds, t_total = 0, 0.0
    while True:
        rounds += 1
        zi_list: list[int] = []
        zj_list: list[int] = []
        zc: list[float] = []
        gi: list[int] = []
        gc: list[float] = []
        for r, i in enumerate(units):
            js, ms = lists[int(i)]
            n = min(kk[int(i)], len(js))
            zi_list.extend([r] * n)
            zj_list.extend(js[:n].tolist())
            zc.extend((inst.w[i] * ms[:n]).tolist())
            if n < len(js):
                gi.append(r)
                gc.append(inst.w[i] * ms[n])
        zi, zj = np.asarray(zi_list, np.int64), np.asarray(zj_list, np.int64)
        nz, ng = len(zi), len(gi)
        nvars = nc + nz + ng
        c = np.r_[np.zeros(nc), np.asarray(zc, float), np.asarray(gc, float)]
        integrality = np.r_[np.ones(nc), np.zeros(nz + ng)]
        lb, ub = np.zeros(nvars), np.ones(nvars)
        # assignment rows: Σ z_i· + g_i = 1
        rows = np.r_[zi, np.asarray(gi, np.int64)]
        cols = np.r_[nc + np.arange(nz), nc + nz + np.arange(ng)]
        a_assign = sparse.csr_array((np.ones(len(rows)), (rows, cols)), shape=(len(units), nvars))
        # linking rows: z_ij − x_j <= 0 for candidate j
        cand_pair = np.flatnonzero(zj < nc)
        nl = len(cand_pair)
        a_link = sparse.csr_array(
            (
                np.r_[np.ones(nl), -np.ones(nl)],
                (np.r_[np.arange(nl), np.arange(nl)], np.r_[nc + cand_pair, zj[cand_pair]]),
            ),
            shape=(nl, nvars),
        )
        constraints = [LinearConstraint(a_assign, 1, 1), LinearConstraint(a_link, -np.inf, 0)]
        constraints += compiled.constraints(nvars)
        res, t1 = run(c, integrality, lb, ub, constraints, settings)
        raise_if_failed(
            res,
            "pmedian",
            compiled,
            settings,
            hint=", or build the OD table with a larger cutoff (max_minutes) so that every "
            "unit can reach an open site",
        )
        t_total += t1
        used = np.flatnonzero(res.x[nc + nz :] > 1e-6) if ng else np.array([], int)
        if len(used) == 0 or res.status != 0:
            break
        gi_arr = np.asarray(gi, np.int64)
        for r in gi_arr[used]:
            kk[int(units[r])] *= 2
        log.debug(
            "pmedian round %d: %d unit(s) need more than their k nearest sites", rounds, len(used)
        )
    ub2 = ub.copy()
    ub2[nc + nz :] = 0.0  # phase 2: no placeholder
    s = two_phase(
        c,
        integrality,
        lb,
        ub,
        constraints,
        nc=nc,
        sense=1,
        true_objective=cost_of,
        rules=compiled,
        model="pmedian",
        settings=settings,
        ub_phase2=ub2,
        res1=res,
        t1=0.0,
    )
    s.time_s += t_total
    s.bound = float(s.bound + const)
    total_w = float(inst.w.sum())
    details = {
        "weight_total": total_w,
        "mean_minutes": s.objective / max(total_w, 1e-12),
        "rounds": rounds,
        "initial_k": int(k),
        "max_k": max(kk.values(), default=int(k)),
        "units_in_model": len(units),
        "units_fixed_to_existing": int(((inst.w > 0).sum()) - len(units)),
        "candidates": nc,
        "existing_sites": len(inst.exist_ids),
        "rules": list(compiled.labels),
    }
    sol = exact_solution("pmedian", s, details)
    log.info(
        "pmedian: %d posts among %d candidates, mean %.2f min per weight unit, %d "
        "round(s), %s, %.2f s",
        int(s.chosen.sum()),
        nc,
        details["mean_minutes"],
        rounds,
        s.status,
        s.time_s,
    )
    open_sites = np.r_[np.zeros(nc, bool), np.ones(len(inst.exist_ids), bool)]
    _, mins_before = nearest_open(inst, open_sites)
    return build_result(
        inst,
        s.chosen,
        threshold=threshold,
        model="pmedian",
        covered_before=mins_before <= threshold,
        rules=compiled,
        solution=sol,
        uncoverable=np.zeros(inst.nd, dtype=bool),
    )


def pmedian_from_geodataframes(
    demand_gdf: gpd.GeoDataFrame,
    candidates_gdf: gpd.GeoDataFrame,
    *,
    weight_col: str = "need",
    p: int | None = None,
    k: int = 10,
    max_minutes: float = 90.0,
    threshold: float | None = None,
    rules: Rules | None = None,
    settings: Settings = DEFAULT,
) -> PlacementResult:
    """p-median from GeoDataFrames (crow-fly OD cut at ``max_minutes``), see
    :func:`pmedian_from_od`.

    ``max_minutes`` (default 90) is the cutoff of the OD table: the optimum is
    exact over the pairs within it; a unit with no site within it raises
    PlacementError. Other parameters as in
    :func:`~cnfs_geo.placement.mclp_from_geodataframes`.
    """
    rules = Rules() if rules is None else rules
    if p is None and rules.budget_eur is None:
        p = settings.posts
    max_minutes = check_threshold(max_minutes, "max_minutes")
    od, weights, info, cand, rules = gdf_inputs(
        demand_gdf,
        candidates_gdf,
        rules,
        weight_col=weight_col,
        max_minutes=max_minutes,
        settings=settings,
    )
    return pmedian_from_od(
        od,
        weights,
        p=p,
        candidates=cand,
        demand=info,
        k=k,
        threshold=threshold,
        rules=rules,
        settings=settings,
    )
