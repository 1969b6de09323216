"""data.gouv.fr API (``/api/1/datasets/<slug>/``): the resources of a dataset, to find the
current file of a source published there (France services, Cartographie nationale)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .._errors import DataFileError

RESOURCE_COLUMNS = ("url", "format", "title", "last_modified")


def read_dataset_resources(path: str | Path) -> pd.DataFrame:
    """Resources of a dataset as described by the data.gouv.fr API.

    Returns
    -------
    pandas.DataFrame
        One row per resource in response order: ``url``, ``format`` (lower case),
        ``title``, ``last_modified`` (ISO text as given, ``""`` when absent).

    Raises
    ------
    DataFileError
        Not the JSON of a dataset (no ``resources`` list).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        resources = data["resources"]
        if not isinstance(resources, list):
            raise TypeError("resources is not a list")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataFileError(
            f"{path} : réponse de l'API data.gouv.fr illisible ({exc}) ; attendu : la "
            "description d'un jeu de données avec sa liste `resources`. Correctif : relancez "
            "`cnfs-geo data fetch`, ou donnez l'adresse du fichier par la variable de la source."
        ) from exc
    rows = [
        {
            "url": str(r.get("url") or ""),
            "format": str(r.get("format") or "").lower(),
            "title": str(r.get("title") or ""),
            "last_modified": str(r.get("last_modified") or ""),
        }
        for r in resources
        if isinstance(r, dict)
    ]
    return pd.DataFrame(rows, columns=list(RESOURCE_COLUMNS))


def latest_resource(resources: pd.DataFrame, fmt: str) -> dict[str, str] | None:
    """The most recently modified resource of format ``fmt`` (``csv``…), or None."""
    ok = resources[
        (resources["format"] == fmt) | resources["url"].str.lower().str.endswith(f".{fmt}")
    ]
    ok = ok[ok["url"] != ""]
    if not len(ok):
        return None
    return dict(ok.sort_values("last_modified", kind="stable").iloc[-1])
