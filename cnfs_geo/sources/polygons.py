"""ADMIN EXPRESS COG 2018 commune polygons (france-geojson): per-département GeoJSON
files and the national archive of the 101 départements. The one polygon reader."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
import shapely.geometry
import shapely.validation

from .. import _journal, catalog
from .._errors import CrsError, DataFileError, FileFormatError
from .._validate import require_columns
from ..settings import GEOGRAPHIC_CRS
from ._io import RESTORE, file_key, load_json

# Columns of a polygon frame (the GeoJSON properties read, plus the geometry).
POLYGON_COLUMNS = ("code", "nom", "geometry")

# Communes member of the national archive: departements/<dep>-<name>/communes-<dep>-<name>.geojson
ARCHIVE_MEMBER = re.compile(r"departements/([0-9AB]{2,3})-[^/]+/communes-\1-[^/]+\.geojson$")

# File name of the per-département file in ``<data dir>/communes``.
DEPARTEMENT_GLOB = "communes-{dep}-*_adminexpress-cog2018.geojson"


def _geojson_frame(data: Any, source: str) -> gpd.GeoDataFrame:
    """Features of a parsed GeoJSON FeatureCollection, each geometry checked: one that
    cannot be built (ring of fewer than 4 points, bad coordinates) is an error naming its
    code; an invalid polygon (self-intersection…) is repaired (``make_valid``, polygon
    parts kept) and the repair recorded in the journal."""
    feats = data.get("features") if isinstance(data, dict) else None
    if not isinstance(feats, list) or not all(isinstance(f, dict) for f in feats):
        raise FileFormatError(
            source,
            [
                "une FeatureCollection GeoJSON est attendue (clé 'features') ; correction : "
                f"{RESTORE}"
            ],
        )
    if not feats:
        raise FileFormatError(
            source,
            [f"la FeatureCollection ne contient aucune commune (liste 'features' vide) ; "
             f"correction : {RESTORE}"],
        )  # fmt: skip
    problems: list[str] = []
    props, geoms = [], []
    for i, f in enumerate(feats):
        p = f.get("properties") or {}
        code = p.get("code", f"n° {i + 1}")
        try:
            g = shapely.geometry.shape(f["geometry"])
            if g.is_empty or g.geom_type not in ("Polygon", "MultiPolygon"):
                raise ValueError(f"géométrie {g.geom_type} vide ou non polygonale")
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            problems.append(f"commune {code} : géométrie illisible ({exc})")
            continue
        if not g.is_valid:
            why = shapely.validation.explain_validity(g)
            fixed = shapely.make_valid(g)
            parts = [
                q
                for q in getattr(fixed, "geoms", [fixed])
                if q.geom_type in ("Polygon", "MultiPolygon")
            ]
            g = shapely.union_all(parts) if parts else fixed
            _journal.record(
                "communes_2018",
                source.split("!")[-1],
                "repaired",
                f"commune {code} : polygone invalide ({why}), réparé (make_valid)",
            )
        props.append(p)
        geoms.append(g)
    if problems:
        raise FileFormatError(
            source,
            problems[:10] + [f"correction : corriger ces géométries ou {RESTORE}"],
        )
    crs = (
        (data.get("crs") or {}).get("properties", {}).get("name")
        if isinstance(data.get("crs"), dict)
        else None
    )
    out = gpd.GeoDataFrame(pd.DataFrame(props), geometry=geoms)
    if crs and not any(t in str(crs) for t in ("CRS84", "4326")):
        out = out.set_crs(crs, allow_override=True)
    elif len(out):
        out = out.set_crs(GEOGRAPHIC_CRS)
    _journal.read_count("communes_2018", source.split("!")[-1], len(out))
    return out


def _frame(raw: gpd.GeoDataFrame, source: str) -> gpd.GeoDataFrame:
    """The column contract of :func:`read_polygons` applied to a frame as read."""
    require_columns(
        raw,
        ["code"],
        source,
        expected="propriété 'code' attendue (code INSEE de chaque contour 2018), comme "
        f"dans les fichiers ADMIN EXPRESS COG 2018 de france-geojson ; correction : {RESTORE}",
    )
    if raw.crs is not None and not raw.crs == GEOGRAPHIC_CRS:
        raise CrsError(
            source,
            [
                f"CRS {raw.crs} is not {GEOGRAPHIC_CRS}; fix: give the "
                "france-geojson file (GeoJSON, longitude/latitude WGS 84)"
            ],
        )
    out = gpd.GeoDataFrame(
        {
            "code": raw["code"].astype(str),
            "nom": raw["nom"] if "nom" in raw.columns else "",
        },
        geometry=raw.geometry.values,
        crs=GEOGRAPHIC_CRS,
    )
    out.attrs["source"] = source
    return out


def read_polygons(path: str | Path) -> gpd.GeoDataFrame:
    """Commune polygons of one GeoJSON file (a département, a région…).

    Parameters
    ----------
    path : path
        A france-geojson ADMIN EXPRESS COG 2018 file (properties ``code``, ``nom``).

    Returns
    -------
    GeoDataFrame
        One row per polygon, in file order (RangeIndex). Columns ``code`` (str, INSEE
        code of 2018), ``nom`` (2018 name; ``""`` when the file has no ``nom``),
        ``geometry`` (polygon as read, not repaired), CRS EPSG:4326.
        ``attrs["source"]`` is the path.

    Raises
    ------
    DataFileError
        No such file or unreadable.
    MissingColumnError
        No ``code`` property.
    CrsError
        A CRS other than EPSG:4326.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(
            f"{path}: no such file; fix: give a GeoJSON of COG 2018 commune "
            "polygons (e.g. communes/communes-pays-de-la-loire_adminexpress-"
            "cog2018.geojson in the data directory)"
        )
    return _frame(_geojson_frame(load_json(path), str(path)), str(path))


@lru_cache(maxsize=1)
def _archive_members(path: str, mtime_ns: int, size: int) -> dict[str, tuple[str, bytes]]:
    """Département code → (member name, bytes) of the communes files of the archive.

    Read once per archive (≈0.4 s, ≈46 MB kept in memory for the national file):
    a gzip stream cannot be seeked, so extracting members one call at a time would
    decompress the archive again for each département.
    """
    import tarfile

    out: dict[str, tuple[str, bytes]] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                m = ARCHIVE_MEMBER.search(member.name)
                fh = tar.extractfile(member) if m and member.isfile() else None
                if m and fh is not None:
                    out[m.group(1)] = (member.name, fh.read())
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise DataFileError(
            f"{path}: cannot be read as a tar.gz archive ({exc}). Fix: restore "
            "the file (see catalog source communes_2018_archive)"
        ) from exc
    return out


def archive_departements(path: str | Path) -> list[str]:
    """Département codes of the communes members of the national archive, sorted."""
    return sorted(_archive_members(*file_key(Path(path))))


def read_polygons_archive(
    path: str | Path, departements: Iterable[str] | None = None
) -> gpd.GeoDataFrame:
    """Commune polygons of départements of the national archive (tar.gz of GeoJSON).

    Parameters
    ----------
    path : path
        ``communes/france-geojson_departements_communes_adminexpress-cog2018.tar.gz``:
        members ``departements/<dep>-<name>/communes-<dep>-<name>.geojson``. The
        members are read once per file (cached per path, modification time and size).
    departements : iterable of str, optional
        Département codes to read (``"49"``, ``"2A"``, ``"974"``); all by default.

    Returns
    -------
    GeoDataFrame
        One row per polygon, members in the order of their names, polygons in file order
        (RangeIndex). Columns ``code``, ``nom``, ``geometry`` as :func:`read_polygons`,
        plus ``departement`` (code of the member). CRS EPSG:4326. ``attrs["source"]`` is
        ``<archive>!<member>`` for one département, else the archive path.

    Raises
    ------
    DataFileError
        Unreadable archive, or a département without member.
    MissingColumnError, CrsError
        As :func:`read_polygons`, naming the member.
    """
    path = Path(path)
    members = _archive_members(*file_key(path))
    deps = sorted(members) if departements is None else list(departements)
    absent = [d for d in deps if d not in members]
    if absent:
        raise DataFileError(
            f"{path}: no commune polygons for département(s) "
            f"{', '.join(absent)} (expected a member departements/<code>-<name>/"
            f"communes-<code>-<name>.geojson; the archive holds {len(members)} "
            "départements)"
        )
    frames = []
    for dep in sorted(deps, key=lambda d: members[d][0]):
        name, data = members[dep]
        try:
            parsed = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FileFormatError(
                f"{path}!{name}", [f"GeoJSON illisible ou tronqué ({exc}) ; correction : {RESTORE}"]
            ) from exc
        frame = _frame(_geojson_frame(parsed, f"{path}!{name}"), f"{path}!{name}")
        frame["departement"] = dep
        frames.append(frame)
    if not frames:
        raise DataFileError(f"{path}: no département asked for; give at least one code")
    out = (
        frames[0]
        if len(frames) == 1
        else gpd.GeoDataFrame(
            pd.concat(frames, ignore_index=True), geometry="geometry", crs=GEOGRAPHIC_CRS
        )
    )
    out = out[["code", "nom", "departement", "geometry"]]
    out.attrs["source"] = frames[0].attrs["source"] if len(frames) == 1 else str(path)
    return out


def departement_polygons(departement: str, data_dir: catalog.DataDir) -> gpd.GeoDataFrame:
    """COG 2018 commune polygons of one département, from wherever the data directory has them.

    Parameters
    ----------
    departement : str
        Normalised INSEE département code (``"49"``, ``"2A"``, ``"974"``).
    data_dir : DataDir
        Read ``communes/communes-<dep>-*_adminexpress-cog2018.geojson`` when present, else
        the national archive (catalog source ``communes_2018_archive``).

    Returns
    -------
    GeoDataFrame
        Columns ``code``, ``nom``, ``geometry`` (EPSG:4326), in file order, as
        :func:`read_polygons`; ``attrs["source"]`` names the file (``archive!member``).
    """
    current = data_dir.file(f"contours_{departement}", required=False)
    if current is not None:  # current contours of `cnfs-geo data fetch` (lock file)
        return _read_polygons_once(current)
    single = sorted((data_dir.path / "communes").glob(DEPARTEMENT_GLOB.format(dep=departement)))
    if single:
        return _read_polygons_once(single[0])
    polys, events = _archive_departement(
        *file_key(data_dir.file("communes_2018_archive")), departement
    )
    _journal.replay(events)
    out = polys.copy()
    out.attrs["source"] = polys.attrs["source"]
    return out


def _read_polygons_once(path: Path) -> gpd.GeoDataFrame:
    """:func:`read_polygons`, parsed once per file version: the territory and the demand
    units both read a département's file (callers get a copy, and the reader's journal
    events replayed)."""
    polys, events = _polygons_file(*file_key(path))
    _journal.replay(events)
    out = polys.copy()
    out.attrs["source"] = polys.attrs["source"]
    return out


@lru_cache(maxsize=2)
def _polygons_file(
    path: str, mtime_ns: int, size: int
) -> tuple[gpd.GeoDataFrame, tuple[_journal.Event, ...]]:
    with _journal.collect(isolated=True) as events:
        polys = read_polygons(path)
    return polys, tuple(events)


@lru_cache(maxsize=2)
def _archive_departement(
    path: str, mtime_ns: int, size: int, dep: str
) -> tuple[gpd.GeoDataFrame, tuple[_journal.Event, ...]]:
    """Polygons of one département of the archive and the reader's journal events, parsed
    once per task: the first pass and the demand units both read them (callers get a
    copy, and the events replayed)."""
    with _journal.collect(isolated=True) as events:
        polys = read_polygons_archive(path, [dep])
    source = polys.attrs["source"]
    polys = polys[list(POLYGON_COLUMNS)]
    polys.attrs["source"] = source
    return polys, tuple(events)


def departement_unit_polygons(departement: str, data_dir: catalog.DataDir) -> gpd.GeoDataFrame:
    """The polygons finer than the current communes of one département, for the demand units.

    A data directory filled by ``cnfs-geo data fetch`` lists them in its lock
    (``deleguees_<dep>``: the communes déléguées / associées of the API Découpage
    administratif with their contours, the other communes whole,
    :func:`.geo_api.unit_polygons_from_api`); otherwise the COG 2018 polygons
    (:func:`departement_polygons`).

    Returns
    -------
    GeoDataFrame
        Columns ``code``, ``nom``, ``geometry`` (EPSG:4326), as :func:`read_polygons`;
        ``attrs["source"]`` names the file and ``attrs["vintage"]`` is ``"current"``
        (communes déléguées of the COG in force), ``"communes"`` (a directory fetched
        before the déléguées were: the current communes, nothing finer) or ``"2018"``.
    """
    fetched = data_dir.file(f"deleguees_{departement}", required=False)
    if fetched is not None:
        out = _read_polygons_once(fetched)
        out.attrs["vintage"] = "current"
        return out
    out = departement_polygons(departement, data_dir)
    current = data_dir.file(f"contours_{departement}", required=False) is not None
    out.attrs["vintage"] = "communes" if current else "2018"
    return out
