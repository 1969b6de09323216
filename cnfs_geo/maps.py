"""Interactive coverage map of a plan (folium / Leaflet), labelled in French.

:func:`coverage_map` draws the plan's layers (:func:`layer_names`) with a legend and writes
one deterministic HTML file. Styles are in :mod:`cnfs_geo._map_style`, French texts in
:mod:`cnfs_geo._fr`, CSS/JS in ``templates/map_*.j2``, Leaflet inlined from
``cnfs_geo/static`` (the page needs no network; base maps are optional layers, off by
default); what the map shows and how the file is kept small, offline and reproducible:
``docs/methods_outputs.md``.

Examples
--------
>>> from cnfs_geo.plan import Scenario, run
>>> from cnfs_geo.maps import coverage_map
>>> m = coverage_map(run(Scenario(departement="49", posts=8)))
>>> type(m).__name__
'Map'
"""

from __future__ import annotations

import base64
import functools
import html
import json
import logging
import math
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, Figure, MacroElement
from jinja2 import Template

from . import _fr, catalog
from ._errors import CrsError, ValidationError
from ._fr import (
    ATTRIBUTION_IGN,
    ATTRIBUTION_OSM,
    BASEMAP_UNAVAILABLE,
    CIRCUIT_TIP_LABELS,
    CLUSTER_TIP_LABELS,
    COMMUNE_TIP_LABELS,
    EPCI_TIP_LABELS,
    ITINERANT_POST,
    KIND_LABELS,
    LAYER_AFTER,
    LAYER_BASEMAP,
    LAYER_BASEMAP_IGN,
    LAYER_BEFORE,
    LAYER_CIRCUITS,
    LAYER_CLUSTERS,
    LAYER_EPCI,
    LAYER_GAPS,
    LAYER_NEED,
    LAYER_NO_BASEMAP,
    LAYER_NO_PROJECT,
    LAYER_POSTS,
    LAYER_PRIORITY,
    LAYER_UNITS_AFTER,
    LAYER_UNITS_BEFORE,
    LOCATED_LABELS,
    NO_PROJECT_TIP_LABELS,
    PLACE_TIP_LABELS,
    PRIORITY_TIP_LABELS,
    SERVICE_LABELS,
    STOP_TIP_LABELS,
    UNIT_NOUNS,
    UNIT_TIP_LABELS,
    UNIT_TYPE_LABELS,
    host_kind_label,
    kinds_label,
)
from ._map_style import (
    CLUSTER_COLOUR,
    EPCI_COLOUR,
    GAP_REMAINING_COLOUR,
    GAP_SOLVED_COLOUR,
    KIND_COLOURS,
    MINUTE_COLOURS,
    NEED_COLOURS,
    NO_PLACE_COLOUR,
    NO_PROJECT_COLOUR,
    POST_COLOUR,
    PRIORITY_COLOURS,
    PRIORITY_GAP_LINE,
    circuit_colour,
    main_kind,
    minute_class_labels,
    minute_colour,
    need_class_labels,
    need_colour,
    priority_class_labels,
    priority_colour,
)
from ._plan_view import (
    demand_unit_key,
    demand_unit_short,
    departement_name,
    epci_without_project,
    gap_clusters_or_none,
    has_circuits,
    has_units_layer,
    is_itinerant_post,
    posts_with_coverage,
    stop_label,
    stop_points,
    timetable_slots,
)
from .settings import GEOGRAPHIC_CRS
from .territory import dissolve

log = logging.getLogger(__name__)

MAP_FILENAME = "carte_couverture.html"
#: Leaflet ``zIndexOffset`` of the zone labels (G01…) and of the post markers: a post is
#: never hidden under a label (markers are otherwise stacked by latitude).
LABEL_Z_BELOW = -1000
POST_Z_ABOVE = 1000
# Demand-unit polygons (IRIS: 367 in Maine-et-Loire, twice the communes) are drawn
# coarser than the communes to keep the file small: 100 m tolerance, 4 decimals (~10 m).
UNITS_SIMPLIFY_M = 100.0
UNITS_DECIMALS = 4
# Base maps (off by default: the map needs no network); the Géoplateforme serves the
# Plan IGN as WMTS in Web Mercator (tile matrix set PM), addressed like XYZ tiles.
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
IGN_TILES = (
    "https://data.geopf.fr/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER=GEOGRAPHICALGRIDSYSTEMS.PLANIGNV2&STYLE=normal&TILEMATRIXSET=PM"
    "&FORMAT=image/png&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}"
)


def _template_text(name: str) -> str:
    """Text of a template file of the package (``cnfs_geo/templates``)."""
    return (
        resources.files("cnfs_geo").joinpath("templates").joinpath(name).read_text(encoding="utf-8")
    )


def base_layer_names() -> list[str]:
    """Names of the map's base layers (radio buttons), the first one checked: no base
    map (works offline), OpenStreetMap, Plan IGN (both need internet)."""
    return [LAYER_NO_BASEMAP, LAYER_BASEMAP, LAYER_BASEMAP_IGN]


def _static_bytes(*parts: str) -> bytes:
    """Bytes of a vendored file of the package (``cnfs_geo/static``)."""
    node = resources.files("cnfs_geo").joinpath("static")
    for part in parts:
        node = node.joinpath(part)
    return node.read_bytes()


def _data_uri(*parts: str) -> str:
    return "data:image/png;base64," + base64.b64encode(_static_bytes(*parts)).decode("ascii")


def leaflet_assets() -> tuple[str, str]:
    """Leaflet's CSS (images as ``data:`` URIs) and JavaScript, vendored from the npm
    package ``leaflet@1.9.4`` (``cnfs_geo/static/leaflet``, BSD-2-Clause), ready to inline."""
    css = _static_bytes("leaflet", "leaflet.css").decode("utf-8")
    for name in ("layers.png", "layers-2x.png", "marker-icon.png"):
        css = css.replace(f"url(images/{name})", f"url({_data_uri('leaflet', 'images', name)})")
    js = _static_bytes("leaflet", "leaflet.js").decode("utf-8")
    js = "\n".join(ln for ln in js.splitlines() if not ln.startswith("//# sourceMappingURL"))
    licence = "/* Leaflet 1.9.4, https://leafletjs.com, BSD-2-Clause (see its LICENSE) */\n"
    return licence + css, licence + js


def layer_names(plan: Any) -> list[str]:
    """Names of the map's toggleable layers, in drawing order (French).

    Always: time before/after, need, priority score, gap communes, EPCI outlines,
    places (one layer per kind), new posts. Only when there is something to draw:
    time per demand unit before/after (units finer than communes), EPCI without a
    digital project, priority territories (gap clusters), itinerant circuits.
    """
    t = _fr.number(plan.scenario.threshold)
    names = [LAYER_BEFORE, LAYER_AFTER, LAYER_NEED, LAYER_PRIORITY, f"{LAYER_GAPS} (> {t} min)"]
    if has_units_layer(plan):
        noun = UNIT_NOUNS.get(demand_unit_key(plan), ("unité de demande", ""))[0]
        names += [f"{LAYER_UNITS_BEFORE} {noun}", f"{LAYER_UNITS_AFTER} {noun}"]
    if len(epci_without_project(plan)):
        names.append(LAYER_NO_PROJECT)
    names.append(LAYER_EPCI)
    if gap_clusters_or_none(plan) is not None:
        names.append(LAYER_CLUSTERS)
    names += [f"Lieux : {label}" for label in KIND_LABELS.values()]
    if has_circuits(plan):
        names.append(LAYER_CIRCUITS)
    names.append(LAYER_POSTS)
    return names


# --------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------
def _round_coords(geoms: gpd.GeoSeries, decimals: int) -> gpd.GeoSeries:
    out = shapely.transform(geoms.to_numpy(), lambda c: np.round(c, decimals))
    return gpd.GeoSeries(out, index=geoms.index, crs=geoms.crs)


def simplified_communes(
    communes: gpd.GeoDataFrame, *, simplify_m: float = 50.0, decimals: int = 5
) -> gpd.GeoSeries:
    """Commune polygons simplified for the web, in EPSG:4326.

    Parameters
    ----------
    communes : GeoDataFrame
        Index ``insee``; polygon ``geometry`` in a projected (metric) CRS.
    simplify_m : float
        Tolerance in metres of the coverage simplification (shared borders stay
        shared: no slivers or overlaps appear between neighbours).
    decimals : int
        Decimals kept on longitudes/latitudes (5 ≈ 1 m).

    Returns
    -------
    GeoSeries
        Same index, EPSG:4326.
    """
    if communes.crs is None or not communes.crs.is_projected:
        raise CrsError(
            "communes",
            [
                f"geometry CRS is {communes.crs}: a projected CRS in "
                "metres is needed to simplify (use the working CRS, "
                "e.g. communes.to_crs('EPSG:2154'))"
            ],
        )
    geoms = communes.geometry
    try:
        simple = gpd.GeoSeries(
            shapely.coverage_simplify(geoms.to_numpy(), simplify_m),
            index=geoms.index,
            crs=geoms.crs,
        )
    except Exception as exc:  # noqa: BLE001 - invalid coverage (overlaps): fall back
        log.warning("coverage simplification failed (%s); simplifying each commune alone", exc)
        simple = geoms.simplify(simplify_m, preserve_topology=True)
    simple = simple.where(~simple.is_empty, geoms)
    return _round_coords(simple.to_crs(GEOGRAPHIC_CRS), decimals)


def _clean(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    return v


def _rows(frame: pd.DataFrame) -> Iterator[tuple[Any, Any]]:
    """``(index, {column: value})`` per row: the values ``frame.iterrows()`` gives (rows
    of ``frame.to_numpy()``, one common dtype), without building a Series per row."""
    cols = list(frame.columns)
    for key, values in zip(frame.index, frame.to_numpy(), strict=True):
        yield key, dict(zip(cols, values, strict=True))


def _ring(ring: Any) -> list:
    return np.asarray(ring.coords).tolist()


def _geometry(geom: Any) -> Any:
    """``shapely.geometry.mapping(geom)`` for the JSON of the map: the same numbers, rings
    as lists read in one go (not one tuple per vertex); other geometries (and 3D ones) as
    ``mapping`` gives them."""
    kind = geom.geom_type
    if geom.has_z or kind not in ("Polygon", "MultiPolygon"):
        return shapely.geometry.mapping(geom)
    parts = [geom] if kind == "Polygon" else list(geom.geoms)
    coords = [
        [_ring(p.exterior), *(_ring(h) for h in p.interiors)] if not p.exterior.is_empty else []
        for p in parts
    ]
    return {"type": kind, "coordinates": coords[0] if kind == "Polygon" else coords}


def _features(geoms: gpd.GeoSeries, props: pd.DataFrame) -> dict:
    """FeatureCollection with ``id`` = index (str) and JSON-ready properties."""
    feats = []
    cols = list(props.columns)
    # rows as props.loc[key] gives them (same common dtype), without a Series per row
    rows = dict(zip(props.index, props.to_numpy()))
    for key, geom in zip(geoms.index, geoms.to_numpy()):
        if geom is None or geom.is_empty:
            continue
        p = {k: _clean(v) for k, v in zip(cols, rows[key], strict=True)}
        feats.append(
            {
                "type": "Feature",
                "id": str(key),
                "properties": p,
                "geometry": _geometry(geom),
            }
        )
    return {"type": "FeatureCollection", "features": feats}


def _compact_json(obj: Any) -> str:
    """JSON without spaces or ASCII escapes, safe inside a <script> element."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


# --------------------------------------------------------------------------------------
# Map
# --------------------------------------------------------------------------------------
def _check_plan(plan: Any) -> None:
    need = {
        "communes": [
            "nom",
            "epci_nom",
            "population",
            "need_index",
            "need",
            "pct_fibre",
            "minutes_before",
            "minutes_after",
            "covered_before",
            "covered_after",
            "gap",
            "accessibility",
            "ratio_to_target",
            "priority_score",
            "priority_rank",
            "priority_gap",
            "gap_reasons",
            "gap_cluster",
        ],
        "places": ["place_id", "name", "kinds", "service_level", "advisors", "insee"],
        "posts": ["post_id", "insee", "commune", "host", "covered_population", "covered_need"],
        "epci": ["nom", "has_project"],
    }
    problems = []
    for frame, cols in need.items():
        df = getattr(plan, frame, None)
        if df is None:
            problems.append(f"plan.{frame} is missing")
            continue
        problems += [f"plan.{frame}: missing column {c!r}" for c in cols if c not in df.columns]
        if not isinstance(df, gpd.GeoDataFrame) or df.crs is None:
            problems.append(f"plan.{frame}: not a GeoDataFrame with a CRS")
    cl = getattr(plan, "gap_clusters", None)
    if cl is not None and len(cl):
        problems += [
            f"plan.gap_clusters: missing column {c!r}"
            for c in CLUSTER_TIP_COLUMNS
            if c not in cl.columns
        ]
    if has_circuits(plan):
        problems += [
            f"plan.circuits: missing column {c!r}"
            for c in CIRCUIT_COLUMNS
            if c not in plan.circuits.columns
        ]
        tt = getattr(plan, "timetable", None)
        if tt is None:
            problems.append("plan.timetable is missing (plan.circuits is not empty)")
        else:
            problems += [
                f"plan.timetable: missing column {c!r}"
                for c in TIMETABLE_COLUMNS
                if c not in tt.columns
            ]
    if problems:
        raise ValidationError("plan", problems + ["build the plan with cnfs_geo.plan.run()"])


#: Columns of ``plan.gap_clusters`` used by the map and the report.
CLUSTER_TIP_COLUMNS = [
    "cluster_id",
    "n_communes",
    "communes",
    "names",
    "epci_nom",
    "population",
    "need",
    "need_index_mean",
    "minutes_mean",
    "minutes_max",
    "nearest_place_name",
    "nearest_place_minutes",
    "n_places",
    "n_accompaniment_places",
    "area_km2",
    "geometry",
]
#: Columns of ``plan.circuits`` / ``plan.timetable`` used by the map and the report.
CIRCUIT_COLUMNS = [
    "circuit_id",
    "base_insee",
    "base_nom",
    "stops",
    "n_stops",
    "population",
    "need",
    "km_per_week",
    "minutes_per_week",
    "hours_at_stops",
    "geometry",
]
TIMETABLE_COLUMNS = ["circuit_id", "day", "half_day", "insee", "nom", "hours", "travel_minutes"]


def _tip(pairs: list[tuple[str, str]], title: str) -> str:
    """Static tooltip HTML (used for the few post markers)."""
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in pairs)
    return f'<div class="cg-tip"><b>{html.escape(title)}</b><table>{rows}</table></div>'


def _commune_props(plan: Any) -> pd.DataFrame:
    """Per commune: tooltip values ``t``, class colours ``b``/``a``/``n``/``g`` and
    the gap flag ``gap``."""
    c = plan.communes
    pl = plan.places
    n_places = pl["insee"].value_counts()
    n_acc = pl.loc[pl["service_level"] == "accompaniment", "insee"].value_counts()
    t = _fr.number(plan.scenario.threshold)
    nearest = (
        c["nearest_place_name"]
        if "nearest_place_name" in c.columns
        else pd.Series(None, index=c.index)
    )
    # finer demand units: a commune is covered when at least half its population is
    by_share = (
        demand_unit_key(plan) != "commune"
        and "pct_covered_before" in c.columns
        and "pct_covered_after" in c.columns
    )
    circuit = (
        c["itinerant_circuit"]
        if "itinerant_circuit" in c.columns
        else pd.Series(None, index=c.index, dtype=object)
    )
    tips = []
    # the columns read below only (rows as objects, as from the whole frame: faster)
    cols = ["nom", "epci_nom", "population", "minutes_before", "minutes_after"]
    cols += ["covered_before", "covered_after", "need_index", "need", "pct_fibre"]
    cols += ["pct_covered_before", "pct_covered_after"]
    for insee, r in _rows(c[[x for x in cols if x in c.columns]]):
        status = _fr.coverage_status(r["covered_before"], r["covered_after"], t)
        near = nearest.get(insee)
        tips.append(
            [
                f"{r['nom']} ({insee})",
                str(r["epci_nom"]) if pd.notna(r["epci_nom"]) else "—",
                _fr.integer(r["population"]) + " hab.",
                _fr.minutes(r["minutes_before"]),
                str(near) if pd.notna(near) else "—",
                _fr.minutes(r["minutes_after"]),
                status,
                _fr.number(r["need_index"], 1) + " / 10",
                _fr.integer(r["need"]) + " hab.",
                _fr.percent(r["pct_fibre"]),
                f"{int(n_places.get(insee, 0))} dont {int(n_acc.get(insee, 0))} d'accompagnement",
                (
                    f"{_fr.percent(r['pct_covered_before'])} → "
                    f"{_fr.percent(r['pct_covered_after'])}"
                    if by_share
                    else None
                ),
                (
                    f"desservie par le circuit {circuit.get(insee)} (permanence "
                    f"hebdomadaire à moins de {t})"
                    if isinstance(circuit.get(insee), str)
                    else None
                ),
            ]
        )
    return pd.DataFrame(
        {
            "t": tips,
            "b": c["minutes_before"].map(minute_colour),
            "a": c["minutes_after"].map(minute_colour),
            "n": c["need_index"].map(need_colour),
            "g": np.where(c["covered_after"], GAP_SOLVED_COLOUR, GAP_REMAINING_COLOUR),
            "gap": [bool(g) for g in c["gap"]],
            "p": _priority_tips(plan),
            "ps": c["priority_score"].map(priority_colour),
            "pg": [str(int(bool(g))) for g in c["priority_gap"]],
        },
        index=c.index,
    )


def _priority_tips(plan: Any) -> list[list]:
    """Per commune: tooltip values of the priority-score layer."""
    c = plan.communes
    n = len(c)
    tips = []
    cols = ["nom", "epci_nom", "population", "priority_gap", "gap_cluster", "ratio_to_target"]
    cols += ["priority_score", "priority_rank", "gap_reasons", "accessibility"]
    cols += ["minutes_before", "need_index", "pct_fibre"]
    for insee, r in _rows(c[[x for x in cols if x in c.columns]]):
        gap = bool(r["priority_gap"])
        cl = r["gap_cluster"]
        ratio = r["ratio_to_target"]
        tips.append(
            [
                f"{r['nom']} ({insee})",
                str(r["epci_nom"]) if pd.notna(r["epci_nom"]) else "—",
                _fr.integer(r["population"]) + " hab.",
                _fr.number(r["priority_score"], 1),
                f"{_fr.integer(r['priority_rank'])} sur {_fr.integer(n)}",
                (f"oui, zone {cl}" if isinstance(cl, str) and cl else "oui") if gap else "non",
                str(r["gap_reasons"])
                if gap and isinstance(r["gap_reasons"], str) and r["gap_reasons"]
                else None,
                _fr.number(r["accessibility"], 2) + " conseiller pour 10\u202f000 hab. pondérés",
                (
                    f"{_fr.number(100 * ratio, 0)}\u00a0% de la cible"
                    if pd.notna(ratio) and math.isfinite(float(ratio))
                    else "—"
                ),
                _fr.minutes(r["minutes_before"]),
                _fr.number(r["need_index"], 1) + " / 10",
                _fr.percent(r["pct_fibre"]),
            ]
        )
    return tips


def _unit_features(plan: Any, *, simplify_m: float, decimals: int) -> dict:
    """Demand units (``plan.units``) as a FeatureCollection: tooltip ``t``, colours
    ``b``/``a`` of the minutes before/after."""
    u = plan.units
    t = _fr.number(plan.scenario.threshold)
    geoms = simplified_communes(u, simplify_m=simplify_m, decimals=decimals)
    names = plan.communes["nom"]
    tips = []
    cols = ["nom", "insee", "unit_type", "population", "need", "minutes_before"]
    cols += ["minutes_after", "covered_before", "covered_after"]
    for uid, r in _rows(u[[x for x in cols if x in u.columns]]):
        status = _fr.coverage_status(r["covered_before"], r["covered_after"], t)
        insee = str(r["insee"])
        tips.append(
            [
                f"{r['nom']} ({uid})",
                f"{names.get(insee, insee)} ({insee})",
                UNIT_TYPE_LABELS.get(str(r.get("unit_type")), str(r.get("unit_type"))),
                _fr.integer(r["population"]) + " hab.",
                _fr.integer(r["need"]) + " hab.",
                _fr.minutes(r["minutes_before"]),
                _fr.minutes(r["minutes_after"]),
                status,
            ]
        )
    props = pd.DataFrame(
        {
            "t": tips,
            "b": u["minutes_before"].map(minute_colour),
            "a": u["minutes_after"].map(minute_colour),
        },
        index=u.index,
    )
    return _features(
        geoms.set_axis(geoms.index.astype(str)), props.set_axis(props.index.astype(str))
    )


def _cluster_features(plan: Any, geoms: gpd.GeoSeries, decimals: int) -> dict:
    """Priority territories: one polygon per cluster (dissolved from the simplified
    commune polygons, so borders match the commune layers) and one label point."""
    cl = gap_clusters_or_none(plan)
    assert cl is not None  # the caller draws priority territories only when there are some
    feats = []
    labels = []
    for r in cl.sort_values("cluster_id").itertuples(index=False):
        members = [m for m in str(r.communes).split(";") if m in geoms.index]
        if not members:
            log.warning(
                "map: priority territory %s has no commune in plan.communes; not drawn",
                r.cluster_id,
            )
            continue
        poly = shapely.union_all(geoms.loc[members].to_numpy())
        poly = shapely.set_precision(poly, 10.0**-decimals)
        near = (
            f"{r.nearest_place_name} ({_fr.minutes(r.nearest_place_minutes)})"
            if isinstance(r.nearest_place_name, str)
            else "—"
        )
        names = str(r.names).replace(";", ",")
        tip = [
            f"Territoire prioritaire {r.cluster_id}",
            f"{_fr.integer(r.n_communes)} : {names}",
            str(r.epci_nom).replace(";", ",") if pd.notna(r.epci_nom) else "—",
            _fr.integer(r.population) + " hab.",
            _fr.integer(r.need) + " hab.",
            _fr.number(r.need_index_mean, 1) + " / 10",
            f"{_fr.minutes(r.minutes_mean)} ({_fr.minutes(r.minutes_max)})",
            near,
            (
                f"{_fr.integer(r.n_places)} dont {_fr.integer(r.n_accompaniment_places)} "
                "d'accompagnement"
                if pd.notna(r.n_places)
                else "—"
            ),
            _fr.number(r.area_km2, 0) + "\u00a0km²",
        ]
        feats.append(
            {
                "type": "Feature",
                "id": str(r.cluster_id),
                "properties": {"t": tip},
                "geometry": _geometry(poly),
            }
        )
        pt = shapely.set_precision(poly.representative_point(), 10.0**-decimals)
        icon = (
            f'<div class="cg-lab" style="border-color:{CLUSTER_COLOUR};color:'
            f'{CLUSTER_COLOUR}">{html.escape(str(r.cluster_id))}</div>'
        )
        labels.append(
            {
                "type": "Feature",
                "id": f"{r.cluster_id}:etiquette",
                # under the posts and the circuit stops that share the place
                "properties": {"t": tip, "icon": icon, "z": LABEL_Z_BELOW},
                "geometry": shapely.geometry.mapping(pt),
            }
        )
    return {"type": "FeatureCollection", "features": feats + labels}


def _no_project_features(plan: Any, epci_poly: gpd.GeoSeries) -> dict:
    """EPCI without a digital project (no lieu de médiation, no CNFS): polygons."""
    ep = epci_without_project(plan)
    c = plan.communes
    tips = {}
    for e, r in ep.iterrows():
        members = c[c["epci"] == e]
        mm = (
            f"{_fr.minutes(r['minutes_mean'])} ({_fr.minutes(r['minutes_max'])})"
            if "minutes_mean" in ep.columns
            else "—"
        )
        tips[e] = [
            f"{r['nom']} : sans projet numérique",
            str(e),
            str(len(members)),
            _fr.integer(members["population"].sum()) + " hab.",
            _fr.integer(members["need"].sum()) + " hab.",
            _fr.integer(r.get("n_lieu_mediation", 0)),
            _fr.integer(r.get("n_cnfs", 0)),
            _fr.integer(r.get("n_france_services", 0)),
            _fr.integer(r.get("n_aidants_connect", 0)),
            mm,
        ]
    keep = [e for e in epci_poly.index if e in tips]
    return _features(epci_poly.loc[keep], pd.DataFrame({"t": [tips[e] for e in keep]}, index=keep))


def _circuit_features(plan: Any, decimals: int) -> dict:
    """Itinerant circuits: the tour line of each circuit, its base (square label) and
    its stops (numbered in tour order), coloured by circuit."""
    circuits = plan.circuits.sort_values("circuit_id", kind="stable")
    c = plan.communes
    sp = stop_points(plan)
    names = sp["nom"]
    slots = timetable_slots(plan)
    tt = plan.timetable
    hours = (
        tt.groupby([tt["circuit_id"].astype(str), tt["insee"].astype(str)])["hours"].sum()
        if len(tt)
        else pd.Series(dtype=float)
    )
    lines = gpd.GeoSeries(circuits.geometry.to_numpy(), crs=circuits.crs).to_crs(GEOGRAPHIC_CRS)
    lines = _round_coords(lines, decimals)
    posts = plan.posts
    with_post = (
        set(posts.loc[posts["kind"].astype(str) == "itinerant", "circuit_id"].astype(str))
        if {"kind", "circuit_id"} <= set(posts.columns)
        else set()
    )
    feats, points = [], []
    for i, (r, line) in enumerate(zip(circuits.itertuples(index=False), lines)):
        colour = circuit_colour(i)
        cid = str(r.circuit_id)
        stops = [x for x in str(r.stops).split(";") if x]
        stop_txt = " → ".join(f"{names.get(x, x)}" for x in stops)
        tip = [
            f"Circuit itinérant {cid}",
            f"{r.base_nom} ({r.base_insee})",
            f"{stop_txt} → retour à la base",
            f"{_fr.integer(r.km_per_week)}\u00a0km",
            _fr.hours(float(r.minutes_per_week) / 60.0),
            _fr.hours(r.hours_at_stops),
            _fr.integer(r.population) + " hab.",
            _fr.integer(r.need) + " hab.",
        ]
        if line is not None and not line.is_empty:
            feats.append(
                {
                    "type": "Feature",
                    "id": cid,
                    "properties": {"t": tip, "k": f"l{i}"},
                    "geometry": shapely.geometry.mapping(line),
                }
            )
        xy = _round_coords(
            gpd.GeoSeries(
                gpd.points_from_xy(
                    [c.at[str(r.base_insee), "chef_lieu_x"], *sp.loc[stops, "x"]],
                    [c.at[str(r.base_insee), "chef_lieu_y"], *sp.loc[stops, "y"]],
                ),
                crs=c.crs,
            ).to_crs(GEOGRAPHIC_CRS),
            decimals,
        )
        if cid not in with_post:  # else the post marker (circuit colour) marks the base
            base_icon = (
                f'<div class="cg-lab cg-base" style="background:{colour}">{html.escape(cid)}</div>'
            )
            points.append(
                {
                    "type": "Feature",
                    "id": f"{cid}:base",
                    "properties": {"t": tip, "icon": base_icon},
                    "geometry": shapely.geometry.mapping(xy.iloc[0]),
                }
            )
        for k, (insee, pt) in enumerate(zip(stops, xy.iloc[1:]), start=1):
            sl = slots.get((cid, insee), [])
            stip = [
                stop_label(names.get(insee, insee), insee),
                f"{cid} (base : {r.base_nom})",
                f"{k} sur {len(stops)}",
                _fr.integer(sp.at[insee, "population"]) + " hab.",
                ", ".join(sl) if sl else "—",
                _fr.hours(hours.get((cid, insee), float("nan"))),
            ]
            icon = (
                f'<div class="cg-lab cg-stop" style="border-color:{colour};color:{colour}">'
                f"{k}</div>"
            )
            points.append(
                {
                    "type": "Feature",
                    "id": f"{cid}:{k}",
                    "properties": {"t": stip, "icon": icon, "l": STOP_TIP_LABELS},
                    "geometry": shapely.geometry.mapping(pt),
                }
            )
    return {"type": "FeatureCollection", "features": feats + points}


_SHARED_DATA = _template_text("map_shared_data.js.j2")


@functools.cache
def _compiled(text: str) -> Template:
    """A jinja2 template compiled once and shared by the elements that render it
    (compiling costs more than rendering a layer)."""
    return Template(text)


_NEWLINE = re.compile(r"\r\n|\r|\n")  # jinja2.lexer.newline_re
_JINJA_MARKS = ("{{", "{%", "{#")


class _Text(Element):
    """A macro's rendered text, as branca's ``Element(text)`` renders it, without compiling
    the text as a jinja2 template: for a text without template syntax jinja2 gives the
    text back, newlines normalised to ``\n`` and one trailing newline dropped."""

    def __init__(self, text: str) -> None:
        super().__init__()
        text = _NEWLINE.sub("\n", text)
        self._text = text[:-1] if text.endswith("\n") else text

    def render(self, **kwargs: Any) -> str:
        return self._text


def _text_element(text: str) -> Element:
    """``Element(text)`` as branca adds it (compiled, rendered as a template), or the
    same output without compiling when ``text`` has no template syntax."""
    return Element(text) if any(m in text for m in _JINJA_MARKS) else _Text(text)


class _PlainMacro(MacroElement):
    """A MacroElement of this module rendered as branca renders it (macros ``header``,
    ``html``, ``script`` added to the figure, then the children), except that the
    macros' output is not compiled again as a template when it has no template syntax
    (branca compiles it: the shared GeoJSON data and the inlined Leaflet would cost more
    to compile than the rest of the map). Only these elements change; the HTML is the
    same, byte for byte."""

    def render(self, **kwargs: Any) -> Any:  # None, as MacroElement.render
        figure = self.get_root()
        if not isinstance(figure, Figure):
            raise TypeError("You cannot render this Element if it is not in a Figure.")
        macros = self._template.module.__dict__
        for part in ("header", "html", "script"):
            macro = macros.get(part)
            if macro is not None:
                getattr(figure, part).add_child(
                    _text_element(macro(self, kwargs)), name=self.get_name()
                )
        for element in self._children.values():
            element.render(**kwargs)


class _SharedData(_PlainMacro):
    """GeoJSON written once as a compact JS variable, drawn by several layers."""

    def __init__(self, data: dict, name: str = "CommunesData"):
        super().__init__()
        self._name = name
        self.json = _compact_json(data)
        self._template = _compiled(_SHARED_DATA)


_JSON_LAYER = _template_text("map_json_layer.js.j2")


class _JsonLayer(folium.map.Layer):
    """A toggleable Leaflet GeoJSON layer drawn from a :class:`_SharedData`.

    Polygons/lines get ``style`` (fill colour from property ``colour_key`` when
    given, then the entry of ``styles`` named by property ``style_key``; ``hatch``
    turns the fill colour into a hatching pattern on the canvas renderer); points
    become circle markers styled by ``point_styles[properties[point_key]]``, or,
    with ``point_icons`` and a property ``icon`` (HTML), a label marker.
    ``filter_key`` keeps features whose property is true. Tooltips are built from
    ``labels`` (or the feature's own list ``properties["l"]``) and each feature's
    list ``properties[tip_key]``.
    """

    def __init__(
        self,
        source: _SharedData,
        name: str,
        *,
        labels: list[str],
        show: bool = True,
        style: dict | None = None,
        colour_key: str | None = None,
        filter_key: str | None = None,
        highlight: dict | None = None,
        point_styles: dict | None = None,
        point_key: str | None = None,
        tip_key: str = "t",
        style_key: str | None = None,
        styles: dict | None = None,
        point_icons: bool = False,
        hatch: bool = False,
    ):
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "Layer"
        self.source = source
        self.labels = labels
        self.style = style or {}
        self.colour_key = colour_key
        self.filter_key = filter_key
        self.highlight = highlight
        self.point_styles = point_styles
        self.point_key = point_key
        self.tip_key = tip_key
        self.style_key = style_key
        self.styles = styles or {}
        self.point_icons = point_icons
        self.hatch = hatch
        self._template = _compiled(_JSON_LAYER)


def _commune_layer(
    source: _SharedData,
    name: str,
    colour_key: str,
    *,
    show: bool,
    filter_key: str | None = None,
    line_colour: str = "#555555",
    weight: float = 0.5,
    fill_opacity: float = 0.65,
) -> _JsonLayer:
    return _JsonLayer(
        source,
        name,
        labels=COMMUNE_TIP_LABELS,
        show=show,
        style={"color": line_colour, "weight": weight, "opacity": 1, "fillOpacity": fill_opacity},
        colour_key=colour_key,
        filter_key=filter_key,
        highlight={"weight": weight + 2, "color": "#000000"},
    )


def _place_props(places: gpd.GeoDataFrame) -> pd.DataFrame:
    """Per place: tooltip values ``t`` and ``s`` = 1 for accompaniment, 0 for access."""
    tips = []
    for _, r in _rows(places):
        v = r.get("advisors")
        if v is None or pd.isna(v):
            advisors = "inconnu"
        else:
            advisors = _fr.number(v, 1) + (
                " (valeur par défaut)" if bool(r.get("advisors_assumed")) else ""
            )
        commune = r.get("commune")
        name = r["name"] if isinstance(r["name"], str) and r["name"] else "(sans nom)"
        tips.append(
            [
                name,
                f"{commune} ({r['insee']})" if isinstance(commune, str) else str(r["insee"]),
                kinds_label(r["kinds"]),
                SERVICE_LABELS.get(r["service_level"], str(r["service_level"])),
                advisors,
                "oui" if bool(r.get("itinerant")) else "non",
                LOCATED_LABELS.get(r.get("located"), "—"),
                str(r.get("sources", "—")).replace(";", ", "),
            ]
        )
    return pd.DataFrame(
        {"t": tips, "s": (places["service_level"] == "accompaniment").astype(int)},
        index=places.index,
    )


def _place_styles(colour: str) -> dict:
    return {
        "1": {
            "radius": 6,
            "color": "#ffffff",
            "weight": 1.5,
            "fill": True,
            "fillColor": colour,
            "fillOpacity": 0.95,
        },
        "0": {
            "radius": 5,
            "color": colour,
            "weight": 2.5,
            "fill": True,
            "fillColor": "#ffffff",
            "fillOpacity": 0.9,
            "dashArray": "2,2",
        },
    }


def _itinerant_post_tooltip(row: Any, plan: Any, number: int) -> str:
    cid = str(getattr(row, "circuit_id", "") or "")
    circ = getattr(plan, "circuits", None)
    stops = "—"
    if circ is not None and len(circ) and cid:
        hit = circ[circ["circuit_id"].astype(str) == cid]
        if len(hit):
            names = stop_points(plan)["nom"]  # demand units' names (IRIS ids otherwise)
            stops = " → ".join(
                str(names.get(x, x)) for x in str(hit.iloc[0]["stops"]).split(";") if x
            )
    e = getattr(row, "epci", None)
    epci = str(plan.epci["nom"].get(e, e)) if e is not None and pd.notna(e) else "—"
    return _tip(
        [
            ("Identifiant", str(row.post_id)),
            ("Type", ITINERANT_POST),
            ("Circuit", cid or "—"),
            ("Base", f"{row.commune} ({row.insee})"),
            ("EPCI", epci),
            ("Arrêts dans l'ordre de la tournée", stops),
            ("Population desservie", _fr.integer(row.covered_population) + " hab."),
            ("Population pondérée desservie", _fr.integer(row.covered_need) + " hab."),
        ],
        f"Nouveau poste n° {number} (itinérant, circuit {cid})",
    )


def _newly_covered(plan: Any) -> dict[Any, list[str]]:
    """Names of the communes newly covered, by their nearest new post (sorted)."""
    c = plan.communes
    if "nearest_post" not in c.columns:
        return {}
    m = c["covered_after"].astype(bool) & ~c["covered_before"].astype(bool)
    new = c.loc[m & c["nearest_post"].notna(), ["nearest_post", "nom"]]
    out: dict[Any, list[str]] = {}
    for post, name in zip(new["nearest_post"].tolist(), new["nom"].astype(str).tolist()):
        out.setdefault(post, []).append(name)
    return {k: sorted(v) for k, v in out.items()}


def _post_tooltip(
    row: Any, plan: Any, number: int, newly_by_post: dict[Any, list[str]] | None = None
) -> str:
    """Tooltip of a new post; ``newly_by_post``: :func:`_newly_covered` of the plan
    (computed here when not given)."""
    if is_itinerant_post(row):
        return _itinerant_post_tooltip(row, plan, number)
    e = getattr(row, "epci", None)
    epci = str(plan.epci["nom"].get(e, e)) if e is not None and pd.notna(e) else "—"
    if newly_by_post is None:
        newly_by_post = _newly_covered(plan)
    newly = newly_by_post.get(row.post_id, [])
    return _tip(
        [
            ("Identifiant", str(row.post_id)),
            ("Structure d'accueil", str(row.host)),
            ("Type d'accueil", host_kind_label(getattr(row, "host_kind", ""))),
            ("Commune", f"{row.commune} ({row.insee})"),
            ("EPCI", epci),
            ("Population nouvellement couverte", _fr.integer(row.covered_population) + " hab."),
            ("Population pondérée nouvellement couverte", _fr.integer(row.covered_need) + " hab."),
            ("Communes nouvellement couvertes", ", ".join(newly) if newly else "—"),
            *_robustness_tip(row, plan),
        ],
        f"Nouveau poste n° {number}",
    )


def _robustness_tip(row: Any, plan: Any) -> list[tuple[str, str]]:
    """Tooltip row of the robustness analysis (none when it was not run)."""
    rob = getattr(plan, "robustness", None)
    label = str(getattr(row, "robustness", "") or "")
    if rob is None or not label:
        return []
    hit = rob.posts[rob.posts["post_id"] == str(row.post_id)]
    n = f" (choisi à nouveau {hit.iloc[0]['chosen_again']} fois sur {hit.iloc[0]['runs']})"
    return [("Robustesse", label + (n if len(hit) else ""))]


_POST_ICON = (
    '<div style="background:{colour};color:#fff;border:2px {border};'
    "box-shadow:0 0 3px #000;width:18px;height:18px;text-align:center;"
    'font:bold 11px/18px Arial,sans-serif;">{label}</div>'
)


def _legend_html(plan: Any) -> str:
    t = _fr.number(plan.scenario.threshold)

    def swatch(colour: str, label: str, *, border: str = "#555") -> str:
        return (
            f'<div class="cg-row"><span class="cg-sw" style="background:{colour};'
            f'border-color:{border}"></span>{html.escape(label, quote=False)}</div>'
        )

    def dot(colour: str, label: str, *, hollow: bool) -> str:
        style = (
            f"background:#fff;border:2.5px dashed {colour}"
            if hollow
            else f"background:{colour};border:1.5px solid #fff;box-shadow:0 0 0 1px {colour}"
        )
        return (
            f'<div class="cg-row"><span class="cg-dot" style="{style}"></span>'
            f"{html.escape(label, quote=False)}</div>"
        )

    unit_note = (
        '<div class="cg-note">Unité de demande : '
        f"{html.escape(str(plan.demand_unit), quote=False)} ; temps de trajet : "
        f"{html.escape(str(plan.travel_model), quote=False)}</div>"
    )
    parts = ["<div class=\"cg-h\">Temps d'accès au lieu d'accompagnement le plus proche</div>"]
    parts += [swatch(c, lab) for c, lab in zip(MINUTE_COLOURS, minute_class_labels())]
    if not np.isfinite(plan.communes["minutes_before"].astype(float)).all():
        parts.append(swatch(NO_PLACE_COLOUR, "aucun lieu d'accompagnement"))
    parts.append(f'<div class="cg-note">Seuil de couverture : {t} min</div>')
    if demand_unit_key(plan) != "commune":
        parts.append(
            '<div class="cg-note">Par commune : moyenne des unités de demande '
            "pondérée par la population ; une commune est couverte quand au moins la "
            "moitié de sa population l'est.</div>"
        )
    parts.append(unit_note)
    parts.append('<div class="cg-h">Indice de fragilité numérique (0 à 10)</div>')
    parts += [swatch(c, lab) for c, lab in zip(NEED_COLOURS, need_class_labels())]
    parts.append('<div class="cg-h">Score de priorité (0 à 100)</div>')
    parts += [swatch(c, lab) for c, lab in zip(PRIORITY_COLOURS, priority_class_labels())]
    parts.append(
        swatch(
            "#ffffff",
            "contour noir : commune prioritaire (loin ou offre mince, et fragile)",
            border=PRIORITY_GAP_LINE,
        )
    )
    parts.append(f'<div class="cg-h">Communes non couvertes aujourd\'hui (&gt; {t} min)</div>')
    parts.append(swatch(GAP_SOLVED_COLOUR, "couvertes grâce aux nouveaux postes"))
    parts.append(swatch(GAP_REMAINING_COLOUR, "toujours non couvertes"))
    parts.append('<div class="cg-h">Territoires prioritaires</div>')
    if gap_clusters_or_none(plan) is not None:
        parts.append(
            f'<div class="cg-row"><span class="cg-line" style="border-color:'
            f'{CLUSTER_COLOUR};border-top-width:3px"></span>zone de communes '
            "prioritaires contiguës (G01, G02…)</div>"
        )
    else:
        parts.append('<div class="cg-note">Aucune commune ne remplit la règle de priorité.</div>')
    if len(epci_without_project(plan)):
        parts.append(
            f'<div class="cg-row"><span class="cg-sw cg-hatch" style="border:2px '
            f'dashed {NO_PROJECT_COLOUR};color:{NO_PROJECT_COLOUR}"></span>EPCI sans '
            "projet numérique (ni lieu de médiation ni conseiller numérique)</div>"
        )
    else:
        parts.append(
            '<div class="cg-note">Aucun EPCI sans projet numérique : chaque EPCI '
            "compte au moins un lieu de médiation numérique ou un conseiller "
            "numérique.</div>"
        )
    parts.append('<div class="cg-h">Lieux existants</div>')
    parts += [dot(KIND_COLOURS[k], lab, hollow=False) for k, lab in KIND_LABELS.items()]
    parts.append(dot("#555555", "cercle creux : accès seul, sans accompagnement", hollow=True))
    if has_circuits(plan):
        parts.append('<div class="cg-h">Circuits itinérants (médiateur volant)</div>')
        for i, cid in enumerate(
            plan.circuits.sort_values("circuit_id", kind="stable")["circuit_id"].astype(str)
        ):
            parts.append(
                f'<div class="cg-row"><span class="cg-line" style="border-color:'
                f'{circuit_colour(i)};border-top-style:dashed;border-top-width:3px">'
                f"</span>circuit {html.escape(cid)}</div>"
            )
        parts.append(
            '<div class="cg-row"><span class="cg-post" style="background:#555">9'
            "</span>poste itinérant, à la base du circuit (couleur du circuit)</div>"
        )
        parts.append(
            '<div class="cg-row"><span class="cg-lab cg-stop cg-inline" '
            'style="border-color:#555;color:#555">1</span>arrêt (ordre de la '
            "tournée)</div>"
        )
    parts.append('<div class="cg-h">Autres</div>')
    parts.append(
        f'<div class="cg-row"><span class="cg-post" style="background:{POST_COLOUR}">'
        f"1</span>nouveau poste proposé (numéro)</div>"
    )
    if getattr(plan, "robustness", None) is not None:
        parts.append(
            f'<div class="cg-row"><span class="cg-post" style="background:{POST_COLOUR};'
            f'border:2px dashed #000">1</span>{_fr.FRAGILE_POST} : rarement choisi à nouveau '
            "quand les hypothèses changent (voir le rapport)</div>"
        )
    parts.append(
        f'<div class="cg-row"><span class="cg-line" style="border-color:{EPCI_COLOUR}">'
        "</span>limite d'EPCI</div>"
    )
    parts.append(
        '<div class="cg-note">Chaque lieu figure une fois, dans la couche de son label '
        "principal (France Services, puis conseiller numérique, médiation, Aidants "
        "Connect).</div>"
    )
    prov = catalog.data_provenance(plan.data_dir)  # provenance footer (issue 8)
    parts.append(f'<div class="cg-note">{html.escape(_fr.sources_footer(prov))}</div>')
    return "".join(parts)


_OVERLAY = _template_text("map_overlay.html.j2")


_ASSETS = _template_text("map_assets.html.j2")


class _OfflineAssets(_PlainMacro):
    """Leaflet inlined in the page header (replaces folium's CDN links)."""

    def __init__(self) -> None:
        super().__init__()
        self._name = "Leaflet"
        self.css, self.js = leaflet_assets()
        self.icons = {
            "iconUrl": _data_uri("leaflet", "images", "marker-icon.png"),
            "iconRetinaUrl": _data_uri("leaflet", "images", "marker-icon-2x.png"),
            "shadowUrl": _data_uri("leaflet", "images", "marker-shadow.png"),
        }
        self._template = Template(_ASSETS)


_FIGURE_TEMPLATE = Template(
    "<!DOCTYPE html>\n"
    '<html lang="fr">\n'
    "<head>\n"
    "{% if this.title %}<title>{{this.title}}</title>{% endif %}"
    "    {{this.header.render(**kwargs)}}\n"
    "</head>\n"
    "<body>\n"
    "    {{this.html.render(**kwargs)}}\n"
    "</body>\n"
    "<script>\n"
    "    {{this.script.render(**kwargs)}}\n"
    "</script>\n"
    "</html>\n",
)


class _Overlay(_PlainMacro):
    """Title box and legend (fixed HTML over the map)."""

    def __init__(
        self, title: str, subtitle: str, legend: str, front: list, basemaps: list | None = None
    ):
        super().__init__()
        self.front = front
        self.basemaps = basemaps or []
        self.basemap_message = BASEMAP_UNAVAILABLE
        self._name = "Legende"
        self.title = html.escape(title)
        self.subtitle = html.escape(subtitle)
        self.legend = legend
        self._template = _compiled(_OVERLAY)


def _deterministic_ids(root: Any) -> None:
    """Renumber folium/branca element ids in tree order (ids are random otherwise)."""
    counter = 0

    def walk(el: Any) -> None:
        nonlocal counter
        counter += 1
        el._id = f"{counter:04d}"
        children = getattr(el, "_children", None)
        if children:
            items = list(children.values())
            for child in items:
                walk(child)
            children.clear()
            for child in items:
                children[child.get_name()] = child

    walk(root)


def coverage_map(
    plan: Any, *, path: str | Path | None = None, simplify_m: float = 50.0, decimals: int = 5
) -> folium.Map:
    """Coverage map of a plan, in French, with toggleable layers and a legend.

    Parameters
    ----------
    plan : cnfs_geo.plan.Plan
        Uses ``plan.communes`` (index ``insee``; ``nom``, ``epci``, ``epci_nom``,
        ``population``, ``need_index``, ``need``, ``pct_fibre``, ``minutes_before``,
        ``nearest_place_name``, ``minutes_after``, ``covered_before``,
        ``covered_after``, ``gap``, polygon ``geometry`` in the working CRS),
        ``plan.places`` (``place_id``, ``name``, ``kinds``, ``sources``, ``insee``,
        ``service_level``, ``advisors``, ``advisors_assumed``, ``itinerant``,
        ``located``, point ``geometry``), ``plan.posts`` (``post_id``, ``insee``,
        ``commune``, ``epci``, ``host``, ``host_kind``, ``covered_population``,
        ``covered_need``, point ``geometry``) and ``plan.epci`` (index SIREN, ``nom``).
    path : str or Path, optional
        Where to write the HTML; a directory gets ``carte_couverture.html``.
    simplify_m : float
        Polygon simplification tolerance in metres (working CRS).
    decimals : int
        Decimals kept on WGS84 coordinates.

    Returns
    -------
    folium.Map
        Layers named by :func:`layer_names`; element ids are deterministic.
    """
    _check_plan(plan)
    communes, places, posts = plan.communes, plan.places, plan.posts
    t = plan.scenario.threshold
    dep_name = departement_name(plan)

    geoms = simplified_communes(communes, simplify_m=simplify_m, decimals=decimals)
    props = _commune_props(plan)
    data = _features(geoms, props)

    minx, miny, maxx, maxy = geoms.total_bounds
    fmap = folium.Map(
        location=[round((miny + maxy) / 2, decimals), round((minx + maxx) / 2, decimals)],
        zoom_start=9,
        tiles=None,
        control_scale=False,
        prefer_canvas=True,
        zoom_control=False,  # added in French by the overlay (templates/map_overlay.html.j2)
    )
    # Leaflet inlined; none of folium's CDN links (jQuery, Bootstrap, Font Awesome…)
    fmap.default_js = []
    fmap.default_css = []
    fmap.add_child(_OfflineAssets())
    no_base, osm_name, ign_name = base_layer_names()
    folium.FeatureGroup(name=no_base, overlay=False, control=True, show=True).add_to(fmap)
    basemaps = [
        folium.TileLayer(
            tiles=url,
            name=name,
            attr=attr,
            overlay=False,
            control=True,
            show=False,
            max_zoom=18,
        )
        for url, name, attr in (
            (OSM_TILES, osm_name, ATTRIBUTION_OSM),
            (IGN_TILES, ign_name, ATTRIBUTION_IGN),
        )
    ]
    for tiles in basemaps:
        tiles.add_to(fmap)

    names = iter(layer_names(plan))
    shared = _SharedData(data)
    fmap.add_child(shared)
    _commune_layer(shared, next(names), "b", show=True).add_to(fmap)
    _commune_layer(shared, next(names), "a", show=False).add_to(fmap)
    _commune_layer(shared, next(names), "n", show=False).add_to(fmap)
    # priority score: same polygons, own tooltip; communes meeting the rule outlined
    _JsonLayer(
        shared,
        next(names),
        labels=PRIORITY_TIP_LABELS,
        show=False,
        tip_key="p",
        style={"color": "#777777", "weight": 0.4, "opacity": 1, "fillOpacity": 0.75},
        colour_key="ps",
        style_key="pg",
        styles={"1": {"color": PRIORITY_GAP_LINE, "weight": 1.6}, "0": {}},
        highlight={"weight": 3, "color": "#000000"},
    ).add_to(fmap)
    _commune_layer(
        shared,
        next(names),
        "g",
        show=False,
        filter_key="gap",
        line_colour="#67000d",
        weight=1.5,
        fill_opacity=0.6,
    ).add_to(fmap)

    if has_units_layer(plan):
        udata = _SharedData(
            _unit_features(
                plan,
                simplify_m=max(simplify_m, UNITS_SIMPLIFY_M),
                decimals=min(decimals, UNITS_DECIMALS),
            ),
            name="UnitsData",
        )
        fmap.add_child(udata)
        for key in ("b", "a"):
            _JsonLayer(
                udata,
                next(names),
                labels=UNIT_TIP_LABELS,
                show=False,
                style={"color": "#555555", "weight": 0.4, "opacity": 1, "fillOpacity": 0.7},
                colour_key=key,
                highlight={"weight": 2.5, "color": "#000000"},
            ).add_to(fmap)

    # EPCI polygons dissolved from the simplified communes (borders match exactly)
    epci_poly = dissolve(
        gpd.GeoDataFrame(
            {"epci": communes["epci"].astype(str)}, geometry=geoms, crs=GEOGRAPHIC_CRS
        ),
        "epci",
    ).sort_index()
    front = []
    if len(epci_without_project(plan)):
        npdata = _SharedData(
            _no_project_features(plan, _round_coords(epci_poly.geometry, decimals)),
            name="NoProjectData",
        )
        fmap.add_child(npdata)
        layer = _JsonLayer(
            npdata,
            next(names),
            labels=NO_PROJECT_TIP_LABELS,
            show=True,
            style={
                "color": NO_PROJECT_COLOUR,
                "weight": 3.5,
                "opacity": 1,
                "dashArray": "8,5",
                "fill": True,
                "fillColor": NO_PROJECT_COLOUR,
                "fillOpacity": 0.55,
            },
            hatch=True,
        )
        layer.add_to(fmap)
        front.append(layer)

    epci_geo = epci_poly.set_geometry(_round_coords(epci_poly.geometry.boundary, decimals))
    ep = plan.epci
    epci_tips = []
    for e in epci_geo.index:
        members = communes[communes["epci"] == e]
        epci_tips.append(
            [
                str(ep["nom"].get(e, e)),
                str(e),
                str(len(members)),
                _fr.integer(members["population"].sum()) + " hab.",
            ]
        )
    epci_data = _SharedData(
        _features(epci_geo.geometry, pd.DataFrame({"t": epci_tips}, index=epci_geo.index)),
        name="EpciData",
    )
    fmap.add_child(epci_data)
    layer = _JsonLayer(
        epci_data,
        next(names),
        labels=EPCI_TIP_LABELS,
        show=True,
        style={"color": EPCI_COLOUR, "weight": 2.2, "opacity": 0.9, "fill": False},
    )
    layer.add_to(fmap)
    front.append(layer)

    if gap_clusters_or_none(plan) is not None:
        cdata = _SharedData(_cluster_features(plan, geoms, decimals), name="ClustersData")
        fmap.add_child(cdata)
        layer = _JsonLayer(
            cdata,
            next(names),
            labels=CLUSTER_TIP_LABELS,
            show=True,
            style={
                "color": CLUSTER_COLOUR,
                "weight": 3.2,
                "opacity": 0.95,
                "fill": True,
                "fillColor": CLUSTER_COLOUR,
                "fillOpacity": 0.12,
            },
            point_icons=True,
        )
        layer.add_to(fmap)
        front.append(layer)

    # places: one layer per main kind; access-only first (drawn underneath)
    mk = places["kinds"].map(main_kind)
    order = places.assign(_acc=(places["service_level"] == "accompaniment")).sort_values(
        ["_acc", "place_id"], kind="stable"
    )
    for kind in KIND_LABELS:
        sub = order[mk.loc[order.index] == kind]
        pts = _round_coords(sub.geometry.to_crs(GEOGRAPHIC_CRS), decimals)
        ids = pd.Index(sub["place_id"].astype(str))
        src = _SharedData(
            _features(pts.set_axis(ids), _place_props(sub).set_axis(ids)), name="PlacesData"
        )
        fmap.add_child(src)
        layer = _JsonLayer(
            src,
            next(names),
            labels=PLACE_TIP_LABELS,
            show=True,
            point_styles=_place_styles(KIND_COLOURS[kind]),
            point_key="s",
        )
        layer.add_to(fmap)
        front.append(layer)

    if has_circuits(plan):
        n_circ = len(plan.circuits)
        cdata = _SharedData(_circuit_features(plan, decimals), name="CircuitsData")
        fmap.add_child(cdata)
        layer = _JsonLayer(
            cdata,
            next(names),
            labels=CIRCUIT_TIP_LABELS,
            show=True,
            style={"weight": 3.5, "opacity": 0.9, "dashArray": "10,6", "fill": False},
            style_key="k",
            styles={f"l{i}": {"color": circuit_colour(i)} for i in range(n_circ)},
            point_icons=True,
        )
        layer.add_to(fmap)
        front.append(layer)

    posts = posts_with_coverage(plan)
    fg = folium.FeatureGroup(name=next(names), show=True)
    pts = _round_coords(posts.geometry.to_crs(GEOGRAPHIC_CRS), decimals)
    circuit_order = (
        {
            str(cid): i
            for i, cid in enumerate(
                plan.circuits.sort_values("circuit_id", kind="stable")["circuit_id"]
            )
        }
        if has_circuits(plan)
        else {}
    )
    newly_by_post = _newly_covered(plan)
    for i, (row, pt) in enumerate(zip(posts.itertuples(index=False), pts)):
        label = str(i + 1)
        colour = POST_COLOUR
        if is_itinerant_post(row):
            k = circuit_order.get(str(getattr(row, "circuit_id", "")))
            colour = circuit_colour(k) if k is not None else POST_COLOUR
        folium.Marker(
            location=[pt.y, pt.x],
            icon=folium.DivIcon(
                html=_POST_ICON.format(
                    colour=colour,
                    label=label,
                    # robustness: a fragile post gets a dashed black border
                    border=(
                        "dashed #000"
                        if str(getattr(row, "robustness", "")) == _fr.FRAGILE_POST
                        else "solid #fff"
                    ),
                ),
                icon_size=(22, 22),
                icon_anchor=(11, 11),
                class_name="cg-post-icon",
            ),
            z_index_offset=POST_Z_ABOVE,  # above the zone labels and circuit stops
            tooltip=folium.Tooltip(_post_tooltip(row, plan, i + 1, newly_by_post), sticky=True),
        ).add_to(fg)
    fg.add_to(fmap)

    folium.LayerControl(collapsed=False, position="topright").add_to(fmap)
    n_itin = int(sum(is_itinerant_post(r) for r in posts.itertuples(index=False)))
    title = (
        f"Accompagnement au numérique — {dep_name} ({plan.scenario.departement}) : "
        f"couverture actuelle et {len(posts)} nouveaux postes proposés"
        + (f" ({len(posts) - n_itin} fixes, {n_itin} itinérants)" if n_itin else "")
    )
    s = plan.summary()
    subtitle = (
        f"Seuil {_fr.number(t)} min · population couverte "
        f"{_fr.percent(s['pct_population_covered_before'])} → "
        f"{_fr.percent(s['pct_population_covered_after'])} · "
        f"unité de demande : {demand_unit_short(plan)} · "
        f"temps de trajet : {plan.travel_model}"
    )
    fmap.add_child(_Overlay(title, subtitle, _legend_html(plan), front, basemaps))
    fmap.fit_bounds(
        [
            [round(miny, decimals), round(minx, decimals)],
            [round(maxy, decimals), round(maxx, decimals)],
        ]
    )
    root = fmap.get_root()
    assert isinstance(root, Figure)  # a folium Map's root is always its Figure
    root.title = f"Carte de couverture — {dep_name}"
    root._template = _FIGURE_TEMPLATE  # lang="fr" on the page
    _deterministic_ids(root)

    if path is not None:
        out = Path(path)
        if out.is_dir():
            out = out / MAP_FILENAME
        out.parent.mkdir(parents=True, exist_ok=True)
        html_text = fmap.get_root().render()
        out.write_text(html_text, encoding="utf-8")
        log.info(
            "map: %s (%d communes, %d places, %d posts, %.0f kB)",
            out,
            len(communes),
            len(places),
            len(posts),
            len(html_text.encode("utf-8")) / 1024,
        )
    return fmap


def render_html(fmap: folium.Map) -> str:
    """HTML text of a map built by :func:`coverage_map` (deterministic)."""
    return fmap.get_root().render()
