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
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from . import (
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
from ._errors import ValidationError
from .settings import DEFAULT, Settings, working_crs

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
    demand_unit : {"commune", "iris", "commune2018"}
        Where people are counted (:func:`cnfs_geo.demand.demand_units`): one point per
        commune, per IRIS, or per 2018 commune (old villages of communes nouvelles).
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
    demand_unit: demand.DemandUnit = "commune"
    travel: str = "crow-fly"
    osm_file: str | None = None
    need_weights: Any = None
    fibre_target_pct: float | None = None
    model: str = "mclp"
    itinerant_posts: int = 0
    settings: Settings = DEFAULT

    def __post_init__(self) -> None:
        problems = []
        if self.demand_unit not in ("commune", "iris", "commune2018"):
            problems.append(
                f"demand_unit={self.demand_unit!r}: use 'commune', 'iris' or 'commune2018'"
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
        base, and ``communes`` gains ``itinerant_circuit`` and
        ``covered_with_itinerant`` (covered by a fixed place/post or served by a circuit).
    itinerant_dropped : DataFrame
        Eligible communes no circuit serves, with the reason.
    offer_report, need_report
        What the ingest stages read, kept, merged, rejected.
    solution : dict
        Placement solution record (objective, bound, gap, solver, time).
    travel_model : str
    timings : dict
        Seconds per stage.
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
    gap_communes: pd.DataFrame = field(default_factory=pd.DataFrame)
    gap_clusters: gpd.GeoDataFrame = field(default_factory=gpd.GeoDataFrame)
    timings: dict = field(default_factory=dict)

    @property
    def epci_without_project(self) -> gpd.GeoDataFrame:
        """EPCI with no lieu de médiation and no CNFS (the Anjou criterion)."""
        return self.epci[~self.epci["has_project"].astype(bool)]

    @property
    def settings(self) -> Settings:
        return self.scenario.settings

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
            "travel_model": self.travel_model,
        }


def candidate_sites(communes: gpd.GeoDataFrame, places: gpd.GeoDataFrame) -> pd.DataFrame:
    """Candidate host sites for new posts.

    Every commune's chef-lieu point (town hall area; representative point where
    unknown), id ``"commune:<insee>"``, host "Mairie de <nom>", and every existing
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
            "host": ("Mairie de " + communes["nom"]).to_numpy(),
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


class _Laps:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._t0 = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self._t0, 3)
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


def _data_fingerprint(data_dir: catalog.DataDir) -> tuple:
    """Path, size and modification time of every file of a data directory."""
    root = data_dir.path
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            out.append((str(path.relative_to(root)), st.st_size, st.st_mtime_ns))
    return (str(root), tuple(out))


def _base_frames(
    scenario: Scenario, dep: str, data_dir: catalog.DataDir, lap: _Laps
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame, Any, Any]:
    """Communes (with need), EPCI, outline, places and the offer and need reports, built
    once per département, data files, settings and need weights (copies are returned)."""
    s = scenario.settings
    key = (dep, _data_fingerprint(data_dir), repr(s.as_dict()), repr(scenario.need_weights))
    hit = _BASE_CACHE.get(key)
    if hit is None:
        communes = territory.communes_from_cog(dep, data_dir)
        epci = territory.epci_from_communes(communes, data_dir)
        outline = territory.departement_outline(communes)
        lap("territory")
        places, offer_report = offer.places_from_sources(communes, data_dir, settings=s)
        lap("offer")
        communes, need_report = need.need_from_sources(
            communes, data_dir, weights=scenario.need_weights
        )
        hit = (communes, epci, outline, places, offer_report, need_report)
        _BASE_CACHE[key] = hit
        while len(_BASE_CACHE) > _BASE_CACHE_SIZE:
            _BASE_CACHE.popitem(last=False)
    else:
        _BASE_CACHE.move_to_end(key)
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


def prepare(
    scenario: Scenario, *, base: tuple | None = None, road_buffer_m: float | None = None
) -> Prepared:
    """Territory, offer, need, demand units, coverage before, gaps, candidates and OD.

    ``base`` (communes with need, EPCI, outline, places, offer report, need report), when
    given, replaces the reading of the files: :mod:`cnfs_geo.national` builds it from the
    national frames read once (``scenario.departement`` must then be a normalised code).
    ``road_buffer_m``: with road travel, keep only the road graph within this distance of
    the département (:func:`cnfs_geo.roads.clip_road_graph`; a regional extract then
    costs one département's graph).
    """
    s = scenario.settings
    t = scenario.threshold
    lap = _Laps()
    data_dir = catalog.resolve_data_dir(scenario.data_dir)
    if base is None:
        dep = territory.check_departement(scenario.departement, data_dir)
        communes, epci, outline, places, offer_report, need_report = _base_frames(
            scenario, dep, data_dir, lap
        )
    else:
        communes, epci, outline, places, offer_report, need_report = base
    if scenario.fibre_target_pct is not None:
        communes = need.fibre_what_if(communes, target_pct=scenario.fibre_target_pct)
    units = demand.demand_units(communes, data_dir, unit=scenario.demand_unit)
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
        else None
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
    communes["gap_cluster"] = gaps.gap_cluster_ids(communes, is_gap=communes["priority_gap"])
    clusters = gaps.gap_clusters(
        communes, is_gap=communes["priority_gap"], places=places, settings=s
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
    )


def run(scenario: Scenario, *, prepared: Prepared | None = None) -> Plan:
    """Run the whole pipeline for ``scenario``. See :class:`Plan` for the result.

    ``prepared`` (from :func:`prepare` on a scenario with the same département,
    threshold, data and settings) skips the stages that do not depend on the number
    of posts.
    """
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

    circuits, timetable, dropped = _itinerant(scenario, communes, list(posts["insee"]))
    if len(circuits):
        posts = pd.concat(
            [posts, _itinerant_posts(circuits, communes, len(posts))], ignore_index=True
        )
    stop_of = {c: r.circuit_id for r in circuits.itertuples() for c in r.stops.split(";")}
    communes["itinerant_circuit"] = communes.index.map(stop_of)
    communes["covered_with_itinerant"] = (
        communes["covered_after"] | communes["itinerant_circuit"].notna()
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
    scenario: Scenario, communes: gpd.GeoDataFrame, fixed_hosts: list[str]
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    """Circuits serving what the fixed posts leave uncovered (empty frames when none)."""
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
        )
    s = scenario.settings
    # density, reach, stop hours and week length: the settings' itinerant_* values
    res = itinerant.itinerant_circuits(
        communes,
        n_posts=scenario.itinerant_posts,
        settings=s,
        covered="covered_after",
        exclude=sorted(set(fixed_hosts)),
    )
    return res.circuits, res.timetable, res.dropped


def _itinerant_posts(
    circuits: gpd.GeoDataFrame, communes: gpd.GeoDataFrame, start: int
) -> gpd.GeoDataFrame:
    base = communes.loc[circuits["base_insee"]]
    return gpd.GeoDataFrame(
        {
            "post_id": [f"P{start + i + 1:02d}" for i in range(len(circuits))],
            "candidate_id": ("commune:" + circuits["base_insee"]).to_numpy(),
            "insee": circuits["base_insee"].to_numpy(),
            "commune": circuits["base_nom"].to_numpy(),
            "epci": base["epci"].to_numpy(),
            "host": ("Médiateur itinérant basé à " + circuits["base_nom"]).to_numpy(),
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
    for n in ns:
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
    for name, sc in scenarios.items():
        key = repr(sc.key)
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
    return {
        f"{p} postes fixes": rep(scenario, posts=p, itinerant_posts=0),
        f"{p - k} fixes + {k} itinérants": rep(scenario, posts=p - k, itinerant_posts=k),
        f"{p} postes fixes, fibre {fibre_target_pct:g} %": rep(
            scenario, posts=p, itinerant_posts=0, fibre_target_pct=fibre_target_pct
        ),
        f"{p - k} fixes + {k} itinérants, fibre {fibre_target_pct:g} %": rep(
            scenario, posts=p - k, itinerant_posts=k, fibre_target_pct=fibre_target_pct
        ),
    }
