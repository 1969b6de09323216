"""Need per commune: population, digital fragility (IFN) and fibre rollout.

* Population: COG 2026 populations légales (already on ``communes``).
* Fragility: the ANCT / La MedNum *indice de fragilité numérique* 2023 per commune,
  five dimensions scored 0–10 (10 = most fragile) and their composite ``total``.
  These are **scores (deciles), not rates**.
* Fibre: ARCEP « Ma connexion internet » 2024, premises (locaux) and FTTH-eligible
  premises per commune.

Both files use older commune codes (COG 2023/2024). Rows are mapped to COG 2026
with :func:`cnfs_geo.territory.current_code_map` (49069 → 49126, 49321 → 49160);
counts are summed, scores averaged weighted by the premises (``nb_locaux``) of each
old commune in the ARCEP file — the only source that still lists every old code
(datas.fun's COG 2024 no longer has 49321) — with equal weights for a commune
when one of its old codes has no premises count. Rows of the
département that map to no current commune are reported, never dropped silently.

Need-weighted population
------------------------
``need = population × need_index / 10``: a commune whose inhabitants are all in
the most fragile decile counts in full, one with a score of 5 counts half. The
need index is the IFN composite ``total`` (0–10). A commune without IFN row gets
the département's median score, flagged ``need_imputed = True``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from . import catalog
from ._errors import ValidationError
from .territory import current_code_map

log = logging.getLogger(__name__)

IFN_COLUMNS = {
    "no_thd_coverage_rate": "ifn_no_thd",
    "no_4g_coverage_rate": "ifn_no_4g",
    "poverty_rate": "ifn_poverty",
    "older_65_rate": "ifn_older_65",
    "nscol15p_rate": "ifn_low_diploma",
    "total": "ifn_total",
}
FIBRE_COLUMNS = ["nb_locaux", "nb_locaux_fibre"]

# French labels of the need columns (maps, report).
LABELS = {
    "ifn_no_thd": "Absence de très haut débit (score 0–10)",
    "ifn_no_4g": "Absence de 4G (score 0–10)",
    "ifn_poverty": "Pauvreté (score 0–10)",
    "ifn_older_65": "Part des 65 ans et plus (score 0–10)",
    "ifn_low_diploma": "Non ou peu diplômés (score 0–10)",
    "ifn_total": "Indice de fragilité numérique (0–10)",
    "pct_fibre": "Locaux éligibles à la fibre (%)",
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
    """

    unmatched: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["source", "code", "name", "reason"]))
    remapped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["source", "code", "insee"]))
    imputed: list[str] = field(default_factory=list)
    missing_fibre: list[str] = field(default_factory=list)


def _read_csv(path, required: list[str]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValidationError(str(path), [f"cannot be read as CSV ({exc}); restore the file from "
                                          "its source (data/README.md)"]) from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValidationError(str(path), [f"missing column {c!r}" for c in missing]
                              + [f"expected columns include {required}; is this the right file?"])
    return df


def _map_codes(df: pd.DataFrame, code_col: str, name_col: str, source: str,
               communes: pd.DataFrame, data_dir: catalog.DataDir,
               report: NeedReport) -> pd.DataFrame:
    """Add ``insee`` (COG 2026) to rows of the département; record unmatched/remapped."""
    dep = str(communes["departement"].iloc[0])
    mapping = current_code_map(data_dir)
    df = df[df[code_col].str.strip() != ""].copy()
    df[code_col] = df[code_col].str.strip()
    df["insee"] = df[code_col].map(mapping)
    in_dep = df[code_col].str.startswith(dep) | df["insee"].isin(communes.index)
    df = df[in_dep]
    bad = df[~df["insee"].isin(communes.index)]
    if len(bad):
        rows = pd.DataFrame({"source": source, "code": bad[code_col], "name": bad[name_col],
                             "reason": "code maps to no current commune of the département"})
        report.unmatched = pd.concat([report.unmatched, rows], ignore_index=True)
        log.warning("%s: %d row(s) of département %s map to no current commune: %s", source,
                    len(bad), dep, bad[code_col].tolist())
    moved = df[df["insee"].notna() & (df["insee"] != df[code_col])]
    if len(moved):
        report.remapped = pd.concat([report.remapped, pd.DataFrame(
            {"source": source, "code": moved[code_col], "insee": moved["insee"]})],
            ignore_index=True)
        log.info("%s: old codes mapped to COG 2026: %s", source,
                 dict(zip(moved[code_col], moved["insee"])))
    return df[df["insee"].isin(communes.index)]


def _old_code_weights(data_dir: catalog.DataDir) -> pd.Series:
    """Premises per commune code of the ARCEP file (weights for averaging old codes)."""
    path = data_dir.file("fibre", required=False)
    if path is None:
        return pd.Series(dtype=float)
    df = pd.read_csv(path, dtype=str, usecols=["code_insee", "nb_locaux"])
    return pd.to_numeric(df.set_index("code_insee")["nb_locaux"], errors="coerce")


def fibre_from_arcep(communes: pd.DataFrame, data_dir: catalog.DataDir,
                     report: NeedReport | None = None) -> pd.DataFrame:
    """FTTH eligibility per current commune.

    Returns
    -------
    DataFrame
        Index ``insee`` (communes' index); ``nb_locaux``, ``nb_locaux_fibre`` (sums over
        old codes), ``pct_fibre`` = 100 × nb_locaux_fibre / nb_locaux (NaN where no row).
    """
    report = report if report is not None else NeedReport()
    path = data_dir.file("fibre")
    df = _read_csv(path, ["code_insee", "commune", *FIBRE_COLUMNS])
    df = _map_codes(df, "code_insee", "commune", "fibre", communes, data_dir, report)
    for c in FIBRE_COLUMNS:
        df[c] = pd.to_numeric(df[c].replace("", "0"), errors="coerce")
    bad = df[df[FIBRE_COLUMNS].isna().any(axis=1)]
    if len(bad):
        raise ValidationError(str(path), [f"row code_insee={r.code_insee}: nb_locaux or "
                                          "nb_locaux_fibre is not a number" for r in bad.itertuples()])
    out = df.groupby("insee")[FIBRE_COLUMNS].sum().reindex(communes.index)
    out["pct_fibre"] = 100.0 * out["nb_locaux_fibre"] / out["nb_locaux"].where(out["nb_locaux"] > 0)
    report.missing_fibre = out.index[out["nb_locaux"].isna()].tolist()
    if report.missing_fibre:
        log.warning("fibre: %d commune(s) without ARCEP row: %s", len(report.missing_fibre),
                    report.missing_fibre)
    return out


def ifn_from_anct(communes: pd.DataFrame, data_dir: catalog.DataDir,
                  report: NeedReport | None = None) -> pd.DataFrame:
    """IFN 2023 scores (0–10) per current commune.

    Returns
    -------
    DataFrame
        Index ``insee``; columns ``ifn_no_thd``, ``ifn_no_4g``, ``ifn_poverty``,
        ``ifn_older_65``, ``ifn_low_diploma``, ``ifn_total`` (NaN where no row).
        Old communes merged since 2023 are averaged, weighted by their premises (ARCEP).
    """
    report = report if report is not None else NeedReport()
    path = data_dir.file("ifn_communes")
    df = _read_csv(path, ["code", "name", *IFN_COLUMNS])
    df = _map_codes(df, "code", "name", "ifn", communes, data_dir, report)
    scores = df[list(IFN_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    problems = []
    for col in IFN_COLUMNS:
        bad = df.loc[scores[col].isna() | ~scores[col].between(0, 10), "code"]
        problems += [f"row code={c}, column {col!r}: not a score in 0–10" for c in bad]
    if problems:
        raise ValidationError(str(path), problems + ["IFN columns are 0–10 scores; check the file"])
    scores = scores.rename(columns=IFN_COLUMNS)
    w = df["code"].map(_old_code_weights(data_dir)).astype(float)
    # a commune with any old code lacking a premises count averages with equal weights
    w = w.where(~w.isna().groupby(df["insee"]).transform("any"), 1.0).to_numpy()
    weighted = scores.mul(w, axis=0)
    weighted["insee"], weighted["_w"] = df["insee"].to_numpy(), w
    g = weighted.groupby("insee").sum()
    out = g[list(IFN_COLUMNS.values())].div(g["_w"], axis=0)
    return out.reindex(communes.index)


def need_from_sources(communes: gpd.GeoDataFrame, data_dir: catalog.DataDir
                      ) -> tuple[gpd.GeoDataFrame, NeedReport]:
    """Add need columns to ``communes``.

    Parameters
    ----------
    communes : GeoDataFrame
        From :func:`cnfs_geo.territory.communes_from_cog` (index ``insee``, ``population``).

    Returns
    -------
    (GeoDataFrame, NeedReport)
        ``communes`` with added columns ``nb_locaux``, ``nb_locaux_fibre``,
        ``pct_fibre``, the six ``ifn_*`` scores, ``need_index`` (0–10, = ``ifn_total``,
        imputed by the département median where missing), ``need_imputed`` (bool) and
        ``need`` (need-weighted population = population × need_index / 10).

    Examples
    --------
    >>> from cnfs_geo import catalog, territory, need
    >>> d = catalog.resolve_data_dir()
    >>> c, rep = need.need_from_sources(territory.communes_from_cog("49", d), d)
    >>> bool(c["need"].le(c["population"]).all()), rep.unmatched.empty
    (True, True)
    """
    pop = pd.to_numeric(communes["population"], errors="coerce")
    if pop.isna().any() or (pop < 0).any():
        bad = communes.index[pop.isna() | (pop < 0)].tolist()
        raise ValidationError("communes", [f"commune {c}: population is missing or negative; "
                                           "fix the COG populations" for c in bad])
    report = NeedReport()
    out = communes.copy()
    out = out.join(fibre_from_arcep(communes, data_dir, report))
    out = out.join(ifn_from_anct(communes, data_dir, report))
    imputed = out["ifn_total"].isna()
    median = float(out["ifn_total"].median()) if (~imputed).any() else 5.0
    out["need_index"] = out["ifn_total"].fillna(median)
    out["need_imputed"] = imputed
    report.imputed = out.index[imputed].tolist()
    if report.imputed:
        log.warning("IFN: %d commune(s) without score get the median %.2f: %s",
                    len(report.imputed), median, report.imputed)
    out["need"] = out["population"] * out["need_index"] / 10.0
    log.info("need: %d communes, need-weighted population %.0f of %d inhabitants "
             "(%d unmatched rows, %d imputed)", len(out), out["need"].sum(),
             int(out["population"].sum()), len(report.unmatched), len(report.imputed))
    return out, report
