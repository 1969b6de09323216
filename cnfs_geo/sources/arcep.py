"""ARCEP « Ma connexion internet » fibre file: premises and FTTH-eligible premises per
commune (COG 2024 codes)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import _journal
from ._io import check_counts, check_unique, read_csv_columns, read_once

FIBRE_COLUMNS = ["nb_locaux", "nb_locaux_fibre"]


@read_once
def read_fibre(path: Path) -> pd.DataFrame:
    """The ARCEP fibre file, as strings.

    Returns
    -------
    pandas.DataFrame
        One row per commune code of the file, in file order, every column a string
        (blanks kept as ``""``). Holds at least ``code_insee``, ``commune``,
        ``nb_locaux`` and ``nb_locaux_fibre`` (counts; parsed by
        :func:`cnfs_geo.need.fibre_from_frame`). ``attrs["source"]`` is the path.

    Raises
    ------
    ValidationError
        Not a UTF-8 CSV with the same number of fields on every line, a duplicated
        ``code_insee``, a count that is not a number ≥ 0 (FileFormatError);
        :class:`~cnfs_geo._errors.MissingColumnError` when a column is absent.
    """
    df = read_csv_columns(path, ["code_insee", "commune", *FIBRE_COLUMNS])
    check_unique(df, ["code_insee"], path, "code commune (code_insee)")
    check_counts(df, FIBRE_COLUMNS, path, "code_insee")
    _journal.read_count("fibre", path, len(df))
    return df
