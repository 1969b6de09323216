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

National scale
--------------
:func:`mclp_scalable_from_od` solves the MCLP for instances too large for the exact
MILP (all of metropolitan France: ~35 000 demand units and candidates): exact
reductions, greedy + swap local search, large-neighbourhood moves re-solved by HiGHS,
and a proven Lagrangian bound (block-coordinate descent on regional LPs), so every
result carries ``bound`` and ``gap = (bound − objective) / bound``.
``mclp_from_od(method="auto")`` (default) switches to it above 2 000 candidates or
demand units; :func:`demand_units_cog2018` gives the national demand units.

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
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Union

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from . import access
from ._errors import PlacementError
from ._validate import require_od
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
    require_od(od, error=PlacementError)
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
                 method: str = "auto", time_limit_s: float | None = None,
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
    threshold = _check_threshold(threshold)
    if method not in ("auto", "exact", "scalable"):
        raise PlacementError("method", [f"method={method!r}: must be 'auto', 'exact' or "
                                        "'scalable'"])
    if time_limit_s is not None:
        _check_scalable_args(time_limit_s, 0.0, 0, 2, None)
    inst = _prepare(od, weights, candidates=candidates, existing=existing, eligible=eligible,
                    demand=demand, already_covered=already_covered)
    rules = _make_rules(inst, model="mclp", p=p, max_posts=None, budget_eur=budget_eur,
                        post_cost_eur=post_cost_eur, groups=groups, min_per_group=min_per_group,
                        max_per_group=max_per_group, separation=separation,
                        min_separation_min=min_separation_min, settings=settings)
    only_p = (budget_eur is None and rules.p is not None and not rules.min_per_group
              and not rules.max_per_group and rules.min_separation_min is None)
    if method == "scalable" and not only_p:
        raise PlacementError("method", ["method='scalable' supports p, existing, eligible and "
                                        "already_covered only; budget_eur, quotas and "
                                        "min_separation_min need method='exact' (or 'auto')"])
    nc = inst.nc
    by_exist, cu, cj = _coverage_sets(inst, threshold)
    live = ~by_exist[cu] & (inst.w[cu] > 0)
    if method == "auto" and only_p:
        n_rows = len(np.unique(cu[live]))           # before merging: a cheap upper bound
        if nc > _AUTO_EXACT_MAX or n_rows > _AUTO_EXACT_MAX:
            method = "scalable"
    if method == "scalable":
        return _mclp_scalable(inst, rules, threshold, t_start=t_start,
                              time_limit_s=60.0 if time_limit_s is None else time_limit_s,
                              target_gap=0.0, seed=0, threads=2, window_work=None)
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
                            method: str = "auto", time_limit_s: float | None = None,
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
    method, time_limit_s, settings
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
                        min_separation_min=min_separation_min, method=method,
                        time_limit_s=time_limit_s, settings=settings)


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


# ----------------------------------------------------------------------------------------
# Scalable MCLP (national scale): greedy + swap + LNS, proven Lagrangian bound
# ----------------------------------------------------------------------------------------
SCALABLE_SOLVER = "greedy+swap+LNS / Lagrangian bound"
SCALABLE_TIE_BREAK = ("deterministic: greedy and swaps break ties by candidate rank (ids "
                      "sorted); LNS windows are solved by HiGHS in a fixed order; identical "
                      "when the search ends before time_limit_s")
_AUTO_EXACT_MAX = 2_000          # method="auto": exact up to this many candidates and rows
# LNS window size: open posts × candidates in a window (the window MILP's effort). Measured
# on metropolitan France (p=4000/10 min and p=1000/20 min, 30 s of LNS from the same start):
# 1000 → +0.39/+0.41 pt, 1600 → +0.41/+0.48 pt, 2500 → +0.34/+0.33 pt, 4000 → +0.22/+0.23 pt.
_LNS_WORK = 1_600
_LNS_MAX_CANDIDATES = 400


@dataclass
class _Reduced:
    """MCLP instance after exact reductions (see :func:`_reduce_mclp`)."""

    a: sparse.csr_array         # merged demand rows × kept candidates (0/1)
    at: sparse.csr_array        # its transpose (kept candidates × rows)
    w: np.ndarray               # weight of each merged row
    cand: np.ndarray            # kept candidate positions (inst.cand order)
    n_dominated: int            # candidates dropped as dominated
    n_useless: int              # candidates covering no live unit


def _csr_bool(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sparse.csr_array:
    a = sparse.csr_array((np.ones(len(rows)), (rows, cols)), shape=shape)
    a.sum_duplicates()
    a.data[:] = 1.0
    a.sort_indices()
    return a


def _merge_identical_rows(a: sparse.csr_array, w: np.ndarray
                          ) -> tuple[sparse.csr_array, np.ndarray]:
    """Merge rows with the same column set (weights summed), in first-occurrence order."""
    ind, ptr = a.indices, a.indptr
    keys: dict[bytes, int] = {}
    grp = np.empty(a.shape[0], dtype=np.int64)
    for r in range(a.shape[0]):
        grp[r] = keys.setdefault(ind[ptr[r]:ptr[r + 1]].tobytes(), len(keys))
    g = sparse.csr_array((np.ones(len(grp)), (grp, np.arange(len(grp)))),
                         shape=(len(keys), len(grp)))
    merged = sparse.csr_array(g @ a)
    merged.data[:] = 1.0
    merged.sort_indices()
    return merged, g @ w


def _dominated_columns(at: sparse.csr_array) -> np.ndarray:
    """Candidates whose coverage set is inside another one's (equal sets: keep the first)."""
    deg = np.diff(at.indptr)
    if np.square(deg.astype(float)).sum() > 5e8:     # guard: skip on pathological density
        return deg == 0
    c = sparse.coo_array(at @ at.T)
    sub = (c.data >= deg[c.row] - 0.5) & (c.row != c.col)       # N(row) ⊆ N(col)
    eq = sub & (deg[c.col] == deg[c.row])
    dom = deg == 0
    dom[c.row[sub & ~eq]] = True
    dom[c.row[eq & (c.col < c.row)]] = True
    return dom


def _reduce_mclp(inst: _Instance, by_exist: np.ndarray, cu: np.ndarray, cj: np.ndarray
                 ) -> _Reduced:
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
    return _Reduced(a=a, at=at, w=np.asarray(w, dtype=float), cand=keep,
                    n_dominated=int((dom & (deg > 0)).sum()), n_useless=int((deg == 0).sum()))


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
        us = at.indices[at.indptr[j]:at.indptr[j + 1]]
        new = us[~covered[us]]
        if len(new):
            covered[new] = True
            sub = a[new]
            np.subtract.at(gain, sub.indices, np.repeat(w[new], np.diff(sub.indptr)))
    short = min(p, n) - int(x.sum())
    if short > 0:                      # nothing left to gain: lowest-ranked candidates
        x[np.flatnonzero(~x)[:short]] = True
    return x


def _swap_search(a: sparse.csr_array, at: sparse.csr_array, w: np.ndarray, x: np.ndarray,
                 deadline: float, stop: Any = None, max_rounds: int = 10_000) -> tuple[np.ndarray, int]:
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
    while rounds < max_rounds and time.perf_counter() < deadline and \
            not (stop is not None and stop.is_set()):
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
            uk = at.indices[at.indptr[k]:at.indptr[k + 1]]
            uj = at.indices[at.indptr[j]:at.indptr[j + 1]]
            if used_u[uk].any() or used_u[uj].any():
                continue
            used_u[uk] = True
            used_u[uj] = True
            used_c[k] = used_c[j] = True
            x[k], x[j] = True, False
    return x, rounds


def _window(a: sparse.csr_array, at: sparse.csr_array, x: np.ndarray, u: int, *,
            work: int, max_candidates: int) -> np.ndarray:
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
            cands = cands[:over[0] + 1]
        seen_c[cands] = True
        found.append(cands)
        total += len(cands)
        n_open += int(x[cands].sum())
        rows = np.unique(at[cands].indices)
        rows = rows[~seen_r[rows]]
        seen_r[rows] = True
    return np.sort(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)


def _solve_window(a: sparse.csr_array, at: sparse.csr_array, w: np.ndarray, x: np.ndarray,
                  cnt: np.ndarray, cands: np.ndarray, time_limit: float
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
    free = rows[(cnt[rows] - inside) <= 0]         # rows no post outside the window covers
    if len(free) == 0:
        return 0.0, None
    m_full = sparse.csr_array(sub[:, free].T)      # free rows × window candidates
    wf = w[free]
    current = float(wf[(m_full @ open_c.astype(float)) > 0].sum())
    m2, w2 = _merge_identical_rows(m_full, wf)
    keep = np.flatnonzero(~_dominated_columns(sparse.csr_array(m2.T)))
    nk, nr = len(keep), m2.shape[0]
    new = np.zeros(len(cands), dtype=bool)
    if nk <= k:
        new[keep] = True
        new[np.flatnonzero(~new)[:k - nk]] = True
    else:
        m3 = sparse.csr_array(m2[:, keep])
        c = np.r_[np.zeros(nk), -w2]
        cons = [LinearConstraint(sparse.hstack([-m3, sparse.identity(nr)]).tocsr(), -np.inf, 0),
                LinearConstraint(np.r_[np.ones(nk), np.zeros(nr)].reshape(1, -1), k, k)]
        res = milp(c, integrality=np.r_[np.ones(nk), np.zeros(nr)], bounds=Bounds(0, 1),
                   constraints=cons, options={"time_limit": max(time_limit, 0.05),
                                              "mip_rel_gap": 0.0, "disp": False})
        if res.x is None:
            return 0.0, None
        new[keep[res.x[:nk] > 0.5]] = True
    value = float(wf[(m_full @ new.astype(float)) > 0].sum())
    if value > current + 1e-9 * max(1.0, float(wf.sum())):
        return value - current, new
    return 0.0, None


def _lns(a: sparse.csr_array, at: sparse.csr_array, w: np.ndarray, x: np.ndarray, *,
         work: int, max_candidates: int, deadline: float, stop: Any, on_improve: Callable[[float], None],
         window_time_s: float = 2.0) -> tuple[np.ndarray, dict[str, int]]:
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
        gain, new = _solve_window(a, at, w, x, cnt, cands,
                                  min(window_time_s, deadline - time.perf_counter()))
        stats["windows"] += 1
        if new is None:
            continue
        changed = cands[x[cands] != new]
        for j in changed:
            us = at.indices[at.indptr[j]:at.indptr[j + 1]]
            cnt[us] += 1.0 if new[np.searchsorted(cands, j)] else -1.0
        x[cands] = new
        tried[np.unique(at[changed].indices)] = False
        tried[u] = cnt[u] == 0
        stats["improvements"] += 1
        value += gain
        on_improve(value)
    return x, stats


def _lagrangian_value(at: sparse.csr_array, w: np.ndarray, lam: np.ndarray, p: int) -> float:
    """L(λ) = Σ_i max(0, w_i − λ_i) + (sum of the p largest Σ_i a_ij λ_i): for any λ ≥ 0 an
    upper bound of the MCLP (relaxing y_i ≤ Σ_j a_ij x_j with multipliers λ_i)."""
    s = at @ lam
    top = np.partition(s, len(s) - p)[len(s) - p:].sum() if 0 < p < len(s) else \
        (s.sum() if p >= len(s) else 0.0)
    return float(np.maximum(w - lam, 0.0).sum() + top)


def _dual_ascent(a: sparse.csr_array, at: sparse.csr_array, w: np.ndarray, mu: float,
                 iters: int = 30) -> np.ndarray:
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


def _row_blocks(a: sparse.csr_array, at: sparse.csr_array, order: np.ndarray,
                target_nnz: int) -> np.ndarray:
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


def _bcd_bound(a: sparse.csr_array, at: sparse.csr_array, w: np.ndarray, p: int, mu0: float, *,
               deadline: float, stop: Any, on_bound: Callable[[float], None], seed: int,
               target_nnz: int = 40_000, max_sweeps: int = 200, rel_tol: float = 2e-6
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
    best = _lagrangian_value(at, w, lam, p)
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
        home = sparse.csr_array((np.ones(len(at.indices)),
                                 (np.repeat(np.arange(n), np.diff(at.indptr)),
                                  label[at.indices])), shape=(n, nb))
        home = np.asarray(home.argmax(axis=1)).ravel()
        xs = np.zeros(n)
        s = at @ lam
        members = np.argsort(label, kind="stable")
        cuts = np.searchsorted(label[members], np.arange(nb + 1))
        for b in range(nb):
            if time.perf_counter() >= deadline or stop.is_set():
                break
            rows = members[cuts[b]:cuts[b + 1]]
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
        value = _lagrangian_value(at, w, lam, p)
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
    return best, {"sweeps": sweeps, "blocks": first_rows or 0, "mu": mu, "ended": ended,
                  "history": [float(h) for h in history]}


def _check_scalable_args(time_limit_s: Any, target_gap: Any, seed: Any, threads: Any,
                         window_work: Any) -> None:
    problems = []
    if isinstance(time_limit_s, bool) or not isinstance(time_limit_s, (int, float, np.number)) \
            or not np.isfinite(time_limit_s) or time_limit_s <= 0:
        problems.append(f"time_limit_s={time_limit_s!r}: must be a positive number of seconds; "
                        "fix: e.g. time_limit_s=60")
    if isinstance(target_gap, bool) or not isinstance(target_gap, (int, float, np.number)) \
            or not 0 <= target_gap < 1:
        problems.append(f"target_gap={target_gap!r}: must be a fraction in [0, 1); fix: e.g. "
                        "target_gap=0.01 to stop at a proven 1 % gap, 0 to search until the "
                        "time limit or convergence")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        problems.append(f"seed={seed!r}: must be an integer")
    if threads not in (1, 2):
        problems.append(f"threads={threads!r}: must be 1 (sequential) or 2 (bound and search "
                        "run side by side)")
    if window_work is not None and (isinstance(window_work, bool)
                                    or not isinstance(window_work, (int, np.integer))
                                    or window_work < 1):
        problems.append(f"window_work={window_work!r}: must be a whole number >= 1 (open posts "
                        f"× candidates per LNS window), or None ({_LNS_WORK})")
    if problems:
        raise PlacementError("mclp_scalable", problems)


def _mclp_scalable(inst: _Instance, rules: _Rules, threshold: float, *, t_start: float,
                   time_limit_s: float, target_gap: float, seed: int, threads: int,
                   window_work: int | None) -> PlacementResult:
    """Scalable MCLP on a prepared instance (see :func:`mclp_scalable_from_od`)."""
    deadline = t_start + float(time_limit_s)
    p = int(rules.p)
    nc = inst.nc
    by_exist, cu, cj = _coverage_sets(inst, threshold)
    reach = np.zeros(inst.nd, dtype=bool)
    reach[cu] = True
    uncoverable = ~by_exist & ~reach & (inst.w > 0)
    red = _reduce_mclp(inst, by_exist, cu, cj)
    a, at, w = red.a, red.at, red.w
    m, n = a.shape
    w_live = float(w.sum())
    t_reduced = time.perf_counter() - t_start
    events: list[tuple[float, float, float]] = []
    state = {"best": 0.0, "bound": np.inf, "stopped_by": None}
    lock = threading.Lock()
    stop = threading.Event()
    info: dict[str, Any] = {}

    def note() -> None:
        events.append((time.perf_counter() - t_start, state["best"], state["bound"]))
        bound, best = state["bound"], state["best"]
        if not np.isfinite(bound):
            return
        if bound <= best + 1e-9 * max(1.0, bound):
            state["stopped_by"] = state["stopped_by"] or "optimal"
            stop.set()
        elif target_gap > 0 and (bound - best) / bound <= target_gap:
            state["stopped_by"] = state["stopped_by"] or "target_gap"
            stop.set()

    def on_improve(value: float) -> None:
        with lock:
            if value > state["best"]:
                state["best"] = value
                note()

    def on_bound(value: float) -> None:
        with lock:
            if value < state["bound"]:
                state["bound"] = value
                note()

    if p == 0 or m == 0:
        x = np.zeros(n, dtype=bool)
        x[:min(p, n)] = True
        state["best"] = state["bound"] = w_live if (m and p) else 0.0
        state["stopped_by"] = "optimal"
    elif n <= p:
        x = np.ones(n, dtype=bool)
        state["best"] = state["bound"] = w_live
        state["stopped_by"] = "optimal"
    else:
        x = _greedy(a, at, w, p)
        info["greedy_objective"] = _coverage_value(a, w, x)
        x, rounds = _swap_search(a, at, w, x, deadline)
        info["swap_rounds"] = rounds
        info["swap_objective"] = _coverage_value(a, w, x)
        state["best"] = info["swap_objective"]
        events.append((time.perf_counter() - t_start, state["best"], np.inf))
        # first price of a post for the bound: a share of the best unopened candidate's gain
        cnt = a @ x.astype(float)
        gain = at @ (w * (cnt == 0))
        mu0 = 0.6 * float(gain[~x].max()) if (~x).any() else 0.0
        if not mu0 > 0:
            mu0 = float(np.min(w[w > 0])) if (w > 0).any() else 1.0
        work = int(window_work) if window_work is not None else _LNS_WORK
        target_nnz = int(np.clip(a.nnz / 60, 5_000, 40_000))

        def bound_job(until: float) -> tuple[float, dict[str, Any]]:
            return _bcd_bound(a, at, w, p, mu0, deadline=until, stop=stop, on_bound=on_bound,
                              seed=seed, target_nnz=target_nnz)

        def primal_job() -> tuple[np.ndarray, dict[str, Any]]:
            xx, totals = x, {"windows": 0, "improvements": 0, "passes": 0, "ended": "deadline"}
            k = work
            for _ in range(3):                        # passes with growing windows
                if time.perf_counter() >= deadline or stop.is_set():
                    break
                xx, st = _lns(a, at, w, xx, work=k, max_candidates=_LNS_MAX_CANDIDATES,
                              deadline=deadline, stop=stop, on_improve=on_improve)
                totals["windows"] += st["windows"]
                totals["improvements"] += st["improvements"]
                totals["passes"] += 1
                totals["ended"] = st["ended"]
                if st["improvements"] == 0 or st["ended"] != "exhausted":
                    break
                k = int(k * 1.5)
            xx, r2 = _swap_search(a, at, w, xx, deadline + 0.0, stop=None, max_rounds=50) \
                if time.perf_counter() < deadline else (xx, 0)
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
    bound = float(min(state["bound"], w_live))
    if bound < objective:       # float noise only: the bound is valid by construction
        bound = objective
    gap = 0.0 if bound <= objective + 1e-9 * max(1.0, bound) else (bound - objective) / bound
    elapsed = time.perf_counter() - t_start
    if gap == 0.0:
        status = "optimal"
    elif state["stopped_by"] == "target_gap":
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
    details = {"weight_total": total, "weight_covered_before": before,
               "weight_covered_after": before + objective,
               "weight_uncoverable": float(inst.w[uncoverable].sum()),
               "units": inst.nd, "units_covered_before": int(by_exist.sum()),
               "units_uncoverable": int(uncoverable.sum()), "model_rows_merged": m,
               "candidates": nc, "candidates_in_model": n,
               "candidates_dominated": red.n_dominated,
               "candidates_covering_nothing": red.n_useless,
               "existing_sites": len(inst.exist_ids), "threshold_min": threshold,
               "rules": list(rules.labels), "time_reduction_s": round(t_reduced, 3),
               "time_to_gap_s": time_to, "gap_definition": "(bound - objective) / bound",
               "seed": seed, "threads": threads, "time_limit_s": float(time_limit_s),
               "target_gap": float(target_gap), **info}
    sol = Solution("mclp", objective, bound, gap, SCALABLE_SOLVER, status, round(elapsed, 4),
                   n + m, m + 1, SCALABLE_TIE_BREAK, details)
    log.info("mclp (scalable): %d posts among %d candidates (%d in the reduced model), %.0f "
             "newly covered (%.2f %% → %.2f %% of weight at %g min), bound %.0f, gap %.3f %%, "
             "%s, %.1f s", p, nc, n, objective, 100 * before / max(total, 1e-12),
             100 * (before + objective) / max(total, 1e-12), threshold, bound, 100 * gap,
             status, elapsed)
    return _outputs(inst, chosen, threshold=threshold, model="mclp", covered_before=by_exist,
                    rules=rules, solution=sol, uncoverable=uncoverable)


def mclp_scalable_from_od(od: pd.DataFrame, weights: pd.Series, *, p: int, threshold: float,
                          candidates: Sites = None, existing: Sites = None,
                          already_covered: pd.Series | None = None,
                          eligible: pd.Series | IdList | None = None,
                          demand: pd.DataFrame | None = None, time_limit_s: float = 60.0,
                          target_gap: float = 0.0, seed: int = 0, threads: int = 2,
                          window_work: int | None = None,
                          settings: Settings = DEFAULT) -> PlacementResult:
    """MCLP at national scale: heuristic posts with a proven bound on the optimum.

    Same problem and inputs as :func:`mclp_from_od` (``p`` new posts maximising the
    weight newly covered within ``threshold``; existing sites, ``already_covered`` and
    ``eligible`` as there) for instances too large for the exact MILP (all of
    metropolitan France: ~35 000 demand units and candidates). Quotas, budgets and
    separation rules are not supported here (use ``mclp_from_od(method="exact")``).

    Method
    ------
    1. **Exact reductions**: units already covered, of zero weight or unreachable are
       left out; units with the same candidate set are merged; a candidate whose set is
       included in another's is dropped. The reduced instance has the same optimum.
    2. **Greedy** (largest uncovered weight first) then **swap local search**
       (interchange; every swap valued exactly with sparse products, non-overlapping
       improving swaps applied together).
    3. Side by side (``threads=2``, two threads; HiGHS releases the GIL):

       * **large neighbourhood search**: around each uncovered unit (heaviest first),
         the posts among the nearest candidates (breadth-first, ``window_work``) are
         re-placed optimally by HiGHS, the other posts fixed; then a last swap search;
       * **Lagrangian bound**: relaxing ``y_i ≤ Σ_j a_ij x_j`` with multipliers
         ``λ_i ≥ 0`` gives ``L(λ) = Σ_i max(0, w_i − λ_i) + (sum of the p largest
         Σ_i a_ij λ_i)`` ≥ optimum for every λ. λ is improved by block-coordinate
         descent: the demand rows are cut into connected blocks and each block's λ is
         set by an exact LP (HiGHS) with the other λ fixed; at convergence L(λ) is the
         LP-relaxation bound. L(λ) is evaluated exactly after every sweep, so the
         bound reported is proven whatever the stopping point.

    The search stops at ``time_limit_s`` (counted from the call, preparation included),
    when the bound meets the best solution (optimal), when the proven gap reaches
    ``target_gap`` (if > 0), or when both searches have converged.

    Parameters
    ----------
    od, weights, p, threshold, candidates, existing, already_covered, eligible, demand
        As in :func:`mclp_from_od` (``p`` is required).
    time_limit_s : float
        Wall-clock budget in seconds (default 60).
    target_gap : float
        Stop once ``(bound − objective) / bound`` is at most this (default 0: search until
        the time limit or convergence).
    seed : int
        Seed of the block partitions of the bound's sweeps after the first.
    threads : int
        2 (default): bound and search run side by side; 1: one after the other (half
        the remaining time for the bound).
    window_work : int, optional
        Size of the LNS windows as (open posts × candidates) in a window (default 1600,
        tuned on the national instances); later passes grow it 1.5×.
    settings : Settings
        Only for validation messages (the travel model is in ``od``).

    Returns
    -------
    PlacementResult
        As :func:`mclp_from_od`. ``solution.objective`` = weight newly covered by the posts;
        ``solution.bound`` = proven upper bound of the optimum; ``solution.gap`` =
        ``(bound − objective) / bound``; ``solution.solver`` =
        ``"greedy+swap+LNS / Lagrangian bound"``; ``solution.status`` = ``optimal``
        (bound met), ``target_gap``, ``converged`` (both searches ended on their own:
        the result is deterministic) or ``time_limit`` (the result then depends on how
        far the search got); ``solution.details`` adds the reduction counts,
        ``greedy_objective``, ``swap_objective``, LNS and bound statistics,
        ``bound_history`` and ``time_to_gap_s`` (seconds to reach a 1 %, 0.5 %, 0.1 %
        proven gap, None if not reached).

    Raises
    ------
    PlacementError
        Bad inputs (as :func:`mclp_from_od`), bad ``time_limit_s``, ``target_gap``,
        ``threads``, ``window_work`` or ``seed``.

    Examples
    --------
    >>> import pandas as pd
    >>> from cnfs_geo import access, catalog, territory, placement
    >>> c = territory.communes_from_cog("49", catalog.resolve_data_dir())
    >>> sites = c[["chef_lieu_x", "chef_lieu_y"]].set_axis(["x", "y"], axis=1)
    >>> sites.index = "commune:" + sites.index
    >>> od = access.od_crowfly(c[["ref_x", "ref_y"]].set_axis(["x", "y"], axis=1), sites,
    ...                        max_minutes=10)
    >>> r = placement.mclp_scalable_from_od(od, c["population"], p=8, threshold=10,
    ...                                     time_limit_s=20)
    >>> len(r.posts), r.solution.bound >= r.solution.objective
    (8, True)
    """
    t_start = time.perf_counter()
    threshold = _check_threshold(threshold)
    _check_scalable_args(time_limit_s, target_gap, seed, threads, window_work)
    if p is None:
        raise PlacementError("p", ["mclp_scalable_from_od needs the number of new posts p "
                                   "(e.g. p=8, settings.posts); for a euro budget use "
                                   "mclp_from_od(method='exact', budget_eur=...)"])
    inst = _prepare(od, weights, candidates=candidates, existing=existing, eligible=eligible,
                    demand=demand, already_covered=already_covered)
    rules = _make_rules(inst, model="mclp", p=p, max_posts=None, budget_eur=None,
                        post_cost_eur=None, groups=None, min_per_group=None, max_per_group=None,
                        separation=None, min_separation_min=None, settings=settings)
    return _mclp_scalable(inst, rules, threshold, t_start=t_start, time_limit_s=time_limit_s,
                          target_gap=target_gap, seed=int(seed), threads=threads,
                          window_work=window_work)


# ----------------------------------------------------------------------------------------
# National demand units (COG 2018 polygons, COG 2026 populations)
# ----------------------------------------------------------------------------------------
_METRO_MEMBER = r"departements/([0-9]{2}|2[AB])-[^/]+/communes-\1-[^/]+\.geojson$"


def demand_units_cog2018(data_dir: Any = None, *, path: Any = None) -> gpd.GeoDataFrame:
    """Demand units for national placement: the COG 2018 commune polygons with COG 2026
    populations, in Lambert-93.

    Each 2018 polygon is one demand unit (metropolitan France: 35 228 polygons of 96
    départements); it travels from its representative point (``ref_x``/``ref_y``, always
    inside the polygon). Populations are the COG 2026 populations légales: a 2018 code is
    mapped to its current commune with :func:`cnfs_geo.territory.current_code_map`, and a
    current commune's population is shared among its 2018 pieces in proportion to their
    area (a commune nouvelle of 3 former communes puts 3 units on the map, not one).

    2018 codes unknown to the COG 2026 mapping (délégué/associé ``chefLieu`` and the
    ``anciensCodes`` of fusions simples) are an error naming them. Current communes with
    no 2018 polygon (7 in metropolitan France, re-created by a split after 2018, e.g.
    85165 L'Oie) cannot be placed: they are not demand units, and their population
    (5 245 inhabitants) is listed in ``attrs["communes_without_polygon"]`` and in a log
    warning.

    Parameters
    ----------
    data_dir : DataDir, path or None
        Data directory (:func:`cnfs_geo.catalog.resolve_data_dir`); holds the COG 2026
        (``cog/communes.json``) and, unless ``path`` is given, the national archive
        ``communes/france-geojson_departements_communes_adminexpress-cog2018.tar.gz``
        (its 96 metropolitan ``communes-<dep>-*.geojson`` members are read).
    path : path, optional
        A GeoJSON of 2018 commune polygons (properties ``code``, ``nom``) to read instead
        of the archive, e.g. ``communes/communes-pays-de-la-loire_adminexpress-cog2018.geojson``.

    Returns
    -------
    GeoDataFrame
        Index ``code_2018`` (str, sorted). Columns ``nom``, ``departement`` (of the 2018
        code), ``insee`` (current commune, COG 2026), ``population`` (float, area share of
        the current commune's population), ``area_km2``, ``ref_x``, ``ref_y``
        (representative point), ``geometry`` (polygon). CRS EPSG:2154 (Lambert-93).
        ``attrs``: ``source``, ``communes_without_polygon`` (code → population),
        ``population_left_out``.

    Raises
    ------
    DataFileError, ValidationError
        Missing files, polygons without ``code``.
    """
    import io
    import re
    import tarfile
    from pathlib import Path

    from . import catalog, territory
    from ._errors import ValidationError
    from .settings import GEOGRAPHIC_CRS, METROPOLE_CRS

    dd = data_dir if isinstance(data_dir, catalog.DataDir) else catalog.resolve_data_dir(data_dir)
    frames = []
    if path is None:
        source = dd.file("communes_2018_archive")
        pattern = re.compile(_METRO_MEMBER)
        with tarfile.open(source, "r:gz") as tar:
            for member in sorted(tar.getmembers(), key=lambda mm: mm.name):
                hit = pattern.search(member.name)
                if hit:
                    g = gpd.read_file(io.BytesIO(tar.extractfile(member).read()))
                    g["departement"] = hit.group(1)
                    frames.append(g)
        if not frames:
            raise ValidationError(str(source), ["no metropolitan member "
                                                "departements/<dep>-<name>/communes-<dep>-*.geojson"])
    else:
        source = Path(path)
        if not source.is_file():
            from ._errors import DataFileError
            raise DataFileError(f"{source}: no such file; fix: give a GeoJSON of COG 2018 "
                                "commune polygons (e.g. communes/communes-pays-de-la-loire_"
                                "adminexpress-cog2018.geojson in the data directory)")
        frames.append(gpd.read_file(source))
    polys = pd.concat(frames, ignore_index=True)
    polys = gpd.GeoDataFrame(polys, geometry="geometry", crs=frames[0].crs)
    missing = [c for c in ("code", "geometry") if c not in polys.columns]
    if missing:
        raise ValidationError(str(source), [f"missing propert(y/ies) {missing}: expected "
                                            "'code' (INSEE 2018) and a polygon geometry"])
    polys["code"] = polys["code"].astype(str)
    if "nom" not in polys.columns:
        polys["nom"] = None
    if "departement" not in polys.columns:
        polys["departement"] = polys["code"].str[:2]
    dup = polys["code"][polys["code"].duplicated()]
    if len(dup):
        raise ValidationError(str(source), [f"duplicated 2018 code(s) {_sample(dup.unique())}"])
    polys = polys.set_crs(GEOGRAPHIC_CRS, allow_override=polys.crs is None)
    polys = polys.to_crs(METROPOLE_CRS).sort_values("code").reset_index(drop=True)
    polys["geometry"] = polys.geometry.make_valid()

    mapping = territory.current_code_map(dd)
    cog = territory.cog_communes(dd)
    current = cog[cog["type"] == "commune-actuelle"].drop_duplicates("code").set_index("code")
    insee = polys["code"].map(mapping)
    unknown = polys["code"][insee.isna()]
    if len(unknown):
        raise ValidationError(str(source), [
            f"{len(unknown)} 2018 commune code(s) unknown to the COG 2026 of {dd.path} "
            f"(neither current, délégué/associé nor a former code of a current commune): "
            f"{_sample(unknown)}; fix: use the COG 2026 communes.json with anciensCodes, or "
            "add those codes to the code mapping (cnfs_geo.territory)"])
    area = polys.geometry.area.to_numpy()
    share = area / pd.Series(area).groupby(insee.to_numpy()).transform("sum").to_numpy()
    pop = pd.to_numeric(current["population"], errors="coerce").reindex(insee).to_numpy(float)
    no_pop = ~np.isfinite(pop)
    population = np.where(no_pop, 0.0, pop * share)
    if no_pop.any():
        log.warning("demand_units_cog2018: %d unit(s) map to a current commune without "
                    "population: %s", int(no_pop.sum()), _sample(polys["code"][no_pop]))
    deps = set(polys["departement"])
    here = current[current["departement"].isin(deps)]
    without = here.index.difference(pd.Index(insee.dropna().unique()))
    left = {c: float(pd.to_numeric(here.loc[c, "population"], errors="coerce") or 0.0)
            for c in sorted(without)}
    if left:
        log.warning("demand_units_cog2018: %d current commune(s) have no 2018 polygon (split "
                    "after 2018); their %.0f inhabitants are left out: %s", len(left),
                    sum(left.values()), _sample(left))
    rep = polys.geometry.representative_point()
    out = gpd.GeoDataFrame({
        "nom": polys["nom"].to_numpy(dtype=object),
        "departement": polys["departement"].to_numpy(dtype=object),
        "insee": insee.to_numpy(dtype=object),
        "population": population, "area_km2": area / 1e6,
        "ref_x": rep.x.to_numpy(), "ref_y": rep.y.to_numpy()},
        geometry=polys.geometry.to_numpy(), crs=METROPOLE_CRS,
        index=pd.Index(polys["code"].to_numpy(dtype=object), name="code_2018"))
    out.attrs.update({"source": str(source),
                      "communes_without_polygon": left,
                      "population_left_out": float(sum(left.values()))})
    log.info("demand_units_cog2018: %d units, %.0f inhabitants (%d départements)", len(out),
             float(population.sum()), len(deps))
    return out


# The capacity / equity model lives in the plumbing module _capacity (its own solver and
# 2SFCA algebra); it is part of the placement API.
from ._capacity import EquityResult, equity_from_od, equity_of_posts  # noqa: E402,F401
