"""datas.fun commune file (COG 2024 communes with chef-lieu coordinates)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from .. import _journal
from ._io import file_key, read_csv_columns

DATASFUN_COLUMNS = ["insee_com", "insee_dep", "commune_type", "lat", "lng"]


# (lat min, lat max, lng min, lng max) of each territory: metropolitan France, and the
# five DROM by département code. A chef-lieu outside its envelope is a corrupted point.
ENVELOPES = {
    "metro": (41.3, 51.2, -5.3, 9.7),
    "971": (15.8, 18.2, -63.2, -60.9),
    "972": (14.3, 15.0, -61.3, -60.7),
    "973": (2.0, 6.0, -54.7, -51.5),
    "974": (-21.5, -20.8, 55.2, 55.9),
    "976": (-13.1, -12.5, 44.9, 45.4),
}


def _in_envelope(dep: pd.Series, lat: pd.Series, lng: pd.Series) -> pd.Series:
    box = pd.DataFrame(
        [ENVELOPES.get(d, ENVELOPES["metro"]) for d in dep], index=dep.index
    ).reindex(columns=range(4))
    return (lat >= box[0]) & (lat <= box[1]) & (lng >= box[2]) & (lng <= box[3])


@lru_cache(maxsize=1)
def _datasfun_frame(
    path: str, mtime_ns: int, size: int
) -> tuple[pd.DataFrame, list[_journal.Event]]:
    df = read_csv_columns(path, DATASFUN_COLUMNS)[DATASFUN_COLUMNS].copy()
    with _journal.collect(isolated=True) as events:
        lat = pd.to_numeric(df["lat"], errors="coerce")
        lng = pd.to_numeric(df["lng"], errors="coerce")
        dep = df["insee_dep"].astype(str)
        blank = (df["lat"].str.strip() == "") & (df["lng"].str.strip() == "")
        bad = ~blank & ~_in_envelope(dep, lat, lng)
        swap = bad & _in_envelope(dep, lng, lat)
        for i in df.index[bad]:
            code, a, b = df.at[i, "insee_com"], df.at[i, "lat"], df.at[i, "lng"]
            if swap[i]:
                df.at[i, "lat"], df.at[i, "lng"] = b, a
                why = f"commune {code} : lat/lng inversés ({a}, {b}), corrigés"
            else:
                why = (
                    f"commune {code} : chef-lieu ({a!r}, {b!r}) hors du territoire, ignoré "
                    "(point représentatif de la commune utilisé)"
                )
                df.at[i, "lat"], df.at[i, "lng"] = "", ""
            _journal.record("datasfun_communes", path, "repaired", why)
    return df, events


def read_datasfun_communes(path: Path) -> pd.DataFrame:
    """The columns of the datas.fun commune file used by cnfs_geo.

    Returns
    -------
    pandas.DataFrame
        One row per record, in file order. Columns ``insee_com`` (COG 2024 code),
        ``insee_dep``, ``commune_type`` (``COM``, ``COMD``…), ``lat``, ``lng``
        (chef-lieu, WGS 84; strings as read; a point outside its territory's envelope
        is swapped back when lat/lng were inverted, else blanked, each repair recorded
        in the journal). Cached per path, modification time and
        size; the caller gets a copy.
    """
    df, events = _datasfun_frame(*file_key(Path(path)))
    _journal.read_count("datasfun_communes", path, len(df))
    _journal.replay(events)
    return df.copy()
