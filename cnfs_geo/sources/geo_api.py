"""geo.api.gouv.fr *API Découpage administratif*: communes (contour, mairie, population,
EPCI), communes déléguées / associées and EPCI, as JSON responses, turned into the
contracts of the COG, polygon, chef-lieu and EPCI readers."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely.geometry

from .. import _fr
from .._errors import DataFileError, MissingColumnError, ValidationError
from ..settings import GEOGRAPHIC_CRS

#: ``fields`` asked of ``/communes`` (documented fields of the API).
COMMUNE_FIELDS = (
    "code,nom,type,codeDepartement,codeRegion,codeEpci,siren,codesPostaux,population,mairie,contour"
)
#: ``fields`` asked of ``/communes_associees_deleguees`` (``contour``: the IGN ADMIN EXPRESS
#: layer COMMUNE_ASSOCIEE_OU_DELEGUEE; the API gives no population and no mairie for them).
DELEGUEE_FIELDS = "code,nom,type,chefLieu,codeDepartement,contour"
#: A part of a commune that none of its contoured communes déléguées / associées covers is
#: a unit of its own when it is at least this share of the commune's area; smaller parts
#: are slivers between two generalised contour layers.
MIN_REMAINDER_SHARE = 0.01
#: ``fields`` asked of ``/epcis``.
EPCI_FIELDS = "code,nom,population"
#: ``fields`` asked of ``/communes?type=arrondissement-municipal``.
ARRONDISSEMENT_FIELDS = "code,nom,codeDepartement,codesPostaux,population"
#: The communes divided into arrondissements municipaux (COG), by département: the parent
#: of each arrondissement (the API does not give it).
ARRONDISSEMENT_PARENT = {"13": "13055", "69": "69123", "75": "75056"}

_REQUIRED = {
    "communes": ("code", "nom", "codeDepartement", "population", "contour"),
    "deleguees": ("code", "nom", "type", "chefLieu"),
    "epcis": ("code", "nom"),
    "arrondissements": ("code", "nom", "codeDepartement"),
}


def read_api_json(path: str | Path, kind: str) -> pd.DataFrame:
    """One JSON response of the API (``kind``: ``communes``, ``deleguees``, ``epcis`` or
    ``arrondissements``).

    Returns
    -------
    pandas.DataFrame
        One row per object of the JSON list, in response order; values as parsed
        (``contour``, ``mairie``, ``centre`` stay GeoJSON dicts).

    Raises
    ------
    DataFileError
        Not JSON (e.g. a truncated or HTML response).
    ValidationError
        Not a list of objects, or a required field is absent.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFileError(
            f"{path} : réponse illisible de l'API Découpage administratif ({exc}). "
            "Correctif : relancez `cnfs-geo data fetch`."
        ) from exc
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ValidationError(
            str(path), [f"expected a JSON list of objects ({kind}), got {type(data).__name__}"]
        )
    df = pd.DataFrame.from_records(data)
    required = _REQUIRED[kind]
    missing = [c for c in required if c not in df.columns] if len(df) else []
    if missing:
        raise MissingColumnError(
            str(path),
            [f"missing field(s) {missing}: ask the API for fields={','.join(required)}"],
        )
    if not len(df):
        df = pd.DataFrame(columns=list(required))
    return df


def cog_records_from_api(
    communes: pd.DataFrame,
    deleguees: pd.DataFrame,
    arrondissements: pd.DataFrame | None = None,
) -> list[dict]:
    """Records in the ``communes.json`` format of the COG reader (:mod:`.cog`).

    Current communes carry ``code``, ``nom``, ``type`` (``commune-actuelle``),
    ``departement``, ``region``, ``population``, ``codesPostaux``, ``siren``; communes
    déléguées / associées carry ``chefLieu`` (their current commune); arrondissements
    municipaux (Paris, Lyon, Marseille) carry ``commune`` (their commune,
    :data:`ARRONDISSEMENT_PARENT`) and ``codesPostaux``. Sorted by type then code, so the
    file is deterministic.
    """
    recs: list[dict] = []
    for r in communes.to_dict("records"):
        rec = {
            "code": str(r["code"]),
            "nom": r["nom"],
            "type": r.get("type") if isinstance(r.get("type"), str) else "commune-actuelle",
            "departement": str(r["codeDepartement"]),
            "region": r.get("codeRegion") if isinstance(r.get("codeRegion"), str) else None,
            "population": None if pd.isna(r["population"]) else int(r["population"]),
            "codesPostaux": list(r["codesPostaux"])
            if isinstance(r.get("codesPostaux"), list)
            else [],
        }
        if isinstance(r.get("siren"), str):
            rec["siren"] = r["siren"]
        recs.append(rec)
    dep_of = {r["code"]: r["departement"] for r in recs}
    for r in deleguees.to_dict("records"):
        chef = str(r["chefLieu"])
        dep = r.get("codeDepartement")
        recs.append(
            {
                "code": str(r["code"]),
                "nom": r["nom"],
                "type": r["type"],
                "departement": str(dep) if isinstance(dep, str) else dep_of.get(chef),
                "chefLieu": chef,
            }
        )
    arr = arrondissements if arrondissements is not None else pd.DataFrame()
    for r in arr.to_dict("records"):
        dep = str(r["codeDepartement"])
        rec = {
            "code": str(r["code"]),
            "nom": r["nom"],
            "type": "arrondissement-municipal",
            "departement": dep,
            "commune": ARRONDISSEMENT_PARENT.get(dep),
            "codesPostaux": list(r["codesPostaux"])
            if isinstance(r.get("codesPostaux"), list)
            else [],
        }
        pop = r.get("population")
        if pop is not None and not pd.isna(pop):
            rec["population"] = int(pop)
        recs.append(rec)
    return sorted(recs, key=lambda d: (d["type"] != "commune-actuelle", d["code"], d["type"]))


def polygons_from_api(communes: pd.DataFrame) -> gpd.GeoDataFrame:
    """Contours of the current communes in the contract of :func:`.polygons.read_polygons`.

    Returns
    -------
    GeoDataFrame
        Columns ``code`` (current INSEE code), ``nom``, ``geometry`` (EPSG:4326), sorted
        by code.

    Raises
    ------
    ValidationError
        A commune without contour (every such commune named).
    """
    bad = [r["code"] for r in communes.to_dict("records") if not isinstance(r["contour"], dict)]
    if bad:
        raise ValidationError(
            "API Découpage administratif",
            [f"commune {c}: no contour in the response; ask for fields=…,contour" for c in bad],
        )
    gdf = gpd.GeoDataFrame(
        {"code": communes["code"].astype(str), "nom": communes["nom"]},
        geometry=[shapely.geometry.shape(g) for g in communes["contour"]],
        crs=GEOGRAPHIC_CRS,
    )
    return gdf.sort_values("code").reset_index(drop=True)


def _remainder(
    code: str, nom: str, own: list, uncut: list[tuple[str, str]], extra: object
) -> tuple[str, str, str, object]:
    """The piece of commune ``code`` that none of its contoured déléguées ``own`` covers.

    Coded as the commune when no piece has its code (named after the déléguées without
    contour when the commune's own déléguée is one of them, else after the commune); else
    as the first déléguée without contour (named after them all); else (no such
    déléguée: a sliver beyond the threshold) merged into the piece of the commune's code,
    which is replaced in ``own`` and the returned tuple marked ``"merged"``.
    """
    names = _fr.join(n for _, n in uncut)
    if all(p[0] != code for p in own):
        return code, names if code in {c for c, _ in uncut} else nom, "reste", extra
    if uncut:
        return min(c for c, _ in uncut), names, "reste", extra
    k = next(i for i, p in enumerate(own) if p[0] == code)
    pc, pn, pt, pg = own[k]
    own[k] = (pc, pn, pt, shapely.union_all([pg, extra]))
    return pc, pn, "merged", extra


def unit_polygons_from_api(communes: pd.DataFrame, deleguees: pd.DataFrame) -> gpd.GeoDataFrame:
    """The finest polygons of the API, in the contract of :func:`.polygons.read_polygons`.

    A commune with communes déléguées / associées that have a ``contour`` is split into
    them, plus the part none of them covers when it is at least
    :data:`MIN_REMAINDER_SHARE` of the commune: the territory of a commune that absorbed
    communes associées, or of déléguées the API gives without contour (coded and named by
    :func:`_remainder`). Every other commune is one polygon. The result tiles the
    département like the COG 2018 polygons and is read as they are
    (``demand.commune2018_from_frame``).

    Returns
    -------
    GeoDataFrame
        Columns ``code`` (code of the commune déléguée / associée, or of the commune),
        ``nom``, ``type`` (``commune-deleguee``, ``commune-associee``,
        ``commune-actuelle`` or ``reste`` for a remainder), ``chefLieu`` (its current
        commune), ``geometry`` (EPSG:4326), sorted by chefLieu then code.

    Raises
    ------
    ValidationError
        A contour that is no polygon (every such déléguée named), or a code twice.
    """
    whole = polygons_from_api(communes).set_index("code")
    pieces: dict[str, list[tuple[str, str, str, object]]] = {}
    uncut: dict[str, list[tuple[str, str]]] = {}  # déléguées / associées without contour
    bad: list[str] = []
    for r in deleguees.to_dict("records"):
        chef = str(r["chefLieu"])
        if chef not in whole.index:
            continue  # a commune of another département
        if isinstance(r.get("contour"), dict):
            try:
                g = shapely.make_valid(shapely.geometry.shape(r["contour"]))
                if g.is_empty or g.area <= 0:
                    raise ValueError("empty or not a polygon")
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                bad.append(f"commune déléguée / associée {r['code']}: unreadable contour ({exc})")
                continue
            pieces.setdefault(chef, []).append((str(r["code"]), r["nom"], r["type"], g))
        else:
            uncut.setdefault(chef, []).append((str(r["code"]), str(r["nom"])))
    if bad:
        raise ValidationError(
            "API Découpage administratif (/communes_associees_deleguees)",
            bad + ["fix: run `cnfs-geo data fetch` again; report it to the API if it persists"],
        )
    rows = []
    for code, c in whole.iterrows():
        own = pieces.get(str(code), [])
        if not own:
            rows.append((code, c["nom"], "commune-actuelle", code, c.geometry))
            continue
        rest = shapely.difference(c.geometry, shapely.union_all([p[3] for p in own]))
        parts = [q for q in shapely.get_parts(shapely.get_parts(rest)) if q.geom_type == "Polygon"]
        big = [q for q in parts if q.area >= MIN_REMAINDER_SHARE * c.geometry.area]
        if big:
            extra = shapely.union_all(big)
            own.append(_remainder(str(code), c["nom"], own, uncut.get(str(code), []), extra))
        rows += [(pc, pn, pt, code, pg) for pc, pn, pt, pg in own if pt != "merged"]
    gdf = gpd.GeoDataFrame(
        pd.DataFrame([r[:4] for r in rows], columns=["code", "nom", "type", "chefLieu"]),
        geometry=[r[4] for r in rows],
        crs=GEOGRAPHIC_CRS,
    )
    dup = gdf["code"][gdf["code"].duplicated()]
    if len(dup):
        raise ValidationError(
            "API Découpage administratif",
            [f"code {c} given twice (commune and commune déléguée / associée)" for c in dup],
        )
    return gdf.sort_values(["chefLieu", "code"]).reset_index(drop=True)


def chef_lieux_from_api(communes: pd.DataFrame) -> pd.DataFrame:
    """Town-hall points in the contract of :func:`.datasfun.read_datasfun_communes`.

    Returns
    -------
    pandas.DataFrame
        Columns ``insee_com``, ``insee_dep``, ``commune_type`` (``"COM"``), ``lat``,
        ``lng`` (WGS 84, strings as the datas.fun reader gives them); communes whose
        response has no ``mairie`` point are left out (they use their representative
        point downstream).
    """
    rows = []
    for r in communes.to_dict("records"):
        m = r.get("mairie")
        if isinstance(m, dict) and m.get("type") == "Point":
            lng, lat = m["coordinates"][:2]
            rows.append((str(r["code"]), str(r["codeDepartement"]), "COM", repr(lat), repr(lng)))
    return pd.DataFrame(rows, columns=["insee_com", "insee_dep", "commune_type", "lat", "lng"])


def epci_records_from_api(epcis: pd.DataFrame, communes: pd.DataFrame) -> list[dict]:
    """Records in the ``epci.json`` format of :mod:`.epci`: ``code``, ``nom``,
    ``populationMunicipale`` (when the API gives it) and ``membres`` (the communes of the
    response that name the EPCI in ``codeEpci``; members in départements not fetched are
    absent). Only EPCI with a member are kept; sorted by code."""
    members: dict[str, list[dict]] = {}
    if "codeEpci" in communes.columns:
        for r in communes.to_dict("records"):
            e = r.get("codeEpci")
            if isinstance(e, str) and e:
                members.setdefault(e, []).append({"code": str(r["code"]), "nom": r["nom"]})
    out = []
    for r in epcis.to_dict("records"):
        code = str(r["code"])
        if code not in members:
            continue
        rec: dict = {"code": code, "nom": r["nom"]}
        pop = r.get("population")
        if pop is not None and not pd.isna(pop):
            rec["populationMunicipale"] = int(pop)
        rec["membres"] = sorted(members[code], key=lambda m: m["code"])
        out.append(rec)
    return sorted(out, key=lambda d: d["code"])
