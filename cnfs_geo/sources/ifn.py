"""IFN 2023 (ANCT / La MedNum indice de fragilité numérique) per commune: 0–10 scores."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import _journal
from ._io import check_counts, check_unique, read_csv_columns, read_once

# File column → cnfs_geo column (0–10 scores, 10 = most fragile; not rates).
IFN_COLUMNS = {
    "no_thd_coverage_rate": "ifn_no_thd",
    "no_4g_coverage_rate": "ifn_no_4g",
    "poverty_rate": "ifn_poverty",
    "older_65_rate": "ifn_older_65",
    "nscol15p_rate": "ifn_low_diploma",
    "total": "ifn_total",
}


@read_once
def read_ifn(path: Path) -> pd.DataFrame:
    """The IFN 2023 commune file, as strings.

    Returns
    -------
    pandas.DataFrame
        One row per commune code of the file (COG 2023), in file order, every column a
        string (blanks kept as ``""``). Holds at least ``code``, ``name`` and the six
        score columns of :data:`IFN_COLUMNS` (0–10; checked and parsed by
        :func:`cnfs_geo.need.ifn_from_frame`). ``attrs["source"]`` is the path.

    Raises
    ------
    ValidationError
        Not a UTF-8 CSV with the same number of fields on every line, a duplicated
        ``code``, a score outside 0–10 (FileFormatError);
        :class:`~cnfs_geo._errors.MissingColumnError` when a column is absent.
    """
    df = read_csv_columns(path, ["code", "name", *IFN_COLUMNS])
    check_unique(df, ["code"], path, "code commune (code)")
    check_counts(df, list(IFN_COLUMNS), path, "code", upper=10.0)
    _journal.read_count("ifn_communes", path, len(df))
    return df
