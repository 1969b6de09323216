"""data·inclusion lieux de médiation numérique (JSON, LieuMediationNumerique schema, WGS84)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ._contract import Contract, read_json_records
from ._io import read_once

CONTRACT = Contract(
    "data_inclusion",
    (
        "id",
        "nom",
        "pivot",
        "code_insee",
        "code_postal",
        "latitude",
        "longitude",
        "source",
        "services",
    ),
    "liste JSON au schéma LieuMediationNumerique (data·inclusion)",
)


@read_once
def read_data_inclusion(path: str | Path) -> pd.DataFrame:
    """Raw lieux of the data·inclusion export (national, partial; sanitized copy).

    Parameters
    ----------
    path : str or Path
        The JSON list
        (``lieux_mediation/data-inclusion_lieux-mediation-numerique_2023-02_sanitized.json``).

    Returns
    -------
    DataFrame
        RangeIndex, one row per lieu in file order; values as parsed from JSON (a
        missing key is NaN). At least the columns ``id``, ``source`` (producer:
        ``conseiller-numerique`` rows carry the CNFS permanence ``id``), ``nom``,
        ``pivot`` (SIRET), ``code_insee`` (may be blank), ``code_postal``,
        ``latitude``, ``longitude`` (WGS84), ``services`` (``;``-joined); also
        ``modalites_accompagnement`` and ``labels_nationaux`` when present. Contact
        fields (``courriel``, ``telephone``) are dropped.

    Raises
    ------
    DataFileError
        The file cannot be read or parsed as JSON.
    ValidationError
        Not a list of objects, or a required column is missing.

    Examples
    --------
    >>> from cnfs_geo import catalog
    >>> di = read_data_inclusion(catalog.resolve_data_dir().file("data_inclusion"))
    >>> "conseiller-numerique" in set(di["source"])
    True
    """
    return read_json_records(Path(path), CONTRACT)
