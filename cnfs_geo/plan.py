"""One scenario (settings + inputs) → one plan (every frame and figure); comparisons.

This is the only module that knows the whole pipeline::

    territory → offer → need → demand → access → coverage → gaps → placement → itinerant

Writing a plan is :mod:`cnfs_geo.outputs`; all of France is :mod:`cnfs_geo.national`.

Examples
--------
>>> from cnfs_geo.plan import Scenario, run
>>> plan = run(Scenario(departement="49", posts=8))
>>> len(plan.communes), int(plan.communes["population"].sum())
(176, 833776)
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd

from . import (
    _fr,
    _journal,
    _progress,
    access,
    catalog,
    coverage,
    demand,
    gaps,
    itinerant,
    need,
    offer,
    placement,
    roads,
    territory,
)
from ._errors import ArgumentError, ValidationError
from .settings import DEFAULT, Settings, working_crs
from .sources import one_read_per_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scenario:
    """Inputs of a plan.

    Attributes
    ----------
    departement : str
        INSEE code ("49", "2A", "974").
    posts : int or None
        New posts to place (``settings.posts`` when None).
    threshold_minutes : float or None
        Coverage threshold (``settings.threshold_minutes`` when None).
    data_dir : str or None
        Data directory (see :func:`cnfs_geo.catalog.resolve_data_dir`).
    demand_unit : {"finest", "commune", "iris", "commune2018"} or None
        Where people are counted (:func:`cnfs_geo.demand.demand_units`): the finest
        unit the data gives (``settings.demand_unit``, ``"finest"``, when None), one
        point per commune, per IRIS, or per 2018 commune (old villages of communes
        nouvelles).
    travel : {"crow-fly", "road"}
        Travel model: crow-fly × detour (offline default) or the OSM road network
        (needs ``osm_file``).
    osm_file : str or None
        OSM extract (``.osm`` XML or ``.osm.pbf``) covering the département and its
        surroundings, for ``travel="road"``.
    need_weights : None, "equal" or mapping
        Weights of the five IFN dimensions (:func:`cnfs_geo.need.need_weights`);
        None keeps the official IFN composite.
    fibre_target_pct : float or None
        Fibre what-if: FTTH rollout raised to at least this share in every commune
        before computing need (:func:`cnfs_geo.need.fibre_what_if`).
    model : {"mclp", "equity"}
        Placement model of the fixed posts: maximal covering (new need within the
        threshold, exact MILP) or the capacity/equity model (need-weighted shortfall
        below a target 2SFCA accessibility, :func:`cnfs_geo.placement.equity_from_od`,
        see ``docs/methods_placement_equity.md``).
    itinerant_posts : int
        Mutualised itinerant posts ("médiateur volant") added after the fixed posts,
        serving sparse rural communes that the fixed posts leave uncovered or whose
        fragility is in the département's top quarter
        (:func:`cnfs_geo.itinerant.itinerant_circuits`); communes hosting a new fixed
        post are never stops. The budget is ``posts + itinerant_posts`` posts.
    settings : Settings
    """

    departement: str = "49"
    posts: int | None = None
    threshold_minutes: float | None = None
    data_dir: str | None = None
    demand_unit: demand.DemandUnit | None = None
    travel: str = "crow-fly"
    osm_file: str | None = None
    need_weights: Any = None
    fibre_target_pct: float | None = None
    model: str = "mclp"
    itinerant_posts: int = 0
    settings: Settings = DEFAULT

    def __post_init__(self) -> None:
        _check_scenario_types(self)
        problems = []
        if self.demand_unit is None:
            object.__setattr__(self, "demand_unit", self.settings.demand_unit)
        if self.demand_unit not in demand.UNIT_TYPES:
            problems.append(
                f"demand_unit={self.demand_unit!r}: use one of {list(demand.UNIT_TYPES)}"
            )
        if self.travel not in ("crow-fly", "road"):
            problems.append(f"travel={self.travel!r}: use 'crow-fly' or 'road'")
        if self.travel == "road" and not self.osm_file:
            problems.append(
                "travel='road' needs osm_file (an .osm or .osm.pbf extract of the "
                "département plus a buffer, e.g. from Geofabrik)"
            )
        if self.fibre_target_pct is not None and not 0 < self.fibre_target_pct <= 100:
            problems.append(
                f"fibre_target_pct={self.fibre_target_pct!r}: give a share in (0, 100], e.g. 100"
            )
        if self.model not in ("mclp", "equity"):
            problems.append(
                f"model={self.model!r}: use 'mclp' (maximal covering) or 'equity' "
                "(capacity / accessibility shortfall)"
            )
        if not isinstance(self.itinerant_posts, int) or self.itinerant_posts < 0:
            problems.append(
                f"itinerant_posts={self.itinerant_posts!r}: give a non-negative "
                "integer (0 = fixed posts only)"
            )
        if problems:
            raise ValidationError("scenario", problems)

    @property
    def key(self) -> tuple:
        """What :func:`prepare` depends on (everything but the number of posts)."""
        return (
            self.departement,
            self.threshold,
            self.data_dir,
            self.demand_unit,
            self.travel,
            self.osm_file,
            repr(self.need_weights),
            self.fibre_target_pct,
            self.settings,
        )

    @property
    def p(self) -> int:
        return self.settings.posts if self.posts is None else int(self.posts)

    @property
    def threshold(self) -> float:
        return float(
            self.settings.threshold_minutes
            if self.threshold_minutes is None
            else self.threshold_minutes
        )


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(
        x, (bool, np.bool_)
    )


def _check_scenario_types(sc: Scenario) -> None:
    """ArgumentError (a TypeError) or ValidationError (a ValueError) for a Scenario field of
    the wrong type or value: ``posts=2.7`` is an error, not 2 posts."""
    types: list[str] = []
    values: list[str] = []
    if not isinstance(sc.departement, str):
        types.append(
            f"departement={sc.departement!r}: give the INSEE code as a string, e.g. '49' or '2A'"
        )
    for name in ("posts", "itinerant_posts"):
        v = getattr(sc, name)
        if v is None and name == "posts":
            continue
        if _is_number(v) and not _is_int(v) and float(v).is_integer():
            continue
        if not _is_number(v):
            types.append(f"{name}={v!r}: give a whole number of posts, e.g. 8")
        elif not _is_int(v):
            values.append(f"{name}={v!r}: posts are whole, give an integer (e.g. {int(v)})")
        elif v < 0:
            values.append(f"{name}={v!r}: give a number of posts >= 0")
    for name in ("threshold_minutes", "fibre_target_pct"):
        v = getattr(sc, name)
        if v is None:
            continue
        if not _is_number(v):
            types.append(f"{name}={v!r}: give a number, e.g. 10")
        elif not np.isfinite(v) or (name == "threshold_minutes" and v <= 0):
            values.append(f"{name}={v!r}: give a finite number > 0, e.g. 10")
    for name in ("data_dir", "osm_file"):
        v = getattr(sc, name)
        if v is not None and not isinstance(v, (str, os.PathLike)):
            types.append(f"{name}={v!r}: give a path (str or pathlib.Path) or None")
    if not isinstance(sc.settings, Settings):
        types.append(
            f"settings={type(sc.settings).__name__}: give a cnfs_geo.settings.Settings "
            "(e.g. DEFAULT.replace(...))"
        )
    if types:
        raise ArgumentError("scenario", types + values)
    if values:
        raise ValidationError("scenario", values)


@dataclass
class Plan:
    """Result of :func:`run`.

    Attributes
    ----------
    scenario : Scenario
    communes : GeoDataFrame
        Index ``insee``; territory + need columns + ``minutes_before``,
        ``nearest_place_before``, ``covered_before``, ``minutes_after``,
        ``covered_after``, ``gap`` (uncovered before the new posts), ``gap_rank``
        (1 = largest need-weighted population among gap communes), ``remaining_gap``;
        priority criteria of :func:`cnfs_geo.gaps.priority_scores`: ``accessibility``
        (E2SFCA advisors per 10 000 need-weighted inhabitants), ``ratio_to_target``,
        ``priority_score`` (0–100), ``priority_rank``, ``priority_gap`` (far or thin,
        and fragile), ``gap_reasons`` (French), ``gap_cluster`` (cluster id or None).
    places : GeoDataFrame
        Existing offer (:func:`cnfs_geo.offer.places_from_sources`).
    posts : GeoDataFrame
        New posts: ``post_id``, ``insee``, ``commune``, ``host``, ``host_kind``,
        ``kind``, ``covered_population``, ``covered_need``, ``geometry``.
    epci, departement : GeoDataFrame
        ``epci`` also carries the offer per EPCI (:func:`cnfs_geo.gaps.epci_offer`:
        ``n_lieu_mediation``, ``n_cnfs``, …, ``has_project``).
    gap_communes : DataFrame
        Communes beyond each reported threshold, ranked (:func:`cnfs_geo.gaps.gap_communes`).
    gap_clusters : GeoDataFrame
        Contiguous groups of priority-gap communes (:func:`cnfs_geo.gaps.gap_clusters`).
    candidates : DataFrame
        Candidate host sites considered.
    coverage_before, coverage_after : DataFrame
        :func:`cnfs_geo.coverage.coverage_table` at every reported threshold, on the
        demand units (``units``/``units_covered`` count demand units).
    units : GeoDataFrame
        Demand units (:func:`cnfs_geo.demand.demand_units`) with ``minutes_before``,
        ``covered_before``, ``minutes_after``, ``covered_after``. With finer units than
        communes, commune ``minutes_*`` are population-weighted means over the units,
        ``pct_covered_*`` the share of the population covered, and a commune counts as
        covered when at least half of its population is.
    demand_unit : str
        French description of the demand unit used.
    circuits, timetable : GeoDataFrame, DataFrame
        Itinerant circuits and their weekly timetable
        (:class:`cnfs_geo.itinerant.ItinerantResult`); empty without itinerant posts.
        ``posts`` then also lists one ``kind = "itinerant"`` post per circuit, at its
        base, credited with the population it newly serves and counted in the EPCI
        where most of it lives. *Served by a circuit* means a weekly permanence within
        the threshold; ``units`` gains ``served_itinerant``, ``itinerant_circuit``
        (the circuit serving it), ``itinerant_stop`` (circuit when the unit is a stop)
        and ``covered_with_itinerant``; ``communes`` gains ``itinerant_circuit`` (the
        circuit newly serving its largest unit), ``population_served_itinerant``,
        ``pct_covered_with_itinerant`` and ``covered_with_itinerant`` (≥ 50 % of its
        population covered by a fixed place/post or served by a circuit).
    itinerant_dropped : DataFrame
        Eligible communes no circuit serves, with the reason.
    advisor_defaults : dict
        How many advisor counts are defaults and the factors of the sensitivity
        columns ``priority_rank_low``/``_high``, ``priority_gap_low``/``_high`` of
        ``communes`` (:func:`cnfs_geo.gaps.default_advisors_sensitivity`).
    unit_comparison : DataFrame
        The same scenario counted at one point per commune (:func:`compare_demand_units`);
        empty until computed.
    offer_report, need_report
        What the ingest stages read, kept, merged, rejected.
    solution : dict
        Placement solution record (objective, bound, gap, solver, time).
    travel_model : str
    timings : dict
        Seconds per stage.
    robustness : Robustness or None
        How often each fixed post is chosen again under changed assumptions
        (:func:`cnfs_geo.robustness.with_robustness`); None when not run.
    """

    scenario: Scenario
    data_dir: catalog.DataDir
    communes: gpd.GeoDataFrame
    places: gpd.GeoDataFrame
    posts: gpd.GeoDataFrame
    epci: gpd.GeoDataFrame
    departement: gpd.GeoDataFrame
    candidates: pd.DataFrame
    coverage_before: pd.DataFrame
    coverage_after: pd.DataFrame
    offer_report: Any
    need_report: Any
    solution: dict
    travel_model: str
    units: gpd.GeoDataFrame = field(default_factory=gpd.GeoDataFrame)
    demand_unit: str = "commune"
    circuits: gpd.GeoDataFrame = field(default_factory=gpd.GeoDataFrame)
    timetable: pd.DataFrame = field(default_factory=pd.DataFrame)
    itinerant_dropped: pd.DataFrame = field(default_factory=pd.DataFrame)
    journal: pd.DataFrame = field(default_factory=pd.DataFrame)
    gap_communes: pd.DataFrame = field(default_factory=pd.DataFrame)
    gap_clusters: gpd.GeoDataFrame = field(default_factory=gpd.GeoDataFrame)
    timings: dict = field(default_factory=dict)
    unit_comparison: pd.DataFrame = field(default_factory=pd.DataFrame)
    advisor_defaults: dict = field(default_factory=dict)
    robustness: Any = None  # cnfs_geo.robustness.Robustness when the analysis was run

    @property
    def epci_without_project(self) -> gpd.GeoDataFrame:
        """EPCI with no lieu de médiation and no CNFS (the Anjou criterion)."""
        return self.epci[~self.epci["has_project"].astype(bool)]

    @property
    def settings(self) -> Settings:
        return self.scenario.settings

    def _newly_served(self) -> pd.DataFrame:
        u = self.units
        if "served_itinerant" not in u.columns:
            return u.iloc[0:0]
        return u[u["served_itinerant"].astype(bool) & ~u["covered_after"].astype(bool)]

    def summary(self) -> dict:
        """Key figures at the scenario threshold (for stdout and the report)."""
        t = self.scenario.threshold
        b = self.coverage_before.set_index("threshold_min").loc[t]
        a = self.coverage_after.set_index("threshold_min").loc[t]
        return {
            "departement": self.scenario.departement,
            "communes": len(self.communes),
            "population": int(self.communes["population"].sum()),
            "places": len(self.places),
            "accompaniment_places": int((self.places["service_level"] == "accompaniment").sum()),
            "threshold_min": t,
            "communes_covered_before": int(self.communes["covered_before"].sum()),
            "communes_covered_after": int(self.communes["covered_after"].sum()),
            "demand_unit": self.demand_unit,
            "units": int(b["units"]),
            "units_covered_before": int(b["units_covered"]),
            "units_covered_after": int(a["units_covered"]),
            "population_covered_before": int(round(b["population_covered"])),
            "population_covered_after": int(round(a["population_covered"])),
            "pct_population_covered_before": float(b["pct_population_covered"]),
            "pct_population_covered_after": float(a["pct_population_covered"]),
            "need_covered_before": float(b["need_covered"]),
            "need_covered_after": float(a["need_covered"]),
            "pct_need_covered_before": float(b["pct_need_covered"]),
            "pct_need_covered_after": float(a["pct_need_covered"]),
            "posts": len(self.posts),
            "fixed_posts": int((self.posts["kind"] == "fixed").sum()),
            "itinerant_posts": int((self.posts["kind"] == "itinerant").sum()),
            "cost_eur": len(self.posts) * self.settings.cost_per_post_eur,
            "communes_served_itinerant": int(
                self.communes.get("itinerant_circuit", pd.Series(dtype=object)).notna().sum()
            ),
            "communes_covered_with_itinerant": int(
                self.communes.get("covered_with_itinerant", self.communes["covered_after"]).sum()
            ),
            # served by a circuit = a weekly permanence within the threshold, counted
            # on the demand units not covered after the fixed posts
            "units_served_itinerant": int(self._newly_served()["population"].size),
            "population_served_itinerant": int(round(self._newly_served()["population"].sum())),
            "travel_model": self.travel_model,
        }


def candidate_sites(communes: gpd.GeoDataFrame, places: gpd.GeoDataFrame) -> pd.DataFrame:
    """Candidate host sites for new posts.

    Every commune's chef-lieu point (town hall area; representative point where
    unknown), id ``"commune:<insee>"``, host "Mairie de <nom>" (contracted: "Mairie du
    Lion-d'Angers"), and every existing
    place, id ``"place:<place_id>"``, host = the place's name.

    Returns
    -------
    DataFrame
        Index ``candidate_id``; ``x``, ``y`` (working CRS), ``insee``, ``commune``,
        ``host``, ``host_kind`` (``mairie`` or the place's kinds). Sorted by id.
    """
    town = pd.DataFrame(
        {
            "x": communes["chef_lieu_x"].to_numpy(),
            "y": communes["chef_lieu_y"].to_numpy(),
            "insee": communes.index.to_numpy(),
            "commune": communes["nom"].to_numpy(),
            "host": ["Mairie " + _fr.of(n) for n in communes["nom"]],
            "host_kind": "mairie",
        },
        index=pd.Index("commune:" + communes.index, name="candidate_id"),
    )
    pl = pd.DataFrame(
        {
            "x": places.geometry.x.to_numpy(),
            "y": places.geometry.y.to_numpy(),
            "insee": places["insee"].to_numpy(),
            "commune": places["insee"].map(communes["nom"]).to_numpy(),
            "host": places["name"].to_numpy(),
            "host_kind": places["kinds"].to_numpy(),
        },
        index=pd.Index("place:" + places["place_id"].astype(str), name="candidate_id"),
    )
    return pd.concat([town, pl]).sort_index()


@dataclass
class Prepared:
    """Everything of a plan that does not depend on the number of new posts.

    Built once by :func:`prepare` and reused by :func:`run` (e.g. for a sweep over
    the number of posts in :func:`compare_posts`).
    """

    scenario: Scenario
    data_dir: catalog.DataDir
    communes: gpd.GeoDataFrame
    places: gpd.GeoDataFrame
    epci: gpd.GeoDataFrame
    departement: gpd.GeoDataFrame
    candidates: pd.DataFrame
    units: gpd.GeoDataFrame
    origins: pd.DataFrame
    od: pd.DataFrame
    travel: _Travel
    thresholds: list[float]
    coverage_before: pd.DataFrame
    offer_report: Any
    need_report: Any
    gap_communes: pd.DataFrame
    gap_clusters: gpd.GeoDataFrame
    timings: dict
    journal_events: list = field(default_factory=list)
    advisor_defaults: dict = field(default_factory=dict)


class _Laps:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._t0 = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self._t0, 3)
        _progress.step(_fr.PLAN_STAGES.get(name, name), now - self._t0)
        self._t0 = now


class _Travel:
    """The scenario's travel model: OD tables and nearest destinations."""

    def __init__(self, scenario: Scenario, area: Any = None) -> None:
        self.settings = scenario.settings
        self.net = None
        if scenario.travel == "road":
            crs = working_crs(scenario.departement)
            path = str(scenario.osm_file)
            graph = (
                roads.road_graph_from_pbf(path, crs=crs)
                if path.endswith(".pbf")
                else roads.road_graph_from_xml(path, crs=crs)
            )
            if area is not None:
                graph = roads.clip_road_graph(graph, area)
            self.net = roads.road_network(graph)
            self.label = roads.road_travel_model_label(self.settings)
        else:
            self.label = access.travel_model_label(self.settings)

    def od(
        self, origins: pd.DataFrame, destinations: pd.DataFrame, max_minutes: float
    ) -> pd.DataFrame:
        if self.net is None:
            return access.od_crowfly(
                origins, destinations, max_minutes=max_minutes, settings=self.settings
            )
        return roads.od_road(
            origins, destinations, self.net, max_minutes=max_minutes, settings=self.settings
        )

    def nearest(self, origins: pd.DataFrame, destinations: pd.DataFrame) -> pd.DataFrame:
        if self.net is None:
            return access.nearest_crowfly(origins, destinations, settings=self.settings)
        return roads.nearest_road(origins, destinations, self.net, settings=self.settings)


def _to_communes(
    units: pd.DataFrame, communes: pd.DataFrame, minutes: str, covered: str
) -> tuple[pd.Series, pd.Series]:
    """Population-weighted mean minutes and share of population covered, per commune."""
    pop = units["population"].astype(float)
    w = pop.where(pop > 0, 1e-9)
    finite = units[minutes].replace(np.inf, np.nan)
    mean = (finite * w).groupby(units["insee"]).sum() / w.groupby(units["insee"]).sum()
    mean = mean.where(finite.notna().groupby(units["insee"]).all(), np.inf)
    share = (pop * units[covered]).groupby(units["insee"]).sum() / pop.groupby(
        units["insee"]
    ).sum().replace(0, np.nan)
    return mean.reindex(communes.index), (100 * share.fillna(0)).reindex(communes.index)


#: Territory, offer and need frames of the last few (département, data files, settings,
#: need weights): a sweep, a comparison of variants or a robustness analysis re-plans the
#: same département many times; the files are re-read when any of them changes.
_BASE_CACHE: OrderedDict[tuple, tuple] = OrderedDict()
_BASE_CACHE_SIZE = 4
# Reader events (repairs, rejections) of each cached entry, replayed on a cache hit.
_BASE_EVENTS: dict[tuple, list] = {}


def _data_fingerprint(data_dir: catalog.DataDir) -> tuple:
    """Path, size and modification time of every file of a data directory."""
    root = data_dir.path
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            out.append((str(path.relative_to(root)), st.st_size, st.st_mtime_ns))
    return (str(root), tuple(out))


def _base_key(scenario: Scenario, dep: str, data_dir: catalog.DataDir) -> tuple:
    """What the territory, offer and need of a plan depend on: département, data files,
    need weights and the settings these stages read (:data:`cnfs_geo.offer.SETTINGS_USED`;
    territory and need read none)."""
    s = scenario.settings
    used = tuple(repr(getattr(s, name)) for name in offer.SETTINGS_USED)
    return (dep, _data_fingerprint(data_dir), used, repr(scenario.need_weights))


def _base_frames(
    scenario: Scenario, key: tuple, dep: str, data_dir: catalog.DataDir, lap: _Laps
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame, Any, Any]:
    """Communes (with need), EPCI, outline, places and the offer and need reports, built
    once per :func:`_base_key` ``key``; copies are returned."""
    hit = _BASE_CACHE.get(key)
    if hit is None:
        with _journal.collect(isolated=True) as events:
            hit = _base_frames_uncached(scenario, dep, data_dir, lap)
        _journal.replay(events)
        _BASE_CACHE[key] = hit
        _BASE_EVENTS[key] = events
        while len(_BASE_CACHE) > _BASE_CACHE_SIZE:
            _BASE_EVENTS.pop(next(iter(_BASE_CACHE)), None)
            _BASE_CACHE.popitem(last=False)
    else:
        _BASE_CACHE.move_to_end(key)
        _journal.replay(_BASE_EVENTS.get(key, []))
        log.debug("prepare %s: territory, offer and need reused (same files and settings)", dep)
    communes, epci, outline, places, offer_report, need_report = hit
    return (
        communes.copy(),
        epci.copy(),
        outline.copy(),
        places.copy(),
        copy.deepcopy(offer_report),
        copy.deepcopy(need_report),
    )


#: Demand units of the last few (base key, unit, fibre what-if): they depend on nothing
#: else, and the finest and IRIS units cut the IRIS by the commune polygons (about 0.2 s
#: on the 49) each time a variant of the same plan is prepared.
_UNITS_CACHE: OrderedDict[tuple, tuple[gpd.GeoDataFrame, list]] = OrderedDict()


def _demand_units(
    scenario: Scenario, key: tuple | None, communes: gpd.GeoDataFrame, data_dir: catalog.DataDir
) -> gpd.GeoDataFrame:
    """:func:`cnfs_geo.demand.demand_units` of a scenario's communes, built once per
    :func:`_base_key` ``key`` (None: not cached), unit and fibre what-if; a copy is
    returned and the readers' events are replayed on a cache hit."""
    unit = cast(demand.DemandUnit, scenario.demand_unit or scenario.settings.demand_unit)
    if key is None:
        return demand.demand_units(communes, data_dir, unit=unit)
    ukey = (key, unit, repr(scenario.fibre_target_pct))
    hit = _UNITS_CACHE.get(ukey)
    if hit is None:
        with _journal.collect(isolated=True) as events:
            units = demand.demand_units(communes, data_dir, unit=unit)
        _journal.replay(events)
        hit = _UNITS_CACHE[ukey] = (units, list(events))
        while len(_UNITS_CACHE) > _BASE_CACHE_SIZE:
            _UNITS_CACHE.popitem(last=False)
    else:
        _UNITS_CACHE.move_to_end(ukey)
        _journal.replay(hit[1])
    return hit[0].copy()


def _base_frames_uncached(
    scenario: Scenario, dep: str, data_dir: catalog.DataDir, lap: _Laps
) -> tuple:
    """What :func:`_base_frames` caches: territory, offer and need of a département.

    Every input file is read and checked first (:func:`check_inputs`), so a corrupt file
    stops the run before any work; the stages then get the frames read there
    (:func:`cnfs_geo.sources.one_read_per_file`)."""
    s = scenario.settings
    with one_read_per_file():
        check_inputs(scenario, dep, data_dir)
        lap("read")
        communes = territory.communes_from_cog(dep, data_dir)
        epci = territory.epci_from_communes(communes, data_dir)
        outline = territory.departement_outline(communes)
        lap("territory")
        places, offer_report = offer.places_from_sources(communes, data_dir, settings=s)
        lap("offer")
        communes, need_report = need.need_from_sources(
            communes, data_dir, weights=scenario.need_weights
        )
    return (communes, epci, outline, places, offer_report, need_report)


def check_inputs(scenario: Scenario, departement: str, data_dir: catalog.DataDir) -> None:
    """Read and check every input file a plan of ``scenario`` reads (territory, offer,
    need, demand units) before any transform: a missing or corrupt file fails at once,
    named, with the fix.

    Reader events (repairs, rejections) are not recorded here but when the stages read
    the same files, so the journal is the same whether or not this ran first.

    Raises
    ------
    DataFileError, ValidationError
    """
    unit = cast(demand.DemandUnit, scenario.demand_unit or scenario.settings.demand_unit)
    with _journal.collect(isolated=True):
        territory.check_sources(departement, data_dir)
        offer.read_sources(data_dir, departement)
        need.read_sources(data_dir)
        demand.read_sources(departement, data_dir, unit=unit)


def prepare(
    scenario: Scenario, *, base: tuple | None = None, road_buffer_m: float | None = None
) -> Prepared:
    """Territory, offer, need, demand units, coverage before, gaps, candidates and OD;
    ``journal_events`` holds what the readers repaired or rejected.

    ``base`` (communes with need, EPCI, outline, places, offer report, need report), when
    given, replaces the reading of the files: :mod:`cnfs_geo.national` builds it from the
    national frames read once (``scenario.departement`` must then be a normalised code).
    ``road_buffer_m``: with road travel, keep only the road graph within this distance of
    the département (:func:`cnfs_geo.roads.clip_road_graph`; a regional extract then
    costs one département's graph).
    """
    if not isinstance(scenario, Scenario):
        raise ArgumentError(
            "scenario",
            [
                f"a cnfs_geo.plan.Scenario is expected, got {type(scenario).__name__}; fix: "
                "prepare(Scenario(departement='49', posts=8))"
            ],
        )
    with _journal.collect() as events:
        prepared = _prepare(scenario, base=base, road_buffer_m=road_buffer_m)
    prepared.journal_events = list(events)
    return prepared


def _prepare(
    scenario: Scenario, *, base: tuple | None = None, road_buffer_m: float | None = None
) -> Prepared:
    s = scenario.settings
    t = scenario.threshold
    lap = _Laps()
    data_dir = catalog.resolve_data_dir(scenario.data_dir)
    key: tuple | None = None  # of the cached frames; none for a caller's base
    if base is None:
        catalog.check_data_dir(data_dir, scenario.departement)  # missing dép., edited files
        dep = territory.check_departement(scenario.departement, data_dir)
        key = _base_key(scenario, dep, data_dir)
        communes, epci, outline, places, offer_report, need_report = _base_frames(
            scenario, key, dep, data_dir, lap
        )
    else:
        communes, epci, outline, places, offer_report, need_report = base
    if scenario.fibre_target_pct is not None:
        communes = need.fibre_what_if(communes, target_pct=scenario.fibre_target_pct)
    units = _demand_units(scenario, key, communes, data_dir)
    lap("need")

    area = None if road_buffer_m is None else outline.geometry.union_all().buffer(road_buffer_m)
    travel = _Travel(scenario, area=area)
    origins = units[["x", "y"]]
    acc = places[places["service_level"] == "accompaniment"]
    acc_xy = pd.DataFrame(
        {"x": acc.geometry.x.to_numpy(), "y": acc.geometry.y.to_numpy()},
        index=pd.Index(acc["place_id"].astype(str), name="place_id"),
    )
    nearest = travel.nearest(origins, acc_xy)
    units["minutes_before"] = nearest["minutes"]
    units["nearest_place_before"] = nearest["nearest_id"]
    units["covered_before"] = coverage.covered_flags(units["minutes_before"], t)
    thresholds = sorted(set(s.report_thresholds) | {t})
    coverage_before = coverage.coverage_table(units, units["minutes_before"], thresholds)
    if scenario.demand_unit == "commune":
        communes["minutes_before"] = units["minutes_before"].reindex(communes.index)
        communes["nearest_place_before"] = units["nearest_place_before"].reindex(communes.index)
        communes["pct_covered_before"] = 100.0 * units["covered_before"].reindex(communes.index)
    else:
        communes["minutes_before"], communes["pct_covered_before"] = _to_communes(
            units, communes, "minutes_before", "covered_before"
        )
        # nearest place from the commune's most populated unit
        main = (
            units.sort_values(["insee", "population"], ascending=[True, False], kind="stable")
            .drop_duplicates("insee")
            .set_index("insee")
        )
        communes["nearest_place_before"] = main["nearest_place_before"].reindex(communes.index)
    communes["nearest_place_name"] = communes["nearest_place_before"].map(
        places.set_index(places["place_id"].astype(str))["name"]
    )
    # a commune is covered when at least half of its population is
    communes["covered_before"] = communes["pct_covered_before"] >= 50.0
    lap("coverage")

    # gap territories: far or thin, and fragile (see cnfs_geo.gaps)
    gap_communes = gaps.gap_communes(communes, thresholds=thresholds)
    acc_od = (
        travel.od(
            communes[["ref_x", "ref_y"]].rename(columns={"ref_x": "x", "ref_y": "y"}),
            acc_xy,
            s.access_catchment_minutes,
        )
        if travel.net is not None
        # crow-fly: the same table for the accessibility and its sensitivity runs
        else gaps.crowfly_access_od(
            communes, places, catchment=s.access_catchment_minutes, settings=s
        )
    )
    accessibility = gaps.need_accessibility(
        communes,
        places,
        settings=s,
        od=acc_od,
        catchment=s.access_catchment_minutes,
        weights=s.access_weights,
    )
    scores = gaps.priority_scores(
        communes,
        accessibility,
        settings=s,
        threshold=t,
        target_share=s.thin_share,
        need_quantile=s.high_need_quantile,
        fibre_min_pct=s.low_fibre_pct,
    )
    communes = communes.join(
        scores[
            [
                "accessibility",
                "ratio_to_target",
                "priority_score",
                "priority_rank",
                "is_gap",
                "gap_reasons",
            ]
        ].rename(columns={"is_gap": "priority_gap"})
    )
    sens = gaps.default_advisors_sensitivity(
        communes, places, settings=s, threshold=t, od=acc_od, baseline=scores
    )
    communes = communes.join(sens.drop(columns=["priority_rank", "priority_gap"]))
    communes["gap_cluster"] = gaps.gap_cluster_ids(communes, is_gap=communes["priority_gap"])
    clusters = gaps.gap_clusters(
        communes,
        is_gap=communes["priority_gap"],
        places=places,
        settings=s,
        cluster_ids=communes["gap_cluster"],  # the adjacency computed once
    )
    clusters.attrs["methods_fr"] = gaps.methods_fr(scores)
    epci = epci.join(
        gaps.epci_offer(communes, places, epci).drop(
            columns=[c for c in ("nom", "n_communes", "population", "straddles", "geometry")]
        )
    )
    lap("gaps")

    candidates = candidate_sites(communes, places)
    od = travel.od(origins, candidates, t)
    lap("candidates")
    return Prepared(
        scenario=scenario,
        data_dir=data_dir,
        communes=communes,
        places=places,
        epci=epci,
        departement=outline,
        candidates=candidates,
        units=units,
        origins=origins,
        od=od,
        travel=travel,
        thresholds=thresholds,
        coverage_before=coverage_before,
        offer_report=offer_report,
        need_report=need_report,
        gap_communes=gap_communes,
        gap_clusters=clusters,
        timings=lap.timings,
        advisor_defaults=dict(sens.attrs),
    )


def run(scenario: Scenario, *, prepared: Prepared | None = None) -> Plan:
    """Run the whole pipeline for ``scenario``. See :class:`Plan` for the result.

    ``prepared`` (from :func:`prepare` on a scenario with the same département,
    threshold, data and settings) skips the stages that do not depend on the number
    of posts.
    """
    if not isinstance(scenario, Scenario):
        raise ArgumentError(
            "scenario",
            [
                f"a cnfs_geo.plan.Scenario is expected, got {type(scenario).__name__}; fix: "
                "run(Scenario(departement='49', posts=8))"
            ],
        )
    s = scenario.settings
    if prepared is None:
        prepared = prepare(scenario)
    elif prepared.scenario.key != scenario.key:
        raise ValueError(
            "prepared was built for another scenario (département, threshold, "
            "data, demand unit, travel or need options); call prepare(scenario)"
        )
    lap = _Laps()
    t = scenario.threshold
    communes = prepared.communes.copy()
    units = prepared.units.copy()
    candidates, origins = prepared.candidates, prepared.origins
    if scenario.model == "equity":
        result = _equity(scenario, prepared, units)
    else:
        result = placement.mclp_from_od(
            prepared.od,
            units["need"],
            p=scenario.p,
            threshold=t,
            already_covered=units["covered_before"],
            demand=units,
            settings=s,
        )
    lap("placement")

    posts = _posts_frame(result, candidates, communes)
    post_xy = candidates.loc[posts["candidate_id"], ["x", "y"]].set_index(
        pd.Index(posts["post_id"], name="post_id")
    )
    to_post = prepared.travel.nearest(origins, post_xy)
    units["minutes_after"] = np.minimum(units["minutes_before"], to_post["minutes"])
    units["nearest_post"] = to_post["nearest_id"].where(
        to_post["minutes"] < units["minutes_before"]
    )
    units["covered_after"] = coverage.covered_flags(units["minutes_after"], t)
    coverage_after = coverage.coverage_table(units, units["minutes_after"], prepared.thresholds)
    if scenario.demand_unit == "commune":
        communes["minutes_after"] = units["minutes_after"].reindex(communes.index)
        communes["nearest_post"] = units["nearest_post"].reindex(communes.index)
        communes["pct_covered_after"] = 100.0 * units["covered_after"].reindex(communes.index)
    else:
        communes["minutes_after"], communes["pct_covered_after"] = _to_communes(
            units, communes, "minutes_after", "covered_after"
        )
        near = units.dropna(subset=["nearest_post"]).sort_values(
            ["insee", "population"], ascending=[True, False], kind="stable"
        )
        communes["nearest_post"] = (
            near.drop_duplicates("insee").set_index("insee")["nearest_post"].reindex(communes.index)
        )
    communes["covered_after"] = communes["pct_covered_after"] >= 50.0
    if scenario.model == "equity":
        # population / need newly within the threshold, credited to the nearest new post
        newly = units[units["covered_after"] & ~units["covered_before"]]
        by_post = newly.groupby("nearest_post")[["population", "need"]].sum()
        posts["covered_population"] = posts["post_id"].map(by_post["population"]).fillna(0.0)
        posts["covered_need"] = posts["post_id"].map(by_post["need"]).fillna(0.0)

    near_new_post = (to_post["minutes"].reindex(units.index) <= t).to_numpy(bool)
    circuits, timetable, dropped, served = _itinerant(scenario, communes, units, near_new_post)
    if len(circuits):
        posts = pd.concat(
            [posts, _itinerant_posts(circuits, communes, units, served, len(posts))],
            ignore_index=True,
        )
    itinerant.served_columns(
        communes, units, circuits, served, commune_units=scenario.demand_unit == "commune"
    )
    lap("itinerant")
    communes["gap"] = ~communes["covered_before"]
    communes["gap_rank"] = (
        communes["need"]
        .where(communes["gap"])
        .rank(ascending=False, method="first")
        .astype("Int64")
    )
    communes["remaining_gap"] = ~communes["covered_after"]
    lap("outputs")

    plan = Plan(
        scenario=scenario,
        data_dir=prepared.data_dir,
        communes=communes,
        places=prepared.places,
        posts=posts,
        epci=prepared.epci,
        departement=prepared.departement,
        candidates=candidates,
        coverage_before=prepared.coverage_before,
        coverage_after=coverage_after,
        offer_report=prepared.offer_report,
        need_report=prepared.need_report,
        solution=dict(result.solution),
        travel_model=prepared.travel.label,
        units=units,
        demand_unit=units.attrs.get("demand_unit", scenario.demand_unit),
        circuits=circuits,
        timetable=timetable,
        itinerant_dropped=dropped,
        gap_communes=prepared.gap_communes,
        gap_clusters=prepared.gap_clusters,
        timings={**prepared.timings, **lap.timings},
        journal=_journal.journal_table(
            prepared.journal_events, prepared.offer_report, prepared.need_report
        ),
        advisor_defaults=dict(prepared.advisor_defaults),
    )
    sm = plan.summary()
    log.info(
        "plan %s: %d communes, %d places, %d posts; population covered at %g min %.1f %% → %.1f %%",
        scenario.departement,
        sm["communes"],
        sm["places"],
        sm["posts"],
        t,
        sm["pct_population_covered_before"],
        sm["pct_population_covered_after"],
    )
    return plan


def _equity(scenario: Scenario, prepared: Prepared, units: gpd.GeoDataFrame):
    """Capacity/equity placement: sites = existing accompaniment places + candidates."""
    places = prepared.places[prepared.places["service_level"] == "accompaniment"]
    existing = pd.DataFrame(
        {"x": places.geometry.x.to_numpy(), "y": places.geometry.y.to_numpy()},
        index=pd.Index(places["place_id"].astype(str), name="site_id"),
    )
    sites = pd.concat([existing, prepared.candidates[["x", "y"]]])
    s = scenario.settings
    od = prepared.travel.od(prepared.origins, sites, s.access_catchment_minutes)
    supply = places.set_index(places["place_id"].astype(str))["advisors"].astype(float)
    # catchment, weights and target share: the settings' access_catchment_minutes,
    # access_weights and thin_share (equity_from_od's defaults)
    res = placement.equity_from_od(
        od,
        units["need"],
        supply,
        p=scenario.p,
        candidates=prepared.candidates,
        settings=s,
        threshold=scenario.threshold,
    )
    posts = res.posts.copy()
    posts["covered_population"] = np.nan  # filled by run() from the new travel times
    posts["covered_need"] = np.nan
    return dataclasses.replace(res, posts=posts)


def _itinerant(
    scenario: Scenario,
    communes: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    near_new_post: np.ndarray,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Circuits serving the demand units the fixed posts leave beyond the threshold
    (or in a priority territory with no new fixed post within the threshold: a new
    post answers its reasons, far or thin), based in the EPCI or gap
    cluster they serve (empty frames when none). Returns circuits, timetable, dropped
    units and the ``served`` table of :class:`cnfs_geo.itinerant.ItinerantResult`
    (index ``unit_id``)."""
    if scenario.itinerant_posts == 0:
        empty = gpd.GeoDataFrame(
            {c: [] for c in itinerant.CIRCUIT_COLUMNS if c != "geometry"},
            geometry=[],
            crs=communes.crs,
        )
        return (
            empty,
            pd.DataFrame(columns=itinerant.TIMETABLE_COLUMNS),
            pd.DataFrame(columns=["insee", "reason"]),
            pd.DataFrame(columns=itinerant.SERVED_COLUMNS),
        )
    s = scenario.settings
    frame, base_sites, groups, reasons = itinerant.units_inputs(communes, units)
    # a new fixed post within the threshold answers the priority reasons of a unit
    reasons = reasons.where(~near_new_post, "")
    # density, reach, stop hours and week length: the settings' itinerant_* values
    res = itinerant.itinerant_circuits(
        frame,
        n_posts=scenario.itinerant_posts,
        settings=s,
        covered="covered_after",
        threshold=scenario.threshold,
        priority_reasons=reasons,
        base_sites=base_sites,
        groups=groups,
        minutes=units["minutes_after"],
    )
    return res.circuits, res.timetable, res.dropped, res.served


def _itinerant_posts(
    circuits: gpd.GeoDataFrame,
    communes: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    served: pd.DataFrame,
    start: int,
) -> gpd.GeoDataFrame:
    """One post per circuit, at its base, credited with the people it newly serves and
    counted in the EPCI where most of them live (the base's EPCI when none)."""
    base = communes.loc[circuits["base_insee"]]
    sv = served.reindex(units.index.astype(str))
    newly = units.assign(cid=sv["circuit_id"].to_numpy(dtype=object))[
        sv["newly_served"].fillna(False).astype(bool).to_numpy()
    ]
    newly = newly.assign(epci=newly["insee"].map(communes["epci"]))
    by = newly.groupby(["cid", "epci"])["population"].sum().reset_index()
    by = by.sort_values(["cid", "population", "epci"], ascending=[True, False, True])
    epci_of = by.drop_duplicates("cid").set_index("cid")["epci"]
    epci = [epci_of.get(cid, e) for cid, e in zip(circuits["circuit_id"], base["epci"])]
    return gpd.GeoDataFrame(
        {
            "post_id": [f"P{start + i + 1:02d}" for i in range(len(circuits))],
            "candidate_id": ("commune:" + circuits["base_insee"]).to_numpy(),
            "insee": circuits["base_insee"].to_numpy(),
            "commune": circuits["base_nom"].to_numpy(),
            "epci": epci,
            "host": ["Médiateur itinérant basé " + _fr.of(n, "à") for n in circuits["base_nom"]],
            "host_kind": "itinerant",
            "kind": "itinerant",
            "covered_population": circuits["population"].to_numpy(dtype=float),
            "covered_need": circuits["need"].to_numpy(dtype=float),
            "circuit_id": circuits["circuit_id"].to_numpy(),
        },
        geometry=gpd.points_from_xy(base["chef_lieu_x"], base["chef_lieu_y"]),
        crs=communes.crs,
    )


def _posts_frame(result, candidates: pd.DataFrame, communes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    posts = result.posts.copy()
    cand = candidates.loc[posts["candidate_id"]]
    out = gpd.GeoDataFrame(
        {
            "post_id": posts["post_id"].to_numpy(),
            "candidate_id": posts["candidate_id"].to_numpy(),
            "insee": cand["insee"].to_numpy(),
            "commune": cand["commune"].to_numpy(),
            "epci": cand["insee"].map(communes["epci"]).to_numpy(),
            "host": cand["host"].to_numpy(),
            "host_kind": cand["host_kind"].to_numpy(),
            "kind": "fixed",
            "covered_population": posts["covered_population"].to_numpy(),
            "covered_need": posts["covered_need"].to_numpy(),
        },
        geometry=gpd.points_from_xy(cand["x"], cand["y"]),
        crs=communes.crs,
    )
    return out


# ----------------------------------------------------------------------------------------
# Comparing scenarios
# ----------------------------------------------------------------------------------------
def compare_posts(
    scenario: Scenario, posts: list[int] | range, *, prepared: Prepared | None = None
) -> pd.DataFrame:
    """Sweep the number of new posts: coverage gained per added post.

    The curve that tells a département when to stop: each extra post is solved
    exactly (MCLP), so a flat marginal gain means further posts cover little.

    Returns
    -------
    DataFrame
        One row per number of posts (sorted): ``posts``, ``cost_eur``,
        ``communes_covered``, ``population_covered``, ``pct_population_covered``,
        ``need_covered``, ``pct_need_covered``, ``marginal_population`` and
        ``marginal_need`` (gain over the previous row, per added post),
        ``gap`` (proven optimality gap), ``hosts`` (";"-joined communes of the posts).
    """
    ns = sorted({int(n) for n in posts})
    if not ns or ns[0] < 0:
        from ._errors import PlacementError

        raise PlacementError(
            "posts", [f"posts={list(posts)!r}: give non-negative numbers of posts, e.g. 0 2 4 8 12"]
        )
    prepared = prepared or prepare(scenario)
    rows = []
    for n in _progress.bar(ns, desc=_fr.PROGRESS_COMPARE, unit="scénario"):
        with _progress.muted_steps():
            plan = run(dataclasses.replace(scenario, posts=n), prepared=prepared)
        sm = plan.summary()
        rows.append(
            {
                "posts": n,
                "cost_eur": n * scenario.settings.cost_per_post_eur,
                "communes_covered": sm["communes_covered_after"],
                "population_covered": sm["population_covered_after"],
                "pct_population_covered": round(sm["pct_population_covered_after"], 3),
                "need_covered": round(sm["need_covered_after"], 1),
                "pct_need_covered": round(sm["pct_need_covered_after"], 3),
                "gap": plan.solution.get("gap"),
                "hosts": ";".join(plan.posts["commune"].astype(str)),
            }
        )
    table = pd.DataFrame(rows)
    step = table["posts"].diff().replace(0, np.nan)
    table["marginal_population"] = (table["population_covered"].diff() / step).round(1)
    table["marginal_need"] = (table["need_covered"].diff() / step).round(1)
    return table


def compare_scenarios(scenarios: dict[str, Scenario]) -> pd.DataFrame:
    """Key figures of several named scenarios side by side.

    Returns
    -------
    DataFrame
        One row per scenario (in the given order): ``scenario``, ``fixed_posts``,
        ``itinerant_posts``, ``cost_eur``, ``fibre_target_pct``, ``need_total``,
        ``pct_population_covered`` and ``pct_need_covered`` (fixed offer at the
        threshold), ``communes_covered``, ``communes_served_itinerant``,
        ``pct_need_covered_with_itinerant`` (covered by a fixed place or post, or served
        by a circuit; commune level).
    """
    rows, cache = [], {}
    for name, sc in _progress.bar(
        scenarios.items(), desc=_fr.PROGRESS_VARIANTS, total=len(scenarios), unit="variante"
    ):
        key = repr(sc.key)
        with _progress.muted_steps():
            if key not in cache:
                cache[key] = prepare(sc)
            plan = run(sc, prepared=cache[key])
        sm, c = plan.summary(), plan.communes
        rows.append(
            {
                "scenario": name,
                "fixed_posts": sm["fixed_posts"],
                "itinerant_posts": sm["itinerant_posts"],
                "cost_eur": sm["cost_eur"],
                "fibre_target_pct": sc.fibre_target_pct,
                "need_total": round(c["need"].sum(), 1),
                "pct_population_covered": round(sm["pct_population_covered_after"], 3),
                "pct_need_covered": round(sm["pct_need_covered_after"], 3),
                "communes_covered": sm["communes_covered_after"],
                "communes_served_itinerant": sm["communes_served_itinerant"],
                "pct_need_covered_with_itinerant": round(
                    100 * c.loc[c["covered_with_itinerant"], "need"].sum() / c["need"].sum(), 3
                ),
            }
        )
    return pd.DataFrame(rows)


def standard_variants(
    scenario: Scenario, *, itinerant_posts: int = 2, fibre_target_pct: float = 100.0
) -> dict[str, Scenario]:
    """The four variants a département compares under one budget of ``scenario.p`` posts:
    fixed only, fixed + itinerant, and both with the fibre what-if."""
    p = scenario.p
    k = min(itinerant_posts, p)
    rep = dataclasses.replace
    fixed = _fr.plural(p, "poste fixe", "postes fixes")
    mixed = f"{_fr.plural(p - k, 'fixe')} + {_fr.plural(k, 'itinérant')}"
    fibre = f"fibre {_fr.number(fibre_target_pct, 1)}\u00a0%"
    return {
        fixed: rep(scenario, posts=p, itinerant_posts=0),
        mixed: rep(scenario, posts=p - k, itinerant_posts=k),
        f"{fixed}, {fibre}": rep(
            scenario, posts=p, itinerant_posts=0, fibre_target_pct=fibre_target_pct
        ),
        f"{mixed}, {fibre}": rep(
            scenario, posts=p - k, itinerant_posts=k, fibre_target_pct=fibre_target_pct
        ),
    }


def compare_demand_units(plan: Plan, *, unit: demand.DemandUnit = "commune") -> pd.DataFrame:
    """The plan's figures beside the same scenario with another demand unit.

    Re-plans ``plan.scenario`` with ``demand_unit=unit`` (territory, offer and need are
    reused from the cache of :func:`prepare`) and lines up the figures that change
    with the unit: population covered before and after, communes covered, the posts
    chosen, and the posts whose main covered population is a representative-point
    artefact (:func:`cnfs_geo.coverage.point_artefacts`).

    Returns
    -------
    DataFrame
        Columns ``figure`` (key), ``plan`` and ``other`` (values: int, float or str);
        ``attrs``: ``unit`` (the other unit's key), ``plan_unit``, ``other_label`` (its
        French label), ``seconds`` (time of the other run).
    """
    t0 = time.perf_counter()
    other = run(dataclasses.replace(plan.scenario, demand_unit=unit))
    rows = []
    a_plan, a_other = (
        coverage.point_artefacts(
            p.units,
            p.communes,
            p.places,
            p.posts,
            threshold=p.scenario.threshold,
            settings=p.settings,
        )
        for p in (plan, other)
    )
    sp, so = plan.summary(), other.summary()
    for key in (
        "units",
        "population_covered_before",
        "pct_population_covered_before",
        "population_covered_after",
        "pct_population_covered_after",
        "communes_covered_before",
        "communes_covered_after",
    ):
        rows.append({"figure": key, "plan": sp[key], "other": so[key]})
    fixed_p = plan.posts[plan.posts["kind"] == "fixed"]
    fixed_o = other.posts[other.posts["kind"] == "fixed"]
    for i in range(max(len(fixed_p), len(fixed_o))):
        rows.append(
            {
                "figure": f"post_{i + 1}",
                "plan": fixed_p["commune"].iloc[i] if i < len(fixed_p) else "",
                "other": fixed_o["commune"].iloc[i] if i < len(fixed_o) else "",
            }
        )
    common = len(set(fixed_p["candidate_id"]) & set(fixed_o["candidate_id"]))
    rows.append({"figure": "posts_in_common", "plan": common, "other": common})
    rows.append({"figure": "point_artefacts", "plan": len(a_plan), "other": len(a_other)})
    out = pd.DataFrame(rows)
    out.attrs.update(
        {
            "unit": unit,
            "plan_unit": plan.scenario.demand_unit,
            "other_label": other.demand_unit,
            "artefacts_other": a_other,
            "seconds": round(time.perf_counter() - t0, 2),
        }
    )
    return out
