"""Write every output of a plan: GeoPackage, coverage map and report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from . import maps, pdf, report

log = logging.getLogger(__name__)

__all__ = ["COMMUNE_COLUMNS", "scenario_table", "write_geopackage", "write_outputs"]

COMMUNE_COLUMNS = [
    "insee",
    "nom",
    "departement",
    "epci",
    "epci_nom",
    "population",
    "area_km2",
    "density",
    "need_index",
    "need",
    "need_imputed",
    "ifn_no_thd",
    "ifn_no_4g",
    "ifn_poverty",
    "ifn_older_65",
    "ifn_low_diploma",
    "ifn_total",
    "pct_fibre",
    "nb_locaux",
    "nb_locaux_fibre",
    "minutes_before",
    "nearest_place_before",
    "nearest_place_name",
    "pct_covered_before",
    "covered_before",
    "minutes_after",
    "nearest_post",
    "pct_covered_after",
    "covered_after",
    "gap",
    "gap_rank",
    "remaining_gap",
    "accessibility",
    "ratio_to_target",
    "priority_score",
    "priority_rank",
    "priority_gap",
    "gap_reasons",
    "gap_cluster",
    "itinerant_circuit",
    "covered_with_itinerant",
    "codes_2018",
    "geometry",
]
# GeoPackages record a modification time in gpkg_contents; pin it so that the same
# inputs give byte-identical files.
_FIXED_GPKG_DATE = "2000-01-01T00:00:00.000Z"


def _gpkg_ready(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = gdf.copy()
    for col in out.columns:
        if col == out.geometry.name:
            continue
        if str(out[col].dtype) in ("Int64", "boolean"):
            out[col] = out[col].astype("float64" if str(out[col].dtype) == "Int64" else "object")
        if out[col].dtype == object or str(out[col].dtype).startswith("str"):
            out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out


def scenario_table(plan: Any) -> pd.DataFrame:
    """What produced a plan, as ``key``/``value`` text rows (the GeoPackage's ``scenario``
    table): département, threshold, posts, placement model, travel model, demand unit,
    need options, data directory kind and every setting."""
    sc = plan.scenario
    rows = {
        "departement": sc.departement,
        "threshold_minutes": sc.threshold,
        "fixed_posts": sc.p,
        "itinerant_posts": sc.itinerant_posts,
        "placement_model": sc.model,
        "travel_model": plan.travel_model,
        "demand_unit": plan.demand_unit,
        "need_weights": sc.need_weights or "IFN composite",
        "fibre_target_pct": sc.fibre_target_pct,
        "data": plan.data_dir.origin,
        "solver": plan.solution.get("solver"),
        "objective": plan.solution.get("objective"),
        "gap": plan.solution.get("gap"),
    }
    rows.update({f"settings.{k}": v for k, v in plan.settings.as_dict().items()})
    return pd.DataFrame({"key": list(rows), "value": [str(v) for v in rows.values()]})


def write_geopackage(plan: Any, path: str | Path) -> None:
    """Write ``plan.gpkg`` with layers ``communes``, ``places``, ``posts``, ``epci``,
    ``departement``, ``gap_clusters`` and, with itinerant posts, ``circuits`` (working
    CRS); attribute tables ``scenario`` (:func:`scenario_table`: travel model, demand
    unit, settings…), ``gap_communes`` and, with itinerant posts, ``timetable``.
    Byte-deterministic for the same plan."""
    import pyogrio

    path = Path(path)
    if path.exists():
        path.unlink()
    communes = plan.communes.reset_index()
    communes["minutes_before"] = communes["minutes_before"].replace(np.inf, np.nan)
    layers = {
        "communes": communes[[c for c in COMMUNE_COLUMNS if c in communes.columns]],
        "places": plan.places,
        "posts": plan.posts,
        "epci": plan.epci.reset_index(),
        "departement": plan.departement.reset_index(),
        "gap_clusters": plan.gap_clusters,
    }
    if len(plan.circuits):
        layers["circuits"] = plan.circuits
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": _FIXED_GPKG_DATE})
    try:
        for name, gdf in layers.items():
            _gpkg_ready(gdf).to_file(path, layer=name, driver="GPKG", engine="pyogrio")
        tables = {"scenario": scenario_table(plan), "gap_communes": plan.gap_communes}
        if len(plan.timetable):
            tables["timetable"] = plan.timetable
        for name, df in tables.items():
            pyogrio.write_dataframe(df.reset_index(drop=True), path, layer=name, driver="GPKG")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})


def write_outputs(plan: Any, out_dir: str | Path, *, with_pdf: bool = True) -> dict[str, Path]:
    """Write every output of a plan into ``out_dir``; return their paths by name.

    With ``with_pdf``, also ``rapport.pdf`` (:func:`cnfs_geo.pdf.write_pdf`, dated by
    ``$SOURCE_DATE_EPOCH`` or today; about as long to make as the plan itself), left
    out with a warning when WeasyPrint's system libraries are missing.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "geopackage": out / "plan.gpkg",
        "map": out / "carte_couverture.html",
        "report": out / "rapport.html",
    }
    write_geopackage(plan, paths["geopackage"])
    maps.coverage_map(plan, path=paths["map"])
    report.write_report(plan, paths["report"])
    if with_pdf:
        try:
            paths["pdf"] = pdf.write_pdf(plan, out / pdf.PDF_FILENAME)
        except pdf.PdfUnavailableError as exc:
            log.warning("%s", exc)
    return paths
