"""Départemental planning report of a plan, in French (self-contained HTML).

:func:`write_report` renders ``templates/rapport.html.j2`` (jinja2, package data)
into one HTML file with inline CSS and, optionally, a static map as an inline
PNG: it can be opened offline, e-mailed and printed (A4 print styles).

The report holds no timestamp: the same plan gives the same bytes.

Sections: key figures before/after at the threshold, coverage at 5/10/15/20 min,
proposed posts and their cost, gap communes ranked by need-weighted population,
one row per EPCI, the existing offer (places per kind, records per source,
de-duplication rule, rejected records), method notes (threshold, travel model,
service levels, need index, placement, cost, solver record) and data sources.

Examples
--------
>>> from cnfs_geo.plan import Scenario, run
>>> from cnfs_geo.report import write_report
>>> path = write_report(run(Scenario(departement="49", posts=8)), "/tmp/rapport.html")
>>> path.name
'rapport.html'
"""

from __future__ import annotations

import base64
import io
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from . import catalog
from ._errors import ValidationError
from .maps import (EPCI_COLOUR, KIND_COLOURS, KIND_LABELS, MINUTE_BREAKS, MINUTE_COLOURS,
                   NO_PLACE_COLOUR, POST_COLOUR, _fmt_int, _fmt_minutes, _fmt_num, _fmt_pct,
                   departement_name, kinds_label, minute_class_labels, posts_with_coverage)

log = logging.getLogger(__name__)

REPORT_FILENAME = "rapport.html"
TEMPLATE = "rapport.html.j2"
TOP_GAPS = 20
MAX_REJECTED_ROWS = 100

_SOLVER_LABELS = {
    "model": "Modèle",
    "objective": "Objectif atteint (population pondérée nouvellement couverte)",
    "bound": "Borne supérieure de l'objectif",
    "gap": "Écart relatif entre objectif et borne",
    "solver": "Solveur",
    "method": "Méthode",
    "status": "Statut",
    "p": "Nombre de postes",
    "threshold": "Seuil (min)",
    "n_candidates": "Sites candidats",
    "n_demand": "Communes (points de demande)",
    "n_variables": "Variables du programme linéaire",
    "n_constraints": "Contraintes du programme linéaire",
    "tie_break": "Départage des solutions optimales (texte du module de placement)",
    "weight_total": "Population pondérée totale",
    "weight_covered_before": "Population pondérée couverte avant",
    "weight_covered_after": "Population pondérée couverte après",
    "weight_uncoverable": "Population pondérée hors d'atteinte des sites candidats",
    "units": "Communes",
    "units_covered_before": "Communes couvertes avant",
    "units_uncoverable": "Communes hors d'atteinte des sites candidats",
    "model_rows_merged": "Contraintes de couverture (communes à couvrir regroupées par "
                         "ensemble de sites à portée)",
    "candidates": "Sites candidats dans le modèle (à portée d'au moins une commune)",
    "existing_sites": "Sites existants passés au modèle",
    "threshold_min": "Seuil (min)",
    "rules": "Règles (texte du module de placement)",
}
# wall-clock measures differ from run to run: left out so the report is reproducible
_UNREPRODUCIBLE = {"time_s"}
_MODEL_LABELS = {"mclp": "couverture maximale (MCLP)", "lscp": "couverture totale (LSCP)",
                 "pmedian": "p-médian", "p-median": "p-médian"}
_STATUS_LABELS = {"optimal": "optimal", "time_limit": "limite de temps atteinte",
                  "feasible": "solution réalisable", "infeasible": "infaisable"}


# --------------------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------------------
def _fmt_eur(x: float) -> str:
    return _fmt_int(x) + "\u00a0€"


def _min(x: float) -> str:
    return _fmt_num(x) + "\u00a0min"


def _pop_pct(value: float, total: float) -> str:
    pct = 100.0 * float(value) / total if total else float("nan")
    return f"{_fmt_int(value)} ({_fmt_pct(pct)})"


def _value(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, (bool, np.bool_)):
        return "oui" if v else "non"
    if isinstance(v, (int, np.integer)):
        return _fmt_int(v)
    if isinstance(v, (list, tuple)):
        return " ; ".join(_value(x) for x in v) if v else "—"
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(float(v)):
            return "—"
        if abs(v) >= 1000:
            return _fmt_int(v)
        return f"{float(v):.4g}".replace(".", ",")
    return str(v)


def _solver_rows(solution: dict, prefix: str = "") -> list[dict[str, str]]:
    """Label/value rows of the placement solution record (nested dicts flattened)."""
    rows = []
    for k, v in solution.items():
        if k in _UNREPRODUCIBLE:
            continue
        if isinstance(v, dict):
            rows += _solver_rows(v, prefix=prefix)
            continue
        label = prefix + _SOLVER_LABELS.get(k, k)
        if k == "model":
            v = _MODEL_LABELS.get(str(v), v)
        elif k == "status":
            v = _STATUS_LABELS.get(str(v), v)
        elif k == "gap" and isinstance(v, (int, float)) and math.isfinite(v):
            v = _fmt_pct(100.0 * v)
        rows.append({"label": label, "value": _value(v)})
    return rows


def _host_kind(kind: Any) -> str:
    if not isinstance(kind, str) or not kind:
        return "—"
    return "Mairie" if kind == "mairie" else kinds_label(kind)


# --------------------------------------------------------------------------------------
# static map
# --------------------------------------------------------------------------------------
def static_map_png(plan: Any, *, dpi: int = 110) -> bytes:
    """Two-panel PNG (before / after): communes coloured by travel time, EPCI, places, posts.

    Drawn with matplotlib's object API (no pyplot global state); PNG metadata
    carries no software version, so identical plans give identical bytes.

    Parameters
    ----------
    plan : cnfs_geo.plan.Plan
        ``communes`` (``minutes_before``, ``minutes_after``, ``epci``, polygons),
        ``places`` (``service_level``, ``kinds``, points), ``posts`` (points), all in
        the working CRS.
    dpi : int

    Returns
    -------
    bytes
        PNG image.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from .maps import main_kind

    c = plan.communes
    epci = c[["epci", "geometry"]].dissolve(by="epci")
    places = plan.places
    acc = places["service_level"] == "accompaniment"
    fig = Figure(figsize=(10.0, 5.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)

    def colours(minutes: pd.Series) -> list[str]:
        out = []
        for m in minutes.astype(float):
            if not math.isfinite(m):
                out.append(NO_PLACE_COLOUR)
                continue
            out.append(next((col for b, col in zip(MINUTE_BREAKS, MINUTE_COLOURS) if m <= b),
                            MINUTE_COLOURS[-1]))
        return out

    t = _fmt_num(plan.scenario.threshold)
    titles = ["Avant : offre existante", f"Après : avec les {len(plan.posts)} nouveaux postes"]
    for ax, col, title in zip(axes, ["minutes_before", "minutes_after"], titles):
        c.plot(ax=ax, color=colours(c[col]), edgecolor="#666666", linewidth=0.2)
        epci.boundary.plot(ax=ax, color=EPCI_COLOUR, linewidth=0.9)
        kind = places["kinds"].map(main_kind)
        pc = [KIND_COLOURS.get(k, "#333333") for k in kind]
        xs, ys = places.geometry.x.to_numpy(), places.geometry.y.to_numpy()
        a = acc.to_numpy()
        ax.scatter(xs[a], ys[a], s=11, c=[pc[i] for i in np.flatnonzero(a)],
                   edgecolors="white", linewidths=0.5, zorder=3)
        ax.scatter(xs[~a], ys[~a], s=11, facecolors="white",
                   edgecolors=[pc[i] for i in np.flatnonzero(~a)], linewidths=0.9, zorder=3)
        ax.set_title(title, fontsize=11)
        ax.set_axis_off()
        ax.set_aspect("equal")
    ax = axes[1]
    for i, g in enumerate(plan.posts.geometry):
        ax.scatter([g.x], [g.y], marker="s", s=80, c=POST_COLOUR, edgecolors="white",
                   linewidths=0.8, zorder=4)
        ax.annotate(str(i + 1), (g.x, g.y), color="white", fontsize=6.5, ha="center",
                    va="center", fontweight="bold", zorder=5)
    handles = [Patch(facecolor=col, edgecolor="#666666", label=lab)
               for col, lab in zip(MINUTE_COLOURS, minute_class_labels())]
    handles += [Line2D([], [], marker="o", linestyle="", markerfacecolor=KIND_COLOURS[k],
                       markeredgecolor="white", label=lab) for k, lab in KIND_LABELS.items()]
    handles += [Line2D([], [], marker="o", linestyle="", markerfacecolor="white",
                       markeredgecolor="#555555", label="accès seul"),
                Line2D([], [], marker="s", linestyle="", markerfacecolor=POST_COLOUR,
                       markeredgecolor="white", markersize=8, label="nouveau poste"),
                Line2D([], [], color=EPCI_COLOUR, label="limite d'EPCI")]
    fig.legend(handles=handles, loc="lower center", ncol=6, fontsize=7.5, frameon=False,
               title=f"Temps d'accès au lieu d'accompagnement le plus proche (seuil {t} min)",
               title_fontsize=8)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.94, bottom=0.17, wspace=0.02)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


# --------------------------------------------------------------------------------------
# context
# --------------------------------------------------------------------------------------
def _check(plan: Any) -> None:
    problems = []
    for name in ("communes", "places", "posts", "epci", "coverage_before", "coverage_after",
                 "offer_report", "need_report", "solution", "travel_model", "scenario"):
        if getattr(plan, name, None) is None:
            problems.append(f"plan.{name} is missing")
    if not problems:
        t = plan.scenario.threshold
        for name in ("coverage_before", "coverage_after"):
            if t not in set(getattr(plan, name)["threshold_min"].astype(float)):
                problems.append(f"plan.{name} has no row for the threshold {t:g} min")
        counts = getattr(plan.offer_report, "counts", None)
        if counts is None or not {"source", "read", "kept", "merged", "rejected"} <= set(
                counts.columns):
            problems.append("plan.offer_report.counts must have columns source, read, kept, "
                            "merged, rejected")
    if problems:
        raise ValidationError("plan", problems + ["build the plan with cnfs_geo.plan.run()"])


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("cnfs_geo")
    except Exception:  # noqa: BLE001 - not installed: no version in the footer
        return ""


def report_context(plan: Any, *, with_map: bool = True) -> dict[str, Any]:
    """Every value shown in the report, formatted in French.

    Parameters
    ----------
    plan : cnfs_geo.plan.Plan
    with_map : bool
        Include the static map (:func:`static_map_png`) as base64.

    Returns
    -------
    dict
        The template's variables (strings, lists of dicts of strings).
    """
    _check(plan)
    s = plan.summary()
    c, places, ep = plan.communes, plan.places, plan.epci
    posts = posts_with_coverage(plan)
    t = plan.scenario.threshold
    tt = _min(t)
    dep = str(plan.scenario.departement)
    dep_name = departement_name(plan)
    pop_total = float(s["population"])
    need_total = float(c["need"].sum())
    epci_name = {str(k): str(v) for k, v in ep["nom"].items()}

    # ---- header and key figures
    origin = {"bundle": "jeu embarqué de Maine-et-Loire (data/49)",
              "argument": f"répertoire « {plan.data_dir.path.name} » (option --data-dir)",
              "environment": f"répertoire « {plan.data_dir.path.name} » "
                             f"(variable {catalog.ENV_VAR})"}.get(
        getattr(plan.data_dir, "origin", ""), str(getattr(plan.data_dir, "path", "")))
    scenario = {"posts": f"{s['posts']} nouveaux postes", "threshold": tt,
                "travel_model": plan.travel_model, "data": origin}
    pop_b, pop_a = s["population_covered_before"], s["population_covered_after"]
    kpis = [
        {"label": f"Communes à ≤ {tt} d'un lieu d'accompagnement",
         "before": _fmt_int(s["communes_covered_before"]),
         "after": _fmt_int(s["communes_covered_after"]),
         "sub": f"sur {_fmt_int(s['communes'])} communes",
         "delta": f"+{_fmt_int(s['communes_covered_after'] - s['communes_covered_before'])}"},
        {"label": "Population couverte",
         "before": _fmt_int(pop_b), "after": _fmt_int(pop_a),
         "sub": f"{_fmt_pct(s['pct_population_covered_before'])} → "
                f"{_fmt_pct(s['pct_population_covered_after'])} de {_fmt_int(pop_total)} hab.",
         "delta": f"+{_fmt_int(pop_a - pop_b)} hab."},
        {"label": "Population pondérée par le besoin couverte",
         "before": _fmt_int(s["need_covered_before"]), "after": _fmt_int(s["need_covered_after"]),
         "sub": f"{_fmt_pct(s['pct_need_covered_before'])} → "
                f"{_fmt_pct(s['pct_need_covered_after'])} de {_fmt_int(need_total)}",
         "delta": f"+{_fmt_int(s['need_covered_after'] - s['need_covered_before'])}"},
        {"label": "Nouveaux postes proposés", "before": "", "after": _fmt_int(s["posts"]),
         "sub": f"coût {_fmt_eur(s['cost_eur'])} "
                f"({_fmt_int(s['posts'])} × {_fmt_eur(plan.settings.cost_per_post_eur)})",
         "delta": ""},
    ]
    out_b, out_a = pop_total - pop_b, pop_total - pop_a
    synthesis = (
        f"Le département compte {_fmt_int(s['communes'])} communes et {_fmt_int(pop_total)} "
        f"habitants, et {_fmt_int(s['places'])} lieux d'inclusion numérique connus, dont "
        f"{_fmt_int(s['accompaniment_places'])} offrent un accompagnement. Aujourd'hui, "
        f"{_fmt_int(out_b)} habitants ({_fmt_pct(100 * out_b / pop_total)}) vivent à plus de "
        f"{tt} d'un lieu d'accompagnement. Avec les {s['posts']} postes proposés "
        f"({_fmt_eur(s['cost_eur'])}), ils seraient {_fmt_int(out_a)} "
        f"({_fmt_pct(100 * out_a / pop_total)}).")

    # ---- coverage table
    cb = plan.coverage_before.set_index("threshold_min")
    ca = plan.coverage_after.set_index("threshold_min")
    coverage_rows = []
    for th in sorted(set(cb.index.astype(float)) & set(ca.index.astype(float))):
        b, a = cb.loc[th], ca.loc[th]
        coverage_rows.append({
            "threshold": _min(th), "is_threshold": bool(th == t),
            "units_before": f"{_fmt_int(b['units_covered'])} / {_fmt_int(b['units'])}",
            "units_after": f"{_fmt_int(a['units_covered'])} / {_fmt_int(a['units'])}",
            "pop_before": f"{_fmt_int(b['population_covered'])} "
                          f"({_fmt_pct(b['pct_population_covered'])})",
            "pop_after": f"{_fmt_int(a['population_covered'])} "
                         f"({_fmt_pct(a['pct_population_covered'])})",
            "need_before": f"{_fmt_int(b['need_covered'])} ({_fmt_pct(b['pct_need_covered'])})",
            "need_after": f"{_fmt_int(a['need_covered'])} ({_fmt_pct(a['pct_need_covered'])})",
        })

    # ---- posts
    post_rows = []
    for i, r in enumerate(posts.itertuples(index=False)):
        e = str(getattr(r, "epci", "") or "")
        post_rows.append({
            "number": f"{i + 1} · {r.post_id}", "host": str(r.host),
            "host_kind": _host_kind(getattr(r, "host_kind", None)),
            "commune": f"{r.commune} ({r.insee})", "epci": epci_name.get(e, e or "—"),
            "population": _fmt_int(r.covered_population), "need": _fmt_int(r.covered_need)})
    posts_total = {"population": _fmt_int(posts["covered_population"].sum()),
                   "need": _fmt_int(posts["covered_need"].sum())}
    cost_each = plan.settings.cost_per_post_eur
    cost = f"{len(posts)} × {_fmt_eur(cost_each)} = {_fmt_eur(len(posts) * cost_each)}"
    posts_intro = (f"{len(posts)} postes fixes sont proposés. Ils couvrent ensemble "
                   f"{posts_total['population']} habitants de plus à {tt} ou moins "
                   f"({posts_total['need']} en population pondérée par le besoin).")

    # ---- gap communes
    gap = c[c["gap"].astype(bool)].copy()
    gap = gap.sort_values(["need", "population"], ascending=False, kind="stable")
    if "gap_rank" in gap.columns and gap["gap_rank"].notna().all():
        gap = gap.sort_values("gap_rank", kind="stable")
    nearest = gap["nearest_place_name"] if "nearest_place_name" in gap.columns else pd.Series(
        "—", index=gap.index)
    gaps = []
    for k, (insee, r) in enumerate(gap.head(TOP_GAPS).iterrows()):
        rank = r["gap_rank"] if "gap_rank" in gap.columns and pd.notna(r["gap_rank"]) else k + 1
        gaps.append({
            "rank": _fmt_int(rank), "commune": f"{r['nom']} ({insee})",
            "epci": str(r["epci_nom"]) if pd.notna(r["epci_nom"]) else "—",
            "population": _fmt_int(r["population"]),
            "need_index": _fmt_num(r["need_index"], 1), "need": _fmt_int(r["need"]),
            "before": _fmt_minutes(r["minutes_before"]),
            "nearest": str(nearest.get(insee)) if pd.notna(nearest.get(insee)) else "—",
            "after": _fmt_minutes(r["minutes_after"]), "covered_after": bool(r["covered_after"])})
    n_gap, pop_gap = len(gap), float(gap["population"].sum())
    n_solved = int(gap["covered_after"].sum())
    if n_gap:
        gaps_intro = (
            f"{_fmt_int(n_gap)} communes ({_fmt_int(pop_gap)} habitants, "
            f"{_fmt_int(gap['need'].sum())} en population pondérée par le besoin) sont à plus "
            f"de {tt} du lieu d'accompagnement le plus proche ; les nouveaux postes en couvrent "
            f"{_fmt_int(n_solved)}. "
            + (f"Les {TOP_GAPS} premières, classées par population pondérée par le besoin "
               "décroissante :" if n_gap > TOP_GAPS else
               "Elles sont classées par population pondérée par le besoin décroissante :"
               if n_gap > 1 else ""))
    else:
        gaps_intro = f"Toutes les communes sont à {tt} ou moins d'un lieu d'accompagnement."

    # ---- EPCI
    place_epci = places["insee"].map(c["epci"])
    acc = places["service_level"] == "accompaniment"
    post_epci = (posts["epci"] if "epci" in posts.columns
                 else posts["insee"].map(c["epci"])).astype(str)
    epci_rows = []
    for e in ep.index:
        m = c[c["epci"] == e]
        pop = float(m["population"].sum())
        epci_rows.append({
            "nom": str(ep.at[e, "nom"]), "siren": str(e),
            "straddles": bool(ep.at[e, "straddles"]) if "straddles" in ep.columns else False,
            "communes": _fmt_int(len(m)), "population": _fmt_int(pop),
            "places": _fmt_int((place_epci == e).sum()),
            "accompaniment": _fmt_int(((place_epci == e) & acc).sum()),
            "covered_before": _pop_pct(m.loc[m["covered_before"].astype(bool), "population"].sum(),
                                       pop),
            "covered_after": _pop_pct(m.loc[m["covered_after"].astype(bool), "population"].sum(),
                                      pop),
            "posts": _fmt_int((post_epci == str(e)).sum())})
    epci_total = {
        "nom": f"Département ({_fmt_int(len(ep))} EPCI)", "communes": _fmt_int(len(c)),
        "population": _fmt_int(pop_total), "places": _fmt_int(place_epci.notna().sum()),
        "accompaniment": _fmt_int((place_epci.notna() & acc).sum()),
        "covered_before": _pop_pct(pop_b, pop_total), "covered_after": _pop_pct(pop_a, pop_total),
        "posts": _fmt_int(len(posts))}
    outside = int(place_epci.isna().sum())
    if outside:
        log.warning("report: %d place(s) lie in no commune of the département (not counted "
                    "per EPCI)", outside)

    # ---- offer
    kinds_split = places["kinds"].astype(str).str.split(";")
    kind_rows = []
    assumed = (places["advisors_assumed"].astype(bool) if "advisors_assumed" in places.columns
               else pd.Series(False, index=places.index))
    adv = pd.to_numeric(places["advisors"], errors="coerce")

    def adv_txt(mask: pd.Series) -> str:
        return f"{_fmt_num(adv[mask].sum(), 0)} ({_fmt_num(adv[mask & assumed].sum(), 0)})"

    known = list(KIND_LABELS) + sorted({k for ks in kinds_split for k in ks} - set(KIND_LABELS)
                                       - {""})
    for k in known:
        has = kinds_split.map(lambda ks, k=k: k in ks)
        if not has.any():
            continue
        kind_rows.append({"label": KIND_LABELS.get(k, k), "places": _fmt_int(has.sum()),
                          "accompaniment": _fmt_int((has & acc).sum()),
                          "access": _fmt_int((has & ~acc).sum()), "advisors": adv_txt(has)})
    all_mask = pd.Series(True, index=places.index)
    kind_total = {"places": _fmt_int(len(places)), "accompaniment": _fmt_int(acc.sum()),
                  "access": _fmt_int((~acc).sum()), "advisors": adv_txt(all_mask)}
    orep = plan.offer_report
    counts = orep.counts
    source_rows = []
    for r in counts.itertuples(index=False):
        src = catalog.SOURCES.get(str(r.source))
        source_rows.append({"source": str(r.source), "title": src.title if src else str(r.source),
                            "read": _fmt_int(r.read), "kept": _fmt_int(r.kept),
                            "merged": _fmt_int(r.merged), "rejected": _fmt_int(r.rejected)})
    source_total = {k: _fmt_int(pd.to_numeric(counts[k]).sum())
                    for k in ("read", "kept", "merged", "rejected")}
    rej = getattr(orep, "rejected", None)
    rej = rej if rej is not None else pd.DataFrame(columns=["source", "record_id", "name",
                                                            "reason"])
    rejected = [{"source": str(r.get("source", "")), "record_id": str(r.get("record_id", "")),
                 "name": str(r.get("name", "")) if pd.notna(r.get("name")) else "",
                 "reason": str(r.get("reason", ""))}
                for _, r in rej.head(MAX_REJECTED_ROWS).iterrows()]
    if len(rej) == 0:
        rejected_intro = "Aucun enregistrement n'a été écarté."
    elif len(rej) <= MAX_REJECTED_ROWS:
        rejected_intro = f"{_fmt_int(len(rej))} enregistrement(s) écarté(s)."
    else:
        rejected_intro = (f"{_fmt_int(len(rej))} enregistrements écartés ; seuls les "
                          f"{MAX_REJECTED_ROWS} premiers sont listés ci-dessous (liste "
                          "complète : plan.offer_report.rejected).")
    by_reason = rej["reason"].value_counts() if len(rej) else pd.Series(dtype=int)
    if len(by_reason) > 1:
        rejected_intro += " Motifs : " + " ; ".join(
            f"{reason} ({_fmt_int(n)})" for reason, n in
            sorted(by_reason.items(), key=lambda kv: (-kv[1], str(kv[0])))) + "."

    # the offer module's texts are in English; a French version is used when it gives one
    dedup_fr = getattr(orep, "dedup_rule_fr", None)
    dedup_rule = str(dedup_fr or getattr(orep, "dedup_rule", None) or "—")
    dedup_rule_en = not dedup_fr

    # ---- method
    nr = plan.need_report
    need_notes = []
    imputed = list(getattr(nr, "imputed", []) or [])
    if imputed:
        names = ", ".join(f"{c.at[i, 'nom']} ({i})" if i in c.index else str(i) for i in imputed)
        need_notes.append(f"Sans indice IFN, {len(imputed)} commune(s) reçoivent la médiane "
                          f"départementale : {names}.")
    missing_fibre = list(getattr(nr, "missing_fibre", []) or [])
    if missing_fibre:
        need_notes.append(f"{len(missing_fibre)} commune(s) sans donnée fibre : "
                          f"{', '.join(map(str, missing_fibre))}.")
    unmatched = getattr(nr, "unmatched", None)
    if unmatched is not None and len(unmatched):
        need_notes.append(f"{len(unmatched)} ligne(s) des fichiers IFN/fibre ne correspondent à "
                          "aucune commune actuelle : "
                          + ", ".join(f"{r.code} ({r.source})" for r in unmatched.itertuples())
                          + ".")
    remapped = getattr(nr, "remapped", None)
    if remapped is not None and len(remapped):
        pairs = sorted({(str(r.code), str(r.insee)) for r in remapped.itertuples()})
        need_notes.append("Codes communaux anciens rapportés au COG 2026 : "
                          + ", ".join(f"{a} → {b}" for a, b in pairs) + ".")
    n_cand = len(plan.candidates) if getattr(plan, "candidates", None) is not None else None
    n_town = (int(plan.candidates.index.str.startswith("commune:").sum())
              if n_cand is not None else None)
    placement_text = (
        f"Les {s['posts']} postes sont placés de façon à maximiser la population pondérée par "
        f"le besoin nouvellement couverte à {tt} (problème de couverture maximale, MCLP) : "
        "une commune déjà couverte par l'offre existante ne compte pas, une commune nouvellement "
        "couverte compte une seule fois même si plusieurs postes la desservent."
        + (f" Sites candidats : {_fmt_int(n_cand)}, soit la mairie (chef-lieu) de chacune des "
           f"{_fmt_int(n_town)} communes et les {_fmt_int(n_cand - n_town)} lieux existants."
           if n_cand is not None else ""))
    travel_model_text = (
        f"{plan.travel_model}. Le temps est mesuré depuis le point de référence de chaque "
        "commune jusqu'au lieu le plus proche ; c'est une approximation du trajet routier, "
        "sans transports en commun.")
    cost_text = (f"{_fmt_eur(cost_each)} par poste (financement de l'État par poste de "
                 f"conseiller numérique France Services), soit {cost}.")
    solver_rows = _solver_rows(plan.solution)

    # ---- sources
    sources = []
    for p in catalog.provenance():
        url = p.get("url")
        sources.append({**{k: (v if v is not None else "—") for k, v in p.items()},
                        "url": url, "url_short": (url.split("/")[3] + "/" + url.split("/")[4]
                                                  if url and url.count("/") >= 4 else url)})

    return {
        "title": "Plan de déploiement des conseillers numériques France Services",
        "dep_label": f"{dep_name} ({dep})", "scenario": scenario, "synthesis": synthesis,
        "kpis": kpis, "map_png": (base64.b64encode(static_map_png(plan)).decode("ascii")
                                  if with_map else ""),
        "n_posts": len(posts), "coverage_rows": coverage_rows, "posts": post_rows,
        "posts_total": posts_total, "posts_intro": posts_intro, "cost": cost,
        "gaps": gaps, "gaps_intro": gaps_intro, "epci_rows": epci_rows, "epci_total": epci_total,
        "any_straddles": any(e["straddles"] for e in epci_rows),
        "kind_rows": kind_rows, "kind_total": kind_total, "source_rows": source_rows,
        "source_total": source_total, "dedup_rule": dedup_rule, "dedup_rule_en": dedup_rule_en,
        "missing_sources": [str(m) for m in (getattr(orep, "missing_sources", []) or [])],
        "offer_warnings": [str(w) for w in (getattr(orep, "warnings", []) or [])],
        "rejected": rejected, "rejected_intro": rejected_intro, "need_notes": need_notes,
        "placement_text": placement_text, "travel_model_text": travel_model_text,
        "cost_text": cost_text, "solver_rows": solver_rows, "sources": sources,
        "version": _version(),
    }


def _environment() -> Environment:
    return Environment(loader=PackageLoader("cnfs_geo", "templates"),
                       autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render_report(plan: Any, *, with_map: bool = True) -> str:
    """The report's HTML text (see :func:`report_context`)."""
    return _environment().get_template(TEMPLATE).render(**report_context(plan,
                                                                         with_map=with_map))


def write_report(plan: Any, path: str | Path, *, with_map: bool = True) -> Path:
    """Write the French planning report of ``plan`` as one self-contained HTML file.

    Parameters
    ----------
    plan : cnfs_geo.plan.Plan
        Uses ``communes`` (index ``insee``; ``nom``, ``epci``, ``epci_nom``,
        ``population``, ``need_index``, ``need``, ``minutes_before``,
        ``nearest_place_name``, ``minutes_after``, ``covered_before``,
        ``covered_after``, ``gap``, ``gap_rank``, polygons in the working CRS),
        ``places``, ``posts``, ``epci``, ``coverage_before``/``coverage_after``,
        ``offer_report``, ``need_report``, ``solution``, ``travel_model``,
        ``candidates`` and ``settings.cost_per_post_eur``.
    path : str or Path
        Output file; a directory gets ``rapport.html``.
    with_map : bool
        Embed the static two-panel map (PNG, base64).

    Returns
    -------
    Path
        The file written.
    """
    out = Path(path)
    if out.is_dir():
        out = out / REPORT_FILENAME
    text = render_report(plan, with_map=with_map)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    log.info("report: %s (%.0f kB)", out, len(text.encode("utf-8")) / 1024)
    return out
