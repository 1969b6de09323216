"""Read-only views of a plan shared by the map, the report and the figures."""

from __future__ import annotations

import logging
from typing import Any

import geopandas as gpd
import pandas as pd

from ._errors import CnfsGeoError
from ._fr import UNIT_NOUNS
from .sources.cog import read_departement_names

log = logging.getLogger(__name__)


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
    return (
        demand_unit_key(plan) != "commune"
        and isinstance(units, gpd.GeoDataFrame)
        and len(units) > 0
        and "geometry" in units.columns
    )


def has_circuits(plan: Any) -> bool:
    """True when the plan carries at least one itinerant circuit (``plan.circuits``)."""
    circuits = getattr(plan, "circuits", None)
    return circuits is not None and len(circuits) > 0


def gap_clusters_or_none(plan: Any) -> gpd.GeoDataFrame | None:
    """``plan.gap_clusters`` when it has at least one cluster, else None."""
    cl = getattr(plan, "gap_clusters", None)
    return cl if cl is not None and len(cl) > 0 else None


def epci_without_project(plan: Any) -> pd.DataFrame:
    """Rows of ``plan.epci`` whose ``has_project`` is false (none without that column)."""
    ep = plan.epci
    if "has_project" not in ep.columns:
        return ep.iloc[0:0]
    return ep[~ep["has_project"].astype(bool)]


def is_itinerant_post(row: Any) -> bool:
    """True for a post of kind ``itinerant`` (one per circuit, at its base)."""
    return str(getattr(row, "kind", "fixed")) == "itinerant"


def posts_with_coverage(plan: Any) -> gpd.GeoDataFrame:
    """``plan.posts`` with ``covered_population`` / ``covered_need`` filled when missing.

    When the placement did not fill them (NaN), each commune newly covered
    (``covered_after`` and not ``covered_before``) is given to its nearest new post
    (``plan.communes["nearest_post"]``), the rule :mod:`cnfs_geo.placement` uses.
    """
    posts = plan.posts.copy()
    c = plan.communes
    missing = [
        col
        for col in ("covered_population", "covered_need")
        if col not in posts.columns or posts[col].isna().any()
    ]
    if missing and "nearest_post" in c.columns:
        newly = c[c["covered_after"].astype(bool) & ~c["covered_before"].astype(bool)]
        sums = newly.groupby("nearest_post")[["population", "need"]].sum()
        for col, src in (("covered_population", "population"), ("covered_need", "need")):
            if col in missing:
                posts[col] = posts["post_id"].map(sums[src]).fillna(0.0).astype(float)
        log.warning(
            "plan.posts: %s missing; recomputed from the communes newly covered, "
            "each given to its nearest new post",
            ", ".join(missing),
        )
    return posts


def stop_points(plan: Any) -> pd.DataFrame:
    """Where the circuits stop: index stop id (demand unit id, INSEE code for commune
    units); ``x``, ``y`` (working CRS), ``nom``, ``population``. From ``plan.units``
    (the unit's point) when it holds the ids, else the communes' chef-lieux."""
    ids = sorted(
        {x for r in plan.circuits.itertuples(index=False) for x in str(r.stops).split(";") if x}
    )
    u = getattr(plan, "units", None)
    out = pd.DataFrame(index=pd.Index(ids, dtype=object), columns=["x", "y", "nom", "population"])
    if isinstance(u, pd.DataFrame) and {"x", "y", "nom", "population"} <= set(u.columns):
        ui = u.set_axis(u.index.astype(str))
        hit = [i for i in ids if i in ui.index]
        out.loc[hit, ["x", "y", "nom", "population"]] = ui.loc[
            hit, ["x", "y", "nom", "population"]
        ].to_numpy()
    c = plan.communes
    rest = [i for i in ids if pd.isna(out.at[i, "x"]) and i in c.index]
    if rest:
        out.loc[rest, ["x", "y", "nom", "population"]] = c.loc[
            rest, ["chef_lieu_x", "chef_lieu_y", "nom", "population"]
        ].to_numpy()
    return out.astype({"x": float, "y": float, "population": float})


def stop_label(nom: Any, stop_id: Any) -> str:
    """A circuit stop as a reader knows it: ``Tuffalun (49003)``. An IRIS that is a whole
    commune (code ending in ``0000``) is given its commune's INSEE code; other units keep
    their id (a city's IRIS, a commune of 2018).

    >>> stop_label("Tuffalun", "490030000"), stop_label("Angers — Centre", "490070101")
    ('Tuffalun (49003)', 'Angers — Centre (490070101)')
    """
    code = str(stop_id)
    if len(code) == 9 and code.endswith("0000"):
        code = code[:5]
    return f"{nom} ({code})"


def timetable_slots(plan: Any) -> dict[tuple[str, str], list[str]]:
    """``(circuit_id, insee)`` → French slots ``["lundi matin", …]`` in week order."""
    tt = getattr(plan, "timetable", None)
    out: dict[tuple[str, str], list[str]] = {}
    if tt is None or len(tt) == 0:
        return out
    for r in tt.itertuples(index=False):
        out.setdefault((str(r.circuit_id), str(r.insee)), []).append(f"{r.day} {r.half_day}")
    return out


def departement_name(plan: Any) -> str:
    """French name of the plan's département from the COG file (code when unknown)."""
    code = str(plan.scenario.departement)
    try:
        path = plan.data_dir.file("cog_departements", required=False)
    except Exception:  # noqa: BLE001 - any data-dir problem: fall back to the code
        path = None
    if path is not None:
        try:
            names = read_departement_names(path)
        except CnfsGeoError as exc:
            log.warning("%s: cannot read département names (%s)", path, exc)
        else:
            if code in names:
                return names[code]
    return f"département {code}"
