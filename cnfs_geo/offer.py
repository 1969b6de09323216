"""The existing digital-inclusion offer of a département: one ``places`` GeoDataFrame.

:func:`places_from_frames` normalises the raw frames of the offer readers
(:mod:`cnfs_geo.sources`), locates, de-duplicates (:data:`DEDUP_RULE`) and aggregates
them into places; :func:`places_from_sources` reads the files of a data directory and
hands over to it. Rules and reasons: ``docs/methods_offer.md``.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from scipy.spatial import cKDTree

from . import catalog, territory
from ._errors import DataFileError, ValidationError
from ._validate import communes_table
from .settings import DEFAULT, GEOGRAPHIC_CRS, METROPOLE_CRS, Settings
from .sources import aidants_connect, cnfs, conumm, data_inclusion, france_services, lieux
from .sources._contract import CONTACT_FIELDS, Contract
from .sources.cog import read_cog_records

__all__ = [
    "CONTACT_FIELDS",
    "CONTRACTS",
    "DEDUP_RULE",
    "KINDS",
    "LOCAL_SOURCES",
    "PLACE_COLUMNS",
    "READERS",
    "SOURCE_KIND",
    "SETTINGS_USED",
    "SOURCE_ORDER",
    "FrameIndex",
    "OfferReport",
    "clean_siret",
    "departement_frames",
    "index_frames",
    "normalise_name",
    "places_from_frames",
    "places_from_sources",
    "read_sources",
]

log = logging.getLogger(__name__)

KINDS = ("aidants_connect", "cnfs", "france_services", "lieu_mediation")

#: The settings this stage reads (a plan rebuilds its territory, offer and need only when
#: one of them, the files or the need weights change; tests/test_offer.py checks the list).
SETTINGS_USED = ("coordinate_tolerance_m", "dedup_distance_m", "default_advisors")

# Order in which sources start places and are matched (see docs/methods_offer.md).
SOURCE_ORDER = (
    "france_services",
    "cnfs_permanences",
    "lieux_cd49_2022",
    "lieux_cd49_2020",
    "conumm_angers",
    "data_inclusion",
    "aidants_connect",
)

SOURCE_KIND = {
    "france_services": "france_services",
    "cnfs_permanences": "cnfs",
    "lieux_cd49_2022": "lieu_mediation",
    "lieux_cd49_2020": "lieu_mediation",
    "conumm_angers": "lieu_mediation",
    "data_inclusion": "lieu_mediation",
    "aidants_connect": "aidants_connect",
}

# Prefix of place ids; the two CD49 files share one (same ID = same place).
PLACE_PREFIX = {
    "france_services": "fs",
    "cnfs_permanences": "cnfs",
    "lieux_cd49_2022": "cd49",
    "lieux_cd49_2020": "cd49",
    "conumm_angers": "conumm",
    "data_inclusion": "di",
    "aidants_connect": "ac",
}

# Sources that describe one département only.
LOCAL_SOURCES = {"lieux_cd49_2022": "49", "lieux_cd49_2020": "49", "conumm_angers": "49"}

# Reader of each source: path → raw frame meeting the reader's column contract (see
# cnfs_geo.sources); CONTACT_FIELDS (imported above) are dropped by every reader.
READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "france_services": france_services.read_france_services,
    "cnfs_permanences": cnfs.read_cnfs_permanences,
    "lieux_cd49_2022": lieux.read_lieux_cd49_2022,
    "lieux_cd49_2020": lieux.read_lieux_cd49_2020,
    "conumm_angers": conumm.read_conumm_angers,
    "data_inclusion": data_inclusion.read_data_inclusion,
    "aidants_connect": aidants_connect.read_aidants_connect,
}

CONTRACTS: dict[str, Contract] = {
    "france_services": france_services.CONTRACT,
    "cnfs_permanences": cnfs.CONTRACT,
    "lieux_cd49_2022": lieux.CONTRACT_CD49_2022,
    "lieux_cd49_2020": lieux.CONTRACT_CD49_2020,
    "conumm_angers": conumm.CONTRACT,
    "data_inclusion": data_inclusion.CONTRACT,
    "aidants_connect": aidants_connect.CONTRACT,
}

# Lambert-93 plausible range (metropolitan France incl. Corsica, with margin).
_L93_X = (0.0, 1_300_000.0)
_L93_Y = (6_000_000.0, 7_200_000.0)

_STOPWORDS = frozenset(
    {
        "de",
        "du",
        "des",
        "d",
        "la",
        "le",
        "les",
        "l",
        "et",
        "a",
        "au",
        "aux",
        "en",
        "sur",
        "sous",
        "pour",
        "par",
        "un",
        "une",
    }
)
_ABBREV = {
    "st": ("saint",),
    "ste": ("sainte",),
    "cs": ("centre", "social"),
    "csc": ("centre", "socioculturel"),
    "csi": ("centre", "social", "intercommunal"),
    "csci": ("centre", "socioculturel", "intercommunal"),
    "msap": ("france", "service"),
}
# Words that alone identify no particular place (a name made only of them is not used).
_GENERIC = frozenset(
    {
        "mairie",
        "commune",
        "ville",
        "hotel",
        "mediatheque",
        "bibliotheque",
        "france",
        "service",
        "maison",
        "espace",
        "centre",
        "social",
        "ccas",
        "cia",
        "point",
        "numerique",
        "accueil",
        "poste",
        "antenne",
        "agence",
        "permanence",
        "annexe",
        "site",
        "pole",
        "emploi",
        "mission",
        "locale",
        "municipale",
        "communale",
        "municipal",
        "communal",
        "cyber",
        "cybercentre",
        "quartier",
        "association",
        "siege",
        "bureau",
        "socioculturel",
        "intercommunal",
        "sociale",
        "animation",
        "epn",
        "public",
        "publique",
        "culturel",
    }
)

_CD49_2022_HELP = (
    "Démarches générales",
    "Démarches spécifiques",
    "Initiation aux outils numériques",
)
_FS_LABEL = frozenset({"france", "service"})
# "Antenne de X", "Site X" (up to a " - ", "/", "(" or the end): X is a locality, not an identity
_LOCALITY = re.compile(r"\b(?:antenne|site)\b(.*?)(?=\s[-–/]\s|[()/]|$)", re.I)

_DI_ACCESS_SERVICES = frozenset(
    {
        "Accéder à une connexion internet",
        "Accéder à du matériel",
        "S'équiper en matériel informatique",
    }
)
_DI_ACCOMPANIMENT_MODES = ("Avec de l'aide", "Dans un atelier", "A ma place")

DEDUP_RULE = (
    "1) Same identifier: CD49 2022 and 2020 records with the same ID/ID_LieuMed (LMNxxx) are one "
    "place (2022-12 export first); data·inclusion records of source 'conseiller-numerique' are "
    "merged into the CNFS permanence with the same id. "
    "2) Across sources, in the order france_services, cnfs_permanences, CD49, conumm_angers, "
    "data_inclusion, aidants_connect, a record joins a place of another source when "
    "(a) both are located at an address, within {d:g} m (settings.dedup_distance_m), and they "
    "share the SIRET (14 digits, not all zeros) or their names match, or "
    "(b) one of them is located only at commune level, both are in the same commune, and they "
    "share the SIRET or their names match. "
    "Names: lower case, accents/punctuation removed, articles and prepositions dropped, "
    "abbreviations expanded (st, ste, CS, CSC, CSI, CSCI, MSAP), final plural s removed; "
    "distinctive words = words minus generic words (mairie, médiathèque, centre, france, "
    "services…) minus locality words (commune name, words after Antenne/Site). Name strength "
    "3 = same words; 2 = same distinctive words or one set of >= 2 distinctive words inside the "
    "other; 1 = no distinctive word on both sides and same generic words, or both carry the "
    "'France services' label and one has no distinctive word, or all words (>= 2, not all "
    "generic) of one name inside the other. "
    "Candidates come from a KD-tree within the distance or a join on the commune code; each "
    "place takes at most one record per source and each record joins at most one place; pairs "
    "are taken greedily by score (2 x name strength + 1 for a shared SIRET), then distance, "
    "then ids. "
    "3) Records of the same source are never merged with each other. "
    "Why: SIRET alone would merge the separate permanences one establishment runs in several "
    "communes; distance alone would merge neighbouring but distinct places; a name match "
    "outweighs a SIRET because one SIRET often covers all the services of a commune."
)


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


@dataclass
class OfferReport:
    """What happened to every record of every source.

    Attributes
    ----------
    counts : DataFrame
        One row per source key (all of :data:`SOURCE_ORDER`), columns ``source``,
        ``status`` (``read`` | ``missing`` | ``not applicable``), ``in_file`` (rows in
        the file), ``read`` (rows belonging to the département), ``kept`` (first record
        of a place), ``merged`` (joined to a place started by another record),
        ``rejected``. For every row ``read == kept + merged + rejected``;
        ``counts.kept.sum()`` is the number of places.
    rejected : DataFrame
        Columns ``source``, ``record_id``, ``name``, ``reason`` (one row per rejected
        record, sorted by source order then record id).
    warnings : list of str
        Corrections and relocations (swapped coordinates, records placed at their
        commune, inactive records kept because a newer record exists, skipped files).
    missing_sources : list of str
        Source keys whose file is absent or which do not apply to the département.
    dedup_rule : str
        The de-duplication rule applied (see :data:`DEDUP_RULE`).
    departement : str
    """

    counts: pd.DataFrame
    rejected: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    missing_sources: list[str] = field(default_factory=list)
    dedup_rule: str = ""
    departement: str = ""

    def counts_with_total(self) -> pd.DataFrame:
        """``counts`` with a final ``total`` row (sums of the numeric columns)."""
        num = ["in_file", "read", "kept", "merged", "rejected"]
        total = {"source": "total", "status": "", **{c: int(self.counts[c].sum()) for c in num}}
        return pd.concat([self.counts, pd.DataFrame([total])], ignore_index=True)


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def _tokens(name: object) -> list[str]:
    if name is None or (isinstance(name, float) and np.isnan(name)):
        return []
    return list(_text_tokens(str(name)))


@functools.lru_cache(maxsize=65_536)
def _text_tokens(text: str) -> tuple[str, ...]:
    """Tokens of a name (cached: names and commune names recur across the matching steps)."""
    s = text.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    s = "".join(ch for ch in unicodedata.normalize("NFKD", s) if not unicodedata.combining(ch))
    out: list[str] = []
    for t in re.findall(r"[a-z0-9]+", s.lower()):
        if t in _STOPWORDS:
            continue
        for u in _ABBREV.get(t, (t,)):
            if len(u) > 3 and u.endswith("s"):
                u = u[:-1]
            out.append(u)
    return tuple(out)


def normalise_name(name: object) -> str | None:
    """Normalised name used to match places (see docs/methods_offer.md).

    Lower case, accents and punctuation removed, articles/prepositions dropped,
    abbreviations expanded (st, ste, cs, csc, csi, csci, msap), a final plural
    ``s`` removed, tokens sorted and joined by spaces; None for an empty name.

    Examples
    --------
    >>> normalise_name("France services d'Allonnes") == normalise_name("FRANCE SERVICE ALLONNES")
    True
    >>> normalise_name("CS Pasteur") == normalise_name("Centre social Pasteur")
    True
    >>> normalise_name("Médiathèque St-Jean")
    'jean mediatheque saint'
    """
    tokens = _tokens(name)
    return " ".join(sorted(set(tokens))) or None


def _name_keys(name: object, commune_nom: object) -> tuple[frozenset, frozenset] | None:
    """(all tokens, distinctive tokens) of a name; distinctive = minus generic words and the
    words of the commune's name."""
    tokens = frozenset(_tokens(name))
    if not tokens:
        return None
    # words naming where an antenna/site is ("… - Antenne de Belle-Beille") are locality words
    locality = set(_tokens(commune_nom))
    for m in _LOCALITY.finditer(str(name)):
        locality.update(_tokens(m.group(1)))
    distinct = tokens - _GENERIC - locality
    return tokens, distinct


def _names_match(
    a: tuple[frozenset, frozenset] | None, b: tuple[frozenset, frozenset] | None
) -> int:
    """Strength of the evidence that two names designate the same place (0 = none).

    3: same tokens; 2: same distinctive tokens, or one set of >= 2 distinctive tokens
    contained in the other; 1: weaker rules (no distinctive token and the same generic
    words; both carry the "France services" label and one has no distinctive token;
    all tokens of one name, >= 2 and not all generic, contained in the other).
    """
    if not a or not b:
        return 0
    (ta, da), (tb, db) = a, b
    if ta == tb:
        return 3
    if da and da == db:
        return 2
    small, big = (da, db) if len(da) <= len(db) else (db, da)
    if len(small) >= 2 and small <= big:
        return 2
    if not da and not db and (ta & _GENERIC) == (tb & _GENERIC):
        return 1  # e.g. "Hôtel de ville" / "Hôtel de ville d'Angers"
    if _FS_LABEL.issubset(ta) and _FS_LABEL.issubset(tb) and (not da or not db):
        return 1  # "France services <commune>" / "CS Evre et Mauges - France Services"
    small, big = (ta, tb) if len(ta) <= len(tb) else (tb, ta)
    return int(len(small) >= 2 and not small <= _GENERIC and small <= big)


def clean_siret(value: object) -> str | None:
    """14-digit SIRET string, or None.

    Accepts float-formatted values of the Aidants Connect export
    (``'13002603200016.0'``) and restores one lost leading zero (13 digits).
    All-zero or malformed values give None.

    Examples
    --------
    >>> clean_siret("13002603200016.0"), clean_siret("00000000000000"), clean_siret("0.0")
    ('13002603200016', None, None)
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    s = str(value).strip().replace(" ", "")
    if re.fullmatch(r"\d+\.0+", s):
        s = s.split(".")[0]
    if not s.isdigit():
        return None
    if len(s) == 13:
        s = "0" + s
    if len(s) != 14 or set(s) == {"0"}:
        return None
    return s


def _blank(v: object) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""


def _text(v: object) -> str:
    return "" if _blank(v) else str(v).strip()


def _parse_number(v: object) -> tuple[float, str | None]:
    """(value, problem): problem is None, 'missing' or 'non-numeric'."""
    if _blank(v):
        return np.nan, "missing"
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        f = float(v)
        return (f, None) if np.isfinite(f) else (np.nan, "non-numeric")
    s = str(v).strip().replace("\u00a0", "").replace(" ", "")
    if s.count(",") == 1 and "." not in s:
        s = s.replace(",", ".")
    try:
        f = float(s)
    except ValueError:
        return np.nan, "non-numeric"
    return (f, None) if np.isfinite(f) else (np.nan, "non-numeric")


def _yes(v: object) -> bool:
    return _text(v).lower() in {"oui", "yes", "true", "1"}


# --------------------------------------------------------------------------------------
# Département context (COG tables, outline, warnings)
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _transformer(src_crs: Any, dst_crs: Any) -> Transformer:
    """Transformer from ``src_crs`` to ``dst_crs`` (x = longitude/easting), built once per
    pair of CRS: building one costs more than transforming a département's records, and
    pyproj transformers are thread-safe (pyproj >= 3.1)."""
    return Transformer.from_crs(src_crs, dst_crs, always_xy=True)


@dataclass
class _Context:
    dep: str
    cog_records: Sequence[Mapping[str, Any]]
    communes: gpd.GeoDataFrame
    outline: Any  # shapely geometry in working CRS
    code_map: dict[str, str]
    dep_postal: frozenset[str]
    postal_deps: dict[str, frozenset[str]]
    settings: Settings
    warnings: list[str]

    @property
    def crs(self):
        return self.communes.crs

    def to_work(self, a: np.ndarray, b: np.ndarray, src_crs: str) -> tuple[np.ndarray, np.ndarray]:
        tr = _transformer(src_crs, self.crs)
        x, y = tr.transform(np.asarray(a, float), np.asarray(b, float), errcheck=False)
        x, y = np.asarray(x, float), np.asarray(y, float)
        bad = ~(np.isfinite(x) & np.isfinite(y))
        x[bad], y[bad] = np.nan, np.nan
        return x, y

    def distance_outside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Distance (m) from points to the département (0 inside, inf for NaN)."""
        out = np.full(len(x), np.inf)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.any():
            xmin, ymin, xmax, ymax = self.outline.bounds
            tol = self.settings.coordinate_tolerance_m
            near = (
                ok & (x >= xmin - tol) & (x <= xmax + tol) & (y >= ymin - tol) & (y <= ymax + tol)
            )
            far = ok & ~near
            out[far] = 1e12  # clearly outside, exact distance not needed
            if near.any():
                out[near] = shapely.distance(shapely.points(x[near], y[near]), self.outline)
        return out

    def current_code(self, code: object) -> str | None:
        c = _text(code).upper()
        if not c:
            return None
        if re.fullmatch(r"\d{4}", c):
            c = "0" + c
        return self.code_map.get(c, c)

    def postal_in_dep(self, postal: object) -> tuple[bool, bool]:
        """(belongs, exclusive): postal code of the département; used by no other one."""
        p = _text(postal)
        if re.fullmatch(r"\d{4}", p):
            p = "0" + p
        if not p:
            return False, False
        others = self.postal_deps.get(p, frozenset()) - {self.dep}
        belongs = p in self.dep_postal
        if not belongs and self.dep.isdigit():
            belongs = p.startswith(self.dep) and len(p) == 5
        return belongs, belongs and not others


def _cog_tables(
    recs: Sequence[Mapping[str, Any]], dep: str
) -> tuple[frozenset[str], dict[str, frozenset[str]], dict[str, str]]:
    """From the COG communes records: postal codes of the département, départements of every
    postal code, and arrondissement municipal → commune (Paris, Lyon, Marseille)."""
    postal_deps, arrondissements, _, _ = _national_cog(recs)
    dep_postal = frozenset(p for p, ds in postal_deps.items() if dep in ds)
    return dep_postal, postal_deps, dict(arrondissements)


# The national COG tables of the last records list seen (all of France plans every
# département from the same list: built once, not once per département).
_COG_CACHE: list[Any] = [None, None]


def _national_cog(
    recs: Sequence[Mapping[str, Any]],
) -> tuple[dict[str, frozenset[str]], dict[str, str], dict[Any, Any], dict[str, list[str]]]:
    """Départements of every postal code, arrondissement municipal → commune, name of
    every code (last record wins) and current communes of every postal code (file order),
    from the COG records; cached for the last ``recs`` object (read-only)."""
    if _COG_CACHE[0] is recs:
        return _COG_CACHE[1]
    by_postal: dict[str, set[Any]] = {}
    arrondissements: dict[str, str] = {}
    noms: dict[Any, Any] = {}
    postal_communes: dict[str, list[str]] = {}
    for r in recs:
        d = r.get("departement")
        for p in r.get("codesPostaux") or []:
            by_postal.setdefault(p, set()).add(d)
            if r.get("type") == "commune-actuelle" and r.get("code") is not None:
                postal_communes.setdefault(p, []).append(r["code"])
        if r.get("type") == "arrondissement-municipal" and r.get("commune"):
            arrondissements[r["code"]] = r["commune"]
        noms[r.get("code")] = r.get("nom")
    out = (
        {p: frozenset(ds) for p, ds in by_postal.items()},
        arrondissements,
        noms,
        postal_communes,
    )
    _COG_CACHE[:] = [recs, out]
    return out


# --------------------------------------------------------------------------------------
# Per-source normalisation → common record frame
# --------------------------------------------------------------------------------------
# Columns of the record frame built by each _records_* function:
#   record_id, name, siret, code (commune code, current COG, or None), service_level,
#   service_basis, advisors, itinerant, ca, cb (raw coordinate values: lon/lat or x/y),
#   coord_fields (text for messages), coord_crs, group_key, status, reason, note

_RECORD_COLUMNS = [
    "record_id",
    "name",
    "siret",
    "code",
    "service_level",
    "service_basis",
    "advisors",
    "itinerant",
    "ca",
    "cb",
    "coord_fields",
    "coord_crs",
    "group_key",
    "status",
    "reason",
    "note",
    "no_name_match",
]


#: Values of the record columns a reader leaves out (a kept record, no note).
_RECORD_DEFAULTS: dict[str, object] = {
    "status": "ok",
    "reason": None,
    "note": None,
    "no_name_match": False,
}


def _frame(rows: list[dict]) -> pd.DataFrame:
    """Records of one source (``_RECORD_DEFAULTS`` for the columns a row leaves out)."""
    return pd.DataFrame([{**_RECORD_DEFAULTS, **r} for r in rows], columns=_RECORD_COLUMNS)


def _key(source: str, record_id: str) -> str:
    """Group key (and place id when it starts a place) of a record: ``prefix:record_id``."""
    return f"{PLACE_PREFIX[source]}:{record_id}"


def _dedupe_ids(ids: pd.Series, key: str, ctx: _Context) -> pd.Series:
    ids = ids.astype(str).str.strip()
    dup = ids.duplicated(keep=False)
    if dup.any():
        n = ids.groupby(ids).cumcount() + 1
        ids = ids.where(~dup | (n == 1), ids + "~" + n.astype(str))
        dups = sorted(set(ids[dup].str.split("~").str[0]))
        ctx.warnings.append(f"{key}: duplicated record id(s) {dups} made unique with a ~n suffix")
    return ids


def _select_by_point(
    df: pd.DataFrame, lon: str, lat: str, ctx: _Context
) -> tuple[np.ndarray, np.ndarray]:
    """(within the département + tolerance, has usable WGS84 point) per row."""
    a = np.array([_parse_number(v)[0] for v in df[lon]], float)
    b = np.array([_parse_number(v)[0] for v in df[lat]], float)
    ok = (np.abs(a) <= 180) & (np.abs(b) <= 90)
    a, b = np.where(ok, a, np.nan), np.where(ok, b, np.nan)
    x, y = ctx.to_work(a, b, GEOGRAPHIC_CRS)
    d = ctx.distance_outside(x, y)
    return (d <= ctx.settings.coordinate_tolerance_m), np.isfinite(x)


def _records_france_services(df: pd.DataFrame, ctx: _Context) -> pd.DataFrame:
    sel = df["insee_dep"].astype(str).str.strip().str.upper() == ctx.dep
    df = df[sel].copy()
    df["_id"] = _dedupe_ids(df["id_fs"], "france_services", ctx)
    rows = []
    for r in df.to_dict("records"):
        fmt = _text(r.get("format_fs"))
        itinerant = bool(re.search(r"bus|itin", fmt, re.I))
        rows.append(
            dict(
                record_id=r["_id"],
                name=_text(r["lib_fs"]),
                siret=None,
                code=ctx.current_code(r["insee_com"]),
                service_level="accompaniment",
                service_basis="France Services (label: agents help with démarches)",
                advisors=np.nan,
                itinerant=itinerant,
                ca=r["longitude"],
                cb=r["latitude"],
                coord_fields="longitude/latitude",
                coord_crs=GEOGRAPHIC_CRS,
                group_key=_key("france_services", r["_id"]),
            )
        )
    return _frame(rows)


def _records_cnfs(df: pd.DataFrame, ctx: _Context) -> pd.DataFrame:
    by_point, has_point = _select_by_point(df, "longitude", "latitude", ctx)
    postal = [ctx.postal_in_dep(v) for v in df["code_postal"]]
    belongs = np.array([p[0] for p in postal], bool)
    exclusive = np.array([p[1] for p in postal], bool)
    sel = by_point | (belongs & (exclusive | ~has_point))
    df = df[sel].copy()
    df["_id"] = _dedupe_ids(df["id"], "cnfs_permanences", ctx)
    rows = []
    for r in df.to_dict("records"):
        adv, prob = _parse_number(r.get("nb_aidants"))
        if prob or adv <= 0:
            adv = np.nan
        rows.append(
            dict(
                record_id=r["_id"],
                name=_text(r["nom"]),
                siret=clean_siret(r.get("pivot")),
                code=None,
                service_level="accompaniment",
                service_basis="CNFS permanence (conseiller numérique)",
                advisors=adv,
                itinerant=False,
                ca=r["longitude"],
                cb=r["latitude"],
                coord_fields="longitude/latitude",
                coord_crs=GEOGRAPHIC_CRS,
                group_key=_key("cnfs_permanences", r["_id"]),
            )
        )
    return _frame(rows)


def _geo_point(v: object) -> tuple[object, object]:
    """'lat,lon' → (lon, lat) raw strings (malformed → the whole text, flagged non-numeric)."""
    s = _text(v)
    parts = [p.strip() for p in s.split(",")]
    if len(parts) == 2:
        return parts[1], parts[0]
    return (s or None), (s or None)


def _records_cd49_2022(df: pd.DataFrame, ctx: _Context) -> pd.DataFrame:
    df = df.copy()
    df["_id"] = _dedupe_ids(df["ID"], "lieux_cd49_2022", ctx)
    rh = [c for c in df.columns if c.startswith("JT_RH_")]
    rows = []
    for r in df.to_dict("records"):
        basis = [f"{c}={_text(r.get(c))}" for c in _CD49_2022_HELP if _yes(r.get(c))]
        basis += [f"{c}={_text(r.get(c))}" for c in rh if not _blank(r.get(c))]
        cat = _text(r.get("Catégorie"))
        if "france services" in cat.lower():
            basis.append(f"Catégorie={cat}")
        if basis:
            level, why = "accompaniment", ", ".join(basis)
        else:
            acc = [
                f"{c}={_text(r.get(c))}"
                for c in df.columns
                if (c == "Accès internet" or c.startswith("JT_MAT_")) and not _blank(r.get(c))
            ]
            level = "access"
            why = (
                ", ".join(acc) if acc else "no accompaniment field set"
            ) + " (no démarches/initiation/staff field)"
        lon, lat = _geo_point(r.get("Geo Point"))
        name = _text(r.get("Nom"))
        rows.append(
            dict(
                record_id=r["_id"],
                name=name,
                siret=None,
                code=None,
                service_level=level,
                service_basis=why,
                advisors=np.nan,
                itinerant=False,
                ca=lon,
                cb=lat,
                coord_fields="Geo Point",
                coord_crs=GEOGRAPHIC_CRS,
                group_key=_key("lieux_cd49_2022", r["_id"]),
                status="ok" if name else "rejected",
                reason=None if name else "empty record: no Nom",
            )
        )
    return _frame(rows)


def _records_cd49_2020(df: pd.DataFrame, ctx: _Context, ids_2022: set[str]) -> pd.DataFrame:
    df = df.copy()
    df["_id"] = _dedupe_ids(df["ID_LieuMed"], "lieux_cd49_2020", ctx)
    rows = []
    for r in df.to_dict("records"):
        rid, name = r["_id"], _text(r.get("NOM_STRUCTURE"))
        aff = _text(r.get("AFFICHAGE")).upper()
        basis = [
            f"{c}={_text(r.get(c))}" for c in ("DEM_Gen", "DEM_Spe", "INITIATION") if _yes(r.get(c))
        ]
        level: str | None
        why: str | None
        if basis:
            level, why = "accompaniment", ", ".join(basis)
        else:
            level = "access"
            why = (
                "INTERNET=Oui" if _yes(r.get("INTERNET")) else "no accompaniment field set"
            ) + " (DEM_Gen/DEM_Spe/INITIATION not Oui)"
        status, reason, note = "ok", None, None
        in_2022 = rid in ids_2022
        if aff == "INACTIF":
            if in_2022:
                note = (
                    f"lieux_cd49_2020 {rid} ({name}): AFFICHAGE=INACTIF in the 2020-2021 "
                    "source but published in the 2022-12 export: the place is kept from the "
                    "2022 record (the export is the Département's published list); this "
                    "inactive record adds no service"
                )
                level, why = None, None
            else:
                status, reason = "rejected", "AFFICHAGE=INACTIF (lieu marqué inactif par le CD49)"
        elif not name and not in_2022:
            status, reason = "rejected", "fiche vide : ni NOM_STRUCTURE ni AFFICHAGE"
        elif not name:
            level, why = None, None  # empty shell of a 2022 record: adds only its id
        rows.append(
            dict(
                record_id=rid,
                name=name,
                siret=None,
                code=None,
                service_level=level,
                service_basis=why,
                advisors=np.nan,
                itinerant=False,
                ca=r.get("x"),
                cb=r.get("y"),
                coord_fields="x/y (Lambert-93)",
                coord_crs=METROPOLE_CRS,
                group_key=_key("lieux_cd49_2020", rid),
                status=status,
                reason=reason,
                note=note,
            )
        )
    return _frame(rows)


def _records_conumm(df: pd.DataFrame, ctx: _Context) -> pd.DataFrame:
    df = df.copy()
    df["_id"] = _dedupe_ids(df["TYPO_UID"], "conumm_angers", ctx)
    qual = [c for c in df.columns if c.startswith("QUALIF")]
    rows = []
    for r in df.to_dict("records"):
        name, addr = _text(r.get("USER_NOM")), _text(r.get("USER_ADRES"))
        no_match = False
        if not name or name == addr or re.match(r"^\d", name):
            ctx.warnings.append(
                f"conumm_angers {r['_id']}: USER_NOM {name!r} is an address, not a "
                "name; named 'Lieu sans nom' and not used for name matching"
            )
            name, no_match = f"Lieu sans nom ({addr or name})", True
        basis = [
            f"{c}={_text(r.get(c))}" for c in ("AIDE_DEMAT", "FORM_PERF") if not _blank(r.get(c))
        ]
        basis += [
            f"{c}={_text(r.get(c))}"
            for c in qual
            if re.search(r"initiation|démarches|demarches|formation", _text(r.get(c)), re.I)
        ]
        if basis:
            level, why = "accompaniment", ", ".join(basis)
        else:
            acc = [
                f"{c}={_text(r.get(c))}"
                for c in ("ACCES_ORDI", "WIFI", "PRET_MAT")
                if c in r and not _blank(r.get(c))
            ]
            level = "access"
            why = (
                ", ".join(acc) if acc else "no accompaniment field set"
            ) + " (no AIDE_DEMAT/FORM_PERF/initiation/démarches)"
        rows.append(
            dict(
                record_id=r["_id"],
                name=name,
                siret=None,
                code=None,
                service_level=level,
                service_basis=why,
                advisors=np.nan,
                itinerant=False,
                ca=r.get("LNG"),
                cb=r.get("LAT"),
                coord_fields="LNG/LAT",
                coord_crs=GEOGRAPHIC_CRS,
                group_key=_key("conumm_angers", r["_id"]),
                no_name_match=no_match,
            )
        )
    return _frame(rows)


def _records_data_inclusion(df: pd.DataFrame, ctx: _Context, cnfs_ids: set[str]) -> pd.DataFrame:
    codes = [ctx.current_code(v) for v in df["code_insee"]]
    in_dep_code = np.array([c in ctx.communes.index for c in codes], bool)
    no_code = np.array([c is None for c in codes], bool)
    by_point, has_point = _select_by_point(df, "longitude", "latitude", ctx)
    postal = [ctx.postal_in_dep(v) for v in df["code_postal"]]
    belongs = np.array([p[0] for p in postal], bool)
    exclusive = np.array([p[1] for p in postal], bool)
    sel = in_dep_code | (no_code & (by_point | (belongs & (exclusive | ~has_point))))
    df = df[sel].copy()
    df["_code"] = [c for c, s in zip(codes, sel) if s]
    df["_id"] = _dedupe_ids(
        df["source"].astype(str).str.strip() + ":" + df["id"].astype(str).str.strip(),
        "data_inclusion",
        ctx,
    )
    rows = []
    for r in df.to_dict("records"):
        services = [s.strip() for s in _text(r.get("services")).split(";") if s.strip()]
        modes = _text(r.get("modalites_accompagnement"))
        labels = _text(r.get("labels_nationaux"))
        basis = [f"services: {s}" for s in services if s not in _DI_ACCESS_SERVICES][:3]
        basis += [f"modalités: {m}" for m in _DI_ACCOMPANIMENT_MODES if m in modes]
        basis += (
            [f"labels_nationaux={labels}"]
            if re.search(r"CNFS|France Services|Aidants", labels)
            else []
        )
        if basis:
            level, why = "accompaniment", "; ".join(basis)
        else:
            level = "access"
            why = (
                "services: " + ";".join(services) if services else "no service listed"
            ) + " (internet/equipment only)"
        src_id = _text(r.get("id"))
        key = (
            _key("cnfs_permanences", src_id)
            if _text(r.get("source")) == "conseiller-numerique" and src_id in cnfs_ids
            else _key("data_inclusion", r["_id"])
        )
        rows.append(
            dict(
                record_id=r["_id"],
                name=_text(r.get("nom")),
                siret=clean_siret(r.get("pivot")),
                code=r["_code"]
                if not _blank(r["_code"]) and r["_code"] in ctx.communes.index
                else None,
                service_level=level,
                service_basis=why,
                advisors=np.nan,
                itinerant=False,
                ca=r.get("longitude"),
                cb=r.get("latitude"),
                coord_fields="longitude/latitude",
                coord_crs=GEOGRAPHIC_CRS,
                group_key=key,
            )
        )
    return _frame(rows)


def _aidants_count(value: object) -> float:
    """The export's ``Nombre d'aidants`` (habilitated aidants of the structure) as a
    count of advisors; NaN when blank, not a number or 0 (no active aidant: the count
    says nothing of who helps)."""
    n = pd.to_numeric(value, errors="coerce")  # a scalar parses as in a Series
    return float(n) if pd.notna(n) and n > 0 else np.nan


def _records_aidants_connect(df: pd.DataFrame, ctx: _Context) -> pd.DataFrame:
    codes = [ctx.current_code(v) for v in df["City Insee Code"]]
    in_dep_code = np.array([c in ctx.communes.index for c in codes], bool)
    no_code = np.array([c is None for c in codes], bool)
    belongs = np.array([ctx.postal_in_dep(v)[0] for v in df["Zip Code"]], bool)
    sel = in_dep_code | (no_code & belongs)
    df = df[sel].copy()
    df["_code"] = [c for c, s in zip(codes, sel) if s]
    df["_id"] = _dedupe_ids(df["ID"], "aidants_connect", ctx)
    # commune of records without INSEE code: the département commune with this postal code
    # (and the same normalised name when several share it)
    idx = set(ctx.communes.index)
    _, _, noms, national_postal = _national_cog(ctx.cog_records)  # last record of a code wins
    postal_communes: dict[str, list[str]] = {}
    # a commune of the département is listed only under postal codes of the département
    for p in sorted(ctx.dep_postal):
        here = [c for c in national_postal.get(p, ()) if c in idx]
        if here:
            postal_communes[p] = here
    by_name: dict[str | None, list[str]] = {}
    for c in ctx.communes.index:
        by_name.setdefault(normalise_name(noms.get(c)), []).append(c)
    rows = []
    for r in df.to_dict("records"):
        name = _text(r.get("Name"))
        code, status, reason = (None if _blank(r["_code"]) else r["_code"]), "ok", None
        if code is None:
            zip_code = _text(r.get("Zip Code")).zfill(5)
            cands = postal_communes.get(zip_code, [])
            city_txt = re.sub(r"\(.*?\)|\bc[ée]dex\b", " ", _text(r.get("City")), flags=re.I)
            city = normalise_name(city_txt)
            named = [
                c for c in (cands or by_name.get(city, [])) if normalise_name(noms.get(c)) == city
            ]
            if len(cands) == 1 or len(named) == 1:
                code = cands[0] if len(cands) == 1 else named[0]
                ctx.warnings.append(
                    f"aidants_connect {r['_id']} ({name}): blank City Insee Code; commune {code} "
                    f"({noms.get(code)}) found from Zip Code {_text(r.get('Zip Code'))} or City "
                    f"{_text(r.get('City'))!r}"
                )
            else:
                status = "rejected"
                reason = (
                    f"blank City Insee Code and Zip Code {_text(r.get('Zip Code'))!r} / City "
                    f"{_text(r.get('City'))!r} do not identify one commune of the "
                    "département "
                    "(no commune, or several, with this postal code or name)"
                )
        if status == "ok" and _text(r.get("Is Active")).lower() not in {"true", "1", "oui"}:
            status = "rejected"
            reason = f"Is Active={_text(r.get('Is Active'))!r} (structure not active)"
        rows.append(
            dict(
                record_id=r["_id"],
                name=name,
                siret=clean_siret(r.get("Siret")),
                code=code,
                service_level="accompaniment",
                service_basis="Aidants Connect (habilitated aidants do démarches for people)",
                advisors=_aidants_count(r.get("Nombre d'aidants")),
                itinerant=False,
                ca=None,
                cb=None,
                coord_fields="(none: commune only)",
                coord_crs=None,
                group_key=_key("aidants_connect", r["_id"]),
                status=status,
                reason=reason,
            )
        )
    return _frame(rows)


# --------------------------------------------------------------------------------------
# Locating records
# --------------------------------------------------------------------------------------


def _locate(rec: pd.DataFrame, file_name: str, ctx: _Context) -> pd.DataFrame:
    """Add x, y (working CRS), located, coord_problem; correct swaps; flag bad coordinates."""
    rec = rec.copy()
    n = len(rec)
    rec["x"], rec["y"] = np.nan, np.nan
    rec["located"] = None
    rec["coord_problem"] = None
    if n == 0:
        return rec
    if rec["coord_crs"].isna().all():  # commune-level source (Aidants Connect)
        rec["located"] = "commune"
        return rec
    crs = rec["coord_crs"].iloc[0]
    parsed_a = [_parse_number(v) for v in rec["ca"]]
    parsed_b = [_parse_number(v) for v in rec["cb"]]
    a = np.array([p[0] for p in parsed_a], float)
    b = np.array([p[0] for p in parsed_b], float)
    prob = [pa[1] or pb[1] for pa, pb in zip(parsed_a, parsed_b)]
    if crs == GEOGRAPHIC_CRS:
        in_range = (np.abs(a) <= 180) & (np.abs(b) <= 90)
        swap_range = (np.abs(b) <= 180) & (np.abs(a) <= 90)
        range_txt = "longitude in [-180, 180], latitude in [-90, 90]"
    else:

        def ok(u, v):
            return (u >= _L93_X[0]) & (u <= _L93_X[1]) & (v >= _L93_Y[0]) & (v <= _L93_Y[1])

        in_range, swap_range = ok(a, b), ok(b, a)
        range_txt = f"Lambert-93 x in {_L93_X}, y in {_L93_Y}"
    tol = ctx.settings.coordinate_tolerance_m
    x, y = ctx.to_work(np.where(in_range, a, np.nan), np.where(in_range, b, np.nan), crs)
    d = ctx.distance_outside(x, y)
    sx, sy = ctx.to_work(np.where(swap_range, b, np.nan), np.where(swap_range, a, np.nan), crs)
    sd = ctx.distance_outside(sx, sy)
    fields = rec["coord_fields"].iloc[0]
    status, rids, names = rec["status"].tolist(), rec["record_id"].tolist(), rec["name"].tolist()
    ca, cb = rec["ca"].tolist(), rec["cb"].tolist()
    ox, oy = np.full(n, np.nan), np.full(n, np.nan)
    located: list[str | None] = [None] * n
    problem: list[str | None] = [None] * n
    for i in range(n):
        if status[i] == "rejected":
            continue
        if fields == "Geo Point":  # stored as "lat,lon"
            raw = repr(f"{_text(cb[i])},{_text(ca[i])}")
        else:
            raw = f"{_text(ca[i])!r}/{_text(cb[i])!r}"
        if d[i] <= tol:
            ox[i], oy[i], located[i] = x[i], y[i], "address"
            continue
        if sd[i] <= tol:
            ox[i], oy[i], located[i] = sx[i], sy[i], "address"
            ctx.warnings.append(
                f"{file_name}: record {rids[i]} ({names[i]}): {fields} = {raw} "
                "swapped (lat/lon or x/y inverted); corrected, the swapped point "
                "lies in the département"
            )
            continue
        if prob[i] == "missing":
            why = f"{fields} missing"
        elif prob[i] == "non-numeric":
            why = f"{fields} = {raw} is not numeric"
        elif not in_range[i]:
            why = f"{fields} = {raw} out of range ({range_txt})"
        else:
            km = shapely.distance(shapely.Point(x[i], y[i]), ctx.outline) / 1000
            why = (
                f"{fields} = {raw} lies {km:.1f} km outside département {ctx.dep} (tolerance "
                f"settings.coordinate_tolerance_m = {tol:g} m; swapping does not help)"
            )
        problem[i] = f"{file_name}: record {rids[i]}: {why}"
    rec["x"], rec["y"], rec["located"], rec["coord_problem"] = ox, oy, located, problem
    return rec


def _assign_communes(rec: pd.DataFrame, ctx: _Context) -> pd.DataFrame:
    """Commune code (COG 2026) of located records: own code, else point in polygon/nearest."""
    rec = rec.copy()
    rec["insee"] = rec["code"].where(rec["code"].isin(ctx.communes.index), None)
    need = rec["insee"].isna() & rec["x"].notna()
    if need.any():
        pts = gpd.GeoDataFrame(
            geometry=gpd.points_from_xy(rec.loc[need, "x"], rec.loc[need, "y"]),
            index=rec.index[need],
            crs=ctx.crs,
        )
        polys = ctx.communes[["geometry"]].reset_index()
        polys = polys.rename(columns={polys.columns[0]: "_insee"})
        hit = gpd.sjoin(pts, polys, how="left", predicate="within")
        hit = hit[~hit.index.duplicated(keep="first")]["_insee"]
        miss = hit.index[hit.isna()]
        if len(miss):
            near = gpd.sjoin_nearest(pts.loc[miss], polys, how="left")
            near = near[~near.index.duplicated(keep="first")]["_insee"]
            hit.loc[miss] = near
        rec.loc[need, "insee"] = hit.reindex(rec.index[need]).to_numpy()
    return rec


# --------------------------------------------------------------------------------------
# Matching across sources
# --------------------------------------------------------------------------------------


def _match(units: pd.DataFrame, places: pd.DataFrame, d_max: float) -> dict[int, int]:
    """Greedy one-to-one matching of a source's units to existing places (see DEDUP_RULE).

    ``units`` and ``places``: columns x, y, located, insee, sirets (frozenset), names (tuple),
    sources (frozenset). Returns {unit row position: place row position}.
    """
    if len(units) == 0 or len(places) == 0:
        return {}
    pairs: list[tuple[int, int, float]] = []
    ua = np.flatnonzero((units["located"] == "address").to_numpy())
    pa = np.flatnonzero((places["located"] == "address").to_numpy())
    if len(ua) and len(pa):
        uxy = units[["x", "y"]].to_numpy(float)[ua]
        pxy = places[["x", "y"]].to_numpy(float)[pa]
        for i, js in enumerate(cKDTree(pxy).query_ball_point(uxy, r=d_max)):
            for j in js:
                pairs.append((int(ua[i]), int(pa[j]), float(np.hypot(*(uxy[i] - pxy[j])))))
    # commune-level pairs: one side located at commune level, same commune
    u_df = pd.DataFrame(
        {
            "u": np.arange(len(units)),
            "insee": units["insee"].to_numpy(),
            "uc": (units["located"] == "commune").to_numpy(),
        }
    )
    p_df = pd.DataFrame(
        {
            "p": np.arange(len(places)),
            "insee": places["insee"].to_numpy(),
            "pc": (places["located"] == "commune").to_numpy(),
        }
    )
    j = u_df.merge(p_df, on="insee")
    j = j[j["uc"] | j["pc"]]
    if len(j):
        ux, uy = units["x"].to_numpy(float), units["y"].to_numpy(float)
        px, py = places["x"].to_numpy(float), places["y"].to_numpy(float)
        dist = np.hypot(ux[j["u"]] - px[j["p"]], uy[j["u"]] - py[j["p"]])
        pairs += list(zip(j["u"].astype(int), j["p"].astype(int), np.nan_to_num(dist, nan=0.0)))
    if not pairs:
        return {}
    u_src = units["source"].to_numpy()
    u_sir, p_sir = units["sirets"].to_numpy(), places["sirets"].to_numpy()
    u_nam, p_nam = units["names"].to_numpy(), places["names"].to_numpy()
    p_srcs = places["sources"].to_numpy()
    u_id, p_id = units["group_key"].to_numpy(), places["place_id"].to_numpy()
    scored: dict[tuple[int, int], tuple[int, float]] = {}
    for u, p, dd in pairs:
        if u_src[u] in p_srcs[p]:
            continue
        # name evidence (0-3) counts twice a shared SIRET: one SIRET often covers all the
        # services of a commune (mairie, médiathèque, France services…)
        name = max((_names_match(a, b) for a in u_nam[u] for b in p_nam[p]), default=0)
        score = 2 * name + int(bool(u_sir[u] & p_sir[p]))
        if score:
            k = (u, p)
            if k not in scored or dd < scored[k][1]:
                scored[k] = (score, dd)
    ordered = sorted(
        scored.items(), key=lambda kv: (-kv[1][0], kv[1][1], u_id[kv[0][0]], p_id[kv[0][1]])
    )
    out: dict[int, int] = {}
    taken: set[int] = set()
    for (u, p), _ in ordered:
        if u in out or p in taken:
            continue
        out[u] = p
        taken.add(p)
    return out


# --------------------------------------------------------------------------------------
# Main entry point
# --------------------------------------------------------------------------------------

_LOADERS: dict[str, Callable] = {
    "france_services": _records_france_services,
    "cnfs_permanences": _records_cnfs,
    "lieux_cd49_2022": _records_cd49_2022,
    "conumm_angers": _records_conumm,
    "aidants_connect": _records_aidants_connect,
}

#: ``advisors_basis`` values: where a place's advisor count comes from.
ADVISORS_SOURCE = "source"
ADVISORS_RULE = "rule"
ADVISORS_DEFAULT = "default"

PLACE_COLUMNS = [
    "place_id",
    "name",
    "kinds",
    "sources",
    "source_ids",
    "insee",
    "commune",
    "epci",
    "siret",
    "service_level",
    "service_basis",
    "advisors",
    "advisors_assumed",
    "advisors_basis",
    "itinerant",
    "located",
    "is_lieu_mediation",
    "is_france_services",
    "is_cnfs",
    "is_aidants_connect",
    "geometry",
]


# --------------------------------------------------------------------------------------
# National frames cut per département (all of France: the rows a département may select)
# --------------------------------------------------------------------------------------
#: Columns read by the selection of each national source (point, postal code, INSEE
#: département, commune code): :func:`index_frames` parses them once.
_SELECT_COLUMNS: dict[str, dict[str, str]] = {
    "france_services": {"dep": "insee_dep"},
    "cnfs_permanences": {"lon": "longitude", "lat": "latitude", "postal": "code_postal"},
    "data_inclusion": {
        "lon": "longitude",
        "lat": "latitude",
        "postal": "code_postal",
        "code": "code_insee",
    },
    "aidants_connect": {"postal": "Zip Code", "code": "City Insee Code"},
}
#: Margin (degrees) added around a département's box of longitudes and latitudes: the
#: box already includes the coordinate tolerance; this only absorbs the curvature of
#: its edges (the cut is a superset, the selection itself is unchanged).
_CUT_MARGIN_DEG = 0.05


@dataclass
class FrameIndex:
    """Per-row keys of the national offer frames, parsed once (:func:`index_frames`).

    ``keys`` holds, per source of :data:`_SELECT_COLUMNS`, a frame aligned with the
    source frame: ``lon``/``lat`` (the point as the selection parses it, NaN when
    unusable), ``postal`` (normalised postal code, ``""`` when blank), ``dep``
    (normalised ``insee_dep``), ``code`` (current commune code, None when blank) and
    ``arr`` (commune of an arrondissement municipal code). ``postal_by_dep``: postal
    codes of each département (COG).
    """

    keys: dict[str, pd.DataFrame]
    postal_by_dep: dict[Any, frozenset[str]]


def index_frames(
    frames: Mapping[str, pd.DataFrame],
    *,
    cog_records: Sequence[Mapping[str, Any]],
    code_map: Mapping[str, str],
) -> FrameIndex:
    """Parse once what the selection of each national offer source reads (see
    :func:`departement_frames`); a frame lacking its columns is left out (uncut: its
    error is raised by :func:`places_from_frames`)."""
    by_postal: dict[str, set[Any]] = {}
    arrondissements: dict[str, str] = {}
    for r in cog_records:
        for p in r.get("codesPostaux") or []:
            by_postal.setdefault(p, set()).add(r.get("departement"))
        if r.get("type") == "arrondissement-municipal" and r.get("commune"):
            arrondissements[r["code"]] = r["commune"]
    postal_by_dep: dict[Any, set[str]] = {}
    for p, ds in by_postal.items():
        for d in ds:
            postal_by_dep.setdefault(d, set()).add(p)
    keys: dict[str, pd.DataFrame] = {}
    for key, cols in _SELECT_COLUMNS.items():
        df = frames.get(key)
        if not isinstance(df, pd.DataFrame) or any(c not in df.columns for c in cols.values()):
            continue
        k = pd.DataFrame(index=df.index)
        if "dep" in cols:
            k["dep"] = df[cols["dep"]].astype(str).str.strip().str.upper()
        if "lon" in cols:  # as _select_by_point parses them
            a = np.array([_parse_number(v)[0] for v in df[cols["lon"]]], float)
            b = np.array([_parse_number(v)[0] for v in df[cols["lat"]]], float)
            ok = (np.abs(a) <= 180) & (np.abs(b) <= 90)
            k["lon"], k["lat"] = np.where(ok, a, np.nan), np.where(ok, b, np.nan)
        if "postal" in cols:  # as _Context.postal_in_dep normalises them
            k["postal"] = [
                "0" + t if re.fullmatch(r"\d{4}", t) else t
                for t in (_text(v) for v in df[cols["postal"]])
            ]
        if "code" in cols:  # as _Context.current_code reads them
            raw = []
            for v in df[cols["code"]]:
                c = _text(v).upper()
                raw.append(None if not c else "0" + c if re.fullmatch(r"\d{4}", c) else c)
            k["code"] = [None if c is None else code_map.get(c, c) for c in raw]
            k["arr"] = [None if c is None else arrondissements.get(c) for c in raw]
        keys[key] = k
    return FrameIndex(keys, {d: frozenset(ps) for d, ps in postal_by_dep.items()})


def departement_frames(
    frames: Mapping[str, pd.DataFrame],
    index: FrameIndex,
    communes: gpd.GeoDataFrame,
    *,
    settings: Settings = DEFAULT,
) -> dict[str, pd.DataFrame]:
    """The rows of the national ``frames`` that département ``communes`` may select.

    A superset of what :func:`places_from_frames` reads for the département (same
    commune-code, postal-code and point rules, the point test on a box of longitudes and
    latitudes that contains the département and its coordinate tolerance), rows in
    file order: giving these frames (with ``in_file``, the national row counts) gives
    the same places and report as the national frames, in a fraction of the time.
    """
    dep = str(communes["departement"].iloc[0])
    idx = set(communes.index)
    dep_postal = index.postal_by_dep.get(dep, frozenset())
    tol = settings.coordinate_tolerance_m
    xmin, ymin, xmax, ymax = communes.total_bounds
    lon0, lat0, lon1, lat1 = _transformer(communes.crs, GEOGRAPHIC_CRS).transform_bounds(
        xmin - tol, ymin - tol, xmax + tol, ymax + tol, densify_pts=21
    )
    m = _CUT_MARGIN_DEG
    out = dict(frames)
    for key, k in index.keys.items():
        if key not in frames:
            continue
        keep = np.zeros(len(k), bool)
        if "dep" in k:
            keep |= (k["dep"] == dep).to_numpy(bool)
        near = np.zeros(len(k), bool)
        if "lon" in k:
            lon, lat = k["lon"].to_numpy(), k["lat"].to_numpy()
            with np.errstate(invalid="ignore"):
                near = (lon >= lon0 - m) & (lon <= lon1 + m) & (lat >= lat0 - m) & (lat <= lat1 + m)
        belongs = np.zeros(len(k), bool)
        if "postal" in k:
            p = k["postal"]
            in_postal = p.isin(dep_postal)
            if dep.isdigit():
                in_postal |= p.str.startswith(dep) & (p.str.len() == 5)
            belongs = in_postal.to_numpy(bool)
        if "code" in k:
            in_dep = (k["code"].isin(idx) | k["arr"].isin(idx)).to_numpy(bool)
            blank = k["code"].isna().to_numpy(bool)
            keep |= in_dep | (blank & (near | belongs))
        elif "postal" in k:
            keep |= near | belongs
        out[key] = frames[key][keep]
    return out


def _check_communes(communes: gpd.GeoDataFrame) -> str:
    dep = communes_table(
        communes,
        required=("nom", "departement", "epci", "chef_lieu_x", "chef_lieu_y"),
        crs="projected",
        one_departement=True,
    )
    return str(dep)


def places_from_frames(
    communes: gpd.GeoDataFrame,
    frames: Mapping[str, pd.DataFrame],
    *,
    cog_records: Sequence[Mapping[str, Any]],
    code_map: Mapping[str, str],
    missing_reasons: Mapping[str, str] | None = None,
    file_names: Mapping[str, str] | None = None,
    settings: Settings = DEFAULT,
    in_file: Mapping[str, int] | None = None,
    outline: Any = None,
) -> tuple[gpd.GeoDataFrame, OfferReport]:
    """Every place of the existing offer of the département of ``communes``, from raw frames.

    Parameters
    ----------
    communes : GeoDataFrame
        From :func:`cnfs_geo.territory.communes_from_cog`: index ``insee`` (COG 2026),
        columns ``nom``, ``departement`` (one value), ``epci``, ``chef_lieu_x``,
        ``chef_lieu_y``, polygon ``geometry`` in a projected working CRS.
    frames : mapping of str to DataFrame
        Raw frame per source key of :data:`SOURCE_ORDER` (``france_services``,
        ``cnfs_permanences``, ``lieux_cd49_2022``, ``lieux_cd49_2020``, ``conumm_angers``,
        ``data_inclusion``, ``aidants_connect``), as returned by the reader of
        :data:`READERS` (national or already filtered: records outside the département
        are not read). Each frame must meet its reader's column contract
        (:data:`CONTRACTS`, checked here; contact fields are dropped). A source without
        a frame is skipped and reported missing; CD49 and CONUMM frames are ignored
        outside département 49 (``"not applicable"``).
    cog_records : sequence of dict
        Records of the COG communes file (:func:`cnfs_geo.sources.cog.read_cog_records`):
        ``code``, ``nom``, ``type``, ``departement``, ``codesPostaux``, ``commune``
        (parent of an arrondissement municipal).
    code_map : mapping of str to str
        Any commune code (old or current) → current code
        (:func:`cnfs_geo.territory.current_code_map`).
    missing_reasons : mapping of str to str, optional
        Why a source has no frame (e.g. ``"file … not found in …"``), for the report's
        warnings; default ``"no frame given"``.
    file_names : mapping of str to str, optional
        File name of each source, quoted in warnings and rejection reasons; default the
        catalog file name (:data:`cnfs_geo.catalog.SOURCES`).
    settings : Settings
        ``dedup_distance_m``, ``coordinate_tolerance_m``, ``default_advisors``.
    in_file : mapping of str to int, optional
        Rows of each source's whole file, for the report's ``in_file`` counts when
        ``frames`` are cut (:func:`departement_frames`); default the frames' lengths.
    outline : shapely geometry, optional
        The union of the communes' polygons when the caller already has it (the geometry
        of :func:`cnfs_geo.territory.departement_outline`); default computed here.

    Returns
    -------
    places : GeoDataFrame
        RangeIndex (use ``places.set_index("place_id")`` for OD tables); one row per
        place, sorted by ``place_id``; CRS of ``communes``. Columns:

        - ``place_id`` (str): group key of the first record in source order, e.g.
          ``"fs:275"``, ``"cnfs:62711a9a…"``, ``"cd49:LMN266"``, ``"conumm:43"``,
          ``"di:siao:138"``, ``"ac:14"``; stable for the same input files.
        - ``name`` (str): name of that record.
        - ``kinds`` (str): ``;``-joined sorted kinds (aidants_connect, cnfs,
          france_services, lieu_mediation).
        - ``sources`` (str): ``;``-joined source keys (source order).
        - ``source_ids`` (str): ``;``-joined ``source_key:record_id`` of every record.
        - ``insee`` (str, COG 2026), ``commune`` (nom), ``epci`` (SIREN str).
        - ``siret`` (str of 14 digits or None): first SIRET among the records.
        - ``service_level`` (``"accompaniment"`` | ``"access"``) and
          ``service_basis`` (str): ``"[source:record_id] rule"`` entries joined by
          ``" | "``: the records that make the place accompaniment (or, for access,
          every record with its fields).
        - ``advisors`` (float), ``advisors_assumed`` (bool: a default value),
          ``advisors_basis``: ``"source"`` (CNFS ``nb_aidants``, else the Aidants
          Connect ``Nombre d'aidants``), ``"rule"`` (France
          Services charter: two agents at least) or ``"default"``
          (``settings.default_advisors``).
        - ``itinerant`` (bool): a bus / itinerant France Services (point = home base).
        - ``located`` (``"address"`` | ``"commune"``): ``commune`` = chef-lieu point.
        - ``is_lieu_mediation``, ``is_france_services``, ``is_cnfs``,
          ``is_aidants_connect`` (bool).
        - ``geometry`` (Point).
    report : OfferReport

    Raises
    ------
    ValidationError
        An unknown source key, a frame lacking required columns, no frame for the
        département, or ``communes`` malformed.

    Examples
    --------
    >>> from cnfs_geo import catalog, territory, offer
    >>> from cnfs_geo.sources.cog import read_cog_records
    >>> d = catalog.resolve_data_dir()
    >>> fs = offer.READERS["france_services"](d.file("france_services"))
    >>> places, report = offer.places_from_frames(
    ...     territory.communes_from_cog("49", d), {"france_services": fs},
    ...     cog_records=read_cog_records(d.file("cog_communes")),
    ...     code_map=territory.current_code_map(d))
    >>> len(places), int(report.counts.set_index("source").at["france_services", "kept"])
    (28, 28)
    """
    dep = _check_communes(communes)
    unknown = sorted(set(frames) - set(SOURCE_ORDER))
    if unknown:
        raise ValidationError(
            "frames",
            [f"unknown source key(s) {unknown}; the offer sources are {list(SOURCE_ORDER)}"],
        )
    dep_postal, postal_deps, arrondissements = _cog_tables(cog_records, dep)
    if outline is None:
        outline = shapely.union_all(communes.geometry.to_numpy())
    code_map = dict(code_map)
    for arr, com in arrondissements.items():  # communes may be whole cities, not arrondissements
        if arr not in communes.index and com in communes.index:
            code_map[arr] = com
    ctx = _Context(
        dep=dep,
        cog_records=cog_records,
        communes=communes,
        outline=outline,
        code_map=code_map,
        dep_postal=dep_postal,
        postal_deps=postal_deps,
        settings=settings,
        warnings=[],
    )
    missing_reasons = missing_reasons or {}
    file_names = {
        **{k: Path(catalog.SOURCES[k].relpath).name for k in SOURCE_ORDER},
        **(file_names or {}),
    }

    # 1. check the frame of every available source
    tables: dict[str, pd.DataFrame] = {}
    status: dict[str, str] = {}
    missing: list[str] = []
    for key in SOURCE_ORDER:
        if key in LOCAL_SOURCES and LOCAL_SOURCES[key] != dep:
            status[key] = "not applicable"
            missing.append(key)
            msg = (
                f"{key}: describes département {LOCAL_SOURCES[key]} only; not used for "
                f"département {dep}"
            )
            log.info(msg)  # expected everywhere but 49: the report says it, no warning
            ctx.warnings.append(msg)
            continue
        if frames.get(key) is None:
            status[key] = "missing"
            missing.append(key)
            msg = f"{key}: {missing_reasons.get(key, 'no frame given')}; source skipped"
            log.warning(msg)
            ctx.warnings.append(msg)
            continue
        tables[key] = CONTRACTS[key].check(frames[key], f"frames[{key!r}]").reset_index(drop=True)
        status[key] = "read"
    if not tables:
        raise ValidationError(
            "frames",
            [
                f"no source of the existing offer is available for département {dep}: give the "
                f"frame of at least one of "
                f"{[k for k in SOURCE_ORDER if status[k] != 'not applicable']}"
            ],
        )

    # 2. normalise each source to records
    records: dict[str, pd.DataFrame] = {}
    for key in SOURCE_ORDER:
        if key not in tables:
            continue
        if key == "lieux_cd49_2020":
            ids22 = (
                set(
                    records["lieux_cd49_2022"].loc[
                        records["lieux_cd49_2022"]["status"] == "ok", "record_id"
                    ]
                )
                if "lieux_cd49_2022" in records
                else set()
            )
            rec = _records_cd49_2020(tables[key], ctx, ids22)
        elif key == "data_inclusion":
            cn = (
                set(records["cnfs_permanences"]["record_id"])
                if "cnfs_permanences" in records
                else set()
            )
            rec = _records_data_inclusion(tables[key], ctx, cn)
        else:
            rec = _LOADERS[key](tables[key], ctx)
        for note in rec["note"].dropna():
            ctx.warnings.append(note)
        rec = _locate(rec, file_names[key], ctx)
        rec.insert(0, "source", key)
        records[key] = rec

    allrec = pd.concat(records.values(), ignore_index=True)
    allrec["order"] = allrec["source"].map({k: i for i, k in enumerate(SOURCE_ORDER)})
    allrec["kind"] = allrec["source"].map(SOURCE_KIND)

    # 3. unusable coordinates: merged through an identifier into a located record, else
    #    relocated at the commune (when the record has a commune code), else rejected
    good = (allrec["status"] == "ok") & allrec["coord_problem"].isna() & allrec["located"].notna()
    located_keys = set(allrec.loc[good, "group_key"])
    bad = allrec.index[allrec["coord_problem"].notna() & (allrec["status"] == "ok")]
    pending = []
    for i in bad:
        prob, code = allrec.at[i, "coord_problem"], allrec.at[i, "code"]
        if allrec.at[i, "group_key"] in located_keys:
            pending.append(i)
        elif isinstance(code, str) and code in communes.index:
            allrec.at[i, "located"] = "commune"
            ctx.warnings.append(
                f"{prob}; relocated at the chef-lieu of its commune {code} "
                f"({communes.at[code, 'nom']}), located='commune'"
            )
        else:
            pending.append(i)
    located_keys |= set(allrec.loc[allrec["located"] == "commune", "group_key"])
    for i in pending:
        prob = allrec.at[i, "coord_problem"]
        if allrec.at[i, "group_key"] in located_keys:
            allrec.at[i, "located"] = "via-id"
            ctx.warnings.append(
                f"{prob}; coordinates ignored: merged by identifier into place "
                f"{allrec.at[i, 'group_key']}"
            )
        else:
            allrec.at[i, "status"] = "rejected"
            allrec.at[i, "reason"] = f"{prob}; no commune code to relocate it"
    commune_level = (allrec["status"] == "ok") & (allrec["located"] == "commune")
    codes = allrec.loc[commune_level, "code"]
    allrec.loc[commune_level, "x"] = communes.loc[codes, "chef_lieu_x"].to_numpy()
    allrec.loc[commune_level, "y"] = communes.loc[codes, "chef_lieu_y"].to_numpy()
    ok = allrec["status"] == "ok"
    allrec["insee"] = None
    allrec.loc[ok, "insee"] = _assign_communes(allrec.loc[ok], ctx)["insee"]
    noms = communes["nom"].to_dict()
    allrec["name_key"] = [
        None if (nm or not isinstance(i, str)) else _name_keys(n, noms.get(i))
        for n, nm, i in zip(allrec["name"], allrec["no_name_match"], allrec["insee"])
    ]

    # 4. units = records sharing a group key (same id); anchor = first in source order
    live = allrec[ok].sort_values(["order", "record_id"], kind="stable")
    live = live.assign(_loc=live["located"].isin(["address", "commune"]))
    anchors = live[live["_loc"]].drop_duplicates("group_key", keep="first").set_index("group_key")
    units = anchors[["source", "order", "x", "y", "located", "insee"]].copy()
    units["group_key"] = units.index
    units["sirets"] = (
        live.groupby("group_key")["siret"]
        .agg(lambda s: frozenset(v for v in s if isinstance(v, str) and v))
        .reindex(units.index)
    )
    units["names"] = (
        live.groupby("group_key")["name_key"]
        .agg(lambda s: tuple(dict.fromkeys(v for v in s if isinstance(v, tuple))))
        .reindex(units.index)
    )
    batch_of = {"lieux_cd49_2020": "lieux_cd49_2022"}
    units["srcset"] = (
        live.groupby("group_key")["source"]
        .agg(lambda s: frozenset(batch_of.get(v, v) for v in s))
        .reindex(units.index)
    )
    units = units.rename_axis(None).sort_values(["order", "group_key"], kind="stable")

    # 5. cross-source matching, source group by source group
    places = pd.DataFrame(
        columns=["place_id", "x", "y", "located", "insee", "sirets", "names", "sources"]
    )
    unit_place: dict[str, str] = {}
    units["batch"] = units["source"].map(lambda s: batch_of.get(s, s))
    for batch in dict.fromkeys(units["batch"]):
        u = units[units["batch"] == batch].reset_index(drop=True)
        u["source"] = batch
        m = _match(u, places.reset_index(drop=True), settings.dedup_distance_m)
        pl = places.reset_index(drop=True)
        for ui, pi in m.items():
            pid = pl.at[pi, "place_id"]
            unit_place[u.at[ui, "group_key"]] = pid
            pl.at[pi, "sources"] = pl.at[pi, "sources"] | u.at[ui, "srcset"]
            pl.at[pi, "sirets"] = pl.at[pi, "sirets"] | u.at[ui, "sirets"]
            pl.at[pi, "names"] = tuple(dict.fromkeys(pl.at[pi, "names"] + u.at[ui, "names"]))
        new = u[~u.index.isin(list(m))]
        for gk in new["group_key"]:
            unit_place[gk] = gk
        add = pd.DataFrame(
            {
                "place_id": new["group_key"],
                "x": new["x"],
                "y": new["y"],
                "located": new["located"],
                "insee": new["insee"],
                "sirets": new["sirets"],
                "names": new["names"],
                "sources": new["srcset"].to_list(),
            }
        )
        places = pd.concat([pl, add], ignore_index=True) if len(pl) else add.reset_index(drop=True)

    # 6. record statuses and counts
    allrec["place_id"] = allrec["group_key"].map(unit_place)
    allrec.loc[allrec["status"] != "ok", "place_id"] = None
    first = allrec[allrec["place_id"].notna()].sort_values(["order", "record_id"], kind="stable")
    first = first[first["located"].isin(["address", "commune"])]
    anchor_idx = first.drop_duplicates("place_id", keep="first").index
    allrec.loc[allrec["status"] == "ok", "status"] = "merged"
    allrec.loc[anchor_idx, "status"] = "kept"

    rows = []
    for key in SOURCE_ORDER:
        r = allrec[allrec["source"] == key]
        rows.append(
            {
                "source": key,
                "status": status[key],
                "in_file": (
                    int((in_file or {}).get(key, len(tables[key]))) if key in tables else 0
                ),
                "read": len(r),
                "kept": int((r["status"] == "kept").sum()),
                "merged": int((r["status"] == "merged").sum()),
                "rejected": int((r["status"] == "rejected").sum()),
            }
        )
    counts = pd.DataFrame(rows)
    rej = allrec[allrec["status"] == "rejected"].sort_values(["order", "record_id"])
    rejected = rej[["source", "record_id", "name", "reason"]].reset_index(drop=True)

    # 7. build places
    out = _aggregate(allrec[allrec["place_id"].notna()], places, communes, settings)
    report = OfferReport(
        counts=counts,
        rejected=rejected,
        warnings=ctx.warnings,
        missing_sources=missing,
        dedup_rule=DEDUP_RULE.format(d=settings.dedup_distance_m),
        departement=dep,
    )
    for row in rows:
        log.info(
            "offer %s %s: %s — in file %d, read %d, kept %d, merged %d, rejected %d",
            dep,
            row["source"],
            row["status"],
            row["in_file"],
            row["read"],
            row["kept"],
            row["merged"],
            row["rejected"],
        )
    log.info(
        "offer %s: %d places (%d accompaniment, %d access), %d warnings, missing sources %s",
        dep,
        len(out),
        int((out["service_level"] == "accompaniment").sum()),
        int((out["service_level"] == "access").sum()),
        len(ctx.warnings),
        missing,
    )
    for w in ctx.warnings:  # the detail the French summary points to (``-v``)
        log.info("offer %s warning: %s", dep, w)
    return out, report


def _aggregate(
    rec: pd.DataFrame, places: pd.DataFrame, communes: gpd.GeoDataFrame, settings: Settings
) -> gpd.GeoDataFrame:
    """One row per place from its records (anchor = first record in source order)."""
    rec = rec.sort_values(["order", "record_id"], kind="stable")
    cols = [
        "place_id",
        "source",
        "record_id",
        "name",
        "kind",
        "siret",
        "service_level",
        "service_basis",
        "advisors",
        "itinerant",
        "located",
        "insee",
    ]
    groups: dict[str, list[dict]] = {}
    for r in rec[cols].to_dict("records"):
        groups.setdefault(r["place_id"], []).append(r)
    geo = places.set_index("place_id")[["x", "y", "located"]].to_dict("index")
    noms, epcis = communes["nom"].to_dict(), communes["epci"].to_dict()
    rows = []
    for pid in sorted(groups):
        g = groups[pid]
        anchor = next(r for r in g if r["located"] in ("address", "commune"))
        kinds = sorted({r["kind"] for r in g})
        acc = [r for r in g if r["service_level"] == "accompaniment"]
        level = "accompaniment" if acc else "access"
        deciding = acc or [r for r in g if isinstance(r["service_level"], str)]
        basis = " | ".join(
            f"[{r['source']}:{r['record_id']}] {r['service_basis']}" for r in deciding
        )
        cn = [r["advisors"] for r in g if r["kind"] == "cnfs" and pd.notna(r["advisors"])]
        ac = [
            r["advisors"] for r in g if r["kind"] == "aidants_connect" and pd.notna(r["advisors"])
        ]
        floor = settings.default_advisors["france_services"] if "france_services" in kinds else 0
        if cn:
            advisors, basis_adv = float(sum(cn)), ADVISORS_SOURCE
        elif ac and max(ac) >= floor:
            # Aidants Connect gives its number of habilitated aidants
            advisors, basis_adv = float(max(ac)), ADVISORS_SOURCE
        elif ac:
            advisors, basis_adv = float(floor), ADVISORS_RULE
        else:
            advisors = float(max(settings.default_advisors[k] for k in kinds))
            # the France Services charter staffs every site with two agents at least: a
            # documented rule, not a guess
            basis_adv = ADVISORS_RULE if "france_services" in kinds else ADVISORS_DEFAULT
        assumed = basis_adv == ADVISORS_DEFAULT
        sirets = [r["siret"] for r in g if isinstance(r["siret"], str) and r["siret"]]
        insee = anchor["insee"]
        rows.append(
            {
                "place_id": pid,
                "name": anchor["name"],
                "kinds": ";".join(kinds),
                "sources": ";".join(dict.fromkeys(r["source"] for r in g)),
                "source_ids": ";".join(f"{r['source']}:{r['record_id']}" for r in g),
                "insee": insee,
                "commune": noms[insee],
                "epci": epcis[insee],
                "siret": sirets[0] if sirets else None,
                "service_level": level,
                "service_basis": basis,
                "advisors": advisors,
                "advisors_assumed": assumed,
                "advisors_basis": basis_adv,
                "itinerant": any(bool(r["itinerant"]) for r in g),
                "located": geo[pid]["located"],
                "is_lieu_mediation": "lieu_mediation" in kinds,
                "is_france_services": "france_services" in kinds,
                "is_cnfs": "cnfs" in kinds,
                "is_aidants_connect": "aidants_connect" in kinds,
                "x": geo[pid]["x"],
                "y": geo[pid]["y"],
            }
        )
    df = pd.DataFrame(rows, columns=PLACE_COLUMNS[:-1] + ["x", "y"])
    gdf = gpd.GeoDataFrame(
        df.drop(columns=["x", "y"]), geometry=gpd.points_from_xy(df["x"], df["y"]), crs=communes.crs
    )
    for c in (
        "advisors_assumed",
        "itinerant",
        "is_lieu_mediation",
        "is_france_services",
        "is_cnfs",
        "is_aidants_connect",
    ):
        gdf[c] = gdf[c].astype(bool)
    gdf["advisors"] = gdf["advisors"].astype(float)
    gdf["siret"] = gdf["siret"].astype(object).where(gdf["siret"].notna(), None)
    return gdf.reset_index(drop=True)[PLACE_COLUMNS]


def read_sources(
    data_dir: catalog.DataDir, departement: str | None = None
) -> tuple[dict[str, pd.DataFrame], dict[str, str], dict[str, str]]:
    """Read and check the offer files of ``data_dir`` (those that apply to
    ``departement`` when given: the CD49 and CONUMM files for 49 only).

    Returns the frames by source key (:data:`READERS`), their file names, and why each
    absent source was not read (a source that does not apply is not listed).

    Raises
    ------
    DataFileError, ValidationError
        A file that cannot be parsed or lacks a column (named, with the fix).
    """
    frames: dict[str, pd.DataFrame] = {}
    file_names: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for key in SOURCE_ORDER:
        if departement is not None and LOCAL_SOURCES.get(key, departement) != departement:
            continue  # not applicable: reported by places_from_frames, not read
        path = data_dir.file(key, required=False)
        if path is None:
            reasons[key] = f"file {catalog.SOURCES[key].relpath} not found in {data_dir.path}"
            continue
        frames[key], file_names[key] = READERS[key](path), path.name
    return frames, file_names, reasons


def places_from_sources(
    communes: gpd.GeoDataFrame, data_dir: catalog.DataDir, *, settings: Settings = DEFAULT
) -> tuple[gpd.GeoDataFrame, OfferReport]:
    """Every place of the existing offer of the département of ``communes``, from files.

    Reads every offer file of ``data_dir`` present (:data:`READERS`; CD49 and CONUMM
    files only for département 49) and the COG, then hands over to
    :func:`places_from_frames`.

    Parameters
    ----------
    communes : GeoDataFrame
        From :func:`cnfs_geo.territory.communes_from_cog` (see :func:`places_from_frames`).
    data_dir : DataDir
        From :func:`cnfs_geo.catalog.resolve_data_dir` (bundle or national files).
    settings : Settings
        ``dedup_distance_m``, ``coordinate_tolerance_m``, ``default_advisors``.

    Returns
    -------
    places : GeoDataFrame
        As :func:`places_from_frames`.
    report : OfferReport

    Raises
    ------
    ValidationError
        A file lacks required columns (message names file, columns, expected format),
        or ``communes`` is malformed.
    DataFileError
        No source file at all is available, or a file cannot be parsed.

    Examples
    --------
    >>> from cnfs_geo import catalog, territory, offer
    >>> d = catalog.resolve_data_dir()
    >>> places, report = offer.places_from_sources(territory.communes_from_cog("49", d), d)
    >>> int(places["is_france_services"].sum()), int(places["itinerant"].sum())
    (28, 1)
    >>> bool((report.counts.read == report.counts.kept + report.counts.merged
    ...       + report.counts.rejected).all())
    True
    """
    dep = _check_communes(communes)
    cog_records = read_cog_records(data_dir.file("cog_communes"))
    code_map = territory.current_code_map(data_dir)
    frames, file_names, reasons = read_sources(data_dir, dep)
    if not frames:
        raise DataFileError(
            "no source of the existing offer is available for département "
            f"{dep}.\n"
            + catalog.missing_files_message(
                [k for k in SOURCE_ORDER if k not in LOCAL_SOURCES], data_dir
            )
        )
    return places_from_frames(
        communes,
        frames,
        cog_records=cog_records,
        code_map=code_map,
        missing_reasons=reasons,
        file_names=file_names,
        settings=settings,
    )
