"""Communes at the current COG, EPCI and département outline.

Communes and populations come from the COG 2026 (``cog/communes.json``). Their
polygons come from ADMIN EXPRESS COG 2018: each 2018 code is mapped to its
current commune (itself, or the ``chefLieu`` of its ``commune-deleguee`` /
``commune-associee`` row) and the pieces are dissolved. A code that cannot be
mapped, or a current commune left without polygon, is an error naming the codes.

The point used for travel from a commune is the **representative point** of its
polygon (``shapely.Polygon.representative_point``: always inside the polygon,
unlike the centroid of a crescent-shaped commune). The chef-lieu point (town
hall area, ``lat``/``lng`` of the datas.fun commune file) is kept as
``chef_lieu_x``/``chef_lieu_y`` and used for candidate host sites.
"""

from __future__ import annotations

import io
import json
import logging
import re
import tarfile
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from . import catalog
from ._errors import DataFileError, UnknownDepartementError, ValidationError
from .settings import GEOGRAPHIC_CRS, working_crs

log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _read_json(path: Path) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise DataFileError(f"{path}: cannot be read as JSON ({exc}). Fix: restore the file "
                            "from its source (see data/README.md).") from exc


def cog_communes(data_dir: catalog.DataDir) -> pd.DataFrame:
    """All COG 2026 commune records (actuelles, déléguées, associées, arrondissements).

    Returns a DataFrame with columns ``code, nom, type, departement, population,
    chefLieu`` (string codes).
    """
    path = data_dir.file("cog_communes")
    df = pd.DataFrame(_read_json(path))
    missing = {"code", "nom", "type", "departement"} - set(df.columns)
    if missing:
        raise ValidationError(str(path), [f"missing field(s) {sorted(missing)}: expected the "
                                          "@etalab/decoupage-administratif communes.json format"])
    for col in ("population", "chefLieu"):
        if col not in df.columns:
            df[col] = np.nan
    return df[["code", "nom", "type", "departement", "population", "chefLieu"]]


def departement_codes(data_dir: catalog.DataDir) -> list[str]:
    """Département codes known to the COG of ``data_dir``."""
    cog = cog_communes(data_dir)
    return sorted(cog.loc[cog["type"] == "commune-actuelle", "departement"].dropna().unique())


def check_departement(departement: str, data_dir: catalog.DataDir) -> str:
    """Normalise and check a département code; raise UnknownDepartementError if unknown."""
    code = str(departement).strip().upper()
    if re.fullmatch(r"\d", code):
        code = "0" + code
    if data_dir.is_bundle and code != catalog.BUNDLE_DEPARTEMENT:
        raise DataFileError(
            f"département {code}: the embedded bundle only holds Maine-et-Loire (49).\n"
            + catalog.missing_files_message(
                ["cog_communes", "cog_epci", "communes_2018_archive", "france_services",
                 "cnfs_permanences", "aidants_connect", "fibre", "ifn_communes",
                 "datasfun_communes"], data_dir))
    known = departement_codes(data_dir)
    if code not in known:
        raise UnknownDepartementError(
            "departement", [f"{departement!r} is not a département code of the COG 2026 "
                            f"(known: {', '.join(known[:5])} … {', '.join(known[-5:])}); use the "
                            "INSEE code, e.g. 49, 2A, 974"])
    return code


def current_code_map(data_dir: catalog.DataDir) -> dict[str, str]:
    """Map every commune code known to the COG (old or current) to its current code.

    Current communes map to themselves; ``commune-deleguee`` and
    ``commune-associee`` codes map to their ``chefLieu``. Arrondissements
    municipaux map to themselves.
    """
    cog = cog_communes(data_dir)
    mapping: dict[str, str] = {}
    old = cog[cog["type"].isin(["commune-deleguee", "commune-associee"])]
    mapping.update(zip(old["code"], old["chefLieu"]))
    current = cog[cog["type"].isin(["commune-actuelle", "arrondissement-municipal"])]
    mapping.update(zip(current["code"], current["code"]))  # current wins over délégué rows
    return mapping


def _polygons_2018(departement: str, data_dir: catalog.DataDir) -> tuple[gpd.GeoDataFrame, Path]:
    """COG 2018 commune polygons of one département, from the per-département file or the archive."""
    single = sorted((data_dir.path / "communes").glob(f"communes-{departement}-*_adminexpress-cog2018.geojson"))
    if single:
        return gpd.read_file(single[0]), single[0]
    archive = data_dir.file("communes_2018_archive")
    with tarfile.open(archive, "r:gz") as tar:
        pattern = re.compile(rf"departements/{re.escape(departement)}-[^/]+/communes-{re.escape(departement)}-[^/]+\.geojson$")
        members = [m for m in tar.getmembers() if pattern.search(m.name)]
        if not members:
            raise DataFileError(f"{archive}: no commune polygons for département {departement} "
                                "(expected a member departements/<code>-<name>/communes-<code>-<name>.geojson)")
        data = tar.extractfile(members[0]).read()
    return gpd.read_file(io.BytesIO(data)), archive


def communes_from_cog(departement: str, data_dir: catalog.DataDir) -> gpd.GeoDataFrame:
    """Current communes of a département with polygons, population and EPCI.

    Parameters
    ----------
    departement : str
        INSEE département code ("49", "2A", "974").
    data_dir : DataDir
        From :func:`cnfs_geo.catalog.resolve_data_dir`.

    Returns
    -------
    GeoDataFrame
        Index ``insee`` (str, COG 2026). Columns ``nom``, ``departement``, ``epci``
        (SIREN str), ``epci_nom``, ``population`` (int, COG 2026 populations
        légales), ``area_km2``, ``density`` (inhabitants/km²), ``ref_x``/``ref_y``
        (representative point, working CRS), ``chef_lieu_x``/``chef_lieu_y``
        (chef-lieu point, working CRS; representative point where unknown),
        ``chef_lieu_source`` and ``codes_2018`` (the 2018 polygons dissolved into
        it), ``geometry`` (polygon in :func:`cnfs_geo.settings.working_crs`).
        Sorted by ``insee``.

    Examples
    --------
    >>> from cnfs_geo import catalog, territory
    >>> c = territory.communes_from_cog("49", catalog.resolve_data_dir())
    >>> len(c), int(c["population"].sum())
    (176, 833776)
    """
    dep = check_departement(departement, data_dir)
    crs = working_crs(dep)
    cog = cog_communes(data_dir)
    current = cog[(cog["type"] == "commune-actuelle") & (cog["departement"] == dep)].copy()
    bad_pop = current[pd.to_numeric(current["population"], errors="coerce").isna()]
    if len(bad_pop):
        raise ValidationError(str(data_dir.file("cog_communes")), [
            f"commune {r.code} ({r.nom}): population is missing or not a number; fix the COG "
            "file (populations légales)" for r in bad_pop.itertuples()])
    current["population"] = current["population"].astype(int)

    polys, poly_path = _polygons_2018(dep, data_dir)
    if "code" not in polys.columns:
        raise ValidationError(str(poly_path), ["missing property 'code' (INSEE code of each polygon)"])
    mapping = current_code_map(data_dir)
    polys["insee"] = polys["code"].map(mapping)
    unmapped = polys[polys["insee"].isna()]
    if len(unmapped):
        raise ValidationError(str(poly_path), [
            f"2018 commune {r.code} ({r.nom}) has no current commune in the COG 2026 (neither "
            "current nor délégué/associé with a chefLieu); add it to the code mapping"
            for r in unmapped.itertuples()])
    outside = polys[~polys["insee"].isin(current["code"])]
    if len(outside):
        log.info("%d polygon(s) of %s map to communes of another département: %s", len(outside),
                 poly_path.name, sorted(outside["code"]))
        polys = polys[polys["insee"].isin(current["code"])]
    polys = polys.set_crs(GEOGRAPHIC_CRS, allow_override=polys.crs is None).to_crs(crs)
    codes_2018 = polys.groupby("insee")["code"].apply(lambda s: ",".join(sorted(s)))
    dissolved = polys[["insee", "geometry"]].dissolve(by="insee")
    missing_poly = sorted(set(current["code"]) - set(dissolved.index))
    if missing_poly:
        raise ValidationError(str(poly_path), [
            f"current commune {c} has no 2018 polygon (created by a split after 2018?); newer "
            "polygons are needed for it" for c in missing_poly])

    communes = gpd.GeoDataFrame(
        current.set_index("code")[["nom", "departement", "population"]]
        .join(dissolved, how="left"), geometry="geometry", crs=crs)
    communes.index.name = "insee"
    communes["codes_2018"] = codes_2018.reindex(communes.index)
    communes["geometry"] = communes.geometry.make_valid()

    # EPCI membership (COG 2026)
    membership = epci_membership(data_dir)
    communes["epci"] = membership["epci"].reindex(communes.index)
    communes["epci_nom"] = membership["epci_nom"].reindex(communes.index)
    no_epci = communes.index[communes["epci"].isna()].tolist()
    if no_epci:
        # Islands without EPCI (Île-de-Sein, Ouessant, Bréhat, Île-d'Yeu) are legal exceptions.
        log.warning("département %s: %d commune(s) belong to no EPCI: %s", dep, len(no_epci), no_epci)
        communes["epci"] = communes["epci"].fillna("sans EPCI")
        communes["epci_nom"] = communes["epci_nom"].fillna("Commune isolée (sans EPCI)")

    communes["area_km2"] = communes.geometry.area / 1e6
    communes["density"] = communes["population"] / communes["area_km2"]
    rep = communes.geometry.representative_point()
    communes["ref_x"], communes["ref_y"] = rep.x, rep.y

    cl = chef_lieu_points(dep, data_dir, mapping)
    pts = gpd.GeoSeries(gpd.points_from_xy(cl["lng"], cl["lat"]), index=cl.index,
                        crs=GEOGRAPHIC_CRS).to_crs(crs)
    pts = pts.reindex(communes.index)
    inside = pts.notna() & pts.within(communes.geometry.buffer(500))
    communes["chef_lieu_x"] = np.where(inside, pts.x, communes["ref_x"])
    communes["chef_lieu_y"] = np.where(inside, pts.y, communes["ref_y"])
    communes["chef_lieu_source"] = np.where(inside, "chef-lieu (datas.fun)", "point représentatif")
    if (~inside).any():
        log.info("département %s: %d commune(s) without a usable chef-lieu point use the "
                 "representative point: %s", dep, int((~inside).sum()),
                 communes.index[~inside].tolist())
    communes = communes.sort_index()
    log.info("territory %s: %d communes, %d inhabitants, %d COG-2018 polygons dissolved",
             dep, len(communes), int(communes["population"].sum()), len(polys))
    return communes[["nom", "departement", "epci", "epci_nom", "population", "area_km2", "density",
                     "ref_x", "ref_y", "chef_lieu_x", "chef_lieu_y", "chef_lieu_source",
                     "codes_2018", "geometry"]]


def epci_membership(data_dir: catalog.DataDir) -> pd.DataFrame:
    """Commune → EPCI (COG 2026). Index commune code; columns ``epci``, ``epci_nom``."""
    path = data_dir.file("cog_epci")
    rows = [(m["code"], e["code"], e["nom"]) for e in _read_json(path) for m in e.get("membres", [])]
    df = pd.DataFrame(rows, columns=["insee", "epci", "epci_nom"])
    dup = df[df["insee"].duplicated(keep=False)]
    if len(dup):
        raise ValidationError(str(path), [f"commune {c} belongs to several EPCI" for c in sorted(set(dup["insee"]))])
    return df.set_index("insee")


def epci_table(data_dir: catalog.DataDir) -> pd.DataFrame:
    """Identity of every EPCI: ``epci`` (SIREN), ``nom``, ``type``, ``population_totale``,
    ``n_membres`` (whole EPCI, all départements)."""
    recs = _read_json(data_dir.file("cog_epci"))
    return pd.DataFrame([{"epci": e["code"], "nom": e["nom"], "type": e.get("type"),
                          "population_municipale_epci": e.get("populationMunicipale"),
                          "n_membres": len(e.get("membres", []))} for e in recs]).set_index("epci")


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
    g = communes.dissolve(by="epci", aggfunc={"population": "sum", "nom": "count"})
    g = g.rename(columns={"nom": "n_communes"})
    ident = epci_table(data_dir)
    g = g.join(ident, how="left")
    g["nom"] = g["nom"].fillna(communes.groupby("epci")["epci_nom"].first())
    g["straddles"] = g["n_membres"].fillna(0).astype(int) > g["n_communes"]
    return g[["nom", "type", "population", "n_communes", "n_membres",
              "population_municipale_epci", "straddles", "geometry"]].sort_index()


def departement_outline(communes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The département polygon, dissolved from its communes (one row, index = code)."""
    out = communes[["departement", "population", "geometry"]].dissolve(by="departement",
                                                                       aggfunc="sum")
    return out


def chef_lieu_points(departement: str, data_dir: catalog.DataDir,
                     mapping: dict[str, str] | None = None) -> pd.DataFrame:
    """Chef-lieu ``lat``/``lng`` per current commune code (datas.fun, COG 2024 codes mapped).

    Missing file → empty frame (communes then use their representative point).
    """
    path = data_dir.file("datasfun_communes", required=False)
    if path is None:
        log.warning("%s not found: communes use their representative point as host site",
                    catalog.SOURCES["datasfun_communes"].relpath)
        return pd.DataFrame(columns=["lat", "lng"], dtype=float)
    df = pd.read_csv(path, dtype=str)
    df = df[(df["insee_dep"] == departement) & (df["commune_type"] == "COM")]
    mapping = mapping or current_code_map(data_dir)
    df = df.assign(insee=df["insee_com"].map(mapping).fillna(df["insee_com"]))
    # a commune nouvelle absorbing a 2024 commune keeps its own chef-lieu when both exist
    df = df.assign(_own=(df["insee"] == df["insee_com"])).sort_values(["insee", "_own"],
                                                                      ascending=[True, False])
    df = df.drop_duplicates("insee")
    out = df.set_index("insee")[["lat", "lng"]].apply(pd.to_numeric, errors="coerce").dropna()
    return out
