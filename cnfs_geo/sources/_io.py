"""File-format plumbing shared by the readers (JSON, cache keys)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from .._errors import DataFileError


@lru_cache(maxsize=4)
def read_json(path: Path) -> Any:
    """Parsed JSON of ``path`` (cached per path: callers must not mutate the result)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise DataFileError(f"{path}: cannot be read as JSON ({exc}). Fix: restore the file "
                            "from its source (see data/README.md).") from exc


def file_key(path: Path) -> tuple[str, int, int]:
    """Cache key of a file: path, modification time and size (a changed file is re-read)."""
    st = path.stat()
    return str(path), st.st_mtime_ns, st.st_size
