"""ANCT « Liste des structures France services » (CSV, WGS84)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ._contract import Contract, read_csv_strings
from ._io import check_unique, read_once

CONTRACT = Contract(
    "france_services",
    ("id_fs", "insee_dep", "lib_fs", "insee_com", "latitude", "longitude", "format_fs"),
    "CSV (virgule, UTF-8) de la « Liste des structures France services » de l'ANCT, "
    "latitude/longitude WGS84 décimales",
)


@read_once
def read_france_services(path: str | Path) -> pd.DataFrame:
    """Raw France Services records of the ANCT CSV (national, or the 49 bundle's copy).

    Parameters
    ----------
    path : str or Path
        The CSV (``france_services/liste-fs-20240801.csv`` of a data directory).

    Returns
    -------
    DataFrame
        RangeIndex, one row per line of the file in file order; every value a ``str``
        as written (blank = ``""``: leading zeros of codes kept). At least the columns
        ``id_fs``, ``insee_dep`` (département code, ``"2A"``, ``"974"``…), ``lib_fs``
        (name), ``insee_com`` (commune code, COG 2024), ``latitude``, ``longitude``
        (WGS84 decimal degrees, as text), ``format_fs`` (``Bus``/``Itinérante`` for
        itinerant structures); other columns of the file are kept, except the contact
        fields (``mail``, ``telephone``, see
        :data:`cnfs_geo.sources._contract.CONTACT_FIELDS`), which are dropped.

    Raises
    ------
    DataFileError
        The file cannot be read or parsed as CSV.
    ValidationError
        A required column is missing (the message names file, columns, expected format).

    Examples
    --------
    >>> from cnfs_geo import catalog
    >>> fs = read_france_services(catalog.resolve_data_dir().file("france_services"))
    >>> len(fs), "mail" in fs.columns
    (28, False)
    """
    df = read_csv_strings(Path(path), CONTRACT)
    check_unique(df, ["id_fs"], path, "structure France services (id_fs)")
    return df
