"""Interactive coverage map of a plan (folium / Leaflet), labelled in French.

:func:`coverage_map` draws, as layers that can be switched on and off:

* communes coloured by travel time to the nearest *accompaniment* place before
  the new posts, and after them (classes of 5 minutes, > 20 min last);
* communes coloured by need (``need_index``, the IFN composite score 0–10);
* gap communes (not covered at the threshold before the new posts), split into
  those the new posts cover and those left uncovered;
* EPCI outlines;
* the existing places, one layer per kind (a place with several kinds is drawn
  once, in the layer of its main kind: France Services > conseiller numérique >
  lieu de médiation > Aidants Connect); access-only places are hollow circles,
  accompaniment places filled ones;
* the priority score of each commune (``priority_score``, classes of 20 points;
  communes meeting the priority rule outlined in black; tooltip with the reasons
  ``gap_reasons``, the E2SFCA accessibility and the ratio to the target);
* the priority territories (``plan.gap_clusters``: contiguous groups of priority
  communes), outlined and labelled ``G01``… with a tooltip giving their figures and
  nearest accompaniment place;
* the EPCI without a digital project (``plan.epci_without_project``: no lieu de
  médiation, no CNFS), hatched, when there are any (the legend says so otherwise);
* with demand units finer than communes (IRIS, 2018 communes), the travel time per
  unit before and after the new posts (polygons simplified to 100 m, 4 decimals);
* the itinerant circuits (``plan.circuits``: tour lines, stops numbered in tour
  order, tooltips with the weekly slots of ``plan.timetable``);
* the proposed posts (numbered square badges; itinerant posts in the colour of
  their circuit, at its base).

Layers with nothing to draw (no cluster, no EPCI without project, commune demand
units, no circuit) are left out: :func:`layer_names` gives the layers of a plan. The
title and the legend name the demand unit and the travel model.

Polygons are simplified to ``simplify_m`` metres in the working CRS with a
topology-preserving coverage simplification (neighbouring communes keep a common
border), reprojected to WGS84 (EPSG:4326) and rounded to 5 decimals (~1 m).
The commune polygons are written once, as a compact JSON variable, and drawn by
the four commune layers; tooltips are built in the browser from each feature's
list of values ``t`` and one list of French row labels, which keeps the file
small (about 0.7 MB for Maine-et-Loire). Element identifiers that folium draws at
random are renumbered in tree order, so the same plan always gives the same HTML
bytes. Leaflet and the OpenStreetMap background are loaded from the web when
the file is opened.

Examples
--------
>>> from cnfs_geo.plan import Scenario, run
>>> from cnfs_geo.maps import coverage_map
>>> m = coverage_map(run(Scenario(departement="49", posts=8)))
>>> type(m).__name__
'Map'
"""

from __future__ import annotations

import html
import json
import logging
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement
from jinja2 import Template

from ._errors import ValidationError
from .settings import GEOGRAPHIC_CRS

log = logging.getLogger(__name__)

MAP_FILENAME = "carte_couverture.html"

# Travel-time classes (upper bounds, minutes) and colours (green = close, red = far).
MINUTE_BREAKS: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0)
MINUTE_COLOURS: tuple[str, ...] = ("#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#d73027")
NO_PLACE_COLOUR = "#7f0000"  # no accompaniment place at all (infinite time)

# Need index classes (0–10) and colours (light = low need, dark = high need).
NEED_BREAKS: tuple[float, ...] = (2.0, 4.0, 6.0, 8.0)
NEED_COLOURS: tuple[str, ...] = ("#f2f0f7", "#cbc9e2", "#9e9ac8", "#756bb1", "#54278f")

GAP_SOLVED_COLOUR = "#fd8d3c"
GAP_REMAINING_COLOUR = "#e31a1c"
EPCI_COLOUR = "#252525"
POST_COLOUR = "#0b4f9c"

# Place kinds: French label and colour, in priority order (main kind first).
KIND_LABELS: "OrderedDict[str, str]" = OrderedDict([
    ("france_services", "France Services"),
    ("cnfs", "Conseiller numérique France Services"),
    ("lieu_mediation", "Lieu de médiation numérique"),
    ("aidants_connect", "Aidants Connect"),
])
KIND_COLOURS = {"france_services": "#1f78b4", "cnfs": "#33a02c",
                "lieu_mediation": "#6a3d9a", "aidants_connect": "#b15928"}
SERVICE_LABELS = {"accompaniment": "accompagnement (une personne aide)",
                  "access": "accès seul (équipement, sans accompagnement)"}
LOCATED_LABELS = {"address": "à l'adresse", "commune": "au centre de la commune"}

# Priority score classes (0–100) and colours (light = low priority, dark = high).
PRIORITY_BREAKS: tuple[float, ...] = (20.0, 40.0, 60.0, 80.0)
PRIORITY_COLOURS: tuple[str, ...] = ("#ffffcc", "#fed976", "#fd8d3c", "#e31a1c", "#800026")
PRIORITY_GAP_LINE = "#000000"      # outline of the communes meeting the priority rule
CLUSTER_COLOUR = "#7a0177"         # outline of the priority territories (gap clusters)
NO_PROJECT_COLOUR = "#e66101"      # hatching of the EPCI without a digital project
# One colour per itinerant circuit (cycled).
CIRCUIT_COLOURS: tuple[str, ...] = ("#e7298a", "#1b9e77", "#d95f02", "#7570b3", "#66a61e",
                                    "#a6761d", "#1f78b4", "#666666")

# Layer names (French, as shown in the layer control).
LAYER_BEFORE = "Temps d'accès actuel (avant les nouveaux postes)"
LAYER_AFTER = "Temps d'accès avec les nouveaux postes"
LAYER_NEED = "Indice de fragilité numérique"
LAYER_PRIORITY = "Score de priorité"
LAYER_GAPS = "Communes non couvertes aujourd'hui"
LAYER_UNITS_BEFORE = "Temps d'accès actuel, par"          # + demand unit noun
LAYER_UNITS_AFTER = "Temps d'accès avec les nouveaux postes, par"
LAYER_NO_PROJECT = "EPCI sans projet numérique"
LAYER_EPCI = "Contours des EPCI"
LAYER_CLUSTERS = "Territoires prioritaires (grappes)"
LAYER_CIRCUITS = "Circuits itinérants (médiateur volant)"
LAYER_POSTS = "Nouveaux postes proposés"

# Demand units: (singular, plural) French nouns by Scenario.demand_unit key.
UNIT_NOUNS: dict[str, tuple[str, str]] = {
    "commune": ("commune", "communes"),
    "iris": ("IRIS", "IRIS"),
    "commune2018": ("commune de 2018", "communes de 2018"),
}
# Demand-unit polygons (IRIS: 367 in Maine-et-Loire, twice the communes) are drawn
# coarser than the communes to keep the file small: 100 m tolerance, 4 decimals (~10 m).
UNITS_SIMPLIFY_M = 100.0
UNITS_DECIMALS = 4
UNIT_TYPE_LABELS = {"commune": "commune (non découpée en IRIS)", "iris": "IRIS",
                    "commune2018": "commune de 2018"}


def demand_unit_key(plan: Any) -> str:
    """``"commune"``, ``"iris"`` or ``"commune2018"`` (the scenario's demand unit)."""
    return str(getattr(plan.scenario, "demand_unit", "commune") or "commune")


def demand_unit_short(plan: Any) -> str:
    """Short French name of the demand unit (``plan.demand_unit`` before its " : ")."""
    label = str(getattr(plan, "demand_unit", "") or "")
    if not label or label == demand_unit_key(plan):
        return UNIT_NOUNS.get(demand_unit_key(plan), ("", "communes"))[1].capitalize()
    return label.split(" : ")[0]


def has_units_layer(plan: Any) -> bool:
    """True when the demand units are finer than communes (a units layer is drawn)."""
    units = getattr(plan, "units", None)
    return (demand_unit_key(plan) != "commune" and isinstance(units, gpd.GeoDataFrame)
            and len(units) > 0 and "geometry" in units.columns)


def has_circuits(plan: Any) -> bool:
    """True when the plan carries at least one itinerant circuit (``plan.circuits``)."""
    circuits = getattr(plan, "circuits", None)
    return circuits is not None and len(circuits) > 0


def _clusters(plan: Any) -> gpd.GeoDataFrame | None:
    cl = getattr(plan, "gap_clusters", None)
    return cl if cl is not None and len(cl) > 0 else None


def _no_project(plan: Any) -> pd.DataFrame:
    ep = plan.epci
    if "has_project" not in ep.columns:
        return ep.iloc[0:0]
    return ep[~ep["has_project"].astype(bool)]


def layer_names(plan: Any) -> list[str]:
    """Names of the map's toggleable layers, in drawing order (French).

    Always: time before/after, need, priority score, gap communes, EPCI outlines,
    places (one layer per kind), new posts. Only when there is something to draw:
    time per demand unit before/after (units finer than communes), EPCI without a
    digital project, priority territories (gap clusters), itinerant circuits.
    """
    t = _fmt_num(plan.scenario.threshold)
    names = [LAYER_BEFORE, LAYER_AFTER, LAYER_NEED, LAYER_PRIORITY, f"{LAYER_GAPS} (> {t} min)"]
    if has_units_layer(plan):
        noun = UNIT_NOUNS.get(demand_unit_key(plan), ("unité de demande", ""))[0]
        names += [f"{LAYER_UNITS_BEFORE} {noun}", f"{LAYER_UNITS_AFTER} {noun}"]
    if len(_no_project(plan)):
        names.append(LAYER_NO_PROJECT)
    names.append(LAYER_EPCI)
    if _clusters(plan) is not None:
        names.append(LAYER_CLUSTERS)
    names += [f"Lieux : {label}" for label in KIND_LABELS.values()]
    if has_circuits(plan):
        names.append(LAYER_CIRCUITS)
    names.append(LAYER_POSTS)
    return names


# --------------------------------------------------------------------------------------
# French formatting
# --------------------------------------------------------------------------------------
def _fmt_int(x: float) -> str:
    """12345.4 → '12 345' (narrow no-break space as thousands separator)."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{int(round(float(x))):,}".replace(",", "\u202f")


def _fmt_num(x: float, digits: int = 1) -> str:
    """7.25 → '7,3'; integers lose their decimals (10.0 → '10')."""
    if x is None or pd.isna(x):
        return "—"
    x = float(x)
    if not math.isfinite(x):
        return "—"
    if x == round(x) and digits <= 1:
        return f"{int(round(x))}"
    return f"{x:.{digits}f}".replace(".", ",")


def _fmt_minutes(x: float) -> str:
    if x is None or pd.isna(x) or not math.isfinite(float(x)):
        return "aucun lieu d'accompagnement"
    return f"{float(x):.1f}".replace(".", ",") + "\u00a0min"


def _fmt_pct(x: float) -> str:
    if x is None or pd.isna(x):
        return "inconnu"
    return f"{float(x):.1f}".replace(".", ",") + "\u00a0%"


def minute_class_labels() -> list[str]:
    """French labels of the travel-time classes (``≤ 5 min`` … ``> 20 min``)."""
    b = MINUTE_BREAKS
    labels = [f"≤ {_fmt_num(b[0])} min"]
    labels += [f"{_fmt_num(lo)} à {_fmt_num(hi)} min" for lo, hi in zip(b[:-1], b[1:])]
    labels.append(f"> {_fmt_num(b[-1])} min")
    return labels


def need_class_labels() -> list[str]:
    """French labels of the need-index classes."""
    b = (0.0, *NEED_BREAKS, 10.0)
    return [f"{_fmt_num(lo)} à {_fmt_num(hi)}" for lo, hi in zip(b[:-1], b[1:])]


def _minute_colour(m: float) -> str:
    if m is None or pd.isna(m) or not math.isfinite(float(m)):
        return NO_PLACE_COLOUR
    for bound, colour in zip(MINUTE_BREAKS, MINUTE_COLOURS):
        if m <= bound:
            return colour
    return MINUTE_COLOURS[-1]


def _need_colour(v: float) -> str:
    if v is None or pd.isna(v):
        return "#bdbdbd"
    for bound, colour in zip(NEED_BREAKS, NEED_COLOURS):
        if v <= bound:
            return colour
    return NEED_COLOURS[-1]


def priority_class_labels() -> list[str]:
    """French labels of the priority-score classes (``0 à 20`` … ``80 à 100``)."""
    b = (0.0, *PRIORITY_BREAKS, 100.0)
    return [f"{_fmt_num(lo)} à {_fmt_num(hi)}" for lo, hi in zip(b[:-1], b[1:])]


def _priority_colour(v: float) -> str:
    if v is None or pd.isna(v):
        return "#bdbdbd"
    for bound, colour in zip(PRIORITY_BREAKS, PRIORITY_COLOURS):
        if v <= bound:
            return colour
    return PRIORITY_COLOURS[-1]


def _fmt_hours(h: float) -> str:
    """3.25 → '3 h 15' ; 2.0 → '2 h'."""
    if h is None or pd.isna(h) or not math.isfinite(float(h)):
        return "—"
    total = int(round(float(h) * 60))
    hh, mm = divmod(total, 60)
    return f"{hh}\u00a0h" + (f"\u00a0{mm:02d}" if mm else "")


def main_kind(kinds: str) -> str:
    """Main kind of a ``;``-joined kinds string (France Services first)."""
    present = {k.strip() for k in str(kinds).split(";") if k.strip()}
    for k in KIND_LABELS:
        if k in present:
            return k
    return "lieu_mediation"


def kinds_label(kinds: str) -> str:
    """French label of a ``;``-joined kinds string ("France Services, Aidants Connect")."""
    parts = [k.strip() for k in str(kinds).split(";") if k.strip()]
    ordered = [k for k in KIND_LABELS if k in parts] + sorted(k for k in parts
                                                             if k not in KIND_LABELS)
    return ", ".join(KIND_LABELS.get(k, k) for k in ordered)


# --------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------
def _round_coords(geoms: gpd.GeoSeries, decimals: int) -> gpd.GeoSeries:
    out = shapely.transform(geoms.to_numpy(), lambda c: np.round(c, decimals))
    return gpd.GeoSeries(out, index=geoms.index, crs=geoms.crs)


def _coverage_status(row, t: str) -> str:
    """French coverage status of a commune or demand unit, for tooltips."""
    if bool(row["covered_before"]):
        return f"couverte aujourd'hui (≤ {t} min)"
    if bool(row["covered_after"]):
        return "couverte grâce aux nouveaux postes"
    return f"non couverte (> {t} min)"


def simplified_communes(communes: gpd.GeoDataFrame, *, simplify_m: float = 50.0,
                        decimals: int = 5) -> gpd.GeoSeries:
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
        raise ValidationError("communes", [f"geometry CRS is {communes.crs}: a projected CRS in "
                                           "metres is needed to simplify (use the working CRS, "
                                           "e.g. communes.to_crs('EPSG:2154'))"])
    geoms = communes.geometry
    try:
        simple = gpd.GeoSeries(shapely.coverage_simplify(geoms.to_numpy(), simplify_m),
                               index=geoms.index, crs=geoms.crs)
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


def _features(geoms: gpd.GeoSeries, props: pd.DataFrame) -> dict:
    """FeatureCollection with ``id`` = index (str) and JSON-ready properties."""
    feats = []
    for key, geom in zip(geoms.index, geoms.to_numpy()):
        if geom is None or geom.is_empty:
            continue
        p = {k: _clean(v) for k, v in props.loc[key].items()}
        feats.append({"type": "Feature", "id": str(key), "properties": p,
                      "geometry": shapely.geometry.mapping(geom)})
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
        "communes": ["nom", "epci_nom", "population", "need_index", "need", "pct_fibre",
                     "minutes_before", "minutes_after", "covered_before", "covered_after", "gap",
                     "accessibility", "ratio_to_target", "priority_score", "priority_rank",
                     "priority_gap", "gap_reasons", "gap_cluster"],
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
        problems += [f"plan.gap_clusters: missing column {c!r}" for c in CLUSTER_TIP_COLUMNS
                     if c not in cl.columns]
    if has_circuits(plan):
        problems += [f"plan.circuits: missing column {c!r}" for c in CIRCUIT_COLUMNS
                     if c not in plan.circuits.columns]
        tt = getattr(plan, "timetable", None)
        if tt is None:
            problems.append("plan.timetable is missing (plan.circuits is not empty)")
        else:
            problems += [f"plan.timetable: missing column {c!r}" for c in TIMETABLE_COLUMNS
                         if c not in tt.columns]
    if problems:
        raise ValidationError("plan", problems + ["build the plan with cnfs_geo.plan.run()"])


#: Columns of ``plan.gap_clusters`` used by the map and the report.
CLUSTER_TIP_COLUMNS = ["cluster_id", "n_communes", "communes", "names", "epci_nom",
                       "population", "need", "need_index_mean", "minutes_mean", "minutes_max",
                       "nearest_place_name", "nearest_place_minutes", "n_places",
                       "n_accompaniment_places", "area_km2", "geometry"]
#: Columns of ``plan.circuits`` / ``plan.timetable`` used by the map and the report.
CIRCUIT_COLUMNS = ["circuit_id", "base_insee", "base_nom", "stops", "n_stops", "population",
                   "need", "km_per_week", "minutes_per_week", "hours_at_stops", "geometry"]
TIMETABLE_COLUMNS = ["circuit_id", "day", "half_day", "insee", "nom", "hours",
                     "travel_minutes"]


def _tip(pairs: list[tuple[str, str]], title: str) -> str:
    """Static tooltip HTML (used for the few post markers)."""
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                   for k, v in pairs)
    return f'<div class="cg-tip"><b>{html.escape(title)}</b><table>{rows}</table></div>'


# Tooltip row labels; each feature carries ``t`` = [title, value 1, value 2 …] and
# the browser builds the table (cgTip in the page header): labels are written once.
COMMUNE_TIP_LABELS = [
    "EPCI", "Population", "Temps d'accès avant", "Lieu d'accompagnement le plus proche",
    "Temps d'accès après", "Couverture", "Indice de fragilité numérique",
    "Population pondérée par le besoin", "Locaux éligibles à la fibre",
    "Lieux dans la commune", "Part de la population couverte (avant → après)",
    "Circuit itinérant"]
PRIORITY_TIP_LABELS = [
    "EPCI", "Population", "Score de priorité (0 à 100)", "Rang", "Territoire prioritaire",
    "Motifs", "Accessibilité (E2SFCA)", "Rapport à la cible", "Temps d'accès actuel",
    "Indice de fragilité numérique", "Locaux éligibles à la fibre"]
CLUSTER_TIP_LABELS = [
    "Communes", "EPCI", "Population", "Population pondérée par le besoin",
    "Indice de fragilité moyen", "Temps d'accès moyen (max.)",
    "Lieu d'accompagnement le plus proche", "Lieux dans la zone", "Superficie"]
NO_PROJECT_TIP_LABELS = [
    "SIREN", "Communes dans le département", "Population", "Population pondérée par le besoin",
    "Lieux de médiation numérique", "Conseillers numériques (permanences)", "France Services",
    "Aidants Connect", "Temps d'accès moyen (max.)"]
UNIT_TIP_LABELS = [
    "Commune", "Type d'unité", "Population", "Population pondérée par le besoin",
    "Temps d'accès avant", "Temps d'accès après", "Couverture"]
CIRCUIT_TIP_LABELS = [
    "Base", "Arrêts dans l'ordre de la tournée", "Distance par semaine",
    "Temps de conduite par semaine", "Heures de permanence par semaine", "Population desservie",
    "Population pondérée desservie"]
STOP_TIP_LABELS = ["Circuit", "Ordre dans la tournée", "Population",
                   "Permanences", "Heures par semaine"]
PLACE_TIP_LABELS = ["Commune", "Type", "Niveau de service", "Conseillers", "Itinérant",
                    "Position", "Sources"]
EPCI_TIP_LABELS = ["SIREN", "Communes dans le département", "Population"]


def _commune_props(plan: Any) -> pd.DataFrame:
    """Per commune: tooltip values ``t``, class colours ``b``/``a``/``n``/``g`` and
    the gap flag ``gap``."""
    c = plan.communes
    pl = plan.places
    n_places = pl["insee"].value_counts()
    n_acc = pl.loc[pl["service_level"] == "accompaniment", "insee"].value_counts()
    t = _fmt_num(plan.scenario.threshold)
    nearest = (c["nearest_place_name"] if "nearest_place_name" in c.columns
               else pd.Series(None, index=c.index))
    # finer demand units: a commune is covered when at least half its population is
    by_share = (demand_unit_key(plan) != "commune" and "pct_covered_before" in c.columns
                and "pct_covered_after" in c.columns)
    circuit = (c["itinerant_circuit"] if "itinerant_circuit" in c.columns
               else pd.Series(None, index=c.index, dtype=object))
    tips = []
    for insee, r in c.iterrows():
        status = _coverage_status(r, t)
        near = nearest.get(insee)
        tips.append([
            f"{r['nom']} ({insee})",
            str(r["epci_nom"]) if pd.notna(r["epci_nom"]) else "—",
            _fmt_int(r["population"]) + " hab.",
            _fmt_minutes(r["minutes_before"]),
            str(near) if pd.notna(near) else "—",
            _fmt_minutes(r["minutes_after"]),
            status,
            _fmt_num(r["need_index"], 1) + " / 10",
            _fmt_int(r["need"]) + " hab.",
            _fmt_pct(r["pct_fibre"]),
            f"{int(n_places.get(insee, 0))} dont {int(n_acc.get(insee, 0))} d'accompagnement",
            (f"{_fmt_pct(r['pct_covered_before'])} → {_fmt_pct(r['pct_covered_after'])}"
             if by_share else None),
            (f"arrêt du circuit {circuit.get(insee)} (permanence hebdomadaire)"
             if isinstance(circuit.get(insee), str) else None),
        ])
    return pd.DataFrame({
        "t": tips,
        "b": c["minutes_before"].map(_minute_colour),
        "a": c["minutes_after"].map(_minute_colour),
        "n": c["need_index"].map(_need_colour),
        "g": np.where(c["covered_after"], GAP_SOLVED_COLOUR, GAP_REMAINING_COLOUR),
        "gap": [bool(g) for g in c["gap"]],
        "p": _priority_tips(plan),
        "ps": c["priority_score"].map(_priority_colour),
        "pg": [str(int(bool(g))) for g in c["priority_gap"]],
    }, index=c.index)


def _priority_tips(plan: Any) -> list[list]:
    """Per commune: tooltip values of the priority-score layer."""
    c = plan.communes
    n = len(c)
    tips = []
    for insee, r in c.iterrows():
        gap = bool(r["priority_gap"])
        cl = r["gap_cluster"]
        ratio = r["ratio_to_target"]
        tips.append([
            f"{r['nom']} ({insee})",
            str(r["epci_nom"]) if pd.notna(r["epci_nom"]) else "—",
            _fmt_int(r["population"]) + " hab.",
            _fmt_num(r["priority_score"], 1),
            f"{_fmt_int(r['priority_rank'])} sur {_fmt_int(n)}",
            (f"oui, zone {cl}" if isinstance(cl, str) and cl else "oui") if gap else "non",
            str(r["gap_reasons"]) if gap and isinstance(r["gap_reasons"], str)
            and r["gap_reasons"] else None,
            _fmt_num(r["accessibility"], 2) + " conseiller pour 10\u202f000 hab. pondérés",
            (f"{_fmt_num(100 * ratio, 0)}\u00a0% de la cible" if pd.notna(ratio)
             and math.isfinite(float(ratio)) else "—"),
            _fmt_minutes(r["minutes_before"]),
            _fmt_num(r["need_index"], 1) + " / 10",
            _fmt_pct(r["pct_fibre"]),
        ])
    return tips


def _unit_features(plan: Any, *, simplify_m: float, decimals: int) -> dict:
    """Demand units (``plan.units``) as a FeatureCollection: tooltip ``t``, colours
    ``b``/``a`` of the minutes before/after."""
    u = plan.units
    t = _fmt_num(plan.scenario.threshold)
    geoms = simplified_communes(u, simplify_m=simplify_m, decimals=decimals)
    names = plan.communes["nom"]
    tips = []
    for uid, r in u.iterrows():
        status = _coverage_status(r, t)
        insee = str(r["insee"])
        tips.append([
            f"{r['nom']} ({uid})",
            f"{names.get(insee, insee)} ({insee})",
            UNIT_TYPE_LABELS.get(str(r.get("unit_type")), str(r.get("unit_type"))),
            _fmt_int(r["population"]) + " hab.",
            _fmt_int(r["need"]) + " hab.",
            _fmt_minutes(r["minutes_before"]),
            _fmt_minutes(r["minutes_after"]),
            status,
        ])
    props = pd.DataFrame({"t": tips, "b": u["minutes_before"].map(_minute_colour),
                          "a": u["minutes_after"].map(_minute_colour)}, index=u.index)
    return _features(geoms.set_axis(geoms.index.astype(str)), props.set_axis(
        props.index.astype(str)))


def _cluster_features(plan: Any, geoms: gpd.GeoSeries, decimals: int) -> dict:
    """Priority territories: one polygon per cluster (dissolved from the simplified
    commune polygons, so borders match the commune layers) and one label point."""
    cl = _clusters(plan)
    feats = []
    labels = []
    for r in cl.sort_values("cluster_id").itertuples(index=False):
        members = [m for m in str(r.communes).split(";") if m in geoms.index]
        if not members:
            log.warning("map: priority territory %s has no commune in plan.communes; not drawn",
                        r.cluster_id)
            continue
        poly = shapely.union_all(geoms.loc[members].to_numpy())
        poly = shapely.set_precision(poly, 10.0 ** -decimals)
        near = (f"{r.nearest_place_name} ({_fmt_minutes(r.nearest_place_minutes)})"
                if isinstance(r.nearest_place_name, str) else "—")
        names = str(r.names).replace(";", ",")
        tip = [
            f"Territoire prioritaire {r.cluster_id}",
            f"{_fmt_int(r.n_communes)} : {names}",
            str(r.epci_nom).replace(";", ",") if pd.notna(r.epci_nom) else "—",
            _fmt_int(r.population) + " hab.",
            _fmt_int(r.need) + " hab.",
            _fmt_num(r.need_index_mean, 1) + " / 10",
            f"{_fmt_minutes(r.minutes_mean)} ({_fmt_minutes(r.minutes_max)})",
            near,
            (f"{_fmt_int(r.n_places)} dont {_fmt_int(r.n_accompaniment_places)} "
             "d'accompagnement" if pd.notna(r.n_places) else "—"),
            _fmt_num(r.area_km2, 0) + "\u00a0km²",
        ]
        feats.append({"type": "Feature", "id": str(r.cluster_id), "properties": {"t": tip},
                      "geometry": shapely.geometry.mapping(poly)})
        pt = shapely.set_precision(poly.representative_point(), 10.0 ** -decimals)
        icon = (f'<div class="cg-lab" style="border-color:{CLUSTER_COLOUR};color:'
                f'{CLUSTER_COLOUR}">{html.escape(str(r.cluster_id))}</div>')
        labels.append({"type": "Feature", "id": f"{r.cluster_id}:etiquette",
                       "properties": {"t": tip, "icon": icon},
                       "geometry": shapely.geometry.mapping(pt)})
    return {"type": "FeatureCollection", "features": feats + labels}


def _no_project_features(plan: Any, epci_poly: gpd.GeoSeries) -> dict:
    """EPCI without a digital project (no lieu de médiation, no CNFS): polygons."""
    ep = _no_project(plan)
    c = plan.communes
    tips = {}
    for e, r in ep.iterrows():
        members = c[c["epci"] == e]
        mm = (f"{_fmt_minutes(r['minutes_mean'])} ({_fmt_minutes(r['minutes_max'])})"
              if "minutes_mean" in ep.columns else "—")
        tips[e] = [f"{r['nom']} : sans projet numérique", str(e), str(len(members)),
                   _fmt_int(members["population"].sum()) + " hab.",
                   _fmt_int(members["need"].sum()) + " hab.",
                   _fmt_int(r.get("n_lieu_mediation", 0)), _fmt_int(r.get("n_cnfs", 0)),
                   _fmt_int(r.get("n_france_services", 0)),
                   _fmt_int(r.get("n_aidants_connect", 0)), mm]
    keep = [e for e in epci_poly.index if e in tips]
    return _features(epci_poly.loc[keep], pd.DataFrame({"t": [tips[e] for e in keep]},
                                                        index=keep))


def circuit_colour(i: int) -> str:
    """Colour of the ``i``-th itinerant circuit (0-based, cycled)."""
    return CIRCUIT_COLOURS[i % len(CIRCUIT_COLOURS)]


def timetable_slots(plan: Any) -> dict[tuple[str, str], list[str]]:
    """``(circuit_id, insee)`` → French slots ``["lundi matin", …]`` in week order."""
    tt = getattr(plan, "timetable", None)
    out: dict[tuple[str, str], list[str]] = {}
    if tt is None or len(tt) == 0:
        return out
    for r in tt.itertuples(index=False):
        out.setdefault((str(r.circuit_id), str(r.insee)), []).append(f"{r.day} {r.half_day}")
    return out


def _circuit_features(plan: Any, decimals: int) -> dict:
    """Itinerant circuits: the tour line of each circuit, its base (square label) and
    its stops (numbered in tour order), coloured by circuit."""
    circuits = plan.circuits.sort_values("circuit_id", kind="stable")
    c = plan.communes
    names = c["nom"]
    slots = timetable_slots(plan)
    tt = plan.timetable
    hours = (tt.groupby([tt["circuit_id"].astype(str), tt["insee"].astype(str)])["hours"].sum()
             if len(tt) else pd.Series(dtype=float))
    lines = gpd.GeoSeries(circuits.geometry.to_numpy(), crs=circuits.crs).to_crs(
        GEOGRAPHIC_CRS)
    lines = _round_coords(lines, decimals)
    posts = plan.posts
    with_post = (set(posts.loc[posts["kind"].astype(str) == "itinerant", "circuit_id"]
                     .astype(str)) if {"kind", "circuit_id"} <= set(posts.columns) else set())
    feats, points = [], []
    for i, (r, line) in enumerate(zip(circuits.itertuples(index=False), lines)):
        colour = circuit_colour(i)
        cid = str(r.circuit_id)
        stops = [x for x in str(r.stops).split(";") if x]
        stop_txt = " → ".join(f"{names.get(x, x)}" for x in stops)
        tip = [f"Circuit itinérant {cid}", f"{r.base_nom} ({r.base_insee})",
               f"{stop_txt} → retour à la base", f"{_fmt_int(r.km_per_week)}\u00a0km",
               _fmt_hours(float(r.minutes_per_week) / 60.0), _fmt_hours(r.hours_at_stops),
               _fmt_int(r.population) + " hab.", _fmt_int(r.need) + " hab."]
        if line is not None and not line.is_empty:
            feats.append({"type": "Feature", "id": cid,
                          "properties": {"t": tip, "k": f"l{i}"},
                          "geometry": shapely.geometry.mapping(line)})
        xy = _round_coords(gpd.GeoSeries(gpd.points_from_xy(
            c.loc[[str(r.base_insee)] + stops, "chef_lieu_x"],
            c.loc[[str(r.base_insee)] + stops, "chef_lieu_y"]), crs=c.crs).to_crs(
            GEOGRAPHIC_CRS), decimals)
        if cid not in with_post:  # else the post marker (circuit colour) marks the base
            base_icon = (f'<div class="cg-lab cg-base" style="background:{colour}">'
                         f'{html.escape(cid)}</div>')
            points.append({"type": "Feature", "id": f"{cid}:base",
                           "properties": {"t": tip, "icon": base_icon},
                           "geometry": shapely.geometry.mapping(xy.iloc[0])})
        for k, (insee, pt) in enumerate(zip(stops, xy.iloc[1:]), start=1):
            sl = slots.get((cid, insee), [])
            stip = [f"{names.get(insee, insee)} ({insee})", f"{cid} (base : {r.base_nom})",
                    f"{k} sur {len(stops)}", _fmt_int(c.at[insee, "population"]) + " hab.",
                    ", ".join(sl) if sl else "—",
                    _fmt_hours(hours.get((cid, insee), float("nan")))]
            icon = (f'<div class="cg-lab cg-stop" style="border-color:{colour};color:{colour}">'
                    f'{k}</div>')
            points.append({"type": "Feature", "id": f"{cid}:{k}",
                           "properties": {"t": stip, "icon": icon, "l": STOP_TIP_LABELS},
                           "geometry": shapely.geometry.mapping(pt)})
    return {"type": "FeatureCollection", "features": feats + points}


_SHARED_DATA = """
{% macro script(this, kwargs) %}
    var {{ this.get_name() }} = {{ this.json|safe }};
{% endmacro %}
"""


class _SharedData(MacroElement):
    """GeoJSON written once as a compact JS variable, drawn by several layers."""

    def __init__(self, data: dict, name: str = "CommunesData"):
        super().__init__()
        self._name = name
        self.json = _compact_json(data)
        self._template = Template(_SHARED_DATA)


_JSON_LAYER = """
{% macro script(this, kwargs) %}
    var {{ this.get_name() }} = L.geoJson({{ this.source.get_name() }}, {
        {%- if this.filter_key %}
        filter: function(f) { return f.properties[{{ this.filter_key|tojson }}]; },
        {%- endif %}
        {%- if this.point_styles or this.point_icons %}
        pointToLayer: function(f, latlng) {
            {%- if this.point_icons %}
            if (f.properties.icon) {
                return L.marker(latlng, {icon: L.divIcon({html: f.properties.icon,
                    className: "cg-label", iconSize: null})});
            }
            {%- endif %}
            var st = {{ (this.point_styles or {})|tojson }};
            return L.circleMarker(latlng, st[f.properties[{{ this.point_key|tojson }}]]);
        },
        {%- endif %}
        {%- if this.style or this.colour_key or this.style_key or not this.point_styles %}
        style: function(f) {
            var st = Object.assign({}, {{ this.style|tojson }});
            {%- if this.colour_key %}
            st.fillColor = f.properties[{{ this.colour_key|tojson }}];
            {%- endif %}
            {%- if this.style_key %}
            Object.assign(st, {{ this.styles|tojson }}[f.properties[{{ this.style_key|tojson }}]]);
            {%- endif %}
            {%- if this.hatch %}
            st.fillColor = cgHatch(st.fillColor);
            {%- endif %}
            return st;
        },
        {%- endif %}
        onEachFeature: function(f, layer) {
            layer.bindTooltip(cgTip(f.properties.l || {{ this.labels|tojson }},
                                    f.properties[{{ this.tip_key|tojson }}]),
                              {sticky: true, opacity: 0.95});
            {%- if this.highlight %}
            layer.on({
                mouseover: function(e) { e.target.setStyle({{ this.highlight|tojson }}); },
                mouseout: function(e) { {{ this.get_name() }}.resetStyle(e.target); }
            });
            {%- endif %}
        }
    });
{% endmacro %}
"""


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

    def __init__(self, source: _SharedData, name: str, *, labels: list[str], show: bool = True,
                 style: dict | None = None, colour_key: str | None = None,
                 filter_key: str | None = None, highlight: dict | None = None,
                 point_styles: dict | None = None, point_key: str | None = None,
                 tip_key: str = "t", style_key: str | None = None,
                 styles: dict | None = None, point_icons: bool = False, hatch: bool = False):
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
        self._template = Template(_JSON_LAYER)


def _commune_layer(source: _SharedData, name: str, colour_key: str, *, show: bool,
                   filter_key: str | None = None, line_colour: str = "#555555",
                   weight: float = 0.5, fill_opacity: float = 0.65) -> _JsonLayer:
    return _JsonLayer(source, name, labels=COMMUNE_TIP_LABELS, show=show,
                      style={"color": line_colour, "weight": weight, "opacity": 1,
                             "fillOpacity": fill_opacity},
                      colour_key=colour_key, filter_key=filter_key,
                      highlight={"weight": weight + 2, "color": "#000000"})


def _place_props(places: gpd.GeoDataFrame) -> pd.DataFrame:
    """Per place: tooltip values ``t`` and ``s`` = 1 for accompaniment, 0 for access."""
    tips = []
    for _, r in places.iterrows():
        v = r.get("advisors")
        if v is None or pd.isna(v):
            advisors = "inconnu"
        else:
            advisors = _fmt_num(v, 1) + (" (valeur par défaut)" if bool(r.get("advisors_assumed"))
                                          else "")
        commune = r.get("commune")
        name = r["name"] if isinstance(r["name"], str) and r["name"] else "(sans nom)"
        tips.append([
            name,
            f"{commune} ({r['insee']})" if isinstance(commune, str) else str(r["insee"]),
            kinds_label(r["kinds"]),
            SERVICE_LABELS.get(r["service_level"], str(r["service_level"])),
            advisors,
            "oui" if bool(r.get("itinerant")) else "non",
            LOCATED_LABELS.get(r.get("located"), "—"),
            str(r.get("sources", "—")).replace(";", ", "),
        ])
    return pd.DataFrame({"t": tips,
                         "s": (places["service_level"] == "accompaniment").astype(int)},
                        index=places.index)


def _place_styles(colour: str) -> dict:
    return {"1": {"radius": 6, "color": "#ffffff", "weight": 1.5, "fill": True,
                  "fillColor": colour, "fillOpacity": 0.95},
            "0": {"radius": 5, "color": colour, "weight": 2.5, "fill": True,
                  "fillColor": "#ffffff", "fillOpacity": 0.9, "dashArray": "2,2"}}


def posts_with_coverage(plan: Any) -> gpd.GeoDataFrame:
    """``plan.posts`` with ``covered_population`` / ``covered_need`` filled when missing.

    When the placement did not fill them (NaN), each commune newly covered
    (``covered_after`` and not ``covered_before``) is given to its nearest new post
    (``plan.communes["nearest_post"]``), the rule :mod:`cnfs_geo.placement` uses.
    """
    posts = plan.posts.copy()
    c = plan.communes
    missing = [col for col in ("covered_population", "covered_need")
               if col not in posts.columns or posts[col].isna().any()]
    if missing and "nearest_post" in c.columns:
        newly = c[c["covered_after"].astype(bool) & ~c["covered_before"].astype(bool)]
        sums = newly.groupby("nearest_post")[["population", "need"]].sum()
        for col, src in (("covered_population", "population"), ("covered_need", "need")):
            if col in missing:
                posts[col] = posts["post_id"].map(sums[src]).fillna(0.0).astype(float)
        log.warning("plan.posts: %s missing; recomputed from the communes newly covered, "
                    "each given to its nearest new post", ", ".join(missing))
    return posts


def is_itinerant_post(row: Any) -> bool:
    """True for a post of kind ``itinerant`` (one per circuit, at its base)."""
    return str(getattr(row, "kind", "fixed")) == "itinerant"


def host_kind_label(kind: Any) -> str:
    """French label of a post's ``host_kind`` (``mairie``, ``itinerant`` or place kinds)."""
    if not isinstance(kind, str) or not kind:
        return "—"
    if kind == "mairie":
        return "Mairie"
    if kind == "itinerant":
        return "Poste itinérant (médiateur volant)"
    return kinds_label(kind)


def _itinerant_post_tooltip(row: Any, plan: Any, number: int) -> str:
    cid = str(getattr(row, "circuit_id", "") or "")
    circ = getattr(plan, "circuits", None)
    stops = "—"
    if circ is not None and len(circ) and cid:
        hit = circ[circ["circuit_id"].astype(str) == cid]
        if len(hit):
            names = plan.communes["nom"]
            stops = " → ".join(str(names.get(x, x)) for x in str(hit.iloc[0]["stops"]).split(";")
                               if x)
    e = getattr(row, "epci", None)
    epci = str(plan.epci["nom"].get(e, e)) if e is not None and pd.notna(e) else "—"
    return _tip([
        ("Identifiant", str(row.post_id)),
        ("Type", "Poste itinérant (médiateur volant)"),
        ("Circuit", cid or "—"),
        ("Base", f"{row.commune} ({row.insee})"),
        ("EPCI", epci),
        ("Arrêts dans l'ordre de la tournée", stops),
        ("Population desservie", _fmt_int(row.covered_population) + " hab."),
        ("Population pondérée desservie", _fmt_int(row.covered_need) + " hab."),
    ], f"Nouveau poste n° {number} (itinérant, circuit {cid})")


def _post_tooltip(row: Any, plan: Any, number: int) -> str:
    if is_itinerant_post(row):
        return _itinerant_post_tooltip(row, plan, number)
    e = getattr(row, "epci", None)
    epci = str(plan.epci["nom"].get(e, e)) if e is not None and pd.notna(e) else "—"
    c = plan.communes
    newly = []
    if "nearest_post" in c.columns:
        m = (c["nearest_post"] == row.post_id) & c["covered_after"].astype(bool) \
            & ~c["covered_before"].astype(bool)
        newly = sorted(c.loc[m, "nom"].astype(str))
    return _tip([
        ("Identifiant", str(row.post_id)),
        ("Structure d'accueil", str(row.host)),
        ("Type d'accueil", host_kind_label(getattr(row, "host_kind", ""))),
        ("Commune", f"{row.commune} ({row.insee})"),
        ("EPCI", epci),
        ("Population nouvellement couverte", _fmt_int(row.covered_population) + " hab."),
        ("Population pondérée nouvellement couverte", _fmt_int(row.covered_need) + " hab."),
        ("Communes nouvellement couvertes", ", ".join(newly) if newly else "—"),
    ], f"Nouveau poste n° {number}")


_POST_ICON = ('<div style="background:{colour};color:#fff;border:2px solid #fff;'
              'box-shadow:0 0 3px #000;width:18px;height:18px;text-align:center;'
              'font:bold 11px/18px Arial,sans-serif;">{label}</div>')


def _legend_html(plan: Any) -> str:
    t = _fmt_num(plan.scenario.threshold)

    def swatch(colour: str, label: str, *, border: str = "#555") -> str:
        return (f'<div class="cg-row"><span class="cg-sw" style="background:{colour};'
                f'border-color:{border}"></span>{html.escape(label, quote=False)}</div>')

    def dot(colour: str, label: str, *, hollow: bool) -> str:
        style = (f"background:#fff;border:2.5px dashed {colour}" if hollow
                 else f"background:{colour};border:1.5px solid #fff;box-shadow:0 0 0 1px {colour}")
        return (f'<div class="cg-row"><span class="cg-dot" style="{style}"></span>'
                f'{html.escape(label, quote=False)}</div>')

    unit_note = ('<div class="cg-note">Unité de demande : '
                 f'{html.escape(str(plan.demand_unit), quote=False)} ; temps de trajet : '
                 f'{html.escape(str(plan.travel_model), quote=False)}</div>')
    parts = ['<div class="cg-h">Temps d\'accès au lieu d\'accompagnement le plus proche</div>']
    parts += [swatch(c, lab) for c, lab in zip(MINUTE_COLOURS, minute_class_labels())]
    if not np.isfinite(plan.communes["minutes_before"].astype(float)).all():
        parts.append(swatch(NO_PLACE_COLOUR, "aucun lieu d'accompagnement"))
    parts.append(f'<div class="cg-note">Seuil de couverture : {t} min</div>')
    if demand_unit_key(plan) != "commune":
        parts.append('<div class="cg-note">Par commune : moyenne des unités de demande '
                     'pondérée par la population ; une commune est couverte quand au moins la '
                     'moitié de sa population l\'est.</div>')
    parts.append(unit_note)
    parts.append('<div class="cg-h">Indice de fragilité numérique (0 à 10)</div>')
    parts += [swatch(c, lab) for c, lab in zip(NEED_COLOURS, need_class_labels())]
    parts.append('<div class="cg-h">Score de priorité (0 à 100)</div>')
    parts += [swatch(c, lab) for c, lab in zip(PRIORITY_COLOURS, priority_class_labels())]
    parts.append(swatch("#ffffff", "contour noir : commune prioritaire (loin ou offre mince, "
                        "et fragile)", border=PRIORITY_GAP_LINE))
    parts.append(f'<div class="cg-h">Communes non couvertes aujourd\'hui (&gt; {t} min)</div>')
    parts.append(swatch(GAP_SOLVED_COLOUR, "couvertes grâce aux nouveaux postes"))
    parts.append(swatch(GAP_REMAINING_COLOUR, "toujours non couvertes"))
    parts.append('<div class="cg-h">Territoires prioritaires</div>')
    if _clusters(plan) is not None:
        parts.append(f'<div class="cg-row"><span class="cg-line" style="border-color:'
                     f'{CLUSTER_COLOUR};border-top-width:3px"></span>zone de communes '
                     'prioritaires contiguës (G01, G02…)</div>')
    else:
        parts.append('<div class="cg-note">Aucune commune ne remplit la règle de '
                     'priorité.</div>')
    if len(_no_project(plan)):
        parts.append(f'<div class="cg-row"><span class="cg-sw cg-hatch" style="border:2px '
                     f'dashed {NO_PROJECT_COLOUR};color:{NO_PROJECT_COLOUR}"></span>EPCI sans '
                     'projet numérique (ni lieu de médiation ni conseiller numérique)</div>')
    else:
        parts.append('<div class="cg-note">Aucun EPCI sans projet numérique : chaque EPCI '
                     'compte au moins un lieu de médiation numérique ou un conseiller '
                     'numérique.</div>')
    parts.append('<div class="cg-h">Lieux existants</div>')
    parts += [dot(KIND_COLOURS[k], lab, hollow=False) for k, lab in KIND_LABELS.items()]
    parts.append(dot("#555555", "cercle creux : accès seul, sans accompagnement", hollow=True))
    if has_circuits(plan):
        parts.append('<div class="cg-h">Circuits itinérants (médiateur volant)</div>')
        for i, cid in enumerate(plan.circuits.sort_values("circuit_id", kind="stable")[
                "circuit_id"].astype(str)):
            parts.append(f'<div class="cg-row"><span class="cg-line" style="border-color:'
                         f'{circuit_colour(i)};border-top-style:dashed;border-top-width:3px">'
                         f'</span>circuit {html.escape(cid)}</div>')
        parts.append('<div class="cg-row"><span class="cg-post" style="background:#555">9'
                     '</span>poste itinérant, à la base du circuit (couleur du circuit)</div>')
        parts.append('<div class="cg-row"><span class="cg-lab cg-stop cg-inline" '
                     'style="border-color:#555;color:#555">1</span>arrêt (ordre de la '
                     'tournée)</div>')
    parts.append('<div class="cg-h">Autres</div>')
    parts.append(f'<div class="cg-row"><span class="cg-post" style="background:{POST_COLOUR}">'
                 f'1</span>nouveau poste proposé (numéro)</div>')
    parts.append(f'<div class="cg-row"><span class="cg-line" style="border-color:{EPCI_COLOUR}">'
                 '</span>limite d\'EPCI</div>')
    parts.append('<div class="cg-note">Chaque lieu figure une fois, dans la couche de son label '
                 'principal (France Services, puis conseiller numérique, médiation, Aidants '
                 'Connect).</div>')
    return "".join(parts)


_OVERLAY = """
{% macro header(this, kwargs) %}
<style>
.cg-title{position:fixed;top:10px;left:60px;max-width:calc(100% - 480px);z-index:1000;background:rgba(255,255,255,.93);
 padding:6px 12px;border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.35);font-family:Arial,sans-serif;}
.cg-title h1{font-size:16px;margin:0 0 2px 0;}
.cg-title p{font-size:12px;margin:0;color:#333;}
.leaflet-control-layers{font:12px/1.5 Arial,sans-serif;}
.cg-legend{position:fixed;bottom:24px;left:10px;z-index:1000;background:rgba(255,255,255,.95);
 padding:8px 10px;border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.35);font:11px Arial,sans-serif;
 max-height:70vh;overflow-y:auto;width:260px;}
.cg-legend .cg-h{font-weight:bold;margin:6px 0 3px 0;}
.cg-legend summary + .cg-h{margin-top:0;}
.cg-legend .cg-row{display:flex;align-items:center;margin:1px 0;}
.cg-legend .cg-sw{display:inline-block;width:16px;height:11px;border:1px solid;margin-right:6px;}
.cg-legend .cg-dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:8px;}
.cg-legend .cg-post{display:inline-block;width:16px;height:16px;color:#fff;text-align:center;
 font-weight:bold;line-height:16px;margin-right:6px;}
.cg-legend .cg-line{display:inline-block;width:16px;height:0;border-top:2px solid;margin-right:6px;}
.cg-legend .cg-note{color:#555;font-style:italic;margin:2px 0;}
.cg-tip table{border-collapse:collapse;margin-top:3px;font-size:11px;}
.cg-tip th{text-align:left;font-weight:normal;color:#555;padding:0 8px 0 0;vertical-align:top;
 white-space:nowrap;}
.cg-tip td{padding:0;min-width:150px;max-width:280px;white-space:normal;}
.cg-legend summary{font-weight:bold;font-size:12px;cursor:pointer;margin-bottom:4px;}
.cg-legend .cg-hatch{background:repeating-linear-gradient(135deg,currentColor 0 2px,#fff 2px 5px);}
.cg-label{background:none;border:none;}
.cg-lab{transform:translate(-50%,-50%);display:inline-block;white-space:nowrap;
 font:bold 11px/14px Arial,sans-serif;padding:0 3px;border:2px solid;border-radius:3px;
 background:rgba(255,255,255,.9);box-shadow:0 0 2px rgba(0,0,0,.4);}
.cg-lab.cg-base{color:#fff;border-color:#fff;border-radius:2px;}
.cg-lab.cg-stop{border-radius:50%;min-width:14px;text-align:center;padding:0 2px;}
.cg-legend .cg-inline{transform:none;margin-right:6px;font-size:10px;line-height:12px;}
</style>
<script>
function cgEsc(s) {
    return String(s).replace(/[&<>"]/g, function(c) {
        return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]; });
}
function cgHatch(colour) {
    // hatching as a canvas pattern (the map draws vector layers on a canvas)
    var c = document.createElement("canvas");
    c.width = 8; c.height = 8;
    var x = c.getContext("2d");
    x.strokeStyle = colour; x.lineWidth = 2;
    x.beginPath(); x.moveTo(0, 8); x.lineTo(8, 0); x.moveTo(-2, 2); x.lineTo(2, -2);
    x.moveTo(6, 10); x.lineTo(10, 6); x.stroke();
    return x.createPattern(c, "repeat");
}
function cgTip(labels, v) {
    var h = '<div class="cg-tip"><b>' + cgEsc(v[0]) + '</b><table>';
    for (var i = 0; i < labels.length; i++) {
        if (v[i + 1] === null || v[i + 1] === undefined) { continue; }
        h += '<tr><th>' + cgEsc(labels[i]) + '</th><td>' + cgEsc(v[i + 1]) + '</td></tr>';
    }
    return h + '</table></div>';
}
</script>
{% endmacro %}
{% macro html(this, kwargs) %}
<div class="cg-title"><h1>{{ this.title }}</h1><p>{{ this.subtitle }}</p></div>
<details class="cg-legend" id="legende" open><summary>Légende</summary>{{ this.legend }}</details>
{% endmacro %}
{% macro script(this, kwargs) %}
    L.control.scale({imperial: false, position: "bottomright"}).addTo({{ this._parent.get_name() }});
    (function(map) {
        // a commune layer switched on later must stay under the EPCI lines and the places
        var front = [{% for l in this.front %}{{ l.get_name() }}{{ ", " if not loop.last }}{% endfor %}];
        map.on("overlayadd", function() {
            front.forEach(function(l) { if (map.hasLayer(l)) { l.bringToFront(); } });
        });
    })({{ this._parent.get_name() }});
{% endmacro %}
"""


class _Overlay(MacroElement):
    """Title box and legend (fixed HTML over the map)."""

    def __init__(self, title: str, subtitle: str, legend: str, front: list):
        super().__init__()
        self.front = front
        self._name = "Legende"
        self.title = html.escape(title)
        self.subtitle = html.escape(subtitle)
        self.legend = legend
        self._template = Template(_OVERLAY)


def departement_name(plan: Any) -> str:
    """French name of the plan's département from the COG file (code when unknown)."""
    import json

    code = str(plan.scenario.departement)
    try:
        path = plan.data_dir.file("cog_departements", required=False)
    except Exception:  # noqa: BLE001 - any data-dir problem: fall back to the code
        path = None
    if path is not None:
        try:
            with open(path, encoding="utf-8") as fh:
                for rec in json.load(fh):
                    if str(rec.get("code")) == code:
                        return str(rec.get("nom"))
        except (OSError, ValueError) as exc:
            log.warning("%s: cannot read département names (%s)", path, exc)
    return f"département {code}"


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


def coverage_map(plan: Any, *, path: str | Path | None = None, simplify_m: float = 50.0,
                 decimals: int = 5) -> folium.Map:
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
    fmap = folium.Map(location=[round((miny + maxy) / 2, decimals), round((minx + maxx) / 2, decimals)],
                      zoom_start=9, tiles=None, control_scale=False, prefer_canvas=True)
    folium.TileLayer("OpenStreetMap", name="Fond de carte OpenStreetMap", control=True
                     ).add_to(fmap)

    names = iter(layer_names(plan))
    shared = _SharedData(data)
    fmap.add_child(shared)
    _commune_layer(shared, next(names), "b", show=True).add_to(fmap)
    _commune_layer(shared, next(names), "a", show=False).add_to(fmap)
    _commune_layer(shared, next(names), "n", show=False).add_to(fmap)
    # priority score: same polygons, own tooltip; communes meeting the rule outlined
    _JsonLayer(shared, next(names), labels=PRIORITY_TIP_LABELS, show=False, tip_key="p",
               style={"color": "#777777", "weight": 0.4, "opacity": 1, "fillOpacity": 0.75},
               colour_key="ps", style_key="pg",
               styles={"1": {"color": PRIORITY_GAP_LINE, "weight": 1.6}, "0": {}},
               highlight={"weight": 3, "color": "#000000"}).add_to(fmap)
    _commune_layer(shared, next(names), "g", show=False, filter_key="gap", line_colour="#67000d",
                   weight=1.5, fill_opacity=0.6).add_to(fmap)

    if has_units_layer(plan):
        udata = _SharedData(_unit_features(plan, simplify_m=max(simplify_m, UNITS_SIMPLIFY_M),
                                           decimals=min(decimals, UNITS_DECIMALS)),
                            name="UnitsData")
        fmap.add_child(udata)
        for key in ("b", "a"):
            _JsonLayer(udata, next(names), labels=UNIT_TIP_LABELS, show=False,
                       style={"color": "#555555", "weight": 0.4, "opacity": 1,
                              "fillOpacity": 0.7},
                       colour_key=key, highlight={"weight": 2.5, "color": "#000000"}
                       ).add_to(fmap)

    # EPCI polygons dissolved from the simplified communes (borders match exactly)
    epci_poly = gpd.GeoDataFrame({"epci": communes["epci"].astype(str)}, geometry=geoms,
                                 crs=GEOGRAPHIC_CRS).dissolve(by="epci").sort_index()
    front = []
    if len(_no_project(plan)):
        npdata = _SharedData(_no_project_features(plan, _round_coords(
            epci_poly.geometry, decimals)), name="NoProjectData")
        fmap.add_child(npdata)
        layer = _JsonLayer(npdata, next(names), labels=NO_PROJECT_TIP_LABELS, show=True,
                           style={"color": NO_PROJECT_COLOUR, "weight": 3.5, "opacity": 1,
                                  "dashArray": "8,5", "fill": True,
                                  "fillColor": NO_PROJECT_COLOUR, "fillOpacity": 0.55},
                           hatch=True)
        layer.add_to(fmap)
        front.append(layer)

    epci_geo = epci_poly.set_geometry(_round_coords(epci_poly.geometry.boundary, decimals))
    ep = plan.epci
    epci_tips = []
    for e in epci_geo.index:
        members = communes[communes["epci"] == e]
        epci_tips.append([str(ep["nom"].get(e, e)), str(e), str(len(members)),
                          _fmt_int(members["population"].sum()) + " hab."])
    epci_data = _SharedData(_features(epci_geo.geometry, pd.DataFrame(
        {"t": epci_tips}, index=epci_geo.index)), name="EpciData")
    fmap.add_child(epci_data)
    layer = _JsonLayer(epci_data, next(names), labels=EPCI_TIP_LABELS, show=True,
                       style={"color": EPCI_COLOUR, "weight": 2.2, "opacity": 0.9,
                              "fill": False})
    layer.add_to(fmap)
    front.append(layer)

    if _clusters(plan) is not None:
        cdata = _SharedData(_cluster_features(plan, geoms, decimals), name="ClustersData")
        fmap.add_child(cdata)
        layer = _JsonLayer(cdata, next(names), labels=CLUSTER_TIP_LABELS, show=True,
                           style={"color": CLUSTER_COLOUR, "weight": 3.2, "opacity": 0.95,
                                  "fill": True, "fillColor": CLUSTER_COLOUR,
                                  "fillOpacity": 0.12},
                           point_icons=True)
        layer.add_to(fmap)
        front.append(layer)

    # places: one layer per main kind; access-only first (drawn underneath)
    mk = places["kinds"].map(main_kind)
    order = places.assign(_acc=(places["service_level"] == "accompaniment")).sort_values(
        ["_acc", "place_id"], kind="stable")
    for kind in KIND_LABELS:
        sub = order[mk.loc[order.index] == kind]
        pts = _round_coords(sub.geometry.to_crs(GEOGRAPHIC_CRS), decimals)
        ids = pd.Index(sub["place_id"].astype(str))
        src = _SharedData(_features(pts.set_axis(ids), _place_props(sub).set_axis(ids)),
                          name="PlacesData")
        fmap.add_child(src)
        layer = _JsonLayer(src, next(names), labels=PLACE_TIP_LABELS, show=True,
                           point_styles=_place_styles(KIND_COLOURS[kind]), point_key="s")
        layer.add_to(fmap)
        front.append(layer)

    if has_circuits(plan):
        n_circ = len(plan.circuits)
        cdata = _SharedData(_circuit_features(plan, decimals), name="CircuitsData")
        fmap.add_child(cdata)
        layer = _JsonLayer(cdata, next(names), labels=CIRCUIT_TIP_LABELS, show=True,
                           style={"weight": 3.5, "opacity": 0.9, "dashArray": "10,6",
                                  "fill": False},
                           style_key="k", styles={f"l{i}": {"color": circuit_colour(i)}
                                                  for i in range(n_circ)},
                           point_icons=True)
        layer.add_to(fmap)
        front.append(layer)

    posts = posts_with_coverage(plan)
    fg = folium.FeatureGroup(name=next(names), show=True)
    pts = _round_coords(posts.geometry.to_crs(GEOGRAPHIC_CRS), decimals)
    circuit_order = ({str(cid): i for i, cid in enumerate(plan.circuits.sort_values(
        "circuit_id", kind="stable")["circuit_id"])} if has_circuits(plan) else {})
    for i, (row, pt) in enumerate(zip(posts.itertuples(index=False), pts)):
        label = str(i + 1)
        colour = POST_COLOUR
        if is_itinerant_post(row):
            k = circuit_order.get(str(getattr(row, "circuit_id", "")))
            colour = circuit_colour(k) if k is not None else POST_COLOUR
        folium.Marker(
            location=[pt.y, pt.x],
            icon=folium.DivIcon(html=_POST_ICON.format(colour=colour, label=label),
                                icon_size=(22, 22), icon_anchor=(11, 11),
                                class_name="cg-post-icon"),
            tooltip=folium.Tooltip(_post_tooltip(row, plan, i + 1), sticky=True),
        ).add_to(fg)
    fg.add_to(fmap)

    folium.LayerControl(collapsed=False, position="topright").add_to(fmap)
    n_itin = int(sum(is_itinerant_post(r) for r in posts.itertuples(index=False)))
    title = (f"Accompagnement au numérique — {dep_name} ({plan.scenario.departement}) : "
             f"couverture actuelle et {len(posts)} nouveaux postes proposés"
             + (f" ({len(posts) - n_itin} fixes, {n_itin} itinérants)" if n_itin else ""))
    s = plan.summary()
    subtitle = (f"Seuil {_fmt_num(t)} min · population couverte "
                f"{_fmt_pct(s['pct_population_covered_before'])} → "
                f"{_fmt_pct(s['pct_population_covered_after'])} · "
                f"unité de demande : {demand_unit_short(plan)} · "
                f"temps de trajet : {plan.travel_model}")
    fmap.add_child(_Overlay(title, subtitle, _legend_html(plan), front))
    fmap.fit_bounds([[round(miny, decimals), round(minx, decimals)],
                     [round(maxy, decimals), round(maxx, decimals)]])
    fmap.get_root().title = f"Carte de couverture — {dep_name}"
    _deterministic_ids(fmap.get_root())

    if path is not None:
        out = Path(path)
        if out.is_dir():
            out = out / MAP_FILENAME
        out.parent.mkdir(parents=True, exist_ok=True)
        html_text = fmap.get_root().render()
        out.write_text(html_text, encoding="utf-8")
        log.info("map: %s (%d communes, %d places, %d posts, %.0f kB)", out, len(communes),
                 len(places), len(posts), len(html_text.encode("utf-8")) / 1024)
    return fmap


def render_html(fmap: folium.Map) -> str:
    """HTML text of a map built by :func:`coverage_map` (deterministic)."""
    return fmap.get_root().render()

