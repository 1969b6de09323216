"""Permanences of the conseillers numériques France Services (CNFS, JSON, WGS84)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ._contract import Contract, read_json_records

CONTRACT = Contract(
    "cnfs_permanences",
    ("id", "nom", "pivot", "code_postal", "latitude", "longitude", "nb_aidants"),
    "JSON list of CNFS permanences (conseiller-numerique.gouv.fr export) with WGS84 "
    "latitude/longitude and nb_aidants",
)


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
        ``longitude`` (WGS84), ``nb_aidants`` (number of advisors). No INSEE code.
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
    return read_json_records(Path(path), CONTRACT)
