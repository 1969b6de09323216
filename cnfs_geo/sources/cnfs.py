"""Permanences of the conseillers numériques France Services (CNFS, JSON, WGS84)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import _journal
from ._contract import Contract, read_json_records
from ._io import read_once

CONTRACT = Contract(
    "cnfs_permanences",
    ("id", "nom", "pivot", "code_postal", "latitude", "longitude", "nb_aidants"),
    "liste JSON des permanences des conseillers numériques (export "
    "conseiller-numerique.gouv.fr), latitude/longitude WGS84 et nb_aidants",
)


@read_once
def read_cnfs_permanences(path: str | Path) -> pd.DataFrame:
    """Raw CNFS permanences of the conseiller-numerique.gouv.fr export (sanitized copy).

    Parameters
    ----------
    path : str or Path
        The JSON list (``cnfs/cnfs_permanences_conseiller-numerique_2022-12-02_sanitized.json``).

    Returns
    -------
    DataFrame
        RangeIndex, one row per permanence in file order; values as parsed from JSON
        (numbers stay numbers, a missing key is NaN). At least the columns ``id``
        (str), ``nom``, ``pivot`` (SIRET), ``code_postal``, ``latitude``,
        ``longitude`` (WGS84), ``nb_aidants`` (number of advisors; a value that is not
        a number > 0 is kept as written and recorded as repaired in the journal, the
        offer stage using the default). No INSEE code.
        Contact fields (``aidants``, ``courriel``, ``telephone``…) are dropped.

    Raises
    ------
    DataFileError
        The file cannot be read or parsed as JSON.
    ValidationError
        Not a list of objects, or a required column is missing.

    Examples
    --------
    >>> from cnfs_geo import catalog
    >>> cn = read_cnfs_permanences(catalog.resolve_data_dir().file("cnfs_permanences"))
    >>> int(cn["nb_aidants"].sum())
    46
    """
    df = read_json_records(Path(path), CONTRACT)
    for rid, v in zip(df["id"], df["nb_aidants"]):
        num = pd.to_numeric(pd.Series([v]), errors="coerce").iloc[0]
        if not (isinstance(v, (int, float)) and not isinstance(v, bool) and num > 0):
            _journal.record(
                CONTRACT.key,
                path,
                "repaired",
                f"permanence {rid} : nb_aidants {v!r} n'est pas un nombre > 0, remplacé par le "
                "nombre de conseillers par défaut (settings.default_advisors)",
            )
    return df
