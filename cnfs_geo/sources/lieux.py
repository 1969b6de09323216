"""Lieux de médiation numérique of the Département de Maine-et-Loire (CD49 exports, JSON)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ._contract import Contract, read_json_records
from ._io import read_once

CONTRACT_CD49_2022 = Contract(
    "lieux_cd49_2022",
    ("ID", "Nom", "Geo Point"),
    "liste JSON de l'export des lieux de médiation du CD49, 'Geo Point' = \"lat,lon\"",
)

CONTRACT_CD49_2020 = Contract(
    "lieux_cd49_2020",
    ("ID_LieuMed", "NOM_STRUCTURE", "AFFICHAGE", "x", "y"),
    "liste JSON des lieux du CD49 (source 2020-2021), x/y Lambert-93 en texte à virgule décimale",
)


@read_once
def read_lieux_cd49_2022(path: str | Path) -> pd.DataFrame:
    """Raw lieux of the CD49 export of 2022-12 (the Département's published map).

    Parameters
    ----------
    path : str or Path
        The JSON list
        (``lieux_mediation/lieux-de-mediation-numerique-en-maine-et-loire_cd49_2022-12.json``).

    Returns
    -------
    DataFrame
        RangeIndex, one row per lieu in file order; values as parsed from JSON. At
        least the columns ``ID`` (``"LMNxxx"``, shared with the 2020-2021 source),
        ``Nom``, ``Geo Point`` (text ``"lat,lon"``, WGS84, kept as written); service
        fields when present: ``Démarches générales``, ``Démarches spécifiques``,
        ``Initiation aux outils numériques`` (``"Oui"``…), ``Catégorie``, ``Accès
        internet``, ``JT_RH_*`` (staff), ``JT_MAT_*`` (equipment). Contact fields
        (``Téléphone``, ``Courriel``) are dropped.

    Raises
    ------
    DataFileError
        The file cannot be read or parsed as JSON.
    ValidationError
        Not a list of objects, or a required column is missing.

    Examples
    --------
    >>> from cnfs_geo import catalog
    >>> cd = read_lieux_cd49_2022(catalog.resolve_data_dir().file("lieux_cd49_2022"))
    >>> len(cd), bool(cd["ID"].str.startswith("LMN").all())
    (235, True)
    """
    return read_json_records(Path(path), CONTRACT_CD49_2022)


@read_once
def read_lieux_cd49_2020(path: str | Path) -> pd.DataFrame:
    """Raw lieux of the CD49 source 2020-2021 (Lambert-93 coordinates).

    Parameters
    ----------
    path : str or Path
        The JSON list (``lieux_mediation/maine-et-loire_lieux-mediation-numerique_cd49_``
        ``source-2020-2021_lambert93.json``).

    Returns
    -------
    DataFrame
        RangeIndex, one row per lieu in file order; values as parsed from JSON. At
        least the columns ``ID_LieuMed`` (``"LMNxxx"``), ``NOM_STRUCTURE`` (may be
        blank), ``AFFICHAGE`` (``"INACTIF"`` for places the CD49 marked inactive, or
        blank), ``x``, ``y`` (Lambert-93 metres, EPSG:2154, **text with a decimal
        comma**, e.g. ``"452345,12"``: kept as written, parsed by the offer stage so
        that a malformed value is reported as written); service fields when present:
        ``DEM_Gen``, ``DEM_Spe``, ``INITIATION``, ``INTERNET`` (``"Oui"``…). Contact
        fields (``NUM_TEL``, ``MAIL_STRUC``) are dropped.

    Raises
    ------
    DataFileError
        The file cannot be read or parsed as JSON.
    ValidationError
        Not a list of objects, or a required column is missing.

    Examples
    --------
    >>> from cnfs_geo import catalog
    >>> cd = read_lieux_cd49_2020(catalog.resolve_data_dir().file("lieux_cd49_2020"))
    >>> len(cd), int((cd["AFFICHAGE"] == "INACTIF").sum())
    (243, 18)
    """
    return read_json_records(Path(path), CONTRACT_CD49_2020)
