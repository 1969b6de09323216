"""COG EPCI file of ``@etalab/decoupage-administratif`` (``epci.json``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .._errors import FileFormatError, ValidationError
from ._io import RESTORE, check_unique, read_json, read_once


def _epci_records(path: Path) -> list[dict]:
    recs = read_json(Path(path))
    if not isinstance(recs, list) or not all(
        isinstance(e, dict)
        and "code" in e
        and "nom" in e
        and isinstance(e.get("membres", []), list)
        for e in recs
    ):
        raise FileFormatError(
            str(path),
            [
                "une liste JSON d'EPCI {code, nom, membres: [{code}…]} est attendue (epci.json de "
                f"@etalab/decoupage-administratif) ; correction : {RESTORE}"
            ],
        )
    check_unique(pd.DataFrame({"code": [e["code"] for e in recs]}), ["code"], path, "EPCI (code)")
    return recs


@read_once
def read_epci(path: Path) -> pd.DataFrame:
    """Identity of every EPCI of a COG ``epci.json``.

    Returns
    -------
    pandas.DataFrame
        Index ``epci`` (SIREN, str), in file order. Columns ``nom``, ``type``,
        ``population_municipale_epci`` (whole EPCI), ``n_membres`` (member communes,
        all départements).
    """
    recs = _epci_records(path)
    return pd.DataFrame(
        [
            {
                "epci": e["code"],
                "nom": e["nom"],
                "type": e.get("type"),
                "population_municipale_epci": e.get("populationMunicipale"),
                "n_membres": len(e.get("membres", [])),
            }
            for e in recs
        ]
    ).set_index("epci")


@read_once
def read_epci_members(path: Path) -> pd.DataFrame:
    """Commune → EPCI membership of a COG ``epci.json``.

    Returns
    -------
    pandas.DataFrame
        Index ``insee`` (member commune code, unique). Columns ``epci`` (SIREN, str),
        ``epci_nom``.

    Raises
    ------
    ValidationError
        A commune listed in several EPCI (every such commune named).
    """
    rows = [
        (m["code"], e["code"], e["nom"]) for e in _epci_records(path) for m in e.get("membres", [])
    ]
    df = pd.DataFrame(rows, columns=["insee", "epci", "epci_nom"])
    dup = df[df["insee"].duplicated(keep=False)]
    if len(dup):
        raise ValidationError(
            str(path), [f"commune {c} belongs to several EPCI" for c in sorted(set(dup["insee"]))]
        )
    return df.set_index("insee")
