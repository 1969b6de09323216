"""Private base of :mod:`cnfs_geo.placement`: results, input preparation, CRS checks,
compiled rules and the output builder shared by every model."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeAlias

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import LinearConstraint

from .. import _fr, access
from .._errors import PlacementError
from .._validate import require_od
from .._validate import sample_text as sample
from ..settings import Settings
from . import _milp
from .rules import Rules

log = logging.getLogger(__name__)

SOLVER = _milp.SOLVER
TIE_BREAK = (
    "second solve: among optimal solutions, the smallest sum of candidate ranks "
    "(candidates sorted by identifier)"
)

IdList: TypeAlias = Sequence[str]
Sites: TypeAlias = pd.DataFrame | IdList | None


# ----------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Solution(Mapping):
    """Solver record of one placement (also usable as a read-only mapping).

    Attributes
    ----------
    model : str
        ``"mclp"``, ``"pmedian"`` or ``"lscp"``.
    objective : float
        Objective of the returned posts: newly covered weight (MCLP), weight ×
        minutes to the nearest open site (p-median), number of new posts (LSCP).
    bound : float
        Proven dual bound of HiGHS (upper bound for MCLP, lower bound otherwise).
    gap : float
        Relative gap ``|bound - objective| / |objective|`` (0 when proven optimal).
    solver : str
        ``"HiGHS via scipy.optimize.milp"``.
    status : str
        ``optimal`` or ``time_limit`` (best solution found within
        ``settings.milp_time_limit_s``).
    time_s : float
        Wall time of every solve (both tie-breaking solves, every p-median round).
    n_variables, n_constraints : int
        Size of the (last) optimality model.
    tie_break : str
        How ties between optimal solutions were broken.
    details : mapping
        Model-specific figures (weights covered by existing sites, uncoverable
        units, rounds of the p-median, …).
    """

    model: str
    objective: float
    bound: float
    gap: float
    solver: str
    status: str
    time_s: float
    n_variables: int
    n_constraints: int
    tie_break: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def _keys(self) -> list[str]:
        return [f.name for f in fields(self)]

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (``details`` flattened as a nested dict)."""
        out = {k: getattr(self, k) for k in self._keys()}
        out["details"] = dict(self.details)
        return out


@dataclass(frozen=True)
class PlacementResult:
    """Outcome of a placement model.

    Attributes
    ----------
    posts : DataFrame or GeoDataFrame
        One row per new post, sorted by ``covered_weight`` (descending) then
        ``candidate_id``: ``post_id`` (``P01``, ``P02``…), ``candidate_id``,
        ``insee`` (commune of the host site, when the candidates say it), ``host``,
        ``kind`` (``"fixed"``), ``covered_weight``, ``covered_population``,
        ``covered_need`` (demand attributed to this post: for MCLP / LSCP the units
        it newly covers, each given to its nearest new post; for p-median the units
        whose nearest open site it is; NaN when that column was not given),
        ``group`` when quotas were used, and ``geometry`` (point, candidates' CRS)
        when the candidates carried one (the result is then a GeoDataFrame).
    covered : Series of bool
        Per demand unit (index of ``weights``): within the threshold of an open site
        (existing or new) after placement, or already covered.
    assignment : DataFrame
        Per demand unit (index of ``weights``): ``site_id`` (nearest open site in the
        OD table, None if none), ``minutes`` (inf if none), ``new_post`` (bool: that
        site is a new post), ``covered_before`` and ``covered`` (bool).
    solution : Solution
        Objective, bound, gap, solver, status, time, model size.
    uncoverable : Index
        Demand units with positive weight that no eligible or existing site can
        cover within the threshold (MCLP, LSCP; empty for p-median).
    """

    posts: pd.DataFrame
    covered: pd.Series
    assignment: pd.DataFrame
    solution: Solution
    uncoverable: pd.Index


# ----------------------------------------------------------------------------------------
# Instance preparation (validation, indices)
# ----------------------------------------------------------------------------------------
@dataclass
class Instance:
    demand_index: pd.Index  # user order (outputs)
    demand_ids: np.ndarray  # sorted ids (model order)
    w: np.ndarray  # weights in model order
    cand: pd.DataFrame  # index candidate ids sorted; insee, host, [geometry]
    exist_ids: np.ndarray  # sorted
    oi: np.ndarray  # OD rows: demand position
    sj: np.ndarray  # OD rows: site position (candidates then existing)
    minutes: np.ndarray
    info: pd.DataFrame  # population, need per demand id (model order)
    pre_covered: np.ndarray  # covered by ``already_covered`` (model order)

    @property
    def nd(self) -> int:
        return len(self.demand_ids)

    @property
    def nc(self) -> int:
        return len(self.cand)

    @property
    def site_ids(self) -> np.ndarray:
        return np.concatenate(
            [self.cand.index.to_numpy(dtype=object), self.exist_ids.astype(object)]
        )


def check_threshold(threshold: Any, name: str = "threshold") -> float:
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float, np.number))
        or not np.isfinite(threshold)
        or threshold <= 0
    ):
        raise PlacementError(
            name,
            [
                f"{name}={threshold!r}: must be a positive number of "
                "minutes; fix: pass e.g. threshold=10 "
                "(settings.threshold_minutes)"
            ],
        )
    return float(threshold)


def _check_weights(weights: Any) -> tuple[pd.Index, np.ndarray]:
    if not isinstance(weights, pd.Series):
        raise PlacementError(
            "weights",
            [
                f"expected a pandas Series indexed by demand unit id, "
                f"got {type(weights).__name__}; fix: pass e.g. "
                "communes['need']"
            ],
        )
    name = f"weights ({weights.name!r})" if weights.name is not None else "weights"
    if len(weights) == 0:
        raise PlacementError(
            name,
            [
                "no demand unit (empty Series); fix: pass one weight per "
                "commune of the territory, e.g. communes['need']"
            ],
        )
    problems = []
    ids = pd.Index(weights.index.astype(str))
    if ids.has_duplicates:
        problems.append(
            f"duplicated demand ids: {sample(ids[ids.duplicated()].unique())}; "
            "fix: one row per demand unit"
        )
    w = pd.to_numeric(weights, errors="coerce").to_numpy(dtype=float)
    nonnum = weights.notna().to_numpy() & np.isnan(w)
    if nonnum.any():
        problems.append(f"non-numeric weights for {sample(ids[nonnum])}; fix: numbers only")
    bad = np.isnan(w) & ~nonnum | np.isinf(w)
    if bad.any():
        problems.append(
            f"NaN or infinite weight for {int(bad.sum())} unit(s): "
            f"{sample(ids[bad])}; "
            "fix: fill them (0 = no demand) or drop those units"
        )
    neg = w < 0
    if neg.any():
        problems.append(
            f"negative weight for {int(neg.sum())} unit(s): {sample(ids[neg])}; "
            "fix: weights are populations or need-weighted populations, >= 0"
        )
    if problems:
        raise PlacementError(name, problems)
    return ids, w


def _site_ids(frame: pd.DataFrame, *, id_cols: tuple[str, ...]) -> pd.Index:
    for col in id_cols:
        if col in frame.columns:
            return pd.Index(frame[col].astype(str), name=col)
    return pd.Index(frame.index.astype(str), name=frame.index.name)


def normalise_sites(sites: Sites, what: str, id_cols: tuple[str, ...]) -> pd.DataFrame:
    """Sites (ids or a frame) → DataFrame indexed by unique str id."""
    if sites is None:
        return pd.DataFrame(index=pd.Index([], dtype=object))
    if isinstance(sites, pd.DataFrame):
        ids = _site_ids(sites, id_cols=id_cols)
        frame = sites.copy()
        frame.index = pd.Index(ids.to_numpy(dtype=object), name="candidate_id")
    elif isinstance(sites, (str, bytes)):
        raise PlacementError(
            what, [f"expected a list of site ids, got the string {sites!r}; fix: pass [{sites!r}]"]
        )
    else:
        frame = pd.DataFrame(
            index=pd.Index([str(s) for s in sites], dtype=object, name="candidate_id")
        )
    if frame.index.has_duplicates:
        raise PlacementError(
            what,
            [
                f"duplicated site ids: "
                f"{sample(frame.index[frame.index.duplicated()].unique())}; "
                "fix: one row per site"
            ],
        )
    return frame


def prepare(
    od: pd.DataFrame,
    weights: pd.Series,
    *,
    candidates: Sites,
    existing: Sites,
    eligible: pd.Series | IdList | None,
    demand: pd.DataFrame | None,
    already_covered: pd.Series | None,
) -> Instance:
    ids, w_user = _check_weights(weights)
    # --- OD table
    require_od(od, error=PlacementError)
    problems = []
    o = od["origin_id"].astype(str).to_numpy()
    d = od["destination_id"].astype(str).to_numpy()
    mins = pd.to_numeric(od["minutes"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(mins) | (mins < 0)
    if bad.any():
        problems.append(
            f"{int(bad.sum())} row(s) with missing, negative or infinite minutes, "
            f"e.g. rows {sample(od.index[bad])}; fix: drop unreachable pairs "
            "(the table is sparse) and check the travel model"
        )
    unknown = pd.Index(o).difference(ids)
    if len(unknown):
        problems.append(
            f"origin ids absent from the weights: {sample(unknown)}; fix: give a "
            "weight to every demand unit of the OD table (0 for no demand) or "
            "restrict the table to the demand units"
        )
    if problems:
        raise PlacementError("od", problems)

    # --- sites
    exist = normalise_sites(existing, "existing", ("place_id", "candidate_id"))
    exist_ids = np.array(sorted(exist.index), dtype=object)
    if candidates is None:
        cand = pd.DataFrame(
            index=pd.Index(sorted(set(d) - set(exist_ids)), dtype=object, name="candidate_id")
        )
    else:
        cand = normalise_sites(candidates, "candidates", ("candidate_id",))
        both = cand.index.intersection(pd.Index(exist_ids))
        if len(both):
            log.info(
                "placement: %d candidate(s) are existing sites and are not candidates for "
                "a new post: %s",
                len(both),
                sample(both),
            )
            cand = cand.drop(index=both)
    if eligible is not None:
        if isinstance(eligible, pd.Series):
            mask = eligible.copy()
            mask.index = mask.index.astype(str)
            if mask.dtype != bool:
                raise PlacementError(
                    "eligible",
                    [
                        f"boolean Series expected, dtype is "
                        f"{mask.dtype}; "
                        "fix: pass a True/False mask indexed by "
                        "candidate id, or a list of ids"
                    ],
                )
            absent = cand.index.difference(mask.index)
            if len(absent):
                raise PlacementError(
                    "eligible",
                    [
                        f"no True/False value for candidate(s) "
                        f"{sample(absent)}; fix: give the mask a value "
                        "for every candidate"
                    ],
                )
            keep = mask.reindex(cand.index).to_numpy(dtype=bool)
        else:
            if isinstance(eligible, (str, bytes)):
                eligible = [eligible]
            wanted = pd.Index([str(e) for e in eligible])
            unknown = wanted.difference(cand.index)
            if len(unknown):
                raise PlacementError(
                    "eligible",
                    [
                        f"id(s) that are not candidates: "
                        f"{sample(unknown)}; fix: give candidate ids "
                        "(or a boolean mask indexed by candidate id)"
                    ],
                )
            keep = cand.index.isin(wanted)
        if (~keep).any():
            log.info("placement: %d of %d candidates not eligible", int((~keep).sum()), len(keep))
        cand = cand[keep]
    cand = cand.sort_index()
    if "insee" not in cand.columns:
        cand["insee"] = None
    if "host" not in cand.columns:
        cand["host"] = cand.index.to_numpy(dtype=object)

    # --- demand order and info
    order = np.argsort(ids.to_numpy(dtype=str), kind="stable")
    demand_ids = ids.to_numpy(dtype=object)[order]
    w = w_user[order]
    info = pd.DataFrame(index=pd.Index(demand_ids, name="demand_id"))
    for col in ("population", "need"):
        if demand is not None and col in demand.columns:
            values = demand[col].copy()
            values.index = values.index.astype(str)
            absent = info.index.difference(values.index)
            if len(absent):
                raise PlacementError(
                    "demand",
                    [
                        f"no {col!r} for demand unit(s) {sample(absent)}; "
                        "fix: index demand like the weights"
                    ],
                )
            info[col] = values.reindex(info.index).astype(float).to_numpy()
        elif weights.name == col:  # the weights are that column (e.g. communes["need"])
            info[col] = w
        else:
            info[col] = np.nan
    pre = np.zeros(len(demand_ids), dtype=bool)
    if already_covered is not None:
        ac = already_covered.copy()
        ac.index = ac.index.astype(str)
        absent = info.index.difference(ac.index)
        if len(absent) or ac.dtype != bool:
            raise PlacementError(
                "already_covered",
                [
                    f"expected a bool Series with a value for every demand unit (missing: "
                    f"{sample(absent)}, dtype {ac.dtype}); "
                    "fix: pass e.g. communes['covered_before']"
                ],
            )
        pre = ac.reindex(info.index).to_numpy(dtype=bool)

    # --- OD rows restricted to known sites, integer coded
    site_ids = np.concatenate([cand.index.to_numpy(dtype=object), exist_ids])
    site_pos = pd.Series(np.arange(len(site_ids)), index=pd.Index(site_ids))
    site_rank = np.argsort(np.argsort(site_ids.astype(str), kind="stable"), kind="stable")
    demand_pos = pd.Series(np.arange(len(demand_ids)), index=pd.Index(demand_ids))
    sj = site_pos.reindex(d).to_numpy()
    keep = ~np.isnan(sj)
    oi = demand_pos.reindex(o[keep]).to_numpy().astype(np.int64)
    sj = sj[keep].astype(np.int64)
    mins = mins[keep]
    srt = np.lexsort((site_rank[sj] if len(sj) else sj, mins, oi))
    od_pairs = pd.DataFrame({"i": oi[srt], "j": sj[srt]})
    if od_pairs.duplicated().any():
        raise PlacementError(
            "od", ["duplicated (origin_id, destination_id) pairs; fix: one row per pair"]
        )
    return Instance(
        demand_index=pd.Index(weights.index),
        demand_ids=demand_ids,
        w=w,
        cand=cand,
        exist_ids=exist_ids,
        oi=oi[srt],
        sj=sj[srt],
        minutes=mins[srt],
        info=info,
        pre_covered=pre,
    )


# ----------------------------------------------------------------------------------------
# Rules shared by the models: count / budget, quotas, separation
# ----------------------------------------------------------------------------------------
@dataclass
class CompiledRules:
    p: int | None
    max_posts: int | None
    budget_eur: float | None
    cost: np.ndarray
    groups: np.ndarray | None  # label per candidate (None = unconstrained)
    min_per_group: dict[str, int]
    max_per_group: dict[str, int]
    sep_pairs: np.ndarray  # (n, 2) candidate positions too close
    min_separation_min: float | None
    labels: list[str] = field(default_factory=list)

    def constraints(self, nvars: int) -> list[LinearConstraint]:
        nc = len(self.cost)
        out = []
        if self.p is not None or self.max_posts is not None:
            row = sparse.csr_array(
                (np.ones(nc), (np.zeros(nc, int), np.arange(nc))), shape=(1, nvars)
            )
            lo = self.p if self.p is not None else 0
            hi = self.p if self.p is not None else self.max_posts
            out.append(LinearConstraint(row, lo, hi))
        if self.budget_eur is not None:
            row = sparse.csr_array(
                (self.cost, (np.zeros(nc, int), np.arange(nc))), shape=(1, nvars)
            )
            out.append(LinearConstraint(row, -np.inf, self.budget_eur))
        if self.groups is not None and (self.min_per_group or self.max_per_group):
            labels = sorted(set(self.min_per_group) | set(self.max_per_group))
            r: list[int] = []
            cidx: list[int] = []
            g_lo: list[float] = []
            g_hi: list[float] = []
            for k, g in enumerate(labels):
                members = np.flatnonzero(self.groups == g)
                r.extend([k] * len(members))
                cidx.extend(members.tolist())
                g_lo.append(self.min_per_group.get(g, 0))
                g_hi.append(self.max_per_group.get(g, np.inf))
            a = sparse.csr_array((np.ones(len(r)), (r, cidx)), shape=(len(labels), nvars))
            out.append(LinearConstraint(a, g_lo, g_hi))
        if len(self.sep_pairs):
            n = len(self.sep_pairs)
            rows = np.repeat(np.arange(n), 2)
            a = sparse.csr_array((np.ones(2 * n), (rows, self.sep_pairs.ravel())), shape=(n, nvars))
            out.append(LinearConstraint(a, -np.inf, 1))
        return out


def _count_arg(value: Any, name: str) -> int | None:
    return None if value is None else _count(value, name)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise PlacementError(
            name, [f"{name}={value!r}: must be a whole number of posts; fix: pass e.g. {name}=8"]
        )
    if value < 0:
        raise PlacementError(
            name, [f"{name}={value!r}: cannot be negative; fix: pass a number of new posts >= 0"]
        )
    return int(value)


def _per_group(
    value: int | Mapping[str, int] | None, labels: list[str], name: str
) -> dict[str, int]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        unknown = [k for k in value if str(k) not in labels]
        if unknown:
            raise PlacementError(
                name,
                [
                    f"unknown group(s) {sample(unknown)}; known groups: "
                    f"{sample(labels, 20)}; fix: use the group labels of "
                    "the candidates"
                ],
            )
        out = {str(k): _count(v, f"{name}[{k!r}]") for k, v in value.items()}
    else:
        n = _count(value, name)
        out = {g: n for g in labels}
    return out


def compile_rules(
    inst: Instance, rules: Rules, *, model: str, p: Any, settings: Settings
) -> CompiledRules:
    """Check ``rules`` against the prepared instance and turn them into model rows."""
    budget_eur, post_cost_eur = rules.budget_eur, rules.post_cost_eur
    groups, separation = rules.groups, rules.separation
    min_per_group, max_per_group = rules.min_per_group, rules.max_per_group
    min_separation_min = rules.min_separation_min
    nc = inst.nc
    p = _count_arg(p, "p")
    max_posts = _count_arg(rules.max_posts, "max_posts")
    problems: list[str] = []
    labels: list[str] = []
    # --- cost and budget
    if post_cost_eur is None:
        cost = np.full(nc, float(settings.cost_per_post_eur))
    elif isinstance(post_cost_eur, pd.Series):
        pc = post_cost_eur.copy()
        pc.index = pc.index.astype(str)
        absent = inst.cand.index.difference(pc.index)
        if len(absent):
            raise PlacementError(
                "post_cost_eur",
                [f"no cost for candidate(s) {sample(absent)}; fix: one cost per candidate id"],
            )
        cost = pd.to_numeric(pc.reindex(inst.cand.index), errors="coerce").to_numpy(float)
    else:
        cost = np.full(nc, float(post_cost_eur))
    if nc and (~np.isfinite(cost) | (cost <= 0)).any():
        raise PlacementError(
            "post_cost_eur",
            [
                "costs must be positive numbers of euros; fix: "
                "check post_cost_eur (default "
                "settings.cost_per_post_eur)"
            ],
        )
    if budget_eur is not None:
        if (
            isinstance(budget_eur, bool)
            or not isinstance(budget_eur, (int, float, np.number))
            or not np.isfinite(budget_eur)
            or budget_eur < 0
        ):
            raise PlacementError(
                "budget_eur",
                [
                    f"budget_eur={budget_eur!r}: must be a number of "
                    "euros >= 0; fix: e.g. budget_eur=400000"
                ],
            )
        budget_eur = float(budget_eur)
        labels.append(f"budget_eur={budget_eur:g}")
    if model in ("mclp", "pmedian") and p is None and budget_eur is None:
        raise PlacementError(
            "p",
            [f"{model}: give the number of new posts p (e.g. p=8, settings.posts) or a budget_eur"],
        )
    # --- count checks
    if p is not None:
        labels.append(f"p={p} (exactly {p} new posts)")
        if p > 0 and nc == 0:
            raise PlacementError(
                "candidates",
                [
                    f"no eligible candidate site for p={p} new posts; fix: pass candidates (town "
                    "halls, places) that are not existing sites and check the eligible filter"
                ],
            )
        if p > nc:
            raise PlacementError(
                "p",
                [
                    f"{p} nouveaux postes demandés (p={p}), mais seulement "
                    f"{_fr.plural(nc, 'lieu d’accueil possible', 'lieux d’accueil possibles')} "
                    "(mairies et lieux non déjà dotés) ; correction : demander moins de "
                    "postes (--posts) ou élargir les lieux d'accueil possibles"
                ],
            )
        if budget_eur is not None and nc and np.sort(cost)[:p].sum() > budget_eur + 1e-9:
            raise PlacementError(
                "budget_eur",
                [
                    f"budget_eur={budget_eur:g} cannot pay p={p} posts (cheapest {p} cost "
                    f"{np.sort(cost)[:p].sum():g} €); fix: raise the budget or lower p"
                ],
            )
    if max_posts is not None:
        labels.append(f"max_posts={max_posts}")
    # --- quotas
    glabels = None
    mins: dict[str, int] = {}
    maxs: dict[str, int] = {}
    if min_per_group is not None or max_per_group is not None:
        if groups is None:
            raise PlacementError(
                "groups",
                [
                    "min_per_group / max_per_group need groups: a Series "
                    "of group labels (e.g. EPCI SIREN) indexed by "
                    "candidate id, or the name of a column of the "
                    "candidates"
                ],
            )
        if isinstance(groups, str):
            if groups not in inst.cand.columns:
                raise PlacementError(
                    "groups",
                    [
                        f"the candidates have no column {groups!r}; "
                        f"columns: {list(inst.cand.columns)}"
                    ],
                )
            gs = inst.cand[groups]
        else:
            gs = groups.copy()
            gs.index = gs.index.astype(str)
            gs = gs.reindex(inst.cand.index)
        glabels = np.array([None if pd.isna(g) else str(g) for g in gs], dtype=object)
        no_group = pd.isna(glabels)  # True where the label is None
        if no_group.any():
            log.info(
                "placement: %d candidate(s) without group are not subject to quotas",
                int(no_group.sum()),
            )
        known = sorted({g for g in glabels if g is not None})
        mins = _per_group(min_per_group, known, "min_per_group")
        maxs = _per_group(max_per_group, known, "max_per_group")
        for g in known:
            size = int((glabels == g).sum())
            lo, hi = mins.get(g, 0), maxs.get(g, size)
            if lo > size:
                problems.append(
                    f"min_per_group={lo} for group {g!r} but it has only {size} "
                    "eligible candidate(s); fix: lower the minimum"
                )
            if lo > hi:
                problems.append(f"group {g!r}: min_per_group={lo} > max_per_group={hi}")
        if p is not None and sum(mins.values()) > p:
            problems.append(
                f"the minima per group add up to {sum(mins.values())} posts, more "
                f"than p={p}; fix: lower min_per_group or raise p"
            )
        if p is not None and maxs:
            cap = sum(min(maxs.get(g, (glabels == g).sum()), (glabels == g).sum()) for g in known)
            cap += int((glabels == None).sum())  # noqa: E711
            if cap < p:
                problems.append(
                    f"the maxima per group allow at most {cap} posts, fewer than "
                    f"p={p}; fix: raise max_per_group or lower p"
                )
        if problems:
            raise PlacementError("quotas", problems)
        labels.append(
            f"quotas per group (min {mins or '-'}, max {maxs or '-'})"
            if len(known) <= 5
            else f"quotas on {len(known)} groups (min_per_group={min_per_group!r}, "
            f"max_per_group={max_per_group!r})"
        )
    # --- separation
    pairs = np.empty((0, 2), dtype=np.int64)
    if min_separation_min is not None:
        min_sep = check_threshold(min_separation_min, "min_separation_min")
        if separation is None:
            xy = xy_of(inst.cand)
            if xy is None:
                raise PlacementError(
                    "min_separation_min",
                    [
                        "a minimum separation needs travel times between candidates: pass "
                        "separation (long OD candidates × candidates), or candidates with x/y "
                        "columns or point geometry"
                    ],
                )
            separation = access.od_crowfly(xy, xy, max_minutes=min_sep, settings=settings)
        pos = pd.Series(np.arange(nc), index=inst.cand.index)
        a = pos.reindex(separation["origin_id"].astype(str)).to_numpy()
        b = pos.reindex(separation["destination_id"].astype(str)).to_numpy()
        close = pd.to_numeric(separation["minutes"], errors="coerce").to_numpy(float) < min_sep
        ok = ~np.isnan(a) & ~np.isnan(b) & close
        a, b = a[ok].astype(np.int64), b[ok].astype(np.int64)
        lo_, hi_ = np.minimum(a, b), np.maximum(a, b)
        sel = lo_ < hi_
        pairs = np.unique(np.column_stack([lo_[sel], hi_[sel]]), axis=0) if sel.any() else pairs
        labels.append(f"min_separation_min={min_sep:g} ({len(pairs)} forbidden pairs)")
    else:
        min_sep = None
    return CompiledRules(
        p=p,
        max_posts=max_posts,
        budget_eur=budget_eur,
        cost=cost,
        groups=glabels,
        min_per_group=mins,
        max_per_group=maxs,
        sep_pairs=pairs,
        min_separation_min=min_sep,
        labels=labels,
    )


def xy_of(frame: pd.DataFrame) -> pd.DataFrame | None:
    if {"x", "y"} <= set(frame.columns):
        return frame[["x", "y"]].astype(float)
    if (
        isinstance(frame, gpd.GeoDataFrame)
        and len(frame)
        and (frame.geometry.geom_type == "Point").all()
    ):
        return pd.DataFrame({"x": frame.geometry.x, "y": frame.geometry.y}, index=frame.index)
    return None


# ----------------------------------------------------------------------------------------
# Solving (through the package's one HiGHS wrapper, _milp)
# ----------------------------------------------------------------------------------------
def run(
    c: np.ndarray,
    integrality: np.ndarray,
    lb: np.ndarray,
    ub: np.ndarray,
    constraints: list[LinearConstraint],
    settings: Settings,
):
    """One HiGHS solve within ``settings.milp_time_limit_s``: (result, seconds)."""
    return _milp.solve(
        c,
        integrality=integrality,
        lb=lb,
        ub=ub,
        constraints=constraints,
        time_limit_s=settings.milp_time_limit_s,
    )


def raise_if_failed(
    res, model: str, rules: CompiledRules, settings: Settings, hint: str = ""
) -> None:
    """PlacementError when HiGHS proved the rules infeasible or found no solution."""
    status = _milp.status_name(res)
    if status == "infeasible":
        raise PlacementError(
            model,
            [
                f"no set of posts satisfies all the rules: "
                f"{'; '.join(rules.labels) or 'none'}; fix: relax the "
                "quotas, the separation, the eligible filter or the "
                f"budget{hint}"
            ],
        )
    if res.x is None:
        raise PlacementError(
            model,
            [
                f"HiGHS stopped ({status}: {res.message}) without a "
                "feasible solution; fix: raise settings.milp_time_limit_s "
                f"(now {settings.milp_time_limit_s:g} s)"
            ],
        )


@dataclass
class Solved:
    chosen: np.ndarray  # bool per candidate
    objective: float  # true objective (natural sense)
    bound: float
    status: str
    time_s: float
    n_variables: int
    n_constraints: int
    raw: Any  # phase-1 OptimizeResult


def exact_solution(model: str, s: Solved, details: dict[str, Any]) -> Solution:
    """The :class:`Solution` of an exact model solved by :func:`two_phase`."""
    return Solution(
        model,
        s.objective,
        s.bound,
        relative_gap(s.objective, s.bound),
        SOLVER,
        s.status,
        round(s.time_s, 4),
        s.n_variables,
        s.n_constraints,
        TIE_BREAK,
        details,
    )


def two_phase(
    c: np.ndarray,
    integrality: np.ndarray,
    lb: np.ndarray,
    ub: np.ndarray,
    constraints: list[LinearConstraint],
    *,
    nc: int,
    sense: int,
    true_objective: Callable[[np.ndarray], float],
    rules: CompiledRules,
    model: str,
    settings: Settings,
    ub_phase2: np.ndarray | None = None,
    res1=None,
    t1: float = 0.0,
    hint: str = "",
) -> Solved:
    """Phase 1: optimum (minimise ``c``). Phase 2 (:func:`_milp.tie_break`): same
    objective, smallest rank sum of the chosen candidates."""
    if res1 is None:
        res1, t1 = run(c, integrality, lb, ub, constraints, settings)
    raise_if_failed(res1, model, rules, settings, hint)
    status = _milp.status_name(res1)
    chosen1 = res1.x[:nc] > 0.5
    obj1 = true_objective(chosen1)
    chosen, obj, t_total = chosen1, obj1, t1
    if nc > 0:

        def same_optimum(x: np.ndarray) -> bool:
            return sense * (true_objective(x[:nc] > 0.5) - obj1) <= _milp.REL_TOL * max(
                1.0, abs(obj1)
            )

        tb = _milp.tie_break(
            c,
            res1,
            n_ranked=nc,
            integrality=integrality,
            lb=lb,
            ub=ub if ub_phase2 is None else ub_phase2,
            constraints=constraints,
            time_limit_s=settings.milp_time_limit_s,
            accept=same_optimum,
        )
        t_total += tb.time_s
        if tb.accepted:
            chosen = tb.x[:nc] > 0.5
            obj = true_objective(chosen)
        elif tb.res.x is not None and tb.res.status in (0, 1):
            log.warning(
                "%s: tie-breaking solve reached %.6g instead of %.6g; keeping the first solution",
                model,
                true_objective(tb.res.x[:nc] > 0.5),
                obj1,
            )
        else:
            log.warning(
                "%s: tie-breaking solve failed (%s); keeping the first solution",
                model,
                tb.res.message,
            )
    bound = res1.mip_dual_bound if getattr(res1, "mip_dual_bound", None) is not None else res1.fun
    return Solved(
        chosen=chosen,
        objective=float(obj),
        bound=float(sense * bound),
        status=status,
        time_s=t_total,
        n_variables=len(c),
        n_constraints=_milp.n_rows(constraints),
        raw=res1,
    )


def relative_gap(objective: float, bound: float) -> float:
    """``|bound − objective| / |objective|``, 0 within 1e-9 relative."""
    diff = abs(bound - objective)
    if diff <= 1e-9 * max(1.0, abs(objective)):
        return 0.0
    return diff / max(abs(objective), 1e-12)


# ----------------------------------------------------------------------------------------
# Outputs
# ----------------------------------------------------------------------------------------
def nearest_open(inst: Instance, open_sites: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest open site per demand unit (model order): site position (-1) and minutes (inf)."""
    site = np.full(inst.nd, -1, dtype=np.int64)
    mins = np.full(inst.nd, np.inf)
    sel = open_sites[inst.sj]
    oi, sj, mm = inst.oi[sel], inst.sj[sel], inst.minutes[sel]
    if len(oi):
        first = np.r_[True, oi[1:] != oi[:-1]]  # rows sorted by (i, minutes, site id)
        site[oi[first]] = sj[first]
        mins[oi[first]] = mm[first]
    return site, mins


def build_result(
    inst: Instance,
    chosen: np.ndarray,
    *,
    threshold: float,
    model: str,
    covered_before: np.ndarray,
    rules: CompiledRules,
    solution: Solution,
    uncoverable: np.ndarray,
) -> PlacementResult:
    nc = inst.nc
    open_sites = np.zeros(nc + len(inst.exist_ids), dtype=bool)
    open_sites[:nc] = chosen
    open_sites[nc:] = True
    site, mins = nearest_open(inst, open_sites)
    new_post = (site >= 0) & (site < nc)
    covered = covered_before | (mins <= threshold)
    if model == "pmedian":
        attributed = new_post
    else:
        attributed = new_post & (mins <= threshold) & ~covered_before
    site_ids = inst.site_ids
    assign = pd.DataFrame(
        {
            "site_id": np.where(site >= 0, site_ids[np.maximum(site, 0)], None),
            "minutes": mins,
            "new_post": new_post,
            "covered_before": covered_before,
            "covered": covered,
        },
        index=pd.Index(inst.demand_ids, name="demand_id"),
    )
    # posts
    pos = np.flatnonzero(chosen)
    per = pd.DataFrame(
        {
            "j": site[attributed],
            "w": inst.w[attributed],
            "pop": inst.info["population"].to_numpy()[attributed],
            "need": inst.info["need"].to_numpy()[attributed],
        }
    )
    sums = per.groupby("j").sum(min_count=1)
    cand = inst.cand.iloc[pos]
    posts = pd.DataFrame(
        {
            "candidate_id": cand.index.to_numpy(dtype=object),
            "insee": cand["insee"].to_numpy(dtype=object),
            "host": cand["host"].to_numpy(dtype=object),
            "kind": "fixed",
            "covered_weight": sums["w"].reindex(pos).fillna(0.0).to_numpy(),
            "covered_population": _post_sum(sums, "pop", pos, inst.info["population"]),
            "covered_need": _post_sum(sums, "need", pos, inst.info["need"]),
        }
    )
    if rules.groups is not None:
        posts["group"] = rules.groups[pos]
    geom = None
    if isinstance(inst.cand, gpd.GeoDataFrame) and inst.cand.geometry.name in inst.cand.columns:
        geom = cand.geometry.to_numpy()
    posts["_geom_order"] = np.arange(len(posts))
    posts = posts.sort_values(
        ["covered_weight", "candidate_id"], ascending=[False, True], kind="stable"
    )
    order = posts.pop("_geom_order").to_numpy()
    posts.insert(0, "post_id", [f"P{k + 1:02d}" for k in range(len(posts))])
    posts = posts.reset_index(drop=True)
    if geom is not None:
        posts = gpd.GeoDataFrame(posts, geometry=geom[order], crs=inst.cand.crs)
    # back to user order
    back = pd.Index(inst.demand_ids).get_indexer(inst.demand_index.astype(str))
    assign = assign.iloc[back]
    assign.index = inst.demand_index
    cov = pd.Series(covered[back], index=inst.demand_index, name="covered")
    unc = pd.Index(inst.demand_ids[uncoverable], name="demand_id")
    return PlacementResult(
        posts=posts, covered=cov, assignment=assign, solution=solution, uncoverable=unc
    )


def _post_sum(sums: pd.DataFrame, col: str, pos: np.ndarray, source: pd.Series) -> np.ndarray:
    if source.isna().all():
        return np.full(len(pos), np.nan)
    return sums[col].reindex(pos).fillna(0.0).to_numpy() if len(sums) else np.zeros(len(pos))


def coverage_sets(inst: Instance, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covered-by-existing flags and (unit, candidate) pairs within the threshold."""
    within = inst.minutes <= threshold
    by_exist = inst.pre_covered.copy()
    ex = within & (inst.sj >= inst.nc)
    by_exist[inst.oi[ex]] = True
    cp = within & (inst.sj < inst.nc)
    return by_exist, inst.oi[cp], inst.sj[cp]


# ----------------------------------------------------------------------------------------
# GeoDataFrame entry points
# ----------------------------------------------------------------------------------------
def gdf_inputs(
    demand_gdf: gpd.GeoDataFrame,
    candidates_gdf: gpd.GeoDataFrame,
    rules: Rules,
    *,
    weight_col: str,
    max_minutes: float,
    settings: Settings,
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.DataFrame, Rules]:
    """Inputs of a ``*_from_od`` model from GeoDataFrames (the shared first half of every
    ``*_from_geodataframes``): CRS checks, crow-fly OD, weights, demand info, candidates
    and ``rules`` with the existing sites as ids and the group column checked."""
    existing = rules.existing
    for name, g in (("demand_gdf", demand_gdf), ("candidates_gdf", candidates_gdf)):
        if not isinstance(g, gpd.GeoDataFrame):
            raise PlacementError(name, [f"expected a GeoDataFrame, got {type(g).__name__}"])
    if weight_col not in demand_gdf.columns:
        raise PlacementError(
            "weight_col",
            [
                f"demand_gdf has no column {weight_col!r}; columns: "
                f"{list(demand_gdf.columns)}; fix: pass "
                "weight_col='population' or add the need columns "
                "(cnfs_geo.need)"
            ],
        )
    frames = [("demand_gdf", demand_gdf), ("candidates_gdf", candidates_gdf)]
    if isinstance(existing, gpd.GeoDataFrame):
        frames.append(("existing", existing))
    crs0 = demand_gdf.crs
    for name, g in frames:
        if g.crs is None or not g.crs.is_projected:
            raise PlacementError(
                name,
                [
                    f"CRS {g.crs} is not a projected CRS in metres; fix: "
                    f"{name}.to_crs(cnfs_geo.settings.working_crs(dep))"
                ],
            )
        if g.crs != crs0:
            raise PlacementError(
                name,
                [
                    f"CRS mismatch: demand_gdf is {crs0.to_string()}, "
                    f"{name} is {g.crs.to_string()}; fix: "
                    f"{name}.to_crs(demand_gdf.crs)"
                ],
            )
    # demand points: representative point columns of communes, else x/y, else geometry
    if {"ref_x", "ref_y"} <= set(demand_gdf.columns):
        dxy = demand_gdf[["ref_x", "ref_y"]].set_axis(["x", "y"], axis=1)
    elif {"x", "y"} <= set(demand_gdf.columns):
        dxy = demand_gdf[["x", "y"]]
    else:
        rp = demand_gdf.geometry.representative_point()
        dxy = pd.DataFrame({"x": rp.x, "y": rp.y}, index=demand_gdf.index)
    dxy = dxy.astype(float)
    dxy.index = dxy.index.astype(str)
    weights = demand_gdf[weight_col]
    # candidate sites
    cand = normalise_sites(candidates_gdf, "candidates_gdf", ("candidate_id",))
    cand = gpd.GeoDataFrame(cand, geometry=candidates_gdf.geometry.name, crs=candidates_gdf.crs)
    cxy = xy_of(cand)
    if cxy is None:
        raise PlacementError(
            "candidates_gdf",
            [
                "candidate sites need x/y columns or point "
                "geometry; fix: e.g. points_from_xy("
                "communes.chef_lieu_x, communes.chef_lieu_y)"
            ],
        )
    sites = [cxy]
    exist_ids: list[str] | None = None
    if isinstance(existing, gpd.GeoDataFrame):
        ex = normalise_sites(existing, "existing", ("place_id", "candidate_id"))
        ex = gpd.GeoDataFrame(ex, geometry=existing.geometry.name, crs=existing.crs)
        exy = xy_of(ex)
        if exy is None:
            raise PlacementError("existing", ["existing sites need x/y columns or point geometry"])
        clash = exy.index.intersection(cxy.index)
        if len(clash):
            far = np.hypot(*(exy.loc[clash].to_numpy() - cxy.loc[clash].to_numpy()).T) > 1.0
            if far.any():
                raise PlacementError(
                    "existing",
                    [
                        f"id(s) {sample(clash[far])} name both an "
                        "existing site and a different candidate site; "
                        "fix: give them distinct ids"
                    ],
                )
        sites.append(exy.drop(index=clash))
        exist_ids = list(ex.index)
    elif existing is not None:
        exist_ids = [str(e) for e in ([existing] if isinstance(existing, str) else existing)]
        unknown = pd.Index(exist_ids).difference(cxy.index)
        if len(unknown):
            raise PlacementError(
                "existing",
                [
                    f"id(s) {sample(unknown)} are not rows of "
                    "candidates_gdf; fix: pass existing sites as a "
                    "GeoDataFrame, or ids of candidates_gdf"
                ],
            )
    site_xy = pd.concat(sites)
    od = access.od_crowfly(dxy, site_xy, max_minutes=max_minutes, settings=settings)
    info = demand_gdf[[c for c in ("population", "need") if c in demand_gdf.columns]].copy()
    info.index = info.index.astype(str)
    return (
        od,
        weights,
        info,
        cand,
        replace(rules, existing=exist_ids, groups=gdf_groups(cand, rules.groups)),
    )


def gdf_groups(cand: pd.DataFrame, groups: pd.Series | str | None) -> pd.Series | str | None:
    """``rules.groups`` for ``*_from_geodataframes``: a column name must be one of
    ``candidates_gdf``."""
    if isinstance(groups, str) and groups not in cand.columns:
        raise PlacementError(
            "rules.groups",
            [f"candidates_gdf has no column {groups!r}; columns: {list(cand.columns)}"],
        )
    return groups
