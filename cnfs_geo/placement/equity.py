"""Capacity / equity placement: new posts where advisors are thin relative to need.

Places posts to lift the (E)2SFCA accessibility of :func:`cnfs_geo.coverage.two_step_fca`
towards a target, weighted by need (exact MILP, three lexicographic solves). Method and
figures: ``docs/methods_placement_equity.md``.

Examples
--------
>>> import pandas as pd
>>> from cnfs_geo import access, plan
>>> from cnfs_geo.placement import equity_from_od
>>> pr = plan.prepare(plan.Scenario())
>>> acc = pr.places[pr.places["service_level"] == "accompaniment"]
>>> existing = pd.DataFrame({"x": acc.geometry.x.to_numpy(), "y": acc.geometry.y.to_numpy()},
...                         index=acc["place_id"].astype(str).to_numpy())
>>> sites = pd.concat([existing, pr.candidates[["x", "y"]]])
>>> od = access.od_crowfly(pr.origins, sites, max_minutes=20)
>>> supply = pd.Series(acc["advisors"].to_numpy(dtype=float), index=existing.index)
>>> r = equity_from_od(od, pr.units["need"], supply, p=8, candidates=pr.candidates)
>>> len(r.posts), r.solution["status"]
(8, 'optimal')
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, overload

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import LinearConstraint, OptimizeResult

from .. import _fr, coverage
from .._errors import PlacementError, ValidationError
from .._validate import nonnegative_series, require_od
from ..settings import DEFAULT, Settings
from . import _milp
from ._base import Solution, relative_gap, sample

log = logging.getLogger(__name__)

__all__ = ["PER", "EquityResult", "equity_from_od", "equity_of_posts"]

#: Accessibility unit: advisors per this many need-weighted inhabitants.
PER: float = 10_000.0

SOLVER = _milp.SOLVER
TIE_BREAK = (
    "among optimal solutions: (2) smallest need-weighted shortfall below "
    "second_target (default the département's need-weighted mean accessibility), "
    "then (3) smallest sum of candidate ranks × posts (candidates sorted by "
    "identifier); objectives kept within 1e-9 relative + 1e-7"
)
#: Tolerance of the kept optima of solves 2 and 3 and of the checks of their solutions:
#: the package's one value (``_milp.REL_TOL`` relative + ``_milp.ABS_TOL``).
_CAP_REL = _milp.REL_TOL

Sites: TypeAlias = pd.DataFrame | Sequence[str] | None


# ----------------------------------------------------------------------------------------
# Result
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EquityResult:
    """Outcome of :func:`equity_from_od`.

    Attributes
    ----------
    posts : DataFrame or GeoDataFrame
        One row per new post (``p`` rows; a site with several posts has several
        rows), sorted by ``shortfall_reduced`` (descending) then ``candidate_id``:
        ``post_id`` (``P01``…), ``candidate_id``, ``insee`` and ``host`` (from the
        candidates when given, else None / the id), ``kind`` (``"fixed"``),
        ``site_posts`` (new posts at that site), ``catchment_need`` (``D_j``,
        distance-weighted need in the site's catchment), ``ratio_added`` (advisors
        per ``per`` need-weighted inhabitants the post adds to its catchment,
        ``per × a / D_j``), ``shortfall_reduced`` (need × accessibility: the total
        reduction of ``Σ d_i s_i`` shared among posts in proportion to each site's
        share of every unit's gain, posts of one site alike; the column sums to
        ``shortfall_before − shortfall_after``), ``covered_need`` (need of units
        brought within ``threshold`` minutes of an open site by the new posts, each
        given to its nearest new site, ties by id, split among that site's posts).
        A GeoDataFrame (``geometry`` of the candidates, their CRS) when
        ``candidates`` is a GeoDataFrame.
    units : DataFrame
        Index demand id (str, sorted). ``need``, ``access_before``, ``access_after``
        (advisors per ``per`` need-weighted inhabitants; after = the linear model
        ``A0 + G x``), ``shortfall_before``, ``shortfall_after`` (``max(0, T − A)``),
        ``second_shortfall_before``, ``second_shortfall_after`` (below
        ``second_target``; NaN when there is none), ``covered_before``,
        ``covered_after`` (bool: an open site with advisors within ``threshold``
        minutes).
    solution : cnfs_geo.placement.Solution
        ``model="equity"``; ``objective`` = ``Σ d_i s_i`` after placement (need ×
        advisors per ``per``), ``bound`` (HiGHS dual bound of solve 1), ``gap``,
        ``solver``, ``status``, ``time_s`` (all solves), ``n_variables``,
        ``n_constraints``, ``tie_break`` and ``details`` (target, reference ratio,
        shortfalls and 10-minute coverage before/after, …).
    skipped : Index
        Candidate ids with no demand in their catchment (``D_j = 0``), not used.
    """

    posts: pd.DataFrame
    units: pd.DataFrame
    solution: Solution
    skipped: pd.Index


# ----------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------
@overload
def _positive(value: Any, name: str, fix: str, *, allow_none: Literal[False] = False) -> float: ...
@overload
def _positive(value: Any, name: str, fix: str, *, allow_none: bool) -> float | None: ...
def _positive(value: Any, name: str, fix: str, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.number))
        or not math.isfinite(float(value))
        or float(value) <= 0
    ):
        raise PlacementError(name, [f"{name}={value!r}: must be a finite number > 0; fix: {fix}"])
    return float(value)


def _count(value: Any, name: str, *, minimum: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise PlacementError(name, [f"{name}={value!r}: must be a whole number; fix: {fix}"])
    if value < minimum:
        raise PlacementError(name, [f"{name}={value!r}: must be >= {minimum}; fix: {fix}"])
    return int(value)


def _series(x: Any, name: str, what: str, example: str, *, allow_empty: bool) -> pd.Series:
    return nonnegative_series(
        x, name, what, error=PlacementError, example=example, allow_empty=allow_empty
    )


@dataclass
class _Base:
    """Validated inputs shared by :func:`equity_from_od` and :func:`equity_of_posts`."""

    od: pd.DataFrame  # origin_id, destination_id (str), minutes (float)
    demand: pd.Series  # sorted str index
    supply: pd.Series  # existing advisors, sorted str index
    catchment: float
    weights: str
    per: float
    a: float  # advisors per new post
    threshold: float
    access0: np.ndarray  # A0 per unit (demand order)
    target: float
    target_rule: str
    reference: float
    target_share: float
    second: float | None  # level of the tie-breaking shortfall (None = skip)
    covered0: np.ndarray  # bool per unit: existing site with advisors within threshold


def _base(
    od: Any,
    demand: Any,
    supply_existing: Any,
    *,
    catchment: Any,
    weights: Any,
    target: Any,
    target_share: Any,
    second_target: Any,
    per: Any,
    advisors_per_post: Any,
    threshold: Any,
    settings: Settings,
) -> _Base:
    catchment = settings.access_catchment_minutes if catchment is None else catchment
    weights = settings.access_weights if weights is None else weights
    target_share = settings.thin_share if target_share is None else target_share
    catchment = _positive(catchment, "catchment", "pass minutes, e.g. catchment=20")
    per = _positive(per, "per", "pass e.g. per=10_000 (advisors per 10 000 need)")
    a = _positive(
        advisors_per_post,
        "advisors_per_post",
        "one CNFS post is one advisor (advisors_per_post=1.0)",
    )
    thr = settings.threshold_minutes if threshold is None else threshold
    thr = _positive(
        thr, "threshold", "pass minutes, e.g. threshold=10 (settings.threshold_minutes)"
    )
    if thr > catchment:
        raise PlacementError(
            "threshold",
            [
                f"threshold={thr:g} min exceeds catchment="
                f"{catchment:g} min, the cutoff of the OD table; fix: "
                "pass threshold <= catchment"
            ],
        )
    try:
        coverage.fca_weights(np.zeros(1), catchment=catchment, weights=weights)
    except ValidationError as exc:
        raise PlacementError(
            "weights",
            [
                f"{p}; fix: weights='stepped' (E2SFCA, default), 'none' (2SFCA) or 'gaussian'"
                for p in exc.problems
            ],
        ) from None
    target_share = _positive(
        target_share,
        "target_share",
        "pass a share of the département's mean accessibility, e.g. 0.5",
    )
    if target is not None:
        target = _positive(
            target,
            "target",
            "pass advisors per 10 000 need-weighted "
            "inhabitants (e.g. target=4), or target=None for "
            "target_share × the département's need-weighted "
            "mean",
        )
    if second_target is not None and not (
        isinstance(second_target, str) and second_target == "mean"
    ):
        second_target = _positive(
            second_target,
            "second_target",
            "pass 'mean' (the département's need-weighted mean "
            "accessibility), a number of advisors per 10 000 need, or "
            "None to skip the second solve",
        )
    dem = _series(
        demand, "demand", "need (need-weighted population)", "communes['need']", allow_empty=False
    )
    sup = _series(
        supply_existing,
        "supply_existing",
        "advisors per existing site",
        "places['advisors'] indexed by place_id",
        allow_empty=True,
    )
    # --- OD table
    require_od(
        od, error=PlacementError, hint="cnfs_geo.access.od_crowfly(..., max_minutes=catchment)"
    )
    o = pd.DataFrame(
        {
            "origin_id": od["origin_id"].astype(str).to_numpy(),
            "destination_id": od["destination_id"].astype(str).to_numpy(),
            "minutes": pd.to_numeric(od["minutes"], errors="coerce").to_numpy(dtype=float),
        }
    )
    problems = []
    m = o["minutes"].to_numpy()
    bad = ~np.isfinite(m) | (m < 0)
    if bad.any():
        problems.append(
            f"{int(bad.sum())} row(s) with missing, negative or infinite minutes, "
            f"e.g. rows {sample(od.index[bad])}; fix: drop unreachable pairs (the "
            "table is sparse) and check the travel model"
        )
    dup = o.duplicated(["origin_id", "destination_id"]).to_numpy()
    if dup.any():
        problems.append(
            f"{int(dup.sum())} duplicated (origin_id, destination_id) pair(s), e.g. "
            f"rows {sample(od.index[dup])}; fix: one travel time per pair"
        )
    unknown = pd.Index(o["origin_id"].unique()).difference(dem.index)
    if len(unknown):
        problems.append(
            f"origin ids absent from demand: {sample(unknown)}; fix: give a need "
            "to every demand unit of the OD table (0 for none) or restrict the "
            "table to the demand units"
        )
    if problems:
        raise PlacementError("od", problems)
    o = o[o["minutes"].to_numpy() <= catchment]
    o = o.sort_values(["origin_id", "destination_id"], kind="stable").reset_index(drop=True)
    # --- accessibility before (2SFCA on the existing sites)
    o_e = o[o["destination_id"].isin(sup.index)]
    if len(sup):
        acc0 = (
            coverage.two_step_fca(o_e, dem, sup, catchment=catchment, weights=weights, per=per)[
                "access"
            ]
            .reindex(dem.index)
            .to_numpy(dtype=float)
        )
    else:
        acc0 = np.zeros(len(dem))
    d = dem.to_numpy(dtype=float)
    total = float(d.sum())
    reference = float((d * acc0).sum() / total) if total > 0 else 0.0
    if total <= 0:
        raise PlacementError(
            "demand", ["every need is 0; fix: pass the need-weighted population (communes['need'])"]
        )
    if target is None:
        if reference <= 0:
            raise PlacementError(
                "target",
                [
                    "target=None takes target_share × the need-weighted "
                    "mean accessibility before placement, which is 0 "
                    "here (no existing advisor reaches any demand); fix: "
                    "pass an absolute target, e.g. target=4 (advisors "
                    f"per {per:g} need-weighted inhabitants)"
                ],
            )
        target = target_share * reference
        rule = (
            f"target_share × need-weighted mean accessibility before placement "
            f"({target_share:g} × {reference:.4g})"
        )
    else:
        rule = "given"
    if second_target == "mean":
        second = reference if reference > 0 else None
    else:
        second = second_target
    if second is not None and abs(second - target) <= 1e-12 * max(1.0, target):
        log.info("equity: second_target equals the target; the second solve is skipped")
        second = None
    # --- 10-minute (threshold) coverage by existing sites with advisors
    with_adv = sup.index[sup.to_numpy() > 0]
    near = o[(o["minutes"].to_numpy() <= thr) & o["destination_id"].isin(with_adv).to_numpy()]
    covered0 = dem.index.isin(near["origin_id"].unique())
    return _Base(
        od=o,
        demand=dem,
        supply=sup,
        catchment=catchment,
        weights=weights,
        per=per,
        a=a,
        threshold=thr,
        access0=acc0,
        target=float(target),
        target_rule=rule,
        reference=reference,
        target_share=target_share,
        second=second,
        covered0=covered0,
    )


def _shortfall(level: float | None, access: np.ndarray) -> np.ndarray:
    if level is None:
        return np.full(len(access), np.nan)
    return np.maximum(0.0, level - access)


def _candidates(candidates: Sites, base: _Base) -> pd.DataFrame:
    if candidates is None:
        ids = sorted(set(base.od["destination_id"]) - set(base.supply.index))
        cand = pd.DataFrame(index=pd.Index(ids, dtype=object, name="candidate_id"))
    elif isinstance(candidates, pd.DataFrame):
        if "candidate_id" in candidates.columns:
            ids = candidates["candidate_id"].astype(str).to_numpy(dtype=object)
        else:
            ids = candidates.index.astype(str).to_numpy(dtype=object)
        cand = candidates.copy()
        cand.index = pd.Index(ids, name="candidate_id")
    elif isinstance(candidates, (str, bytes)):
        raise PlacementError(
            "candidates",
            [
                f"expected a list of site ids, got the string "
                f"{candidates!r}; fix: pass [{candidates!r}]"
            ],
        )
    else:
        cand = pd.DataFrame(
            index=pd.Index([str(c) for c in candidates], dtype=object, name="candidate_id")
        )
    if cand.index.has_duplicates:
        dup = cand.index[cand.index.duplicated()].unique()
        raise PlacementError(
            "candidates",
            [f"duplicated candidate ids {sample(dup)}; fix: one row per candidate site"],
        )
    cand = cand.sort_index(kind="stable")
    if "insee" not in cand.columns:
        cand["insee"] = None
    if "host" not in cand.columns:
        cand["host"] = cand.index.to_numpy(dtype=object)
    return cand


def _gain_matrix(base: _Base, site_ids: pd.Index) -> tuple[np.ndarray, sparse.csr_array]:
    """Catchment demand ``D_j`` and the sparse gain matrix ``g_ij = per·a·w_ij / D_j``."""
    o = base.od[base.od["destination_id"].isin(site_ids)]
    # supply 0: only step 1's demand side is needed (sites without demand are reported as
    # skipped by the caller, not as 2SFCA sites with unallocated advisors)
    dj = coverage.site_supply_ratios(
        o,
        base.demand,
        pd.Series(0.0, index=site_ids),
        catchment=base.catchment,
        weights=base.weights,
        per=base.per,
    )["demand_weighted"]
    dj = dj.reindex(site_ids).fillna(0.0).to_numpy(dtype=float)
    w = coverage.fca_weights(
        o["minutes"].to_numpy(), catchment=base.catchment, weights=base.weights
    )
    rows = base.demand.index.get_indexer(o["origin_id"])
    cols = site_ids.get_indexer(o["destination_id"])
    keep = (w > 0) & (dj[cols] > 0)
    g = base.per * base.a * w[keep] / dj[cols[keep]]
    mat = sparse.csr_array((g, (rows[keep], cols[keep])), shape=(len(base.demand), len(site_ids)))
    mat.sum_duplicates()
    mat.sort_indices()
    return dj, mat


# ----------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------
def _milp_solve(
    c: np.ndarray,
    integrality: np.ndarray,
    ub: np.ndarray,
    constraints: list[LinearConstraint],
    settings: Settings,
) -> tuple[OptimizeResult, float]:
    return _milp.solve(
        c,
        integrality=integrality,
        lb=np.zeros(len(c)),
        ub=ub,
        constraints=constraints,
        time_limit_s=settings.milp_time_limit_s,
    )


def _check_res(res, phase: str, settings: Settings) -> None:
    if res.x is None:
        status = _milp.status_name(res)
        raise PlacementError(
            "equity",
            [
                f"HiGHS stopped in the {phase} solve ({status}: "
                f"{res.message}) without a feasible solution; fix: raise "
                "settings.milp_time_limit_s (now "
                f"{settings.milp_time_limit_s:g} s)"
            ],
        )


def _cap(c: np.ndarray, value: float) -> LinearConstraint:
    return _milp.keep_objective(c, value)


def _outputs_units(
    base: _Base, access_after: np.ndarray, covered_after: np.ndarray
) -> pd.DataFrame:
    idx = pd.Index(base.demand.index, name=base.demand.index.name or "demand_id")
    return pd.DataFrame(
        {
            "need": base.demand.to_numpy(dtype=float),
            "access_before": base.access0,
            "access_after": access_after,
            "shortfall_before": _shortfall(base.target, base.access0),
            "shortfall_after": _shortfall(base.target, access_after),
            "second_shortfall_before": _shortfall(base.second, base.access0),
            "second_shortfall_after": _shortfall(base.second, access_after),
            "covered_before": base.covered0,
            "covered_after": covered_after,
        },
        index=idx,
    )


def _summary(base: _Base, units: pd.DataFrame) -> dict[str, Any]:
    d = units["need"].to_numpy()
    out: dict[str, Any] = {
        "target": base.target,
        "target_rule": base.target_rule,
        "reference_ratio": base.reference,
        "target_share": base.target_share,
        "second_target": base.second,
        "per": base.per,
        "unit": f"advisors per {base.per:g} need-weighted inhabitants",
        "catchment_min": base.catchment,
        "weights": base.weights,
        "advisors_per_post": base.a,
        "threshold_min": base.threshold,
        "existing_sites": int(len(base.supply)),
        "existing_advisors": float(base.supply.sum()),
        "need_total": float(d.sum()),
    }
    for when in ("before", "after"):
        s = units[f"shortfall_{when}"].to_numpy()
        ts = units[f"second_shortfall_{when}"].to_numpy()
        cov = units[f"covered_{when}"].to_numpy(dtype=bool)
        out[f"shortfall_{when}"] = float((d * s).sum())
        out[f"shortfall_advisors_{when}"] = float((d * s).sum() / base.per)
        out[f"second_shortfall_{when}"] = float((d * ts).sum()) if base.second is not None else None
        out[f"units_below_target_{when}"] = int((s > 0).sum())
        out[f"need_below_target_{when}"] = float(d[s > 0].sum())
        out[f"need_covered_{when}"] = float(d[cov].sum())
        out[f"pct_need_covered_{when}"] = 100.0 * float(d[cov].sum()) / max(float(d.sum()), 1e-12)
    return out


def equity_from_od(
    od: pd.DataFrame,
    demand: pd.Series,
    supply_existing: pd.Series,
    *,
    p: int,
    candidates: Sites = None,
    catchment: float | None = None,
    weights: str | None = None,
    target: float | None = None,
    target_share: float | None = None,
    second_target: float | str | None = "mean",
    max_posts_per_site: int = 1,
    advisors_per_post: float = 1.0,
    per: float = PER,
    threshold: float | None = None,
    settings: Settings = DEFAULT,
) -> EquityResult:
    """Place ``p`` new posts minimising the need-weighted accessibility shortfall.

    Exact MILP (see ``docs/methods_placement_equity.md``): ``min Σ_i d_i · max(0, T − A_i)`` where
    ``A_i`` is the (E)2SFCA accessibility of :func:`cnfs_geo.coverage.two_step_fca`
    after adding ``advisors_per_post`` advisors per new post, which is linear in the
    posts because every site's catchment demand is fixed.

    Parameters
    ----------
    od : DataFrame
        Long OD table ``origin_id`` (demand unit, e.g. INSEE code),
        ``destination_id`` (existing site ids **and** candidate ids), ``minutes``,
        covering at least ``catchment`` minutes (e.g.
        ``access.od_crowfly(origins, sites, max_minutes=20)``); pairs beyond
        ``catchment`` are ignored, pairs absent are out of reach. Destinations that
        are neither existing sites nor candidates are ignored.
    demand : Series
        Need per demand unit (need-weighted population, ``communes["need"]``),
        >= 0, indexed by origin id. Every ``origin_id`` of ``od`` must be in it.
    supply_existing : Series
        Advisors per existing site (``places["advisors"]`` of the accompaniment
        places, indexed by ``place_id``), >= 0. May be empty (then pass ``target``).
    p : int
        Exactly ``p`` new posts (>= 0).
    candidates : list of ids, DataFrame or None
        Candidate sites (ids of ``od.destination_id``): e.g.
        :func:`cnfs_geo.plan.candidate_sites` (index ``candidate_id``; ``insee``,
        ``host`` copied to the posts; a GeoDataFrame's geometry too). A candidate
        may be an existing site id: its posts reinforce that site. None: every
        destination that is not an existing site. Candidates with no demand in
        their catchment are skipped.
    catchment : float, optional
        2SFCA catchment in minutes (default ``settings.access_catchment_minutes``, 20, as
        :func:`cnfs_geo.gaps.need_accessibility`).
    weights : {"stepped", "none", "gaussian"}, optional
        Distance weights (:func:`cnfs_geo.coverage.fca_weights`); default
        ``settings.access_weights`` (Luo & Qi steps).
    target : float, optional
        Target accessibility ``T`` in advisors per ``per`` need-weighted
        inhabitants. None (default): ``target_share`` × the need-weighted mean
        accessibility before placement (the département's reference ratio).
    target_share : float, optional
        Share of the reference ratio used when ``target`` is None (default
        ``settings.thin_share``, 0.5, the "thin offer" threshold of :mod:`cnfs_geo.gaps`).
    second_target : "mean", float or None
        Tie-breaking among optimal solutions: minimise the need-weighted shortfall
        below this level (default ``"mean"``: the reference ratio). None: skip.
    max_posts_per_site : int
        Most new posts at one site (default 1: binary choice; > 1 allows several
        advisors at one site).
    advisors_per_post : float
        Advisors one post adds to the supply (default 1: one full-time post,
        ``settings.advisor_hours_per_post`` = 31.5 h a week for the public).
    per : float
        Accessibility unit (default 10 000).
    threshold : float, optional
        Minutes for the ``covered_*`` figures (default ``settings.threshold_minutes``,
        must not exceed ``catchment``).
    settings : Settings
        ``milp_time_limit_s``, ``threshold_minutes``, ``access_catchment_minutes``,
        ``access_weights``, ``thin_share``.

    Returns
    -------
    EquityResult
        ``posts``, ``units``, ``solution`` (``cnfs_geo.placement.Solution``,
        ``model="equity"``), ``skipped``.

    Raises
    ------
    PlacementError
        Bad ``od``, ``demand``, ``supply_existing``, ``candidates``; ``p < 0`` or
        more than ``max_posts_per_site`` × the useful candidates; ``target <= 0``;
        bad ``target_share``, ``second_target``, ``catchment``, ``weights``, ``per``,
        ``threshold``; no
        solution within the time limit.
    """
    p = _count(p, "p", minimum=0, fix="pass a number of new posts >= 0, e.g. p=8 (settings.posts)")
    max_per = _count(
        max_posts_per_site,
        "max_posts_per_site",
        minimum=1,
        fix="pass 1 (one post per site) or more",
    )
    base = _base(
        od,
        demand,
        supply_existing,
        catchment=catchment,
        weights=weights,
        target=target,
        target_share=target_share,
        second_target=second_target,
        per=per,
        advisors_per_post=advisors_per_post,
        threshold=threshold,
        settings=settings,
    )
    cand = _candidates(candidates, base)
    dj_all, g_all = _gain_matrix(base, pd.Index(cand.index))
    useful = dj_all > 0
    skipped = pd.Index(cand.index[~useful], name="candidate_id")
    if len(skipped):
        log.info(
            "equity: %d candidate(s) without demand within %g min skipped: %s",
            len(skipped),
            base.catchment,
            sample(skipped),
        )
    nu = int(useful.sum())
    if p > nu * max_per:
        raise PlacementError(
            "p",
            [
                f"{p} nouveaux postes demandés (p={p}), mais seulement "
                f"{_fr.plural(nu, 'lieu d’accueil utile', 'lieux d’accueil utiles')} (sur "
                f"{_fr.integer(len(cand))} ; {_fr.integer(len(skipped))} sans besoin à moins "
                f"de {_fr.number(base.catchment, trim=True)} min) × {max_per} "
                f"{'poste' if max_per == 1 else 'postes'} au plus par lieu "
                f"(max_posts_per_site) = {_fr.plural(nu * max_per, 'poste')} ; correction : "
                "demander moins de postes, ajouter des lieux d'accueil ou relever "
                "max_posts_per_site"
            ],
        )
    cand_u = cand[useful]
    dj = dj_all[useful]
    g = sparse.csr_array(g_all[:, np.flatnonzero(useful)])
    nc, nd = len(cand_u), len(base.demand)
    d = base.demand.to_numpy(dtype=float)
    a0 = base.access0
    reached = np.diff(g.indptr) > 0

    def rows_for(level: float | None) -> np.ndarray:
        if level is None:
            return np.array([], dtype=np.int64)
        return np.flatnonzero((d > 0) & (a0 < level) & reached)

    r1, r2 = rows_for(base.target), rows_for(base.second)
    m1, m2 = len(r1), len(r2)
    nvars = nc + m1 + m2

    def block(rows: np.ndarray, offset: int) -> sparse.csr_array:
        sub = g[rows] if len(rows) else sparse.csr_array((0, nc))
        ident = sparse.csr_array(
            (np.ones(len(rows)), (np.arange(len(rows)), offset + np.arange(len(rows)))),
            shape=(len(rows), nvars),
        )
        left = sparse.hstack([sub, sparse.csr_array((len(rows), nvars - nc))], format="csr")
        return sparse.csr_array(left + ident)

    constraints: list[LinearConstraint] = []
    if m1:
        constraints.append(LinearConstraint(block(r1, nc), base.target - a0[r1], np.inf))
    if m2:
        constraints.append(LinearConstraint(block(r2, nc + m1), base.second - a0[r2], np.inf))
    constraints.append(
        LinearConstraint(
            sparse.csr_array(
                (np.ones(nc), (np.zeros(nc, dtype=np.int64), np.arange(nc))), shape=(1, nvars)
            ),
            p,
            p,
        )
    )
    integrality = np.r_[np.ones(nc), np.zeros(m1 + m2)]
    ub = np.r_[np.full(nc, float(max_per)), np.full(m1 + m2, np.inf)]
    c1 = np.r_[np.zeros(nc), d[r1], np.zeros(m2)]
    c2 = np.r_[np.zeros(nc + m1), d[r2]]

    def access_after(x: np.ndarray) -> np.ndarray:
        return a0 + g @ x.astype(float)

    def primary(x: np.ndarray) -> float:
        return float((d * _shortfall(base.target, access_after(x))).sum())

    def secondary(x: np.ndarray) -> float:
        return float((d * _shortfall(base.second, access_after(x))).sum()) if m2 else 0.0

    def chosen(res) -> np.ndarray:
        return np.rint(res.x[:nc]).astype(np.int64)

    # solve 1: optimum (nothing to solve without a useful candidate: then p = 0)
    if nc == 0:
        res1, t_total = None, 0.0
        status, x = "optimal", np.zeros(0, dtype=np.int64)
    else:
        res1, t_total = _milp_solve(c1, integrality, ub, constraints, settings)
        _check_res(res1, "first", settings)
        status = _milp.status_name(res1)
        x = chosen(res1)
    obj1 = primary(x)
    phases = ["shortfall"]
    cons = list(constraints)
    if nc and p:
        assert res1 is not None  # solved above: nc > 0
        c_last, res_last, kept = c1, res1, list(constraints)
        cons.append(_cap(c1, float(res1.fun)))
        if m2:  # solve 2: least shortfall below the second target among optima
            res2, t2 = _milp_solve(c2, integrality, ub, cons, settings)
            t_total += t2
            if (
                res2.x is not None
                and res2.status in (0, 1)
                and primary(chosen(res2)) <= obj1 + _CAP_REL * max(1.0, obj1)
            ):
                x = chosen(res2)
                kept = list(cons)
                c_last, res_last = c2, res2
                cons.append(_cap(c2, float(res2.fun)))
                phases.append("second shortfall")
            else:
                log.warning(
                    "equity: second-target solve failed or lost the optimum (%s); "
                    "keeping the first solution",
                    getattr(res2, "message", ""),
                )
        x_before = x

        def same_optima(x3: np.ndarray) -> bool:
            x3 = np.rint(x3[:nc]).astype(np.int64)
            return primary(x3) <= obj1 + _CAP_REL * max(1.0, obj1) and secondary(x3) <= secondary(
                x_before
            ) + _CAP_REL * max(1.0, secondary(x_before))

        # solve 3: ranks, keeping the last objective (cons = kept + its cap)
        tb = _milp.tie_break(
            c_last,
            res_last,
            n_ranked=nc,
            integrality=integrality,
            lb=np.zeros(nvars),
            ub=ub,
            constraints=kept,
            time_limit_s=settings.milp_time_limit_s,
            accept=same_optima,
        )
        t_total += tb.time_s
        if tb.accepted:
            x = np.rint(tb.x[:nc]).astype(np.int64)
            phases.append("ranks")
        else:
            log.warning(
                "equity: rank tie-breaking solve failed or lost the optimum (%s); "
                "keeping the previous solution",
                getattr(tb.res, "message", ""),
            )
    if int(x.sum()) != p:  # pragma: no cover - guarded by the equality row
        raise PlacementError(
            "equity", [f"solver returned {int(x.sum())} posts instead of p={p}; please report this"]
        )

    # --- outputs
    acc1 = access_after(x)
    open_new = cand_u.index[x > 0]
    o = base.od
    near = o[o["minutes"].to_numpy() <= base.threshold]
    new_near = near[near["destination_id"].isin(open_new)]
    covered1 = base.covered0 | base.demand.index.isin(new_near["origin_id"].unique())
    units = _outputs_units(base, acc1, covered1)
    const = float((d * _shortfall(base.target, a0))[np.setdiff1d(np.arange(nd), r1)].sum())
    objective = primary(x)
    dual = getattr(res1, "mip_dual_bound", None)
    bound = const if res1 is None else float((res1.fun if dual is None else dual) + const)
    gap = relative_gap(objective, bound)

    # shares of the shortfall reduction per site: unit i's reduction split by g_ij x_j
    red = d * (units["shortfall_before"].to_numpy() - units["shortfall_after"].to_numpy())
    contrib = g.multiply(x.astype(float).reshape(1, -1)).tocsr()  # g_ij x_j
    gain = np.asarray(contrib.sum(axis=1)).ravel()
    scale = np.divide(red, gain, out=np.zeros(nd), where=gain > 0)
    site_red = np.asarray(contrib.T @ scale).ravel()  # per site
    # need newly within threshold, to the nearest new site (ties by id)
    newly = ~base.covered0 & covered1
    nn = (
        new_near[new_near["origin_id"].isin(base.demand.index[newly])]
        .sort_values(["origin_id", "minutes", "destination_id"], kind="stable")
        .drop_duplicates("origin_id")
    )
    site_cov = (
        pd.Series(base.demand.reindex(nn["origin_id"]).to_numpy(dtype=float))
        .groupby(nn["destination_id"].to_numpy())
        .sum()
    )
    pos = np.flatnonzero(x > 0)
    reps = x[pos]
    rows = np.repeat(pos, reps)
    posts = pd.DataFrame(
        {
            "candidate_id": cand_u.index.to_numpy(dtype=object)[rows],
            "insee": cand_u["insee"].to_numpy(dtype=object)[rows],
            "host": cand_u["host"].to_numpy(dtype=object)[rows],
            "kind": "fixed",
            "site_posts": x[rows].astype(int),
            "catchment_need": dj[rows],
            "ratio_added": base.per * base.a / dj[rows],
            "shortfall_reduced": site_red[rows] / x[rows],
            "covered_need": site_cov.reindex(cand_u.index[rows]).fillna(0.0).to_numpy() / x[rows],
        }
    )
    posts["_row"] = rows
    posts = posts.sort_values(
        ["shortfall_reduced", "candidate_id"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)
    order = posts.pop("_row").to_numpy()
    posts.insert(0, "post_id", [f"P{k + 1:02d}" for k in range(len(posts))])
    if isinstance(cand_u, gpd.GeoDataFrame) and cand_u.geometry.name in cand_u.columns:
        posts = gpd.GeoDataFrame(posts, geometry=cand_u.geometry.to_numpy()[order], crs=cand_u.crs)

    details = _summary(base, units)
    details.update(
        {
            "candidates": int(len(cand)),
            "candidates_useful": nc,
            "candidates_skipped": int(len(skipped)),
            "posts": p,
            "sites_used": int((x > 0).sum()),
            "max_posts_per_site": max_per,
            "advisor_hours_per_post": float(settings.advisor_hours_per_post) * base.a,
            "model_units_target": m1,
            "model_units_second": m2,
            "objective_constant": const,
            "solves": phases,
        }
    )
    sol = Solution(
        "equity",
        objective,
        bound,
        gap,
        SOLVER,
        status,
        round(t_total, 4),
        nvars,
        _milp.n_rows(cons),
        TIE_BREAK,
        details,
    )
    log.info(
        "equity: %d posts on %d site(s) among %d useful candidates; need-weighted "
        "shortfall below %.3f %s: %.0f → %.0f (%.2f → %.2f advisors); need within %g min "
        "%.1f %% → %.1f %%; %s, %.2f s",
        p,
        details["sites_used"],
        nc,
        base.target,
        details["unit"],
        details["shortfall_before"],
        details["shortfall_after"],
        details["shortfall_advisors_before"],
        details["shortfall_advisors_after"],
        base.threshold,
        details["pct_need_covered_before"],
        details["pct_need_covered_after"],
        status,
        t_total,
    )
    return EquityResult(posts=posts, units=units, solution=sol, skipped=skipped)


def equity_of_posts(
    od: pd.DataFrame,
    demand: pd.Series,
    supply_existing: pd.Series,
    new_posts: pd.Series | Sequence[str],
    *,
    catchment: float | None = None,
    weights: str | None = None,
    target: float | None = None,
    target_share: float | None = None,
    second_target: float | str | None = "mean",
    advisors_per_post: float = 1.0,
    per: float = PER,
    threshold: float | None = None,
    settings: Settings = DEFAULT,
) -> pd.DataFrame:
    """Accessibility, shortfall and coverage of any set of new posts (e.g. MCLP's).

    Recomputes :func:`cnfs_geo.coverage.two_step_fca` on the enlarged supply
    (existing advisors + ``advisors_per_post`` per new post), so the posts of any
    model can be scored with the criteria of :func:`equity_from_od`, with the same
    default target (``target_share`` × the need-weighted mean accessibility
    *before* the new posts).

    Parameters
    ----------
    od, demand, supply_existing, catchment, weights, target, target_share, second_target,
    advisors_per_post, per, threshold, settings
        As in :func:`equity_from_od`.
    new_posts : Series or list of str
        Site ids of the new posts (a list, an id repeated once per post, e.g.
        ``result.posts["candidate_id"]``) or a Series of post counts indexed by
        site id. Every id must be a destination of ``od`` or an existing site.

    Returns
    -------
    DataFrame
        The ``units`` frame of :class:`EquityResult` (``access_after`` recomputed by
        2SFCA); ``attrs["summary"]`` holds the figures of ``solution.details``
        (``shortfall_before/after``, ``need_covered_before/after``, ``target``…).
    """
    base = _base(
        od,
        demand,
        supply_existing,
        catchment=catchment,
        weights=weights,
        target=target,
        target_share=target_share,
        second_target=second_target,
        per=per,
        advisors_per_post=advisors_per_post,
        threshold=threshold,
        settings=settings,
    )
    if isinstance(new_posts, pd.Series) and not isinstance(new_posts.index, pd.RangeIndex):
        counts = _series(
            new_posts,
            "new_posts",
            "posts per site",
            "pd.Series({'commune:49007': 1})",
            allow_empty=True,
        )
    elif isinstance(new_posts, (str, bytes)):
        raise PlacementError(
            "new_posts",
            [
                f"expected a list of site ids, got the string "
                f"{new_posts!r}; fix: pass [{new_posts!r}]"
            ],
        )
    else:
        ids = pd.Index([str(s) for s in new_posts])
        counts = pd.Series(1.0, index=ids).groupby(level=0).sum().sort_index()
    known = pd.Index(base.od["destination_id"].unique()).union(base.supply.index)
    unknown = counts.index.difference(known)
    if len(unknown):
        raise PlacementError(
            "new_posts",
            [
                f"site id(s) {sample(unknown)} are neither "
                "destinations of od within the catchment nor "
                "existing sites; fix: build od with those sites "
                "(access.od_crowfly)"
            ],
        )
    supply = base.supply.add(counts * base.a, fill_value=0.0)
    o = base.od[base.od["destination_id"].isin(supply.index)]
    acc1 = coverage.two_step_fca(
        o, base.demand, supply, catchment=base.catchment, weights=base.weights, per=base.per
    )["access"]
    acc1 = acc1.reindex(base.demand.index).to_numpy(dtype=float)
    opened = counts.index[counts.to_numpy() > 0]
    near = base.od[
        (base.od["minutes"].to_numpy() <= base.threshold)
        & base.od["destination_id"].isin(opened).to_numpy()
    ]
    covered1 = base.covered0 | base.demand.index.isin(near["origin_id"].unique())
    units = _outputs_units(base, acc1, covered1)
    units.attrs["summary"] = {**_summary(base, units), "posts": float(counts.sum())}
    return units
