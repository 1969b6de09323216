"""Coverage of demand by the existing offer: nearest time, covered at thresholds.

Only places whose ``service_level`` is ``accompaniment`` count (a person helps);
``access``-only places are shown on maps but do not cover anyone.

Accessibility ratios (two-step floating catchment area, 2SFCA, and its enhanced
variant E2SFCA with stepped or Gaussian distance weights) are computed by
:func:`two_step_fca` and :func:`site_supply_ratios`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import shapely
from scipy import sparse

from ._errors import MissingColumnError, ValidationError
from ._validate import nonnegative_series, require_od
from .access import nearest_crowfly
from .settings import Settings

logger = logging.getLogger(__name__)


def covered_flags(minutes: pd.Series, threshold: float) -> pd.Series:
    """True where the nearest accompaniment place is within ``threshold`` minutes."""
    return minutes.le(threshold)


def coverage_table(
    demand: pd.DataFrame, minutes: pd.Series, thresholds: tuple[float, ...] | list[float]
) -> pd.DataFrame:
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
        raise MissingColumnError("demand", [f"missing column {c!r}" for c in missing])
    if not demand.index.equals(minutes.index):
        minutes = minutes.reindex(demand.index)
    rows = []
    pop, need = demand["population"].astype(float), demand["need"].astype(float)
    for t in thresholds:
        cov = covered_flags(minutes, t).to_numpy()
        rows.append(
            {
                "threshold_min": float(t),
                "units": len(demand),
                "units_covered": int(cov.sum()),
                "population": float(pop.sum()),
                "population_covered": float(pop[cov].sum()),
                "pct_population_covered": 100.0
                * float(pop[cov].sum())
                / max(float(pop.sum()), 1e-12),
                "need": float(need.sum()),
                "need_covered": float(need[cov].sum()),
                "pct_need_covered": 100.0 * float(need[cov].sum()) / max(float(need.sum()), 1e-12),
            }
        )
    return pd.DataFrame(rows)


def nearest_from_od(od: pd.DataFrame, origin_ids: pd.Index) -> pd.DataFrame:
    """Nearest destination per origin from a long OD table (inf where none within the table).

    Ties are broken by destination id (deterministic).
    """
    if len(od):
        best = (
            od.sort_values(["origin_id", "minutes", "destination_id"], kind="stable")
            .drop_duplicates("origin_id")
            .set_index("origin_id")
        )
    else:
        best = pd.DataFrame(columns=["destination_id", "minutes"])
    out = pd.DataFrame(index=origin_ids)
    out["nearest_id"] = best["destination_id"].reindex(origin_ids)
    out["minutes"] = best["minutes"].reindex(origin_ids).astype(float).fillna(np.inf)
    return out


# --------------------------------------------------------------------------------------
# Two-step floating catchment area (2SFCA) and enhanced 2SFCA (E2SFCA)
# --------------------------------------------------------------------------------------

#: Distance-weight schemes accepted by :func:`two_step_fca`.
FCA_WEIGHTS: tuple[str, ...] = ("none", "stepped", "gaussian")

#: Luo & Qi (2009) E2SFCA zone weights. Luo & Qi used three 10-minute zones (0–10,
#: 10–20, 20–30 min) weighted 1.00, 0.68, 0.22: a Gaussian ``exp(-k² · 0.386)``
#: sampled at the start of zone ``k`` = 0, 1, 2 (PySAL ``access`` uses the same three
#: values as its E2SFCA default). The fourth value, 0.03 = ``exp(-9 · 0.386)``, extends
#: the same curve to a fourth zone, giving the four-zone scheme used by default here.
LUO_QI_WEIGHTS: tuple[float, ...] = (1.0, 0.68, 0.22, 0.03)


def luo_qi_steps(catchment: float) -> list[tuple[float, float]]:
    """Luo & Qi stepped weights over four equal travel-time zones of the catchment.

    Parameters
    ----------
    catchment : float
        Catchment in minutes (> 0).

    Returns
    -------
    list of (float, float)
        ``(upper minutes, weight)`` pairs, upper bounds inclusive, weights
        :data:`LUO_QI_WEIGHTS`.

    Examples
    --------
    >>> luo_qi_steps(20)
    [(5.0, 1.0), (10.0, 0.68), (15.0, 0.22), (20.0, 0.03)]
    """
    n = len(LUO_QI_WEIGHTS)
    return [(float(catchment) * (k + 1) / n, w) for k, w in enumerate(LUO_QI_WEIGHTS)]


def _check_fca_options(
    *,
    catchment: float,
    weights: str,
    steps: Sequence[tuple[float, float]] | None,
    sigma: float | None,
    per: float,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Validate the 2SFCA options; return (uppers, step weights) for stepped weights."""
    problems: list[str] = []

    def _finite_positive(name: str, value: object) -> bool:
        try:
            v = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            problems.append(f"{name}={value!r} is not a number: give a positive number")
            return False
        if not math.isfinite(v) or v <= 0:
            problems.append(f"{name}={value!r} must be a finite number > 0")
            return False
        return True

    _finite_positive("catchment", catchment)
    _finite_positive("per", per)
    if weights not in FCA_WEIGHTS:
        problems.append(f"weights={weights!r} is unknown: use one of {', '.join(FCA_WEIGHTS)}")
    if steps is not None and weights != "stepped":
        problems.append(
            f"steps is given but weights={weights!r}: pass weights='stepped' or drop steps"
        )
    if sigma is not None:
        if weights != "gaussian":
            problems.append(
                f"sigma is given but weights={weights!r}: pass weights='gaussian' or drop sigma"
            )
        else:
            _finite_positive("sigma", sigma)
    table = None
    if weights == "stepped" and not problems:
        raw = luo_qi_steps(float(catchment)) if steps is None else steps
        try:
            arr = np.asarray([(float(u), float(w)) for u, w in raw], dtype=float)
        except (TypeError, ValueError):
            problems.append(
                f"steps={steps!r} must be a list of (upper minutes, weight) "
                "pairs, e.g. [(5, 1.0), (10, 0.68), (15, 0.22), (20, 0.03)]"
            )
        else:
            if arr.size == 0:
                problems.append("steps is empty: give at least one (upper minutes, weight) pair")
            elif not np.isfinite(arr).all():
                problems.append(f"steps={steps!r} holds non-finite values")
            else:
                if (arr[:, 0] <= 0).any() or (np.diff(arr[:, 0]) <= 0).any():
                    problems.append(
                        f"steps upper bounds {arr[:, 0].tolist()} must be > 0 and "
                        "strictly increasing"
                    )
                if (arr[:, 1] < 0).any():
                    problems.append(f"steps weights {arr[:, 1].tolist()} must be >= 0")
                if not problems:
                    table = (arr[:, 0], arr[:, 1])
    if problems:
        raise ValidationError("two_step_fca options", problems)
    return table


def fca_weights(
    minutes: np.ndarray | pd.Series,
    *,
    catchment: float,
    weights: str = "none",
    steps: Sequence[tuple[float, float]] | None = None,
    sigma: float | None = None,
) -> np.ndarray:
    """Distance-decay weight of each travel time for (E)2SFCA.

    Parameters
    ----------
    minutes : array-like of float
        Travel times (minutes, >= 0).
    catchment : float
        Catchment in minutes: every time above it weighs 0.
    weights : {"none", "stepped", "gaussian"}
        - ``"none"``: classic 2SFCA, ``w(t) = 1`` for ``t <= catchment``.
        - ``"stepped"``: ``w(t) = weight`` of the first step whose upper bound is
          ``>= t`` (bounds inclusive, as PySAL ``access.weights.step_fn``), 0 beyond
          the last step. ``steps=None`` means :func:`luo_qi_steps` (four equal zones
          weighted 1.00, 0.68, 0.22, 0.03).
        - ``"gaussian"``: ``w(t) = exp(-t² / (2 σ²))`` for ``t <= catchment`` (the
          kernel of PySAL ``access.weights.gaussian(sigma)``, not normalised, so
          ``w(0) = 1``); ``σ = sigma``, default ``catchment / 2`` (so the weight at
          the catchment edge is ``exp(-2) ≈ 0.135``).
    steps : list of (float, float), optional
        ``(upper minutes, weight)`` pairs for ``"stepped"``, upper bounds strictly
        increasing, weights >= 0.
    sigma : float, optional
        Gaussian width in minutes for ``"gaussian"``.

    Returns
    -------
    ndarray of float
        One weight per travel time, in the input order.

    Examples
    --------
    >>> fca_weights([0.0, 4.0, 6.0, 21.0], catchment=20, weights="stepped").tolist()
    [1.0, 1.0, 0.68, 0.0]
    """
    table = _check_fca_options(
        catchment=catchment, weights=weights, steps=steps, sigma=sigma, per=1.0
    )
    t = np.asarray(minutes, dtype=float)
    inside = t <= float(catchment)
    if weights == "none":
        w = np.ones_like(t)
    elif weights == "stepped":
        uppers, values = table  # type: ignore[misc]
        k = np.searchsorted(uppers, t, side="left")  # first upper bound >= t
        w = np.where(k < len(uppers), values[np.minimum(k, len(uppers) - 1)], 0.0)
    else:
        s = float(catchment) / 2.0 if sigma is None else float(sigma)
        w = np.exp(-t * t / (2.0 * s * s))
    return np.where(inside, w, 0.0)


def _check_fca_inputs(
    od: pd.DataFrame, demand: pd.Series, supply: pd.Series
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Validate the OD table, demand and supply; return copies with str ids, sorted."""

    def _series(x: object, name: str, what: str) -> pd.Series:
        return nonnegative_series(x, name, what)

    require_od(od)
    dem = _series(demand, "demand", "demand (population or need-weighted population)")
    sup = _series(supply, "supply", "supply (advisors per site)")
    problems: list[str] = []
    o = od[["origin_id", "destination_id", "minutes"]].copy()
    o["origin_id"] = o["origin_id"].astype(str)
    o["destination_id"] = o["destination_id"].astype(str)
    o["minutes"] = pd.to_numeric(o["minutes"], errors="coerce").astype(float)
    m = o["minutes"].to_numpy()
    bad = ~np.isfinite(m) | (m < 0)
    if bad.any():
        problems.append(
            f"{int(bad.sum())} row(s) with missing, infinite or negative minutes, "
            f"e.g. rows {list(o.index[bad][:10])}: fix or drop them"
        )
    dup = o.duplicated(["origin_id", "destination_id"])
    if dup.any():
        problems.append(
            f"{int(dup.sum())} duplicated (origin_id, destination_id) pair(s), "
            f"e.g. rows {list(o.index[dup.to_numpy()][:10])}: keep one travel "
            "time per pair (e.g. the shortest)"
        )
    unknown_o = pd.Index(o["origin_id"].unique()).difference(dem.index)
    if len(unknown_o):
        problems.append(
            f"{len(unknown_o)} origin_id(s) absent from demand, e.g. "
            f"{list(unknown_o[:10])}: give demand for every origin (0 allowed) "
            "or drop those rows"
        )
    unknown_d = pd.Index(o["destination_id"].unique()).difference(sup.index)
    if len(unknown_d):
        problems.append(
            f"{len(unknown_d)} destination_id(s) absent from supply, e.g. "
            f"{list(unknown_d[:10])}: give supply for every site (0 allowed) "
            "or drop those rows"
        )
    if problems:
        raise ValidationError("od", problems)
    return o, dem, sup


def _fca_core(
    od: pd.DataFrame,
    demand: pd.Series,
    supply: pd.Series,
    *,
    catchment: float,
    weights: str,
    steps: Sequence[tuple[float, float]] | None,
    sigma: float | None,
    per: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both 2SFCA steps with one sparse weight matrix; returns (units, sites) frames."""
    _check_fca_options(catchment=catchment, weights=weights, steps=steps, sigma=sigma, per=per)
    o, dem, sup = _check_fca_inputs(od, demand, supply)
    o = o[o["minutes"].to_numpy() <= float(catchment)]
    w = fca_weights(
        o["minutes"].to_numpy(), catchment=catchment, weights=weights, steps=steps, sigma=sigma
    )
    rows = dem.index.get_indexer(o["origin_id"])
    cols = sup.index.get_indexer(o["destination_id"])
    order = np.lexsort((cols, rows))  # fixed summation order whatever the input row order
    rows, cols, w = rows[order], cols[order], w[order]
    keep = w > 0
    wmat = sparse.csr_matrix((w[keep], (rows[keep], cols[keep])), shape=(len(dem), len(sup)))
    pres = sparse.csr_matrix(
        (np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(len(dem), len(sup))
    )
    d = dem.to_numpy(dtype=float)
    s = sup.to_numpy(dtype=float)
    # step 1: weighted demand in each site's catchment, supply-to-demand ratio R_j
    d_weighted = np.asarray(wmat.T @ d).ravel()
    served = d_weighted > 0
    ratio = np.full(len(sup), np.nan)
    ratio[served] = s[served] / d_weighted[served]
    unserved = ~served & (s > 0)
    if unserved.any():
        ids = list(sup.index[unserved][:10])
        logger.warning(
            "2SFCA: %d site(s) with supply but no demand within %g min (R_j "
            "undefined, reported NaN, counted 0 in accessibility; %g advisor(s) "
            "not allocated), e.g. %s",
            int(unserved.sum()),
            float(catchment),
            float(s[unserved].sum()),
            ids,
        )
    # step 2: accessibility of each demand unit = weighted sum of the R_j it reaches
    access = np.asarray(wmat @ np.nan_to_num(ratio, nan=0.0)).ravel()
    unit = f"advisors per {per:g} {dem.name or 'demand'}"
    units = pd.DataFrame(
        {
            "demand": d,
            "access": access * float(per),
            "n_sites": np.asarray(pres.sum(axis=1)).ravel().astype(int),
        },
        index=dem.index.rename(demand.index.name or "origin_id"),
    )
    sites = pd.DataFrame(
        {
            "supply": s,
            "demand_weighted": d_weighted,
            "n_units": np.asarray(pres.sum(axis=0)).ravel().astype(int),
            "ratio": ratio * float(per),
        },
        index=sup.index.rename(supply.index.name or "destination_id"),
    )
    attrs = {
        "method": "2SFCA" if weights == "none" else "E2SFCA",
        "weights": weights,
        "catchment_minutes": float(catchment),
        "per": float(per),
        "unit": unit,
        "travel_model": od.attrs.get("travel_model"),
    }
    if weights == "stepped":
        attrs["steps"] = [tuple(x) for x in (luo_qi_steps(catchment) if steps is None else steps)]
    if weights == "gaussian":
        attrs["sigma"] = float(catchment) / 2.0 if sigma is None else float(sigma)
    units.attrs.update(attrs)
    sites.attrs.update(attrs)
    logger.info(
        "%s (%s, %g min): %d demand units, %d sites, %d pairs; %d units reach no "
        "site; %d sites without demand",
        attrs["method"],
        weights,
        float(catchment),
        len(dem),
        len(sup),
        int(keep.sum()),
        int((units["n_sites"] == 0).sum()),
        int((~served).sum()),
    )
    return units, sites


def site_supply_ratios(
    od: pd.DataFrame,
    demand: pd.Series,
    supply: pd.Series,
    *,
    catchment: float,
    weights: str = "none",
    steps: Sequence[tuple[float, float]] | None = None,
    sigma: float | None = None,
    per: float = 10_000,
) -> pd.DataFrame:
    """Step 1 of (E)2SFCA: supply-to-demand ratio ``R_j`` of every site.

    ``R_j = S_j / Σ_k D_k · w(t_kj)`` over demand units ``k`` with
    ``t_kj <= catchment``, reported per ``per`` demand units.

    Parameters
    ----------
    od : DataFrame
        Long OD table with columns ``origin_id`` (demand unit), ``destination_id``
        (site) and ``minutes``, as from ``cnfs_geo.access.od_crowfly(...,
        max_minutes=catchment)``. Pairs above ``catchment`` are ignored; a pair
        absent from the table is out of reach. One row per pair.
    demand : Series
        Demand per unit (population, or need-weighted population), >= 0, indexed by
        origin id (str). Every ``origin_id`` of ``od`` must be in it.
    supply : Series
        Advisors per site, >= 0, indexed by site id (str). Every
        ``destination_id`` of ``od`` must be in it; sites absent from ``od`` are
        kept (out of everyone's reach).
    catchment : float
        Catchment in minutes (e.g. 20).
    weights, steps, sigma
        Distance-decay scheme, see :func:`fca_weights`.
    per : float
        Ratios are given per this many demand units (default 10 000).

    Returns
    -------
    DataFrame
        Index = site id (str, sorted). Columns ``supply`` (advisors),
        ``demand_weighted`` (``Σ_k D_k w(t_kj)``), ``n_units`` (demand units with a
        positive weight), ``ratio`` (``R_j × per`` = advisors per ``per``
        inhabitants — or need-weighted inhabitants when ``demand`` is need; NaN
        where ``demand_weighted`` is 0: the ratio is undefined, a warning is
        logged). ``attrs`` hold ``method``, ``weights``, ``catchment_minutes``,
        ``per``, ``unit``, ``steps``/``sigma``.

    Raises
    ------
    ValidationError
        Missing OD columns, bad minutes, duplicated pairs, ids of ``od`` absent
        from ``demand``/``supply``, negative or missing demand/supply, unknown
        ``weights``, bad ``steps``/``sigma``/``catchment``/``per``.

    Examples
    --------
    >>> import pandas as pd
    >>> od = pd.DataFrame({"origin_id": ["a", "b"], "destination_id": ["P", "P"],
    ...                    "minutes": [5.0, 12.0]})
    >>> site_supply_ratios(od, pd.Series({"a": 1000, "b": 3000}), pd.Series({"P": 2}),
    ...                    catchment=20)["ratio"].tolist()
    [5.0]
    """
    return _fca_core(
        od, demand, supply, catchment=catchment, weights=weights, steps=steps, sigma=sigma, per=per
    )[1]


def two_step_fca(
    od: pd.DataFrame,
    demand: pd.Series,
    supply: pd.Series,
    *,
    catchment: float,
    weights: str = "none",
    steps: Sequence[tuple[float, float]] | None = None,
    sigma: float | None = None,
    per: float = 10_000,
) -> pd.DataFrame:
    """Two-step floating catchment area accessibility (2SFCA / E2SFCA) per demand unit.

    Step 1 (:func:`site_supply_ratios`): ``R_j = S_j / Σ_k D_k w(t_kj)``.
    Step 2: ``A_i = per × Σ_j w(t_ij) R_j`` over sites within the catchment.
    ``weights="none"`` is the classic 2SFCA of Luo & Wang (2003); ``"stepped"``
    the E2SFCA of Luo & Qi (2009); ``"gaussian"`` a Gaussian kernel (same weights in
    both steps, as PySAL ``access.Access.two_stage_fca(weight_fn=...)``).

    **Unit**: ``access`` is in advisors per ``per`` (default 10 000) inhabitants
    when ``demand`` is population, per ``per`` need-weighted inhabitants when it is
    need. PySAL ``access`` returns the same quantity per single demand unit
    (``access / per``) when not normalised.

    **Conservation**: when every site with supply has positive weighted demand in
    its catchment, ``Σ_i D_i · access_i / per = Σ_j S_j`` (every advisor is shared
    out exactly once), for any weights since both steps use the same ``w``. Sites
    whose catchment holds no demand have an undefined ratio (NaN in
    :func:`site_supply_ratios`, a warning logged) and add nothing here, so their
    advisors are missing from the sum.

    Parameters
    ----------
    od, demand, supply, catchment, weights, steps, sigma, per
        See :func:`site_supply_ratios`.

    Returns
    -------
    DataFrame
        Index = demand id (str, sorted; named like ``demand``'s index, else
        ``origin_id``). Columns ``demand``, ``access`` (advisors per ``per`` demand
        units; 0 where no site is within the catchment), ``n_sites`` (sites within
        the catchment with a positive weight). ``attrs`` as
        :func:`site_supply_ratios`.

    Raises
    ------
    ValidationError
        As :func:`site_supply_ratios`.

    Examples
    --------
    Hand-made example (two sites P, Q; units a, b, c):

    >>> import pandas as pd
    >>> od = pd.DataFrame({"origin_id": ["a", "b", "b", "c"],
    ...                    "destination_id": ["P", "P", "Q", "Q"],
    ...                    "minutes": [5.0, 12.0, 8.0, 18.0]})
    >>> demand = pd.Series({"a": 1000, "b": 3000, "c": 6000}, name="population")
    >>> supply = pd.Series({"P": 2, "Q": 1})
    >>> two_step_fca(od, demand, supply, catchment=20)["access"].round(4).tolist()
    [5.0, 6.1111, 1.1111]
    """
    return _fca_core(
        od, demand, supply, catchment=catchment, weights=weights, steps=steps, sigma=sigma, per=per
    )[0]


#: Columns of :func:`point_artefacts`.
ARTEFACT_COLUMNS = [
    "post_id",
    "post_commune",
    "unit_id",
    "unit_nom",
    "insee",
    "unit_population",
    "unit_minutes_before",
    "chef_lieu_minutes",
    "chef_lieu_place",
]


def point_artefacts(
    units: pd.DataFrame,
    communes: pd.DataFrame,
    places: pd.DataFrame,
    posts: pd.DataFrame,
    *,
    threshold: float,
    settings: Settings | None = None,
    tolerance_m: float = 500.0,
) -> pd.DataFrame:
    """Proposed posts whose main covered population is a representative-point artefact.

    The named check of issue 9: a new post is an artefact when the demand unit it
    covers most (largest population among the units it newly brings within the
    threshold) is the unit holding its commune's chef-lieu, travels from an arbitrary
    point of its polygon (``point_basis`` = representative point), and its commune
    already has an accompaniment place within the threshold of that chef-lieu — the
    post then only "covers" a point that nobody lives at more than at the chef-lieu.

    Parameters
    ----------
    units : DataFrame
        Demand units of a plan (``plan.units``): index ``unit_id``; ``insee``, ``nom``,
        ``population``, ``point_basis``, ``minutes_before``, ``covered_before``,
        ``covered_after``, ``nearest_post``, ``geometry``.
    communes : DataFrame
        Index ``insee``; ``nom``, ``chef_lieu_x``, ``chef_lieu_y`` (working CRS).
    places : DataFrame
        Existing offer: ``place_id``, ``name``, ``service_level``, ``geometry`` (points).
    posts : DataFrame
        New posts: ``post_id``, ``commune``, ``kind``.
    threshold : float, keyword-only
        Coverage threshold (minutes).
    settings : Settings, optional, keyword-only
        Crow-fly travel model from the chef-lieu (detour, speed).
    tolerance_m : float, keyword-only
        A unit holds the chef-lieu when it lies within this distance of it (simplified
        polygons).

    Returns
    -------
    DataFrame
        One row per artefact post, columns :data:`ARTEFACT_COLUMNS`; empty when none.
    """
    need_cols = ["insee", "population", "point_basis", "covered_before", "covered_after"]
    missing = [c for c in need_cols + ["nearest_post"] if c not in units.columns]
    if missing:
        raise MissingColumnError("units", [f"missing column {c!r}" for c in missing])
    fixed = posts[posts["kind"].astype(str) == "fixed"] if "kind" in posts.columns else posts
    newly = units[units["covered_after"].astype(bool) & ~units["covered_before"].astype(bool)]
    newly = newly[newly["nearest_post"].isin(set(fixed["post_id"]))]
    if newly.empty:
        return pd.DataFrame(columns=ARTEFACT_COLUMNS)
    main = newly.sort_values(
        ["nearest_post", "population"], ascending=[True, False]
    ).drop_duplicates("nearest_post")
    main = main[main["point_basis"].astype(str) == "point représentatif"]
    if main.empty:
        return pd.DataFrame(columns=ARTEFACT_COLUMNS)
    cx = main["insee"].map(communes["chef_lieu_x"]).to_numpy(dtype=float)
    cy = main["insee"].map(communes["chef_lieu_y"]).to_numpy(dtype=float)
    holds = shapely.distance(main.geometry.to_numpy(), shapely.points(cx, cy)) <= tolerance_m
    main, cx, cy = main[holds], cx[holds], cy[holds]
    acc = places[places["service_level"] == "accompaniment"]
    if main.empty or acc.empty:
        return pd.DataFrame(columns=ARTEFACT_COLUMNS)
    dest = pd.DataFrame(
        {"x": acc.geometry.x.to_numpy(), "y": acc.geometry.y.to_numpy()},
        index=pd.Index(acc["place_id"].astype(str), name="place_id"),
    )
    origins = pd.DataFrame({"x": cx, "y": cy}, index=main.index)
    near = nearest_crowfly(origins, dest, settings=settings)
    names = acc.set_index(acc["place_id"].astype(str))["name"]
    post_commune = fixed.set_index("post_id")["commune"]
    rows = []
    for uid, r in main.iterrows():
        minutes = float(near.at[uid, "minutes"])
        if minutes <= threshold:
            rows.append(
                {
                    "post_id": r["nearest_post"],
                    "post_commune": post_commune.get(r["nearest_post"]),
                    "unit_id": uid,
                    "unit_nom": r.get("nom"),
                    "insee": r["insee"],
                    "unit_population": float(r["population"]),
                    "unit_minutes_before": float(r.get("minutes_before", np.nan)),
                    "chef_lieu_minutes": minutes,
                    "chef_lieu_place": names.get(near.at[uid, "nearest_id"]),
                }
            )
    return pd.DataFrame(rows, columns=ARTEFACT_COLUMNS)
