"""COG communes file (``@etalab/decoupage-administratif`` ``communes.json``)."""

from __future__ import annotations

from pathlib import Path

from ._io import read_json


def read_cog_records(path: Path) -> list[dict]:
    """Raw records of a COG ``communes.json`` (actuelles, déléguées, associées,
    arrondissements), as published: one dict per record (``code``, ``nom``, ``type``,
    ``departement``, ``population``, ``chefLieu``, ``codesPostaux``, ``anciensCodes``…).

    Cached per path: callers must not mutate the records.
    """
    return read_json(Path(path))
