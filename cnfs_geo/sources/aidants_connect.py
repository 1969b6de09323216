"""Aidants Connect « structures habilitées » export (CSV, commune code, no coordinates)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ._contract import Contract, read_csv_strings
from ._io import read_once

CONTRACT = Contract(
    "aidants_connect",
    ("ID", "Name", "Is Active", "City Insee Code", "Zip Code", "Siret"),
    "CSV de l'export des structures Aidants Connect (code commune, sans coordonnées)",
)


@read_once
def read_aidants_connect(path: str | Path) -> pd.DataFrame:
    """Raw structures of the Aidants Connect export.

    Parameters
    ----------
    path : str or Path
        The CSV (``lieux_mediation/aidants-connect_structures_2024-02-12.csv``).

    Returns
    -------
    DataFrame
        RangeIndex, one row per structure in file order; every value a ``str`` as
        written (blank = ``""``). At least the columns ``ID``, ``Name``, ``Is Active``
        (``"True"``/``"False"``), ``City Insee Code`` (may be blank), ``Zip Code``
        (leading zero may be lost), ``Siret`` (may be float-formatted,
        ``"13002603200016.0"``); also ``City`` when present (used to find the commune of
        a record without code). No coordinates. Contact fields are dropped.

    Raises
    ------
    DataFileError
        The file cannot be read or parsed as CSV.
    ValidationError
        A required column is missing.

    Examples
    --------
    >>> from cnfs_geo import catalog
    >>> ac = read_aidants_connect(catalog.resolve_data_dir().file("aidants_connect"))
    >>> ac.loc[0, ["ID", "City Insee Code"]].tolist()
    ['14', '49063']
    """
    return read_csv_strings(Path(path), CONTRACT)
