"""File-format plumbing shared by the readers (JSON, CSV, cache keys)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from .._errors import DataFileError, ValidationError
from .._validate import require_columns


def file_key(path: Path) -> tuple[str, int, int]:
    """Cache key of a file: path, modification time and size (a changed file is re-read)."""
    st = Path(path).stat()
    return str(path), st.st_mtime_ns, st.st_size


@lru_cache(maxsize=4)
def _read_json(path: str, mtime_ns: int, size: int) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise DataFileError(
            f"{path}: cannot be read as JSON ({exc}). Fix: restore the file "
            "from its source (see data/README.md)."
        ) from exc


def read_json(path: Path) -> Any:
    """Parsed JSON of ``path``, cached per path, modification time and size (callers must
    not mutate the result)."""
    path = Path(path)
    try:
        key = file_key(path)
    except OSError as exc:
        raise DataFileError(
            f"{path}: cannot be read as JSON ({exc}). Fix: restore the file "
            "from its source (see data/README.md)."
        ) from exc
    return _read_json(*key)


def read_csv_columns(path: Path, required: list[str], **kwargs: Any) -> pd.DataFrame:
    """A CSV read as strings (``dtype=str``, blanks kept as ``""``) with ``required`` columns.

    Raises :class:`~cnfs_geo._errors.ValidationError` when the file cannot be parsed and
    :class:`~cnfs_geo._errors.MissingColumnError` naming every missing column. The frame's
    ``attrs["source"]`` is the path.
    """
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, **kwargs)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValidationError(
            str(path),
            [f"cannot be read as CSV ({exc}); restore the file from its source (data/README.md)"],
        ) from exc
    require_columns(
        df,
        required,
        str(path),
        expected=f"expected columns include {required}; is this the right file?",
    )
    df.attrs["source"] = str(path)
    return df
