"""Write every output of a plan: GeoPackage, coverage map and report, atomically.

Everything of a run is written into a temporary folder beside the output folder and moved
into place only when complete; an interrupted or killed run leaves the previous outputs
untouched, and its temporary folder is removed by the next run.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from . import _fr, catalog, maps, pdf, report
from ._errors import ArgumentError, InterruptedAfterWriting, OutputDirError

log = logging.getLogger(__name__)

__all__ = [
    "COMMUNE_COLUMNS",
    "TMP_PREFIX",
    "check_out_dir",
    "UNIT_COLUMNS",
    "scenario_table",
    "write_geopackage",
    "write_outputs",
]

#: Prefix of the temporary folders written beside the output folder.
TMP_PREFIX = ".cnfs-geo-tmp-"

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
    "priority_rank_low",
    "priority_rank_high",
    "priority_gap_low",
    "priority_gap_high",
    "gap_reasons",
    "gap_cluster",
    "itinerant_circuit",
    "population_served_itinerant",
    "pct_covered_with_itinerant",
    "covered_with_itinerant",
    "codes_2018",
    "geometry",
]
#: Columns of the ``units`` layer (demand units: where people are counted).
UNIT_COLUMNS = [
    "unit_id",
    "insee",
    "unit_type",
    "nom",
    "commune_nom",
    "population",
    "population_basis",
    "need",
    "point_basis",
    "x",
    "y",
    "minutes_before",
    "nearest_place_before",
    "covered_before",
    "minutes_after",
    "nearest_post",
    "covered_after",
    "geometry",
]
# GeoPackages record a modification time in gpkg_contents; pin it so that the same
# inputs give byte-identical files.
_FIXED_GPKG_DATE = "2000-01-01T00:00:00.000Z"


def _gpkg_ready(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = gdf.copy()
    geometry = out.geometry.name
    for col in out.columns:
        if col == geometry:
            continue
        values = out[col]
        dtype = str(values.dtype)
        if dtype in ("Int64", "boolean"):
            values = values.astype("float64" if dtype == "Int64" else "object")
            out[col] = values
        if values.dtype == object or str(values.dtype).startswith("str"):
            out[col] = values.astype(object).where(values.notna(), None)
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
    for p in catalog.data_provenance(plan.data_dir):  # provenance (issue 8)
        rows[f"source.{p['key']}"] = f"{p['title']} — {_fr.source_vintage(p)}"
    return pd.DataFrame({"key": list(rows), "value": [str(v) for v in rows.values()]})


def write_geopackage(plan: Any, path: str | Path) -> None:
    """Write ``plan.gpkg`` with layers ``communes``, ``places``, ``posts``, ``epci``,
    ``departement``, ``gap_clusters``, ``units`` (demand units, :data:`UNIT_COLUMNS`:
    every coverage figure is their sum) and, with itinerant posts, ``circuits`` (working
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
    units = getattr(plan, "units", None)
    if units is not None and len(units) and "geometry" in units.columns:
        cols = [c for c in UNIT_COLUMNS if c in units.columns or c == "unit_id"]
        u = units.reset_index()
        u["minutes_before"] = u["minutes_before"].replace(np.inf, np.nan)
        if "minutes_after" in u.columns:
            u["minutes_after"] = u["minutes_after"].replace(np.inf, np.nan)
        layers["units"] = u[[c for c in cols if c in u.columns]]
    if len(plan.circuits):
        layers["circuits"] = plan.circuits
        # served by a circuit: a weekly permanence within the threshold (demand units)
        u = plan.units.reset_index()
        cols = ["unit_id", "insee", "nom", "population", "need", "covered_after"]
        cols += ["served_itinerant", "itinerant_circuit", "itinerant_stop", "geometry"]
        layers["units_served"] = u.loc[u["served_itinerant"].astype(bool), cols]
    # no fsync per layer (the file is written in a temporary folder, then moved into
    # place like the other outputs); the file's bytes are the same
    sqlite_options = {"OGR_SQLITE_SYNCHRONOUS": "OFF", "OGR_SQLITE_JOURNAL": "MEMORY"}
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": _FIXED_GPKG_DATE, **sqlite_options})
    try:
        for name, gdf in layers.items():
            _gpkg_ready(gdf).to_file(path, layer=name, driver="GPKG", engine="pyogrio")
        tables = {"scenario": scenario_table(plan), "gap_communes": plan.gap_communes}
        journal = getattr(plan, "journal", None)
        if journal is not None and len(journal):
            tables["journal"] = journal
        if len(plan.timetable):
            tables["timetable"] = plan.timetable
        for name, df in tables.items():
            pyogrio.write_dataframe(df.reset_index(drop=True), path, layer=name, driver="GPKG")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None, **dict.fromkeys(sqlite_options)})


def check_out_dir(out_dir: str | Path) -> Path:
    """Check, before computing, that ``out_dir`` can receive outputs.

    It must be a folder or not exist yet with a creatable parent, and be writable.

    Raises
    ------
    OutputDirError
        ``out_dir`` is a file, cannot be created or is not writable (the message says
        which and what to do).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputDirError(
            f"{out} : ce chemin est un fichier, pas un dossier ; correction : donner un "
            "dossier avec --out (ou supprimer ce fichier)"
        )
    probe = out if out.is_dir() else next((p for p in out.parents if p.exists()), Path("."))
    if not probe.is_dir():
        raise OutputDirError(
            f"{out} : le dossier ne peut pas être créé ({probe} est un fichier) ; correction : "
            "donner un autre dossier avec --out"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputDirError(
            f"{out} : pas de droit d'écriture dans {probe} ; correction : donner un dossier "
            "où écrire avec --out, ou en changer les droits"
        )
    return out


def _clean_stale(out: Path) -> None:
    """Remove the temporary folders left beside ``out`` by an interrupted or killed run."""
    for p in out.parent.glob(f"{TMP_PREFIX}{out.name}-*"):
        shutil.rmtree(p, ignore_errors=True)


def _new_tmp(out: Path) -> Path:
    """Name of a new temporary folder beside ``out``, not yet created: the caller creates
    it inside its ``try``, so that an interrupt arriving while it is created (Ctrl-C right
    after ``mkdir``) still reaches the ``finally`` that removes it."""
    return out.parent / f"{TMP_PREFIX}{out.name}-{secrets.token_hex(4)}"


@contextmanager
def _signals_deferred(folder: Path) -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM while the finished files are moved into
    ``folder``: a signal that arrives then is acted on once every file is moved, so an
    interrupted run cannot leave new and previous files mixed (only a SIGKILL or a power
    cut between two renames could). SIGTERM is raised again (handled as it would have
    been); Ctrl-C becomes :class:`~cnfs_geo._errors.InterruptedAfterWriting` (a
    KeyboardInterrupt saying that the new files are all in place). No-op off the main
    thread (Python handles signals there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = [signal.SIGINT, signal.SIGTERM]
    received: list[int] = []
    previous = {s: signal.getsignal(s) for s in held}
    for s in held:
        signal.signal(s, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if signal.SIGTERM in received:
            signal.raise_signal(signal.SIGTERM)  # now handled as it would have been
        if signal.SIGINT in received:
            raise InterruptedAfterWriting(str(folder))


def _move_order(tmp: Path, first: Sequence[str]) -> list[Path]:
    """The files under ``tmp`` (relative paths) in the order :func:`staged` moves them."""
    rank = {name: k for k, name in enumerate(first)}
    files = [p.relative_to(tmp) for p in tmp.rglob("*") if p.is_file()]
    return sorted(files, key=lambda r: (r.suffix == ".gpkg", rank.get(str(r), len(rank)), r.parts))


@contextmanager
def staged(out_dir: str | Path, first: Sequence[str] = ()) -> Iterator[Path]:
    """A temporary folder to write a set of outputs into, moved into ``out_dir`` together.

    The folder is created beside ``out_dir`` (same file system, so each move is an atomic
    ``os.replace``). When the block ends normally, every file written into it, in
    sub-folders too, is moved to the same relative path in ``out_dir``: the names of
    ``first`` in that order, then the others sorted, the GeoPackages of each folder last;
    Ctrl-C and SIGTERM are held during the moves. When the block raises (or is
    interrupted), nothing is moved. The folder is removed in both cases, and the folders
    left beside ``out_dir`` by a killed run are removed when the next one starts. Other
    files of ``out_dir`` are left as they are.

    Raises
    ------
    OutputDirError
        ``out_dir`` cannot be used (:func:`check_out_dir`).
    """
    out = check_out_dir(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(out)
    tmp = _new_tmp(out)
    try:
        tmp.mkdir()
        yield tmp
        files = _move_order(tmp, first)
        out.mkdir(parents=True, exist_ok=True)
        with _signals_deferred(out):
            for rel in files:
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp / rel, out / rel)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_files(out_dir: str | Path, writers: dict[str, Callable[[Path], object]]) -> list[Path]:
    """Write a set of files into ``out_dir`` together: each ``writers[name](path)`` writes
    into a temporary folder beside ``out_dir`` (a writer may also write nothing: that file
    is skipped), and the files are moved into ``out_dir`` (``os.replace``, in the order of
    ``writers``, then any other file the writers left beside, a GeoPackage last) only when
    all are written, with Ctrl-C held meanwhile (:func:`staged`). An interrupted run leaves
    the previous files as they were; other files of ``out_dir`` are left alone.

    Returns
    -------
    list of Path
        The files moved into ``out_dir``.

    Raises
    ------
    OutputDirError
        ``out_dir`` cannot be used (:func:`check_out_dir`).
    """
    out = Path(out_dir)
    written: list[Path] = []
    with staged(out, first=list(writers)) as tmp:
        for name, write in writers.items():
            write(tmp / name)
        written = _move_order(tmp, list(writers))
    return [out / r for r in written]


def write_outputs(plan: Any, out_dir: str | Path, *, with_pdf: bool = True) -> dict[str, Path]:
    """Write every output of a plan into ``out_dir``, atomically; return their paths by name.

    With ``with_pdf``, also ``rapport.pdf`` (:func:`cnfs_geo.pdf.write_pdf`, dated by
    ``$SOURCE_DATE_EPOCH`` or today), left out with a warning when WeasyPrint's system
    libraries are missing.

    The map, report, PDF and GeoPackage are written together by :func:`write_files`: into a
    temporary folder beside ``out_dir``, then moved into ``out_dir`` (``os.replace``, atomic
    on one file system; the GeoPackage last) only when all are complete, Ctrl-C held
    meanwhile. Other files of ``out_dir`` are left as they are.

    Raises
    ------
    OutputDirError
        ``out_dir`` cannot be used (:func:`check_out_dir`).
    """
    if not isinstance(out_dir, (str, os.PathLike)):
        raise ArgumentError("out_dir", [f"a folder path is expected, got {type(out_dir).__name__}"])
    names = {
        "map": "carte_couverture.html",
        "report": "rapport.html",
        "pdf": pdf.PDF_FILENAME,
        "geopackage": "plan.gpkg",
    }

    # the report's figures and texts are computed once for the HTML report and the PDF
    contexts: list[dict[str, Any]] = []

    def context() -> dict[str, Any]:
        if not contexts:
            contexts.append(report.report_context(plan))
        return contexts[0]

    def write_pdf(path: Path) -> None:
        try:
            pdf.write_pdf(plan, path, context=context())
        except pdf.PdfUnavailableError as exc:  # left out, with a warning
            log.warning("%s", exc)

    writers: dict[str, Callable[[Path], object]] = {
        names["map"]: lambda p: maps.coverage_map(plan, path=p),
        names["report"]: lambda p: report.write_report(plan, p, context=context()),
    }
    if with_pdf:
        writers[names["pdf"]] = write_pdf
    # the GeoPackage moved last: only a kill between two renames could leave a new map
    # and report beside the previous GeoPackage, never a partial file
    writers[names["geopackage"]] = lambda p: write_geopackage(plan, p)
    moved = {p.name for p in write_files(out_dir, writers)}
    out = Path(out_dir)
    return {key: out / name for key, name in names.items() if name in moved}
