"""Crow-fly travel cost and the long-form OD-table contract.

Road travel times on the OpenStreetMap graph are in :mod:`cnfs_geo.roads`; the method
(detour factor, speeds, why a sparse long table) is in ``docs/methods_access.md``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from . import _fr
from ._errors import ValidationError
from .settings import DEFAULT, Settings

__all__ = [
    "CROWFLY",
    "OD_TABLE_COLUMNS",
    "empty_od",
    "nearest_crowfly",
    "od_crowfly",
    "point_xy",
    "travel_model_label",
]

CROWFLY = "crow-fly"

#: Columns of a long-form OD table, in order (the ``km`` column is a road-km estimate).
OD_TABLE_COLUMNS: tuple[str, ...] = ("origin_id", "destination_id", "minutes", "km")


def travel_model_label(settings: Settings | None = None) -> str:
    """Human-readable description of the crow-fly travel model (French, for outputs).

    Parameters
    ----------
    settings : Settings, optional
        ``detour_factor`` and ``speed_kmh``; ``None`` means the default settings.

    Examples
    --------
    >>> travel_model_label()
    "distance à vol d'oiseau × 1,3 (détour) à 50 km/h"
    """
    settings = DEFAULT if settings is None else settings
    return _fr.crowfly_model(settings.detour_factor, settings.speed_kmh)


def point_xy(points: pd.DataFrame, x: str, y: str, *, name: str) -> np.ndarray:
    """Coordinates of ``points`` as an ``(n, 2)`` float array, checked.

    Parameters
    ----------
    points : DataFrame
        With numeric columns ``x`` and ``y`` (projected metres).
    x, y : str
        Column names.
    name : str
        Argument name used in the error message.

    Raises
    ------
    ValidationError
        A column is missing, or a row has a missing or infinite coordinate.
    """
    problems = [f"missing column {c!r}" for c in (x, y) if c not in points.columns]
    if problems:
        raise ValidationError(name, problems)
    xy = points[[x, y]].to_numpy(dtype=float)
    bad = ~np.isfinite(xy).all(axis=1)
    if bad.any():
        ids = list(points.index[bad][:10])
        raise ValidationError(
            name,
            [
                f"{int(bad.sum())} row(s) with missing or infinite "
                f"coordinates, e.g. {ids}; fix or drop them before computing "
                "travel times"
            ],
        )
    return xy


def empty_od() -> pd.DataFrame:
    """An OD table with no pair: columns :data:`OD_TABLE_COLUMNS`, ids str, times float."""
    return pd.DataFrame(
        {c: pd.Series(dtype=str if c.endswith("_id") else float) for c in OD_TABLE_COLUMNS}
    )


def od_crowfly(
    origins: pd.DataFrame,
    destinations: pd.DataFrame,
    *,
    max_minutes: float,
    settings: Settings | None = None,
    origin_xy: tuple[str, str] = ("x", "y"),
    destination_xy: tuple[str, str] = ("x", "y"),
) -> pd.DataFrame:
    """Long-form OD table by crow-fly distance × detour factor at an average speed.

    Pairs are found with a KD-tree (``cKDTree.sparse_distance_matrix``), so the table
    stays sparse: only pairs within ``max_minutes`` are listed.

    Parameters
    ----------
    origins, destinations : DataFrame
        Indexed by identifier (str), with projected coordinates in metres
        (columns named by ``origin_xy`` / ``destination_xy``, same CRS).
    max_minutes : float
        Only pairs with ``minutes <= max_minutes`` are returned (sparse table).
    settings : Settings, optional
        ``detour_factor`` and ``speed_kmh``; ``None`` means the default settings.
    origin_xy, destination_xy : tuple of str
        Coordinate column names.

    Returns
    -------
    DataFrame
        Columns ``origin_id``, ``destination_id`` (str), ``minutes``, ``km`` (road
        km estimate), sorted by origin then destination; ``attrs["travel_model"]``
        = ``"crow-fly"`` and ``attrs["travel_model_label"]`` (French description).

    Examples
    --------
    >>> import pandas as pd
    >>> o = pd.DataFrame({"x": [0.0], "y": [0.0]}, index=["a"])
    >>> d = pd.DataFrame({"x": [5000.0], "y": [0.0]}, index=["p"])
    >>> od_crowfly(o, d, max_minutes=30)["minutes"].round(2).tolist()
    [7.8]
    """
    settings = DEFAULT if settings is None else settings
    oxy = point_xy(origins, *origin_xy, name="origins")
    dxy = point_xy(destinations, *destination_xy, name="destinations")
    factor = settings.detour_factor / settings.speed_m_per_min  # minutes per crow-fly metre
    radius = max_minutes / factor
    if len(oxy) == 0 or len(dxy) == 0:
        out = empty_od()
    else:
        sdm = cKDTree(oxy).sparse_distance_matrix(cKDTree(dxy), radius, output_type="coo_matrix")
        # sparse_distance_matrix omits zero distances: add coincident pairs explicitly
        zi = cKDTree(oxy).query_ball_tree(cKDTree(dxy), r=1e-9)
        extra_i = [i for i, js in enumerate(zi) for _ in js]
        extra_j = [j for js in zi for j in js]
        rows = np.concatenate([sdm.row, np.asarray(extra_i, dtype=int)])
        colsj = np.concatenate([sdm.col, np.asarray(extra_j, dtype=int)])
        dist = np.concatenate([sdm.data, np.zeros(len(extra_i))])
        out = pd.DataFrame(
            {
                "origin_id": np.asarray(origins.index.astype(str))[rows],
                "destination_id": np.asarray(destinations.index.astype(str))[colsj],
                "minutes": dist * factor,
                "km": dist * settings.detour_factor / 1000.0,
            }
        ).drop_duplicates(["origin_id", "destination_id"])
        out = out.sort_values(["origin_id", "destination_id"], kind="stable").reset_index(drop=True)
    out.attrs["travel_model"] = CROWFLY
    out.attrs["travel_model_label"] = travel_model_label(settings)
    return out


def nearest_crowfly(
    origins: pd.DataFrame,
    destinations: pd.DataFrame,
    *,
    settings: Settings | None = None,
    origin_xy: tuple[str, str] = ("x", "y"),
    destination_xy: tuple[str, str] = ("x", "y"),
) -> pd.DataFrame:
    """Nearest destination of every origin (no cutoff), crow-fly model.

    Parameters
    ----------
    origins, destinations, settings, origin_xy, destination_xy
        As in :func:`od_crowfly`.

    Returns
    -------
    DataFrame
        Index = origins' index; columns ``nearest_id`` (str, None when there is no
        destination) and ``minutes`` (inf when there is none). Ties go to the first
        destination in index order (deterministic).
    """
    settings = DEFAULT if settings is None else settings
    oxy = point_xy(origins, *origin_xy, name="origins")
    out = pd.DataFrame(index=origins.index)
    if len(destinations) == 0:
        out["nearest_id"] = None
        out["minutes"] = np.inf
        return out
    dxy = point_xy(destinations, *destination_xy, name="destinations")
    dist, idx = cKDTree(dxy).query(oxy, k=1)
    out["nearest_id"] = np.asarray(destinations.index.astype(str))[idx]
    out["minutes"] = dist * settings.detour_factor / settings.speed_m_per_min
    out.attrs["travel_model"] = CROWFLY
    return out
