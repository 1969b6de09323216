"""ARCEP « Ma connexion internet » statistics per commune (``commune_techno.csv``: premises
and eligible premises per technology), read into the contract of :mod:`.arcep`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .._errors import DataFileError, MissingColumnError

#: Columns of ``commune_techno.csv`` read: commune code and name, premises, FTTH-eligible.
MCI_COLUMNS = ("code_insee", "nom_com", "nbr", "elig_ftth")


def read_commune_techno(path: str | Path) -> pd.DataFrame:
    """The ARCEP per-commune file, in the contract of :func:`cnfs_geo.sources.arcep.read_fibre`.

    Parameters
    ----------
    path : str or Path
        ``commune_techno.csv`` (``,`` or ``;`` separated, UTF-8): ``code_insee``,
        ``nom_com``, ``nbr`` (premises), ``elig_ftth`` (FTTH-eligible premises), other
        technologies and ``date`` (quarter).

    Returns
    -------
    pandas.DataFrame
        One row per commune in file order, every column a string: ``code_insee``,
        ``commune``, ``nb_locaux``, ``nb_locaux_fibre``, and ``date`` when the file has
        it (``attrs["vintage"]``: its latest value).

    Raises
    ------
    DataFileError
        Unreadable file.
    MissingColumnError
        A column of :data:`MCI_COLUMNS` is absent.
    """
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, sep=None, engine="python")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataFileError(
            f"{path} : fichier ARCEP illisible ({exc}). Correctif : relancez `cnfs-geo data fetch`."
        ) from exc
    missing = [c for c in MCI_COLUMNS if c not in df.columns]
    if missing:
        raise MissingColumnError(
            str(path),
            [f"missing column(s) {missing}: expected ARCEP commune_techno.csv ({MCI_COLUMNS})"],
        )
    out = pd.DataFrame(
        {
            "code_insee": df["code_insee"].str.strip(),
            "commune": df["nom_com"],
            "nb_locaux": df["nbr"],
            "nb_locaux_fibre": df["elig_ftth"],
        }
    )
    if "date" in df.columns:
        out["date"] = df["date"]
        dates = sorted(d for d in df["date"].unique() if d)
        out.attrs["vintage"] = dates[-1] if dates else None
    out.attrs["source"] = str(path)
    return out
