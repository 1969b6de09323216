"""Need per commune: population, digital fragility (IFN 2023 scores) and fibre rollout.

Transforms of the frames read by :mod:`cnfs_geo.sources.ifn` and
:mod:`cnfs_geo.sources.arcep` (:func:`need_from_frames`); :func:`need_from_sources` reads
them from a data directory. Method and choices: ``docs/methods_need.md``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from . import catalog
from ._errors import ValidationError
from ._validate import communes_table
from .sources.arcep import FIBRE_COLUMNS, read_fibre
from .sources.ifn import IFN_COLUMNS, read_ifn
from .territory import code_table

log = logging.getLogger(__name__)

# The five IFN dimensions of the file (0–10 scores, 10 = most fragile).
DIMENSIONS: tuple[str, ...] = (
    "ifn_no_thd",
    "ifn_no_4g",
    "ifn_poverty",
    "ifn_older_65",
    "ifn_low_diploma",
)

# The three fractures of the programme and the IFN dimensions that stand for them.
# The IFN file has no equipment indicator: poverty is the proxy of the « fracture
# matérielle » (cost of devices and subscriptions); it also counts in « usages ».
# Sub-indices are plain means of their dimensions (descriptive, independent of the
# weights of the need index). See docs/methods_need.md.
FRACTURES: dict[str, tuple[str, ...]] = {
    "fracture_materiel": ("ifn_poverty",),
    "fracture_connectivite": ("ifn_no_thd", "ifn_no_4g"),
    "fracture_usages": ("ifn_older_65", "ifn_low_diploma", "ifn_poverty"),
}

# The official ``total`` is the mean of 14 indicator scores of fragilite-numerique.fr,
# five of which are in the file: for 33 105 communes whose five scores are whole
# numbers, 14 × total is a whole number in 99.95 % of cases (docs/methods_need.md).
# One point on one indicator moves the total by 1/14.
IFN_TOTAL_INDICATORS = 14

# French labels of the need columns (maps, report).
LABELS = {
    "ifn_no_thd": "Absence de très haut débit (score 0–10)",
    "ifn_no_4g": "Absence de 4G (score 0–10)",
    "ifn_poverty": "Pauvreté (score 0–10)",
    "ifn_older_65": "Part des 65 ans et plus (score 0–10)",
    "ifn_low_diploma": "Non ou peu diplômés (score 0–10)",
    "ifn_total": "Indice de fragilité numérique (0–10)",
    "pct_fibre": "Locaux éligibles à la fibre (%)",
    "fracture_materiel": "Fracture matérielle (approchée par la pauvreté, 0–10)",
    "fracture_connectivite": "Fracture de connectivité (THD, 4G ; 0–10)",
    "fracture_usages": "Fracture des usages (65 ans et +, diplôme, pauvreté ; 0–10)",
    "need_index_weighted": "Indice de besoin pondéré (5 dimensions, 0–10)",
    "need_index": "Indice de besoin (0–10)",
    "need": "Population pondérée par le besoin",
}


@dataclass
class NeedReport:
    """What the need stage read, mapped and could not match.

    Attributes
    ----------
    unmatched : DataFrame
        Rows of the département that map to no current commune: ``source``, ``code``,
        ``name``, ``reason``.
    remapped : DataFrame
        Old codes mapped to a different current code: ``source``, ``code``, ``insee``.
    imputed : list of str
        Communes whose need index was imputed (no IFN row).
    missing_fibre : list of str
        Communes without fibre row (``pct_fibre`` NaN).
    index : str
        What ``need_index`` is: ``"ifn_total"`` (official composite, default) or
        ``"weighted"`` (weighted mean of the five dimensions).
    weights : dict
        Normalised weights of ``need_index_weighted`` (sum 1).
    """

    unmatched: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["source", "code", "name", "reason"])
    )
    remapped: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["source", "code", "insee"])
    )
    imputed: list[str] = field(default_factory=list)
    missing_fibre: list[str] = field(default_factory=list)
    index: str = "ifn_total"
    weights: dict[str, float] = field(default_factory=dict)


# The last frame mapped per code column, and the premises of the last ARCEP frame (all of
# France maps the same national IFN and ARCEP frames for every département: stripped and
# mapped once, not once per département).
_MAPPED: dict[str, tuple[Any, Any, Any]] = {}


def _mapped(df: pd.DataFrame, code_col: str, codes: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``df`` with a code, stripped, with ``insee``: the current commune of every
    code the COG knows (old, délégué, arrondissement municipal); cached for the last
    ``df`` and ``codes`` objects (read-only)."""
    hit = _MAPPED.get(code_col)
    if hit is not None and hit[0] is df and hit[1] is codes:
        return hit[2]
    out = df[df[code_col].str.strip() != ""].copy()
    out[code_col] = out[code_col].str.strip()
    out["insee"] = out[code_col].map(codes["insee"])
    _MAPPED[code_col] = (df, codes, out)
    return out


def _map_codes(
    df: pd.DataFrame,
    code_col: str,
    name_col: str,
    source: str,
    communes: pd.DataFrame,
    codes: pd.DataFrame,
    report: NeedReport,
) -> pd.DataFrame:
    """Add ``insee`` (COG 2026) to rows of the département; record unmatched/remapped."""
    dep = str(communes["departement"].iloc[0])
    df = _mapped(df, code_col, codes)
    in_dep = df[code_col].str.startswith(dep) | df["insee"].isin(communes.index)
    df = df[in_dep]
    bad = df[~df["insee"].isin(communes.index)]
    if len(bad):
        rows = pd.DataFrame(
            {
                "source": source,
                "code": bad[code_col],
                "name": bad[name_col],
                "reason": "code maps to no current commune of the département",
            }
        )
        report.unmatched = pd.concat([report.unmatched, rows], ignore_index=True)
        log.warning(
            "%s: %d row(s) of département %s map to no current commune: %s",
            source,
            len(bad),
            dep,
            bad[code_col].tolist(),
        )
    moved = df[df["insee"].notna() & (df["insee"] != df[code_col])]
    if len(moved):
        report.remapped = pd.concat(
            [
                report.remapped,
                pd.DataFrame({"source": source, "code": moved[code_col], "insee": moved["insee"]}),
            ],
            ignore_index=True,
        )
        log.info(
            "%s: old codes mapped to COG 2026: %s",
            source,
            dict(zip(moved[code_col], moved["insee"])),
        )
    return df[df["insee"].isin(communes.index)]


def _premises(fibre: pd.DataFrame | None) -> pd.Series:
    """Premises per commune code of the ARCEP frame (weights for averaging old codes)."""
    if fibre is None:
        return pd.Series(dtype=float)
    hit = _MAPPED.get("_premises")
    if hit is not None and hit[0] is fibre:  # the national frame: once (see _mapped)
        return hit[2]
    out = pd.to_numeric(fibre.set_index("code_insee")["nb_locaux"], errors="coerce")
    _MAPPED["_premises"] = (fibre, None, out)
    return out


def fibre_from_frame(
    communes: pd.DataFrame,
    fibre: pd.DataFrame,
    codes: pd.DataFrame,
    report: NeedReport | None = None,
) -> pd.DataFrame:
    """FTTH eligibility per current commune.

    Parameters
    ----------
    communes : DataFrame
        Index ``insee`` (COG 2026), ``departement`` (one value).
    fibre : DataFrame
        :func:`cnfs_geo.sources.arcep.read_fibre` (strings: ``code_insee``, ``commune``,
        ``nb_locaux``, ``nb_locaux_fibre``).
    codes : DataFrame
        Code table (:func:`cnfs_geo.territory.code_table`: index ``code``, ``insee``).
    report : NeedReport, optional
        Filled with unmatched and remapped rows, communes without fibre row.

    Returns
    -------
    DataFrame
        Index ``insee`` (communes' index); ``nb_locaux``, ``nb_locaux_fibre`` (sums over
        old codes), ``pct_fibre`` = 100 × nb_locaux_fibre / nb_locaux (NaN where no row).
    """
    report = report if report is not None else NeedReport()
    source = fibre.attrs.get("source", "fibre")
    df = _map_codes(fibre, "code_insee", "commune", "fibre", communes, codes, report)
    for c in FIBRE_COLUMNS:
        df[c] = pd.to_numeric(df[c].replace("", "0"), errors="coerce")
    bad = df[df[FIBRE_COLUMNS].isna().any(axis=1)]
    if len(bad):
        raise ValidationError(
            source,
            [
                f"row code_insee={r.code_insee}: nb_locaux or nb_locaux_fibre is not a number"
                for r in bad.itertuples()
            ],
        )
    out = df.groupby("insee")[FIBRE_COLUMNS].sum().reindex(communes.index)
    out["pct_fibre"] = 100.0 * out["nb_locaux_fibre"] / out["nb_locaux"].where(out["nb_locaux"] > 0)
    report.missing_fibre = out.index[out["nb_locaux"].isna()].tolist()
    if report.missing_fibre:
        log.warning(
            "fibre: %d commune(s) without ARCEP row: %s",
            len(report.missing_fibre),
            report.missing_fibre,
        )
    return out


def ifn_from_frame(
    communes: pd.DataFrame,
    ifn: pd.DataFrame,
    codes: pd.DataFrame,
    *,
    fibre: pd.DataFrame | None = None,
    report: NeedReport | None = None,
) -> pd.DataFrame:
    """IFN 2023 scores (0–10) per current commune.

    Parameters
    ----------
    communes : DataFrame
        Index ``insee`` (COG 2026), ``departement`` (one value).
    ifn : DataFrame
        :func:`cnfs_geo.sources.ifn.read_ifn` (strings: ``code``, ``name`` and the six
        score columns of :data:`cnfs_geo.sources.ifn.IFN_COLUMNS`).
    codes : DataFrame
        Code table (:func:`cnfs_geo.territory.code_table`: index ``code``, ``insee``).
    fibre : DataFrame, optional, keyword-only
        ARCEP frame (``code_insee``, ``nb_locaux``): premises weighting the old codes of
        a commune; equal weights without it.
    report : NeedReport, optional, keyword-only
        Filled with unmatched, remapped and blank rows.

    Returns
    -------
    DataFrame
        Index ``insee``; columns ``ifn_no_thd``, ``ifn_no_4g``, ``ifn_poverty``,
        ``ifn_older_65``, ``ifn_low_diploma``, ``ifn_total`` (NaN where no row).
        Old communes merged since 2023 are averaged, weighted by their premises (ARCEP).
    """
    report = report if report is not None else NeedReport()
    source = ifn.attrs.get("source", "ifn")
    df = _map_codes(ifn, "code", "name", "ifn", communes, codes, report)
    blank = df[list(IFN_COLUMNS)].apply(lambda col: col.str.strip() == "").all(axis=1)
    if blank.any():
        # e.g. Marseille 13055: scored only by arrondissement; reported, not averaged
        report.unmatched = pd.concat(
            [
                report.unmatched,
                pd.DataFrame(
                    {
                        "source": "ifn",
                        "code": df.loc[blank, "code"],
                        "name": df.loc[blank, "name"],
                        "reason": (
                            "row without any score "
                            "(scores given elsewhere, e.g. per arrondissement)"
                        ),
                    }
                ),
            ],
            ignore_index=True,
        )
        log.info(
            "ifn: %d row(s) without any score ignored: %s",
            int(blank.sum()),
            df.loc[blank, "code"].tolist(),
        )
        df = df[~blank]
    scores = df[list(IFN_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    problems = []
    for col in IFN_COLUMNS:
        bad = df.loc[scores[col].isna() | ~scores[col].between(0, 10), "code"]
        problems += [f"row code={c}, column {col!r}: not a score in 0–10" for c in bad]
    if problems:
        raise ValidationError(source, problems + ["IFN columns are 0–10 scores; check the file"])
    scores = scores.rename(columns=IFN_COLUMNS)
    w = df["code"].map(_premises(fibre)).astype(float)
    # a commune with any old code lacking a premises count averages with equal weights
    w = w.where(~w.isna().groupby(df["insee"]).transform("any"), 1.0).to_numpy()
    weighted = scores.mul(w, axis=0)
    weighted["insee"], weighted["_w"] = df["insee"].to_numpy(), w
    g = weighted.groupby("insee").sum()
    out = g[list(IFN_COLUMNS.values())].div(g["_w"], axis=0)
    return out.reindex(communes.index)


def need_weights(weights: Mapping[str, float] | str | None = None) -> dict[str, float]:
    """Check and normalise the weights of the five IFN dimensions.

    Parameters
    ----------
    weights : mapping, "equal" or None
        ``None`` or ``"equal"``: equal weights. A mapping gives *relative* weights by
        dimension name (:data:`DIMENSIONS`, e.g. ``{"ifn_no_thd": 2}``); dimensions it
        does not name keep the default relative weight 1, so ``{"ifn_no_4g": 0}``
        drops 4G and keeps the four others equal.

    Returns
    -------
    dict
        The five dimensions (in :data:`DIMENSIONS` order) → weight, summing to 1.

    Raises
    ------
    ValidationError
        Unknown key, weight that is not a finite number ≥ 0, or all weights zero
        (every problem listed).

    Examples
    --------
    >>> from cnfs_geo import need
    >>> w = need.need_weights({"ifn_no_thd": 2})
    >>> round(w["ifn_no_thd"], 4), round(w["ifn_poverty"], 4)
    (0.3333, 0.1667)
    """
    if weights is None or (isinstance(weights, str) and weights == "equal"):
        return {d: 1.0 / len(DIMENSIONS) for d in DIMENSIONS}
    if not isinstance(weights, Mapping):
        raise ValidationError(
            "weights",
            [
                f'{weights!r} is not a mapping; give None, "equal" or a dict such as '
                f"{{'ifn_no_thd': 2, 'ifn_older_65': 1}} with keys among {list(DIMENSIONS)}"
            ],
        )
    problems = []
    raw = dict.fromkeys(DIMENSIONS, 1.0)
    for key, value in weights.items():
        if key not in DIMENSIONS:
            problems.append(f"unknown key {key!r}; use one of {list(DIMENSIONS)}")
            continue
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, (bool, np.bool_)
        )
        if not ok or not math.isfinite(float(value)) or float(value) < 0:
            problems.append(f"weight of {key!r} is {value!r}; give a finite number ≥ 0")
            continue
        raw[key] = float(value)
    if not problems and sum(raw.values()) == 0:
        problems.append("every weight is 0; give at least one positive weight")
    if problems:
        raise ValidationError("weights", problems)
    total = sum(raw.values())
    return {d: raw[d] / total for d in DIMENSIONS}


def fracture_indices(scores: pd.DataFrame) -> pd.DataFrame:
    """Sub-index of each fracture: plain mean of its IFN dimensions (0–10).

    Parameters
    ----------
    scores : DataFrame
        Holds the five columns of :data:`DIMENSIONS` (0–10 scores).

    Returns
    -------
    DataFrame
        Same index; columns ``fracture_materiel``, ``fracture_connectivite``,
        ``fracture_usages`` (NaN where a dimension is NaN).
    """
    return pd.DataFrame(
        {name: scores[list(dims)].mean(axis=1, skipna=False) for name, dims in FRACTURES.items()},
        index=scores.index,
    )


def weighted_need_index(
    scores: pd.DataFrame, weights: Mapping[str, float] | str | None = None
) -> pd.Series:
    """Weighted mean of the five IFN dimensions (0–10).

    Parameters
    ----------
    scores : DataFrame
        Holds the five columns of :data:`DIMENSIONS`.
    weights : mapping, "equal" or None
        See :func:`need_weights`.

    Returns
    -------
    Series
        Named ``need_index_weighted``; NaN where a dimension with a positive weight
        is NaN.
    """
    w = need_weights(weights)
    used = [d for d in DIMENSIONS if w[d] > 0]
    out = sum(scores[d] * w[d] for d in used)
    return pd.Series(out, index=scores.index, name="need_index_weighted").astype(float)


def _fill_median(values: pd.Series) -> tuple[pd.Series, float]:
    missing = values.isna()
    median = float(values.median()) if (~missing).any() else 5.0
    return values.fillna(median), median


def need_from_sources(
    communes: gpd.GeoDataFrame,
    data_dir: catalog.DataDir,
    *,
    weights: Mapping[str, float] | str | None = None,
) -> tuple[gpd.GeoDataFrame, NeedReport]:
    """Add need columns to ``communes``, reading the IFN and ARCEP files of ``data_dir``.

    :func:`need_from_frames` on :func:`cnfs_geo.sources.ifn.read_ifn`,
    :func:`cnfs_geo.sources.arcep.read_fibre` and the code table of the COG.

    Parameters
    ----------
    communes : GeoDataFrame
        From :func:`cnfs_geo.territory.communes_from_cog` (index ``insee``, ``population``).
    data_dir : DataDir
        From :func:`cnfs_geo.catalog.resolve_data_dir`.
    weights : mapping, "equal" or None, keyword-only
        ``None`` (default): ``need_index`` is the official IFN composite ``ifn_total``
        and ``need_index_weighted`` uses equal weights. ``"equal"`` or a mapping of
        relative weights (:func:`need_weights`): ``need_index`` is
        ``need_index_weighted`` computed with those weights.

    Returns
    -------
    (GeoDataFrame, NeedReport)
        ``communes`` (same index, CRS and geometry) with added columns ``nb_locaux``,
        ``nb_locaux_fibre``, ``pct_fibre``, the six ``ifn_*`` scores (0–10),
        ``fracture_materiel``, ``fracture_connectivite``, ``fracture_usages``
        (means of their dimensions, :data:`FRACTURES`), ``need_index_weighted``
        (weighted mean of the five dimensions), ``need_index`` (0–10: ``ifn_total``
        or ``need_index_weighted``, see ``weights``; imputed by the département
        median where missing), ``need_imputed`` (bool) and ``need`` (need-weighted
        population = population × need_index / 10). ``attrs["need_index"]`` is
        ``"ifn_total"`` or ``"weighted"`` and ``attrs["need_weights"]`` the
        normalised weights given (None by default).

    Examples
    --------
    >>> from cnfs_geo import catalog, territory, need
    >>> d = catalog.resolve_data_dir()
    >>> c, rep = need.need_from_sources(territory.communes_from_cog("49", d), d)
    >>> bool(c["need"].le(c["population"]).all()), rep.unmatched.empty
    (True, True)
    >>> c2, _ = need.need_from_sources(territory.communes_from_cog("49", d), d, weights="equal")
    >>> bool((c2["need_index"] == c2["need_index_weighted"]).all())
    True
    """
    need_weights(weights)  # validate before reading anything
    _check_population(communes)
    fibre, ifn = read_sources(data_dir)
    return need_from_frames(communes, ifn, fibre, code_table(data_dir), weights=weights)


def read_sources(data_dir: catalog.DataDir) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read and check the fibre (ARCEP) and IFN files of ``data_dir``: ``(fibre, ifn)``
    (:func:`cnfs_geo.sources.arcep.read_fibre`, :func:`cnfs_geo.sources.ifn.read_ifn`)."""
    return read_fibre(data_dir.file("fibre")), read_ifn(data_dir.file("ifn_communes"))


def _check_population(communes: gpd.GeoDataFrame) -> None:
    pop = pd.to_numeric(communes["population"], errors="coerce")
    if pop.isna().any() or (pop < 0).any():
        bad = communes.index[pop.isna() | (pop < 0)].tolist()
        raise ValidationError(
            "communes",
            [
                f"commune {c}: population is missing or negative; fix the COG populations"
                for c in bad
            ],
        )


def need_from_frames(
    communes: gpd.GeoDataFrame,
    ifn: pd.DataFrame,
    fibre: pd.DataFrame,
    codes: pd.DataFrame,
    *,
    weights: Mapping[str, float] | str | None = None,
) -> tuple[gpd.GeoDataFrame, NeedReport]:
    """Add need columns to ``communes`` from the IFN and ARCEP frames.

    Parameters
    ----------
    communes : GeoDataFrame
        From :func:`cnfs_geo.territory.communes_from_frames` (index ``insee``,
        ``departement``, ``population``).
    ifn : DataFrame
        :func:`cnfs_geo.sources.ifn.read_ifn` (see :func:`ifn_from_frame`).
    fibre : DataFrame
        :func:`cnfs_geo.sources.arcep.read_fibre` (see :func:`fibre_from_frame`); also
        the premises weighting the old codes of the IFN.
    codes : DataFrame
        Code table (:func:`cnfs_geo.territory.code_table`: index ``code``, ``insee``).
    weights : mapping, "equal" or None, keyword-only
        See :func:`need_from_sources`.

    Returns
    -------
    (GeoDataFrame, NeedReport)
        As :func:`need_from_sources`.
    """
    w = need_weights(weights)
    communes_table(
        communes,
        required=("departement", "population"),
        crs=None,
        unique_index=False,
        hint="cnfs_geo.territory.communes_from_cog",
    )
    _check_population(communes)
    report = NeedReport(index="ifn_total" if weights is None else "weighted", weights=w)
    out = communes.copy()
    out = out.join(fibre_from_frame(communes, fibre, codes, report))
    out = out.join(ifn_from_frame(communes, ifn, codes, fibre=fibre, report=report))
    for name, col in fracture_indices(out).items():
        out[name] = col
    imputed = out["ifn_total"].isna()
    out["need_index_weighted"], median_w = _fill_median(weighted_need_index(out, w))
    if weights is None:
        out["need_index"], median = _fill_median(out["ifn_total"])
    else:
        out["need_index"], median = out["need_index_weighted"], median_w
    out["need_imputed"] = imputed
    report.imputed = out.index[imputed].tolist()
    if report.imputed:
        log.warning(
            "IFN: %d commune(s) without score get the median %.2f: %s",
            len(report.imputed),
            median,
            report.imputed,
        )
    out["need"] = out["population"] * out["need_index"] / 10.0
    out.attrs["need_index"] = report.index
    out.attrs["need_weights"] = None if weights is None else dict(w)
    log.info(
        "need: %d communes, need index %s, need-weighted population %.0f of %d "
        "inhabitants (%d unmatched rows, %d imputed)",
        len(out),
        report.index,
        out["need"].sum(),
        int(out["population"].sum()),
        len(report.unmatched),
        len(report.imputed),
    )
    return out, report


_WHAT_IF_COLUMNS = [
    "population",
    "nb_locaux",
    "nb_locaux_fibre",
    "pct_fibre",
    *DIMENSIONS,
    "ifn_total",
    "need_index",
    "need_imputed",
]


def fibre_what_if(
    communes: gpd.GeoDataFrame,
    *,
    target_pct: float = 100.0,
    weights: Mapping[str, float] | str | None = None,
) -> gpd.GeoDataFrame:
    """Need if every commune had at least ``target_pct`` % of premises eligible to FTTH.

    Rule (``docs/methods_need.md``): where ``pct_fibre`` < ``target_pct`` it is raised
    to the target (``nb_locaux_fibre`` follows) and the no-THD score is scaled by the
    remaining non-FTTH share::

        ifn_no_thd' = ifn_no_thd × (100 − pct_fibre') / (100 − pct_fibre)

    so a commune reaching 100 % gets 0 and one that does not change keeps its score.
    Then ``fracture_connectivite`` and ``need_index_weighted`` are recomputed;
    ``ifn_total`` moves by Δ ifn_no_thd / 14 (the official total is the mean of 14
    indicator scores); ``need_index`` follows ``ifn_total`` or the weighted index,
    as in :func:`need_from_sources`; ``need`` = population × need_index / 10.
    Communes without fibre row (``pct_fibre`` NaN) or without IFN row (imputed need)
    are left unchanged and logged.

    Parameters
    ----------
    communes : GeoDataFrame
        Output of :func:`need_from_sources` (index ``insee``; columns ``population``,
        ``nb_locaux``, ``nb_locaux_fibre``, ``pct_fibre``, the ``ifn_*`` scores,
        ``need_index``, ``need_imputed``). Not modified.
    target_pct : float, keyword-only
        Target FTTH share in percent, 0–100 (default 100).
    weights : mapping, "equal" or None, keyword-only
        Weights of the five dimensions. ``None``: those recorded by
        :func:`need_from_sources` in ``communes.attrs["need_weights"]`` — if any,
        ``need_index`` is the weighted index, otherwise it follows ``ifn_total`` and
        ``need_index_weighted`` uses equal weights. Given: ``need_index`` is the
        weighted index with these weights.

    Returns
    -------
    GeoDataFrame
        A copy (same index, CRS, geometry) with ``pct_fibre``, ``nb_locaux_fibre``,
        ``ifn_no_thd``, ``ifn_total``, ``fracture_connectivite``,
        ``need_index_weighted``, ``need_index``, ``need`` recomputed, plus
        ``pct_fibre_before``, ``need_before`` and ``fibre_raised`` (bool).
        ``attrs["what_if"]`` describes the scenario.

    Examples
    --------
    >>> from cnfs_geo import catalog, territory, need
    >>> d = catalog.resolve_data_dir()
    >>> c, _ = need.need_from_sources(territory.communes_from_cog("49", d), d)
    >>> w = need.fibre_what_if(c, target_pct=100)
    >>> bool((w["pct_fibre"] == 100).all()), bool(w["need"].sum() < c["need"].sum())
    (True, True)
    """
    try:
        target = float(target_pct)
    except (TypeError, ValueError):
        target = float("nan")
    if isinstance(target_pct, bool) or not (math.isfinite(target) and 0 <= target <= 100):
        raise ValidationError(
            "target_pct", [f"{target_pct!r} is not a percentage; give a number between 0 and 100"]
        )
    missing = [c for c in _WHAT_IF_COLUMNS if c not in communes.columns]
    if missing:
        raise ValidationError(
            "communes",
            [f"missing column {c!r}" for c in missing]
            + ["pass the output of cnfs_geo.need.need_from_sources"],
        )
    if weights is None and communes.attrs.get("need_weights"):
        weights, mode = communes.attrs["need_weights"], "weighted"
    else:
        mode = "ifn_total" if weights is None else "weighted"
    w = need_weights(weights)
    if mode == "ifn_total":
        ni = pd.to_numeric(communes["need_index"], errors="coerce")
        tot = pd.to_numeric(communes["ifn_total"], errors="coerce")
        off = communes.index[
            ~communes["need_imputed"].astype(bool) & ~np.isclose(ni, tot, rtol=0, atol=1e-9)
        ]
        if len(off):
            raise ValidationError(
                "communes",
                [
                    f"need_index differs from ifn_total for {len(off)} commune(s) (e.g. "
                    f"{list(off[:3])}) and attrs['need_weights'] is not set: the communes were "
                    "built with weights; pass the same weights= to fibre_what_if"
                ],
            )

    out = communes.copy()
    old_pct = pd.to_numeric(out["pct_fibre"], errors="coerce")
    raise_ = old_pct.notna() & (old_pct < target)
    new_pct = old_pct.where(~raise_, target)
    old_thd = out["ifn_no_thd"].astype(float)
    factor = ((100.0 - new_pct) / (100.0 - old_pct)).where(raise_, 1.0)
    new_thd = old_thd * factor
    delta = (new_thd - old_thd).fillna(0.0)

    out["pct_fibre_before"] = old_pct
    out["need_before"] = (
        out["need"] if "need" in out.columns else (out["population"] * out["need_index"] / 10.0)
    )
    out["pct_fibre"] = new_pct
    out["nb_locaux_fibre"] = out["nb_locaux_fibre"].where(
        ~raise_, out["nb_locaux"] * new_pct / 100.0
    )
    out["ifn_no_thd"] = new_thd
    out["ifn_total"] = (out["ifn_total"] + delta / IFN_TOTAL_INDICATORS).clip(0, 10)
    out["fibre_raised"] = raise_
    for name, col in fracture_indices(out).items():
        out[name] = col
    imputed = out["need_imputed"].astype(bool)
    weighted = weighted_need_index(out, w)
    # imputed communes keep their (median) index: nothing is known of their fibre score
    prev_weighted = (
        out["need_index_weighted"] if "need_index_weighted" in out.columns else out["need_index"]
    )
    out["need_index_weighted"] = weighted.where(~imputed, prev_weighted)
    if mode == "weighted":
        out["need_index"] = out["need_index_weighted"]
    else:
        out["need_index"] = out["need_index"].where(imputed, out["ifn_total"])
    out["need"] = out["population"] * out["need_index"] / 10.0

    no_fibre = out.index[old_pct.isna()].tolist()
    if no_fibre:
        log.warning(
            "fibre what-if: %d commune(s) without fibre row left unchanged: %s",
            len(no_fibre),
            no_fibre,
        )
    if (raise_ & imputed).any():
        log.warning(
            "fibre what-if: %d commune(s) without IFN score keep their imputed need index: %s",
            int((raise_ & imputed).sum()),
            out.index[raise_ & imputed].tolist(),
        )
    out.attrs = dict(communes.attrs)
    out.attrs["need_index"] = mode
    out.attrs["need_weights"] = dict(w) if mode == "weighted" else None
    out.attrs["what_if"] = f"fibre ≥ {target:g} % des locaux (règle : docs/methods_need.md)"
    log.info(
        "fibre what-if (≥ %g %%): %d commune(s) raised, need %.0f → %.0f",
        target,
        int(raise_.sum()),
        out["need_before"].sum(),
        out["need"].sum(),
    )
    return out
