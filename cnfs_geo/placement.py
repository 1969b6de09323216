"""Where to put new CNFS posts: exact location models on sparse MILPs (HiGHS).

Three classical models, each solved exactly with :func:`scipy.optimize.milp`
(HiGHS branch and cut, ``mip_rel_gap = 0``) on **sparse** constraint matrices
(:mod:`scipy.sparse`); no dense demand × site matrix is ever built.

* **MCLP** (maximal covering location problem, Church & ReVelle 1974):
  choose ``p`` new posts among candidate sites to maximise the weight
  (need-weighted population by default) *newly* covered within a threshold.
  Demand already covered by existing sites contributes nothing: existing sites
  are already-open facilities, and the units they cover are removed before the
  model is built (an exact presolve of fixing their variables to 1).
* **p-median** (Hakimi 1964): choose ``p`` new posts to minimise the
  weight × minutes from every demand unit to its nearest open site, existing
  sites being open already.
* **LSCP** (location set covering problem, Toregas et al. 1971): the fewest new
  posts so that every demand unit (with positive weight) is within the
  threshold of an open site; units that no eligible site can reach are reported.

Every model accepts the same rules: already-open sites (``existing``), an
eligible-host filter (``eligible``), a budget in posts (``p`` / ``max_posts``) or
euros (``budget_eur`` at ``settings.cost_per_post_eur`` per post, or a cost per
candidate), quotas per group of candidates (e.g. EPCI, ``min_per_group`` /
``max_per_group``) and a minimum travel time between new posts
(``min_separation_min``).

Two entry points per model, like spopt's ``from_cost_matrix`` /
``from_geodataframe`` but sparse: ``*_from_od`` takes a long OD table
(``origin_id, destination_id, minutes`` — see :mod:`cnfs_geo.access`) and
``*_from_geodataframes`` builds that table with
:func:`cnfs_geo.access.od_crowfly` and delegates to the first.

Formulations
------------
Sets: demand units *i* with weight *w_i*, candidate sites *j* (binary *x_j*),
existing sites *e* (open). *N_i* = candidates within the threshold of *i*.

* MCLP: max Σ w_i y_i  s.t. y_i ≤ Σ_{j∈N_i} x_j, Σ x_j = p, 0 ≤ y_i ≤ 1 (y
  continuous: it is integral at any integral x). Units covered by an existing
  site, units with zero weight and units no candidate reaches are left out;
  units with identical N_i are merged (their weights summed).
* p-median: min Σ w_i d_ij z_ij  s.t. Σ_j z_ij = 1, z_ij ≤ x_j, Σ x_j = p. Unit
  *i* may only use sites no farther than its nearest existing site (a farther
  site is never better), and first only its ``k`` nearest of those; a
  placeholder variable with the cost of the (k+1)-th nearest site keeps the model
  a relaxation of the full one. When a placeholder is used, ``k`` is doubled for
  that unit and the model solved again (as spopt's ``KNearestPMedian``); the
  final solution uses no placeholder and is optimal over every pair of the OD
  table. Pairs absent from the OD table (beyond its cutoff) are not allowed.
* LSCP: min Σ x_j  s.t. Σ_{j∈N_i} x_j ≥ 1 for every unit not covered by an
  existing site (identical rows merged).

Deterministic tie-breaking
--------------------------
Several sets of posts often reach the same optimum. Every model is solved
twice: the first solve gives the optimum; the second keeps the objective at that
optimum (within 1e-9 relative) and minimises the sum of the ranks of the chosen
candidates, candidates being ranked by identifier. Among optimal solutions the
one made of the "earliest" candidates is returned, whatever the row order of the
inputs. The objective, bound and gap reported are those of the first solve
(the second one is checked to reach the same objective, else the first solution
is kept and a warning logged).

Examples
--------
>>> import pandas as pd
>>> from cnfs_geo import access, catalog, territory, placement
>>> c = territory.communes_from_cog("49", catalog.resolve_data_dir())
>>> demand = c[["ref_x", "ref_y"]].set_axis(["x", "y"], axis=1)
>>> sites = c[["chef_lieu_x", "chef_lieu_y"]].set_axis(["x", "y"], axis=1)
>>> sites.index = "commune:" + sites.index
>>> od = access.od_crowfly(demand, sites, max_minutes=10)
>>> r = placement.mclp_from_od(od, c["population"], p=3, threshold=10)
>>> len(r.posts), r.solution["status"]
(3, 'optimal')
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Union

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from . import access
from ._errors import PlacementError
from .settings import DEFAULT, Settings

log = logging.getLogger(__name__)

SOLVER = "HiGHS via scipy.optimize.milp"
TIE_BREAK = ("second solve: among optimal solutions, the smallest sum of candidate ranks "
             "(candidates sorted by identifier)")
_STATUS = {0: "optimal", 1: "time_limit", 2: "infeasible", 3: "unbounded", 4: "error"}
_REL_TOL = 1e-9

IdList = Sequence[str]
Sites = Union[pd.DataFrame, IdList, None]


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
class _Instance:
    demand_index: pd.Index          # user order (outputs)
    demand_ids: np.ndarray          # sorted ids (model order)
    w: np.ndarray                   # weights in model order
    cand: pd.DataFrame              # index candidate ids sorted; insee, host, [geometry]
    exist_ids: np.ndarray           # sorted
    oi: np.ndarray                  # OD rows: demand position
    sj: np.ndarray                  # OD rows: site position (candidates then existing)
    minutes: np.ndarray
    info: pd.DataFrame              # population, need per demand id (model order)
    pre_covered: np.ndarray         # covered by ``already_covered`` (model order)

    @property
    def nd(self) -> int:
        return len(self.demand_ids)

    @property
    def nc(self) -> int:
        return len(self.cand)

    @property
    def site_ids(self) -> np.ndarray:
        return np.concatenate([self.cand.index.to_numpy(dtype=object),
                               self.exist_ids.astype(object)])


def _sample(values, n: int = 10) -> str:
    values = list(values)
    more = f" … ({len(values)} in all)" if len(values) > n else ""
    return ", ".join(map(str, values[:n])) + more


def _check_threshold(threshold: Any, name: str = "threshold") -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) \
            or not np.isfinite(threshold) or threshold <= 0:
        raise PlacementError(name, [f"{name}={threshold!r}: must be a positive number of "
                                    "minutes; fix: pass e.g. threshold=10 "
                                    "(settings.threshold_minutes)"])
    return float(threshold)


def _check_weights(weights: Any) -> tuple[pd.Index, np.ndarray]:
    if not isinstance(weights, pd.Series):
        raise PlacementError("weights", [f"expected a pandas Series indexed by demand unit id, "
                                         f"got {type(weights).__name__}; fix: pass e.g. "
                                         "communes['need']"])
    name = f"weights ({weights.name!r})" if weights.name is not None else "weights"
    if len(weights) == 0:
        raise PlacementError(name, ["no demand unit (empty Series); fix: pass one weight per "
                                    "commune of the territory, e.g. communes['need']"])
    problems = []
    ids = pd.Index(weights.index.astype(str))
    if ids.has_duplicates:
        problems.append(f"duplicated demand ids: {_sample(ids[ids.duplicated()].unique())}; "
                        "fix: one row per demand unit")
    w = pd.to_numeric(weights, errors="coerce").to_numpy(dtype=float)
    nonnum = weights.notna().to_numpy() & np.isnan(w)
    if nonnum.any():
        problems.append(f"non-numeric weights for {_sample(ids[nonnum])}; fix: numbers only")
    bad = np.isnan(w) & ~nonnum | np.isinf(w)
    if bad.any():
        problems.append(f"NaN or infinite weight for {int(bad.sum())} unit(s): "
                        f"{_sample(ids[bad])}; "
                        "fix: fill them (0 = no demand) or drop those units")
    neg = w < 0
    if neg.any():
        problems.append(f"negative weight for {int(neg.sum())} unit(s): {_sample(ids[neg])}; "
                        "fix: weights are populations or need-weighted populations, >= 0")
    if problems:
        raise PlacementError(name, problems)
    return ids, w


def _site_ids(frame: pd.DataFrame, *, id_cols: tuple[str, ...]) -> pd.Index:
    for col in id_cols:
        if col in frame.columns:
            return pd.Index(frame[col].astype(str), name=col)
    return pd.Index(frame.index.astype(str), name=frame.index.name)


def _normalise_sites(sites: Sites, what: str, id_cols: tuple[str, ...]) -> pd.DataFrame:
    """Sites (ids or a frame) → DataFrame indexed by unique str id."""
    if sites is None:
        return pd.DataFrame(index=pd.Index([], dtype=object))
    if isinstance(sites, pd.DataFrame):
        ids = _site_ids(sites, id_cols=id_cols)
        frame = sites.copy()
        frame.index = pd.Index(ids.to_numpy(dtype=object), name="candidate_id")
    elif isinstance(sites, (str, bytes)):
        raise PlacementError(what, [f"expected a list of site ids, got the string {sites!r}; "
                                    f"fix: pass [{sites!r}]"])
    else:
        frame = pd.DataFrame(index=pd.Index([str(s) for s in sites], dtype=object,
                                            name="candidate_id"))
    if frame.index.has_duplicates:
        raise PlacementError(what, [f"duplicated site ids: "
                                    f"{_sample(frame.index[frame.index.duplicated()].unique())}; "
                                    "fix: one row per site"])
    return frame


def _prepare(od: pd.DataFrame, weights: pd.Series, *, candidates: Sites, existing: Sites,
             eligible: pd.Series | IdList | None, demand: pd.DataFrame | None,
             already_covered: pd.Series | None) -> _Instance:
    ids, w_user = _check_weights(weights)
    # --- OD table
    if not isinstance(od, pd.DataFrame):
        raise PlacementError("od", [f"expected a long OD DataFrame, got {type(od).__name__}; fix: "
                                    "build it with cnfs_geo.access.od_crowfly"])
    missing = [c for c in ("origin_id", "destination_id", "minutes") if c not in od.columns]
    if missing:
        raise PlacementError("od", [f"missing column(s) {missing}; fix: the OD table is long "
                                    "form (origin_id, destination_id, minutes), see "
                                    "cnfs_geo.access.od_crowfly"])
    problems = []
    o = od["origin_id"].astype(str).to_numpy()
    d = od["destination_id"].astype(str).to_numpy()
    mins = pd.to_numeric(od["minutes"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(mins) | (mins < 0)
    if bad.any():
        problems.append(f"{int(bad.sum())} row(s) with missing, negative or infinite minutes, "
                        f"e.g. rows {_sample(od.index[bad])}; fix: drop unreachable pairs "
                        "(the table is sparse) and check the travel model")
    unknown = pd.Index(o).difference(ids)
    if len(unknown):
        problems.append(f"origin ids absent from the weights: {_sample(unknown)}; fix: give a "
                        "weight to every demand unit of the OD table (0 for no demand) or "
                        "restrict the table to the demand units")
    if problems:
        raise PlacementError("od", problems)

    # --- sites
    exist = _normalise_sites(existing, "existing", ("place_id", "candidate_id"))
    exist_ids = np.array(sorted(exist.index), dtype=object)
    if candidates is None:
        cand = pd.DataFrame(index=pd.Index(sorted(set(d) - set(exist_ids)), dtype=object,
                                           name="candidate_id"))
    else:
        cand = _normalise_sites(candidates, "candidates", ("candidate_id",))
        both = cand.index.intersection(pd.Index(exist_ids))
        if len(both):
            log.info("placement: %d candidate(s) are existing sites and are not candidates for "
                     "a new post: %s", len(both), _sample(both))
            cand = cand.drop(index=both)
    if eligible is not None:
        if isinstance(eligible, pd.Series):
            mask = eligible.copy()
            mask.index = mask.index.astype(str)
            if mask.dtype != bool:
                raise PlacementError("eligible", [f"boolean Series expected, dtype is "
                                                  f"{mask.dtype}; "
                                                  "fix: pass a True/False mask indexed by "
                                                  "candidate id, or a list of ids"])
            absent = cand.index.difference(mask.index)
            if len(absent):
                raise PlacementError("eligible", [f"no True/False value for candidate(s) "
                                                  f"{_sample(absent)}; fix: give the mask a value "
                                                  "for every candidate"])
            keep = mask.reindex(cand.index).to_numpy(dtype=bool)
        else:
            if isinstance(eligible, (str, bytes)):
                eligible = [eligible]
            wanted = pd.Index([str(e) for e in eligible])
            unknown = wanted.difference(cand.index)
            if len(unknown):
                raise PlacementError("eligible", [f"id(s) that are not candidates: "
                                                  f"{_sample(unknown)}; fix: give candidate ids "
                                                  "(or a boolean mask indexed by candidate id)"])
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
                raise PlacementError("demand", [f"no {col!r} for demand unit(s) {_sample(absent)}; "
                                                "fix: index demand like the weights"])
            info[col] = values.reindex(info.index).astype(float).to_numpy()
        elif weights.name == col:      # the weights are that column (e.g. communes["need"])
            info[col] = w
        else:
            info[col] = np.nan
    pre = np.zeros(len(demand_ids), dtype=bool)
    if already_covered is not None:
        ac = already_covered.copy()
        ac.index = ac.index.astype(str)
        absent = info.index.difference(ac.index)
        if len(absent) or ac.dtype != bool:
            raise PlacementError("already_covered", [
                f"expected a bool Series with a value for every demand unit (missing: "
                f"{_sample(absent)}, dtype {ac.dtype}); fix: pass e.g. communes['covered_before']"])
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
        raise PlacementError("od", ["duplicated (origin_id, destination_id) pairs; fix: one row "
                                    "per pair"])
    return _Instance(demand_index=pd.Index(weights.index), demand_ids=demand_ids, w=w, cand=cand,
                     exist_ids=exist_ids, oi=oi[srt], sj=sj[srt], minutes=mins[srt], info=info,
                     pre_covered=pre)


# ----------------------------------------------------------------------------------------
# Rules shared by the models: count / budget, quotas, separation
# ----------------------------------------------------------------------------------------
@dataclass
class _Rules:
    p: int | None
    max_posts: int | None
    budget_eur: float | None
    cost: np.ndarray
    groups: np.ndarray | None                  # label per candidate (None = unconstrained)
    min_per_group: dict[str, int]
    max_per_group: dict[str, int]
    sep_pairs: np.ndarray                      # (n, 2) candidate positions too close
    min_separation_min: float | None
    labels: list[str] = field(default_factory=list)

    def constraints(self, nvars: int) -> list[LinearConstraint]:
        nc = len(self.cost)
        out = []
        if self.p is not None or self.max_posts is not None:
            row = sparse.csr_array((np.ones(nc), (np.zeros(nc, int), np.arange(nc))),
                                   shape=(1, nvars))
            lo = self.p if self.p is not None else 0
            hi = self.p if self.p is not None else self.max_posts
            out.append(LinearConstraint(row, lo, hi))
        if self.budget_eur is not None:
            row = sparse.csr_array((self.cost, (np.zeros(nc, int), np.arange(nc))),
                                   shape=(1, nvars))
            out.append(LinearConstraint(row, -np.inf, self.budget_eur))
        if self.groups is not None and (self.min_per_group or self.max_per_group):
            labels = sorted(set(self.min_per_group) | set(self.max_per_group))
            r, cidx, lo, hi = [], [], [], []
            for k, g in enumerate(labels):
                members = np.flatnonzero(self.groups == g)
                r.extend([k] * len(members))
                cidx.extend(members.tolist())
                lo.append(self.min_per_group.get(g, 0))
                hi.append(self.max_per_group.get(g, np.inf))
            a = sparse.csr_array((np.ones(len(r)), (r, cidx)), shape=(len(labels), nvars))
            out.append(LinearConstraint(a, lo, hi))
        if len(self.sep_pairs):
            n = len(self.sep_pairs)
            rows = np.repeat(np.arange(n), 2)
            a = sparse.csr_array((np.ones(2 * n), (rows, self.sep_pairs.ravel())),
                                 shape=(n, nvars))
            out.append(LinearConstraint(a, -np.inf, 1))
        return out


def _count_arg(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise PlacementError(name, [f"{name}={value!r}: must be a whole number of posts; fix: "
                                    f"pass e.g. {name}=8"])
    if value < 0:
        raise PlacementError(name, [f"{name}={value!r}: cannot be negative; fix: pass a number "
                                    "of new posts >= 0"])
    return int(value)


def _per_group(value: int | Mapping[str, int] | None, labels: list[str],
               name: str) -> dict[str, int]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        unknown = [k for k in value if str(k) not in labels]
        if unknown:
            raise PlacementError(name, [f"unknown group(s) {_sample(unknown)}; known groups: "
                                        f"{_sample(labels, 20)}; fix: use the group labels of "
                                        "the candidates"])
        out = {str(k): _count_arg(v, f"{name}[{k!r}]") for k, v in value.items()}
    else:
        n = _count_arg(value, name)
        out = {g: n for g in labels}
    return out


def _make_rules(inst: _Instance, *, model: str, p: Any, max_posts: Any, budget_eur: Any,
                post_cost_eur: pd.Series | float | None, groups: pd.Series | str | None,
                min_per_group: Any, max_per_group: Any, separation: pd.DataFrame | None,
                min_separation_min: Any, settings: Settings) -> _Rules:
    nc = inst.nc
    p = _count_arg(p, "p")
    max_posts = _count_arg(max_posts, "max_posts")
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
            raise PlacementError("post_cost_eur", [f"no cost for candidate(s) {_sample(absent)}; "
                                                   "fix: one cost per candidate id"])
        cost = pd.to_numeric(pc.reindex(inst.cand.index), errors="coerce").to_numpy(float)
    else:
        cost = np.full(nc, float(post_cost_eur))
    if nc and (~np.isfinite(cost) | (cost <= 0)).any():
        raise PlacementError("post_cost_eur", ["costs must be positive numbers of euros; fix: "
                                               "check post_cost_eur (default "
                                               "settings.cost_per_post_eur)"])
    if budget_eur is not None:
        if isinstance(budget_eur, bool) or not isinstance(budget_eur, (int, float, np.number)) \
                or not np.isfinite(budget_eur) or budget_eur < 0:
            raise PlacementError("budget_eur", [f"budget_eur={budget_eur!r}: must be a number of "
                                                "euros >= 0; fix: e.g. budget_eur=400000"])
        budget_eur = float(budget_eur)
        labels.append(f"budget_eur={budget_eur:g}")
    if model in ("mclp", "pmedian"):
        if p is None and budget_eur is None:
            raise PlacementError("p", [f"{model}: give the number of new posts p (e.g. p=8, "
                                       "settings.posts) or a budget_eur"])
    # --- count checks
    if p is not None:
        labels.append(f"p={p} (exactly {p} new posts)")
        if p > 0 and nc == 0:
            raise PlacementError("candidates", [
                f"no eligible candidate site for p={p} new posts; fix: pass candidates (town "
                "halls, places) that are not existing sites and check the eligible filter"])
        if p > nc:
            raise PlacementError("p", [f"p={p} new posts but only {nc} eligible candidate "
                                       "site(s); fix: lower p or add candidates / widen the "
                                       "eligible filter"])
        if budget_eur is not None and nc and np.sort(cost)[:p].sum() > budget_eur + 1e-9:
            raise PlacementError("budget_eur", [
                f"budget_eur={budget_eur:g} cannot pay p={p} posts (cheapest {p} cost "
                f"{np.sort(cost)[:p].sum():g} €); fix: raise the budget or lower p"])
    if max_posts is not None:
        labels.append(f"max_posts={max_posts}")
    # --- quotas
    glabels = None
    mins: dict[str, int] = {}
    maxs: dict[str, int] = {}
    if min_per_group is not None or max_per_group is not None:
        if groups is None:
            raise PlacementError("groups", ["min_per_group / max_per_group need groups: a Series "
                                            "of group labels (e.g. EPCI SIREN) indexed by "
                                            "candidate id, or the name of a column of the "
                                            "candidates"])
        if isinstance(groups, str):
            if groups not in inst.cand.columns:
                raise PlacementError("groups", [f"the candidates have no column {groups!r}; "
                                                f"columns: {list(inst.cand.columns)}"])
            gs = inst.cand[groups]
        else:
            gs = groups.copy()
            gs.index = gs.index.astype(str)
            gs = gs.reindex(inst.cand.index)
        glabels = np.array([None if pd.isna(g) else str(g) for g in gs], dtype=object)
        if (glabels == None).any():  # noqa: E711
            log.info("placement: %d candidate(s) without group are not subject to quotas",
                     int((glabels == None).sum()))  # noqa: E711
        known = sorted({g for g in glabels if g is not None})
        mins = _per_group(min_per_group, known, "min_per_group")
        maxs = _per_group(max_per_group, known, "max_per_group")
        for g in known:
            size = int((glabels == g).sum())
            lo, hi = mins.get(g, 0), maxs.get(g, size)
            if lo > size:
                problems.append(f"min_per_group={lo} for group {g!r} but it has only {size} "
                                "eligible candidate(s); fix: lower the minimum")
            if lo > hi:
                problems.append(f"group {g!r}: min_per_group={lo} > max_per_group={hi}")
        if p is not None and sum(mins.values()) > p:
            problems.append(f"the minima per group add up to {sum(mins.values())} posts, more "
                            f"than p={p}; fix: lower min_per_group or raise p")
        if p is not None and maxs:
            cap = sum(min(maxs.get(g, (glabels == g).sum()), (glabels == g).sum()) for g in known)
            cap += int((glabels == None).sum())  # noqa: E711
            if cap < p:
                problems.append(f"the maxima per group allow at most {cap} posts, fewer than "
                                f"p={p}; fix: raise max_per_group or lower p")
        if problems:
            raise PlacementError("quotas", problems)
        labels.append(f"quotas per group (min {mins or '-'}, max {maxs or '-'})"
                      if len(known) <= 5 else
                      f"quotas on {len(known)} groups (min_per_group={min_per_group!r}, "
                      f"max_per_group={max_per_group!r})")
    # --- separation
    pairs = np.empty((0, 2), dtype=np.int64)
    if min_separation_min is not None:
        min_sep = _check_threshold(min_separation_min, "min_separation_min")
        if separation is None:
            xy = _xy_of(inst.cand)
            if xy is None:
                raise PlacementError("min_separation_min", [
                    "a minimum separation needs travel times between candidates: pass "
                    "separation (long OD candidates × candidates), or candidates with x/y "
                    "columns or point geometry"])
            separation = access.od_crowfly(xy, xy, max_minutes=min_sep, settings=settings)
        pos = pd.Series(np.arange(nc), index=inst.cand.index)
        a = pos.reindex(separation["origin_id"].astype(str)).to_numpy()
        b = pos.reindex(separation["destination_id"].astype(str)).to_numpy()
        close = (pd.to_numeric(separation["minutes"], errors="coerce").to_numpy(float) < min_sep)
        ok = ~np.isnan(a) & ~np.isnan(b) & close
        a, b = a[ok].astype(np.int64), b[ok].astype(np.int64)
        lo_, hi_ = np.minimum(a, b), np.maximum(a, b)
        sel = lo_ < hi_
        pairs = np.unique(np.column_stack([lo_[sel], hi_[sel]]), axis=0) if sel.any() else pairs
        labels.append(f"min_separation_min={min_sep:g} ({len(pairs)} forbidden pairs)")
    else:
        min_sep = None
    return _Rules(p=p, max_posts=max_posts, budget_eur=budget_eur, cost=cost, groups=glabels,
                  min_per_group=mins, max_per_group=maxs, sep_pairs=pairs,
                  min_separation_min=min_sep, labels=labels)


def _xy_of(frame: pd.DataFrame) -> pd.DataFrame | None:
    if {"x", "y"} <= set(frame.columns):
        return frame[["x", "y"]].astype(float)
    if isinstance(frame, gpd.GeoDataFrame) and len(frame) and \
            (frame.geometry.geom_type == "Point").all():
        return pd.DataFrame({"x": frame.geometry.x, "y": frame.geometry.y}, index=frame.index)
    return None


# ----------------------------------------------------------------------------------------
# Solving
# ----------------------------------------------------------------------------------------
def _n_rows(constraints: list[LinearConstraint]) -> int:
    return int(sum(c.A.shape[0] for c in constraints))


def _run(c: np.ndarray, integrality: np.ndarray, lb: np.ndarray, ub: np.ndarray,
         constraints: list[LinearConstraint], settings: Settings):
    t0 = time.perf_counter()
    res = milp(c, integrality=integrality, bounds=Bounds(lb, ub), constraints=constraints,
               options={"time_limit": float(settings.milp_time_limit_s), "mip_rel_gap": 0.0,
                        "disp": False, "presolve": True})
    return res, time.perf_counter() - t0


def _fail(res, model: str, rules: _Rules, settings: Settings, hint: str = "") -> None:
    status = _STATUS.get(res.status, "error")
    if status == "infeasible":
        raise PlacementError(model, [f"no set of posts satisfies all the rules: "
                                     f"{'; '.join(rules.labels) or 'none'}; fix: relax the "
                                     "quotas, the separation, the eligible filter or the "
                                     f"budget{hint}"])
    if res.x is None:
        raise PlacementError(model, [f"HiGHS stopped ({status}: {res.message}) without a "
                                     "feasible solution; fix: raise settings.milp_time_limit_s "
                                     f"(now {settings.milp_time_limit_s:g} s)"])


@dataclass
class _Solved:
    chosen: np.ndarray      # bool per candidate
    objective: float        # true objective (natural sense)
    bound: float
    status: str
    time_s: float
    n_variables: int
    n_constraints: int
    raw: Any                # phase-1 OptimizeResult


def _two_phase(c: np.ndarray, integrality: np.ndarray, lb: np.ndarray, ub: np.ndarray,
               constraints: list[LinearConstraint], *, nc: int, sense: int,
               true_objective: Callable[[np.ndarray], float], rules: _Rules, model: str,
               settings: Settings, ub_phase2: np.ndarray | None = None,
               integrality_phase2: np.ndarray | None = None,
               res1=None, t1: float = 0.0, hint: str = "") -> _Solved:
    """Phase 1: optimum (minimise ``c``). Phase 2: same objective, smallest rank sum.

    ``integrality_phase2`` lets MCLP declare its coverage variables integer in the
    second solve: with continuous ones HiGHS 1.x prints a stray debug line on stdout
    when it repairs a postsolved incumbent.
    """
    if res1 is None:
        res1, t1 = _run(c, integrality, lb, ub, constraints, settings)
    _fail(res1, model, rules, settings, hint)
    status = _STATUS.get(res1.status, "error")
    chosen1 = res1.x[:nc] > 0.5
    obj1 = true_objective(chosen1)
    chosen, obj, t_total = chosen1, obj1, t1
    if nc > 0:
        ranks = np.zeros_like(c)
        ranks[:nc] = np.arange(1, nc + 1, dtype=float)
        tol = _REL_TOL * max(1.0, abs(res1.fun)) + 1e-7
        cap = LinearConstraint(sparse.csr_array(c.reshape(1, -1)), -np.inf, res1.fun + tol)
        res2, t2 = _run(ranks, integrality if integrality_phase2 is None else integrality_phase2,
                        lb, ub if ub_phase2 is None else ub_phase2, constraints + [cap], settings)
        t_total += t2
        if res2.x is not None and res2.status in (0, 1):
            chosen2 = res2.x[:nc] > 0.5
            obj2 = true_objective(chosen2)
            if sense * (obj2 - obj1) <= _REL_TOL * max(1.0, abs(obj1)):
                chosen, obj = chosen2, obj2
            else:
                log.warning("%s: tie-breaking solve reached %.6g instead of %.6g; keeping the "
                            "first solution", model, obj2, obj1)
        else:
            log.warning("%s: tie-breaking solve failed (%s); keeping the first solution",
                        model, res2.message)
    bound = res1.mip_dual_bound if getattr(res1, "mip_dual_bound", None) is not None else res1.fun
    return _Solved(chosen=chosen, objective=float(obj), bound=float(sense * bound),
                   status=status, time_s=t_total, n_variables=len(c),
                   n_constraints=_n_rows(constraints), raw=res1)


def _gap(objective: float, bound: float) -> float:
    diff = abs(bound - objective)
    if diff <= 1e-9 * max(1.0, abs(objective)):
        return 0.0
    return diff / max(abs(objective), 1e-12)


# ----------------------------------------------------------------------------------------
# Outputs
# ----------------------------------------------------------------------------------------
def _nearest_open(inst: _Instance, open_sites: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest open site per demand unit (model order): site position (-1) and minutes (inf)."""
    site = np.full(inst.nd, -1, dtype=np.int64)
    mins = np.full(inst.nd, np.inf)
    sel = open_sites[inst.sj]
    oi, sj, mm = inst.oi[sel], inst.sj[sel], inst.minutes[sel]
    if len(oi):
        first = np.r_[True, oi[1:] != oi[:-1]]   # rows sorted by (i, minutes, site id)
        site[oi[first]] = sj[first]
        mins[oi[first]] = mm[first]
    return site, mins


def _outputs(inst: _Instance, chosen: np.ndarray, *, threshold: float, model: str,
             covered_before: np.ndarray, rules: _Rules, solution: Solution,
             uncoverable: np.ndarray) -> PlacementResult:
    nc = inst.nc
    open_sites = np.zeros(nc + len(inst.exist_ids), dtype=bool)
    open_sites[:nc] = chosen
    open_sites[nc:] = True
    site, mins = _nearest_open(inst, open_sites)
    new_post = (site >= 0) & (site < nc)
    covered = covered_before | (mins <= threshold)
    if model == "pmedian":
        attributed = new_post
    else:
        attributed = new_post & (mins <= threshold) & ~covered_before
    site_ids = inst.site_ids
    assign = pd.DataFrame({
        "site_id": np.where(site >= 0, site_ids[np.maximum(site, 0)], None),
        "minutes": mins, "new_post": new_post, "covered_before": covered_before,
        "covered": covered}, index=pd.Index(inst.demand_ids, name="demand_id"))
    # posts
    pos = np.flatnonzero(chosen)
    per = pd.DataFrame({"j": site[attributed], "w": inst.w[attributed],
                        "pop": inst.info["population"].to_numpy()[attributed],
                        "need": inst.info["need"].to_numpy()[attributed]})
    sums = per.groupby("j").sum(min_count=1)
    cand = inst.cand.iloc[pos]
    posts = pd.DataFrame({
        "candidate_id": cand.index.to_numpy(dtype=object),
        "insee": cand["insee"].to_numpy(dtype=object),
        "host": cand["host"].to_numpy(dtype=object),
        "kind": "fixed",
        "covered_weight": sums["w"].reindex(pos).fillna(0.0).to_numpy(),
        "covered_population": _post_sum(sums, "pop", pos, inst.info["population"]),
        "covered_need": _post_sum(sums, "need", pos, inst.info["need"]),
    })
    if rules.groups is not None:
        posts["group"] = rules.groups[pos]
    geom = None
    if isinstance(inst.cand, gpd.GeoDataFrame) and inst.cand.geometry.name in inst.cand.columns:
        geom = cand.geometry.to_numpy()
    posts["_geom_order"] = np.arange(len(posts))
    posts = posts.sort_values(["covered_weight", "candidate_id"], ascending=[False, True],
                              kind="stable")
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
    return PlacementResult(posts=posts, covered=cov, assignment=assign, solution=solution,
                           uncoverable=unc)


def _post_sum(sums: pd.DataFrame, col: str, pos: np.ndarray, source: pd.Series) -> np.ndarray:
    if source.isna().all():
        return np.full(len(pos), np.nan)
    return sums[col].reindex(pos).fillna(0.0).to_numpy() if len(sums) else np.zeros(len(pos))


def _coverage_sets(inst: _Instance, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covered-by-existing flags and (unit, candidate) pairs within the threshold."""
    within = inst.minutes <= threshold
    by_exist = inst.pre_covered.copy()
    ex = within & (inst.sj >= inst.nc)
    by_exist[inst.oi[ex]] = True
    cp = within & (inst.sj < inst.nc)
    return by_exist, inst.oi[cp], inst.sj[cp]


def _merge_rows(units: np.ndarray, cands: np.ndarray, weight: np.ndarray
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


def _rows_matrix(keys: list[tuple[int, ...]], nvars: int, *, offset_y: int | None
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
def mclp_from_od(od: pd.DataFrame, weights: pd.Series, *, p: int | None, threshold: float,
                 candidates: Sites = None, existing: Sites = None,
                 already_covered: pd.Series | None = None,
                 eligible: pd.Series | IdList | None = None, demand: pd.DataFrame | None = None,
                 budget_eur: float | None = None, post_cost_eur: pd.Series | float | None = None,
                 groups: pd.Series | str | None = None,
                 min_per_group: int | Mapping[str, int] | None = None,
                 max_per_group: int | Mapping[str, int] | None = None,
                 separation: pd.DataFrame | None = None, min_separation_min: float | None = None,
                 settings: Settings = DEFAULT) -> PlacementResult:
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
    existing : list of ids, DataFrame or None
        Already-open sites (ids in ``od.destination_id``; a DataFrame's ids come from
        ``place_id`` or its index). Units they cover within ``threshold`` count for
        nothing; an existing site is never a candidate.
    already_covered : Series of bool, optional
        Demand units already covered by the existing offer (alternative or complement
        to ``existing``).
    eligible : Series of bool or list of ids, optional
        Eligible-host filter on the candidates.
    demand : DataFrame, optional
        Indexed like ``weights``; its ``population`` / ``need`` columns fill the posts'
        ``covered_population`` / ``covered_need``. Without it, the column named like
        ``weights`` (``weights.name``) is filled from the weights, the other is NaN.
    budget_eur, post_cost_eur : float, optional
        Budget in euros and cost per post (default ``settings.cost_per_post_eur``; a
        Series gives one cost per candidate id).
    groups : Series or str, optional
        Group label per candidate id (e.g. EPCI), or a column of ``candidates``.
    min_per_group, max_per_group : int or mapping, optional
        Quotas of new posts per group (one number for every group, or per label).
    separation : DataFrame, optional
        Long OD between candidates for ``min_separation_min`` (computed by crow-fly
        from the candidates' x/y or geometry when omitted).
    min_separation_min : float, optional
        Two new posts must be at least this many minutes apart.
    settings : Settings
        ``milp_time_limit_s``, ``cost_per_post_eur``, travel model for separation.

    Returns
    -------
    PlacementResult
        ``solution.objective`` = weight newly covered; ``solution.details`` holds
        ``weight_total``, ``weight_covered_before``, ``weight_covered_after``,
        ``weight_uncoverable``, ``units_merged_rows``.

    Raises
    ------
    PlacementError
        Bad weights, threshold, p, candidates, rules; infeasible rules.
    """
    threshold = _check_threshold(threshold)
    inst = _prepare(od, weights, candidates=candidates, existing=existing, eligible=eligible,
                    demand=demand, already_covered=already_covered)
    rules = _make_rules(inst, model="mclp", p=p, max_posts=None, budget_eur=budget_eur,
                        post_cost_eur=post_cost_eur, groups=groups, min_per_group=min_per_group,
                        max_per_group=max_per_group, separation=separation,
                        min_separation_min=min_separation_min, settings=settings)
    nc = inst.nc
    by_exist, cu, cj = _coverage_sets(inst, threshold)
    live = ~by_exist[cu] & (inst.w[cu] > 0)
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
    constraints += rules.constraints(nvars)
    cover_u, cover_j = cu[~by_exist[cu]], cj[~by_exist[cu]]

    def newly(chosen: np.ndarray) -> float:
        hit = np.zeros(inst.nd, dtype=bool)
        hit[cover_u[chosen[cover_j]]] = True
        return float(inst.w[hit].sum())

    s = _two_phase(c, integrality, lb, ub, constraints, nc=nc, sense=-1, true_objective=newly,
                   rules=rules, model="mclp", settings=settings,
                   integrality_phase2=np.ones(nvars))
    total = float(inst.w.sum())
    before = float(inst.w[by_exist].sum())
    details = {"weight_total": total, "weight_covered_before": before,
               "weight_covered_after": before + s.objective,
               "weight_uncoverable": float(inst.w[uncoverable].sum()),
               "units": inst.nd, "units_covered_before": int(by_exist.sum()),
               "units_uncoverable": int(uncoverable.sum()), "model_rows_merged": m,
               "candidates": nc, "existing_sites": len(inst.exist_ids),
               "threshold_min": threshold, "rules": list(rules.labels)}
    sol = Solution("mclp", s.objective, s.bound, _gap(s.objective, s.bound), SOLVER, s.status,
                   round(s.time_s, 4), s.n_variables, s.n_constraints, TIE_BREAK, details)
    log.info("mclp: %d posts among %d candidates, %.0f newly covered (%.1f %% → %.1f %% of "
             "weight at %g min), %s, %.2f s", int(s.chosen.sum()), nc, s.objective,
             100 * before / max(total, 1e-12), 100 * (before + s.objective) / max(total, 1e-12),
             threshold, s.status, s.time_s)
    return _outputs(inst, s.chosen, threshold=threshold, model="mclp", covered_before=by_exist,
                    rules=rules, solution=sol, uncoverable=uncoverable)


# ----------------------------------------------------------------------------------------
# LSCP
# ----------------------------------------------------------------------------------------
def lscp_from_od(od: pd.DataFrame, weights: pd.Series, *, threshold: float,
                 candidates: Sites = None, existing: Sites = None,
                 already_covered: pd.Series | None = None,
                 eligible: pd.Series | IdList | None = None, demand: pd.DataFrame | None = None,
                 max_posts: int | None = None, budget_eur: float | None = None,
                 post_cost_eur: pd.Series | float | None = None,
                 groups: pd.Series | str | None = None,
                 min_per_group: int | Mapping[str, int] | None = None,
                 max_per_group: int | Mapping[str, int] | None = None,
                 separation: pd.DataFrame | None = None, min_separation_min: float | None = None,
                 settings: Settings = DEFAULT) -> PlacementResult:
    """Location set covering: the fewest new posts covering every unit within ``threshold``.

    Every demand unit with a positive weight that is not already covered must get a
    new post within ``threshold``. Units that no eligible candidate can reach are
    reported in ``result.uncoverable`` (and ``solution.details``) and left out of
    the constraints; they stay uncovered.

    Parameters
    ----------
    od, weights, threshold, candidates, existing, already_covered, eligible, demand
        As in :func:`mclp_from_od`.
    max_posts : int, optional
        At most this many new posts (PlacementError if that is not enough).
    budget_eur, post_cost_eur, groups, min_per_group, max_per_group, separation,
    min_separation_min, settings
        As in :func:`mclp_from_od`.

    Returns
    -------
    PlacementResult
        ``solution.objective`` = number of new posts.
    """
    threshold = _check_threshold(threshold)
    inst = _prepare(od, weights, candidates=candidates, existing=existing, eligible=eligible,
                    demand=demand, already_covered=already_covered)
    rules = _make_rules(inst, model="lscp", p=None, max_posts=max_posts, budget_eur=budget_eur,
                        post_cost_eur=post_cost_eur, groups=groups, min_per_group=min_per_group,
                        max_per_group=max_per_group, separation=separation,
                        min_separation_min=min_separation_min, settings=settings)
    nc = inst.nc
    by_exist, cu, cj = _coverage_sets(inst, threshold)
    live = ~by_exist[cu] & (inst.w[cu] > 0)
    keys, _ = _merge_rows(cu[live], cj[live], inst.w)
    reach = np.zeros(inst.nd, dtype=bool)
    reach[cu] = True
    uncoverable = ~by_exist & ~reach & (inst.w > 0)
    if uncoverable.any():
        log.warning("lscp: %d demand unit(s) cannot be covered within %g min by any eligible "
                    "site: %s", int(uncoverable.sum()), threshold,
                    _sample(inst.demand_ids[uncoverable]))
    needed = len(keys) > 0 or rules.min_per_group
    if needed and nc == 0:
        raise PlacementError("candidates", ["no eligible candidate site; fix: pass candidates "
                                            "(town halls, places) and check the eligible filter"])
    constraints = []
    if keys:
        constraints.append(LinearConstraint(_rows_matrix(keys, nc, offset_y=None), -np.inf, -1))
    constraints += rules.constraints(nc)
    if not constraints and nc:   # nothing to cover and no rule: one trivial row for HiGHS
        constraints.append(LinearConstraint(sparse.csr_array(np.ones((1, nc))), 0, np.inf))
    c = np.ones(nc)

    def count(chosen: np.ndarray) -> float:
        return float(chosen.sum())

    if nc == 0:
        s = _Solved(np.zeros(0, bool), 0.0, 0.0, "optimal", 0.0, 0, 0, None)
    else:
        s = _two_phase(c, np.ones(nc), np.zeros(nc), np.ones(nc), constraints, nc=nc, sense=1,
                       true_objective=count, rules=rules, model="lscp", settings=settings,
                       hint=" (every coverable unit must be covered; mclp_from_od covers as "
                            "much as the rules allow)")
        s.bound = float(np.ceil(s.bound - 1e-6))
    total = float(inst.w.sum())
    details = {"weight_total": total, "weight_covered_before": float(inst.w[by_exist].sum()),
               "weight_uncoverable": float(inst.w[uncoverable].sum()),
               "units": inst.nd, "units_covered_before": int(by_exist.sum()),
               "units_uncoverable": int(uncoverable.sum()), "model_rows_merged": len(keys),
               "candidates": nc, "existing_sites": len(inst.exist_ids),
               "cost_eur": float(rules.cost[s.chosen].sum()) if nc else 0.0,
               "threshold_min": threshold, "rules": list(rules.labels)}
    sol = Solution("lscp", s.objective, s.bound, _gap(s.objective, s.bound), SOLVER, s.status,
                   round(s.time_s, 4), s.n_variables, s.n_constraints, TIE_BREAK, details)
    log.info("lscp: %d new posts cover every coverable unit at %g min (%d uncoverable), %s, "
             "%.2f s", int(s.objective), threshold, int(uncoverable.sum()), s.status, s.time_s)
    return _outputs(inst, s.chosen, threshold=threshold, model="lscp", covered_before=by_exist,
                    rules=rules, solution=sol, uncoverable=uncoverable)


# ----------------------------------------------------------------------------------------
# p-median
# ----------------------------------------------------------------------------------------
def pmedian_from_od(od: pd.DataFrame, weights: pd.Series, *, p: int | None,
                    candidates: Sites = None, existing: Sites = None,
                    eligible: pd.Series | IdList | None = None,
                    demand: pd.DataFrame | None = None, k: int = 10,
                    threshold: float | None = None, budget_eur: float | None = None,
                    post_cost_eur: pd.Series | float | None = None,
                    groups: pd.Series | str | None = None,
                    min_per_group: int | Mapping[str, int] | None = None,
                    max_per_group: int | Mapping[str, int] | None = None,
                    separation: pd.DataFrame | None = None,
                    min_separation_min: float | None = None,
                    settings: Settings = DEFAULT) -> PlacementResult:
    """p-median: ``p`` new posts minimising weight × minutes to the nearest open site.

    Every demand unit with a positive weight is assigned to its nearest open site
    (existing sites are open). The model is sparse: a unit may only use sites no
    farther than its nearest existing site, and at first only its ``k`` nearest;
    ``k`` grows for the units that need more (see the module notes), so the result
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
    candidates, existing, eligible, demand, budget_eur, post_cost_eur, groups,
    min_per_group, max_per_group, separation, min_separation_min, settings
        As in :func:`mclp_from_od`.

    Returns
    -------
    PlacementResult
        ``solution.objective`` = Σ weight × minutes to the nearest open site;
        ``solution.details`` holds ``rounds`` and ``mean_minutes`` (weighted).
    """
    threshold = _check_threshold(settings.threshold_minutes if threshold is None else threshold)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise PlacementError("k", [f"k={k!r}: must be a whole number >= 1 (initial nearest "
                                   "sites per unit)"])
    inst = _prepare(od, weights, candidates=candidates, existing=existing, eligible=eligible,
                    demand=demand, already_covered=None)
    rules = _make_rules(inst, model="pmedian", p=p, max_posts=None, budget_eur=budget_eur,
                        post_cost_eur=post_cost_eur, groups=groups, min_per_group=min_per_group,
                        max_per_group=max_per_group, separation=separation,
                        min_separation_min=min_separation_min, settings=settings)
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
        if ex.size and ex[0] == 0:          # nearest site is existing: fixed cost
            const += inst.w[i] * mm[a]
            continue
        lists[i] = (sj[a:end], mm[a:end])
    listed = np.zeros(inst.nd, dtype=bool)
    listed[np.unique(oi)] = True
    lost = (inst.w > 0) & ~listed
    if lost.any():
        raise PlacementError("od", [f"{int(lost.sum())} demand unit(s) with positive weight have "
                                    f"no site at all in the OD table: "
                                    f"{_sample(inst.demand_ids[lost])}; fix: build the OD table "
                                    "with a larger max_minutes, or give them weight 0"])
    units = np.array(sorted(lists), dtype=np.int64)
    kk = {int(i): int(k) for i in units}

    def cost_of(chosen: np.ndarray) -> float:
        open_sites = np.r_[chosen, np.ones(len(inst.exist_ids), dtype=bool)]
        _, mins = _nearest_open(inst, open_sites)
        pos = inst.w > 0
        return float((inst.w[pos] * mins[pos]).sum())

    rounds, t_total = 0, 0.0
    while True:
        rounds += 1
        zi, zj, zc, gi, gc = [], [], [], [], []
        for r, i in enumerate(units):
            js, ms = lists[int(i)]
            n = min(kk[int(i)], len(js))
            zi.extend([r] * n)
            zj.extend(js[:n].tolist())
            zc.extend((inst.w[i] * ms[:n]).tolist())
            if n < len(js):
                gi.append(r)
                gc.append(inst.w[i] * ms[n])
        zi, zj = np.asarray(zi, np.int64), np.asarray(zj, np.int64)
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
            (np.r_[np.ones(nl), -np.ones(nl)],
             (np.r_[np.arange(nl), np.arange(nl)], np.r_[nc + cand_pair, zj[cand_pair]])),
            shape=(nl, nvars))
        constraints = [LinearConstraint(a_assign, 1, 1), LinearConstraint(a_link, -np.inf, 0)]
        constraints += rules.constraints(nvars)
        res, t1 = _run(c, integrality, lb, ub, constraints, settings)
        _fail(res, "pmedian", rules, settings,
              hint=", or build the OD table with a larger cutoff (max_minutes) so that every "
                   "unit can reach an open site")
        t_total += t1
        used = np.flatnonzero(res.x[nc + nz:] > 1e-6) if ng else np.array([], int)
        if len(used) == 0 or res.status != 0:
            break
        gi_arr = np.asarray(gi, np.int64)
        for r in gi_arr[used]:
            kk[int(units[r])] *= 2
        log.debug("pmedian round %d: %d unit(s) need more than their k nearest sites",
                  rounds, len(used))
    ub2 = ub.copy()
    ub2[nc + nz:] = 0.0                      # phase 2: no placeholder
    s = _two_phase(c, integrality, lb, ub, constraints, nc=nc, sense=1, true_objective=cost_of,
                   rules=rules, model="pmedian", settings=settings, ub_phase2=ub2,
                   res1=res, t1=0.0)
    s.time_s += t_total
    s.bound = float(s.bound + const)
    total_w = float(inst.w.sum())
    details = {"weight_total": total_w, "mean_minutes": s.objective / max(total_w, 1e-12),
               "rounds": rounds, "initial_k": int(k), "max_k": max(kk.values(), default=int(k)),
               "units_in_model": len(units), "units_fixed_to_existing": int(
                   ((inst.w > 0).sum()) - len(units)),
               "candidates": nc, "existing_sites": len(inst.exist_ids),
               "rules": list(rules.labels)}
    sol = Solution("pmedian", s.objective, s.bound, _gap(s.objective, s.bound), SOLVER, s.status,
                   round(s.time_s, 4), s.n_variables, s.n_constraints, TIE_BREAK, details)
    log.info("pmedian: %d posts among %d candidates, mean %.2f min per weight unit, %d "
             "round(s), %s, %.2f s", int(s.chosen.sum()), nc, details["mean_minutes"], rounds,
             s.status, s.time_s)
    open_sites = np.r_[np.zeros(nc, bool), np.ones(len(inst.exist_ids), bool)]
    _, mins_before = _nearest_open(inst, open_sites)
    return _outputs(inst, s.chosen, threshold=threshold, model="pmedian",
                    covered_before=mins_before <= threshold, rules=rules, solution=sol,
                    uncoverable=np.zeros(inst.nd, dtype=bool))


# ----------------------------------------------------------------------------------------
# GeoDataFrame entry points
# ----------------------------------------------------------------------------------------
def _gdf_inputs(demand_gdf: gpd.GeoDataFrame, candidates_gdf: gpd.GeoDataFrame, *,
                weight_col: str, existing: gpd.GeoDataFrame | IdList | None, max_minutes: float,
                settings: Settings):
    for name, g in (("demand_gdf", demand_gdf), ("candidates_gdf", candidates_gdf)):
        if not isinstance(g, gpd.GeoDataFrame):
            raise PlacementError(name, [f"expected a GeoDataFrame, got {type(g).__name__}"])
    if weight_col not in demand_gdf.columns:
        raise PlacementError("weight_col", [f"demand_gdf has no column {weight_col!r}; columns: "
                                            f"{list(demand_gdf.columns)}; fix: pass "
                                            "weight_col='population' or add the need columns "
                                            "(cnfs_geo.need)"])
    frames = [("demand_gdf", demand_gdf), ("candidates_gdf", candidates_gdf)]
    if isinstance(existing, gpd.GeoDataFrame):
        frames.append(("existing", existing))
    crs0 = demand_gdf.crs
    for name, g in frames:
        if g.crs is None or not g.crs.is_projected:
            raise PlacementError(name, [f"CRS {g.crs} is not a projected CRS in metres; fix: "
                                        f"{name}.to_crs(cnfs_geo.settings.working_crs(dep))"])
        if g.crs != crs0:
            raise PlacementError(name, [f"CRS mismatch: demand_gdf is {crs0.to_string()}, "
                                        f"{name} is {g.crs.to_string()}; fix: "
                                        f"{name}.to_crs(demand_gdf.crs)"])
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
    cand = _normalise_sites(candidates_gdf, "candidates_gdf", ("candidate_id",))
    cand = gpd.GeoDataFrame(cand, geometry=candidates_gdf.geometry.name, crs=candidates_gdf.crs)
    cxy = _xy_of(cand)
    if cxy is None:
        raise PlacementError("candidates_gdf", ["candidate sites need x/y columns or point "
                                                "geometry; fix: e.g. points_from_xy("
                                                "communes.chef_lieu_x, communes.chef_lieu_y)"])
    sites = [cxy]
    exist_ids: list[str] | None = None
    if isinstance(existing, gpd.GeoDataFrame):
        ex = _normalise_sites(existing, "existing", ("place_id", "candidate_id"))
        ex = gpd.GeoDataFrame(ex, geometry=existing.geometry.name, crs=existing.crs)
        exy = _xy_of(ex)
        if exy is None:
            raise PlacementError("existing", ["existing sites need x/y columns or point geometry"])
        clash = exy.index.intersection(cxy.index)
        if len(clash):
            far = np.hypot(*(exy.loc[clash].to_numpy() - cxy.loc[clash].to_numpy()).T) > 1.0
            if far.any():
                raise PlacementError("existing", [f"id(s) {_sample(clash[far])} name both an "
                                                  "existing site and a different candidate site; "
                                                  "fix: give them distinct ids"])
        sites.append(exy.drop(index=clash))
        exist_ids = list(ex.index)
    elif existing is not None:
        exist_ids = [str(e) for e in ([existing] if isinstance(existing, str) else existing)]
        unknown = pd.Index(exist_ids).difference(cxy.index)
        if len(unknown):
            raise PlacementError("existing", [f"id(s) {_sample(unknown)} are not rows of "
                                              "candidates_gdf; fix: pass existing sites as a "
                                              "GeoDataFrame, or ids of candidates_gdf"])
    site_xy = pd.concat(sites)
    od = access.od_crowfly(dxy, site_xy, max_minutes=max_minutes, settings=settings)
    info = demand_gdf[[c for c in ("population", "need") if c in demand_gdf.columns]].copy()
    info.index = info.index.astype(str)
    return od, weights, info, cand, exist_ids


def _gdf_candidates_groups(cand: pd.DataFrame, group_col: str | None) -> str | None:
    if group_col is not None and group_col not in cand.columns:
        raise PlacementError("group_col", [f"candidates_gdf has no column {group_col!r}; "
                                           f"columns: {list(cand.columns)}"])
    return group_col


def mclp_from_geodataframes(demand_gdf: gpd.GeoDataFrame, candidates_gdf: gpd.GeoDataFrame, *,
                            weight_col: str = "need", p: int | None = None,
                            threshold: float | None = None,
                            existing: gpd.GeoDataFrame | IdList | None = None,
                            eligible: pd.Series | IdList | None = None,
                            budget_eur: float | None = None,
                            post_cost_eur: pd.Series | float | None = None,
                            group_col: str | None = None,
                            min_per_group: int | Mapping[str, int] | None = None,
                            max_per_group: int | Mapping[str, int] | None = None,
                            min_separation_min: float | None = None,
                            settings: Settings = DEFAULT) -> PlacementResult:
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
    existing : GeoDataFrame or list of ids, optional
        Already-open sites: a GeoDataFrame of points (ids from ``place_id`` or its
        index), or ids of rows of ``candidates_gdf``.
    group_col : str, optional
        Column of ``candidates_gdf`` used for the quotas.
    eligible, budget_eur, post_cost_eur, min_per_group, max_per_group, min_separation_min,
    settings
        As in :func:`mclp_from_od` (separation computed by crow-fly between candidates).

    Returns
    -------
    PlacementResult
        ``posts`` is a GeoDataFrame in the CRS of ``candidates_gdf``.
    """
    threshold = _check_threshold(settings.threshold_minutes if threshold is None else threshold)
    if p is None and budget_eur is None:
        p = settings.posts
    od, weights, info, cand, exist_ids = _gdf_inputs(
        demand_gdf, candidates_gdf, weight_col=weight_col, existing=existing,
        max_minutes=threshold, settings=settings)
    return mclp_from_od(od, weights, p=p, threshold=threshold, candidates=cand,
                        existing=exist_ids, eligible=eligible, demand=info,
                        budget_eur=budget_eur, post_cost_eur=post_cost_eur,
                        groups=_gdf_candidates_groups(cand, group_col),
                        min_per_group=min_per_group, max_per_group=max_per_group,
                        min_separation_min=min_separation_min, settings=settings)


def lscp_from_geodataframes(demand_gdf: gpd.GeoDataFrame, candidates_gdf: gpd.GeoDataFrame, *,
                            weight_col: str = "need", threshold: float | None = None,
                            existing: gpd.GeoDataFrame | IdList | None = None,
                            eligible: pd.Series | IdList | None = None,
                            max_posts: int | None = None, budget_eur: float | None = None,
                            post_cost_eur: pd.Series | float | None = None,
                            group_col: str | None = None,
                            min_per_group: int | Mapping[str, int] | None = None,
                            max_per_group: int | Mapping[str, int] | None = None,
                            min_separation_min: float | None = None,
                            settings: Settings = DEFAULT) -> PlacementResult:
    """LSCP from GeoDataFrames (crow-fly OD), delegating to :func:`lscp_from_od`.

    Parameters are those of :func:`mclp_from_geodataframes` and :func:`lscp_from_od`.
    """
    threshold = _check_threshold(settings.threshold_minutes if threshold is None else threshold)
    od, weights, info, cand, exist_ids = _gdf_inputs(
        demand_gdf, candidates_gdf, weight_col=weight_col, existing=existing,
        max_minutes=threshold, settings=settings)
    return lscp_from_od(od, weights, threshold=threshold, candidates=cand, existing=exist_ids,
                        eligible=eligible, demand=info, max_posts=max_posts,
                        budget_eur=budget_eur, post_cost_eur=post_cost_eur,
                        groups=_gdf_candidates_groups(cand, group_col),
                        min_per_group=min_per_group, max_per_group=max_per_group,
                        min_separation_min=min_separation_min, settings=settings)


def pmedian_from_geodataframes(demand_gdf: gpd.GeoDataFrame, candidates_gdf: gpd.GeoDataFrame, *,
                               weight_col: str = "need", p: int | None = None,
                               existing: gpd.GeoDataFrame | IdList | None = None,
                               eligible: pd.Series | IdList | None = None, k: int = 10,
                               max_minutes: float = 90.0, threshold: float | None = None,
                               budget_eur: float | None = None,
                               post_cost_eur: pd.Series | float | None = None,
                               group_col: str | None = None,
                               min_per_group: int | Mapping[str, int] | None = None,
                               max_per_group: int | Mapping[str, int] | None = None,
                               min_separation_min: float | None = None,
                               settings: Settings = DEFAULT) -> PlacementResult:
    """p-median from GeoDataFrames (crow-fly OD cut at ``max_minutes``), see
    :func:`pmedian_from_od`.

    ``max_minutes`` (default 90) is the cutoff of the OD table: the optimum is
    exact over the pairs within it; a unit with no site within it raises
    PlacementError. Other parameters as in :func:`mclp_from_geodataframes`.
    """
    if p is None and budget_eur is None:
        p = settings.posts
    max_minutes = _check_threshold(max_minutes, "max_minutes")
    od, weights, info, cand, exist_ids = _gdf_inputs(
        demand_gdf, candidates_gdf, weight_col=weight_col, existing=existing,
        max_minutes=max_minutes, settings=settings)
    return pmedian_from_od(od, weights, p=p, candidates=cand, existing=exist_ids,
                           eligible=eligible, demand=info, k=k, threshold=threshold,
                           budget_eur=budget_eur, post_cost_eur=post_cost_eur,
                           groups=_gdf_candidates_groups(cand, group_col),
                           min_per_group=min_per_group, max_per_group=max_per_group,
                           min_separation_min=min_separation_min, settings=settings)
