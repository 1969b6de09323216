"""Demand units finer than the commune (IRIS, communes of 2018, the finest of both — the
default) and the national demand units of the 2018 polygons.

Transforms of the frames read by :mod:`cnfs_geo.sources.iris` and
:mod:`cnfs_geo.sources.polygons` (:func:`demand_units_from_frames`); :func:`demand_units`
reads them from a data directory. Method: ``docs/methods_demand.md``.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import catalog, territory
from ._errors import DataFileError, UnknownCodeError, ValidationError
from ._validate import communes_table, sample_text
from .settings import METROPOLE_CRS, working_crs
from .sources import iris as _iris_source
from .sources import polygons as _polygon_source
from .sources._io import file_key

#: The kinds of demand unit (:data:`UNIT_TYPES`).
DemandUnit = Literal["finest", "commune", "iris", "commune2018"]

log = logging.getLogger(__name__)

UNIT_TYPES = ("finest", "commune", "iris", "commune2018")

# A 2018 commune whose polygon is less than this share covered by the IRIS units of
# its current commune has no IRIS of its own and becomes a unit.
MIN_COVERED_SHARE = 0.5

LABELS = {
    "finest": (
        "Unités les plus fines disponibles : IRIS, communes déléguées (communes de 2018) "
        "au chef-lieu quand il s'y trouve, commune entière à son chef-lieu à défaut"
    ),
    "commune": "Communes (COG 2026) : population légale, point représentatif",
    "iris": (
        "IRIS 2016 (La MedNum 2020) : population COG 2026 répartie au prorata de la "
        "population 2016 ; communes 2018 sans IRIS et communes sans IRIS à part"
    ),
    "commune2018": "Communes de 2018 (ADMIN EXPRESS COG 2018) : population COG 2026 répartie",
}
_FINEST_NO_IRIS = (
    "Unités les plus fines disponibles : communes déléguées (communes de 2018) au "
    "chef-lieu quand il s'y trouve, commune entière à son chef-lieu à défaut (pas de "
    "fichier IRIS pour ce département)"
)
_FINEST_CURRENT = (
    "Unités les plus fines disponibles : communes déléguées et associées (COG en vigueur, "
    "API Découpage administratif) au chef-lieu quand il s'y trouve, commune entière à son "
    "chef-lieu à défaut"
)
# label of the finest units without IRIS, by the vintage of the polygons
# (:func:`cnfs_geo.sources.polygons.departement_unit_polygons`)
_FINEST_BY_VINTAGE = {
    "current": _FINEST_CURRENT,
    "communes": (
        "Communes entières à leur chef-lieu (dossier récupéré sans les contours des communes "
        "déléguées : relancez `cnfs-geo data fetch` pour des unités plus fines)"
    ),
}
_SPLIT_LABELS = {"iris": "par les IRIS (population 2016)", "area": "par la surface"}
_NEED_LABELS = {
    "finest": (
        "Unités les plus fines disponibles : IRIS, communes déléguées (communes de 2018) "
        "au chef-lieu quand il s'y trouve, commune entière à son chef-lieu à défaut"
    ),
    "iris": "besoin réparti selon le score MedNum 2020 des IRIS",
    "uniform": "besoin = population × indice de la commune / 10",
}

COLUMNS = [
    "insee",
    "unit_type",
    "nom",
    "commune_nom",
    "population",
    "population_basis",
    "score_mednum",
    "need",
    "need_index",
    "area_km2",
    "x",
    "y",
    "point_basis",
    "geometry",
]
#: ``point_basis`` values: where a unit's inhabitants travel from.
POINT_REPRESENTATIVE = "point représentatif"
POINT_CHEF_LIEU = "chef-lieu"
# Distance within which a unit holds its commune's chef-lieu point (the polygons are
# simplified to about 1 m; territory uses the same tolerance for the chef-lieu itself).
CHEF_LIEU_TOLERANCE_M = 500.0


# ---------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------


def iris_from_mednum(departement: str, data_dir: catalog.DataDir) -> gpd.GeoDataFrame:
    """IRIS of a département from La MedNum's 2020 fragility file, in its working CRS.

    Parameters
    ----------
    departement : str
        INSEE département code.
    data_dir : DataDir
        Holds ``socio/mednum_indice-fragilite-numerique_iris_dep<code>_2020.csv``
        (no header row, ``;``-separated) and the header file
        ``socio/mednum_indice-fragilite-numerique_iris_headers.csv``.

    Returns
    -------
    GeoDataFrame
        As :func:`cnfs_geo.sources.iris.read_iris` (index ``iris``; ``com``, ``nom``,
        ``commune_nom``, ``type_iris``, ``p16_pop``, ``score_mednum``, ``part_65_plus``,
        ``part_peu_diplomes``), with ``geometry`` made valid and in the département's
        working CRS.

    Raises
    ------
    DataFileError
        File missing (the message gives its upstream address).
    ValidationError
        Bad rows (see :func:`cnfs_geo.sources.iris.read_iris`).

    Examples
    --------
    >>> from cnfs_geo import catalog, demand
    >>> iris = demand.iris_from_mednum("49", catalog.resolve_data_dir())
    >>> len(iris), iris["com"].nunique()
    (357, 173)
    """
    dep = str(departement).strip().upper()
    path = _iris_source.iris_path(dep, data_dir)
    headers = data_dir.file("mednum_iris_headers")
    out = _iris_cached(*file_key(path), *file_key(headers), dep).copy()
    out.attrs["source"] = str(path)
    log.info(
        "IRIS %s: %d IRIS of %d commune codes, population 2016 %.0f",
        dep,
        len(out),
        out["com"].nunique(),
        out["p16_pop"].sum(),
    )
    return out


@lru_cache(maxsize=2)
def _iris_cached(
    path: str, mtime_ns: int, size: int, headers: str, h_mtime_ns: int, h_size: int, dep: str
) -> gpd.GeoDataFrame:
    """:func:`iris_from_mednum`'s frame, parsed once per version of the two files (each
    plan of a département reads it; callers take a copy)."""
    names = _iris_source.read_iris_headers(Path(headers))
    out = _iris_source.read_iris(Path(path), names)
    out["geometry"] = out.geometry.make_valid()
    return out.to_crs(working_crs(dep))


def commune2018_polygons(departement: str, data_dir: catalog.DataDir) -> gpd.GeoDataFrame:
    """ADMIN EXPRESS COG 2018 commune polygons with their current commune.

    Parameters
    ----------
    departement : str
        INSEE département code.
    data_dir : DataDir
        Holds the per-département 2018 file or the national archive (as for
        :func:`cnfs_geo.territory.communes_from_cog`).

    Returns
    -------
    GeoDataFrame
        As :func:`commune2018_from_frame`, in the département's working CRS.

    Examples
    --------
    >>> from cnfs_geo import catalog, demand
    >>> p = demand.commune2018_polygons("49", catalog.resolve_data_dir())
    >>> len(p), p["insee"].nunique()
    (183, 176)
    """
    dep = str(departement).strip().upper()
    return commune2018_from_frame(
        _polygon_source.departement_unit_polygons(dep, data_dir),
        territory.current_code_map(data_dir),
        crs=working_crs(dep),
    )


def commune2018_from_frame(
    polygons: gpd.GeoDataFrame, code_map: dict[str, str], *, crs: Any
) -> gpd.GeoDataFrame:
    """The 2018 polygons with their current commune.

    Parameters
    ----------
    polygons : GeoDataFrame
        COG 2018 polygons (:mod:`cnfs_geo.sources.polygons`): ``code``, ``nom``,
        ``geometry`` (EPSG:4326); ``attrs["source"]`` names the file.
    code_map : dict
        Any commune code → current code (:func:`cnfs_geo.territory.current_code_map`).
    crs : CRS, keyword-only
        Working CRS of the output.

    Returns
    -------
    GeoDataFrame
        Index ``code_2018`` (sorted). Columns ``nom`` (2018 name), ``insee`` (COG 2026
        commune it belongs to), ``geometry`` (made valid, in ``crs``).

    Raises
    ------
    UnknownCodeError
        A 2018 code unknown to ``code_map`` (every one named).
    """
    path = polygons.attrs.get("source", "polygons")
    polys = polygons.assign(insee=polygons["code"].map(code_map))
    bad = polys[polys["insee"].isna()]
    if len(bad):
        raise UnknownCodeError(
            str(path),
            [
                f"2018 commune {r.code} ({r.nom}) has no current commune in the COG 2026; add it "
                "to the code mapping"
                for r in bad.itertuples()
            ],
        )
    polys = polys.to_crs(crs)
    polys["geometry"] = polys.geometry.make_valid()
    out = (
        polys.rename(columns={"code": "code_2018"})
        .set_index("code_2018")[["nom", "insee", "geometry"]]
        .sort_index()
    )
    out.attrs["vintage"] = polygons.attrs.get("vintage", "2018")
    return out


# ---------------------------------------------------------------------------
# Splitting
# ---------------------------------------------------------------------------


def _capped_split(total: float, weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Split ``total`` in proportion to ``weights`` with part i ≤ caps[i] (water-filling)."""
    weights = np.asarray(weights, dtype=float)
    caps = np.asarray(caps, dtype=float)
    out = np.zeros(len(weights))
    if total <= 0 or len(weights) == 0:
        return out
    total = min(total, caps.sum())
    if weights.sum() <= 0:
        weights = caps.copy()
    free = np.ones(len(weights), dtype=bool)
    for _ in range(len(weights) + 1):
        rest = total - out[~free].sum()
        wsum = weights[free].sum()
        if wsum <= 0:  # only zero-weight units left: fill them by their room
            room = np.where(free, caps, 0.0)
            out[free] = rest * room[free] / room.sum() if room.sum() > 0 else 0.0
            break
        share = np.where(free, rest * weights / wsum, 0.0)
        over = free & (share > caps)
        if not over.any():
            out[free] = share[free]
            break
        out[over] = caps[over]
        free &= ~over
    return out


_NOT_DIVIDED = " (commune non irisée)"


def _iris_label(iris_name: str, commune_name: str) -> str:
    """The name a reader sees for an IRIS unit.

    The IFN file names the single IRIS of an undivided 2018 commune "X (commune non
    irisée)"; the label drops that suffix and adds the current commune when it differs
    (an IRIS of a city, or a 2018 commune now part of a commune nouvelle):
    "Valanjou (Chemillé-en-Anjou)", "Allonnes". The unit id keeps the IRIS code.
    """
    name = str(iris_name)
    if name.endswith(_NOT_DIVIDED):
        name = name[: -len(_NOT_DIVIDED)]
    name = name.strip() or str(commune_name)
    return name if name == commune_name else f"{name} ({commune_name})"


def _iris_units(
    communes: gpd.GeoDataFrame,
    iris: gpd.GeoDataFrame,
    polys: gpd.GeoDataFrame,
    mapping: dict[str, str],
    dep: str,
    need_split: str,
) -> gpd.GeoDataFrame:
    source = iris.attrs.get("source", "iris")
    iris = iris.to_crs(communes.crs)
    iris["insee"] = iris["com"].map(mapping)
    unknown = iris[iris["insee"].isna()]
    if len(unknown):
        raise UnknownCodeError(
            str(source),
            [
                f"IRIS {i}: commune code {r.com} is unknown to the COG 2026 (neither current nor "
                "délégué/associé); add it to the code mapping"
                for i, r in unknown.iterrows()
            ],
        )
    outside = iris[~iris["insee"].isin(communes.index)]
    if len(outside):
        log.info(
            "IRIS: %d IRIS belong to communes not in `communes` and are not used: %s",
            len(outside),
            sorted(set(outside["insee"]))[:10],
        )
    iris = iris[iris["insee"].isin(communes.index)].copy()
    polys = polys.to_crs(communes.crs)
    polys = polys[polys["insee"].isin(communes.index)]
    cgeom = communes.geometry

    # geometry of each IRIS unit
    whole = (
        iris.index.str.endswith("0000")
        & iris["com"].isin(polys.index)
        & (iris["com"].map(polys["insee"]) == iris["insee"])
    )
    clipped = iris.geometry.intersection(
        gpd.GeoSeries(cgeom.reindex(iris["insee"]).to_numpy(), index=iris.index, crs=iris.crs)
    )
    geom = clipped.where(clipped.area > 0, iris.geometry)
    geom = geom.where(
        ~whole,
        gpd.GeoSeries(
            polys.geometry.reindex(iris["com"]).to_numpy(), index=iris.index, crs=iris.crs
        ),
    )
    if (clipped.area <= 0).any():
        log.warning(
            "IRIS outside their commune (kept unclipped): %s",
            iris.index[clipped.area <= 0].tolist(),
        )
    iris = iris.set_geometry(geom)

    # rows of each commune, in file order (one pass instead of a filter per commune); the
    # loop reads plain arrays (pandas row access costs more than the geometry here)
    iris_of = iris.groupby("insee", sort=False).indices
    polys_of = polys.groupby("insee", sort=False).indices
    no_rows = np.array([], dtype=int)
    i_code = iris.index.to_numpy()
    i_nom = iris["nom"].to_numpy()
    i_geom = iris.geometry.to_numpy()
    i_p16 = iris["p16_pop"].to_numpy()
    i_score = iris["score_mednum"].to_numpy()
    i_whole = np.asarray(whole, dtype=bool)
    p_code = polys.index.to_numpy()
    p_nom = polys["nom"].to_numpy()
    p_geom = polys.geometry.to_numpy()
    rows = []
    for insee, nom_c, geom_c, pop_c, need_c in zip(
        communes.index,
        communes["nom"].to_numpy(),
        cgeom.to_numpy(),
        communes["population"].to_numpy(dtype=float),
        communes["need"].to_numpy(dtype=float),
    ):
        pop_c, need_c = float(pop_c), float(need_c)
        own = iris_of.get(insee, no_rows)
        units = []  # (unit_id, unit_type, nom, geometry, weight, basis, score)
        if len(own) == 0:
            units.append(
                (insee, "commune", nom_c, geom_c, 1.0, "commune entière (aucun IRIS)", np.nan)
            )
        else:
            covered = shapely.union_all(i_geom[own])
            for k in own:
                basis = (
                    "P16 IRIS (commune non découpée, contour 2018)" if i_whole[k] else "P16 IRIS"
                )
                units.append(
                    (
                        i_code[k],
                        "iris",
                        _iris_label(i_nom[k], nom_c),
                        i_geom[k],
                        float(i_p16[k]),
                        basis,
                        i_score[k],
                    )
                )
            mine = polys_of.get(insee, no_rows)
            shares = shapely.area(shapely.intersection(p_geom[mine], covered)) / shapely.area(
                p_geom[mine]
            )
            rest = []
            for k, share in zip(mine, shares):
                if share < MIN_COVERED_SHARE:
                    g = p_geom[k].difference(covered)
                    rest.append((p_code[k], p_nom[k], g if g.area > 0 else p_geom[k]))
            if rest:
                p16 = float(iris["p16_pop"].iloc[own].sum())
                areas = np.array([g.area for _, _, g in rest])
                residual = pop_c - p16
                if residual > 0:
                    w = residual * areas / areas.sum()
                    basis = "reste : population COG 2026 − P16 des IRIS, réparti par surface"
                else:
                    w = p16 * areas / covered.area
                    basis = "densité 2016 des IRIS de la commune × surface"
                    log.warning(
                        "commune %s: COG 2026 population ≤ 2016 population of its IRIS; "
                        "2018 communes without IRIS get the IRIS density",
                        insee,
                    )
                units += [
                    (code, "commune2018", _iris_label(nom, nom_c), g, float(wi), basis, np.nan)
                    for (code, nom, g), wi in zip(rest, w)
                ]
        weights = np.array([u[4] for u in units])
        if weights.sum() <= 0:
            weights = np.array([u[3].area for u in units])
            units = [u[:5] + ("surface (population 2016 nulle)",) + u[6:] for u in units]
        pops = pop_c * (weights / weights.sum())
        scores = np.array([u[6] for u in units], dtype=float)
        known = ~np.isnan(scores) & (pops > 0)
        mean_score = np.average(scores[known], weights=pops[known]) if known.any() else 100.0
        scores_filled = np.where(np.isnan(scores), mean_score, scores)
        if need_split == "iris":
            needs = _capped_split(need_c, pops * scores_filled, pops)
        else:
            needs = need_c * pops / pop_c if pop_c > 0 else np.zeros(len(units))
        for u, p_u, n_u in zip(units, pops, needs):
            rows.append(
                {
                    "unit_id": u[0],
                    "insee": insee,
                    "unit_type": u[1],
                    "nom": u[2],
                    "commune_nom": nom_c,
                    "population": p_u,
                    "population_basis": u[5],
                    "score_mednum": u[6],
                    "need": n_u,
                    "geometry": u[3],
                }
            )
    out = gpd.GeoDataFrame(rows, geometry="geometry", crs=communes.crs)
    if not out["unit_id"].is_unique:
        dup = out.loc[out["unit_id"].duplicated(), "unit_id"].tolist()
        raise ValidationError("demand units", [f"unit id {d} is used twice" for d in dup])
    counts = out["unit_type"].value_counts().to_dict()
    log.info("IRIS units %s: %s", dep, counts)
    return out


# ---------------------------------------------------------------------------
# Finest units (the default): IRIS, 2018 communes, whole communes at their chef-lieu
# ---------------------------------------------------------------------------


def _commune_units(communes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One unit per commune (its polygon, legal population and need)."""
    return gpd.GeoDataFrame(
        {
            "unit_id": communes.index.astype(str),
            "insee": communes.index.astype(str),
            "unit_type": "commune",
            "nom": communes["nom"].to_numpy(),
            "commune_nom": communes["nom"].to_numpy(),
            "population": communes["population"].astype(float).to_numpy(),
            "population_basis": "population légale COG 2026",
            "score_mednum": np.nan,
            "need": communes["need"].astype(float).to_numpy(),
        },
        geometry=communes.geometry.to_numpy(),
        crs=communes.crs,
    )


def finest_units(
    communes: gpd.GeoDataFrame,
    iris: gpd.GeoDataFrame | None,
    polys: gpd.GeoDataFrame,
    mapping: dict[str, str],
    dep: str,
    need_split: str,
) -> gpd.GeoDataFrame:
    """The finest demand units the data gives, commune by commune.

    IRIS where the commune has IRIS (with its 2018 communes that no IRIS covers, as for
    ``unit="iris"``); otherwise its 2018 communes (communes déléguées of a commune
    nouvelle merged since 2018) when it has several, the population split by area; the
    whole commune only when nothing finer exists. Points are placed by
    :func:`chef_lieu_points`.

    Parameters
    ----------
    communes : GeoDataFrame
        As for :func:`demand_units`.
    iris : GeoDataFrame or None
        :func:`iris_from_mednum` (None: no IRIS file for the département).
    polys : GeoDataFrame
        :func:`commune2018_from_frame`.
    mapping : dict
        Any commune code → current code.
    dep : str
        Département code (messages).
    need_split : {"iris", "uniform"}
        How need is split (``"uniform"`` without IRIS).

    Returns
    -------
    GeoDataFrame
        Columns ``unit_id``, ``insee``, ``unit_type``, ``nom``, ``commune_nom``,
        ``population``, ``population_basis``, ``score_mednum``, ``need``, ``geometry``.
    """
    if iris is not None:
        base = _iris_units(communes, iris, polys, mapping, dep, need_split)
    else:
        base = _commune_units(communes)
    pieces = polys.to_crs(communes.crs)
    n_pieces = pieces.groupby("insee").size()
    whole = base["unit_type"].eq("commune") & base["insee"].map(n_pieces).fillna(0).gt(1)
    if not whole.any():
        return base
    rows = []
    for insee in base.loc[whole, "insee"]:
        group = pieces[pieces["insee"] == insee]
        area = group.geometry.area.to_numpy(dtype=float)
        share = area / area.sum()
        pop_c = float(communes.at[insee, "population"])
        need_c = float(communes.at[insee, "need"])
        for (code, p), sh in zip(group.iterrows(), share):
            rows.append(
                {
                    "unit_id": code,
                    "insee": insee,
                    "unit_type": "commune2018",
                    "nom": p["nom"],
                    "commune_nom": communes.at[insee, "nom"],
                    "population": pop_c * sh,
                    "population_basis": "commune déléguée : population COG 2026 répartie par "
                    "la surface (ni IRIS ni population propre)",
                    "score_mednum": np.nan,
                    "need": need_c * sh,
                    "geometry": p.geometry,
                }
            )
    split = gpd.GeoDataFrame(rows, geometry="geometry", crs=communes.crs)
    log.info("finest units %s: %d communes split into their 2018 communes", dep, int(whole.sum()))
    return pd.concat([base[~whole], split], ignore_index=True)


def chef_lieu_points(units: gpd.GeoDataFrame, communes: pd.DataFrame) -> gpd.GeoDataFrame:
    """Put a village-level unit's inhabitants at its commune's chef-lieu when it holds it.

    A whole commune, a 2018 commune (commune déléguée) or an IRIS « commune non
    découpée » that contains its commune's chef-lieu point (``communes`` columns
    ``chef_lieu_x``/``chef_lieu_y``, :func:`cnfs_geo.territory.communes_from_cog`)
    travels from that point, where the town hall and most of its inhabitants are,
    instead of an arbitrary point inside its polygon (``point_basis`` says which).
    Split IRIS of towns keep their representative point.

    Parameters
    ----------
    units : GeoDataFrame
        Demand units with ``insee``, ``unit_type``, ``x``, ``y``, ``point_basis``,
        ``geometry``; ids in column or index ``unit_id``.
    communes : DataFrame
        Index ``insee``; ``chef_lieu_x``/``chef_lieu_y`` (working CRS). Without those
        columns the units are returned unchanged.

    Returns
    -------
    GeoDataFrame
        ``units`` with ``x``, ``y`` and ``point_basis`` updated.
    """
    if not {"chef_lieu_x", "chef_lieu_y"} <= set(communes.columns):
        return units
    out = units.copy()
    ids = pd.Series(out["unit_id"] if "unit_id" in out.columns else out.index, index=out.index)
    village = out["unit_type"].ne("iris") | ids.astype(str).str.endswith("0000")
    cx = out["insee"].map(communes["chef_lieu_x"]).to_numpy(dtype=float)
    cy = out["insee"].map(communes["chef_lieu_y"]).to_numpy(dtype=float)
    ok = np.isfinite(cx) & np.isfinite(cy) & village.to_numpy()
    dist = np.full(len(out), np.inf)
    dist[ok] = shapely.distance(out.geometry.to_numpy()[ok], shapely.points(cx[ok], cy[ok]))
    # the unit holding the chef-lieu (500 m tolerance: simplified polygons), one per commune
    near = pd.Series(dist, index=np.arange(len(out)))
    best = (
        near[near < CHEF_LIEU_TOLERANCE_M]
        .groupby(out["insee"].to_numpy()[near < CHEF_LIEU_TOLERANCE_M])
        .idxmin()
    )
    at = np.zeros(len(out), dtype=bool)
    at[best.to_numpy(dtype=int)] = True
    out.loc[at, "x"] = cx[at]
    out.loc[at, "y"] = cy[at]
    source = (
        communes["chef_lieu_source"].reindex(out["insee"]).to_numpy()
        if "chef_lieu_source" in communes.columns
        else np.full(len(out), POINT_CHEF_LIEU, dtype=object)
    )
    out.loc[at, "point_basis"] = [
        POINT_CHEF_LIEU if s == POINT_REPRESENTATIVE else str(s) for s in source[at]
    ]
    return out


def _commune2018_units(
    communes: gpd.GeoDataFrame,
    all_polys: gpd.GeoDataFrame,
    iris: gpd.GeoDataFrame | None,
    mapping: dict[str, str],
    dep: str,
    population_from: str,
    need_split: str,
) -> gpd.GeoDataFrame:
    polys = all_polys.to_crs(communes.crs)
    polys = polys[polys["insee"].isin(communes.index)].copy()
    polys["area"] = polys.geometry.area
    if population_from == "iris":
        units = _iris_units(communes, iris, all_polys, mapping, dep, need_split)
        units["u_area"] = units.geometry.area
        ov = gpd.overlay(
            units[["unit_id", "insee", "population", "need", "u_area", "geometry"]],
            polys.reset_index()[["code_2018", "insee", "geometry"]],
            how="intersection",
            keep_geom_type=True,
        )
        ov = ov[ov["insee_1"] == ov["insee_2"]]
        frac = ov.geometry.area / ov["u_area"]
        ov = ov.assign(w=ov["population"] * frac, n=ov["need"] * frac)
        agg = ov.groupby("code_2018")[["w", "n"]].sum()
        polys["w"] = agg["w"].reindex(polys.index).fillna(0.0)
        polys["n"] = agg["n"].reindex(polys.index).fillna(0.0)
        basis_split = "IRIS (P16) par intersection de surfaces"
    else:
        polys["w"] = polys["area"]
        polys["n"] = polys["area"]
        basis_split = "surface"
    # one pass over plain arrays, communes in code order, 2018 communes in file order
    groups = polys.groupby("insee", sort=True).indices
    p_code, p_nom, p_geom = polys.index.to_numpy(), polys["nom"].to_numpy(), polys.geometry.array
    p_w, p_n = polys["w"].to_numpy(dtype=float), polys["n"].to_numpy(dtype=float)
    p_area = polys["area"].to_numpy(dtype=float)
    rows = []
    for insee in sorted(groups):
        group = groups[insee]
        pop_c = float(communes.at[insee, "population"])
        need_c = float(communes.at[insee, "need"])
        nom_c = communes.at[insee, "nom"]
        w = p_w[group]
        n = p_n[group]
        basis = basis_split if len(group) > 1 else "commune entière"
        if w.sum() <= 0:
            w, basis = p_area[group], "surface (population 2016 nulle)"
        pops = pop_c * (w / w.sum())
        if population_from == "area" or need_split == "uniform" or n.sum() <= 0:
            needs = need_c * pops / pop_c if pop_c > 0 else np.zeros(len(group))
        else:
            needs = _capped_split(need_c, n, pops)
        for k, p_u, n_u in zip(group, pops, needs):
            rows.append(
                {
                    "unit_id": p_code[k],
                    "insee": insee,
                    "unit_type": "commune2018",
                    "nom": p_nom[k],
                    "commune_nom": nom_c,
                    "population": p_u,
                    "population_basis": basis,
                    "score_mednum": np.nan,
                    "need": n_u,
                    "geometry": p_geom[k],
                }
            )
    missing = sorted(set(communes.index) - set(polys["insee"]))
    if missing:
        raise ValidationError(
            "communes",
            [f"commune {c}: no 2018 polygon; use unit='commune' or 'iris'" for c in missing],
        )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=communes.crs)


def demand_units(
    communes: gpd.GeoDataFrame,
    data_dir: catalog.DataDir,
    *,
    unit: DemandUnit = "commune",
    population_from: Literal["iris", "area"] = "iris",
    need_split: Literal["iris", "uniform"] | None = None,
) -> gpd.GeoDataFrame:
    """Demand units (points of departure of the inhabitants) of a département.

    Parameters
    ----------
    communes : GeoDataFrame
        Output of :func:`cnfs_geo.need.need_from_sources` for one département: index
        ``insee``; columns ``nom``, ``departement``, ``population`` (COG 2026),
        ``need``, ``geometry`` (working CRS); ``ref_x``/``ref_y`` used when present.
    data_dir : DataDir
        From :func:`cnfs_geo.catalog.resolve_data_dir`.
    unit : {"finest", "commune", "iris", "commune2018"}, keyword-only
        Which units (``docs/methods_demand.md``): ``"finest"`` (the default of
        :class:`cnfs_geo.settings.Settings`: :func:`finest_units`, village-level units at
        their chef-lieu, :func:`chef_lieu_points`; the IRIS file is used when the data
        directory has one), one point per commune, IRIS or 2018 communes.
    population_from : {"iris", "area"}, keyword-only
        For ``unit="commune2018"``: split the population by the IRIS (default) or by
        area (no IRIS file needed). Ignored otherwise.
    need_split : {"iris", "uniform"} or None, keyword-only
        How a commune's need is split among its units: by population × IRIS MedNum
        score (``"iris"``, default when IRIS are read) or uniformly
        (population × commune need index / 10; default otherwise).

    Returns
    -------
    GeoDataFrame
        Index ``unit_id`` (IRIS code, 2018 commune code or current commune code),
        sorted by ``insee`` then ``unit_id``. Columns ``insee`` (COG 2026 commune),
        ``unit_type`` (``"iris"``, ``"commune2018"`` or ``"commune"``), ``nom``,
        ``commune_nom``, ``population`` (float: COG 2026 population split; sums to
        the commune's population), ``population_basis`` (how the share was
        obtained, French), ``score_mednum`` (IRIS units; NaN otherwise), ``need``
        (need-weighted population; sums to the commune's ``need``; ≤ population),
        ``need_index`` (10 × need / population; the commune's where population is 0),
        ``area_km2``, ``x``/``y`` (point the unit travels from, working CRS:
        EPSG:2154 in metropolitan France), ``point_basis`` (``"point représentatif"``
        or the chef-lieu's source, see :func:`chef_lieu_points`), ``geometry``
        (polygon, working CRS).
        ``attrs["demand_unit"]`` is a French label of the units and of how
        population and need were split; ``attrs["demand_unit_key"]`` is ``unit``.

    Raises
    ------
    ValidationError
        Bad option, ``communes`` without the need columns or spanning several
        départements, bad IRIS rows.
    DataFileError
        IRIS file missing (``unit="iris"``, or ``"commune2018"`` with
        ``population_from="iris"``).

    Examples
    --------
    >>> from cnfs_geo import catalog, territory, need, demand
    >>> d = catalog.resolve_data_dir()
    >>> c, _ = need.need_from_sources(territory.communes_from_cog("49", d), d)
    >>> u = demand.demand_units(c, d, unit="iris")
    >>> u["unit_type"].value_counts().to_dict()
    {'iris': 357, 'commune2018': 6, 'commune': 4}
    >>> round(u["population"].sum())
    833776
    """
    _check_options(unit, population_from, need_split)
    dep = _check_communes(communes)
    iris, polygons = read_sources(
        dep, data_dir, unit=unit, population_from=population_from, need_split=need_split
    )
    polys = mapping = None
    if polygons is not None:
        mapping = territory.current_code_map(data_dir)
        polys = commune2018_from_frame(polygons, mapping, crs=working_crs(dep))
    return demand_units_from_frames(
        communes,
        unit=unit,
        population_from=population_from,
        need_split=need_split,
        iris=iris,
        polygons_2018=polys,
        code_map=mapping,
    )


def read_sources(
    departement: str,
    data_dir: catalog.DataDir,
    *,
    unit: DemandUnit = "commune",
    population_from: Literal["iris", "area"] = "iris",
    need_split: Literal["iris", "uniform"] | None = None,
) -> tuple[gpd.GeoDataFrame | None, gpd.GeoDataFrame | None]:
    """Read and check the files the demand units of ``departement`` come from (options
    as :func:`demand_units`): ``(iris, polygons_2018)``, the IRIS
    (:func:`iris_from_mednum`) and the raw 2018 commune polygons, each None when
    ``unit`` does not use it (commune units read neither)."""
    _, uses_iris = _check_options(unit, population_from, need_split)
    if unit == "commune":
        return None, None
    dep = catalog.normalise_departement(departement)
    iris = None
    if unit == "finest":
        iris = _iris_if_any(dep, data_dir, need_split)
    elif uses_iris:
        iris = iris_from_mednum(dep, data_dir)
    return iris, _polygon_source.departement_unit_polygons(dep, data_dir)


def _iris_if_any(
    dep: str, data_dir: catalog.DataDir, need_split: str | None
) -> gpd.GeoDataFrame | None:
    """The IRIS of ``dep`` for the finest units, or None when the data directory has no
    IRIS file for it (the finest units are then the 2018 communes and communes)."""
    try:
        _iris_source.iris_path(dep, data_dir)
    except DataFileError:
        if need_split == "iris":
            raise
        log.info("finest demand units %s: no IRIS file, 2018 communes and communes only", dep)
        return None
    return iris_from_mednum(dep, data_dir)


def _check_options(unit: str, population_from: str, need_split: str | None) -> tuple[str, bool]:
    """Check the options of :func:`demand_units`; return the need split and whether the
    IRIS are read."""
    problems = []
    if unit not in UNIT_TYPES:
        problems.append(f"unit={unit!r}: use one of {list(UNIT_TYPES)}")
    if population_from not in ("iris", "area"):
        problems.append(f"population_from={population_from!r}: use 'iris' or 'area'")
    if need_split not in (None, "iris", "uniform"):
        problems.append(f"need_split={need_split!r}: use 'iris', 'uniform' or None")
    uses_iris = unit in ("iris", "finest") or (unit == "commune2018" and population_from == "iris")
    if need_split == "iris" and not uses_iris:
        problems.append(
            f"need_split='iris' needs the IRIS file, not read for unit={unit!r}, "
            f"population_from={population_from!r}; use need_split='uniform'"
        )
    if problems:
        raise ValidationError("demand_units", problems)
    return need_split or ("iris" if uses_iris else "uniform"), uses_iris


def _check_communes(communes: Any) -> str:
    dep = communes_table(
        communes,
        required=("nom", "departement", "population", "need"),
        hint="cnfs_geo.need.need_from_sources",
        crs="any",
        nonnegative=("population", "need"),
        one_departement=True,
    )
    return str(dep)


def demand_units_from_frames(
    communes: gpd.GeoDataFrame,
    *,
    unit: DemandUnit = "commune",
    population_from: Literal["iris", "area"] = "iris",
    need_split: Literal["iris", "uniform"] | None = None,
    iris: gpd.GeoDataFrame | None = None,
    polygons_2018: gpd.GeoDataFrame | None = None,
    code_map: dict[str, str] | None = None,
) -> gpd.GeoDataFrame:
    """Demand units of a département from the communes and the frames of the readers.

    Parameters
    ----------
    communes : GeoDataFrame
        As for :func:`demand_units`.
    unit, population_from, need_split : keyword-only
        As for :func:`demand_units`.
    iris : GeoDataFrame, optional, keyword-only
        IRIS (:func:`iris_from_mednum`: index ``iris``; ``com``, ``nom``, ``p16_pop``,
        ``score_mednum``, ``geometry``); required when the IRIS are used.
    polygons_2018 : GeoDataFrame, optional, keyword-only
        2018 communes (:func:`commune2018_from_frame`: index ``code_2018``; ``nom``,
        ``insee``, ``geometry``); required unless ``unit="commune"``.
    code_map : dict, optional, keyword-only
        Any commune code → current code (:func:`cnfs_geo.territory.current_code_map`);
        required with ``iris``.

    Returns
    -------
    GeoDataFrame
        As :func:`demand_units`.
    """
    split, uses_iris = _check_options(unit, population_from, need_split)
    dep = _check_communes(communes)
    missing = []
    if unit != "commune" and polygons_2018 is None:
        missing.append(
            f"polygons_2018 is needed for unit={unit!r}; fix: pass "
            "commune2018_from_frame(...) or use demand_units(communes, data_dir)"
        )
    if unit == "finest" and iris is not None and code_map is None:
        missing.append("code_map is needed with iris; fix: pass territory.current_code_map(...)")
    if unit == "finest" and iris is None and need_split == "iris":
        missing.append("need_split='iris' needs iris; fix: pass iris_from_mednum(...)")
    if uses_iris and unit != "finest" and (iris is None or code_map is None):
        missing.append(
            f"iris and code_map are needed for unit={unit!r}, population_from="
            f"{population_from!r}; fix: pass iris_from_mednum(...) and "
            "territory.current_code_map(...)"
        )
    if missing:
        raise ValidationError("demand_units_from_frames", missing)

    if unit == "commune":
        out = _commune_units(communes)
        label = LABELS["commune"]
    elif unit == "iris":
        out = _iris_units(communes, iris, polygons_2018, code_map or {}, dep, split)
        label = f"{LABELS['iris']} ; {_NEED_LABELS[split]}"
    elif unit == "finest":
        if iris is None:
            split = "uniform"
        out = finest_units(communes, iris, polygons_2018, code_map or {}, dep, split)
        vintage = polygons_2018.attrs.get("vintage") if polygons_2018 is not None else None
        no_iris = _FINEST_BY_VINTAGE.get(str(vintage), _FINEST_NO_IRIS)
        label = f"{LABELS['finest'] if iris is not None else no_iris} ; {_NEED_LABELS[split]}"
    else:
        out = _commune2018_units(
            communes, polygons_2018, iris, code_map or {}, dep, population_from, split
        )
        label = (
            f"{LABELS['commune2018']} {_SPLIT_LABELS[population_from]} ; "
            f"{_NEED_LABELS[split if population_from == 'iris' else 'uniform']}"
        )

    index_c = (
        (10.0 * communes["need"] / communes["population"].where(communes["population"] > 0))
        .reindex(out["insee"])
        .to_numpy()
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        ni = np.where(out["population"] > 0, 10.0 * out["need"] / out["population"], index_c)
    out["need_index"] = ni
    out["area_km2"] = out.geometry.area / 1e6
    rep = out.geometry.representative_point()
    out["x"], out["y"] = rep.x.to_numpy(), rep.y.to_numpy()
    out["point_basis"] = POINT_REPRESENTATIVE
    if unit == "commune" and {"ref_x", "ref_y"} <= set(communes.columns):
        out["x"] = communes["ref_x"].to_numpy(dtype=float)
        out["y"] = communes["ref_y"].to_numpy(dtype=float)
    if unit == "finest":
        out = chef_lieu_points(out, communes)
    out = out.sort_values(["insee", "unit_id"]).set_index("unit_id")[COLUMNS]
    out.attrs["demand_unit"] = label
    out.attrs["demand_unit_key"] = unit
    out.attrs["population_from"] = population_from if unit == "commune2018" else None
    out.attrs["need_split"] = split
    log.info(
        "demand units (%s): %d units, population %.0f, need %.0f",
        unit,
        len(out),
        out["population"].sum(),
        out["need"].sum(),
    )
    return out


# ---------------------------------------------------------------------------
# National demand units (COG 2018 polygons, COG 2026 populations)
# ---------------------------------------------------------------------------


def _is_metropolitan(departement: str) -> bool:
    return len(departement) == 2 and (departement.isdigit() or departement in ("2A", "2B"))


def demand_units_cog2018(data_dir: Any = None, *, path: Any = None) -> gpd.GeoDataFrame:
    """Demand units for national placement: the COG 2018 commune polygons with COG 2026
    populations, in Lambert-93.

    Each 2018 polygon is one demand unit (metropolitan France: 35 228 polygons of 96
    départements); it travels from its representative point (``ref_x``/``ref_y``, always
    inside the polygon). Populations are the COG 2026 populations légales: a 2018 code is
    mapped to its current commune with :func:`cnfs_geo.territory.current_code_map`, and a
    current commune's population is shared among its 2018 pieces in proportion to their
    area (a commune nouvelle of 3 former communes puts 3 units on the map, not one).

    2018 codes unknown to the COG 2026 mapping (délégué/associé ``chefLieu`` and the
    ``anciensCodes`` of fusions simples) are an error naming them. Current communes with
    no 2018 polygon (7 in metropolitan France, re-created by a split after 2018, e.g.
    85165 L'Oie) cannot be placed: they are not demand units, and their population
    (5 245 inhabitants) is listed in ``attrs["communes_without_polygon"]`` and in a log
    warning.

    Parameters
    ----------
    data_dir : DataDir, path or None
        Data directory (:func:`cnfs_geo.catalog.resolve_data_dir`); holds the COG 2026
        (``cog/communes.json``) and, unless ``path`` is given, the national archive
        ``communes/france-geojson_departements_communes_adminexpress-cog2018.tar.gz``
        (its 96 metropolitan ``communes-<dep>-*.geojson`` members are read with
        :func:`cnfs_geo.sources.polygons.read_polygons_archive`).
    path : path, optional
        A GeoJSON of 2018 commune polygons (properties ``code``, ``nom``) to read instead
        of the archive, e.g. ``communes/communes-pays-de-la-loire_adminexpress-cog2018.geojson``.

    Returns
    -------
    GeoDataFrame
        Index ``code_2018`` (str, sorted). Columns ``nom``, ``departement`` (of the 2018
        code), ``insee`` (current commune, COG 2026), ``population`` (float, area share of
        the current commune's population), ``area_km2``, ``ref_x``, ``ref_y``
        (representative point), ``geometry`` (polygon). CRS EPSG:2154 (Lambert-93).
        ``attrs``: ``source``, ``communes_without_polygon`` (code → population),
        ``population_left_out``.

    Raises
    ------
    DataFileError
        Missing files.
    MissingColumnError
        Polygons without ``code``.
    UnknownCodeError
        2018 codes unknown to the COG 2026.
    ValidationError
        Duplicated 2018 codes, an archive without metropolitan member.
    """
    dd = data_dir if isinstance(data_dir, catalog.DataDir) else catalog.resolve_data_dir(data_dir)
    if path is None:
        source = dd.file("communes_2018_archive")
        metro = [d for d in _polygon_source.archive_departements(source) if _is_metropolitan(d)]
        if not metro:
            raise ValidationError(
                str(source),
                ["no metropolitan member departements/<dep>-<name>/communes-<dep>-*.geojson"],
            )
        polys = _polygon_source.read_polygons_archive(source, metro)
    else:
        source = Path(path)
        polys = _polygon_source.read_polygons(source)
        polys["departement"] = polys["code"].str[:2]
    dup = polys["code"][polys["code"].duplicated()]
    if len(dup):
        raise ValidationError(str(source), [f"duplicated 2018 code(s) {sample_text(dup.unique())}"])
    polys = polys.to_crs(METROPOLE_CRS).sort_values("code").reset_index(drop=True)
    polys["geometry"] = polys.geometry.make_valid()
    return demand_units_from_polygons(
        polys, territory.current_code_map(dd), territory.cog_communes(dd), source=str(source)
    )


def demand_units_from_polygons(
    polys: gpd.GeoDataFrame,
    code_map: dict[str, str],
    cog: pd.DataFrame,
    *,
    source: str = "polygons",
) -> gpd.GeoDataFrame:
    """National demand units from 2018 polygons (the transform of :func:`demand_units_cog2018`).

    Parameters
    ----------
    polys : GeoDataFrame
        2018 polygons: ``code`` (unique), ``nom``, ``departement``, ``geometry`` (valid,
        projected CRS), in the order of the output.
    code_map : dict
        Any commune code → current code (:func:`cnfs_geo.territory.current_code_map`).
    cog : pandas.DataFrame
        COG 2026 records (:func:`cnfs_geo.sources.cog.read_cog_communes`).
    source : str, keyword-only
        Where the polygons were read (messages, ``attrs["source"]``).

    Returns
    -------
    GeoDataFrame
        As :func:`demand_units_cog2018`, in the CRS of ``polys``.
    """
    current = cog[cog["type"] == "commune-actuelle"].drop_duplicates("code").set_index("code")
    insee = polys["code"].map(code_map)
    unknown = polys["code"][insee.isna()]
    if len(unknown):
        raise UnknownCodeError(
            source,
            [
                f"{len(unknown)} 2018 commune code(s) unknown to the COG 2026 "
                f"(neither current, délégué/associé nor a former code of a current commune): "
                f"{sample_text(unknown)}; fix: use the COG 2026 communes.json with "
                "anciensCodes, or add those codes to the code mapping (cnfs_geo.territory)"
            ],
        )
    area = polys.geometry.area.to_numpy()
    share = area / pd.Series(area).groupby(insee.to_numpy()).transform("sum").to_numpy()
    pop = pd.to_numeric(current["population"], errors="coerce").reindex(insee).to_numpy(float)
    no_pop = ~np.isfinite(pop)
    population = np.where(no_pop, 0.0, pop * share)
    if no_pop.any():
        log.warning(
            "demand_units_cog2018: %d unit(s) map to a current commune without population: %s",
            int(no_pop.sum()),
            sample_text(polys["code"][no_pop]),
        )
    deps = set(polys["departement"])
    here = current[current["departement"].isin(deps)]
    without = here.index.difference(pd.Index(insee.dropna().unique()))
    left = {
        c: float(pd.to_numeric(here.loc[c, "population"], errors="coerce") or 0.0)
        for c in sorted(without)
    }
    if left:
        log.warning(
            "demand_units_cog2018: %d current commune(s) have no 2018 polygon (split "
            "after 2018); their %.0f inhabitants are left out: %s",
            len(left),
            sum(left.values()),
            sample_text(left),
        )
    rep = polys.geometry.representative_point()
    out = gpd.GeoDataFrame(
        {
            "nom": polys["nom"].to_numpy(dtype=object),
            "departement": polys["departement"].to_numpy(dtype=object),
            "insee": insee.to_numpy(dtype=object),
            "population": population,
            "area_km2": area / 1e6,
            "ref_x": rep.x.to_numpy(),
            "ref_y": rep.y.to_numpy(),
        },
        geometry=polys.geometry.to_numpy(),
        crs=polys.crs,
        index=pd.Index(polys["code"].to_numpy(dtype=object), name="code_2018"),
    )
    out.attrs.update(
        {
            "source": source,
            "communes_without_polygon": left,
            "population_left_out": float(sum(left.values())),
        }
    )
    log.info(
        "demand_units_cog2018: %d units, %.0f inhabitants (%d départements)",
        len(out),
        float(population.sum()),
        len(deps),
    )
    return out
