"""COG files of ``@etalab/decoupage-administratif``: communes (``communes.json``) and the
table of communes re-created after 2018 shipped with the package."""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .. import _journal
from .._errors import FileFormatError, MissingColumnError
from ._io import RESTORE, check_unique, file_key, read_json

# Columns of :func:`read_cog_communes`.
COG_COLUMNS = (
    "code",
    "nom",
    "type",
    "departement",
    "population",
    "chefLieu",
    "zone",
    "commune",
    "anciensCodes",
)

RECREATED_FILE = "recreated_communes.csv"
RECREATED_COLUMNS = ("nom", "departement", "parent_code_2018", "parent_nom_2018", "reason")


def read_cog_records(path: Path) -> list[dict]:
    """Raw records of a COG ``communes.json`` (actuelles, déléguées, associées,
    arrondissements), as published: one dict per record (``code``, ``nom``, ``type``,
    ``departement``, ``population``, ``chefLieu``, ``codesPostaux``, ``anciensCodes``…).

    Cached per path, modification time and size: callers must not mutate the records.
    """
    return read_json(Path(path))


# Largest plausible population of one commune (Paris: 2.1 million) and of the whole COG
# (France: 68 million); a value above is a corrupted file, not a big commune.
MAX_COMMUNE_POPULATION = 3_000_000
MAX_TOTAL_POPULATION = 75_000_000


def _check_cog(recs: object, path: str) -> pd.DataFrame:
    if not isinstance(recs, list) or not all(isinstance(r, dict) for r in recs):
        raise FileFormatError(
            path,
            [
                "une liste JSON d'enregistrements {code, nom, type, departement…} est attendue "
                f"(communes.json de @etalab/decoupage-administratif) ; correction : {RESTORE}"
            ],
        )
    df = pd.DataFrame(recs)
    if "code" in df.columns and "type" in df.columns:
        check_unique(df, ["code", "type"], path, "commune (code / type)")
    if "population" in df.columns:
        pop = pd.to_numeric(df["population"], errors="coerce")
        given = df["population"].notna()
        bad = given & ~((pop >= 0) & (pop <= MAX_COMMUNE_POPULATION) & (pop == pop.round()))
        problems = [
            f"commune {c} : population {v!r} invalide (un entier entre 0 et "
            f"{MAX_COMMUNE_POPULATION:_} est attendu)".replace("_", " ")
            for c, v in zip(df.loc[bad, "code"], df.loc[bad, "population"])
        ]
        total = pop[given & ~bad & (df.get("type") == "commune-actuelle")].sum()
        if total > MAX_TOTAL_POPULATION:
            problems.append(
                f"population totale des communes {total:.0f} invraisemblable (France : 68 millions)"
            )
        if problems:
            raise FileFormatError(
                path, problems[:10] + [f"correction : corriger ces valeurs ou {RESTORE}"]
            )
    return df


@lru_cache(maxsize=2)
def _cog_frame(path: str, mtime_ns: int, size: int) -> pd.DataFrame:
    df = _check_cog(read_json(Path(path)), path)
    missing = {"code", "nom", "type", "departement"} - set(df.columns)
    if missing:
        raise MissingColumnError(
            path,
            [
                f"missing field(s) {sorted(missing)}: expected the "
                "@etalab/decoupage-administratif communes.json format"
            ],
        )
    for col in ("population", "chefLieu", "zone", "commune", "anciensCodes"):
        if col not in df.columns:
            df[col] = np.nan
    return df[list(COG_COLUMNS)]


def read_cog_communes(path: Path) -> pd.DataFrame:
    """All records of a COG ``communes.json`` as a frame.

    Parameters
    ----------
    path : path
        ``cog/communes.json`` (catalog source ``cog_communes``).

    Returns
    -------
    pandas.DataFrame
        One row per record (actuelles, déléguées, associées, arrondissements), in file
        order (RangeIndex). Columns ``code``, ``nom``, ``type``, ``departement``,
        ``population``, ``chefLieu`` (string codes), ``zone`` (``metro``, ``drom`` or
        ``com``), ``commune`` (parent commune of an arrondissement municipal),
        ``anciensCodes`` (list of former codes of a current commune; NaN when none).
        Optional fields absent from the file are NaN. The parsed file is cached (per
        path, modification time and size); the caller gets a copy.

    Raises
    ------
    DataFileError
        Unreadable file.
    MissingColumnError
        ``code``, ``nom``, ``type`` or ``departement`` absent.
    """
    df = _cog_frame(*file_key(Path(path))).copy()
    _journal.read_count("cog_communes", path, len(df))
    return df


def read_recreated_communes(path: Path | None = None) -> pd.DataFrame:
    """Communes re-created by a split after 2018, with the 2018 polygon they lie in.

    Parameters
    ----------
    path : path, optional
        A CSV ``insee,nom,departement,parent_code_2018,parent_nom_2018,reason``; by
        default ``cnfs_geo/data/recreated_communes.csv`` (shipped with the package).

    Returns
    -------
    pandas.DataFrame
        Index ``insee`` (COG 2026). Columns ``nom``, ``departement``,
        ``parent_code_2018`` (code of the 2018 polygon holding its territory),
        ``parent_nom_2018``, ``reason`` (evidence); all strings.
    """
    if path is None:
        with (
            resources.files("cnfs_geo")
            .joinpath("data", RECREATED_FILE)
            .open(encoding="utf-8") as fh
        ):
            df = pd.DataFrame(list(csv.DictReader(fh)))
    else:
        with open(path, encoding="utf-8") as fh:
            df = pd.DataFrame(list(csv.DictReader(fh)))
    missing = [c for c in ("insee", *RECREATED_COLUMNS) if c not in df.columns]
    if missing:
        raise MissingColumnError(
            str(path or RECREATED_FILE), [f"missing column {c!r}" for c in missing]
        )
    return df.set_index("insee")


def read_departement_names(path: Path) -> dict[str, str]:
    """Département code → French name, from a COG ``departements.json``.

    Returns
    -------
    dict
        ``{"49": "Maine-et-Loire", "2A": "Corse-du-Sud", …}`` (codes as strings).

    Raises
    ------
    DataFileError
        The file cannot be read as JSON.
    MissingColumnError
        The file is not a list of ``{code, nom}`` records.
    """
    recs = read_json(Path(path))
    if not isinstance(recs, list) or not all(
        isinstance(r, dict) and "code" in r and "nom" in r for r in recs
    ):
        raise MissingColumnError(
            str(path),
            ["expected a JSON list of {code, nom} records (COG departements.json)"],
        )
    return {str(r["code"]): str(r["nom"]) for r in recs}
