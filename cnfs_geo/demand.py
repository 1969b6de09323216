"""Demand units finer than the commune: IRIS and the communes of 2018.

A commune is not a point: Maine-et-Loire's communes nouvelles reach 320 km²
(Chemillé-en-Anjou). :func:`demand_units` splits the communes' population and
need into smaller units, each with its own representative point, so that travel
times are measured from where people live:

``"commune"``
    The communes themselves (COG 2026), unchanged.
``"iris"``
    The IRIS of La MedNum's 2020 *indice de fragilité numérique* file (INSEE
    2016 geography and population ``P16 Pop``). IRIS codes → commune code (first
    five characters, column ``COM``) → current commune through
    :func:`cnfs_geo.territory.current_code_map`. The COG 2026 population of each
    commune is split by each unit's share of the commune's 2016 population.
    An IRIS « commune non découpée en IRIS » (code ``…0000``) stands for a whole
    2016 commune: it takes the 2018 polygon of that commune (the file's contour
    can be older: Gennes-Val-de-Loire's covers 18 % of the commune). IRIS
    polygons of split communes are clipped to their commune. A 2018 commune
    less than half covered by the IRIS of its current commune has no IRIS row (its
    IRIS were lost when it merged): it becomes a ``commune2018`` unit carrying the
    rest of the COG 2026 population (COG 2026 − Σ P16 of the commune's IRIS,
    split by area; by the IRIS density when that rest is ≤ 0). A commune with no
    IRIS at all is one ``commune`` unit (in 49: 49018, 49228, 49248, 49307).
``"commune2018"``
    The ADMIN EXPRESS COG 2018 polygons (183 in 49): the old communes inside
    communes merged since 2018. The population is split by the IRIS units
    intersecting each polygon (areal weighting of the units above) or by area.
    datas.fun's ``COMD`` rows cannot be used: they repeat the commune nouvelle's
    totals (e.g. 21 386 inhabitants for « Chemillé », the whole Chemillé-en-Anjou).

Need (need-weighted population) of each commune is split with ``need_split``:
``"uniform"`` (population × commune need index / 10) or ``"iris"`` (default when
IRIS are read): in proportion to population × the IRIS's MedNum 2020 score
(``SCORE GLOBAL departement 1``, 100 = département mean, higher = more fragile),
capped at the unit's population, so each commune keeps its total need and the
more fragile IRIS get more of it. Details: ``docs/methods_need.md``.
"""

from __future__ import annotations

import json
import logging
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape

from . import catalog, territory
from ._errors import DataFileError, ValidationError
from .settings import GEOGRAPHIC_CRS, working_crs

log = logging.getLogger(__name__)

UNIT_TYPES = ("commune", "iris", "commune2018")

# Columns of the MedNum IRIS file that cnfs_geo reads (header file name → our name).
# The embedded bundle keeps only these (the other columns are left empty).
IRIS_COLUMNS = {
    "Code Iris": "iris",
    "COM": "com",
    "Libiris": "nom",
    "Libcom": "commune_nom",
    "Type Iris": "type_iris",
    "P16 Pop": "p16_pop",
    "SCORE GLOBAL departement 1": "score_mednum",
    "Part des personnes âgées de 65 ans / +": "part_65_plus",
    "Part des non ou peu diplômés dans la population non scolarisée de 15 ans ou plus":
        "part_peu_diplomes",
    "Geo Shape": "geometry",
}
# Identification columns also kept in the bundle (read by people, not by the code).
IRIS_KEPT_EXTRA = ["Iris", "Insee Com", "Nom Com", "Nom Iris", "Insee Dep"]

IRIS_RELPATH = "socio/mednum_indice-fragilite-numerique_iris_dep{dep}_2020.csv"
_IRIS_UPSTREAM = ("https://raw.githubusercontent.com/team-48/inr-indice-fragilite/"
                  "4d86e8dedee8d0f07461d484f2240addc4431afd/infrastructure/cities/data/"
                  "dept_list/{dep}.csv")

# A 2018 commune whose polygon is less than this share covered by the IRIS units of
# its current commune has no IRIS of its own and becomes a unit.
MIN_COVERED_SHARE = 0.5

LABELS = {
    "commune": "Communes (COG 2026) : population légale, point représentatif",
    "iris": ("IRIS 2016 (La MedNum 2020) : population COG 2026 répartie au prorata de la "
             "population 2016 ; communes 2018 sans IRIS et communes sans IRIS à part"),
    "commune2018": "Communes de 2018 (ADMIN EXPRESS COG 2018) : population COG 2026 répartie",
}
_SPLIT_LABELS = {"iris": "par les IRIS (population 2016)", "area": "par la surface"}
_NEED_LABELS = {"iris": "besoin réparti selon le score MedNum 2020 des IRIS",
                "uniform": "besoin = population × indice de la commune / 10"}

COLUMNS = ["insee", "unit_type", "nom", "commune_nom", "population", "population_basis",
           "score_mednum", "need", "need_index", "area_km2", "x", "y", "geometry"]


# ---------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------

def _iris_path(dep: str, data_dir: catalog.DataDir):
    if dep == catalog.BUNDLE_DEPARTEMENT:
        return data_dir.file("mednum_iris_49")
    path = data_dir.path / IRIS_RELPATH.format(dep=dep)
    if not path.is_file():
        raise DataFileError(
            f"missing IRIS file for département {dep}: {path}\n"
            f"  La MedNum 2020 IRIS file, one per département; download "
            f"{_IRIS_UPSTREAM.format(dep=dep)} and save it as {path} (with "
            f"{catalog.SOURCES['mednum_iris_headers'].relpath} beside it), or use "
            "unit=\"commune\".")
    return path


def _read_headers(data_dir: catalog.DataDir) -> list[str]:
    path = data_dir.file("mednum_iris_headers")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path}: cannot be read ({exc}); restore it from its source "
                            "(data/README.md)") from exc
    names = text.rstrip("\r\n").split(";")
    missing = [c for c in IRIS_COLUMNS if c not in names]
    if missing:
        raise ValidationError(str(path), [f"missing column name {c!r}" for c in missing]
                              + ["expected the ';'-separated header line of the MedNum IRIS "
                                 "files (152 names); is this the right file?"])
    return names


def iris_from_mednum(departement: str, data_dir: catalog.DataDir) -> gpd.GeoDataFrame:
    """IRIS of a département from La MedNum's 2020 fragility file.

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
        Index ``iris`` (9-character IRIS code, sorted). Columns ``com`` (commune code
        of the file's vintage), ``nom`` (IRIS name), ``commune_nom``, ``type_iris``,
        ``p16_pop`` (float, population 2016), ``score_mednum`` (MedNum global score
        relative to the département, 100 = mean, NaN when blank), ``part_65_plus``,
        ``part_peu_diplomes`` (rates 0–1), ``geometry`` (IRIS polygon from
        ``Geo Shape``, in the département's working CRS).

    Raises
    ------
    DataFileError
        File missing (the message gives its upstream address).
    ValidationError
        Wrong number of columns, duplicate IRIS code, code not starting with its
        commune code, population not a number ≥ 0, unreadable ``Geo Shape``
        (every problem listed, naming the IRIS code).

    Examples
    --------
    >>> from cnfs_geo import catalog, demand
    >>> iris = demand.iris_from_mednum("49", catalog.resolve_data_dir())
    >>> len(iris), iris["com"].nunique()
    (357, 173)
    """
    dep = str(departement).strip().upper()
    path = _iris_path(dep, data_dir)
    names = _read_headers(data_dir)
    try:
        df = pd.read_csv(path, sep=";", header=None, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValidationError(str(path), [f"cannot be read as ';'-separated CSV ({exc}); "
                                          "restore the file from its source"]) from exc
    if df.shape[1] != len(names):
        raise ValidationError(str(path), [
            f"{df.shape[1]} columns but the header file names {len(names)}; the IRIS file has "
            "no header row and must have exactly the columns of the header file"])
    df.columns = names
    df = df[list(IRIS_COLUMNS)].rename(columns=IRIS_COLUMNS)
    df["iris"] = df["iris"].str.strip()
    df["com"] = df["com"].str.strip()
    problems: list[str] = []
    dup = sorted(set(df.loc[df["iris"].duplicated(), "iris"]))
    problems += [f"IRIS {c}: appears more than once" for c in dup]
    bad_code = df[(df["iris"].str.len() != 9) | (df["iris"].str[:5] != df["com"])]
    problems += [f"IRIS {r.iris!r}: not a 9-character code starting with its commune code "
                 f"COM={r.com!r}" for r in bad_code.itertuples()]
    pop = pd.to_numeric(df["p16_pop"], errors="coerce")
    problems += [f"IRIS {c}: P16 Pop {v!r} is not a number ≥ 0"
                 for c, v in zip(df.loc[~(pop >= 0), "iris"], df.loc[~(pop >= 0), "p16_pop"])]
    geoms = []
    for code, text in zip(df["iris"], df["geometry"]):
        try:
            g = shape(json.loads(text))
            if g.geom_type not in ("Polygon", "MultiPolygon") or g.is_empty:
                raise ValueError(f"geometry type {g.geom_type}")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            problems.append(f"IRIS {code}: Geo Shape is not a GeoJSON polygon ({exc})")
            g = None
        geoms.append(g)
    if problems:
        raise ValidationError(str(path), problems + [
            "fix these rows or restore the file from its source (data/README.md)"])
    df["p16_pop"] = pop
    for col in ("score_mednum", "part_65_plus", "part_peu_diplomes"):
        df[col] = pd.to_numeric(df[col].replace("", np.nan), errors="coerce")
    if df["score_mednum"].isna().any():
        log.info("%s: %d IRIS without MedNum score (their commune's mean is used)", path.name,
                 int(df["score_mednum"].isna().sum()))
    out = gpd.GeoDataFrame(df.drop(columns="geometry"), geometry=geoms, crs=GEOGRAPHIC_CRS)
    out["geometry"] = out.geometry.make_valid()
    out = out.set_index("iris").sort_index().to_crs(working_crs(dep))
    log.info("IRIS %s: %d IRIS of %d commune codes, population 2016 %.0f", dep, len(out),
             out["com"].nunique(), out["p16_pop"].sum())
    return out


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
        Index ``code_2018`` (sorted). Columns ``nom`` (2018 name), ``insee`` (COG 2026
        commune it belongs to), ``geometry`` (working CRS).

    Examples
    --------
    >>> from cnfs_geo import catalog, demand
    >>> p = demand.commune2018_polygons("49", catalog.resolve_data_dir())
    >>> len(p), p["insee"].nunique()
    (183, 176)
    """
    dep = str(departement).strip().upper()
    return _commune2018_polygons(dep, data_dir, territory.current_code_map(data_dir))


def _commune2018_polygons(dep: str, data_dir: catalog.DataDir,
                          mapping: dict[str, str]) -> gpd.GeoDataFrame:
    polys, path = territory._polygons_2018(dep, data_dir)
    missing = {"code", "nom"} - set(polys.columns)
    if missing:
        raise ValidationError(str(path), [f"missing property {m!r}" for m in sorted(missing)])
    polys = polys.assign(insee=polys["code"].map(mapping))
    bad = polys[polys["insee"].isna()]
    if len(bad):
        raise ValidationError(str(path), [
            f"2018 commune {r.code} ({r.nom}) has no current commune in the COG 2026; add it "
            "to the code mapping" for r in bad.itertuples()])
    polys = polys.set_crs(GEOGRAPHIC_CRS, allow_override=polys.crs is None).to_crs(
        working_crs(dep))
    polys["geometry"] = polys.geometry.make_valid()
    out = polys.rename(columns={"code": "code_2018"}).set_index("code_2018")[
        ["nom", "insee", "geometry"]].sort_index()
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


def _check_communes(communes: gpd.GeoDataFrame) -> str:
    problems = []
    if not isinstance(communes, gpd.GeoDataFrame):
        raise ValidationError("communes", ["is not a GeoDataFrame; pass the output of "
                                           "cnfs_geo.need.need_from_sources"])
    missing = [c for c in ("nom", "departement", "population", "need") if c not in communes]
    problems += [f"missing column {c!r}" for c in missing]
    if communes.crs is None:
        problems.append("has no CRS; use territory.communes_from_cog (working CRS)")
    if not communes.index.is_unique:
        problems.append("index (insee) has duplicates")
    if missing:
        problems.append("pass the output of cnfs_geo.need.need_from_sources")
    if problems:
        raise ValidationError("communes", problems)
    pop = pd.to_numeric(communes["population"], errors="coerce")
    need = pd.to_numeric(communes["need"], errors="coerce")
    bad = communes.index[pop.isna() | (pop < 0) | need.isna() | (need < 0)].tolist()
    if bad:
        raise ValidationError("communes", [f"commune {c}: population or need is missing or "
                                           "negative" for c in bad])
    deps = sorted(communes["departement"].astype(str).unique())
    if len(deps) != 1:
        raise ValidationError("communes", [f"holds communes of {len(deps)} départements {deps}; "
                                           "build demand units one département at a time"])
    return deps[0]


def _iris_units(communes: gpd.GeoDataFrame, data_dir: catalog.DataDir, dep: str,
                need_split: str) -> gpd.GeoDataFrame:
    iris = iris_from_mednum(dep, data_dir).to_crs(communes.crs)
    mapping = territory.current_code_map(data_dir)
    iris["insee"] = iris["com"].map(mapping)
    unknown = iris[iris["insee"].isna()]
    if len(unknown):
        raise ValidationError(str(_iris_path(dep, data_dir)), [
            f"IRIS {i}: commune code {r.com} is unknown to the COG 2026 (neither current nor "
            "délégué/associé); add it to the code mapping" for i, r in unknown.iterrows()])
    outside = iris[~iris["insee"].isin(communes.index)]
    if len(outside):
        log.info("IRIS: %d IRIS belong to communes not in `communes` and are not used: %s",
                 len(outside), sorted(set(outside["insee"]))[:10])
    iris = iris[iris["insee"].isin(communes.index)].copy()
    polys = _commune2018_polygons(dep, data_dir, mapping).to_crs(communes.crs)
    polys = polys[polys["insee"].isin(communes.index)]
    cgeom = communes.geometry

    # geometry of each IRIS unit
    whole = (iris.index.str.endswith("0000") & iris["com"].isin(polys.index)
             & (iris["com"].map(polys["insee"]) == iris["insee"]))
    clipped = iris.geometry.intersection(
        gpd.GeoSeries(cgeom.reindex(iris["insee"]).to_numpy(), index=iris.index, crs=iris.crs))
    geom = clipped.where(clipped.area > 0, iris.geometry)
    geom = geom.where(~whole, gpd.GeoSeries(
        polys.geometry.reindex(iris["com"]).to_numpy(), index=iris.index, crs=iris.crs))
    if (clipped.area <= 0).any():
        log.warning("IRIS outside their commune (kept unclipped): %s",
                    iris.index[clipped.area <= 0].tolist())
    iris = iris.set_geometry(geom)

    rows = []
    for insee, c in communes.iterrows():
        pop_c, need_c = float(c["population"]), float(c["need"])
        own = iris[iris["insee"] == insee]
        units = []  # (unit_id, unit_type, nom, geometry, weight, basis, score)
        if own.empty:
            units.append((insee, "commune", c["nom"], c.geometry, 1.0,
                          "commune entière (aucun IRIS)", np.nan))
        else:
            covered = shapely.union_all(own.geometry.to_numpy())
            for code, r in own.iterrows():
                basis = ("P16 IRIS (commune non découpée, contour 2018)" if whole[code]
                         else "P16 IRIS")
                units.append((code, "iris", r["nom"], r.geometry, float(r["p16_pop"]), basis,
                              r["score_mednum"]))
            rest = []
            for code, p in polys[polys["insee"] == insee].iterrows():
                share = p.geometry.intersection(covered).area / p.geometry.area
                if share < MIN_COVERED_SHARE:
                    g = p.geometry.difference(covered)
                    rest.append((code, p["nom"], g if g.area > 0 else p.geometry))
            if rest:
                p16 = float(own["p16_pop"].sum())
                areas = np.array([g.area for _, _, g in rest])
                residual = pop_c - p16
                if residual > 0:
                    w = residual * areas / areas.sum()
                    basis = "reste : population COG 2026 − P16 des IRIS, réparti par surface"
                else:
                    w = p16 * areas / covered.area
                    basis = "densité 2016 des IRIS de la commune × surface"
                    log.warning("commune %s: COG 2026 population ≤ 2016 population of its IRIS; "
                                "2018 communes without IRIS get the IRIS density", insee)
                units += [(code, "commune2018", nom, g, float(wi), basis, np.nan)
                          for (code, nom, g), wi in zip(rest, w)]
        weights = np.array([u[4] for u in units])
        if weights.sum() <= 0:
            weights = np.array([u[3].area for u in units])
            units = [u[:5] + ("surface (population 2016 nulle)",) + u[6:] for u in units]
        pops = pop_c * (weights / weights.sum())
        scores = np.array([u[6] for u in units], dtype=float)
        known = ~np.isnan(scores) & (pops > 0)
        mean_score = (np.average(scores[known], weights=pops[known]) if known.any()
                      else 100.0)
        scores_filled = np.where(np.isnan(scores), mean_score, scores)
        if need_split == "iris":
            needs = _capped_split(need_c, pops * scores_filled, pops)
        else:
            needs = need_c * pops / pop_c if pop_c > 0 else np.zeros(len(units))
        for u, p_u, n_u in zip(units, pops, needs):
            rows.append({"unit_id": u[0], "insee": insee, "unit_type": u[1], "nom": u[2],
                         "commune_nom": c["nom"], "population": p_u, "population_basis": u[5],
                         "score_mednum": u[6], "need": n_u, "geometry": u[3]})
    out = gpd.GeoDataFrame(rows, geometry="geometry", crs=communes.crs)
    if not out["unit_id"].is_unique:
        dup = out.loc[out["unit_id"].duplicated(), "unit_id"].tolist()
        raise ValidationError("demand units", [f"unit id {d} is used twice" for d in dup])
    counts = out["unit_type"].value_counts().to_dict()
    log.info("IRIS units %s: %s", dep, counts)
    return out


def _commune2018_units(communes: gpd.GeoDataFrame, data_dir: catalog.DataDir, dep: str,
                       population_from: str, need_split: str) -> gpd.GeoDataFrame:
    polys = commune2018_polygons(dep, data_dir).to_crs(communes.crs)
    polys = polys[polys["insee"].isin(communes.index)].copy()
    polys["area"] = polys.geometry.area
    if population_from == "iris":
        units = _iris_units(communes, data_dir, dep, need_split)
        units["u_area"] = units.geometry.area
        ov = gpd.overlay(units[["unit_id", "insee", "population", "need", "u_area", "geometry"]],
                         polys.reset_index()[["code_2018", "insee", "geometry"]],
                         how="intersection", keep_geom_type=True)
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
    rows = []
    for insee, group in polys.groupby("insee", sort=True):
        pop_c = float(communes.at[insee, "population"])
        need_c = float(communes.at[insee, "need"])
        w = group["w"].to_numpy(dtype=float)
        n = group["n"].to_numpy(dtype=float)
        basis = basis_split if len(group) > 1 else "commune entière"
        if w.sum() <= 0:
            w, basis = group["area"].to_numpy(dtype=float), "surface (population 2016 nulle)"
        pops = pop_c * (w / w.sum())
        if population_from == "area" or need_split == "uniform" or n.sum() <= 0:
            needs = need_c * pops / pop_c if pop_c > 0 else np.zeros(len(group))
        else:
            needs = _capped_split(need_c, n, pops)
        for (code, p), p_u, n_u in zip(group.iterrows(), pops, needs):
            rows.append({"unit_id": code, "insee": insee, "unit_type": "commune2018",
                         "nom": p["nom"], "commune_nom": communes.at[insee, "nom"],
                         "population": p_u, "population_basis": basis, "score_mednum": np.nan,
                         "need": n_u, "geometry": p.geometry})
    missing = sorted(set(communes.index) - set(polys["insee"]))
    if missing:
        raise ValidationError("communes", [f"commune {c}: no 2018 polygon; use unit='commune' "
                                           "or 'iris'" for c in missing])
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=communes.crs)


def demand_units(communes: gpd.GeoDataFrame, data_dir: catalog.DataDir, *,
                 unit: Literal["commune", "iris", "commune2018"] = "commune",
                 population_from: Literal["iris", "area"] = "iris",
                 need_split: Literal["iris", "uniform"] | None = None) -> gpd.GeoDataFrame:
    """Demand units (points of departure of the inhabitants) of a département.

    Parameters
    ----------
    communes : GeoDataFrame
        Output of :func:`cnfs_geo.need.need_from_sources` for one département: index
        ``insee``; columns ``nom``, ``departement``, ``population`` (COG 2026),
        ``need``, ``geometry`` (working CRS); ``ref_x``/``ref_y`` used when present.
    data_dir : DataDir
        From :func:`cnfs_geo.catalog.resolve_data_dir`.
    unit : {"commune", "iris", "commune2018"}, keyword-only
        Which units (module docstring).
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
        ``area_km2``, ``x``/``y`` (representative point of the unit, working CRS:
        EPSG:2154 in metropolitan France), ``geometry`` (polygon, working CRS).
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
    problems = []
    if unit not in UNIT_TYPES:
        problems.append(f"unit={unit!r}: use one of {list(UNIT_TYPES)}")
    if population_from not in ("iris", "area"):
        problems.append(f"population_from={population_from!r}: use 'iris' or 'area'")
    if need_split not in (None, "iris", "uniform"):
        problems.append(f"need_split={need_split!r}: use 'iris', 'uniform' or None")
    uses_iris = unit == "iris" or (unit == "commune2018" and population_from == "iris")
    if need_split == "iris" and not uses_iris:
        problems.append(f"need_split='iris' needs the IRIS file, not read for unit={unit!r}, "
                        f"population_from={population_from!r}; use need_split='uniform'")
    if problems:
        raise ValidationError("demand_units", problems)
    split = need_split or ("iris" if uses_iris else "uniform")
    dep = _check_communes(communes)

    if unit == "commune":
        out = gpd.GeoDataFrame({
            "unit_id": communes.index.astype(str), "insee": communes.index.astype(str),
            "unit_type": "commune", "nom": communes["nom"].to_numpy(),
            "commune_nom": communes["nom"].to_numpy(),
            "population": communes["population"].astype(float).to_numpy(),
            "population_basis": "population légale COG 2026", "score_mednum": np.nan,
            "need": communes["need"].astype(float).to_numpy()},
            geometry=communes.geometry.to_numpy(), crs=communes.crs)
        label = LABELS["commune"]
    elif unit == "iris":
        out = _iris_units(communes, data_dir, dep, split)
        label = f"{LABELS['iris']} ; {_NEED_LABELS[split]}"
    else:
        out = _commune2018_units(communes, data_dir, dep, population_from, split)
        label = (f"{LABELS['commune2018']} {_SPLIT_LABELS[population_from]} ; "
                 f"{_NEED_LABELS[split if population_from == 'iris' else 'uniform']}")

    index_c = (10.0 * communes["need"] / communes["population"].where(communes["population"] > 0)
               ).reindex(out["insee"]).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ni = np.where(out["population"] > 0, 10.0 * out["need"] / out["population"], index_c)
    out["need_index"] = ni
    out["area_km2"] = out.geometry.area / 1e6
    rep = out.geometry.representative_point()
    out["x"], out["y"] = rep.x.to_numpy(), rep.y.to_numpy()
    if unit == "commune" and {"ref_x", "ref_y"} <= set(communes.columns):
        out["x"] = communes["ref_x"].to_numpy(dtype=float)
        out["y"] = communes["ref_y"].to_numpy(dtype=float)
    out = out.sort_values(["insee", "unit_id"]).set_index("unit_id")[COLUMNS]
    out.attrs["demand_unit"] = label
    out.attrs["demand_unit_key"] = unit
    out.attrs["population_from"] = population_from if unit == "commune2018" else None
    out.attrs["need_split"] = split
    log.info("demand units (%s): %d units, population %.0f, need %.0f", unit, len(out),
             out["population"].sum(), out["need"].sum())
    return out
