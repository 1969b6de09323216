"""Coverage of demand by the existing offer: nearest time, covered at thresholds.

Only places whose ``service_level`` is ``accompaniment`` count (a person helps);
``access``-only places are shown on maps but do not cover anyone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._errors import ValidationError


def covered_flags(minutes: pd.Series, threshold: float) -> pd.Series:
    """True where the nearest accompaniment place is within ``threshold`` minutes."""
    return minutes.le(threshold)


def coverage_table(demand: pd.DataFrame, minutes: pd.Series,
                   thresholds: tuple[float, ...] | list[float]) -> pd.DataFrame:
    """Population and need-weighted population covered at each threshold.

    Parameters
    ----------
    demand : DataFrame
        Indexed like ``minutes``; columns ``population`` and ``need`` (need-weighted
        population, see :mod:`cnfs_geo.need`).
    minutes : Series
        Travel time to the nearest accompaniment place per demand unit (inf if none).
    thresholds : sequence of float
        Minutes.

    Returns
    -------
    DataFrame
        One row per threshold: ``threshold_min``, ``units``, ``units_covered``,
        ``population``, ``population_covered``, ``pct_population_covered``,
        ``need``, ``need_covered``, ``pct_need_covered``.
    """
    missing = [c for c in ("population", "need") if c not in demand.columns]
    if missing:
        raise ValidationError("demand", [f"missing column {c!r}" for c in missing])
    if not demand.index.equals(minutes.index):
        minutes = minutes.reindex(demand.index)
    rows = []
    pop, need = demand["population"].astype(float), demand["need"].astype(float)
    for t in thresholds:
        cov = covered_flags(minutes, t).to_numpy()
        rows.append({
            "threshold_min": float(t), "units": len(demand), "units_covered": int(cov.sum()),
            "population": float(pop.sum()), "population_covered": float(pop[cov].sum()),
            "pct_population_covered": 100.0 * float(pop[cov].sum()) / max(float(pop.sum()), 1e-12),
            "need": float(need.sum()), "need_covered": float(need[cov].sum()),
            "pct_need_covered": 100.0 * float(need[cov].sum()) / max(float(need.sum()), 1e-12),
        })
    return pd.DataFrame(rows)


def nearest_from_od(od: pd.DataFrame, origin_ids: pd.Index) -> pd.DataFrame:
    """Nearest destination per origin from a long OD table (inf where none within the table).

    Ties are broken by destination id (deterministic).
    """
    if len(od):
        best = (od.sort_values(["origin_id", "minutes", "destination_id"], kind="stable")
                  .drop_duplicates("origin_id").set_index("origin_id"))
    else:
        best = pd.DataFrame(columns=["destination_id", "minutes"])
    out = pd.DataFrame(index=origin_ids)
    out["nearest_id"] = best["destination_id"].reindex(origin_ids)
    out["minutes"] = best["minutes"].reindex(origin_ids).astype(float).fillna(np.inf)
    return out
