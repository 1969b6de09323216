"""ARCEP « Ma connexion internet » fibre file: premises and FTTH-eligible premises per
commune (COG 2024 codes)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ._io import read_csv_columns

FIBRE_COLUMNS = ["nb_locaux", "nb_locaux_fibre"]


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
        Not a CSV; :class:`~cnfs_geo._errors.MissingColumnError` when a column is absent.
    """
    return read_csv_columns(path, ["code_insee", "commune", *FIBRE_COLUMNS])
