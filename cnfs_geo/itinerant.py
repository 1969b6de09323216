"""Mutualised itinerant posts ("médiateur volant"): who shares one advisor, in what order, when.

Eligible sparse communes, circuits (one base + its stops, exact capacitated covering on
HiGHS), the stop order (exact travelling-salesman tour) and the weekly timetable. Method
and figures: ``docs/methods_itinerant.md``.

Examples
--------
>>> from cnfs_geo.plan import Scenario, run
>>> from cnfs_geo.itinerant import itinerant_circuits
>>> plan = run(Scenario(departement="49"))
>>> r = itinerant_circuits(plan.communes, n_posts=2)
>>> len(r.circuits), bool((r.stops["hours"] >= 2.5).all())
(2, True)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import LinearConstraint
from shapely.geometry import LineString, Point

from . import _fr, access
from ._errors import PlacementError, ValidationError
from ._validate import communes_table
from .placement import keep_objective, milp_status, solve_milp
from .settings import DEFAULT, Settings

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------
# Defaults that are not settings (the others default to None = the settings value:
# itinerant_density_max, itinerant_max_stop_minutes, itinerant_min_stop_hours,
# itinerant_days_per_week, itinerant_min_stops)
# --------------------------------------------------------------------------------------
NEED_QUANTILE_MIN: float | None = 0.75
"""High need: ``need_index`` at or above this quantile of the département's communes."""
HALF_DAYS_PER_DAY = 2
"""Morning and afternoon: at most one stop per half-day."""
EXACT_TSP_MAX = 12
"""Largest number of stops ordered by exact Held–Karp; 2-opt + Or-opt above."""
PRIORITY = "uncovered"
"""Objective order: need of uncovered communes first, then all need (see *Circuits*)."""

DAY_NAMES = _fr.DAYS  # French day and half-day names of the timetable
HALF_DAY_NAMES = _fr.HALF_DAYS
REASON_LABELS = {
    "out_of_reach": "aucune base retenue à moins du temps maximal",
    "circuit_full": "circuit complet (pas d'une demi-journée de plus dans la semaine)",
    "other_territory": "aucune base retenue dans son EPCI ou son territoire prioritaire",
    "too_few_stops": _fr.DROP_REASON_TOO_FEW_STOPS,
    "stops_taken": _fr.DROP_REASON_STOPS_TAKEN,
    "no_post": "aucun poste itinérant",
}
_REQUIRED = ("nom", "population", "density", "need", "need_index", "chef_lieu_x", "chef_lieu_y")
_TOL = 1e-9

CIRCUIT_COLUMNS = [
    "circuit_id",
    "base_insee",
    "base_nom",
    "stops",
    "stop_names",
    "n_stops",
    "population",
    "need",
    "units_served",
    "population_stops",
    "visits",
    "hours_per_visit",
    "hours_at_stops",
    "minutes_per_week",
    "km_per_week",
    "budget_hours",
    "tour_minutes",
    "tour_km",
    "max_minutes_from_base",
    "empty_days",
    "empty_days_reason",
    "geometry",
]
TIMETABLE_COLUMNS = [
    "circuit_id",
    "day_index",
    "day",
    "half_day",
    "insee",
    "nom",
    "hours",
    "travel_minutes",
    "travel_km",
    "reason",
]
STOP_COLUMNS = [
    "circuit_id",
    "order",
    "insee",
    "nom",
    "population",
    "density",
    "need",
    "need_index",
    "covered",
    "high_need",
    "priority",
    "reason",
    "need_served",
    "need_served_uncovered",
    "minutes_from_base",
    "km_from_base",
    "visits",
    "hours",
    "geometry",
]
SERVED_COLUMNS = ["minutes_to_stop", "nearest_stop", "circuit_id", "served", "newly_served"]
"""Columns of :attr:`ItinerantResult.served` (one row per row of the input frame)."""
DROPPED_COLUMNS = [
    "insee",
    "nom",
    "population",
    "density",
    "need",
    "need_index",
    "covered",
    "high_need",
    "reason",
    "nearest_base",
    "minutes_to_nearest_base",
]


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ItinerantResult:
    """Outcome of :func:`itinerant_circuits`.

    Attributes
    ----------
    circuits : GeoDataFrame
        One row per itinerant post, sorted by ``need`` (descending) then ``base_insee``;
        columns :data:`CIRCUIT_COLUMNS`: ``circuit_id`` (``I01``, ``I02``…),
        ``base_insee``, ``base_nom``, ``stops`` (";"-joined INSEE codes in tour order),
        ``stop_names`` (";"-joined names, same order), ``n_stops``, ``population`` and
        ``need`` (inhabitants and need **newly served**: rows not covered before the
        circuits and *served* by this circuit, see ``served``), ``units_served`` (how
        many such rows), ``population_stops`` (inhabitants of the stops themselves),
        ``visits`` (half-day visits a week),
        ``hours_per_visit``, ``hours_at_stops``, ``minutes_per_week`` and
        ``km_per_week`` (driving along the day routes), ``budget_hours``
        (``settings.advisor_hours_per_post``), ``tour_minutes`` / ``tour_km`` (the
        closed tour base → stops → base), ``max_minutes_from_base``, ``empty_days``
        (working days without a visit, 0 unless the travel leaves too little time)
        and ``empty_days_reason`` (French, "" when none), ``geometry`` (LineString
        base → stops in tour order → base, CRS of ``communes``).
    timetable : DataFrame
        One row per visit, sorted by ``circuit_id``, ``day_index``, half-day:
        ``circuit_id``, ``day_index`` (1 = lundi), ``day`` (``lundi`` … ``vendredi``),
        ``half_day`` (``matin`` | ``après-midi``), ``insee``, ``nom``, ``hours`` (at the
        stop), ``travel_minutes`` / ``travel_km`` (the morning row carries base →
        morning stop; the afternoon row morning stop → afternoon stop → base; a day
        with one visit puts the return trip on its only row), ``reason`` (why the
        stop is one: French, see ``stops``). Per circuit, the sum of
        ``travel_minutes`` is ``minutes_per_week`` and the sum of ``hours`` is
        ``hours_at_stops``.
    stops : GeoDataFrame
        One row per stop, sorted by ``circuit_id`` and ``order`` (1 = first after the
        base): ``circuit_id``, ``order``, ``insee``, ``nom``, ``population``,
        ``density``, ``need``, ``need_index``, ``covered``, ``high_need``,
        ``priority``, ``reason`` (French: beyond the threshold after the fixed posts,
        or priority territory with its reasons), ``need_served`` (need of the rows
        this stop serves, nearest of its circuit's stops), ``need_served_uncovered``
        (the part of it beyond the threshold; visits follow it first, the covered part
        weighs ``COVERED_VISIT_WEIGHT``), ``minutes_from_base``,
        ``km_from_base``, ``visits``, ``hours``, ``geometry`` (stop point).
    served : DataFrame
        Every row of the input (index as the input): ``minutes_to_stop`` (to the
        nearest stop of any circuit), ``nearest_stop``, ``circuit_id`` (of that stop
        when served, else None), ``served`` (a weekly permanence within ``threshold``
        minutes: **the** definition of "served by a circuit") and ``newly_served``
        (served and not covered).
    dropped : DataFrame
        Eligible communes served by no circuit, sorted by ``need`` (descending) then
        ``insee``: ``insee``, ``nom``, ``population``, ``density``, ``need``,
        ``need_index``, ``covered``, ``high_need``, ``reason`` (``out_of_reach`` |
        ``circuit_full`` | ``other_territory`` | ``too_few_stops`` | ``stops_taken`` |
        ``no_post``;
        French labels in :data:`REASON_LABELS`),
        ``nearest_base`` (circuit id of the nearest chosen base, None if none) and
        ``minutes_to_nearest_base``.
    eligibility : DataFrame
        Every row of the input (index as the input): ``density``, ``sparse``,
        ``covered``, ``high_need``, ``priority``, ``excluded``, ``eligible``,
        ``reason``, ``circuit_id`` (None when not a stop).
    parameters : dict
        Every option and derived value used (thresholds, budget, slots, counts).
    solution : dict
        Solver record: ``status`` (``optimal`` | ``time_limit`` | ``no_post`` |
        ``no_pair``), ``objective`` (need served), ``objective_uncovered`` (need of
        uncovered communes served, with ``priority="uncovered"``), ``cuts``
        (infeasible circuits cut off), ``solves``, ``n_variables``, ``time_limit_s``.
    """

    circuits: gpd.GeoDataFrame
    timetable: pd.DataFrame
    stops: gpd.GeoDataFrame
    dropped: pd.DataFrame
    eligibility: pd.DataFrame
    served: pd.DataFrame = field(default_factory=pd.DataFrame)
    parameters: dict = field(default_factory=dict)
    solution: dict = field(default_factory=dict)


@dataclass(frozen=True)
class WeekPlan:
    """Visits of one circuit in one week (see :func:`week_plan`).

    Attributes
    ----------
    visits : tuple of int
        Visits per stop (same order as the stops given).
    days : tuple of tuple of int
        Day routes in week order; each is one or two stop positions (morning first).
    travel_minutes : float
        Minutes driven in the week (sum of the day routes).
    hours_per_visit : float
        Hours at the stop during each visit.
    """

    visits: tuple[int, ...]
    days: tuple[tuple[int, ...], ...]
    travel_minutes: float
    hours_per_visit: float


# --------------------------------------------------------------------------------------
# Travelling salesman
# --------------------------------------------------------------------------------------
def tour_minutes(minutes: np.ndarray, order: Sequence[int]) -> float:
    """Length of the closed tour ``0 → order… → 0`` on a square minutes matrix."""
    path = [0, *order, 0]
    return float(sum(minutes[a, b] for a, b in zip(path[:-1], path[1:])))


def _canonical(order: list[int]) -> list[int]:
    """Of a tour and its reverse (same length, symmetric matrix) keep the one whose
    first stop has the smaller index."""
    if len(order) > 1 and order[-1] < order[0]:
        return order[::-1]
    return order


def held_karp(minutes: np.ndarray) -> tuple[list[int], float]:
    """Exact shortest closed tour from node 0 through every other node (Held–Karp).

    Parameters
    ----------
    minutes : ndarray, shape (n + 1, n + 1)
        Symmetric travel minutes; node 0 is the base.

    Returns
    -------
    order : list of int
        Nodes 1..n in tour order (of the two directions, the one starting with the
        smaller index).
    length : float
        Tour minutes.

    Notes
    -----
    O(2ⁿ n²) time: instant up to :data:`EXACT_TSP_MAX` stops. Ties between tours of
    equal length go to the first found in increasing subset / node order
    (deterministic).
    """
    m = np.asarray(minutes, dtype=float)
    n = m.shape[0] - 1
    if n <= 0:
        return [], 0.0
    if n == 1:
        return [1], float(m[0, 1] + m[1, 0])
    full = (1 << n) - 1
    inf = math.inf
    cost = np.full((1 << n, n), inf)
    parent = np.full((1 << n, n), -1, dtype=int)
    for k in range(n):
        cost[1 << k, k] = m[0, k + 1]
    for mask in range(1, full + 1):
        for last in range(n):
            c = cost[mask, last]
            if c == inf or not mask >> last & 1:
                continue
            for nxt in range(n):
                if mask >> nxt & 1:
                    continue
                nm = mask | 1 << nxt
                v = c + m[last + 1, nxt + 1]
                if v < cost[nm, nxt] - _TOL:
                    cost[nm, nxt] = v
                    parent[nm, nxt] = last
    totals = [cost[full, k] + m[k + 1, 0] for k in range(n)]
    last = int(np.argmin(totals))
    length = float(totals[last])
    order = []
    mask = full
    while last >= 0:
        order.append(last + 1)
        prev = parent[mask, last]
        mask &= ~(1 << last)
        last = prev
    return _canonical(order[::-1]), length


def two_opt(
    minutes: np.ndarray, order: Sequence[int] | None = None, *, or_opt: bool = True
) -> tuple[list[int], float]:
    """Closed tour from node 0 improved by 2-opt (and Or-opt) until no move shortens it.

    Parameters
    ----------
    minutes : ndarray, shape (n + 1, n + 1)
        Symmetric travel minutes; node 0 is the base.
    order : sequence of int, optional
        Starting order of nodes 1..n; default nearest neighbour from the base (ties
        to the smaller index).
    or_opt : bool
        Also try moving every segment of 1–3 stops elsewhere (either direction)
        when no 2-opt reversal improves (Or 1976).

    Returns
    -------
    order : list of int
        Locally optimal tour: no reversal of a segment (2-opt) and, with ``or_opt``,
        no move of a segment of 1–3 stops shortens it.
    length : float

    Notes
    -----
    A heuristic: 2-optimal is not always optimal. It is the fallback of
    :func:`tsp_order` above :data:`EXACT_TSP_MAX` stops only.
    """
    m = np.asarray(minutes, dtype=float)
    n = m.shape[0] - 1
    if order is None:
        left = list(range(1, n + 1))
        order, here = [], 0
        while left:
            nxt = min(left, key=lambda k: (m[here, k], k))
            order.append(nxt)
            left.remove(nxt)
            here = nxt
    route = [0, *order, 0]

    def length(r: list[int]) -> float:
        return float(sum(m[a, b] for a, b in zip(r[:-1], r[1:])))

    improved = True
    while improved:
        improved = False
        # 2-opt: reverse route[i..j]
        for i in range(1, len(route) - 2):
            for j in range(i + 1, len(route) - 1):
                a, b, c, d = route[i - 1], route[i], route[j], route[j + 1]
                if m[a, c] + m[b, d] - m[a, b] - m[c, d] < -1e-9:
                    route[i : j + 1] = route[i : j + 1][::-1]
                    improved = True
        if improved or not or_opt:
            continue
        # Or-opt: move a segment of 1–3 stops elsewhere, either direction
        base_len = length(route)
        for seg in (1, 2, 3):
            for i in range(1, len(route) - seg):
                segment = route[i : i + seg]
                rest = route[:i] + route[i + seg :]
                for k in range(1, len(rest)):
                    for piece in (segment, segment[::-1]):
                        cand = rest[:k] + piece + rest[k:]
                        if length(cand) < base_len - 1e-9:
                            route, improved = cand, True
                            break
                    if improved:
                        break
                if improved:
                    break
            if improved:
                break
    out = _canonical(route[1:-1])
    return out, tour_minutes(m, out)


def tsp_order(minutes: np.ndarray, *, method: str = "auto") -> tuple[list[int], float]:
    """Order of the stops of a closed tour from the base (node 0).

    Parameters
    ----------
    minutes : ndarray, shape (n + 1, n + 1)
        Symmetric travel minutes; node 0 is the base.
    method : {"auto", "exact", "2opt"}
        ``auto``: exact Held–Karp up to :data:`EXACT_TSP_MAX` stops, :func:`two_opt`
        (2-opt + Or-opt) above.

    Returns
    -------
    order : list of int
        Nodes 1..n in tour order.
    length : float
        Tour minutes.
    """
    m = np.asarray(minutes, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValidationError(
            "minutes",
            [
                f"expected a square (n + 1) × (n + 1) matrix with the "
                f"base as node 0, got shape {m.shape}"
            ],
        )
    if method not in ("auto", "exact", "2opt"):
        raise ValidationError("method", [f"method={method!r}: use 'auto', 'exact' or '2opt'"])
    n = m.shape[0] - 1
    if method == "exact" or (method == "auto" and n <= EXACT_TSP_MAX):
        if n > 20:
            raise ValidationError(
                "method", [f"exact tour on {n} stops would need 2^{n} states; fix: method='2opt'"]
            )
        return held_karp(m)
    return two_opt(m)


# --------------------------------------------------------------------------------------
# Week: visits, day routes, hours
# --------------------------------------------------------------------------------------
def _day_routes(
    minutes: np.ndarray, visits: Sequence[int], per_day: int
) -> tuple[float, list[tuple[int, ...]]]:
    """Least weekly travel for a multiset of visits (node indices, base = 0), at most
    ``per_day`` (1 or 2) visits a day, each day a closed route from the base.

    Exact: dynamic programming over subsets (the first unassigned visit is alone or
    paired with a later one); with per_day = 2 at most one day has a single visit,
    which loses nothing since pairing never lengthens the week (triangle inequality).
    """
    v = list(visits)
    k = len(v)
    if k == 0:
        return 0.0, []
    m = minutes

    def single(a: int) -> float:
        return float(m[0, a] + m[a, 0])

    def pair(a: int, b: int) -> float:
        return float(m[0, a] + m[a, b] + m[b, 0])

    if per_day == 1:
        return sum(single(a) for a in v), [(a,) for a in v]

    @cache
    def best(mask: int, single_left: bool) -> tuple[float, tuple[tuple[int, int], ...]]:
        if mask == (1 << k) - 1:
            return 0.0, ()
        i = next(t for t in range(k) if not mask >> t & 1)
        out: tuple[float, tuple] = (math.inf, ())
        if single_left:
            c, rest = best(mask | 1 << i, False)
            out = (c + single(v[i]), ((i, -1),) + rest)
        for j in range(i + 1, k):
            if mask >> j & 1:
                continue
            c, rest = best(mask | 1 << i | 1 << j, single_left)
            c += pair(v[i], v[j])
            if c < out[0] - _TOL:
                out = (c, ((i, j),) + rest)
        return out

    total, groups = best(0, k % 2 == 1)
    days: list[tuple[int, ...]] = [(v[i],) if j < 0 else (v[i], v[j]) for i, j in groups]
    return total, days


#: Weight of an already-covered (priority) person in the share of a circuit's
#: half-days, against 1 for a person beyond the threshold: each stop has one visit,
#: then extra visits follow the uncovered people served before any covered one.
COVERED_VISIT_WEIGHT = 1e-3


def _dhondt(need: Sequence[float], total: int) -> list[int]:
    """``total`` visits over the stops, one each then D'Hondt by need (ties: first stop)."""
    k = [1] * len(need)
    for _ in range(total - len(need)):
        i = max(range(len(need)), key=lambda t: (need[t] / k[t], -t))
        k[i] += 1
    return k


def week_plan(
    minutes: np.ndarray,
    need: Sequence[float],
    *,
    budget_hours: float,
    min_stop_hours: float | None = None,
    days_per_week: int | None = None,
    half_days_per_day: int = HALF_DAYS_PER_DAY,
    settings: Settings = DEFAULT,
) -> WeekPlan | None:
    """The week of one circuit, or None when its stops do not fit.

    Parameters
    ----------
    minutes : ndarray, shape (n + 1, n + 1)
        Travel minutes; node 0 = base, nodes 1..n = stops **in tour order**.
    need : sequence of float
        Need of the n stops (same order).
    budget_hours : float
        Hours for driving + stops (``settings.advisor_hours_per_post``).
    min_stop_hours, days_per_week, half_days_per_day
        See :func:`itinerant_circuits` (None: ``settings.itinerant_min_stop_hours``,
        ``settings.itinerant_days_per_week``).
    settings : Settings
        Source of the defaults.

    Returns
    -------
    WeekPlan or None
        None when even one visit per stop cannot fit: more stops than slots, or
        ``n × min_stop_hours + least travel / 60 > budget_hours``. Otherwise the
        largest number of visits that fits (see ``docs/methods_itinerant.md``), with
        its day routes ordered by the earliest stop of each day in the tour.
    """
    if min_stop_hours is None:
        min_stop_hours = settings.itinerant_min_stop_hours
    if days_per_week is None:
        days_per_week = settings.itinerant_days_per_week
    n = len(need)
    slots = days_per_week * half_days_per_day
    if n == 0:
        return WeekPlan((), (), 0.0, 0.0)
    if n > slots:
        return None
    best: WeekPlan | None = None
    for total in range(n, slots + 1):
        visits = _dhondt(list(need), total)
        multiset = [s + 1 for s in range(n) for _ in range(visits[s])]
        travel, days = _day_routes(minutes, multiset, half_days_per_day)
        free = budget_hours - travel / 60.0
        if total * min_stop_hours > free + _TOL:
            break  # more visits never travel less (triangle inequality): stop here
        ordered = sorted((tuple(sorted(d)) for d in days), key=lambda d: d)
        best = WeekPlan(
            tuple(visits), tuple(tuple(s - 1 for s in d) for d in ordered), travel, free / total
        )
    return best


# --------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------
def _positive(value: Any, name: str, hint: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.number))
        or not np.isfinite(value)
        or value <= 0
    ):
        raise PlacementError(name, [f"{name}={value!r}: must be a positive number; fix: {hint}"])
    return float(value)


def _count(value: Any, name: str, hint: str, *, low: int, high: int | None = None) -> int:
    ok = (
        isinstance(value, (int, np.integer))
        and not isinstance(value, bool)
        and value >= low
        and (high is None or value <= high)
    )
    if not ok:
        rng = f">= {low}" if high is None else f"in {low}..{high}"
        raise PlacementError(name, [f"{name}={value!r}: must be an integer {rng}; fix: {hint}"])
    return int(value)


def _ids(values: Any, known: pd.Index, name: str) -> pd.Index:
    if values is None:
        return pd.Index([], dtype=object)
    if isinstance(values, (str, bytes)):
        values = [values]
    out = pd.Index([str(v) for v in values], dtype=object).unique()
    unknown = out.difference(known)
    if len(unknown):
        raise ValidationError(
            name,
            [
                f"INSEE code(s) not among the communes: "
                f"{', '.join(map(str, unknown[:10]))}; fix: give current "
                "(COG 2026) codes of the département, as strings"
            ],
        )
    return out


def _check_communes(communes: Any, covered: pd.Series | str) -> tuple[pd.DataFrame, pd.Series]:
    hint = "cnfs_geo.plan.run (plan.communes: territory + need + coverage)"
    required = [*_REQUIRED, *([covered] if isinstance(covered, str) else [])]
    communes_table(
        communes,
        required=required,
        hint=hint,
        crs=None,
        nonnegative=("population", "density", "need", "need_index"),
    )
    c = pd.DataFrame(
        communes.drop(columns=communes.geometry.name)
        if isinstance(communes, gpd.GeoDataFrame)
        else communes
    )
    c.index = pd.Index(c.index.astype(str), name="insee")
    problems = []
    for col in ("population", "density", "need", "need_index", "chef_lieu_x", "chef_lieu_y"):
        vals = pd.to_numeric(c[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(vals)
        if bad.any():
            problems.append(
                f"column {col!r}: {int(bad.sum())} missing or non-numeric value(s), e.g. "
                f"{list(c.index[bad][:5])}; fix the input or drop those communes"
            )
        c[col] = vals
    if problems:
        raise ValidationError("communes", problems)
    if isinstance(covered, str):
        flags = communes[covered]
    elif isinstance(covered, pd.Series):
        flags = covered.copy()
        flags.index = flags.index.astype(str)
        missing = c.index.difference(flags.index)
        if len(missing):
            raise ValidationError(
                "covered",
                [
                    f"no flag for {len(missing)} commune(s), e.g. "
                    f"{list(missing[:5])}; fix: one True/False per "
                    "commune, indexed by INSEE code"
                ],
            )
        flags = flags.reindex(c.index)
    else:
        raise ValidationError(
            "covered", [f"expected a column name or a boolean Series, got {type(covered).__name__}"]
        )
    if flags.isna().any() or not set(pd.unique(flags)) <= {True, False}:
        raise ValidationError(
            "covered",
            [
                "coverage flags must be True/False for every commune; "
                "fix: pass e.g. plan.communes['covered_before']"
            ],
        )
    flags = pd.Series(flags.to_numpy(dtype=bool), index=c.index, name="covered")
    return c, flags


def eligible_communes(
    communes: pd.DataFrame,
    *,
    covered: pd.Series | str = "covered_before",
    density_max: float | None = None,
    need_quantile_min: float | None = NEED_QUANTILE_MIN,
    exclude: Sequence[str] | None = None,
    priority: pd.Series | None = None,
    serve_covered: bool | None = None,
    settings: Settings = DEFAULT,
) -> pd.DataFrame:
    """Which communes (or demand units) an itinerant post may serve.

    *Eligibility* in docs/methods_itinerant.md: sparse, not excluded, and beyond the
    threshold (``covered`` False) or in a priority territory (``priority``); covered
    units of high need only when ``serve_covered``.

    Parameters
    ----------
    communes : GeoDataFrame
        ``plan.communes``: index ``insee``; ``nom``, ``population``, ``density``
        (inhabitants/km² of the COG 2026 polygon in the working CRS), ``need``,
        ``need_index``, ``chef_lieu_x``/``chef_lieu_y`` and the coverage column.
    covered : str or Series of bool
        Column of ``communes`` or flags indexed by INSEE: within the coverage
        threshold of the offer (``covered_before``; ``covered_after`` to serve what
        fixed posts leave).
    density_max : float, optional
        Sparse rural: ``density < density_max`` (default
        ``settings.itinerant_density_max``, 60 inhabitants/km²).
    need_quantile_min : float in (0, 1) or None
        High need: ``need_index >= quantile(need_index, need_quantile_min)`` over the
        communes given (used only with ``serve_covered``); None: never.
    exclude : list of str, optional
        Communes that must not be stops.
    priority : Series of str, optional
        Reasons (French, e.g. the ``gap_reasons`` of a priority gap commune) indexed
        like ``communes``; a non-empty reason makes a covered row eligible.
    serve_covered : bool, optional
        Also covered rows of high need (default ``settings.itinerant_serve_covered``,
        False).
    settings : Settings
        Source of the defaults.

    Returns
    -------
    DataFrame
        Index ``insee`` (input order); ``density``, ``sparse``, ``covered``,
        ``high_need``, ``priority``, ``excluded``, ``eligible`` (bool), ``reason``
        (why an eligible row is: ``uncovered`` | ``priority`` | ``covered``; ""
        when not eligible), ``priority_reasons`` (the ``priority`` text or "").
    """
    c, flags = _check_communes(communes, covered)
    if density_max is None:
        density_max = settings.itinerant_density_max
    density_max = _positive(
        density_max,
        "density_max",
        f"inhabitants per km², e.g. density_max={DEFAULT.itinerant_density_max:g}",
    )
    if need_quantile_min is not None and (
        isinstance(need_quantile_min, bool)
        or not isinstance(need_quantile_min, (int, float, np.number))
        or not 0 < need_quantile_min < 1
    ):
        raise PlacementError(
            "need_quantile_min",
            [
                f"need_quantile_min={need_quantile_min!r}: must be in (0, 1) or None; fix: e.g. "
                f"{NEED_QUANTILE_MIN} (top quarter) or None (uncovered communes only)"
            ],
        )
    excl = _ids(exclude, c.index, "exclude")
    if serve_covered is None:
        serve_covered = settings.itinerant_serve_covered
    prio = pd.Series("", index=c.index, dtype=object)
    if priority is not None:
        pr = priority.copy()
        pr.index = pr.index.astype(str)
        pr = pr.reindex(c.index)
        prio = pr.where(pr.notna() & (pr.astype(str) != ""), "").astype(str)
    out = pd.DataFrame(index=c.index)
    out["density"] = c["density"]
    out["sparse"] = c["density"] < density_max
    out["covered"] = flags
    if need_quantile_min is None:
        out["high_need"] = False
    else:
        cut = float(c["need_index"].quantile(need_quantile_min))
        out["high_need"] = c["need_index"] >= cut - _TOL
    out["priority"] = prio != ""
    out["excluded"] = out.index.isin(excl)
    extra = out["priority"] | (out["high_need"] if serve_covered else False)
    out["eligible"] = out["sparse"] & ~out["excluded"] & (~out["covered"] | extra)
    reason = np.where(
        ~out["covered"],
        "uncovered",
        np.where(out["priority"], "priority", np.where(out["high_need"], "covered", "")),
    )
    out["reason"] = np.where(out["eligible"], reason, "")
    out["priority_reasons"] = prio
    return out


# --------------------------------------------------------------------------------------
# Assignment model
# --------------------------------------------------------------------------------------
def _minutes_matrix(xy: pd.DataFrame, settings: Settings) -> np.ndarray:
    """Square minutes matrix between points (index order) by the crow-fly model."""
    od = access.od_crowfly(xy, xy, max_minutes=1e9, settings=settings)
    wide = od.pivot(index="origin_id", columns="destination_id", values="minutes")
    ids = xy.index.astype(str)
    return wide.reindex(index=ids, columns=ids).fillna(0.0).to_numpy(dtype=float)


def _solve(
    c: np.ndarray, integrality: np.ndarray, constraints: list[LinearConstraint], settings: Settings
):
    res, _ = solve_milp(
        c,
        integrality=integrality,
        lb=0,
        ub=1,
        constraints=constraints,
        time_limit_s=settings.milp_time_limit_s,
    )
    return res


def _assign(
    elig: pd.DataFrame,
    pairs: pd.DataFrame,
    serve: pd.DataFrame,
    targets: pd.DataFrame,
    *,
    n_posts: int,
    fits: Callable[[str, list[str]], bool],
    budget: float,
    min_stop_hours: float,
    slots: int,
    min_stops: int,
    priority: str,
    settings: Settings,
) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Capacitated maximal covering with lazy cuts (*Circuits* in docs/methods_itinerant.md).

    ``pairs`` (``stop``, ``base``, ``minutes``): allowed assignments (bases that can
    gather ``min_stops`` stops only); ``serve``
    (``unit``, ``stop``): a stop within the threshold of a target unit; ``targets``
    (index unit id; ``need``, ``uncovered``): the rows whose service is counted.
    Returns ``{base_id: [stop id…]}`` and the solver record.
    """
    bases = pd.Index(sorted(pairs["base"].unique()))
    ei = pd.Index(elig.index)
    ti = pd.Index(targets.index)
    nb, npair, nt = len(bases), len(pairs), len(ti)
    bpos = bases.get_indexer(pairs["base"])
    spos = ei.get_indexer(pairs["stop"])
    mins = pairs["minutes"].to_numpy(dtype=float)
    nv = nb + npair + nt
    yi = nb + np.arange(npair)
    zi = nb + npair + np.arange(nt)
    w_t = targets["need"].to_numpy(dtype=float)
    u_t = targets["uncovered"].to_numpy(dtype=bool)
    # cover[t, p] = 1 when the stop of pair p is within the threshold of target t
    sp = pd.DataFrame({"stop": pairs["stop"].to_numpy(), "p": np.arange(npair)})
    link = serve.merge(sp, on="stop")
    cover = sparse.csr_matrix(
        (np.ones(len(link)), (ti.get_indexer(link["unit"]), link["p"].to_numpy())),
        shape=(nt, npair),
    )
    rows: list[sparse.csr_matrix] = []
    lows: list[np.ndarray] = []
    highs: list[np.ndarray] = []

    def block(r, cidx, vals, nrows, lo, hi):
        rows.append(sparse.csr_matrix((vals, (r, cidx)), shape=(nrows, nv)))
        lows.append(np.broadcast_to(lo, nrows).astype(float))
        highs.append(np.broadcast_to(hi, nrows).astype(float))

    # each eligible commune in at most one circuit
    block(spos, yi, np.ones(npair), len(ei), -np.inf, 1)
    # y_ij <= x_j
    r = np.arange(npair)
    block(np.r_[r, r], np.r_[yi, bpos], np.r_[np.ones(npair), -np.ones(npair)], npair, -np.inf, 0)
    # necessary time budget per base
    block(
        np.r_[bpos, np.arange(nb)],
        np.r_[yi, np.arange(nb)],
        np.r_[min_stop_hours + mins / 60.0, -np.full(nb, budget)],
        nb,
        -np.inf,
        0,
    )
    # cardinality: at most the slots, and at most the number of its nearest stops whose
    # necessary time fits (implied for integers, tightens the LP relaxation)
    cap = np.zeros(nb)
    for j in range(nb):
        need_h = np.sort(min_stop_hours + mins[bpos == j] / 60.0)
        cap[j] = min(slots, int(np.searchsorted(np.cumsum(need_h), budget + _TOL, "right")))
    block(
        np.r_[bpos, np.arange(nb)],
        np.r_[yi, np.arange(nb)],
        np.r_[np.ones(npair), -cap],
        nb,
        -np.inf,
        0,
    )
    # no base without min_stops stops (that count: pairs["counts"]): min_stops · x_j <= Σ y_ij
    counted = pairs["counts"].to_numpy(float) if "counts" in pairs else np.ones(npair)
    block(
        np.r_[bpos, np.arange(nb)],
        np.r_[yi, np.arange(nb)],
        np.r_[-counted, np.full(nb, float(min_stops))],
        nb,
        -np.inf,
        0,
    )
    # at most n_posts bases
    block(np.zeros(nb, dtype=int), np.arange(nb), np.ones(nb), 1, -np.inf, n_posts)
    # a target is served only when a chosen stop lies within the threshold of it
    cl = cover.tocoo()
    block(
        np.r_[cl.row, np.arange(nt)],
        np.r_[nb + cl.col, zi],
        np.r_[-np.ones(cl.nnz), np.ones(nt)],
        nt,
        -np.inf,
        0,
    )
    base_cons = LinearConstraint(
        sparse.vstack(rows).tocsr(), np.concatenate(lows), np.concatenate(highs)
    )
    cuts: list[np.ndarray] = []
    integrality = np.r_[np.ones(nb + npair), np.zeros(nt)]  # z = min(1, cover · y)
    record: dict[str, Any] = {
        "solves": 0,
        "cuts": 0,
        "n_variables": nv,
        "n_bases_considered": nb,
        "n_pairs": npair,
        "time_limit_s": settings.milp_time_limit_s,
        "status": "optimal",
    }

    def cut_constraint() -> list[LinearConstraint]:
        if not cuts:
            return []
        m = sparse.csr_matrix(
            (
                np.ones(sum(len(q) for q in cuts)),
                (
                    np.repeat(np.arange(len(cuts)), [len(q) for q in cuts]),
                    np.concatenate(cuts) + nb,
                ),
            ),
            shape=(len(cuts), nv),
        )
        return [LinearConstraint(m, -np.inf, np.array([len(q) - 1 for q in cuts], float))]

    def run(c: np.ndarray, extra: list[LinearConstraint]) -> Any:
        while True:
            res = _solve(c, integrality, [base_cons, *extra, *cut_constraint()], settings)
            record["solves"] += 1
            if res.x is None:
                raise PlacementError(
                    "itinerant_circuits",
                    [
                        f"the circuit model has no solution (HiGHS: {res.message}); fix: raise "
                        "max_stop_minutes or settings.milp_time_limit_s"
                    ],
                )
            if milp_status(res) == "time_limit":
                record["status"] = "time_limit"
                log.warning(
                    "itinerant: HiGHS stopped at the time limit (%g s): circuits are the "
                    "best found, not proven optimal",
                    settings.milp_time_limit_s,
                )
            y = np.round(res.x[nb : nb + npair]).astype(bool)
            new_cuts = 0
            for j in np.unique(bpos[y]):
                sel = np.flatnonzero(y & (bpos == j))
                stops = sorted(pairs["stop"].iloc[sel])
                if not fits(bases[j], stops):
                    # shrink to an irreducible infeasible set (nearest stops tried
                    # first): a stronger cut, still valid for every superset
                    core = list(sel[np.argsort(mins[sel], kind="stable")])
                    for p in list(core):
                        rest = [q for q in core if q != p]
                        if rest and not fits(bases[j], sorted(pairs["stop"].iloc[rest])):
                            core = rest
                    cuts.append(np.array(sorted(core)))
                    new_cuts += 1
            record["cuts"] = len(cuts)
            if not new_cuts:
                return res

    def keep(weights: np.ndarray, value: float) -> LinearConstraint:
        # weights · z >= value (less the solver tolerance), as -weights · z <= -value
        return keep_objective(-np.r_[np.zeros(nb + npair), weights], -value)

    def served(res: Any) -> np.ndarray:
        y = np.round(res.x[nb : nb + npair])
        return np.minimum(1.0, cover @ y)

    kept: list[LinearConstraint] = []
    wu = np.where(u_t, w_t, 0.0)
    if priority == "uncovered":
        # phase 1: most need of uncovered rows served
        r = run(np.r_[np.zeros(nb + npair), -wu], kept)
        z0 = float(wu @ served(r))
        kept.append(keep(wu, z0))
    # phase 2: most need served (within phase 1's optimum)
    r1 = run(np.r_[np.zeros(nb + npair), -w_t], kept)
    z1 = float(w_t @ served(r1))
    record["objective"] = z1
    record["objective_uncovered"] = float(wu @ served(r1))
    kept.append(keep(w_t, z1))
    # phase 3: same need, least base→stop minutes (+ 0.01 min a stop: no idle stop),
    # then earliest bases
    rank = np.arange(nb, dtype=float) / max(nb, 1)
    r2 = run(np.r_[1e-3 * rank, mins + 0.01, np.zeros(nt)], kept)
    x = np.round(r2.x)
    y = x[nb : nb + npair].astype(bool)
    circuits: dict[str, list[str]] = {}
    for j in np.unique(bpos[y]):
        circuits[str(bases[j])] = sorted(pairs["stop"].iloc[np.flatnonzero(y & (bpos == j))])
    return circuits, record


def _base_table(
    c: pd.DataFrame,
    xy: pd.DataFrame,
    bases: Sequence[str] | None,
    base_sites: pd.DataFrame | None,
    groups: pd.Series | None,
) -> tuple[pd.Index, pd.DataFrame, pd.Series, pd.Series | None, pd.Series | None]:
    """Base ids, points, names and territories; territories of the rows (None when the
    bases are not restricted to the territory of their stops)."""
    if base_sites is None:
        base_ids = c.index if bases is None else _ids(bases, c.index, "bases")
        bxy = xy.loc[base_ids]
        base_names = c.loc[base_ids, "nom"]
        base_groups = None if groups is None else groups.reindex(base_ids)
    else:
        missing_cols = [k for k in ("nom", "x", "y") if k not in base_sites.columns]
        if missing_cols:
            raise ValidationError(
                "base_sites", [f"missing column(s) {missing_cols}; fix: index id; nom, x, y"]
            )
        bs = base_sites.copy()
        bs.index = bs.index.astype(str)
        base_ids = bs.index if bases is None else _ids(bases, bs.index, "bases")
        bxy = bs.loc[base_ids, ["x", "y"]].astype(float)
        base_names = bs.loc[base_ids, "nom"]
        base_groups = bs.loc[base_ids, "groups"] if "groups" in bs.columns else None
    stop_groups = None
    if groups is not None and base_groups is not None:
        stop_groups = groups.copy()
        stop_groups.index = stop_groups.index.astype(str)
        stop_groups = stop_groups.reindex(c.index)
    return base_ids, bxy, base_names, base_groups, stop_groups


def _same_territory(
    stops: Sequence[str], bases: Sequence[str], sg: pd.Series | None, bg: pd.Series | None
) -> np.ndarray:
    """True where stop and base share a territory (all True without territories)."""
    if sg is None or bg is None:
        return np.ones(len(stops), dtype=bool)
    sd, bd = sg.to_dict(), bg.to_dict()
    return np.array(
        [bool(set(sd.get(a) or ()) & set(bd.get(b) or ())) for a, b in zip(stops, bases)],
        dtype=bool,
    )


def _stop_reason(info: pd.DataFrame, s: str, thr_txt: str, minutes: pd.Series | None) -> str:
    """French reason why row ``s`` is a stop (beyond the threshold, priority, covered)."""
    code = info.loc[s, "reason"]
    if code == "uncovered":
        m = None if minutes is None else minutes.get(s)
        return _fr.STOP_REASON_UNCOVERED.format(
            threshold=thr_txt, minutes="" if m is None else f" ({_fr.minutes(m)})"
        )
    if code == "priority":
        return _fr.STOP_REASON_PRIORITY.format(
            reasons=info.loc[s, "priority_reasons"], threshold=thr_txt
        )
    return _fr.STOP_REASON_COVERED.format(threshold=thr_txt)


def _served_table(
    xy: pd.DataFrame,
    stop_ids: list[str],
    covered: pd.Series,
    threshold: float,
    settings: Settings,
) -> pd.DataFrame:
    """Nearest stop of every row and whether it is served (a stop within the threshold)."""
    served = pd.DataFrame(index=xy.index, columns=SERVED_COLUMNS)
    if stop_ids:
        near_stop = access.nearest_crowfly(xy, xy.loc[stop_ids], settings=settings)
        served["minutes_to_stop"] = near_stop["minutes"].reindex(xy.index).astype(float)
        served["nearest_stop"] = near_stop["nearest_id"].reindex(xy.index).astype(str)
    else:
        served["minutes_to_stop"] = np.inf
        served["nearest_stop"] = None
    served["served"] = served["minutes_to_stop"].astype(float) <= threshold
    served["newly_served"] = served["served"] & ~covered.reindex(xy.index).astype(bool)
    return served


def _dropped_table(
    c: pd.DataFrame,
    info: pd.DataFrame,
    drop_ids: list[str],
    *,
    xy: pd.DataFrame,
    cxy: pd.DataFrame,
    base_of: dict[str, str],
    territories: tuple[pd.Series | None, pd.Series | None],
    max_stop_minutes: float,
    no_post: bool,
    too_few: set[str],
    taken: set[str],
    settings: Settings,
) -> pd.DataFrame:
    """Eligible rows no circuit serves, with the reason (see :data:`REASON_LABELS`):
    ``no_post`` when no post is asked, ``too_few_stops`` for the rows in ``too_few``
    (within reach of bases of their territory, none of which can gather
    ``min_stops`` stops), else from the nearest chosen base of their territory;
    ``stops_taken`` instead of ``out_of_reach`` / ``other_territory`` for the rows in
    ``taken`` (a post is left and a base that could gather ``min_stops`` stops is
    within reach: its other stops are in other circuits)."""
    drows = []
    near = pd.DataFrame()
    if drop_ids and base_of:
        od_b = access.od_crowfly(xy.loc[drop_ids], cxy, max_minutes=1e9, settings=settings)
        ok = _same_territory(
            list(od_b["origin_id"]),
            [base_of[k] for k in od_b["destination_id"]],
            *territories,
        )
        od_b = od_b[ok].sort_values(["origin_id", "minutes", "destination_id"], kind="stable")
        near = od_b.drop_duplicates("origin_id").set_index("origin_id")
    for s in drop_ids:
        if no_post:
            reason, nb, nm = "no_post", None, np.nan
        elif s in too_few:
            reason, nb, nm = "too_few_stops", None, np.nan
        elif not base_of:
            reason, nb, nm = "out_of_reach", None, np.nan
        elif s not in near.index:
            reason, nb, nm = "other_territory", None, np.nan
        else:
            nb = str(near.loc[s, "destination_id"])
            nm = float(near.loc[s, "minutes"])
            reason = "circuit_full" if nm <= max_stop_minutes + _TOL else "out_of_reach"
        if s in taken and reason in ("out_of_reach", "other_territory"):
            reason = "stops_taken"
        if s in near.index and reason in ("too_few_stops", "stops_taken"):
            nb, nm = str(near.loc[s, "destination_id"]), float(near.loc[s, "minutes"])
        drows.append(
            {
                "insee": s,
                "nom": c.loc[s, "nom"],
                "population": int(round(float(c.loc[s, "population"]))),
                "density": c.loc[s, "density"],
                "need": c.loc[s, "need"],
                "need_index": c.loc[s, "need_index"],
                "covered": bool(info.loc[s, "covered"]),
                "high_need": bool(info.loc[s, "high_need"]),
                "reason": reason,
                "nearest_base": nb,
                "minutes_to_nearest_base": nm,
            }
        )
    dropped = pd.DataFrame(drows, columns=DROPPED_COLUMNS)
    if len(dropped):
        dropped = dropped.sort_values(
            ["need", "insee"], ascending=[False, True], kind="stable"
        ).reset_index(drop=True)
    return dropped


# --------------------------------------------------------------------------------------
# Main entry point
# --------------------------------------------------------------------------------------
def itinerant_circuits(
    communes: gpd.GeoDataFrame,
    *,
    n_posts: int,
    settings: Settings = DEFAULT,
    covered: pd.Series | str = "covered_before",
    exclude: Sequence[str] | None = None,
    bases: Sequence[str] | None = None,
    max_stop_minutes: float | None = None,
    density_max: float | None = None,
    need_quantile_min: float | None = NEED_QUANTILE_MIN,
    min_stop_hours: float | None = None,
    days_per_week: int | None = None,
    half_days_per_day: int = HALF_DAYS_PER_DAY,
    min_stops: int | None = None,
    priority: str = PRIORITY,
    threshold: float | None = None,
    priority_reasons: pd.Series | None = None,
    serve_covered: bool | None = None,
    base_sites: pd.DataFrame | None = None,
    groups: pd.Series | None = None,
    minutes: pd.Series | None = None,
) -> ItinerantResult:
    """Circuits, stop order and weekly timetable of ``n_posts`` itinerant posts.

    Parameters
    ----------
    communes : GeoDataFrame
        ``plan.communes`` (:func:`cnfs_geo.plan.run`): index ``insee`` (str);
        ``nom``, ``population``, ``density`` (inhabitants/km²), ``need``
        (need-weighted population), ``need_index``, ``chef_lieu_x`` /
        ``chef_lieu_y`` (working CRS, metres; stops and bases are at the chef-lieu),
        the coverage column named by ``covered``; ``geometry`` (its CRS is the output
        CRS).
    n_posts : int
        Itinerant posts (circuits) to create, >= 0. Fewer circuits are returned when
        fewer bases are useful (every eligible commune served); the record says so.
    settings : Settings
        ``weekly_hours`` and ``coordination_share`` (budget
        ``advisor_hours_per_post``), ``detour_factor`` and ``speed_kmh`` (travel),
        ``milp_time_limit_s``; ``itinerant_*`` defaults of the arguments below.
    covered : str or Series of bool
        Coverage flags (see :func:`eligible_communes`).
    exclude : list of str, optional
        INSEE codes that must not be stops (e.g. communes with a fixed post).
    bases : list of str, optional
        INSEE codes allowed as bases (default: every commune).
    max_stop_minutes : float
        Longest drive base → stop (default ``settings.itinerant_max_stop_minutes``, 25).
    density_max, need_quantile_min
        Eligibility (see :func:`eligible_communes`).
    min_stop_hours : float
        Least hours on site of one visit (default ``settings.itinerant_min_stop_hours``,
        2.5 h of a 3.5 h half-day).
    days_per_week, half_days_per_day : int
        Slots of the week (defaults ``settings.itinerant_days_per_week``, 5, and 2;
        ``half_days_per_day`` is 1 or 2).
    min_stops : int, optional
        Least number of stops of a circuit (default ``settings.itinerant_min_stops``,
        2: one stop all week is a fixed post), 1 … slots. Bases that cannot gather
        that many stops within reach are not opened; units only they could take are
        ``dropped`` as ``too_few_stops``.
    priority : {"uncovered", "need"}
        ``uncovered`` (default :data:`PRIORITY`): first the most need of *uncovered*
        eligible communes, then the most need in all; ``need``: the most need in all.
    threshold : float, optional
        Coverage threshold (default ``settings.threshold_minutes``): a row is
        *served* when a stop lies within it (see ``ItinerantResult.served``).
    priority_reasons, serve_covered
        Eligibility of covered rows (see :func:`eligible_communes`).
    base_sites : DataFrame, optional
        Possible bases when they are not rows of ``communes`` (e.g. commune
        chef-lieux for demand units): index id; ``nom``, ``x``, ``y`` (working CRS)
        and optionally ``groups``. Default: the rows of ``communes`` (``bases``).
    groups : Series of tuple of str, optional
        Territories of each row (e.g. ``("epci:200071165", "cluster:G01")``); with a
        ``groups`` column in ``base_sites`` a stop may only go to a base sharing one
        of them (the base lies in the EPCI or gap cluster it serves).
    minutes : Series of float, optional
        Minutes to the nearest place or fixed post of each row, shown in the stop
        reasons.

    Returns
    -------
    ItinerantResult
        ``circuits``, ``timetable``, ``stops``, ``dropped``, ``eligibility``,
        ``parameters``, ``solution`` (columns documented on
        :class:`ItinerantResult`).

    Raises
    ------
    ValidationError
        Missing or invalid columns, unknown INSEE codes in ``exclude`` / ``bases``.
    PlacementError
        Bad ``n_posts``, ``max_stop_minutes``, ``min_stop_hours``, week shape,
        ``min_stops``, ``density_max``, ``need_quantile_min``; no eligible commune.
    """
    n_posts = _count(n_posts, "n_posts", "the number of itinerant posts, e.g. n_posts=2", low=0)
    if max_stop_minutes is None:
        max_stop_minutes = settings.itinerant_max_stop_minutes
    if min_stop_hours is None:
        min_stop_hours = settings.itinerant_min_stop_hours
    if days_per_week is None:
        days_per_week = settings.itinerant_days_per_week
    if density_max is None:
        density_max = settings.itinerant_density_max
    max_stop_minutes = _positive(
        max_stop_minutes,
        "max_stop_minutes",
        f"minutes from the base, e.g. {DEFAULT.itinerant_max_stop_minutes:g}",
    )
    min_stop_hours = _positive(
        min_stop_hours,
        "min_stop_hours",
        f"weekly hours per stop, e.g. {DEFAULT.itinerant_min_stop_hours:g} (a half-day)",
    )
    days_per_week = _count(
        days_per_week, "days_per_week", "e.g. 5 (lundi … vendredi)", low=1, high=7
    )
    half_days_per_day = _count(
        half_days_per_day, "half_days_per_day", "1 or 2 (morning, afternoon)", low=1, high=2
    )
    min_stops = _count(
        settings.itinerant_min_stops if min_stops is None else min_stops,
        "min_stops",
        f"stops of a circuit, e.g. {DEFAULT.itinerant_min_stops} (1 allows a single stop)",
        low=1,
        high=days_per_week * half_days_per_day,
    )
    if priority not in ("uncovered", "need"):
        raise PlacementError(
            "priority",
            [
                f"priority={priority!r} is unknown; fix: use "
                "'uncovered' (communes without offer first) or "
                "'need' (need only)"
            ],
        )
    budget = settings.advisor_hours_per_post
    if min_stop_hours > budget:
        raise PlacementError(
            "min_stop_hours",
            [
                f"min_stop_hours={min_stop_hours:g} h exceeds the weekly budget of a post "
                f"({budget:g} h = {settings.weekly_hours:g} h × "
                f"(1 − {settings.coordination_share:g})); "
                f"fix: lower min_stop_hours (a half-day is {DEFAULT.itinerant_min_stop_hours:g} h)"
            ],
        )
    threshold = _positive(
        settings.threshold_minutes if threshold is None else threshold,
        "threshold",
        f"coverage threshold in minutes, e.g. {DEFAULT.threshold_minutes:g}",
    )
    elig_table = eligible_communes(
        communes,
        covered=covered,
        density_max=density_max,
        need_quantile_min=need_quantile_min,
        exclude=exclude,
        priority=priority_reasons,
        serve_covered=serve_covered,
        settings=settings,
    )
    c, _ = _check_communes(communes, covered)
    xy = c[["chef_lieu_x", "chef_lieu_y"]].set_axis(["x", "y"], axis=1)
    base_ids, bxy, base_names, base_groups, stop_groups = _base_table(
        c, xy, bases, base_sites, groups
    )
    if len(base_ids) == 0:
        raise PlacementError(
            "bases",
            ["no base allowed; fix: give at least one INSEE code or None for every commune"],
        )
    eligible_ids = elig_table.index[elig_table["eligible"]].sort_values()
    if len(eligible_ids) == 0:
        n_sparse = int(elig_table["sparse"].sum())
        raise PlacementError(
            "communes",
            [
                f"no eligible commune: {n_sparse} commune(s) have density < {density_max:g} "
                f"inh./km², none of them uncovered"
                + (
                    ""
                    if need_quantile_min is None
                    else f" or with need_index in the top {100 * (1 - need_quantile_min):.0f} %"
                )
                + " and not excluded; fix: raise density_max, lower need_quantile_min, or shorten "
                "the exclude list"
            ],
        )
    slots = days_per_week * half_days_per_day
    crs = communes.crs if isinstance(communes, gpd.GeoDataFrame) else None
    info = c.join(elig_table[["covered", "high_need", "priority", "reason", "priority_reasons"]])
    thr_txt = _fr.number(threshold, trim=True)

    def stop_reason(s: str) -> str:
        return _stop_reason(info, s, thr_txt, minutes)

    parameters = {
        "n_posts": n_posts,
        "max_stop_minutes": max_stop_minutes,
        "density_max": density_max,
        "density_measure": "population légale COG 2026 / aire du polygone (km², CRS de travail)",
        "need_quantile_min": need_quantile_min,
        "need_index_min": (
            None
            if need_quantile_min is None
            else float(c["need_index"].quantile(need_quantile_min))
        ),
        "covered": covered if isinstance(covered, str) else (covered.name or "series"),
        "priority": priority,
        "threshold_minutes": threshold,
        "served_definition": _fr.SERVED_DEFINITION.format(threshold=thr_txt),
        "serve_covered": bool(
            settings.itinerant_serve_covered if serve_covered is None else serve_covered
        ),
        "bases_restricted_to_territory": stop_groups is not None,
        "min_stop_hours": min_stop_hours,
        "days_per_week": days_per_week,
        "half_days_per_day": half_days_per_day,
        "slots_per_week": slots,
        "min_stops": min_stops,
        "weekly_hours": settings.weekly_hours,
        "coordination_share": settings.coordination_share,
        "budget_hours": budget,
        "travel_model": access.travel_model_label(settings),
        "travel_points": "chef-lieu (mairie)",
        "day_travel": "tournée du jour base → matin → "
        "après-midi → base, jours appariés au plus court (exact)",
        "excluded": int(elig_table["excluded"].sum()),
        "sparse": int(elig_table["sparse"].sum()),
        "eligible": int(len(eligible_ids)),
        "eligible_population": int(c.loc[eligible_ids, "population"].sum()),
        "eligible_need": float(c.loc[eligible_ids, "need"].sum()),
    }

    # ---- reach: eligible stop within max_stop_minutes of a base (of its territory)
    pairs = access.od_crowfly(
        xy.loc[eligible_ids], bxy, max_minutes=max_stop_minutes, settings=settings
    )
    pairs = pairs.rename(columns={"origin_id": "stop", "destination_id": "base"})
    pairs = pairs[
        _same_territory(list(pairs["stop"]), list(pairs["base"]), stop_groups, base_groups)
    ]
    pairs = pairs.sort_values(["base", "stop"], kind="stable").reset_index(drop=True)
    # ---- bases that can gather min_stops stops: enough stops within reach whose
    # necessary times (min_stop_hours + minutes base → stop) fit the budget together
    # stops that count towards min_stops: with priority "uncovered", only stops beyond the
    # threshold (a covered priority stop cannot turn a one-village circuit into a circuit)
    if priority == "uncovered":
        counts = ~elig_table["covered"].reindex(pairs["stop"]).to_numpy(bool)
    else:
        counts = np.ones(len(pairs), dtype=bool)
    pairs = pairs.assign(counts=counts)
    reachable, n_reaching = set(pairs["stop"]), int(pairs["base"].nunique())
    if min_stops > 1 and len(pairs):
        need_h = (min_stop_hours + pairs["minutes"] / 60.0).to_numpy(float)
        cnt = pairs["counts"].to_numpy(bool)
        viable = {
            b: int(cnt[ix].sum()) >= min_stops
            and np.sort(need_h[ix[cnt[ix]]])[:min_stops].sum() <= budget + _TOL
            for b, ix in pairs.groupby("base").indices.items()
        }
        pairs = pairs[pairs["base"].map(viable).to_numpy(bool)].reset_index(drop=True)
    too_few = reachable - set(pairs["stop"])
    parameters["bases_too_few_stops"] = n_reaching - int(pairs["base"].nunique())
    # ---- service: targets (uncovered rows, and eligible ones) within the threshold
    is_target = (~elig_table["covered"] & ~elig_table["excluded"]) | elig_table["eligible"]
    target_ids = elig_table.index[is_target].sort_values()
    targets = pd.DataFrame(
        {
            "need": c.loc[target_ids, "need"].to_numpy(float),
            "uncovered": ~elig_table.loc[target_ids, "covered"].to_numpy(bool),
        },
        index=target_ids,
    )
    serve = access.od_crowfly(
        xy.loc[target_ids], xy.loc[eligible_ids], max_minutes=threshold, settings=settings
    ).rename(columns={"origin_id": "unit", "destination_id": "stop"})
    serve_m = serve.loc[serve["minutes"] <= threshold, ["unit", "stop", "minutes"]]
    serve_m = serve_m.assign(
        need=targets["need"].reindex(serve_m["unit"]).to_numpy(float),
        uncovered=targets["uncovered"].reindex(serve_m["unit"]).to_numpy(bool),
    )
    serve = serve_m[["unit", "stop"]]

    def served_need(stops: list[str], covered_weight: float = 1.0) -> list[float]:
        """Need of the targets each stop serves (nearest of the circuit's stops): visits
        follow the people a permanence serves, not only those of its own unit. Covered
        (priority) targets count ``covered_weight`` times their need: the week uses
        ``COVERED_VISIT_WEIGHT`` so that extra half-days go to the people beyond the
        threshold before any already-covered unit."""
        sub = serve_m[serve_m["stop"].isin(stops)]
        sub = sub.sort_values(["unit", "minutes", "stop"], kind="stable").drop_duplicates("unit")
        w = np.where(sub["uncovered"], 1.0, covered_weight) * sub["need"].to_numpy(float)
        by = pd.Series(w, index=sub.index).groupby(sub["stop"]).sum()
        return [max(float(by.get(x, 0.0)), _TOL) for x in stops]

    cache: dict[
        tuple[str, tuple[str, ...]], tuple[list[str], np.ndarray, float, WeekPlan | None]
    ] = {}

    def circuit(base: str, stops: list[str]):
        key = (base, tuple(sorted(stops)))
        if key not in cache:
            pts = pd.concat([bxy.loc[[base]], xy.loc[list(key[1])]])
            m = _minutes_matrix(
                pts.set_axis([f"{i}:{s}" for i, s in enumerate([base, *key[1]])]), settings
            )
            order, tour = tsp_order(m)
            ordered = [key[1][k - 1] for k in order]
            perm = [0, *order]
            mo = m[np.ix_(perm, perm)]
            wp = week_plan(
                mo,
                served_need(ordered, COVERED_VISIT_WEIGHT),
                budget_hours=budget,
                min_stop_hours=min_stop_hours,
                days_per_week=days_per_week,
                half_days_per_day=half_days_per_day,
            )
            cache[key] = (ordered, mo, tour, wp)
        return cache[key]

    def fits(base: str, stops: list[str]) -> bool:
        return circuit(base, stops)[3] is not None

    if n_posts == 0 or pairs.empty:
        chosen: dict[str, list[str]] = {}
        record = {
            "status": "no_post" if n_posts == 0 else "no_pair",
            "objective": 0.0,
            "objective_uncovered": 0.0,
            "solves": 0,
            "cuts": 0,
            "n_variables": 0,
            "time_limit_s": settings.milp_time_limit_s,
        }
    else:
        chosen, record = _assign(
            c.loc[eligible_ids],
            pairs,
            serve,
            targets,
            n_posts=n_posts,
            fits=fits,
            budget=budget,
            min_stop_hours=min_stop_hours,
            slots=slots,
            min_stops=min_stops,
            priority=priority,
            settings=settings,
        )

    # ---- outputs
    circ_rows = []
    for base, stops in chosen.items():
        ordered, mo, tour, wp = circuit(base, stops)
        assert wp is not None  # checked by the model's cuts
        circ_rows.append((base, ordered, mo, tour, wp))
    # ---- served: a weekly permanence within the threshold (one definition everywhere)
    stop_ids = [s for r in circ_rows for s in r[1]]
    served = _served_table(xy, stop_ids, elig_table["covered"], threshold, settings)
    # circuits sorted by the need they newly serve, then base: ids follow that order
    stop_circuit_base = {s: r[0] for r in circ_rows for s in r[1]}
    base_of_row = served["nearest_stop"].map(stop_circuit_base)
    newly = served["newly_served"].to_numpy(bool)

    def new_need(base: str) -> float:
        return float(c.loc[newly & (base_of_row == base).to_numpy(), "need"].sum())

    circ_rows.sort(key=lambda r: (-new_need(r[0]), -float(c.loc[r[1], "need"].sum()), r[0]))
    cid_of_base = {r[0]: f"I{k:02d}" for k, r in enumerate(circ_rows, start=1)}
    served["circuit_id"] = base_of_row.map(cid_of_base).where(served["served"], None)
    served["circuit_id"] = (
        served["circuit_id"].astype(object).where(served["circuit_id"].notna(), None)
    )
    stop_rows, tt_rows = [], []
    speed = settings.speed_kmh / 60.0  # km per minute of driving
    circuit_of: dict[str, str] = {}
    geoms = []
    records = []
    for k, (base, ordered, mo, tour, wp) in enumerate(circ_rows, start=1):
        cid = f"I{k:02d}"
        for s in ordered:
            circuit_of[s] = cid
        hours = [v * wp.hours_per_visit for v in wp.visits]
        weights = served_need(ordered)
        weights_unc = served_need(ordered, 0.0)
        pts = [bxy.loc[base]] + [xy.loc[s] for s in ordered] + [bxy.loc[base]]
        geoms.append(LineString([(p["x"], p["y"]) for p in pts]))
        mine = newly & (served["circuit_id"] == cid).to_numpy()
        n_empty = days_per_week - len(wp.days)
        empty_reason = ""
        if n_empty > 0:
            empty_reason = _fr.EMPTY_DAY_REASON.format(
                days=_fr.join(DAY_NAMES[len(wp.days) : days_per_week]).capitalize(),
                visits=int(sum(wp.visits)),
                min_hours=_fr.hours(min_stop_hours),
            )
        records.append(
            {
                "circuit_id": cid,
                "base_insee": base,
                "base_nom": base_names.loc[base],
                "stops": ";".join(ordered),
                "stop_names": ";".join(c.loc[ordered, "nom"]),
                "n_stops": len(ordered),
                "population": int(round(float(c.loc[mine, "population"].sum()))),
                "need": float(c.loc[mine, "need"].sum()),
                "units_served": int(mine.sum()),
                "population_stops": int(round(float(c.loc[ordered, "population"].sum()))),
                "visits": int(sum(wp.visits)),
                "hours_per_visit": wp.hours_per_visit,
                "hours_at_stops": float(sum(hours)),
                "minutes_per_week": wp.travel_minutes,
                "km_per_week": wp.travel_minutes * speed,
                "budget_hours": budget,
                "tour_minutes": tour,
                "tour_km": tour * speed,
                "max_minutes_from_base": float(mo[0, 1:].max()),
                "empty_days": int(n_empty),
                "empty_days_reason": empty_reason,
            }
        )
        if n_empty > 0:
            log.warning("itinerant %s: %s", cid, empty_reason)
        for pos, s in enumerate(ordered):
            stop_rows.append(
                {
                    "circuit_id": cid,
                    "order": pos + 1,
                    "insee": s,
                    "nom": c.loc[s, "nom"],
                    "population": int(round(float(c.loc[s, "population"]))),
                    "density": c.loc[s, "density"],
                    "need": c.loc[s, "need"],
                    "need_index": c.loc[s, "need_index"],
                    "covered": bool(info.loc[s, "covered"]),
                    "high_need": bool(info.loc[s, "high_need"]),
                    "priority": bool(info.loc[s, "priority"]),
                    "reason": stop_reason(s),
                    "need_served": weights[pos],
                    "need_served_uncovered": weights_unc[pos],
                    "minutes_from_base": float(mo[0, pos + 1]),
                    "km_from_base": float(mo[0, pos + 1]) * speed,
                    "visits": int(wp.visits[pos]),
                    "hours": hours[pos],
                    "geometry": Point(xy.loc[s, "x"], xy.loc[s, "y"]),
                }
            )
        for d, day in enumerate(wp.days):
            nodes = [p + 1 for p in day]
            if len(day) == 1:
                legs = [mo[0, nodes[0]] + mo[nodes[0], 0]]
            else:
                legs = [mo[0, nodes[0]], mo[nodes[0], nodes[1]] + mo[nodes[1], 0]]
            for h, (p, leg) in enumerate(zip(day, legs)):
                s = ordered[p]
                tt_rows.append(
                    {
                        "circuit_id": cid,
                        "day_index": d + 1,
                        "day": DAY_NAMES[d],
                        "half_day": HALF_DAY_NAMES[h],
                        "insee": s,
                        "nom": c.loc[s, "nom"],
                        "hours": wp.hours_per_visit,
                        "travel_minutes": float(leg),
                        "travel_km": float(leg) * speed,
                        "reason": stop_reason(s),
                    }
                )

    circuits = gpd.GeoDataFrame(
        pd.DataFrame(records, columns=CIRCUIT_COLUMNS[:-1]),
        geometry=gpd.GeoSeries(geoms, crs=crs),
        crs=crs,
    )
    stops_gdf = gpd.GeoDataFrame(
        pd.DataFrame(stop_rows, columns=STOP_COLUMNS), geometry="geometry", crs=crs
    )
    timetable = pd.DataFrame(tt_rows, columns=TIMETABLE_COLUMNS)

    # ---- dropped: eligible rows no circuit serves, with the reason
    base_of = {f"I{k:02d}": r[0] for k, r in enumerate(circ_rows, start=1)}
    dropped = _dropped_table(
        c,
        info,
        [s for s in eligible_ids if not bool(served.loc[s, "served"])],
        xy=xy,
        cxy=bxy.loc[list(base_of.values())].set_axis(list(base_of.keys())),
        base_of=base_of,
        territories=(stop_groups, base_groups),
        max_stop_minutes=max_stop_minutes,
        no_post=n_posts == 0,
        too_few=too_few,
        taken=(
            set(pairs.loc[~pairs["base"].isin(list(chosen)), "stop"])
            if min_stops > 1 and n_posts > len(chosen)
            else set()
        ),
        settings=settings,
    )
    eligibility = elig_table.copy()
    eligibility["circuit_id"] = pd.Series(circuit_of, dtype=object).reindex(eligibility.index)
    eligibility["circuit_id"] = (
        eligibility["circuit_id"].astype(object).where(eligibility["circuit_id"].notna(), None)
    )

    parameters.update(
        {
            "circuits": len(circuits),
            "stops": int(len(stops_gdf)),
            "dropped": int(len(dropped)),
            "posts_unused": n_posts - len(circuits),
        }
    )
    if n_posts > len(circuits):
        log.warning(
            "itinerant: %d post(s) asked, %d circuit(s) useful (every reachable "
            "eligible unit is served, or no other base gathers %d stops)",
            n_posts,
            len(circuits),
            min_stops,
        )
    if len(dropped):
        log.info(
            "itinerant: %d eligible commune(s) not served: %s",
            len(dropped),
            dict(dropped["reason"].value_counts().sort_index()),
        )
    log.info(
        "itinerant: %d circuit(s), %d stop(s), %d inhabitants, need %.0f of %.0f eligible; "
        "%.0f km/week in all",
        len(circuits),
        len(stops_gdf),
        int(circuits["population"].sum()) if len(circuits) else 0,
        float(circuits["need"].sum()) if len(circuits) else 0.0,
        parameters["eligible_need"],
        float(circuits["km_per_week"].sum()) if len(circuits) else 0.0,
    )
    return ItinerantResult(
        circuits=circuits,
        timetable=timetable,
        stops=stops_gdf,
        dropped=dropped,
        eligibility=eligibility,
        served=served,
        parameters=parameters,
        solution=dict(record),
    )


# --------------------------------------------------------------------------------------
# In a plan: demand units in, served columns out
# --------------------------------------------------------------------------------------
def units_inputs(
    communes: gpd.GeoDataFrame, units: gpd.GeoDataFrame
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """The demand units of a plan as :func:`itinerant_circuits` reads them.

    Parameters
    ----------
    communes : GeoDataFrame
        ``plan.communes`` (``nom``, ``epci``, ``density``, ``chef_lieu_x``/``_y``,
        ``gap_cluster``, ``priority_gap``, ``gap_reasons``).
    units : GeoDataFrame
        ``plan.units`` with ``covered_after``.

    Returns
    -------
    frame : GeoDataFrame
        Index ``unit_id``; ``nom``, ``population``, ``need``, ``need_index``,
        ``density`` (the unit's population / area, its commune's where the area is
        unknown), ``chef_lieu_x``/``chef_lieu_y`` (the unit's point: where its people
        are counted and where a permanence is held), ``covered_after``, ``geometry``.
    base_sites : DataFrame
        Possible bases: the communes' chef-lieux (index ``insee``; ``nom``, ``x``,
        ``y``, ``groups``).
    groups : Series
        Territories of each unit: ``("epci:<siren>", "cluster:<id>")``.
    reasons : Series
        ``gap_reasons`` of the units whose commune is a priority gap ("" otherwise).
    """
    com = communes.loc[units["insee"].astype(str)]
    area = pd.to_numeric(units.get("area_km2"), errors="coerce")
    density = (units["population"] / area).where(area > 0, com["density"].to_numpy())
    frame = gpd.GeoDataFrame(
        {
            "nom": units["nom"].astype(str),
            "population": units["population"].astype(float),
            "need": units["need"].astype(float),
            "need_index": units["need_index"].astype(float),
            "density": density.astype(float),
            "chef_lieu_x": units["x"].astype(float),
            "chef_lieu_y": units["y"].astype(float),
            "covered_after": units["covered_after"].astype(bool),
        },
        geometry=units.geometry,
        crs=units.crs,
    )
    frame.index = units.index.astype(str)

    def terr(epci: Any, cluster: Any) -> tuple[str, ...]:
        out = [f"epci:{epci}"] if pd.notna(epci) else []
        return (*out, *([f"cluster:{cluster}"] if pd.notna(cluster) else []))

    cl = communes["gap_cluster"] if "gap_cluster" in communes.columns else None
    commune_groups = pd.Series(
        [
            terr(e, None if cl is None else cl.get(i))
            for i, e in zip(communes.index, communes["epci"])
        ],
        index=communes.index,
        dtype=object,
    )
    groups = pd.Series(
        commune_groups.reindex(units["insee"].astype(str)).to_numpy(), index=frame.index
    )
    base_sites = pd.DataFrame(
        {
            "nom": communes["nom"].astype(str),
            "x": communes["chef_lieu_x"].astype(float),
            "y": communes["chef_lieu_y"].astype(float),
            "groups": commune_groups,
        },
        index=communes.index.astype(str),
    )
    if "priority_gap" in communes.columns:
        gr = communes.get("gap_reasons", pd.Series("", index=communes.index)).fillna("")
        prio = gr.where(communes["priority_gap"].fillna(False).astype(bool), "")
    else:
        prio = pd.Series("", index=communes.index)
    reasons = pd.Series(prio.reindex(units["insee"].astype(str)).to_numpy(), index=frame.index)
    return frame, base_sites, groups, reasons


def served_columns(
    communes: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    circuits: gpd.GeoDataFrame,
    served: pd.DataFrame,
    *,
    commune_units: bool,
) -> None:
    """``itinerant_circuit``, ``itinerant_stop``, ``served_itinerant`` and
    ``covered_with_itinerant`` on units and communes (one definition: a weekly
    permanence within the threshold), set in place. ``served`` is
    :attr:`ItinerantResult.served` on the units; ``commune_units``: the units are the
    communes (their flags are the communes' flags)."""
    sv = served.reindex(units.index.astype(str))
    units["served_itinerant"] = sv["served"].fillna(False).astype(bool).to_numpy()
    units["itinerant_circuit"] = sv["circuit_id"].to_numpy(dtype=object)
    stop_of = {x: r.circuit_id for r in circuits.itertuples() for x in str(r.stops).split(";")}
    units["itinerant_stop"] = units.index.astype(str).map(stop_of).to_numpy(dtype=object)
    units["covered_with_itinerant"] = units["covered_after"] | units["served_itinerant"]
    pop = units["population"].astype(float)
    by = units.groupby("insee")
    share = (pop * units["covered_with_itinerant"]).groupby(units["insee"]).sum() / by[
        "population"
    ].sum().replace(0, np.nan)
    communes["pct_covered_with_itinerant"] = (100 * share.fillna(0)).reindex(communes.index)
    communes["covered_with_itinerant"] = communes["pct_covered_with_itinerant"] >= 50.0
    if commune_units:
        communes["covered_with_itinerant"] = (
            units["covered_with_itinerant"].reindex(communes.index).astype(bool)
        )
    newly = units[units["served_itinerant"] & ~units["covered_after"]]
    main = (
        newly.sort_values(["insee", "population"], ascending=[True, False], kind="stable")
        .drop_duplicates("insee")
        .set_index("insee")["itinerant_circuit"]
    )
    communes["itinerant_circuit"] = main.reindex(communes.index)
    communes["population_served_itinerant"] = (
        newly.groupby("insee")["population"].sum().reindex(communes.index).fillna(0.0)
    )


# --------------------------------------------------------------------------------------
# Fixed + itinerant under one budget
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BudgetSplit:
    """Outcome of :func:`split_budget`.

    Attributes
    ----------
    table : DataFrame
        One row per split, ``n_fixed`` = 0 … ``total_posts``: ``n_fixed``,
        ``n_itinerant``, ``need_fixed`` (need newly covered by the fixed posts),
        ``need_itinerant`` (need of itinerant stops not covered by the offer nor the
        fixed posts), ``need_reached`` (their sum), ``stops``, ``km_per_week``,
        ``cost_eur``.
    best_n_fixed : int
        Split with the most ``need_reached`` (ties: more fixed posts).
    itinerant : ItinerantResult or None
        Circuits of the best split (None when no commune is eligible there).
    """

    table: pd.DataFrame
    best_n_fixed: int
    itinerant: ItinerantResult | None


def split_budget(
    communes: gpd.GeoDataFrame,
    *,
    total_posts: int,
    fixed_coverage: Callable[[int], pd.Series],
    settings: Settings = DEFAULT,
    covered: str = "covered_before",
    **options: Any,
) -> BudgetSplit:
    """Share ``total_posts`` between fixed posts (denser places) and itinerant posts.

    For every ``n_fixed`` in 0 … ``total_posts``: the fixed posts cover what
    ``fixed_coverage(n_fixed)`` says (the caller runs e.g.
    :func:`cnfs_geo.placement.mclp_from_od` with ``p=n_fixed`` and returns
    ``result.covered``: True for communes within the threshold of the offer or a
    new fixed post), and ``total_posts − n_fixed`` itinerant posts serve the
    eligible communes with those flags as ``covered``
    (:func:`itinerant_circuits`). Both kinds cost ``settings.cost_per_post_eur``.

    The criterion is **need reached**: the need of communes that were not covered and
    now are (fixed) or have a weekly permanence (itinerant stops not covered). A
    weekly half-day at the town hall is counted like a place within the threshold:
    a modelling choice, stated in the table's ``attrs["criterion"]``.

    Parameters
    ----------
    communes : GeoDataFrame
        As for :func:`itinerant_circuits`.
    total_posts : int
        Posts funded (fixed + itinerant), >= 0.
    fixed_coverage : callable
        ``n_fixed -> Series of bool`` indexed by INSEE (every commune).
    settings : Settings
    covered : str
        Column of coverage by the existing offer (before any new post).
    **options
        Passed to :func:`itinerant_circuits` (``max_stop_minutes``, ``density_max``…).

    Returns
    -------
    BudgetSplit
    """
    total_posts = _count(total_posts, "total_posts", "posts funded, e.g. total_posts=8", low=0)
    if not callable(fixed_coverage):
        raise ValidationError(
            "fixed_coverage",
            [
                "expected a function n_fixed -> Series of bool indexed by INSEE "
                "(e.g. mclp_from_od(...).covered)"
            ],
        )
    c, before = _check_communes(communes, covered)
    rows, results = [], {}
    for n_fixed in range(total_posts + 1):
        flags = fixed_coverage(n_fixed)
        if not isinstance(flags, pd.Series):
            raise ValidationError(
                "fixed_coverage",
                [
                    f"returned {type(flags).__name__} for "
                    f"n_fixed={n_fixed}; expected a Series of "
                    "bool indexed by INSEE"
                ],
            )
        flags = flags.copy()
        flags.index = flags.index.astype(str)
        flags = flags.reindex(c.index)
        if flags.isna().any():
            raise ValidationError(
                "fixed_coverage",
                [
                    f"n_fixed={n_fixed}: no flag for {int(flags.isna().sum())} commune(s), e.g. "
                    f"{list(c.index[flags.isna()][:5])}; fix: one True/False per commune"
                ],
            )
        flags = (flags.astype(bool) | before).rename("covered_fixed")
        need_fixed = float(c.loc[flags & ~before, "need"].sum())
        n_it = total_posts - n_fixed
        try:
            r = itinerant_circuits(
                communes, n_posts=n_it, settings=settings, covered=flags, **options
            )
        except PlacementError as exc:
            if "no eligible commune" not in str(exc):
                raise
            r = None
        if r is None or r.stops.empty:
            need_it, n_stops, km = 0.0, 0, 0.0
        else:
            new = r.stops.loc[~r.stops["covered"]]
            need_it, n_stops = float(new["need"].sum()), int(len(r.stops))
            km = float(r.circuits["km_per_week"].sum())
        results[n_fixed] = r
        rows.append(
            {
                "n_fixed": n_fixed,
                "n_itinerant": n_it,
                "need_fixed": need_fixed,
                "need_itinerant": need_it,
                "need_reached": need_fixed + need_it,
                "stops": n_stops,
                "km_per_week": km,
                "cost_eur": total_posts * settings.cost_per_post_eur,
            }
        )
    table = pd.DataFrame(rows)
    table.attrs["criterion"] = (
        "need_reached = need newly within the threshold of a fixed post "
        "+ need of uncovered communes given a weekly itinerant permanence"
    )
    best = table.sort_values(
        ["need_reached", "n_fixed"], ascending=[False, False], kind="stable"
    ).iloc[0]
    best_n = int(best["n_fixed"])
    log.info(
        "split_budget: %d posts → best %d fixed + %d itinerant (need reached %.0f)",
        total_posts,
        best_n,
        total_posts - best_n,
        float(best["need_reached"]),
    )
    return BudgetSplit(table=table, best_n_fixed=best_n, itinerant=results[best_n])
