"""Travel cost between demand points (communes) and places or candidate sites.

The offline default is **crow-fly distance × detour factor at an average speed**
(:class:`cnfs_geo.settings.Settings`: 1.3 and 50 km/h). The OD table is long form,
like r5py's ``TravelTimeMatrix``: one row per (origin, destination) pair within a
cutoff, columns ``origin_id``, ``destination_id``, ``minutes``, ``km``. Its
``attrs["travel_model"]`` says which model produced it; every output carries it.

Pairs are found with a KD-tree (``scipy.spatial.cKDTree.sparse_distance_matrix``)
so the table stays sparse: only pairs within ``max_minutes`` are listed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ._errors import ValidationError
from .settings import DEFAULT, Settings

CROWFLY = "crow-fly"


def travel_model_label(settings: Settings = DEFAULT) -> str:
    """Human-readable description of the crow-fly travel model (French, for outputs)."""
    return (f"distance à vol d'oiseau × {settings.detour_factor:g} (détour) à "
            f"{settings.speed_kmh:g} km/h")


def _xy(points: pd.DataFrame, x: str, y: str, name: str) -> np.ndarray:
    problems = [f"missing column {c!r}" for c in (x, y) if c not in points.columns]
    if problems:
        raise ValidationError(name, problems)
    xy = points[[x, y]].to_numpy(dtype=float)
    bad = ~np.isfinite(xy).all(axis=1)
    if bad.any():
        ids = list(points.index[bad][:10])
        raise ValidationError(name, [f"{int(bad.sum())} row(s) with missing or infinite "
                                     f"coordinates, e.g. {ids}; fix or drop them before computing "
                                     "travel times"])
    return xy


def od_crowfly(origins: pd.DataFrame, destinations: pd.DataFrame, *, max_minutes: float,
               settings: Settings = DEFAULT, origin_xy: tuple[str, str] = ("x", "y"),
               destination_xy: tuple[str, str] = ("x", "y")) -> pd.DataFrame:
    """Long-form OD table by crow-fly distance × detour factor at an average speed.

    Parameters
    ----------
    origins, destinations : DataFrame
        Indexed by identifier (str), with projected coordinates in metres
        (columns named by ``origin_xy`` / ``destination_xy``, same CRS).
    max_minutes : float
        Only pairs with ``minutes <= max_minutes`` are returned (sparse table).
    settings : Settings
        ``detour_factor`` and ``speed_kmh``.

    Returns
    -------
    DataFrame
        Columns ``origin_id``, ``destination_id`` (str), ``minutes``, ``km`` (road
        km estimate), sorted by origin then destination; ``attrs["travel_model"]``
        = ``"crow-fly"``.

    Examples
    --------
    >>> import pandas as pd
    >>> o = pd.DataFrame({"x": [0.0], "y": [0.0]}, index=["a"])
    >>> d = pd.DataFrame({"x": [5000.0], "y": [0.0]}, index=["p"])
    >>> od_crowfly(o, d, max_minutes=30)["minutes"].round(2).tolist()
    [7.8]
    """
    oxy = _xy(origins, *origin_xy, name="origins")
    dxy = _xy(destinations, *destination_xy, name="destinations")
    factor = settings.detour_factor / settings.speed_m_per_min  # minutes per crow-fly metre
    radius = max_minutes / factor
    cols = ["origin_id", "destination_id", "minutes", "km"]
    if len(oxy) == 0 or len(dxy) == 0:
        out = pd.DataFrame({c: pd.Series(dtype=str if c.endswith("_id") else float) for c in cols})
    else:
        sdm = cKDTree(oxy).sparse_distance_matrix(cKDTree(dxy), radius, output_type="coo_matrix")
        # sparse_distance_matrix omits zero distances: add coincident pairs explicitly
        zi = cKDTree(oxy).query_ball_tree(cKDTree(dxy), r=1e-9)
        extra_i = [i for i, js in enumerate(zi) for _ in js]
        extra_j = [j for js in zi for j in js]
        rows = np.concatenate([sdm.row, np.asarray(extra_i, dtype=int)])
        colsj = np.concatenate([sdm.col, np.asarray(extra_j, dtype=int)])
        dist = np.concatenate([sdm.data, np.zeros(len(extra_i))])
        out = pd.DataFrame({
            "origin_id": np.asarray(origins.index.astype(str))[rows],
            "destination_id": np.asarray(destinations.index.astype(str))[colsj],
            "minutes": dist * factor,
            "km": dist * settings.detour_factor / 1000.0,
        }).drop_duplicates(["origin_id", "destination_id"])
        out = out.sort_values(["origin_id", "destination_id"], kind="stable").reset_index(drop=True)
    out.attrs["travel_model"] = CROWFLY
    out.attrs["travel_model_label"] = travel_model_label(settings)
    return out


def nearest_crowfly(origins: pd.DataFrame, destinations: pd.DataFrame, *,
                    settings: Settings = DEFAULT, origin_xy: tuple[str, str] = ("x", "y"),
                    destination_xy: tuple[str, str] = ("x", "y")) -> pd.DataFrame:
    """Nearest destination of every origin (no cutoff), crow-fly model.

    Returns
    -------
    DataFrame
        Index = origins' index; columns ``nearest_id`` (str, None when there is no
        destination) and ``minutes`` (inf when there is none). Ties go to the first
        destination in index order (deterministic).
    """
    oxy = _xy(origins, *origin_xy, name="origins")
    out = pd.DataFrame(index=origins.index)
    if len(destinations) == 0:
        out["nearest_id"] = None
        out["minutes"] = np.inf
        return out
    dxy = _xy(destinations, *destination_xy, name="destinations")
    dist, idx = cKDTree(dxy).query(oxy, k=1)
    out["nearest_id"] = np.asarray(destinations.index.astype(str))[idx]
    out["minutes"] = dist * settings.detour_factor / settings.speed_m_per_min
    out.attrs["travel_model"] = CROWFLY
    return out
