"""National export of the *Cartographie nationale des lieux d'inclusion numérique* (CSV in
the LaMednum ``standard-mediation-num`` schema, v1), read into the data·inclusion contract."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .._errors import DataFileError
from ._contract import CONTACT_FIELDS
from .data_inclusion import CONTRACT

#: Contact fields of the schema dropped at ingest (with :data:`._contract.CONTACT_FIELDS`).
SCHEMA_CONTACTS = ("telephone", "courriels", "site_web", "fiche_acces_libre", "prise_rdv")

#: Multi-valued fields of the schema (``|``-separated), re-joined with ``;`` as in the
#: data·inclusion files the offer stage reads.
MULTI_VALUED = (
    "services",
    "modalites_accompagnement",
    "dispositif_programmes_nationaux",
    "publics_specifiquement_adresses",
    "frais_a_charge",
    "typologie",
)


def read_lieux_mediation_num(path: str | Path) -> pd.DataFrame:
    """Lieux of the national export, in the contract of
    :func:`cnfs_geo.sources.data_inclusion.read_data_inclusion`.

    Parameters
    ----------
    path : str or Path
        CSV (comma, UTF-8) with the columns of the ``standard-mediation-num`` schema
        (``id``, ``pivot``, ``nom``, ``commune``, ``code_postal``, ``code_insee``,
        ``latitude``, ``longitude``, ``services``, ``modalites_accompagnement``,
        ``dispositif_programmes_nationaux``, ``source``…).

    Returns
    -------
    DataFrame
        RangeIndex, one row per lieu in file order, every value a string (blank =
        ``""``). Columns of the data·inclusion contract (``id``, ``nom``, ``pivot``,
        ``code_insee``, ``code_postal``, ``latitude``, ``longitude``, ``source``,
        ``services``), plus ``modalites_accompagnement``, ``labels_nationaux`` (the
        schema's ``dispositif_programmes_nationaux``) and the other non-contact columns;
        multi-valued fields joined with ``;``. Contact fields (``telephone``,
        ``courriels``, ``site_web``, booking links) are dropped.

    Raises
    ------
    DataFileError
        Unreadable CSV.
    MissingColumnError
        A column of the contract is absent.
    """
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataFileError(
            f"{path} : export des lieux d'inclusion numérique illisible ({exc}). Format "
            "attendu : CSV du schéma LaMednum standard-mediation-num. Correctif : relancez "
            "`cnfs-geo data fetch`."
        ) from exc
    df = df.drop(columns=[c for c in df.columns if c in SCHEMA_CONTACTS or c in CONTACT_FIELDS])
    for col in MULTI_VALUED:
        if col in df.columns:
            df[col] = df[col].str.replace("|", ";", regex=False)
    if "dispositif_programmes_nationaux" in df.columns and "labels_nationaux" not in df.columns:
        df = df.rename(columns={"dispositif_programmes_nationaux": "labels_nationaux"})
    return CONTRACT.check(df, str(path)).reset_index(drop=True)
