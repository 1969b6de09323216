"""Gap territories: where the existing accompaniment offer leaves people behind.

Gap communes beyond each threshold, priority score per commune (E2SFCA accessibility,
fragility, fibre), contiguous clusters of priority communes and EPCI without a digital
project; the rules and their reasons are in ``docs/methods_gaps.md``. The French methods
text is :func:`methods_fr` (wording in :mod:`cnfs_geo._fr`).

Examples
--------
>>> from cnfs_geo.plan import Scenario, run
>>> from cnfs_geo import gaps
>>> plan = run(Scenario(departement="49"))
>>> far = gaps.gap_communes(plan.communes, thresholds=[10])
>>> bool((far["minutes"] > 10).all())
True
>>> acc = gaps.need_accessibility(plan.communes, plan.places)
>>> scores = gaps.priority_scores(plan.communes, acc)
>>> clusters = gaps.gap_clusters(plan.communes, is_gap=scores["is_gap"])
>>> int(clusters["n_communes"].sum()) == int(scores["is_gap"].sum())
True
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from . import _fr, access, coverage
from ._errors import CrsError, MissingColumnError, ValidationError
from .settings import DEFAULT, Settings

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------
# Parameters of the priority score and of the clusters that have no Settings counterpart
# (the others — thresholds, 2SFCA catchment and weights, thin share, need quantile, fibre
# threshold — are read from cnfs_geo.settings when a keyword argument is None).
# --------------------------------------------------------------------------------------

#: Travel time (minutes) at which ``crit_time`` reaches 1.
TIME_SCALE_MIN: float = 20.0

#: Weights of the normalised criteria in ``priority_score``.
PRIORITY_WEIGHTS: Mapping[str, float] = {"time": 0.3, "access": 0.3, "need": 0.3, "fibre": 0.1}

#: Snapping tolerance (m) when measuring shared borders: the polygons are simplified to
#: ~1 m (mapshaper, topology kept), so 1 m absorbs rounding without joining neighbours
#: separated by another commune.
ADJACENCY_TOLERANCE_M: float = 1.0

#: Minimum shared border (m) for two communes to be adjacent: below it they only meet
#: at a corner (the shortest real border in Maine-et-Loire is ~29 m).
MIN_SHARED_BORDER_M: float = 10.0


def _settings(settings: Settings | None) -> Settings:
    return DEFAULT if settings is None else settings


def _access_steps(
    weights: str | None, catchment: float, steps: Sequence[tuple[float, float]] | None
) -> Sequence[tuple[float, float]]:
    """Stepped E2SFCA zones for the methods text (Luo & Qi zones when not recorded)."""
    if steps is not None or weights in ("none", "gaussian"):
        return steps or ()
    return coverage.luo_qi_steps(catchment)


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------
def _require(frame: object, columns: Sequence[str], name: str, hint: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise MissingColumnError(name, [f"expected a (Geo)DataFrame, got {type(frame).__name__}"])
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MissingColumnError(name, [f"missing column {c!r}: {hint}" for c in missing])


def _require_projected(gdf: gpd.GeoDataFrame, name: str) -> None:
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise ValidationError(
            name, [f"expected a GeoDataFrame with polygon geometry, got {type(gdf).__name__}"]
        )
    if gdf.crs is None or not gdf.crs.is_projected:
        raise CrsError(
            name,
            [
                f"CRS {gdf.crs!s} is not a projected CRS in metres: reproject with "
                f"{name}.to_crs(cnfs_geo.settings.working_crs(departement)) "
                "(e.g. EPSG:2154 for metropolitan France)"
            ],
        )


def _str_index(frame: pd.DataFrame, name: str) -> pd.Index:
    idx = frame.index.astype(str)
    dup = idx[idx.duplicated()].unique()
    if len(dup):
        raise ValidationError(
            name,
            [
                f"{len(dup)} duplicated INSEE code(s) in the index, e.g. "
                f"{list(dup[:10])}: one row per commune"
            ],
        )
    return idx


def _aligned(values: pd.Series, index: pd.Index, name: str, what: str) -> pd.Series:
    """``values`` re-indexed on ``index`` (str ids); missing or extra ids are errors."""
    s = values.copy()
    s.index = s.index.astype(str)
    problems = []
    dup = s.index[s.index.duplicated()].unique()
    if len(dup):
        problems.append(f"{len(dup)} duplicated id(s), e.g. {list(dup[:10])}")
    missing = index.difference(s.index)
    if len(missing):
        problems.append(
            f"{len(missing)} commune(s) of `communes` absent, e.g. "
            f"{list(missing[:10])}: give {what} for every commune"
        )
    extra = s.index.difference(index)
    if len(extra):
        problems.append(
            f"{len(extra)} id(s) that are not communes of `communes`, e.g. "
            f"{list(extra[:10])}: index by the communes' INSEE codes"
        )
    if problems:
        raise ValidationError(name, problems)
    return s.reindex(index)


def _numeric(
    frame: pd.DataFrame, col: str, name: str, *, allow_nan: bool = False, allow_inf: bool = False
) -> pd.Series:
    v = pd.to_numeric(frame[col], errors="coerce").astype(float)
    arr = v.to_numpy()
    bad = np.isnan(arr) if not allow_nan else np.zeros(len(arr), bool)
    if not allow_inf:
        bad |= np.isinf(arr)
    if bad.any():
        raise ValidationError(
            name,
            [
                f"column {col!r}: {int(bad.sum())} missing or "
                f"non-numeric value(s) at {list(frame.index[bad][:10])}"
            ],
        )
    return v


# --------------------------------------------------------------------------------------
# 1. Gap communes by distance
# --------------------------------------------------------------------------------------
GAP_COMMUNE_COLUMNS = [
    "threshold_min",
    "rank",
    "insee",
    "nom",
    "epci",
    "epci_nom",
    "population",
    "need",
    "need_index",
    "minutes",
]


def gap_communes(
    communes: pd.DataFrame,
    *,
    thresholds: Sequence[float] | None = None,
    minutes_col: str = "minutes_before",
    settings: Settings | None = None,
) -> pd.DataFrame:
    """Communes beyond each travel-time threshold, ranked by need-weighted population.

    Parameters
    ----------
    communes : DataFrame or GeoDataFrame
        Index ``insee``; columns ``nom``, ``epci``, ``population``, ``need``,
        ``need_index`` and ``minutes_col`` (``epci_nom`` used when present).
    thresholds : sequence of float
        Minutes (default ``settings.report_thresholds`` = 5, 10, 15, 20).
    minutes_col : str
        Travel time to the nearest accompaniment place (inf = none at all).
    settings : Settings, optional
        ``report_thresholds`` when ``thresholds`` is None (default
        :data:`cnfs_geo.settings.DEFAULT`).

    Returns
    -------
    DataFrame
        Long form, RangeIndex, one row per (threshold, commune with
        ``minutes > threshold``), sorted by ``threshold_min`` then ``rank``. Columns
        :data:`GAP_COMMUNE_COLUMNS`: ``threshold_min`` (float), ``rank`` (int, 1 =
        largest ``need`` within the threshold; ties: larger population, then INSEE
        code), ``insee``, ``nom``, ``epci``, ``epci_nom``, ``population``, ``need``,
        ``need_index``, ``minutes``.

    Raises
    ------
    ValidationError
        Missing columns, bad thresholds, missing minutes.
    """
    cols = ["nom", "epci", "population", "need", "need_index", minutes_col]
    _require(communes, cols, "communes", "pass plan.communes (territory + need + coverage columns)")
    idx = _str_index(communes, "communes")
    if thresholds is None:
        thresholds = _settings(settings).report_thresholds
    problems = []
    try:
        ts = sorted({float(t) for t in thresholds})
    except (TypeError, ValueError):
        raise ValidationError(
            "thresholds",
            [f"thresholds={thresholds!r}: give minutes as numbers, e.g. [5, 10, 15, 20]"],
        ) from None
    if not ts or any(not math.isfinite(t) or t < 0 for t in ts):
        problems.append(
            f"thresholds={list(thresholds)!r}: give one or more finite minutes "
            ">= 0, e.g. [5, 10, 15, 20]"
        )
    if problems:
        raise ValidationError("thresholds", problems)
    minutes = _numeric(communes, minutes_col, "communes", allow_inf=True)
    base = pd.DataFrame(
        {
            "insee": idx,
            "nom": communes["nom"].to_numpy(),
            "epci": communes["epci"].to_numpy(),
            "epci_nom": (
                communes["epci_nom"].to_numpy() if "epci_nom" in communes.columns else None
            ),
            "population": communes["population"].to_numpy(),
            "need": communes["need"].astype(float).to_numpy(),
            "need_index": communes["need_index"].astype(float).to_numpy(),
            "minutes": minutes.to_numpy(),
        }
    )
    base = base.sort_values(
        ["need", "population", "insee"], ascending=[False, False, True], kind="stable"
    )
    parts = []
    for t in ts:
        sel = base[base["minutes"].to_numpy() > t].copy()
        sel.insert(0, "rank", np.arange(1, len(sel) + 1, dtype=int))
        sel.insert(0, "threshold_min", t)
        parts.append(sel)
    out = pd.concat(parts, ignore_index=True)[GAP_COMMUNE_COLUMNS]
    out["rank"] = out["rank"].astype(int)
    for t in ts:
        sel = out[out["threshold_min"] == t]
        log.info(
            "gap communes beyond %g min: %d (population %d, need %.0f)",
            t,
            len(sel),
            int(sel["population"].sum()),
            float(sel["need"].sum()),
        )
    return out


# --------------------------------------------------------------------------------------
# 2. Accessibility and priority score
# --------------------------------------------------------------------------------------
def need_accessibility(
    communes: pd.DataFrame,
    places: pd.DataFrame,
    *,
    catchment: float | None = None,
    weights: str | None = None,
    od: pd.DataFrame | None = None,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """(E)2SFCA accessibility of every commune to accompaniment advisors, per need.

    Supply = ``advisors`` of the places whose ``service_level`` is
    ``accompaniment``; demand = ``communes["need"]`` (need-weighted population);
    travel = ``od`` when given, else crow-fly × detour from the communes' travel
    points (``ref_x``, ``ref_y``, as in :func:`cnfs_geo.plan.run`) to the places'
    points within ``catchment``.

    Parameters
    ----------
    communes : DataFrame
        Index ``insee``; ``need`` and (without ``od``) ``ref_x``, ``ref_y`` in the
        working CRS.
    places : DataFrame
        ``place_id``, ``service_level``, ``advisors`` and (without ``od``) point
        ``geometry`` in the same CRS.
    catchment : float
        Minutes (default ``settings.access_catchment_minutes`` = 20).
    weights : str
        ``"none"`` (2SFCA), ``"stepped"`` (Luo & Qi E2SFCA), ``"gaussian"``; default
        ``settings.access_weights`` (``"stepped"``).
    od : DataFrame, optional
        Long OD table ``origin_id`` (INSEE), ``destination_id`` (``place_id``),
        ``minutes`` (e.g. from the road model); rows to other destinations are
        ignored.
    settings : Settings, optional
        ``detour_factor``, ``speed_kmh`` of the crow-fly model, and the defaults of
        ``catchment`` and ``weights`` (default :data:`cnfs_geo.settings.DEFAULT`).

    Returns
    -------
    DataFrame
        :func:`cnfs_geo.coverage.two_step_fca` output: index ``insee`` (str, sorted),
        ``demand`` (need), ``access`` (advisors per 10 000 need-weighted
        inhabitants), ``n_sites``; ``attrs`` describe the method.
    """
    _require(communes, ["need"], "communes", "pass plan.communes (need columns)")
    _require(
        places,
        ["place_id", "service_level", "advisors"],
        "places",
        "pass plan.places (cnfs_geo.offer.places_from_sources)",
    )
    settings = _settings(settings)
    catchment = settings.access_catchment_minutes if catchment is None else catchment
    weights = settings.access_weights if weights is None else weights
    idx = _str_index(communes, "communes")
    acc = places[places["service_level"] == "accompaniment"]
    site_ids = acc["place_id"].astype(str).to_numpy()
    supply = pd.Series(
        pd.to_numeric(acc["advisors"], errors="coerce").to_numpy(dtype=float),
        index=site_ids,
        name="advisors",
    )
    demand = pd.Series(communes["need"].astype(float).to_numpy(), index=idx, name="need")
    demand.index.name = "insee"
    if od is None:
        od = crowfly_access_od(communes, places, catchment=catchment, settings=settings)
    else:
        od = od[od["destination_id"].astype(str).isin(set(site_ids))]
    return coverage.two_step_fca(od, demand, supply, catchment=catchment, weights=weights)


def crowfly_access_od(
    communes: pd.DataFrame,
    places: pd.DataFrame,
    *,
    catchment: float | None = None,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """The crow-fly OD table :func:`need_accessibility` uses without ``od``: communes'
    travel points (``ref_x``, ``ref_y``) to the accompaniment places within
    ``catchment`` minutes (:func:`cnfs_geo.access.od_crowfly`). Computed once, it can be
    given as ``od`` to several accessibility runs on the same communes and places
    (:func:`default_advisors_sensitivity`): same results.

    Returns
    -------
    DataFrame
        ``origin_id`` (INSEE, str), ``destination_id`` (``place_id``, str), ``minutes``.
    """
    _require(places, ["place_id", "service_level"], "places", "pass plan.places (cnfs_geo.offer)")
    settings = _settings(settings)
    catchment = settings.access_catchment_minutes if catchment is None else catchment
    idx = _str_index(communes, "communes")
    acc = places[places["service_level"] == "accompaniment"]
    _require(
        communes,
        ["ref_x", "ref_y"],
        "communes",
        "travel points of the communes (cnfs_geo.territory.communes_from_cog)",
    )
    origins = pd.DataFrame(
        {
            "x": communes["ref_x"].to_numpy(dtype=float),
            "y": communes["ref_y"].to_numpy(dtype=float),
        },
        index=idx,
    )
    dest = pd.DataFrame(
        {"x": acc.geometry.x.to_numpy(), "y": acc.geometry.y.to_numpy()},
        index=acc["place_id"].astype(str).to_numpy(),
    )
    return access.od_crowfly(origins, dest, max_minutes=float(catchment), settings=settings)


PRIORITY_COLUMNS = [
    "nom",
    "epci",
    "population",
    "need",
    "need_index",
    "pct_fibre",
    "fibre_imputed",
    "minutes",
    "accessibility",
    "ratio_to_target",
    "crit_time",
    "crit_access",
    "crit_need",
    "crit_fibre",
    "priority_score",
    "priority_rank",
    "is_far",
    "is_thin",
    "is_high_need",
    "is_low_fibre",
    "is_gap",
    "gap_reasons",
]


def _check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    keys = set(PRIORITY_WEIGHTS)
    problems = []
    if not isinstance(weights, Mapping):
        raise ValidationError(
            "weights", [f"weights={weights!r}: give a mapping with keys {sorted(keys)}"]
        )
    unknown = set(weights) - keys
    missing = keys - set(weights)
    if unknown:
        problems.append(f"unknown key(s) {sorted(unknown)}: known keys {sorted(keys)}")
    if missing:
        problems.append(
            f"missing key(s) {sorted(missing)}: give a weight (0 allowed) for "
            f"each of {sorted(keys)}"
        )
    out = {}
    for k in [k for k in PRIORITY_WEIGHTS if k in weights]:  # fixed order
        try:
            v = float(weights[k])
        except (TypeError, ValueError):
            problems.append(f"{k}={weights[k]!r} is not a number")
            continue
        if not math.isfinite(v) or v < 0:
            problems.append(f"{k}={weights[k]!r} must be a finite number >= 0")
        out[k] = v
    if not problems and sum(out.values()) <= 0:
        problems.append("all weights are 0: give at least one positive weight")
    if problems:
        raise ValidationError("weights", problems)
    return out


def priority_scores(
    communes: pd.DataFrame,
    accessibility: pd.DataFrame | pd.Series,
    *,
    settings: Settings | None = None,
    threshold: float | None = None,
    target_ratio: float | None = None,
    target_share: float | None = None,
    need_quantile: float | None = None,
    fibre_min_pct: float | None = None,
    time_scale_min: float = TIME_SCALE_MIN,
    weights: Mapping[str, float] = PRIORITY_WEIGHTS,
    minutes_col: str = "minutes_before",
) -> pd.DataFrame:
    """Priority criteria, score and gap flag of every commune (see docs/methods_gaps.md).

    Parameters
    ----------
    communes : DataFrame
        Index ``insee``; ``nom``, ``epci``, ``population``, ``need``, ``need_index``,
        ``pct_fibre`` (NaN allowed: imputed), ``minutes_col``.
    accessibility : DataFrame or Series
        Output of :func:`need_accessibility` (column ``access``) or a Series of
        advisors per 10 000 need-weighted inhabitants, indexed by INSEE, one value
        per commune.
    settings : Settings
        ``threshold_minutes`` (the "far" threshold when ``threshold`` is None).
    threshold : float, optional
        "Far" threshold in minutes.
    target_ratio : float or None
        Absolute target accessibility; None (default) = ``target_share`` ×
        reference ratio.
    target_share : float
        In (0, 1]; default ``settings.thin_share`` (0.5): share of the département's
        reference ratio under which a commune is "thin".
    need_quantile : float
        In [0, 1]; default ``settings.high_need_quantile`` (0.5, the median).
    fibre_min_pct : float
        Default ``settings.low_fibre_pct`` (80 %).
    time_scale_min : float
        See :data:`TIME_SCALE_MIN`.
    weights : mapping
        Keys ``time``, ``access``, ``need``, ``fibre``; see :data:`PRIORITY_WEIGHTS`.
    minutes_col : str
        Travel-time column of ``communes``.

    Returns
    -------
    DataFrame
        Index ``insee`` (order of ``communes``). Columns :data:`PRIORITY_COLUMNS`:
        ``nom``, ``epci``, ``population``, ``need``, ``need_index``, ``pct_fibre``
        (imputed where missing), ``fibre_imputed``, ``minutes``, ``accessibility``,
        ``ratio_to_target`` (accessibility / target), ``crit_time``,
        ``crit_access``, ``crit_need``, ``crit_fibre`` (0–1, 1 = worst),
        ``priority_score`` (0–100), ``priority_rank`` (1 = highest), ``is_far``,
        ``is_thin``, ``is_high_need``, ``is_low_fibre``, ``is_gap`` (bool),
        ``gap_reasons`` (str, "" for non-gap communes). ``attrs``:
        ``threshold_min``, ``reference_ratio``, ``target_ratio``,
        ``target_share`` (None when an absolute target is given),
        ``need_quantile``, ``need_threshold``, ``fibre_min_pct``,
        ``time_scale_min``, ``weights``, ``accessibility_method``.

    Raises
    ------
    ValidationError
        Missing columns, accessibility not covering exactly the communes, bad
        parameters.
    """
    _require(
        communes,
        ["nom", "epci", "population", "need", "need_index", "pct_fibre", minutes_col],
        "communes",
        "pass plan.communes (territory + need + coverage columns)",
    )
    idx = _str_index(communes, "communes")
    settings = _settings(settings)
    thr = float(settings.threshold_minutes if threshold is None else threshold)
    target_share = settings.thin_share if target_share is None else target_share
    need_quantile = settings.high_need_quantile if need_quantile is None else need_quantile
    fibre_min_pct = settings.low_fibre_pct if fibre_min_pct is None else fibre_min_pct
    w = _check_weights(weights)
    problems = []
    for name, value, lo, hi, lo_open in (
        ("target_share", target_share, 0.0, 1.0, True),
        ("need_quantile", need_quantile, 0.0, 1.0, False),
        ("fibre_min_pct", fibre_min_pct, 0.0, 100.0, False),
    ):
        try:
            v = float(value)
        except (TypeError, ValueError):
            problems.append(f"{name}={value!r} is not a number")
            continue
        if not (lo < v <= hi if lo_open else lo <= v <= hi):
            problems.append(f"{name}={value!r} must be in {'(' if lo_open else '['}{lo:g}, {hi:g}]")
    for name, value in (("threshold", thr), ("time_scale_min", time_scale_min)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            problems.append(f"{name}={value!r} must be a finite number of minutes > 0")
    if target_ratio is not None and not (
        isinstance(target_ratio, (int, float)) and math.isfinite(target_ratio) and target_ratio > 0
    ):
        problems.append(
            f"target_ratio={target_ratio!r} must be a positive number of advisors "
            "per 10 000 need-weighted inhabitants, or None"
        )
    if problems:
        raise ValidationError("priority_scores options", problems)

    if isinstance(accessibility, pd.DataFrame):
        _require(
            accessibility,
            ["access"],
            "accessibility",
            "pass the output of cnfs_geo.gaps.need_accessibility / coverage.two_step_fca",
        )
        acc_series, method = accessibility["access"], accessibility.attrs.get("method")
        acc_attrs = dict(accessibility.attrs)
        unit_per = accessibility.attrs.get("per", 10_000)
        if unit_per != 10_000:
            raise ValidationError(
                "accessibility",
                [
                    f"accessibility is per {unit_per:g} demand units: compute it per 10 000 "
                    "(two_step_fca(..., per=10_000))"
                ],
            )
    elif isinstance(accessibility, pd.Series):
        acc_series, method, acc_attrs = accessibility, None, {}
    else:
        raise ValidationError(
            "accessibility",
            [
                f"expected the DataFrame of need_accessibility or a Series, got "
                f"{type(accessibility).__name__}"
            ],
        )
    acc = _aligned(
        pd.to_numeric(acc_series, errors="coerce").astype(float),
        idx,
        "accessibility",
        "an accessibility value",
    )
    bad = ~np.isfinite(acc.to_numpy()) | (acc.to_numpy() < 0)
    if bad.any():
        raise ValidationError(
            "accessibility",
            [f"{int(bad.sum())} missing, infinite or negative value(s) at {list(idx[bad][:10])}"],
        )

    frame = communes.copy()
    frame.index = idx
    minutes = _numeric(frame, minutes_col, "communes", allow_inf=True)
    need = _numeric(frame, "need", "communes")
    need_index = _numeric(frame, "need_index", "communes")
    fibre_raw = _numeric(frame, "pct_fibre", "communes", allow_nan=True)
    fibre_imputed = fibre_raw.isna()
    if fibre_imputed.all():
        raise ValidationError(
            "communes",
            ["column 'pct_fibre' is empty for every commune: check the ARCEP fibre file"],
        )
    fibre = fibre_raw.fillna(float(fibre_raw.median()))
    if fibre_imputed.any():
        log.warning(
            "priority: %d commune(s) without fibre figure take the département median %.1f %%: %s",
            int(fibre_imputed.sum()),
            float(fibre_raw.median()),
            list(idx[fibre_imputed.to_numpy()][:10]),
        )

    total_need = float(need.sum())
    reference = float((need * acc).sum() / total_need) if total_need > 0 else 0.0
    target = float(target_ratio) if target_ratio is not None else target_share * reference
    need_thr = float(np.quantile(need_index.to_numpy(), float(need_quantile)))

    crit_time = np.minimum(minutes.to_numpy() / float(time_scale_min), 1.0)
    if reference > 0:
        crit_access = np.clip(1.0 - acc.to_numpy() / reference, 0.0, 1.0)
    else:
        crit_access = np.ones(len(idx))
    crit_need = np.clip(need_index.to_numpy() / 10.0, 0.0, 1.0)
    crit_fibre = np.clip(1.0 - fibre.to_numpy() / 100.0, 0.0, 1.0)
    wsum = sum(w.values())
    score = (
        100.0
        * (
            w["time"] * crit_time
            + w["access"] * crit_access
            + w["need"] * crit_need
            + w["fibre"] * crit_fibre
        )
        / wsum
    )

    is_far = minutes.to_numpy() > thr
    is_thin = acc.to_numpy() < target
    is_high = need_index.to_numpy() >= need_thr
    is_low_fibre = fibre.to_numpy() < float(fibre_min_pct)
    is_gap = (is_far | is_thin) & is_high

    labels = (
        _fr.REASON_FAR.format(threshold=thr),
        _fr.REASON_THIN,
        _fr.REASON_NEED,
        _fr.REASON_FIBRE.format(fibre=float(fibre_min_pct)),
    )
    reasons = []
    for g, f, t, h, lf in zip(is_gap, is_far, is_thin, is_high, is_low_fibre):
        reasons.append(" ; ".join(lab for lab, on in zip(labels, (f, t, h, lf)) if on) if g else "")

    out = pd.DataFrame(
        {
            "nom": frame["nom"].to_numpy(),
            "epci": frame["epci"].to_numpy(),
            "population": frame["population"].to_numpy(),
            "need": need.to_numpy(),
            "need_index": need_index.to_numpy(),
            "pct_fibre": fibre.to_numpy(),
            "fibre_imputed": fibre_imputed.to_numpy(),
            "minutes": minutes.to_numpy(),
            "accessibility": acc.to_numpy(),
            "ratio_to_target": acc.to_numpy() / target if target > 0 else np.inf,
            "crit_time": crit_time,
            "crit_access": crit_access,
            "crit_need": crit_need,
            "crit_fibre": crit_fibre,
            "priority_score": score,
            "is_far": is_far,
            "is_thin": is_thin,
            "is_high_need": is_high,
            "is_low_fibre": is_low_fibre,
            "is_gap": is_gap,
            "gap_reasons": reasons,
        },
        index=pd.Index(idx, name="insee"),
    )
    order = (
        out.assign(_i=out.index)
        .sort_values(
            ["priority_score", "need", "_i"], ascending=[False, False, True], kind="stable"
        )
        .index
    )
    out["priority_rank"] = (
        pd.Series(np.arange(1, len(out) + 1), index=order).reindex(out.index).astype(int)
    )
    out = out[PRIORITY_COLUMNS]
    out.attrs.update(
        {
            "threshold_min": thr,
            "reference_ratio": reference,
            "target_ratio": target,
            "target_share": None if target_ratio is not None else float(target_share),
            "need_quantile": float(need_quantile),
            "need_threshold": need_thr,
            "fibre_min_pct": float(fibre_min_pct),
            "time_scale_min": float(time_scale_min),
            "weights": dict(w),
            "accessibility_method": method,
            "accessibility_weights": acc_attrs.get("weights"),
            "accessibility_steps": acc_attrs.get("steps"),
            "catchment_minutes": acc_attrs.get("catchment_minutes"),
        }
    )
    log.info(
        "priority: %d gap communes of %d (far > %g min: %d, thin < %.2f: %d, high need "
        ">= %.2f: %d); reference ratio %.2f advisors per 10 000 need-weighted inh.",
        int(is_gap.sum()),
        len(out),
        thr,
        int(is_far.sum()),
        target,
        int(is_thin.sum()),
        need_thr,
        int(is_high.sum()),
        reference,
    )
    return out


def default_advisors_sensitivity(
    communes: pd.DataFrame,
    places: pd.DataFrame,
    *,
    settings: Settings | None = None,
    threshold: float | None = None,
    od: pd.DataFrame | None = None,
    factors: Sequence[float] | None = None,
    baseline: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """How the priority list moves when the defaulted advisor counts move.

    The advisors of the places whose count is a default (``advisors_assumed``; not
    the CNFS counts of the source nor the France Services charter's two agents) are
    multiplied by the low and high factor, and the accessibility
    (:func:`need_accessibility`) and priority (:func:`priority_scores`) are computed
    again with every other input unchanged.

    Parameters
    ----------
    communes : DataFrame
        As for :func:`need_accessibility` and :func:`priority_scores`.
    places : DataFrame
        ``place_id``, ``service_level``, ``advisors``, ``advisors_assumed`` (and point
        ``geometry`` without ``od``).
    settings : Settings, optional, keyword-only
        Defaults of both stages and ``default_advisors_factors`` (0.5, 2).
    threshold : float, optional, keyword-only
        "Far" threshold (``settings.threshold_minutes`` when None).
    od : DataFrame, optional, keyword-only
        As for :func:`need_accessibility`.
    factors : (low, high), optional, keyword-only
        Multipliers (``settings.default_advisors_factors`` when None).
    baseline : DataFrame, optional, keyword-only
        :func:`priority_scores` of the same communes with the advisors as they are (the
        settings' accessibility, same ``od`` and ``threshold``), when the caller already
        has it: its ``priority_rank`` and ``is_gap`` are the unsuffixed columns (not
        computed again).

    Returns
    -------
    DataFrame
        Index ``insee``; ``priority_rank``, ``priority_gap`` (defaults as they are),
        ``priority_rank_low``, ``priority_gap_low``, ``priority_rank_high``,
        ``priority_gap_high``. ``attrs``: ``factors``, ``n_default`` (accompaniment
        places whose count is a default), ``n_counts`` (accompaniment places),
        ``advisors_default`` / ``advisors_total`` (their advisors).
    """
    _require(
        places,
        ["place_id", "service_level", "advisors", "advisors_assumed"],
        "places",
        "pass plan.places (cnfs_geo.offer.places_from_sources)",
    )
    settings = _settings(settings)
    low, high = tuple(settings.default_advisors_factors if factors is None else factors)
    assumed = places["advisors_assumed"].astype(bool)
    adv = pd.to_numeric(places["advisors"], errors="coerce").astype(float)
    out = {}
    runs = [("", 1.0), ("_low", float(low)), ("_high", float(high))]
    if baseline is not None:
        out["priority_rank"] = baseline["priority_rank"]
        out["priority_gap"] = baseline["is_gap"].astype(bool)
        runs = runs[1:]
    if od is None and "ref_x" in communes.columns:  # the same crow-fly table for every run
        od = crowfly_access_od(communes, places, settings=settings)
    for suffix, factor in runs:
        moved = places.assign(advisors=adv.where(~assumed, adv * factor))
        acc = need_accessibility(communes, moved, od=od, settings=settings)
        sc = priority_scores(communes, acc, settings=settings, threshold=threshold)
        out[f"priority_rank{suffix}"] = sc["priority_rank"]
        out[f"priority_gap{suffix}"] = sc["is_gap"].astype(bool)
    table = pd.DataFrame(out)
    table.index.name = "insee"
    acc_places = places["service_level"] == "accompaniment"
    table.attrs.update(
        {
            "factors": (float(low), float(high)),
            "n_default": int((acc_places & assumed).sum()),
            "n_counts": int(acc_places.sum()),
            "advisors_default": float(adv[acc_places & assumed].sum()),
            "advisors_total": float(adv[acc_places].sum()),
        }
    )
    return table


def methods_fr(
    scores: pd.DataFrame | None = None,
    *,
    min_shared_m: float = MIN_SHARED_BORDER_M,
    settings: Settings | None = None,
) -> str:
    """French methods text of the gap diagnosis (:func:`cnfs_geo._fr.gaps_methods`).

    Parameters
    ----------
    scores : DataFrame, optional
        Output of :func:`priority_scores`: the text is filled with the values actually
        used (threshold, target and reference ratio, need threshold, weights). Without
        it, the text of ``settings`` with the data-dependent values left generic.
    min_shared_m : float
        Minimum shared border of the clusters (:func:`commune_adjacency`).
    settings : Settings, optional
        Defaults (threshold, thin share, need quantile, fibre threshold, 2SFCA
        catchment and weights) when ``scores`` is None or does not record them.

    Returns
    -------
    str
        Paragraphs separated by blank lines, the first one a title.
    """
    s = _settings(settings)
    if scores is None:
        return _fr.gaps_methods(
            threshold=s.threshold_minutes,
            target=None,
            reference=None,
            target_share=s.thin_share,
            need_quantile=s.high_need_quantile,
            need_threshold=None,
            fibre=s.low_fibre_pct,
            time_scale=TIME_SCALE_MIN,
            weights=dict(PRIORITY_WEIGHTS),
            catchment=s.access_catchment_minutes,
            min_border=min_shared_m,
            access_weights=s.access_weights,
            access_steps=_access_steps(s.access_weights, s.access_catchment_minutes, None),
        )
    a = scores.attrs
    needed = (
        "threshold_min",
        "target_ratio",
        "reference_ratio",
        "need_quantile",
        "need_threshold",
        "fibre_min_pct",
        "time_scale_min",
        "weights",
    )
    missing = [k for k in needed if k not in a]
    if missing:
        raise ValidationError(
            "scores",
            [f"attrs lack {missing}: pass the DataFrame returned by priority_scores unchanged"],
        )
    catchment = a.get("catchment_minutes") or s.access_catchment_minutes
    access_weights = a.get("accessibility_weights") or s.access_weights
    return _fr.gaps_methods(
        threshold=a["threshold_min"],
        target=a["target_ratio"],
        reference=a["reference_ratio"],
        target_share=a.get("target_share"),
        need_quantile=a["need_quantile"],
        need_threshold=a["need_threshold"],
        fibre=a["fibre_min_pct"],
        time_scale=a["time_scale_min"],
        weights=a["weights"],
        catchment=catchment,
        min_border=min_shared_m,
        access_weights=access_weights,
        access_steps=_access_steps(access_weights, catchment, a.get("accessibility_steps")),
    )


# --------------------------------------------------------------------------------------
# 3. Adjacency and gap clusters
# --------------------------------------------------------------------------------------
def commune_adjacency(
    communes: gpd.GeoDataFrame,
    *,
    tolerance_m: float = ADJACENCY_TOLERANCE_M,
    min_shared_m: float = MIN_SHARED_BORDER_M,
) -> pd.DataFrame:
    """Pairs of communes sharing a border ("rook" contiguity).

    Candidate pairs come from a :class:`shapely.STRtree` query (``dwithin``
    ``tolerance_m``); the shared border of a pair is the length of the boundary of
    one commune lying within ``tolerance_m`` of the other's boundary. Pairs with a
    shared border ``>= min_shared_m`` are adjacent.

    Parameters
    ----------
    communes : GeoDataFrame
        Index ``insee``; polygon ``geometry`` in a projected CRS (metres).
    tolerance_m, min_shared_m : float
        See :data:`ADJACENCY_TOLERANCE_M`, :data:`MIN_SHARED_BORDER_M`.

    Returns
    -------
    DataFrame
        Columns ``insee_a`` < ``insee_b`` (str), ``shared_m`` (float, metres); one row
        per adjacent pair, sorted.
    """
    _require_projected(communes, "communes")
    idx = _str_index(communes, "communes")
    if not (tolerance_m >= 0 and min_shared_m > 0):
        raise ValidationError(
            "commune_adjacency options",
            [f"tolerance_m={tolerance_m!r} must be >= 0 and min_shared_m={min_shared_m!r} > 0"],
        )
    geoms = communes.geometry.to_numpy()
    empty = shapely.is_empty(geoms) | pd.isna(geoms)
    if empty.any():
        raise ValidationError(
            "communes", [f"{int(empty.sum())} commune(s) without geometry: {list(idx[empty][:10])}"]
        )
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="dwithin", distance=float(tolerance_m))
    keep = i < j
    i, j = i[keep], j[keep]
    bounds = shapely.boundary(geoms)
    if len(i):
        near = shapely.buffer(bounds[j], float(tolerance_m)) if tolerance_m > 0 else bounds[j]
        shared = shapely.length(shapely.intersection(bounds[i], near))
    else:
        shared = np.zeros(0)
    ok = shared >= float(min_shared_m)
    a, b = idx.to_numpy()[i[ok]], idx.to_numpy()[j[ok]]
    lo, hi = np.where(a < b, a, b), np.where(a < b, b, a)
    out = pd.DataFrame(
        {"insee_a": lo.astype(str), "insee_b": hi.astype(str), "shared_m": shared[ok].astype(float)}
    )
    return out.sort_values(["insee_a", "insee_b"], kind="stable").reset_index(drop=True)


def _is_gap_series(is_gap: pd.Series, idx: pd.Index) -> np.ndarray:
    if not isinstance(is_gap, pd.Series):
        raise ValidationError(
            "is_gap",
            [f"expected a boolean Series indexed by INSEE code, got {type(is_gap).__name__}"],
        )
    s = _aligned(is_gap, idx, "is_gap", "a True/False value")
    if s.isna().any():
        raise ValidationError(
            "is_gap",
            [
                f"{int(s.isna().sum())} missing value(s) at "
                f"{list(idx[s.isna().to_numpy()][:10])}: give True "
                "or False for every commune"
            ],
        )
    vals = s.to_numpy()
    if not all(isinstance(v, (bool, np.bool_)) for v in vals):
        bad = [k for k, v in zip(idx, vals) if not isinstance(v, (bool, np.bool_))]
        raise ValidationError(
            "is_gap",
            [
                f"non-boolean value(s) at {bad[:10]}: give True or "
                "False (e.g. scores['is_gap'] or ~covered_before)"
            ],
        )
    return vals.astype(bool)


def _components(
    communes: gpd.GeoDataFrame, gap: np.ndarray, *, tolerance_m: float, min_shared_m: float
) -> tuple[pd.Index, np.ndarray]:
    """Gap communes (str index) and their component labels."""
    idx = _str_index(communes, "communes")
    sub = communes[gap]
    sub_idx = idx[gap]
    if len(sub) == 0:
        return sub_idx, np.zeros(0, dtype=int)
    sub = sub.set_axis(sub_idx)
    adj = commune_adjacency(sub, tolerance_m=tolerance_m, min_shared_m=min_shared_m)
    r = sub_idx.get_indexer(adj["insee_a"])
    c = sub_idx.get_indexer(adj["insee_b"])
    mat = sparse.coo_matrix((np.ones(len(r)), (r, c)), shape=(len(sub), len(sub))).tocsr()
    _, labels = connected_components(mat, directed=False)
    return sub_idx, labels


def _cluster_order(
    sub_idx: pd.Index, labels: np.ndarray, need: np.ndarray, pop: np.ndarray
) -> dict[int, str]:
    df = pd.DataFrame({"label": labels, "need": need, "pop": pop, "insee": sub_idx})
    agg = df.groupby("label").agg(need=("need", "sum"), pop=("pop", "sum"), first=("insee", "min"))
    agg = agg.sort_values(["need", "pop", "first"], ascending=[False, False, True], kind="stable")
    width = max(2, len(str(len(agg))))
    return {lab: f"G{k + 1:0{width}d}" for k, lab in enumerate(agg.index)}


def gap_cluster_ids(
    communes: gpd.GeoDataFrame,
    *,
    is_gap: pd.Series,
    tolerance_m: float = ADJACENCY_TOLERANCE_M,
    min_shared_m: float = MIN_SHARED_BORDER_M,
) -> pd.Series:
    """Gap cluster id of every commune (``None`` outside gaps).

    Parameters
    ----------
    communes : GeoDataFrame
        Index ``insee``; ``population``, ``need``, polygon ``geometry`` (projected CRS).
    is_gap : Series of bool
        Indexed by INSEE code, one value per commune (e.g.
        ``priority_scores(...)["is_gap"]`` or ``~communes["covered_before"]``).
    tolerance_m, min_shared_m : float
        Adjacency, see :func:`commune_adjacency`.

    Returns
    -------
    Series
        Named ``gap_cluster``, index = ``communes``' index (str), values ``"G01"``…
        (same ids as :func:`gap_clusters`) or None.
    """
    _require(communes, ["population", "need", "geometry"], "communes", "pass plan.communes")
    _require_projected(communes, "communes")
    idx = _str_index(communes, "communes")
    gap = _is_gap_series(is_gap, idx)
    sub_idx, labels = _components(communes, gap, tolerance_m=tolerance_m, min_shared_m=min_shared_m)
    ids = _cluster_order(
        sub_idx,
        labels,
        communes["need"].to_numpy(dtype=float)[gap],
        communes["population"].to_numpy(dtype=float)[gap],
    )
    out = pd.Series(
        [None] * len(idx), index=pd.Index(idx, name="insee"), dtype=object, name="gap_cluster"
    )
    out.loc[sub_idx] = [ids[lab] for lab in labels]
    return out


CLUSTER_COLUMNS = [
    "cluster_id",
    "n_communes",
    "communes",
    "names",
    "epci",
    "epci_nom",
    "population",
    "need",
    "need_index_mean",
    "minutes_mean",
    "minutes_max",
    "nearest_place_id",
    "nearest_place_name",
    "nearest_place_minutes",
    "nearest_from",
    "n_places",
    "n_accompaniment_places",
    "area_km2",
    "geometry",
]


def gap_clusters(
    communes: gpd.GeoDataFrame,
    *,
    is_gap: pd.Series,
    places: pd.DataFrame | None = None,
    minutes_col: str = "minutes_before",
    settings: Settings | None = None,
    tolerance_m: float = ADJACENCY_TOLERANCE_M,
    min_shared_m: float = MIN_SHARED_BORDER_M,
    cluster_ids: pd.Series | None = None,
) -> gpd.GeoDataFrame:
    """Contiguous groups of gap communes, one row per cluster.

    Parameters
    ----------
    communes : GeoDataFrame
        Index ``insee``; ``nom``, ``epci``, ``population``, ``need``, ``minutes_col``,
        polygon ``geometry`` in a projected CRS; ``epci_nom``, ``area_km2``,
        ``nearest_place_before``, ``nearest_place_name`` used when present.
    is_gap : Series of bool
        One value per commune (see :func:`gap_cluster_ids`).
    places : DataFrame, optional
        ``plan.places`` (``place_id``, ``name``, ``insee``, ``service_level``,
        point ``geometry``). When given, clusters count the places located in
        their communes, and the nearest accompaniment place is computed (crow-fly
        from ``ref_x``/``ref_y``, ``settings``) if ``communes`` lacks
        ``nearest_place_before``.
    minutes_col : str
        Travel time to the nearest accompaniment place.
    settings : Settings, optional
        Crow-fly model when the nearest place has to be computed (default
        :data:`cnfs_geo.settings.DEFAULT`).
    tolerance_m, min_shared_m : float
        Adjacency, see :func:`commune_adjacency`.
    cluster_ids : Series, optional
        What :func:`gap_cluster_ids` returned for the same ``communes``, ``is_gap`` and
        adjacency options, when the caller already has it (the adjacency is then not
        computed again); one value per commune, same index.

    Returns
    -------
    GeoDataFrame
        RangeIndex, sorted by ``cluster_id``; CRS of ``communes``. Columns
        :data:`CLUSTER_COLUMNS`:

        - ``cluster_id`` (``"G01"``…, by need desc; ties: population, smallest INSEE);
        - ``n_communes``; ``communes`` (``;``-joined sorted INSEE codes);
          ``names`` (``"; "``-joined names, same order);
        - ``epci`` (``;``-joined sorted SIREN), ``epci_nom`` (``"; "``-joined, same order);
        - ``population``, ``need`` (sums);
        - ``need_index_mean`` (population-weighted mean IFN = 10 × need / population);
        - ``minutes_mean`` (population-weighted), ``minutes_max``;
        - ``nearest_place_id``, ``nearest_place_name``, ``nearest_place_minutes``: the
          accompaniment place nearest to any commune of the cluster, from the commune
          ``nearest_from`` (INSEE; ties: smallest code);
        - ``n_places``, ``n_accompaniment_places``: places located in the cluster's
          communes (NaN without ``places``);
        - ``area_km2``; ``geometry``: dissolved polygon(s) of the communes.

    Raises
    ------
    ValidationError
        Missing columns, geographic CRS, ``is_gap`` not covering exactly the communes.
    """
    _require(
        communes,
        ["nom", "epci", "population", "need", minutes_col, "geometry"],
        "communes",
        "pass plan.communes",
    )
    _require_projected(communes, "communes")
    if cluster_ids is None:
        ids = gap_cluster_ids(
            communes, is_gap=is_gap, tolerance_m=tolerance_m, min_shared_m=min_shared_m
        )
    else:
        idx = _str_index(communes, "communes")
        _is_gap_series(is_gap, idx)  # same checks as gap_cluster_ids
        if not (len(cluster_ids) == len(idx) and cluster_ids.index.astype(str).equals(idx)):
            raise ValidationError(
                "cluster_ids",
                ["one value per commune of `communes`, same index: pass gap_cluster_ids(...)"],
            )
        ids = pd.Series(
            cluster_ids.to_numpy(dtype=object),
            index=pd.Index(idx, name="insee"),
            name="gap_cluster",
        )
    frame = communes.set_axis(ids.index)
    frame = frame.assign(
        gap_cluster=ids.to_numpy(),
        _minutes=_numeric(frame, minutes_col, "communes", allow_inf=True),
    )
    if "epci_nom" not in frame.columns:
        frame["epci_nom"] = frame["epci"]
    if "area_km2" not in frame.columns:
        frame["area_km2"] = frame.geometry.area / 1e6

    # nearest accompaniment place of each commune
    if "nearest_place_before" in frame.columns:
        frame["_np_id"] = frame["nearest_place_before"].astype(object)
        if "nearest_place_name" in frame.columns:
            frame["_np_name"] = frame["nearest_place_name"].astype(object)
        elif places is not None:
            names = places.set_index(places["place_id"].astype(str))["name"]
            frame["_np_name"] = frame["_np_id"].map(names)
        else:
            frame["_np_name"] = None
        frame["_np_min"] = frame["_minutes"]
    elif places is not None:
        _require(
            places, ["place_id", "name", "service_level", "geometry"], "places", "pass plan.places"
        )
        _require(frame, ["ref_x", "ref_y"], "communes", "travel points of the communes")
        acc = places[places["service_level"] == "accompaniment"]
        dest = pd.DataFrame(
            {"x": acc.geometry.x.to_numpy(), "y": acc.geometry.y.to_numpy()},
            index=acc["place_id"].astype(str).to_numpy(),
        )
        origins = pd.DataFrame(
            {"x": frame["ref_x"].to_numpy(dtype=float), "y": frame["ref_y"].to_numpy(dtype=float)},
            index=frame.index,
        )
        near = access.nearest_crowfly(origins, dest, settings=settings)
        frame["_np_id"] = near["nearest_id"].to_numpy()
        frame["_np_name"] = (
            near["nearest_id"].map(acc.set_index(acc["place_id"].astype(str))["name"]).to_numpy()
        )
        frame["_np_min"] = near["minutes"].to_numpy()
    else:
        frame["_np_id"] = None
        frame["_np_name"] = None
        frame["_np_min"] = frame["_minutes"]

    if places is not None:
        _require(places, ["insee", "service_level"], "places", "pass plan.places")
        pins = places["insee"].astype(str)
        unknown = sorted(set(pins) - set(frame.index))
        if unknown:
            raise ValidationError(
                "places",
                [
                    f"{len(unknown)} place(s) in communes absent from "
                    f"`communes`, e.g. {unknown[:10]}: pass the places "
                    "of the same département"
                ],
            )
        n_all = pins.value_counts()
        n_acc = pins[(places["service_level"] == "accompaniment").to_numpy()].value_counts()
        frame["_n_places"] = n_all.reindex(frame.index).fillna(0).astype(int).to_numpy()
        frame["_n_acc"] = n_acc.reindex(frame.index).fillna(0).astype(int).to_numpy()

    g = frame[frame["gap_cluster"].notna()]
    rows = []
    for cid, part in g.groupby("gap_cluster", sort=True):
        part = part.sort_index()
        pop = part["population"].astype(float)
        need = part["need"].astype(float)
        epcis = part.drop_duplicates("epci").sort_values("epci")
        best = part.assign(_i=part.index).sort_values(["_np_min", "_i"], kind="stable").iloc[0]
        mins = part["_minutes"].to_numpy(dtype=float)
        ptot = float(pop.sum())
        rows.append(
            {
                "cluster_id": cid,
                "n_communes": len(part),
                "communes": ";".join(part.index),
                "names": "; ".join(part["nom"].astype(str)),
                "epci": ";".join(epcis["epci"].astype(str)),
                "epci_nom": "; ".join(epcis["epci_nom"].astype(str)),
                "population": int(round(ptot)),
                "need": float(need.sum()),
                "need_index_mean": 10.0 * float(need.sum()) / ptot if ptot > 0 else np.nan,
                "minutes_mean": (
                    float((pop.to_numpy() * mins).sum()) / ptot if ptot > 0 else float(mins.mean())
                ),
                "minutes_max": float(mins.max()),
                "nearest_place_id": best["_np_id"],
                "nearest_place_name": best["_np_name"],
                "nearest_place_minutes": float(best["_np_min"]),
                "nearest_from": best.name,
                "n_places": int(part["_n_places"].sum()) if places is not None else np.nan,
                "n_accompaniment_places": (
                    int(part["_n_acc"].sum()) if places is not None else np.nan
                ),
                "area_km2": float(part["area_km2"].sum()),
                "geometry": shapely.union_all(part.geometry.to_numpy()),
            }
        )
    if rows:
        out = gpd.GeoDataFrame(rows, columns=CLUSTER_COLUMNS, geometry="geometry", crs=communes.crs)
    else:
        out = gpd.GeoDataFrame(
            {c: pd.Series(dtype=object) for c in CLUSTER_COLUMNS[:-1]},
            geometry=gpd.GeoSeries([], crs=communes.crs),
        )
    out = out.sort_values("cluster_id", kind="stable").reset_index(drop=True)
    log.info(
        "gap clusters: %d cluster(s) from %d gap commune(s) (population %d)",
        len(out),
        len(g),
        int(g["population"].sum()),
    )
    return out


# --------------------------------------------------------------------------------------
# 4. EPCI without a digital project
# --------------------------------------------------------------------------------------
EPCI_COLUMNS = [
    "nom",
    "n_communes",
    "population",
    "need",
    "need_index_mean",
    "minutes_mean",
    "minutes_max",
    "n_places",
    "n_accompaniment_places",
    "n_lieu_mediation",
    "n_cnfs",
    "n_france_services",
    "n_aidants_connect",
    "has_project",
    "straddles",
    "geometry",
]
_KIND_FLAGS = {
    "n_lieu_mediation": "is_lieu_mediation",
    "n_cnfs": "is_cnfs",
    "n_france_services": "is_france_services",
    "n_aidants_connect": "is_aidants_connect",
}


def epci_offer(
    communes: gpd.GeoDataFrame,
    places: pd.DataFrame,
    epci_gdf: gpd.GeoDataFrame | None = None,
    *,
    minutes_col: str = "minutes_before",
) -> gpd.GeoDataFrame:
    """Offer and need figures of every EPCI (its communes of the département).

    A place belongs to the EPCI of its commune (``places["insee"]`` →
    ``communes["epci"]``). ``has_project`` is True when at least one place is a
    lieu de médiation numérique or a CNFS permanence (any service level).

    Parameters
    ----------
    communes : GeoDataFrame
        Index ``insee``; ``epci``, ``population``, ``need``, ``geometry``;
        ``minutes_col``, ``epci_nom`` used when present. Communes without EPCI
        (``epci`` missing) are left out with a warning and listed in
        ``attrs["communes_without_epci"]``.
    places : DataFrame
        ``insee``, ``service_level``, ``is_lieu_mediation``, ``is_cnfs``,
        ``is_france_services``, ``is_aidants_connect``.
    epci_gdf : GeoDataFrame, optional
        :func:`cnfs_geo.territory.epci_from_communes` (index ``epci``; ``nom``,
        ``straddles``, ``geometry``); without it names come from ``epci_nom`` and
        polygons are dissolved from the communes.
    minutes_col : str
        Travel time column (``minutes_mean`` population-weighted, ``minutes_max``).

    Returns
    -------
    GeoDataFrame
        Index ``epci`` (SIREN str, sorted); columns :data:`EPCI_COLUMNS`:
        ``nom``, ``n_communes``, ``population``, ``need``, ``need_index_mean``
        (population-weighted), ``minutes_mean``, ``minutes_max``, ``n_places``,
        ``n_accompaniment_places``, ``n_lieu_mediation``, ``n_cnfs``,
        ``n_france_services``, ``n_aidants_connect`` (a place of several kinds
        counts in each), ``has_project``, ``straddles`` (EPCI with members in other
        départements; None without ``epci_gdf``), ``geometry``; CRS of ``communes``.
    """
    _require(communes, ["epci", "population", "need", "geometry"], "communes", "pass plan.communes")
    flags = list(_KIND_FLAGS.values())
    _require(
        places,
        ["insee", "service_level", *flags],
        "places",
        "pass plan.places (cnfs_geo.offer.places_from_sources)",
    )
    idx = _str_index(communes, "communes")
    frame = communes.set_axis(idx)
    no_epci = frame["epci"].isna() | (frame["epci"].astype(str).str.strip() == "")
    if no_epci.any():
        log.warning(
            "EPCI: %d commune(s) belong to no EPCI and are left out of the EPCI table: %s",
            int(no_epci.sum()),
            list(idx[no_epci.to_numpy()]),
        )
    pins = places["insee"]
    problems = []
    if pins.isna().any():
        problems.append(
            f"{int(pins.isna().sum())} place(s) without commune code (insee): "
            "every place must be located in a commune"
        )
    unknown = sorted(set(pins.dropna().astype(str)) - set(idx))
    if unknown:
        problems.append(
            f"{len(unknown)} place(s) in communes absent from `communes`, e.g. "
            f"{unknown[:10]}: pass the places of the same département"
        )
    if problems:
        raise ValidationError("places", problems)
    pl = pd.DataFrame(
        {
            "epci": pins.astype(str).map(frame["epci"]).to_numpy(),
            "acc": (places["service_level"] == "accompaniment").to_numpy(),
        }
    )
    for col, flag in _KIND_FLAGS.items():
        pl[col] = places[flag].astype(bool).to_numpy()
    pl = pl[pl["epci"].notna()]

    f = frame[~no_epci.to_numpy()]
    f = f.assign(epci=f["epci"].astype(str))
    pop = f["population"].astype(float)
    has_min = minutes_col in f.columns
    mins = (
        _numeric(f, minutes_col, "communes", allow_inf=True)
        if has_min
        else pd.Series(np.nan, index=f.index)
    )
    agg = pd.DataFrame(
        {
            "n_communes": f.groupby("epci").size(),
            "population": pop.groupby(f["epci"]).sum(),
            "need": f["need"].astype(float).groupby(f["epci"]).sum(),
            "_popmin": (pop * mins).groupby(f["epci"]).sum(),
            "minutes_max": mins.groupby(f["epci"]).max(),
        }
    ).sort_index()
    agg["need_index_mean"] = np.where(
        agg["population"] > 0, 10.0 * agg["need"] / agg["population"], np.nan
    )
    agg["minutes_mean"] = np.where(
        agg["population"] > 0, agg["_popmin"] / agg["population"], np.nan
    )
    if not has_min:
        agg["minutes_mean"] = np.nan
    agg["n_places"] = pl.groupby("epci").size().reindex(agg.index).fillna(0).astype(int)
    agg["n_accompaniment_places"] = (
        pl.groupby("epci")["acc"].sum().reindex(agg.index).fillna(0).astype(int)
    )
    for col in _KIND_FLAGS:
        agg[col] = pl.groupby("epci")[col].sum().reindex(agg.index).fillna(0).astype(int)
    agg["has_project"] = (agg["n_lieu_mediation"] + agg["n_cnfs"]) > 0
    agg["population"] = agg["population"].round().astype(int)

    if epci_gdf is not None:
        _require(
            epci_gdf,
            ["nom", "geometry"],
            "epci_gdf",
            "pass plan.epci (cnfs_geo.territory.epci_from_communes)",
        )
        e = epci_gdf.set_axis(epci_gdf.index.astype(str))
        missing = agg.index.difference(e.index)
        if len(missing):
            raise ValidationError(
                "epci_gdf",
                [
                    f"{len(missing)} EPCI of the communes absent, "
                    f"e.g. {list(missing[:10])}: pass "
                    "territory.epci_from_communes(communes, ...)"
                ],
            )
        agg["nom"] = e["nom"].reindex(agg.index)
        agg["straddles"] = (
            e["straddles"].reindex(agg.index).astype(object) if "straddles" in e.columns else None
        )
        geom = e.geometry.reindex(agg.index)
        if e.crs is not None and communes.crs is not None and e.crs != communes.crs:
            geom = geom.to_crs(communes.crs)
    else:
        names = (f["epci_nom"] if "epci_nom" in f.columns else f["epci"]).groupby(f["epci"]).first()
        agg["nom"] = names.reindex(agg.index)
        agg["straddles"] = None
        geom = (
            f.geometry.groupby(f["epci"])
            .apply(lambda s: shapely.union_all(s.to_numpy()))
            .reindex(agg.index)
        )
    out = gpd.GeoDataFrame(
        agg[EPCI_COLUMNS[:-1]],
        geometry=gpd.GeoSeries(geom.to_numpy(), index=agg.index, crs=communes.crs),
        crs=communes.crs,
    )
    out.index.name = "epci"
    out.attrs["communes_without_epci"] = list(idx[no_epci.to_numpy()])
    return out


def epci_without_project(
    communes: gpd.GeoDataFrame,
    places: pd.DataFrame,
    epci_gdf: gpd.GeoDataFrame | None = None,
    *,
    minutes_col: str = "minutes_before",
) -> gpd.GeoDataFrame:
    """EPCI with no lieu de médiation and no CNFS in their communes of the département.

    Same parameters and columns as :func:`epci_offer`, keeping the rows with
    ``has_project == False``, sorted by ``need`` (descending), then SIREN. Empty
    (same columns) when every EPCI has a project.
    """
    table = epci_offer(communes, places, epci_gdf, minutes_col=minutes_col)
    out = table[~table["has_project"].to_numpy()]
    out = (
        out.assign(_e=out.index)
        .sort_values(["need", "_e"], ascending=[False, True], kind="stable")
        .drop(columns="_e")
    )
    out.attrs.update(table.attrs)
    log.info(
        "EPCI without digital project: %d of %d%s",
        len(out),
        len(table),
        (": " + ", ".join(out["nom"].astype(str))) if len(out) else "",
    )
    return out
