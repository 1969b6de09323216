"""Guide des services numériques of the Ville d'Angers (CONUMM, JSON, WGS84)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ._contract import Contract, read_json_records
from ._io import read_once

CONTRACT = Contract(
    "conumm_angers",
    ("TYPO_UID", "USER_NOM", "USER_ADRES", "LAT", "LNG"),
    "liste JSON du guide des services numériques d'Angers, LAT/LNG WGS84",
)


@read_once
def read_conumm_angers(path: str | Path) -> pd.DataFrame:
    """Raw places of the Angers guide des services numériques (département 49 only).

    Parameters
    ----------
    path : str or Path
        The JSON list (``lieux_mediation/conumm_angers_guide-services-numeriques_2022-09.json``).

    Returns
    -------
    DataFrame
        RangeIndex, one row per place in file order; values as parsed from JSON. At
        least the columns ``TYPO_UID`` (id, int), ``USER_NOM`` (name; sometimes an
        address), ``USER_ADRES``, ``LAT``, ``LNG`` (WGS84); service fields when
        present: ``AIDE_DEMAT``, ``FORM_PERF``, ``QUALIF*``, ``ACCES_ORDI``, ``WIFI``,
        ``PRET_MAT``. Contact fields (``MAIL``, ``TELEPHONE``) are dropped.

    Raises
    ------
    DataFileError
        The file cannot be read or parsed as JSON.
    ValidationError
        Not a list of objects, or a required column is missing.

    Examples
    --------
    >>> from cnfs_geo import catalog
    >>> len(read_conumm_angers(catalog.resolve_data_dir().file("conumm_angers")))
    63
    """
    return read_json_records(Path(path), CONTRACT)
