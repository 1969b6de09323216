"""Communes at the current COG (2026) with their polygons, EPCI and département outline.

Transforms of the frames read by :mod:`cnfs_geo.sources` (:func:`communes_from_frames`);
:func:`communes_from_cog` reads them from a data directory. Method (code rules, re-created
communes, travel point): ``docs/methods_territory.md``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import catalog
from ._errors import DataFileError, UnknownCodeError, UnknownDepartementError, ValidationError
from .settings import GEOGRAPHIC_CRS, working_crs
from .sources import cog as _cog_source
from .sources import datasfun as _datasfun_source
from .sources import epci as _epci_source
from .sources import polygons as _polygon_source
from .sources._io import file_key

log = logging.getLogger(__name__)

# Rules of :func:`code_table`, in priority order.
RULE_OVERRIDE = "override"
RULE_CURRENT = "commune actuelle"
RULE_DELEGUEE = "commune déléguée → chef-lieu"
RULE_ASSOCIEE = "commune associée → chef-lieu"
RULE_ARRONDISSEMENT = "arrondissement municipal → commune"
RULE_FORMER = "ancien code (anciensCodes, fusion simple) → commune actuelle"

GEOMETRY_OWN = "COG 2018 polygon(s)"
GEOMETRY_SHARED_CHILD = "parent 2018 polygon (shared)"
GEOMETRY_SHARED_PARENT = "2018 polygon shared with re-created commune(s)"

RECREATED_FILE = _cog_source.RECREATED_FILE


def _isin(values: pd.Series, allowed) -> np.ndarray:
    """``values.isin(allowed)`` through a Python set (pandas' Arrow-string ``isin`` with
    tens of thousands of values is ~100× slower)."""
    allowed = set(allowed.tolist() if hasattr(allowed, "tolist") else allowed)
    vals = values.tolist() if hasattr(values, "tolist") else list(values)
    return np.fromiter((v in allowed for v in vals), dtype=bool, count=len(vals))


def cog_communes(data_dir: catalog.DataDir) -> pd.DataFrame:
    """All COG 2026 commune records (actuelles, déléguées, associées, arrondissements).

    Returns a DataFrame with columns ``code, nom, type, departement, population,
    chefLieu`` (string codes), ``zone`` (``metro``, ``drom`` or ``com``),
    ``commune`` (parent commune of an arrondissement municipal) and
    ``anciensCodes`` (list of former codes of a current commune; NaN when none).
    Fields absent from the file are NaN. The parsed file is cached (per path,
    modification time and size); the caller gets a copy.
    """
    return _cog_source.read_cog_communes(data_dir.file("cog_communes"))


def departement_codes(data_dir: catalog.DataDir) -> list[str]:
    """Département codes known to the COG of ``data_dir`` (metropolitan and DROM).

    Collectivités d'outre-mer (``zone == "com"``: 975, 977, 978, 984, 986–989)
    are not départements and are left out.
    """
    cog = cog_communes(data_dir)
    cur = cog[(cog["type"] == "commune-actuelle") & (cog["zone"] != "com")]
    return sorted(cur["departement"].dropna().unique())


def check_departement(departement: str, data_dir: catalog.DataDir) -> str:
    """Normalise and check a département code; raise UnknownDepartementError if unknown.

    A collectivité d'outre-mer code (975, 977, 978, 984, 986–989) is refused with
    its own message: these are not départements and have no commune polygons.
    """
    code = str(departement).strip().upper()
    if re.fullmatch(r"\d", code):
        code = "0" + code
    if data_dir.is_bundle and code != catalog.BUNDLE_DEPARTEMENT:
        raise DataFileError(
            f"département {code}: the embedded bundle only holds Maine-et-Loire (49).\n"
            + catalog.missing_files_message(
                [
                    "cog_communes",
                    "cog_epci",
                    "communes_2018_archive",
                    "france_services",
                    "cnfs_permanences",
                    "aidants_connect",
                    "fibre",
                    "ifn_communes",
                    "datasfun_communes",
                ],
                data_dir,
            )
        )
    known = departement_codes(data_dir)
    if code not in known:
        cog = cog_communes(data_dir)
        com = cog[(cog["zone"] == "com") & (cog["departement"] == code)]
        if len(com):
            raise UnknownDepartementError(
                "departement",
                [
                    f"{departement!r} is a collectivité d'outre-mer ({len(com)} "
                    "commune(s) in the COG), not a département: it has no commune "
                    "polygons in the ADMIN EXPRESS source and cnfs_geo does not cover "
                    "it; use a département code (01–95, 2A, 2B, 971–974, 976)"
                ],
            )
        raise UnknownDepartementError(
            "departement",
            [
                f"{departement!r} is not a département code of the COG 2026 "
                f"(known: {', '.join(known[:5])} … {', '.join(known[-5:])}); use the "
                "INSEE code, e.g. 49, 2A, 974"
            ],
        )
    return code


def _read_overrides(code_overrides: str | os.PathLike | Mapping[str, str]) -> pd.DataFrame:
    """Override table as a DataFrame ``old_code, new_code, reason``."""
    if isinstance(code_overrides, Mapping):
        return pd.DataFrame(
            {
                "old_code": [str(k) for k in code_overrides],
                "new_code": [str(v) for v in code_overrides.values()],
                "reason": "code_overrides argument",
            }
        )
    path = Path(code_overrides)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataFileError(
            f"{path}: cannot be read as a CSV override table ({exc}). Fix: give "
            "a CSV with columns old_code,new_code,reason"
        ) from exc
    missing = {"old_code", "new_code"} - set(df.columns)
    if missing:
        raise ValidationError(
            str(path), [f"missing column(s) {sorted(missing)}; expected old_code,new_code,reason"]
        )
    if "reason" not in df.columns:
        df["reason"] = f"override table {path.name}"
    return df[["old_code", "new_code", "reason"]]


def code_table(
    data_dir: catalog.DataDir,
    *,
    code_overrides: str | os.PathLike | Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Every commune code known to the COG (old or current) with its current commune.

    :func:`code_table_from_cog` on the COG of ``data_dir`` (cached per COG file).

    Parameters
    ----------
    data_dir : DataDir
        From :func:`cnfs_geo.catalog.resolve_data_dir`.
    code_overrides : mapping or path, optional
        See :func:`code_table_from_cog`.

    Returns
    -------
    pandas.DataFrame
        As :func:`code_table_from_cog`.
    """
    table = _cog_code_table(*file_key(data_dir.file("cog_communes")))
    if code_overrides is None:
        return table.copy()
    return _with_overrides(table, code_overrides)


def code_table_from_cog(
    cog: pd.DataFrame, *, code_overrides: str | os.PathLike | Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Every commune code known to the COG (old or current) with its current commune.

    Parameters
    ----------
    cog : pandas.DataFrame
        COG records (:func:`cnfs_geo.sources.cog.read_cog_communes`): columns ``code``,
        ``type``, ``chefLieu``, ``commune``, ``anciensCodes``.
    code_overrides : mapping or path, optional
        Explicit ``old code → current code`` assignments, checked before every
        other rule: a mapping, or a CSV file with columns ``old_code,new_code`` and
        optionally ``reason``. Each ``new_code`` must be a current commune.

    Returns
    -------
    pandas.DataFrame
        Index ``code`` (str, unique). Columns ``insee`` (current commune,
        ``commune-actuelle`` of the COG 2026) and ``rule`` (first rule that
        applied, in this order: :data:`RULE_OVERRIDE`, :data:`RULE_CURRENT`,
        :data:`RULE_DELEGUEE` / :data:`RULE_ASSOCIEE` (``chefLieu``),
        :data:`RULE_ARRONDISSEMENT` (``commune``), :data:`RULE_FORMER`
        (``anciensCodes`` of a current commune)), ``reason`` (override reason,
        else empty). Sorted by code.

    Raises
    ------
    UnknownCodeError
        An override whose ``new_code`` is not a current commune.
    ValidationError
        An ``old_code`` given several times.
    """
    table = _code_table(cog)
    if code_overrides is None:
        return table
    return _with_overrides(table, code_overrides)


def _with_overrides(
    table: pd.DataFrame, code_overrides: str | os.PathLike | Mapping[str, str]
) -> pd.DataFrame:
    ov = _read_overrides(code_overrides)
    current_codes = table.index[table["rule"] == RULE_CURRENT]
    bad = ov[~_isin(ov["new_code"], current_codes)]
    if len(bad):
        raise UnknownCodeError(
            "code_overrides",
            [
                f"old_code {r.old_code}: new_code {r.new_code!r} is not a current commune of "
                "the COG 2026; give the code of a commune-actuelle"
                for r in bad.itertuples()
            ],
        )
    dup = ov[ov["old_code"].duplicated(keep=False)]
    if len(dup):
        raise ValidationError(
            "code_overrides",
            [
                f"old_code {c} is given several times; keep one row"
                for c in sorted(set(dup["old_code"]))
            ],
        )
    ov = pd.DataFrame(
        {"insee": ov["new_code"].values, "rule": RULE_OVERRIDE, "reason": ov["reason"].values},
        index=pd.Index(ov["old_code"], name="code"),
    )
    table = pd.concat([ov, table[~_isin(table.index, ov.index)]]).sort_index()
    return table[["insee", "rule", "reason"]]


@lru_cache(maxsize=2)
def _cog_code_table(path: str, mtime_ns: int, size: int) -> pd.DataFrame:
    """:func:`code_table` without overrides, cached per COG file."""
    return _code_table(_cog_source.read_cog_communes(Path(path)))


def _code_table(cog: pd.DataFrame) -> pd.DataFrame:
    current = cog[cog["type"] == "commune-actuelle"]
    current_codes = set(current["code"])
    parts = [
        pd.DataFrame({"code": current["code"], "insee": current["code"], "rule": RULE_CURRENT})
    ]
    for typ, rule in (("commune-deleguee", RULE_DELEGUEE), ("commune-associee", RULE_ASSOCIEE)):
        rows = cog[(cog["type"] == typ).to_numpy() & _isin(cog["chefLieu"], current_codes)]
        parts.append(pd.DataFrame({"code": rows["code"], "insee": rows["chefLieu"], "rule": rule}))
    arr = cog[
        (cog["type"] == "arrondissement-municipal").to_numpy()
        & _isin(cog["commune"], current_codes)
    ]
    parts.append(
        pd.DataFrame({"code": arr["code"], "insee": arr["commune"], "rule": RULE_ARRONDISSEMENT})
    )
    former = current[["code", "anciensCodes"]].dropna().explode("anciensCodes").dropna()
    parts.append(
        pd.DataFrame(
            {
                "code": former["anciensCodes"].astype(str),
                "insee": former["code"],
                "rule": RULE_FORMER,
            }
        )
    )
    table = pd.concat(parts, ignore_index=True)
    table["reason"] = ""
    # first rule wins (order of `parts`): a délégué code also listed in the
    # anciensCodes of another commune keeps its current délégué status
    table = table.drop_duplicates("code", keep="first").set_index("code").sort_index()
    return table[["insee", "rule", "reason"]]


def current_code_map(data_dir: catalog.DataDir, *, former_codes: bool = True) -> dict[str, str]:
    """Map every commune code known to the COG (old or current) to its current code.

    :func:`code_map_from_table` on the COG of ``data_dir``.
    """
    return code_map_from_table(
        code_table(data_dir), cog_communes(data_dir), former_codes=former_codes
    )


def code_map_from_table(
    table: pd.DataFrame, cog: pd.DataFrame, *, former_codes: bool = True
) -> dict[str, str]:
    """Map every commune code known to the COG (old or current) to its current code.

    Current communes map to themselves; ``commune-deleguee`` and
    ``commune-associee`` codes map to their ``chefLieu``; with ``former_codes``
    (default), codes listed in the ``anciensCodes`` of a current commune (fusions
    simples) map to it. Arrondissements municipaux map to themselves (use the code
    table to get their commune). Current and délégué/associé status win over
    ``anciensCodes``.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`code_table_from_cog` (index ``code``; ``insee``, ``rule``).
    cog : pandas.DataFrame
        COG records (``code``, ``type``), for the arrondissements municipaux.
    former_codes : bool, keyword-only
        Whether ``anciensCodes`` are mapped.
    """
    if not former_codes:
        table = table[table["rule"] != RULE_FORMER]
    mapping = dict(zip(table.index.tolist(), table["insee"].tolist()))
    arr = cog.loc[cog["type"] == "arrondissement-municipal", "code"].tolist()
    mapping.update(zip(arr, arr))
    return mapping


def polygons_2018(departement: str, data_dir: catalog.DataDir) -> gpd.GeoDataFrame:
    """The COG 2018 commune polygons of a département, as read.

    Parameters
    ----------
    departement : str
        INSEE département code ("49", "2A", "974").
    data_dir : DataDir
        From :func:`cnfs_geo.catalog.resolve_data_dir`.

    Returns
    -------
    GeoDataFrame
        One row per 2018 polygon, columns ``code`` (INSEE 2018), ``nom``,
        ``geometry`` (EPSG:4326), in file order. Read from
        ``communes/communes-<dep>-*_adminexpress-cog2018.geojson`` when present,
        else from the national archive.
    """
    dep = check_departement(departement, data_dir)
    return _polygon_source.departement_polygons(dep, data_dir)


def recreated_communes() -> pd.DataFrame:
    """Communes re-created by a split after 2018, with the 2018 polygon they lie in.

    Read from ``cnfs_geo/data/recreated_communes.csv`` (shipped with the package).

    Returns
    -------
    pandas.DataFrame
        Index ``insee`` (COG 2026). Columns ``nom``, ``departement``,
        ``parent_code_2018`` (code of the 2018 polygon holding its territory),
        ``parent_nom_2018``, ``reason`` (evidence).
    """
    return _cog_source.read_recreated_communes()


@dataclass(frozen=True, eq=False)
class TerritoryReport:
    """What :func:`communes_with_report` repaired or noticed for one département.

    Attributes
    ----------
    departement : str
    crs : str
        Working CRS of the communes.
    polygon_source : str
        File the 2018 polygons were read from (``archive!member`` for the archive).
    n_polygons_2018 : int
        Polygons read.
    n_communes, population : int
        Current communes and their population (COG 2026).
    code_assignments : pandas.DataFrame
        One row per 2018 polygon whose code is not a current commune, columns
        ``code_2018``, ``nom_2018``, ``insee``, ``nom`` (current commune),
        ``rule`` (see :func:`code_table`). Sorted by ``code_2018``.
    shared_polygons : pandas.DataFrame
        One row per commune without a polygon of its own and per commune whose
        polygon it shares: ``insee``, ``nom``, ``population``, ``code_2018`` (the
        shared 2018 polygon), ``geometry_source``, ``reason``. Sorted.
    other_departements : pandas.DataFrame
        2018 polygons of the file that belong to a commune of another
        département (left out here): ``code_2018``, ``nom_2018``, ``insee``,
        ``departement``.
    no_epci : pandas.DataFrame
        Communes that belong to no EPCI (``epci == "sans EPCI"``): ``insee``,
        ``nom``, ``population``.
    notes : tuple of str
        Other facts worth knowing (Paris/Lyon/Marseille arrondissements, codes
        with conflicting COG history).
    """

    departement: str
    crs: str
    polygon_source: str
    n_polygons_2018: int
    n_communes: int
    population: int
    code_assignments: pd.DataFrame
    shared_polygons: pd.DataFrame
    other_departements: pd.DataFrame
    no_epci: pd.DataFrame
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def fusions_simples(self) -> pd.DataFrame:
        """Rows of ``code_assignments`` resolved by ``anciensCodes`` or an override
        (codes the délégué/associé table does not map)."""
        ca = self.code_assignments
        return ca[ca["rule"].isin([RULE_FORMER, RULE_OVERRIDE])]

    def summary(self) -> str:
        """Multi-line text: counts, then every repair, one per line."""
        lines = [
            f"département {self.departement}: {self.n_communes} communes, "
            f"{self.population} inhabitants (COG 2026), {self.n_polygons_2018} COG-2018 "
            f"polygons from {self.polygon_source}, CRS {self.crs}"
        ]
        counts = self.code_assignments["rule"].value_counts()
        for rule, n in sorted(counts.items()):
            lines.append(f"  {n} old code(s) by rule {rule!r}")
        for r in self.fusions_simples.itertuples():
            lines.append(f"  {r.code_2018} {r.nom_2018} → {r.insee} {r.nom} ({r.rule})")
        for r in self.shared_polygons.itertuples():
            lines.append(f"  {r.insee} {r.nom}: {r.geometry_source} {r.code_2018}")
        for r in self.other_departements.itertuples():
            lines.append(
                f"  polygon {r.code_2018} {r.nom_2018} belongs to {r.insee} "
                f"(département {r.departement}): left out"
            )
        if len(self.no_epci):
            lines.append(f"  sans EPCI: {', '.join(self.no_epci['insee'])}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def union_method(geoms: Any) -> str:
    """How to union ``geoms`` (polygons): ``"coverage"`` when they form a valid polygonal
    coverage (no overlap, neighbours share their edges vertex for vertex, as the communes
    of the IGN/COG files do), else ``"unary"``.

    GEOS's coverage union only drops the shared edges, 15 to 20 times faster than the
    general union on a département's communes, for the same polygon (same rings up to
    their starting vertex); on polygons that overlap or do not match along their borders
    it would be wrong, hence the check (``shapely.coverage_is_valid``, a few times cheaper
    than the general union it saves).

    Examples
    --------
    >>> from shapely import box
    >>> union_method([box(0, 0, 1, 1), box(1, 0, 2, 1)])
    'coverage'
    >>> union_method([box(0, 0, 1, 1), box(0.5, 0, 2, 1)])
    'unary'
    """
    arr = np.asarray(geoms, dtype=object)
    if len(arr) < 2 or not all_polygons(arr):
        return "unary"
    return "coverage" if bool(shapely.coverage_is_valid(arr)) else "unary"


def all_polygons(geoms: Any) -> bool:
    """Whether every geometry of ``geoms`` is a non-empty Polygon or MultiPolygon (none
    missing).

    Examples
    --------
    >>> from shapely import Point, box
    >>> all_polygons([box(0, 0, 1, 1)]), all_polygons([box(0, 0, 1, 1), Point(0, 0)])
    (True, False)
    """
    arr = np.asarray(geoms, dtype=object)
    if pd.isna(arr).any() or shapely.is_empty(arr).any():
        return False
    kinds = shapely.get_type_id(arr)
    polygonal = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)
    return bool(np.isin(kinds, [int(k) for k in polygonal]).all())


def dissolve(frame: gpd.GeoDataFrame, by: str, aggfunc: Any = "first") -> gpd.GeoDataFrame:
    """``frame.dissolve(by=by, aggfunc=aggfunc)``, with the coverage union when the
    polygons form a valid coverage (:func:`union_method`)."""
    method = union_method(frame.geometry.to_numpy())
    return frame.dissolve(by=by, aggfunc=aggfunc, method=method)


def _polygonal(geom):
    """Keep the polygonal part of a geometry made valid (drop stray lines/points)."""
    if geom is None or geom.is_empty:
        return geom
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def communes_with_report(
    departement: str,
    data_dir: catalog.DataDir,
    *,
    code_overrides: str | os.PathLike | Mapping[str, str] | None = None,
) -> tuple[gpd.GeoDataFrame, TerritoryReport]:
    """Current communes of a département with polygons, population and EPCI, and a report.

    Parameters
    ----------
    departement : str
        INSEE département code ("49", "2A", "974"); collectivités d'outre-mer
        (975, 977, 978, 984, 986–989) are refused.
    data_dir : DataDir
        From :func:`cnfs_geo.catalog.resolve_data_dir`.
    code_overrides : mapping or path, optional
        Explicit ``old code → current code`` assignments checked before the COG
        rules (see :func:`code_table`).

    Returns
    -------
    communes : GeoDataFrame
        Index ``insee`` (str, COG 2026): exactly the ``commune-actuelle`` rows of
        the département (Paris, Lyon, Marseille are one commune each). Columns
        ``nom``, ``departement``, ``epci`` (SIREN str, ``"sans EPCI"`` for the
        few isolated communes), ``epci_nom``, ``population`` (int, COG 2026
        populations légales), ``area_km2`` (area of ``geometry``), ``density``
        (inhabitants/km²; for communes sharing a polygon, population of all the
        sharers / area of the parent's geometry), ``ref_x``/``ref_y``
        (representative point, working CRS), ``chef_lieu_x``/``chef_lieu_y``
        (chef-lieu point, working CRS; representative point where unknown),
        ``chef_lieu_source``, ``codes_2018`` (the 2018 polygons dissolved into
        it, comma-separated; empty for a commune without polygon of its own),
        ``geometry_source`` (:data:`GEOMETRY_OWN`, :data:`GEOMETRY_SHARED_CHILD`
        or :data:`GEOMETRY_SHARED_PARENT`), ``geometry`` (valid, non-empty
        (multi)polygon in :func:`cnfs_geo.settings.working_crs`). Sorted by
        ``insee``. Communes sharing a polygon overlap: the sum of ``area_km2``
        then exceeds the département area (use :func:`departement_outline`).
    report : TerritoryReport
        Every old code assigned, every shared polygon, polygons of other
        départements, communes without EPCI.

    Raises
    ------
    UnknownCodeError
        A 2018 code no rule maps (with every other problem of the polygons).
    ValidationError
        A current commune with no polygon that is not in ``recreated_communes.csv``;
        all such problems in one error.

    Examples
    --------
    >>> from cnfs_geo import catalog, territory
    >>> c, rep = territory.communes_with_report("49", catalog.resolve_data_dir())
    >>> len(c), len(rep.fusions_simples), len(rep.shared_polygons)
    (176, 0, 0)
    """
    dep = check_departement(departement, data_dir)
    cog = cog_communes(data_dir)
    check_populations(cog, dep, str(data_dir.file("cog_communes")))
    polygons = _polygon_source.departement_polygons(dep, data_dir)
    table = code_table(data_dir, code_overrides=code_overrides)
    members = _epci_source.read_epci_members(data_dir.file("cog_epci"))
    chef_lieux = chef_lieu_points(dep, data_dir, code_map_from_table(code_table(data_dir), cog))
    return communes_from_frames(
        cog, polygons, members, departement=dep, codes=table, chef_lieux=chef_lieux
    )


def check_sources(departement: str, data_dir: catalog.DataDir) -> None:
    """Read and check the files the territory of ``departement`` is built from, in the
    order :func:`communes_with_report` and :func:`epci_from_communes` read them: COG
    communes (populations included), commune polygons, EPCI, chef-lieux (datas.fun,
    when present).

    Raises
    ------
    DataFileError, ValidationError
        As their readers: the file named, with the fix.
    """
    dep = check_departement(departement, data_dir)
    check_populations(cog_communes(data_dir), dep, str(data_dir.file("cog_communes")))
    _polygon_source.departement_polygons(dep, data_dir)
    _epci_source.read_epci_members(data_dir.file("cog_epci"))
    path = data_dir.file("datasfun_communes", required=False)
    if path is not None:
        _datasfun_source.read_datasfun_communes(path)
    _epci_source.read_epci(data_dir.file("cog_epci"))


def check_populations(cog: pd.DataFrame, dep: str, source: str) -> None:
    """ValidationError naming every current commune of ``dep`` in the COG frame ``cog``
    (read from ``source``) whose population is missing or not a number."""
    current = cog[(cog["type"] == "commune-actuelle") & (cog["departement"] == dep)]
    bad_pop = current[pd.to_numeric(current["population"], errors="coerce").isna()]
    if len(bad_pop):
        raise ValidationError(
            source,
            [
                f"commune {r.code} ({r.nom}): population is missing or not a number; fix the COG "
                "file (populations légales)"
                for r in bad_pop.itertuples()
            ],
        )


def communes_from_frames(
    cog: pd.DataFrame,
    polygons: gpd.GeoDataFrame,
    epci_members: pd.DataFrame,
    *,
    departement: str,
    codes: pd.DataFrame | None = None,
    chef_lieux: pd.DataFrame | None = None,
    recreated: pd.DataFrame | None = None,
) -> tuple[gpd.GeoDataFrame, TerritoryReport]:
    """Current communes of a département from the frames of the readers, and a report.

    Parameters
    ----------
    cog : pandas.DataFrame
        COG 2026 records (:func:`cnfs_geo.sources.cog.read_cog_communes`): ``code``,
        ``nom``, ``type``, ``departement``, ``population``, ``chefLieu``, ``commune``,
        ``anciensCodes``.
    polygons : GeoDataFrame
        COG 2018 polygons of the département (:mod:`cnfs_geo.sources.polygons`):
        ``code``, ``nom``, ``geometry`` (EPSG:4326); ``attrs["source"]`` names the file.
    epci_members : pandas.DataFrame
        Commune → EPCI (:func:`cnfs_geo.sources.epci.read_epci_members`): index
        ``insee``, columns ``epci``, ``epci_nom``.
    departement : str, keyword-only
        Normalised INSEE département code (:func:`check_departement`).
    codes : pandas.DataFrame, optional
        Code table (:func:`code_table_from_cog`, with its overrides); by default built
        from ``cog`` without override.
    chef_lieux : pandas.DataFrame, optional
        Chef-lieu points (:func:`chef_lieu_points`: index ``insee``, ``lat``, ``lng``);
        communes without one use their representative point (all of them by default).
    recreated : pandas.DataFrame, optional
        Communes re-created after 2018 (:func:`recreated_communes`, the default).

    Returns
    -------
    (GeoDataFrame, TerritoryReport)
        As :func:`communes_with_report`.
    """
    dep = departement
    crs = working_crs(dep)
    poly_path = polygons.attrs.get("source", "polygons")
    check_populations(cog, dep, "cog")
    current = cog[(cog["type"] == "commune-actuelle") & (cog["departement"] == dep)].copy()
    current["population"] = current["population"].astype(int)
    names = dict(zip(current["code"].tolist(), current["nom"].tolist()))

    polys = polygons.copy()
    table = code_table_from_cog(cog) if codes is None else codes
    polys["insee"] = polys["code"].map(table["insee"])
    polys["rule"] = polys["code"].map(table["rule"])
    problems = [
        f"2018 commune {r.code} ({r.nom}) has no current commune in the COG 2026 (not "
        "current, délégué/associé, arrondissement nor in the anciensCodes of a current "
        "commune); fix: pass code_overrides={'" + str(r.code) + "': '<current code>'} "
        "(or a CSV old_code,new_code,reason)"
        for r in polys[polys["insee"].isna()].itertuples()
    ]
    error = UnknownCodeError if problems else ValidationError
    polys = polys[polys["insee"].notna()]

    outside = polys[~polys["insee"].isin(current["code"])]
    other = (
        pd.DataFrame(
            {
                "code_2018": outside["code"],
                "nom_2018": outside["nom"],
                "insee": outside["insee"],
                "departement": outside["insee"].map(
                    cog.loc[cog["type"] == "commune-actuelle"].set_index("code")["departement"]
                ),
            }
        )
        .sort_values("code_2018")
        .reset_index(drop=True)
    )
    if len(other):
        log.warning(
            "département %s: %d polygon(s) of %s belong to communes of another "
            "département and are left out: %s",
            dep,
            len(other),
            poly_path,
            dict(zip(other["code_2018"], other["insee"])),
        )
    polys = polys[polys["insee"].isin(current["code"])]
    polys = polys.set_crs(GEOGRAPHIC_CRS, allow_override=polys.crs is None).to_crs(crs)

    moved = polys[polys["code"] != polys["insee"]]
    assignments = pd.DataFrame(
        {
            "code_2018": moved["code"],
            "nom_2018": moved["nom"],
            "insee": moved["insee"],
            "nom": moved["insee"].map(names),
            "rule": moved["rule"],
        }
    ).sort_values("code_2018")
    assignments = assignments.reset_index(drop=True)
    fusions = assignments[assignments["rule"].isin([RULE_FORMER, RULE_OVERRIDE])]
    if len(fusions):
        log.warning(
            "département %s: %d 2018 polygon(s) not mapped by the délégué/associé "
            "table assigned by %s: %s",
            dep,
            len(fusions),
            " / ".join(sorted(set(fusions["rule"]))),
            ", ".join(
                f"{r.code_2018} {r.nom_2018} → {r.insee} {r.nom}" for r in fusions.itertuples()
            ),
        )

    codes_2018 = polys.groupby("insee")["code"].apply(lambda s: ",".join(sorted(s)))
    dissolved = dissolve(polys[["insee", "geometry"]], "insee")
    geoms = dissolved.geometry.reindex(current["code"])
    geometry_source = pd.Series(GEOMETRY_OWN, index=current["code"].values, dtype=object)
    group = pd.Series(current["code"].values, index=current["code"].values, dtype=object)

    # communes with no polygon of their own: re-created after 2018?
    missing_poly = sorted(set(current["code"]) - set(dissolved.index))
    recreated = recreated_communes() if recreated is None else recreated
    shared_rows = []
    for code in missing_poly:
        parent_code = recreated["parent_code_2018"].get(code)
        parent = polys[polys["code"] == parent_code]
        if parent_code is None or parent.empty:
            why = (
                "not listed in cnfs_geo/data/recreated_communes.csv"
                if parent_code is None
                else f"its parent 2018 polygon {parent_code} is not in {poly_path}"
            )
            problems.append(
                f"current commune {code} ({names[code]}) has no 2018 polygon (created "
                f"by a split after 2018?) and {why}; fix: newer commune polygons, or "
                "a row insee,nom,departement,parent_code_2018,parent_nom_2018,reason "
                "in recreated_communes.csv"
            )
            continue
        parent_insee = parent["insee"].iloc[0]
        geoms[code] = shapely.union_all(parent.geometry.values)
        geometry_source[code] = GEOMETRY_SHARED_CHILD
        geometry_source[parent_insee] = GEOMETRY_SHARED_PARENT
        group[code] = parent_insee
        reason = recreated.loc[code, "reason"]
        shared_rows.append((code, names[code], parent_code, GEOMETRY_SHARED_CHILD, reason))
        shared_rows.append(
            (
                parent_insee,
                names[parent_insee],
                parent_code,
                GEOMETRY_SHARED_PARENT,
                f"shares its 2018 polygon with {code}",
            )
        )
    if problems:
        raise error(poly_path, problems)
    shared = pd.DataFrame(
        shared_rows, columns=["insee", "nom", "code_2018", "geometry_source", "reason"]
    )
    shared = shared.groupby(["insee", "nom", "code_2018", "geometry_source"], as_index=False)[
        "reason"
    ].agg("; ".join)
    shared.insert(
        2,
        "population",
        shared["insee"]
        .map(dict(zip(current["code"].tolist(), current["population"].tolist())))
        .astype(int),
    )
    shared = shared.sort_values(["code_2018", "geometry_source", "insee"]).reset_index(drop=True)
    if len(shared):
        log.warning(
            "département %s: %d commune(s) re-created after 2018 have no polygon of "
            "their own and share their parent's 2018 polygon: %s",
            dep,
            int((shared["geometry_source"] == GEOMETRY_SHARED_CHILD).sum()),
            ", ".join(
                f"{r.insee} {r.nom} ⊂ {r.code_2018}"
                for r in shared.itertuples()
                if r.geometry_source == GEOMETRY_SHARED_CHILD
            ),
        )

    communes = gpd.GeoDataFrame(
        current.set_index("code")[["nom", "departement", "population"]],
        geometry=gpd.GeoSeries(geoms.values, index=current["code"].values, crs=crs),
        crs=crs,
    )
    communes.index.name = "insee"
    communes["codes_2018"] = codes_2018.reindex(communes.index).fillna("")
    communes["geometry_source"] = geometry_source.reindex(communes.index)
    communes["geometry"] = communes.geometry.make_valid().apply(_polygonal)
    empty = communes.index[communes.geometry.is_empty | communes.geometry.isna()].tolist()
    if empty:
        raise ValidationError(
            poly_path,
            [
                f"commune {c}: empty geometry after dissolving its "
                "2018 polygons; check the polygon file"
                for c in empty
            ],
        )

    # EPCI membership (COG 2026)
    membership = epci_members
    communes["epci"] = membership["epci"].reindex(communes.index)
    communes["epci_nom"] = membership["epci_nom"].reindex(communes.index)
    no_epci = communes.index[communes["epci"].isna()].tolist()
    if no_epci:
        # Islands without EPCI (Île-de-Sein, Ouessant, Bréhat, Île-d'Yeu) are legal exceptions.
        log.warning(
            "département %s: %d commune(s) belong to no EPCI: %s", dep, len(no_epci), no_epci
        )
        communes["epci"] = communes["epci"].fillna("sans EPCI")
        communes["epci_nom"] = communes["epci_nom"].fillna("Commune isolée (sans EPCI)")

    communes["area_km2"] = communes.geometry.area / 1e6
    # a shared polygon: density of the territory it covers (all sharers' population)
    grp = group.reindex(communes.index)
    grp_pop = communes["population"].groupby(grp).transform("sum")
    grp_area = communes["area_km2"].groupby(grp).transform("max")
    communes["density"] = grp_pop / grp_area
    rep = communes.geometry.representative_point()
    communes["ref_x"], communes["ref_y"] = rep.x, rep.y

    cl = pd.DataFrame(columns=["lat", "lng"], dtype=float) if chef_lieux is None else chef_lieux
    pts = gpd.GeoSeries(
        gpd.points_from_xy(cl["lng"], cl["lat"]), index=cl.index, crs=GEOGRAPHIC_CRS
    ).to_crs(crs)
    pts = pts.reindex(communes.index)
    inside = pts.notna() & (pts.distance(communes.geometry) < 500)
    communes["chef_lieu_x"] = np.where(inside, pts.x, communes["ref_x"])
    communes["chef_lieu_y"] = np.where(inside, pts.y, communes["ref_y"])
    communes["chef_lieu_source"] = np.where(inside, "chef-lieu (datas.fun)", "point représentatif")
    if (~inside).any():
        log.info(
            "département %s: %d commune(s) without a usable chef-lieu point use the "
            "representative point: %s",
            dep,
            int((~inside).sum()),
            communes.index[~inside].tolist(),
        )
    communes = communes.sort_index()

    notes = _notes(dep, cog, polys, table)
    report = TerritoryReport(
        departement=dep,
        crs=crs,
        polygon_source=poly_path,
        n_polygons_2018=len(polys) + len(other),
        n_communes=len(communes),
        population=int(communes["population"].sum()),
        code_assignments=assignments,
        shared_polygons=shared,
        other_departements=other,
        no_epci=pd.DataFrame(
            {
                "insee": pd.Series(no_epci, dtype=object),
                "nom": pd.Series([names[c] for c in no_epci], dtype=object),
                "population": pd.Series(
                    [int(communes.at[c, "population"]) for c in no_epci], dtype="int64"
                ),
            }
        ),
        notes=notes,
    )
    log.info(
        "territory %s: %d communes, %d inhabitants, %d COG-2018 polygons dissolved "
        "(%d old codes, %d by anciensCodes/override, %d shared polygons)",
        dep,
        len(communes),
        report.population,
        len(polys),
        len(assignments),
        len(fusions),
        int((shared["geometry_source"] == GEOMETRY_SHARED_CHILD).sum()),
    )
    communes = communes[
        [
            "nom",
            "departement",
            "epci",
            "epci_nom",
            "population",
            "area_km2",
            "density",
            "ref_x",
            "ref_y",
            "chef_lieu_x",
            "chef_lieu_y",
            "chef_lieu_source",
            "codes_2018",
            "geometry_source",
            "geometry",
        ]
    ]
    return communes, report


# The former codes of the last COG frame seen (all of France reads the same national frame
# for every département: exploded once, not once per département).
_FORMER: list[Any] = [None, None]


def _former_codes(cog: pd.DataFrame) -> pd.DataFrame:
    """``code``, ``anciensCodes`` (one row per former code) of the current communes of
    ``cog``; cached for the last ``cog`` object (read-only)."""
    if _FORMER[0] is cog:
        return _FORMER[1]
    cur = cog[(cog["type"] == "commune-actuelle") & cog["anciensCodes"].notna()]
    former = cur[["code", "anciensCodes"]].explode("anciensCodes")
    _FORMER[:] = [cog, former]
    return former


def _notes(
    dep: str, cog: pd.DataFrame, polys: gpd.GeoDataFrame, table: pd.DataFrame
) -> tuple[str, ...]:
    """Facts of the département worth a line in the report."""
    notes = []
    arr = cog[(cog["type"] == "arrondissement-municipal") & (cog["departement"] == dep)]
    for commune, rows in arr.groupby("commune"):
        in_polys = int(polys["code"].isin(rows["code"]).sum())
        notes.append(
            f"{commune} is one commune in the COG 2026; its {len(rows)} arrondissements "
            f"municipaux ({rows['code'].min()}–{rows['code'].max()}) are not separate units "
            + (
                "(the 2018 source has one polygon for the commune)"
                if in_polys == 0
                else f"({in_polys} arrondissement polygons of the 2018 source dissolved into it)"
            )
        )
    # délégué/associé codes that the COG also lists in the anciensCodes of another commune
    former = _former_codes(cog)
    former = former[former["anciensCodes"].isin(polys["code"])]
    for r in former.itertuples():
        kept = table["insee"].get(r.anciensCodes)
        if kept is not None and kept != r.code:
            notes.append(
                f"2018 code {r.anciensCodes} is in the anciensCodes of {r.code} but is "
                f"a {table.at[r.anciensCodes, 'rule']!r} of {kept} in the COG 2026: "
                f"assigned to {kept} (current status wins)"
            )
    return tuple(notes)


def communes_from_cog(
    departement: str,
    data_dir: catalog.DataDir,
    *,
    code_overrides: str | os.PathLike | Mapping[str, str] | None = None,
) -> gpd.GeoDataFrame:
    """Current communes of a département with polygons, population and EPCI.

    Same as :func:`communes_with_report` without the report (repairs are logged as
    warnings).

    Parameters
    ----------
    departement : str
        INSEE département code ("49", "2A", "974").
    data_dir : DataDir
        From :func:`cnfs_geo.catalog.resolve_data_dir`.
    code_overrides : mapping or path, optional
        See :func:`code_table`.

    Returns
    -------
    GeoDataFrame
        Index ``insee`` (str, COG 2026). Columns ``nom``, ``departement``, ``epci``
        (SIREN str), ``epci_nom``, ``population`` (int, COG 2026 populations
        légales), ``area_km2``, ``density`` (inhabitants/km²), ``ref_x``/``ref_y``
        (representative point, working CRS), ``chef_lieu_x``/``chef_lieu_y``
        (chef-lieu point, working CRS; representative point where unknown),
        ``chef_lieu_source``, ``codes_2018`` (the 2018 polygons dissolved into
        it), ``geometry_source``, ``geometry`` (polygon in
        :func:`cnfs_geo.settings.working_crs`). Sorted by ``insee``. Details in
        :func:`communes_with_report`.

    Examples
    --------
    >>> from cnfs_geo import catalog, territory
    >>> c = territory.communes_from_cog("49", catalog.resolve_data_dir())
    >>> len(c), int(c["population"].sum())
    (176, 833776)
    """
    communes, _ = communes_with_report(departement, data_dir, code_overrides=code_overrides)
    return communes


def epci_table(data_dir: catalog.DataDir) -> pd.DataFrame:
    """Identity of every EPCI: ``epci`` (SIREN), ``nom``, ``type``, ``population_totale``,
    ``n_membres`` (whole EPCI, all départements)."""
    return _epci_source.read_epci(data_dir.file("cog_epci"))


def epci_from_communes(communes: gpd.GeoDataFrame, data_dir: catalog.DataDir) -> gpd.GeoDataFrame:
    """EPCI polygons (part within the département) dissolved from ``communes``.

    Returns
    -------
    GeoDataFrame
        Index ``epci`` (SIREN). Columns ``nom``, ``type``, ``population`` (within the
        département), ``n_communes`` (within the département), ``n_membres`` and
        ``population_municipale_epci`` (whole EPCI), ``straddles`` (bool: the EPCI
        has members in other départements), ``geometry``.
    """
    return epci_from_frames(communes, epci_table(data_dir))


def epci_from_frames(communes: gpd.GeoDataFrame, epci: pd.DataFrame) -> gpd.GeoDataFrame:
    """EPCI polygons (part within the département) dissolved from ``communes``.

    Parameters
    ----------
    communes : GeoDataFrame
        From :func:`communes_from_frames` (``epci``, ``epci_nom``, ``nom``,
        ``population``, ``geometry``).
    epci : pandas.DataFrame
        EPCI identities (:func:`cnfs_geo.sources.epci.read_epci`): index ``epci``;
        ``nom``, ``type``, ``population_municipale_epci``, ``n_membres``.

    Returns
    -------
    GeoDataFrame
        As :func:`epci_from_communes`.
    """
    g = dissolve(communes, "epci", aggfunc={"population": "sum", "nom": "count"})
    g = g.rename(columns={"nom": "n_communes"})
    ident = epci
    g = g.join(ident, how="left")
    g["nom"] = g["nom"].fillna(communes.groupby("epci")["epci_nom"].first())
    g["straddles"] = g["n_membres"].fillna(0).astype(int) > g["n_communes"]
    return g[
        [
            "nom",
            "type",
            "population",
            "n_communes",
            "n_membres",
            "population_municipale_epci",
            "straddles",
            "geometry",
        ]
    ].sort_index()


def departement_outline(communes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The département polygon, dissolved from its communes (one row, index = code)."""
    out = dissolve(communes[["departement", "population", "geometry"]], "departement", "sum")
    return out


def chef_lieu_points(
    departement: str, data_dir: catalog.DataDir, mapping: dict[str, str] | None = None
) -> pd.DataFrame:
    """Chef-lieu ``lat``/``lng`` per current commune code (datas.fun, COG 2024 codes mapped).

    Missing file → empty frame (communes then use their representative point).
    """
    path = data_dir.file("datasfun_communes", required=False)
    if path is None:
        log.warning(
            "%s not found: communes use their representative point as host site",
            catalog.SOURCES["datasfun_communes"].relpath,
        )
        return pd.DataFrame(columns=["lat", "lng"], dtype=float)
    return chef_lieu_from_frame(
        _datasfun_source.read_datasfun_communes(path),
        departement,
        mapping or current_code_map(data_dir),
    )


def chef_lieu_from_frame(
    datasfun: pd.DataFrame, departement: str, mapping: Mapping[str, str]
) -> pd.DataFrame:
    """Chef-lieu ``lat``/``lng`` per current commune code of a département.

    Parameters
    ----------
    datasfun : pandas.DataFrame
        :func:`cnfs_geo.sources.datasfun.read_datasfun_communes` (``insee_com``,
        ``insee_dep``, ``commune_type``, ``lat``, ``lng``; COG 2024 codes).
    departement : str
        Département code.
    mapping : mapping
        Any commune code → current code (:func:`code_map_from_table`).

    Returns
    -------
    pandas.DataFrame
        Index ``insee`` (COG 2026); ``lat``, ``lng`` (float, WGS 84). A commune nouvelle
        absorbing a 2024 commune keeps its own chef-lieu.
    """
    df = datasfun
    df = df[(df["insee_dep"] == departement) & (df["commune_type"] == "COM")]
    df = df.assign(insee=df["insee_com"].map(mapping).fillna(df["insee_com"]))
    # a commune nouvelle absorbing a 2024 commune keeps its own chef-lieu when both exist
    df = df.assign(_own=(df["insee"] == df["insee_com"])).sort_values(
        ["insee", "_own"], ascending=[True, False]
    )
    df = df.drop_duplicates("insee")
    out = df.set_index("insee")[["lat", "lng"]].apply(pd.to_numeric, errors="coerce").dropna()
    return out
