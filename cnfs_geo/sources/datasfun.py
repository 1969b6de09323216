"""datas.fun commune file (COG 2024 communes with chef-lieu coordinates)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from ._io import file_key

DATASFUN_COLUMNS = ["insee_com", "insee_dep", "commune_type", "lat", "lng"]


@lru_cache(maxsize=1)
def _datasfun_frame(path: str, mtime_ns: int, size: int) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, usecols=DATASFUN_COLUMNS)


def read_datasfun_communes(path: Path) -> pd.DataFrame:
    """The columns of the datas.fun commune file used by cnfs_geo.

    Returns
    -------
    pandas.DataFrame
        One row per record, in file order. Columns ``insee_com`` (COG 2024 code),
        ``insee_dep``, ``commune_type`` (``COM``, ``COMD``…), ``lat``, ``lng``
        (chef-lieu, WGS 84; strings as read). Cached per path, modification time and
        size; the caller gets a copy.
    """
    return _datasfun_frame(*file_key(Path(path))).copy()
