"""Départemental planning report of a plan, in French (one self-contained HTML file).

:func:`write_report` renders ``templates/rapport.html.j2`` with the values of
:func:`report_context` (figures from :mod:`cnfs_geo.figures` inline as PNG); the same plan
gives the same bytes. Sections and rules: ``docs/methods_outputs.md``.

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
import functools
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from . import _fr, catalog, offer
from ._errors import ValidationError
from ._fr import (
    DAYS,
    HALF_DAYS,
    KIND_LABELS,
    MODEL_LABELS,
    NO_PROJECT_CRITERION,
    REPORT_TITLE,
    SOLVER_LABELS,
    SOURCE_SHORT,
    SOURCE_STATUS,
    UNIT_NOUNS,
    host_kind_label,
)
from ._map_style import circuit_colour
from ._plan_view import (
    demand_unit_key,
    demand_unit_short,
    departement_name,
    epci_without_project,
    has_circuits,
    is_itinerant_post,
    posts_with_coverage,
    stop_label,
)
from .figures import circuits_map_png, priority_map_png, static_map_png

log = logging.getLogger(__name__)

REPORT_FILENAME = "rapport.html"
TEMPLATE = "rapport.html.j2"
TOP_GAPS = 20
TOP_PRIORITY = 25
MAX_REJECTED_ROWS = 100

# solver-record keys whose label counts demand units
_UNIT_KEYS = {
    "n_demand",
    "units",
    "units_covered_before",
    "units_uncoverable",
    "model_rows_merged",
    "candidates",
}
# wall-clock measures differ from run to run: left out so the report is reproducible
_UNREPRODUCIBLE = {"time_s"}


def _solver_rows(
    solution: dict, prefix: str = "", *, units: str = "Communes"
) -> list[dict[str, str]]:
    """Label/value rows of the placement solution record (nested dicts flattened).

    ``units`` (capitalised plural, e.g. "IRIS") replaces "Communes" in the labels
    that count demand units."""
    rows = []
    for k, v in solution.items():
        if k in _UNREPRODUCIBLE:
            continue
        if isinstance(v, dict):
            rows += _solver_rows(v, prefix=prefix, units=units)
            continue
        if k not in SOLVER_LABELS:  # developer diagnostics (solver, sizes, rules): -v log
            continue
        label = SOLVER_LABELS[k]
        if units != "Communes" and k in _UNIT_KEYS:
            label = label.replace("Communes", units).replace("communes", units)
        label = prefix + label
        if k == "model":
            v = MODEL_LABELS.get(str(v), v)
        elif k == "status":
            v = _fr.solver_result(v, solution.get("gap"))
        elif k == "gap" and isinstance(v, (int, float)) and math.isfinite(v):
            v = _fr.percent(100.0 * v)
        rows.append({"label": label, "value": _fr.value(v)})
    return rows


# --------------------------------------------------------------------------------------
# context
# --------------------------------------------------------------------------------------
def _check(plan: Any) -> None:
    problems = []
    for name in (
        "communes",
        "places",
        "posts",
        "epci",
        "coverage_before",
        "coverage_after",
        "offer_report",
        "need_report",
        "solution",
        "travel_model",
        "scenario",
    ):
        if getattr(plan, name, None) is None:
            problems.append(f"plan.{name} is missing")
    if not problems:
        t = plan.scenario.threshold
        for name in ("coverage_before", "coverage_after"):
            if t not in set(getattr(plan, name)["threshold_min"].astype(float)):
                problems.append(f"plan.{name} has no row for the threshold {t:g} min")
        counts = getattr(plan.offer_report, "counts", None)
        if counts is None or not {"source", "read", "kept", "merged", "rejected"} <= set(
            counts.columns
        ):
            problems.append(
                "plan.offer_report.counts must have columns source, read, kept, merged, rejected"
            )
    if problems:
        raise ValidationError("plan", problems + ["build the plan with cnfs_geo.plan.run()"])


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("cnfs_geo")
    except Exception:  # noqa: BLE001 - not installed: no version in the footer
        return ""


def unit_context(plan: Any) -> dict[str, str]:
    """French wording of the plan's demand unit.

    Returns
    -------
    dict
        ``key`` (``commune`` | ``iris`` | ``commune2018``), ``short`` (e.g. "IRIS 2016
        (La MedNum 2020)"), ``full`` (``plan.demand_unit``), ``plural`` (capitalised
        plural noun, e.g. "IRIS"), ``paren`` (" (IRIS)", what the units are, to follow
        « unités de demande »), ``covered_heading`` (e.g. "IRIS couverts").
    """
    key = demand_unit_key(plan)
    _, plural = UNIT_NOUNS.get(key, ("unité de demande", "unités de demande"))
    cap = plural[0].upper() + plural[1:]
    return {
        "key": key,
        "short": demand_unit_short(plan),
        "full": str(getattr(plan, "demand_unit", "") or demand_unit_short(plan)),
        "plural": cap,
        "plural_lower": plural,
        "paren": f" ({_fr.UNIT_KINDS.get(key, plural)})",
        "covered_heading": f"{cap} couvert{'s' if key == 'iris' else 'es'}",
        "covered_lower": f"{plural} couvert{'s' if key == 'iris' else 'es'}",
    }


def data_gaps(plan: Any) -> list[str]:
    """French sentences on the offer sources not read for this département.

    Says explicitly when no departmental file of lieux de médiation was read (every
    département but 49, whose CD49/CONUMM files are "not applicable" elsewhere) and
    which sources the offer then comes from; lists the files absent from the data
    directory (status ``missing`` in ``plan.offer_report.counts``).
    """
    counts = plan.offer_report.counts
    if "status" not in counts.columns:
        return []
    status = {str(k): str(v) for k, v in zip(counts["source"], counts["status"])}
    covered = catalog.offer_covered_by(plan.data_dir)  # fetched official data (issue 8)
    short = {**SOURCE_SHORT, **({"data_inclusion": _fr.NATIONAL_MAP_SHORT} if covered else {})}
    out = []
    local = [k for k in offer.LOCAL_SOURCES if k in status]
    if local and not any(status[k] == "read" for k in local):
        read = [
            k
            for k in ("france_services", "cnfs_permanences", "aidants_connect", "data_inclusion")
            if status.get(k) == "read"
        ]
        read += [k for k, v in status.items() if v == "read" and k not in read]
        out.append(
            "Pas de fichier départemental des lieux de médiation : l'offre provient de "
            + _fr.join([short.get(k, k) for k in read])
            + "."
        )
        na = [k for k in local if status[k] == "not applicable"]
        if na and covered:
            deps = sorted({offer.LOCAL_SOURCES[k] for k in na})
            out.append(_fr.offer_from_national_map([short.get(k, k) for k in na], deps))
        elif na:
            deps = sorted({offer.LOCAL_SOURCES[k] for k in na})
            out.append(
                "Les fichiers locaux de lieux de médiation "
                f"({_fr.join([short.get(k, k) for k in na])}) ne décrivent que le "
                f"département {_fr.join(deps)} et ne s'appliquent pas ici. "
                "Les lieux de médiation numérique connus viennent donc seulement de la base "
                "nationale data·inclusion, incomplète : l'offre de médiation est probablement "
                "sous-estimée, et les territoires prioritaires et EPCI sans projet numérique "
                "sont à vérifier localement."
            )
    if covered:
        labels = [short.get(k, k) for k in covered if status.get(k) == "missing"]
        if labels:
            out.append(_fr.offer_covered(labels))
    missing = [k for k, v in status.items() if v == "missing" and k not in covered]
    if missing:
        out.append(
            ("Fichier absent" if len(missing) == 1 else "Fichiers absents")
            + " du répertoire de données, "
            + ("source non prise" if len(missing) == 1 else "sources non prises")
            + " en compte : "
            + ", ".join(f"{short.get(k, k)} ({k})" for k in missing)
            + "."
        )
    return out


def _methods_paragraphs(text: str) -> list[dict[str, Any]]:
    """Split a methods text into paragraphs of lines (the first one, a title)."""
    paras = [p.strip() for p in str(text).strip().split("\n\n") if p.strip()]
    return [
        {"lines": p.split("\n"), "title": i == 0 and "\n" not in p and not p.endswith(".")}
        for i, p in enumerate(paras)
    ]


def priority_context(plan: Any) -> dict[str, Any]:
    """Values of the "Territoires prioritaires" section, formatted in French.

    Uses ``plan.communes`` (``priority_score``, ``priority_rank``, ``priority_gap``,
    ``gap_reasons``, ``gap_cluster``, ``accessibility``, ``ratio_to_target``),
    ``plan.gap_clusters`` (and its ``attrs["methods_fr"]``), ``plan.gap_communes``,
    ``plan.epci`` / :func:`cnfs_geo._plan_view.epci_without_project` (``has_project``, ``n_*``).
    """
    from . import gaps as gaps_mod

    c = plan.communes
    t = plan.scenario.threshold
    cl = getattr(plan, "gap_clusters", None)
    cl = cl if cl is not None else pd.DataFrame()
    methods = cl.attrs.get("methods_fr") if hasattr(cl, "attrs") else None
    methods_generic = not methods
    methods = methods or gaps_mod.methods_fr()
    pg = c[c["priority_gap"].astype(bool)].sort_values("priority_rank", kind="stable")
    n_total = len(c)
    intro = (
        f"{_fr.plural(len(pg), 'commune')} sur {_fr.integer(n_total)} "
        f"{'remplit' if len(pg) < 2 else 'remplissent'} la règle de priorité "
        f"({_fr.integer(pg['population'].sum())} habitants, "
        f"{_fr.integer(pg['need'].sum())} en population pondérée par le besoin)"
        + (
            f", {'regroupée' if len(pg) < 2 else 'regroupées'} en "
            f"{_fr.plural(len(cl), 'territoire prioritaire', 'territoires prioritaires')} "
            "de communes contiguës."
            if len(cl)
            else "."
        )
    )
    clusters = []
    for r in cl.sort_values("cluster_id").itertuples(index=False) if len(cl) else []:
        clusters.append(
            {
                "id": str(r.cluster_id),
                "n": _fr.integer(r.n_communes),
                "names": str(r.names).replace(";", ","),
                "epci": str(r.epci_nom).replace(";", ",") if pd.notna(r.epci_nom) else "—",
                "population": _fr.integer(r.population),
                "need": _fr.integer(r.need),
                "need_index": _fr.number(r.need_index_mean, 1),
                "minutes": f"{_fr.minutes(r.minutes_mean)} ({_fr.minutes(r.minutes_max)})",
                "nearest": (
                    f"{r.nearest_place_name} ({_fr.minutes(r.nearest_place_minutes)})"
                    if isinstance(r.nearest_place_name, str)
                    else "—"
                ),
                "places": (
                    f"{_fr.integer(r.n_places)} ({_fr.integer(r.n_accompaniment_places)})"
                    if pd.notna(r.n_places)
                    else "—"
                ),
                "area": _fr.number(r.area_km2, 0),
            }
        )
    communes = []
    for k, (insee, r) in enumerate(pg.head(TOP_PRIORITY).iterrows()):
        ratio = r["ratio_to_target"]
        communes.append(
            {
                "rank": _fr.integer(k + 1),  # among the priority communes (consecutive)
                "commune": f"{r['nom']} ({insee})",
                "epci": str(r["epci_nom"]) if pd.notna(r["epci_nom"]) else "—",
                "population": _fr.integer(r["population"]),
                "score": _fr.number(r["priority_score"], 1),
                "minutes": _fr.minutes(r["minutes_before"]),
                "accessibility": _fr.number(r["accessibility"], 2),
                "ratio": (
                    f"{_fr.number(100 * ratio, 0)}\u00a0%"
                    if pd.notna(ratio) and math.isfinite(float(ratio))
                    else "—"
                ),
                "need_index": _fr.number(r["need_index"], 1),
                "fibre": _fr.percent(r["pct_fibre"]),
                "cluster": str(r["gap_cluster"]) if isinstance(r["gap_cluster"], str) else "—",
                "reasons": (
                    [x.strip() for x in r["gap_reasons"].split(";") if x.strip()]
                    if isinstance(r["gap_reasons"], str)
                    else []
                ),
            }
        )
    more = len(pg) - len(communes)
    # communes beyond each threshold (plan.gap_communes, long form)
    gc = getattr(plan, "gap_communes", None)
    thresholds = sorted(set(plan.coverage_before["threshold_min"].astype(float)))
    beyond = []
    for th in thresholds:
        sub = (
            gc[gc["threshold_min"].astype(float) == th].sort_values("rank", kind="stable")
            if gc is not None and len(gc)
            else pd.DataFrame(columns=["nom", "population", "need"])
        )
        beyond.append(
            {
                "threshold": f"> {_fr.number(th)}\u00a0min",
                "is_threshold": bool(th == t),
                "communes": _fr.integer(len(sub)),
                "population": _fr.integer(sub["population"].sum()),
                "need": _fr.integer(sub["need"].sum()),
                "first": ", ".join(str(n) for n in sub["nom"].head(3)) or "—",
            }
        )
    # EPCI without a digital project (Anjou criterion)
    nop = epci_without_project(plan)
    no_project = []
    for e, r in nop.iterrows():
        members = c[c["epci"] == e]
        no_project.append(
            {
                "nom": str(r["nom"]),
                "siren": str(e),
                "communes": _fr.integer(len(members)),
                "population": _fr.integer(members["population"].sum()),
                "need": _fr.integer(members["need"].sum()),
                "minutes": (
                    f"{_fr.minutes(r['minutes_mean'])} ({_fr.minutes(r['minutes_max'])})"
                    if "minutes_mean" in nop.columns
                    else "—"
                ),
                "france_services": _fr.integer(r.get("n_france_services", 0)),
                "aidants_connect": _fr.integer(r.get("n_aidants_connect", 0)),
                "places": _fr.integer(r.get("n_places", 0)),
                "accompaniment": _fr.integer(r.get("n_accompaniment_places", 0)),
            }
        )
    criterion = NO_PROJECT_CRITERION
    if no_project:
        pop = float(sum(c.loc[c["epci"] == e, "population"].sum() for e in nop.index))
        no_project_intro = (
            f"{_fr.integer(len(no_project))} EPCI sur "
            f"{_fr.integer(len(plan.epci))} n'ont aucun projet numérique "
            f"({_fr.integer(pop)} habitants du département)."
        )
    else:
        no_project_intro = (
            f"Aucun EPCI sans projet numérique dans ce département : chacun des "
            f"{_fr.integer(len(plan.epci))} EPCI compte au moins un lieu de "
            "médiation numérique ou une permanence de conseiller numérique "
            "France Services."
        )
    return {
        "methods": _methods_paragraphs(methods),
        "methods_generic": methods_generic,
        "intro": intro,
        "clusters": clusters,
        "communes": communes,
        "more": more,
        "more_text": (
            f"{_fr.plural(more, 'autre commune prioritaire', 'autres communes prioritaires')} "
            + ("n'est pas listée" if more < 2 else "ne sont pas listées")
        ),
        "n_priority": len(pg),
        "beyond": beyond,
        "no_project": no_project,
        "no_project_intro": no_project_intro,
        "criterion": criterion,
    }


def circuits_context(plan: Any) -> dict[str, Any] | None:
    """Values of the "Circuits itinérants" section; None when the plan has no
    ``circuits`` attribute (section left out).

    Uses ``plan.circuits`` (``circuit_id``, ``base_insee``, ``base_nom``, ``stops``
    ";"-joined INSEE codes in tour order, ``n_stops``, ``population``, ``need``,
    ``km_per_week``, ``minutes_per_week``, ``hours_at_stops``) and ``plan.timetable``
    (``circuit_id``, ``day``, ``half_day``, ``insee``, ``nom``, ``hours``,
    ``travel_minutes``): one day × half-day grid per circuit (lundi–vendredi, plus
    any other day used).
    """
    if getattr(plan, "circuits", None) is None:
        return None
    circuits = plan.circuits.sort_values("circuit_id", kind="stable")
    tt = getattr(plan, "timetable", None)
    tt = tt if tt is not None else pd.DataFrame(columns=["circuit_id", "day", "half_day"])
    names = plan.communes["nom"]
    rows = []
    for i, r in enumerate(circuits.itertuples(index=False)):
        cid = str(r.circuit_id)
        stops = [x for x in str(r.stops).split(";") if x]
        stop_names = str(getattr(r, "stop_names", "") or "").split(";")
        if len(stop_names) != len(stops):
            stop_names = [str(names.get(x, x)) for x in stops]
        sub = tt[tt["circuit_id"].astype(str) == cid]
        first = sub.drop_duplicates("insee")
        why = (
            pd.Series(first["reason"].to_numpy(), index=first["insee"].astype(str))
            if "reason" in sub.columns
            else pd.Series(dtype=object)
        )
        days = [d for d in DAYS[:5]] + [d for d in DAYS[5:] if d in set(sub["day"])]
        unknown = sorted(set(sub["day"].astype(str)) - set(DAYS))
        if unknown:
            log.warning(
                "report: circuit %s: unknown day name(s) %s in plan.timetable", cid, unknown
            )
            days += unknown
        halves = list(HALF_DAYS) + sorted(set(sub["half_day"].astype(str)) - set(HALF_DAYS))
        cells: dict[tuple[str, str], list[dict[str, str]]] = {
            (d, h): [] for d in days for h in halves
        }
        for v in sub.itertuples(index=False):
            cells[(str(v.day), str(v.half_day))].append(
                {
                    "nom": stop_label(v.nom, v.insee),
                    "hours": _fr.hours(v.hours),
                    "travel": _fr.minutes(v.travel_minutes, 0, fixed=False),
                }
            )
        grid = [{"half_day": h, "cells": [cells[(d, h)] for d in days]} for h in halves]
        rows.append(
            {
                "id": cid,
                "colour": circuit_colour(i),
                "base": f"{r.base_nom} ({r.base_insee})",
                "stops": [
                    stop_label(n, x) + (f" — {why[x]}" if x in why.index and why[x] else "")
                    for n, x in zip(stop_names, stops)
                ],
                "empty_days": str(getattr(r, "empty_days_reason", "") or ""),
                "n_stops": _fr.integer(r.n_stops),
                "km": _fr.integer(r.km_per_week),
                "drive": _fr.hours(float(r.minutes_per_week) / 60.0),
                "minutes": _fr.integer(r.minutes_per_week),
                "hours": _fr.hours(r.hours_at_stops),
                "population": _fr.integer(r.population),
                "need": _fr.integer(r.need),
                "days": days,
                "grid": grid,
                "visits": _fr.integer(len(sub)),
            }
        )
    if rows:
        thr = _fr.number(plan.scenario.threshold, trim=True)
        s = plan.settings
        intro = (
            f"{_fr.plural(len(rows), 'poste itinérant', 'postes itinérants')} "
            "(« médiateur volant ») : un conseiller part chaque jour de sa base et tient "
            "une permanence d'une demi-journée, selon le planning hebdomadaire ci-dessous, "
            "là où les postes fixes laissent des habitants au-delà du seuil (ou dans un "
            "territoire prioritaire, motif indiqué). Sa semaine : "
            f"{_fr.hours(s.weekly_hours)} moins {_fr.percent(100 * s.coordination_share, 0)} "
            "de coordination, moins la route, sur cinq jours. "
            f"{_fr.SERVED_DEFINITION.format(threshold=thr).capitalize()}. Ensemble, les "
            f"circuits desservent {_fr.integer(circuits['population'].sum())} habitants "
            f"({_fr.integer(circuits['need'].sum())} en population pondérée par le besoin) "
            f"qui restaient au-delà de {thr} min après les postes fixes, avec "
            f"{_fr.plural(int(circuits['n_stops'].sum()), 'arrêt')}. Chaque arrêt a "
            "au moins une demi-journée ; les suivantes vont aux arrêts qui desservent des "
            "habitants au-delà du seuil, en proportion de leur besoin, avant tout arrêt "
            "déjà couvert."
        )
        if s.itinerant_min_stops > 1:
            intro += (
                f" Un circuit compte au moins {_fr.plural(s.itinerant_min_stops, 'arrêt')} "
                "dont les habitants sont au-delà du seuil (une seule permanence toute la "
                "semaine serait un poste fixe ; un arrêt déjà couvert ne compte pas)."
            )
        dropped = getattr(plan, "itinerant_dropped", None)
        if dropped is not None and "reason" in dropped.columns:
            few = dropped[dropped["reason"] == "too_few_stops"]
            if len(few):
                intro += (
                    " Restent sans circuit, faute d'une base de leur territoire à portée "
                    f"d'assez d'arrêts : {_fr.join(list(few['nom'].astype(str)))} "
                    f"({_fr.integer(few['population'].sum())} habitants)."
                )
        if s.itinerant_serve_covered:
            intro += (
                " Le réglage itinerant_serve_covered autorise aussi des arrêts dans des "
                "unités déjà à moins du seuil dont la fragilité est dans le quart "
                "supérieur : ces arrêts sont signalés par leur motif."
            )
    else:
        intro = (
            "Le scénario ne comporte aucun poste itinérant (médiateur volant) : voir "
            "l'option --itinerant de cnfs-geo plan."
        )
    total = {
        "km": _fr.integer(circuits["km_per_week"].sum()) if rows else "0",
        "population": _fr.integer(circuits["population"].sum()) if rows else "0",
    }
    return {"intro": intro, "circuits": rows, "total": total}


_COMPARISON_LABELS = {
    "units": "Unités de demande",
    "population_covered_before": "Population couverte avant les nouveaux postes",
    "pct_population_covered_before": "Part de la population couverte avant",
    "population_covered_after": "Population couverte après les nouveaux postes",
    "pct_population_covered_after": "Part de la population couverte après",
    "communes_covered_before": "Communes couvertes avant (au moins la moitié de la population)",
    "communes_covered_after": "Communes couvertes après",
    "posts_in_common": "Postes choisis dans les deux plans",
    "point_artefacts": "Postes dont la population principale est un artefact du point "
    "représentatif",
}


def advisor_defaults_context(plan: Any, *, top: int = 10) -> dict[str, Any] | None:
    """How many advisor counts are defaults, and the priority list when they move
    (columns ``priority_rank_low``/``_high`` of ``plan.communes``,
    :func:`cnfs_geo.gaps.default_advisors_sensitivity`); None without them."""
    info = getattr(plan, "advisor_defaults", None) or {}
    c = plan.communes
    cols = ["priority_rank", "priority_rank_low", "priority_rank_high"]
    if not info or not set(cols) <= set(c.columns):
        return None
    places = plan.places
    acc = places["service_level"] == "accompaniment"
    basis = places.get("advisors_basis", pd.Series("default", index=places.index))
    n_source = int((acc & (basis == "source")).sum())
    n_rule = int((acc & (basis == "rule")).sum())
    n_default, n_counts = int(info["n_default"]), int(info["n_counts"])
    low, high = info["factors"]
    flag = {True: "oui", False: "non"}
    rows = []
    for insee, r in c.sort_values("priority_rank", kind="stable").head(top).iterrows():
        rows.append(
            {
                "commune": f"{r['nom']} ({insee})",
                "rank": _fr.integer(r["priority_rank"]),
                "rank_low": _fr.integer(r["priority_rank_low"]),
                "rank_high": _fr.integer(r["priority_rank_high"]),
                "gaps": " / ".join(
                    flag[bool(r[k])]
                    for k in ("priority_gap", "priority_gap_low", "priority_gap_high")
                ),
            }
        )
    base = set(c.index[c["priority_gap"].astype(bool)])
    moves = []
    for label, col in (
        (f"× {_fr.number(low, 1, trim=True)}", "priority_gap_low"),
        (f"× {_fr.number(high, 1, trim=True)}", "priority_gap_high"),
    ):
        other = set(c.index[c[col].astype(bool)])
        moves.append(
            f"défauts {label} : "
            + _fr.plural(
                len(other), "commune prioritaire", "communes prioritaires", fmt=_fr.integer
            )
            + " "
            f"({_fr.plural(len(other - base), 'entrée', fmt=_fr.integer)}, "
            f"{_fr.plural(len(base - other), 'sortie', fmt=_fr.integer)})"
        )
    top_base = set(c.sort_values("priority_rank").head(top).index)
    same = [
        len(top_base & set(c.sort_values(col).head(top).index))
        for col in ("priority_rank_low", "priority_rank_high")
    ]
    return {
        "intro": (
            "L'accessibilité (E2SFCA) qui fonde le critère « offre d'aide mince » compte les "
            "conseillers de "
            + _fr.plural(
                n_counts, "lieu d’accompagnement", "lieux d’accompagnement", fmt=_fr.integer
            )
            + ". "
            f"{_fr.integer(n_source)} comptes viennent de la source (permanences des conseillers "
            f"numériques), {_fr.integer(n_rule)} de la règle de la charte France Services "
            f"(deux agents au moins) et {_fr.integer(n_default)} sont des valeurs par défaut "
            f"({_fr.number(info['advisors_default'], 0)} conseillers sur "
            f"{_fr.number(info['advisors_total'], 0)}). Le tableau montre le classement des "
            f"{_fr.integer(top)} premières communes quand ces valeurs par défaut sont "
            f"multipliées par {_fr.number(low, 1, trim=True)} ou par "
            f"{_fr.number(high, 1, trim=True)}, toutes choses égales par ailleurs."
        ),
        "low": f"× {_fr.number(low, 1, trim=True)}",
        "high": f"× {_fr.number(high, 1, trim=True)}",
        "rows": rows,
        "summary": (
            f"Communes prioritaires avec les valeurs actuelles : {_fr.integer(len(base))} ; "
            + " ; ".join(moves)
            + f". Parmi les {_fr.integer(top)} premières, {_fr.integer(same[0])} restent dans "
            f"les {_fr.integer(top)} premières avec les défauts bas et {_fr.integer(same[1])} "
            "avec les défauts hauts."
        ),
    }


def unit_comparison_context(plan: Any) -> dict[str, Any] | None:
    """The table comparing the plan with its commune-point variant
    (``plan.unit_comparison``, :func:`cnfs_geo.plan.compare_demand_units`); None
    when it was not computed."""
    table = getattr(plan, "unit_comparison", None)
    if table is None or len(table) == 0:
        return None
    rows = []
    for r in table.itertuples(index=False):
        key = str(r.figure)
        if key.startswith("post_"):
            label = f"Poste fixe n° {key.split('_')[1]} (commune)"
        else:
            label = _COMPARISON_LABELS.get(key, key)

        def fmt(v: Any, key: str = key) -> str:
            if key.startswith("pct_"):
                return _fr.percent(v)
            if isinstance(v, (int, float, np.integer, np.floating)):
                return _fr.integer(v)
            return str(v) or "—"

        rows.append({"label": label, "plan": fmt(r.plan), "other": fmt(r.other)})
    art = table.attrs.get("artefacts_other")
    artefacts = ""
    if art is not None and len(art):
        parts = [
            f"{a.post_id} ({a.post_commune}) couvre surtout {a.unit_nom} "
            f"({_fr.integer(a.unit_population)} hab., {_fr.minutes(a.unit_minutes_before)} "
            f"depuis son point représentatif), dont le chef-lieu est à "
            f"{_fr.minutes(a.chef_lieu_minutes)} de « {a.chef_lieu_place} »"
            for a in art.itertuples(index=False)
        ]
        artefacts = (
            "Avec un point par commune : " + " ; ".join(parts) + ". Ces postes rapprochent "
            "surtout un point arbitraire du contour de la commune, alors que son chef-lieu, "
            "où vit la plupart de ses habitants, est déjà couvert."
        )
    secs = table.attrs.get("seconds")
    return {
        "intro": (
            f"Unité de demande de ce plan : {demand_unit_short(plan).lower()} (pour chaque "
            "commune, l'unité la plus fine que donnent les données). Le même "
            "scénario, calculé avec un seul point par commune (point représentatif de son "
            "contour), donne les chiffres de la colonne de droite"
            + (f" (recalcul en {_fr.duration_bracket(secs)})." if secs is not None else ".")
        ),
        "plan_heading": "Ce plan",
        "other_heading": "Un point par commune",
        "rows": rows,
        "artefacts": artefacts,
    }


def robustness_context(plan: Any) -> dict[str, Any] | None:
    """The robustness table (``plan.robustness``, :mod:`cnfs_geo.robustness`), or None
    when the analysis was not run."""
    rob = getattr(plan, "robustness", None)
    if rob is None:
        return None
    runs = len(rob.perturbations)
    rows = [
        {
            "post": str(r.post_id),
            "commune": f"{r.commune} ({r.insee})",
            "again": f"{r.chosen_again} / {r.runs}",
            "same": f"{r.same_commune} / {r.runs}",
            "label": str(r.label),
            "robust": bool(r.robust),
        }
        for r in rob.posts.itertuples(index=False)
    ]
    variants = _fr.join(str(x) for x in rob.perturbations["label"])
    n_robust = int(rob.posts["robust"].sum())
    intro = (
        f"Le placement des postes fixes a été recalculé "
        f"{_fr.plural(runs, 'fois', 'fois')}, une par variante des hypothèses ({variants}), "
        "à partir des mêmes données préparées. Un poste est « choisi à nouveau » quand la "
        "variante place un poste dans la même commune ou à moins de "
        f"{_fr.minutes(rob.near_minutes, fixed=False)} ; il est « {_fr.ROBUST_POST} » quand "
        f"c'est le cas dans au moins {_fr.percent(100 * rob.robust_share, 0)} des variantes, "
        f"« {_fr.FRAGILE_POST} » sinon. {_fr.integer(n_robust)} sur "
        f"{_fr.integer(len(rows))} sont robustes. Durée de l'analyse : "
        f"{_fr.duration_bracket(rob.seconds)} (durée exacte affichée par la commande ; "
        "le rapport reste identique d'une exécution à l'autre)."
    )
    n_fragile = len(rows) - n_robust
    if n_fragile:
        verb = "n'est" if n_fragile == 1 else "ne sont"
        intro += (
            f" {_fr.plural(n_fragile, 'poste fragile', 'postes fragiles')} "
            f"{verb} pas pour autant "
            "mauvais : sous d'autres hypothèses, "
            "d'autres emplacements rendent un service voisin (souvent les derniers postes, "
            "qui couvrent peu d'habitants) ; le choix du lieu exact est à arbitrer "
            "localement, par exemple selon les structures d'accueil prêtes à recruter."
        )
    return {"intro": intro, "rows": rows}


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
    tt = _fr.minutes(t, fixed=False)
    dep = str(plan.scenario.departement)
    dep_name = departement_name(plan)
    pop_total = float(s["population"])
    need_total = float(c["need"].sum())
    epci_name = {str(k): str(v) for k, v in ep["nom"].items()}

    # ---- header and key figures
    origin = {
        "bundle": "jeu embarqué de Maine-et-Loire (data/49)",
        "argument": f"répertoire « {plan.data_dir.path.name} » (option --data-dir)",
        "environment": f"répertoire « {plan.data_dir.path.name} » (variable {catalog.ENV_VAR})",
    }.get(getattr(plan.data_dir, "origin", ""), str(getattr(plan.data_dir, "path", "")))
    unit = unit_context(plan)
    by_share = unit["key"] != "commune"
    scenario = {
        "posts": f"{s['posts']} nouveaux postes",
        "threshold": tt,
        "travel_model": plan.travel_model,
        "data": origin,
        "demand_unit": unit["short"],
    }
    pop_b, pop_a = s["population_covered_before"], s["population_covered_after"]
    itin = np.array([is_itinerant_post(r) for r in posts.itertuples(index=False)], dtype=bool)
    n_itin = int(itin.sum())
    kpis = [
        {
            "label": (
                f"Communes à ≤ {tt} d'un lieu d'accompagnement"
                if not by_share
                else f"Communes dont au moins la moitié de la population est à ≤ {tt} d'un lieu "
                "d'accompagnement"
            ),
            "before": _fr.integer(s["communes_covered_before"]),
            "after": _fr.integer(s["communes_covered_after"]),
            "sub": f"sur {_fr.integer(s['communes'])} communes"
            + (
                f" · {unit['covered_lower']} : "
                f"{_fr.integer(s['units_covered_before'])} → "
                f"{_fr.integer(s['units_covered_after'])} sur {_fr.integer(s['units'])}"
                if by_share and "units" in s
                else ""
            ),
            "delta": f"+{_fr.integer(s['communes_covered_after'] - s['communes_covered_before'])}"
            + (" communes" if by_share else ""),
        },
        {
            "label": "Population couverte",
            "before": _fr.integer(pop_b),
            "after": _fr.integer(pop_a),
            "sub": f"{_fr.percent(s['pct_population_covered_before'])} → "
            f"{_fr.percent(s['pct_population_covered_after'])} de "
            f"{_fr.integer(pop_total)} hab.",
            "delta": f"+{_fr.integer(pop_a - pop_b)} hab.",
        },
        {
            "label": "Population pondérée par le besoin couverte",
            "before": _fr.integer(s["need_covered_before"]),
            "after": _fr.integer(s["need_covered_after"]),
            "sub": f"{_fr.percent(s['pct_need_covered_before'])} → "
            f"{_fr.percent(s['pct_need_covered_after'])} de {_fr.integer(need_total)}",
            "delta": f"+{_fr.integer(s['need_covered_after'] - s['need_covered_before'])}",
        },
        {
            "label": "Nouveaux postes proposés",
            "before": "",
            "after": _fr.integer(s["posts"]),
            "sub": (
                f"dont {_fr.integer(n_itin)} {'itinérant' if n_itin < 2 else 'itinérants'} · "
                if n_itin
                else ""
            )
            + f"coût {_fr.euros(s['cost_eur'])} pour {_fr.plural(_fr.COST_YEARS, 'an')} "
            f"({_fr.integer(s['posts'])} × {_fr.euros(plan.settings.cost_per_post_eur)})",
            "delta": "",
        },
    ]
    out_b, out_a = pop_total - pop_b, pop_total - pop_a
    synthesis = (
        f"Le département compte {_fr.integer(s['communes'])} communes et {_fr.integer(pop_total)} "
        f"habitants, et {_fr.integer(s['places'])} lieux d'inclusion numérique connus, dont "
        f"{_fr.integer(s['accompaniment_places'])} offrent un accompagnement. Aujourd'hui, "
        f"{_fr.integer(out_b)} habitants ({_fr.percent(100 * out_b / pop_total)}) vivent à plus de "
        f"{tt} d'un lieu d'accompagnement. Avec les {s['posts']} postes proposés "
        f"({_fr.euros(s['cost_eur'])}), ils seraient {_fr.integer(out_a)} "
        f"({_fr.percent(100 * out_a / pop_total)})."
    )
    if n_itin and has_circuits(plan):
        circ = plan.circuits
        served_pop = float(circ["population"].sum())
        synthesis += (
            f" Parmi ces postes, {_fr.integer(n_itin)} sont itinérants (« médiateur "
            f"volant ») : leurs permanences hebdomadaires "
            f"({_fr.plural(int(circ['n_stops'].sum()), 'arrêt')}) desservent "
            f"{_fr.integer(served_pop)} de ces habitants restés au-delà de {tt} "
            f"({_fr.SERVED_DEFINITION.format(threshold=_fr.number(t, trim=True))}) ; ils "
            "ne sont pas comptés ci-dessus comme couverts par un lieu fixe. Avec les "
            f"circuits, {_fr.integer(max(out_a - served_pop, 0))} habitants restent "
            "sans lieu ni permanence à portée."
        )

    # ---- coverage table
    cb = plan.coverage_before.set_index("threshold_min")
    ca = plan.coverage_after.set_index("threshold_min")
    coverage_rows = []
    for th in sorted(set(cb.index.astype(float)) & set(ca.index.astype(float))):
        b, a = cb.loc[th], ca.loc[th]
        coverage_rows.append(
            {
                "threshold": _fr.minutes(th, fixed=False),
                "is_threshold": bool(th == t),
                "units_before": f"{_fr.integer(b['units_covered'])} / {_fr.integer(b['units'])}",
                "units_after": f"{_fr.integer(a['units_covered'])} / {_fr.integer(a['units'])}",
                "pop_before": f"{_fr.integer(b['population_covered'])} "
                f"({_fr.percent(b['pct_population_covered'])})",
                "pop_after": f"{_fr.integer(a['population_covered'])} "
                f"({_fr.percent(a['pct_population_covered'])})",
                "need_before": f"{_fr.integer(b['need_covered'])} "
                f"({_fr.percent(b['pct_need_covered'])})",
                "need_after": f"{_fr.integer(a['need_covered'])} "
                f"({_fr.percent(a['pct_need_covered'])})",
            }
        )

    # ---- posts
    post_rows = []
    for i, r in enumerate(posts.itertuples(index=False)):
        e = str(getattr(r, "epci", "") or "")
        post_rows.append(
            {
                "number": f"{i + 1} · {r.post_id}",
                "host": str(r.host),
                "host_kind": host_kind_label(getattr(r, "host_kind", None)),
                "commune": f"{r.commune} ({r.insee})",
                "epci": epci_name.get(e, e or "—"),
                "population": _fr.integer(r.covered_population),
                "need": _fr.integer(r.covered_need),
                "itinerant": bool(itin[i]),
                "circuit": str(getattr(r, "circuit_id", "") or "") if itin[i] else "",
            }
        )
    fixed = posts[~itin]
    posts_total = {
        "population": _fr.integer(fixed["covered_population"].sum()),
        "need": _fr.integer(fixed["covered_need"].sum()),
        "n_fixed": len(fixed),
        "n_itinerant": n_itin,
        "itinerant_population": _fr.integer(posts.loc[itin, "covered_population"].sum()),
        "itinerant_need": _fr.integer(posts.loc[itin, "covered_need"].sum()),
    }
    cost_each = plan.settings.cost_per_post_eur
    cost = f"{len(posts)} × {_fr.euros(cost_each)} = {_fr.euros(len(posts) * cost_each)}"
    posts_intro = (
        f"{len(fixed)} postes fixes sont proposés. Ils couvrent ensemble "
        f"{posts_total['population']} habitants de plus à {tt} ou moins "
        f"({posts_total['need']} en population pondérée par le besoin)."
    )
    if n_itin:
        posts_intro += (
            f" S'y ajoutent {_fr.integer(n_itin)} postes itinérants (section "
            "« Circuits itinérants ») : pour eux, la population indiquée est celle que "
            "leur circuit dessert (une permanence hebdomadaire à moins du seuil) parmi "
            "les habitants restés au-delà du seuil après les postes fixes ; leur EPCI "
            "est celui de ces habitants."
        )

    # ---- gap communes
    gap = c[c["gap"].astype(bool)].copy()
    gap = gap.sort_values(["need", "population"], ascending=False, kind="stable")
    if "gap_rank" in gap.columns and gap["gap_rank"].notna().all():
        gap = gap.sort_values("gap_rank", kind="stable")
    nearest = (
        gap["nearest_place_name"]
        if "nearest_place_name" in gap.columns
        else pd.Series("—", index=gap.index)
    )
    gaps = []
    for k, (insee, r) in enumerate(gap.head(TOP_GAPS).iterrows()):
        rank = r["gap_rank"] if "gap_rank" in gap.columns and pd.notna(r["gap_rank"]) else k + 1
        gaps.append(
            {
                "rank": _fr.integer(rank),
                "commune": f"{r['nom']} ({insee})",
                "epci": str(r["epci_nom"]) if pd.notna(r["epci_nom"]) else "—",
                "population": _fr.integer(r["population"]),
                "need_index": _fr.number(r["need_index"], 1),
                "need": _fr.integer(r["need"]),
                "before": _fr.minutes(r["minutes_before"]),
                "nearest": str(nearest.get(insee)) if pd.notna(nearest.get(insee)) else "—",
                "after": _fr.minutes(r["minutes_after"]),
                "covered_after": bool(r["covered_after"]),
                "circuit": (
                    str(r["itinerant_circuit"])
                    if "itinerant_circuit" in gap.columns and pd.notna(r["itinerant_circuit"])
                    else None
                ),
            }
        )
    n_gap, pop_gap = len(gap), float(gap["population"].sum())
    n_solved = int(gap["covered_after"].sum())
    if n_gap:
        gaps_intro = (
            f"{_fr.integer(n_gap)} communes ({_fr.integer(pop_gap)} habitants, "
            f"{_fr.integer(gap['need'].sum())} en population pondérée par le besoin) sont à plus "
            f"de {tt} du lieu d'accompagnement le plus proche ; les nouveaux postes en couvrent "
            f"{_fr.integer(n_solved)}. "
            + (
                f"Les {TOP_GAPS} premières, classées par population pondérée par le besoin "
                "décroissante :"
                if n_gap > TOP_GAPS
                else "Elles sont classées par population pondérée par le besoin décroissante :"
                if n_gap > 1
                else ""
            )
        )
    else:
        gaps_intro = f"Toutes les communes sont à {tt} ou moins d'un lieu d'accompagnement."
    if by_share:
        gaps_intro = (
            f"Unité de demande : {unit['short']}. Une commune est comptée comme non "
            "couverte quand moins de la moitié de sa population est à "
            f"{tt} ou moins ; son temps d'accès est la moyenne de ses "
            f"{unit['plural_lower']} pondérée par la population. "
        ) + gaps_intro

    # ---- EPCI
    place_epci = places["insee"].map(c["epci"])
    acc = places["service_level"] == "accompaniment"
    post_epci = (
        posts["epci"] if "epci" in posts.columns else posts["insee"].map(c["epci"])
    ).astype(str)
    # population covered per EPCI: the demand units' (as the department's figures)
    units = getattr(plan, "units", None)
    if units is not None and len(units) and "covered_after" in units.columns:
        u_epci = units["insee"].map(c["epci"])
        u_pop = units["population"].astype(float)
        cov_b = u_pop.where(units["covered_before"].astype(bool), 0.0).groupby(u_epci).sum()
        cov_a = u_pop.where(units["covered_after"].astype(bool), 0.0).groupby(u_epci).sum()
    else:
        cov_b = (
            c["population"].where(c["covered_before"].astype(bool), 0.0).groupby(c["epci"]).sum()
        )
        cov_a = c["population"].where(c["covered_after"].astype(bool), 0.0).groupby(c["epci"]).sum()
    epci_rows = []
    for e in ep.index:
        m = c[c["epci"] == e]
        pop = float(m["population"].sum())
        epci_rows.append(
            {
                "nom": str(ep.at[e, "nom"]),
                "siren": str(e),
                "straddles": bool(ep.at[e, "straddles"]) if "straddles" in ep.columns else False,
                "communes": _fr.integer(len(m)),
                "population": _fr.integer(pop),
                "places": _fr.integer((place_epci == e).sum()),
                "accompaniment": _fr.integer(((place_epci == e) & acc).sum()),
                "covered_before": _fr.population_share(float(cov_b.get(e, 0.0)), pop),
                "covered_after": _fr.population_share(float(cov_a.get(e, 0.0)), pop),
                "posts": _fr.integer((post_epci == str(e)).sum()),
                "project": (bool(ep.at[e, "has_project"]) if "has_project" in ep.columns else None),
            }
        )
    epci_total = {
        "nom": f"Département ({_fr.integer(len(ep))} EPCI)",
        "communes": _fr.integer(len(c)),
        "population": _fr.integer(pop_total),
        "places": _fr.integer(place_epci.notna().sum()),
        "accompaniment": _fr.integer((place_epci.notna() & acc).sum()),
        "covered_before": _fr.population_share(pop_b, pop_total),
        "covered_after": _fr.population_share(pop_a, pop_total),
        "posts": _fr.integer(len(posts)),
    }
    outside = int(place_epci.isna().sum())
    if outside:
        log.warning(
            "report: %d place(s) lie in no commune of the département (not counted per EPCI)",
            outside,
        )

    # ---- offer
    kinds_split = places["kinds"].astype(str).str.split(";")
    kind_rows = []
    assumed = (
        places["advisors_assumed"].astype(bool)
        if "advisors_assumed" in places.columns
        else pd.Series(False, index=places.index)
    )
    adv = pd.to_numeric(places["advisors"], errors="coerce")

    def adv_txt(mask: pd.Series) -> str:
        return f"{_fr.number(adv[mask].sum(), 0)} ({_fr.number(adv[mask & assumed].sum(), 0)})"

    known = list(KIND_LABELS) + sorted(
        {k for ks in kinds_split for k in ks} - set(KIND_LABELS) - {""}
    )
    for k in known:
        has = kinds_split.map(lambda ks, k=k: k in ks)
        if not has.any():
            continue
        kind_rows.append(
            {
                "label": KIND_LABELS.get(k, k),
                "places": _fr.integer(has.sum()),
                "accompaniment": _fr.integer((has & acc).sum()),
                "access": _fr.integer((has & ~acc).sum()),
                "advisors": adv_txt(has),
            }
        )
    all_mask = pd.Series(True, index=places.index)
    kind_total = {
        "places": _fr.integer(len(places)),
        "accompaniment": _fr.integer(acc.sum()),
        "access": _fr.integer((~acc).sum()),
        "advisors": adv_txt(all_mask),
    }
    orep = plan.offer_report
    counts = orep.counts
    source_rows = []
    for r in counts.itertuples(index=False):
        st = str(getattr(r, "status", "read") or "read")
        if st == "not applicable":
            dep_only = offer.LOCAL_SOURCES.get(str(r.source))
            status_txt = (
                "non applicable : fichier propre au département " + dep_only
                if dep_only
                else "non applicable"
            )
        else:
            status_txt = "" if st == "read" else SOURCE_STATUS.get(st, st)
        source_rows.append(
            {
                "source": str(r.source),
                "title": catalog.file_title(plan.data_dir, str(r.source)),
                "status": status_txt,
                "read": _fr.integer(r.read),
                "kept": _fr.integer(r.kept),
                "merged": _fr.integer(r.merged),
                "rejected": _fr.integer(r.rejected),
            }
        )
    source_total = {
        k: _fr.integer(pd.to_numeric(counts[k]).sum())
        for k in ("read", "kept", "merged", "rejected")
    }
    rej = getattr(orep, "rejected", None)
    rej = (
        rej if rej is not None else pd.DataFrame(columns=["source", "record_id", "name", "reason"])
    )
    rejected = [
        {
            "source": str(r.get("source", "")),
            "record_id": str(r.get("record_id", "")),
            "name": str(r.get("name", "")) if pd.notna(r.get("name")) else "",
            "reason": str(r.get("reason", "")),
        }
        for _, r in rej.head(MAX_REJECTED_ROWS).iterrows()
    ]
    if len(rej) == 0:
        rejected_intro = "Aucun enregistrement n'a été écarté."
    elif len(rej) <= MAX_REJECTED_ROWS:
        rejected_intro = (
            f"{_fr.plural(len(rej), 'enregistrement écarté', 'enregistrements écartés')}."
        )
    else:
        rejected_intro = (
            f"{_fr.integer(len(rej))} enregistrements écartés ; seuls les "
            f"{MAX_REJECTED_ROWS} premiers sont listés ci-dessous (liste "
            "complète : plan.offer_report.rejected)."
        )
    by_reason = rej["reason"].value_counts() if len(rej) else pd.Series(dtype=int)
    if len(by_reason) > 1:
        rejected_intro += (
            " Motifs : "
            + " ; ".join(
                f"{reason} ({_fr.integer(n)})"
                for reason, n in sorted(by_reason.items(), key=lambda kv: (-kv[1], str(kv[0])))
            )
            + "."
        )

    # the offer module writes its rule and warnings in English (developer log): French here
    dedup_rule = _fr.DEDUP_RULE.format(d=_fr.integer(plan.settings.dedup_distance_m))

    # ---- method
    nr = plan.need_report
    need_notes = []
    imputed = list(getattr(nr, "imputed", []) or [])
    if imputed:
        names = ", ".join(f"{c.at[i, 'nom']} ({i})" if i in c.index else str(i) for i in imputed)
        need_notes.append(
            f"Sans indice IFN, {_fr.plural(len(imputed), 'commune')} "
            f"{'reçoit' if len(imputed) < 2 else 'reçoivent'} la médiane "
            f"départementale : {names}."
        )
    missing_fibre = list(getattr(nr, "missing_fibre", []) or [])
    if missing_fibre:
        need_notes.append(
            f"{_fr.plural(len(missing_fibre), 'commune')} sans donnée fibre : "
            f"{', '.join(map(str, missing_fibre))}."
        )
    unmatched = getattr(nr, "unmatched", None)
    if unmatched is not None and len(unmatched):
        need_notes.append(
            f"{_fr.plural(len(unmatched), 'ligne')} des fichiers IFN/fibre "
            f"{'ne correspond' if len(unmatched) < 2 else 'ne correspondent'} à "
            "aucune commune actuelle : "
            + ", ".join(f"{r.code} ({r.source})" for r in unmatched.itertuples())
            + "."
        )
    remapped = getattr(nr, "remapped", None)
    if remapped is not None and len(remapped):
        pairs = sorted({(str(r.code), str(r.insee)) for r in remapped.itertuples()})
        need_notes.append(
            "Codes communaux anciens rapportés au COG 2026 : "
            + ", ".join(f"{a} → {b}" for a, b in pairs)
            + "."
        )
    candidates_text = ""
    if getattr(plan, "candidates", None) is not None:
        n_cand = len(plan.candidates)
        n_town = int(plan.candidates.index.str.startswith("commune:").sum())
        candidates_text = (
            f" Sites candidats : {_fr.integer(n_cand)}, "
            "soit la mairie (chef-lieu) de chacune des "
            f"{_fr.integer(n_town)} communes et les "
            f"{_fr.integer(n_cand - n_town)} lieux existants."
        )
    placement_text = (
        (
            f"Les {len(fixed)} postes fixes sont placés par le modèle capacité / équité : il "
            "réduit le déficit d'accessibilité (indicateur 2SFCA, conseillers pour 10 000 "
            "habitants pondérés par le besoin) sous une cible, pondéré par le besoin "
            "(docs/methods_placement_equity.md) ; la couverture au seuil est ensuite mesurée "
            "comme pour les autres scénarios." + candidates_text
        )
        if str(getattr(plan.scenario, "model", "mclp")) == "equity"
        else (
            f"Les {len(fixed)} postes fixes sont placés de façon à maximiser la population "
            f"pondérée par le besoin nouvellement couverte à {tt} (problème de couverture "
            "maximale, MCLP) : "
            + (
                f"une unité de demande{unit['paren']} "
                "déjà couverte par l'offre existante ne compte pas, une unité nouvellement "
                "couverte compte une seule fois même si "
                "plusieurs postes la desservent."
                if by_share
                else (
                    "une commune déjà couverte par l'offre existante ne compte pas, une commune "
                    "nouvellement couverte compte une seule fois même si plusieurs postes la "
                    "desservent."
                )
            )
            + candidates_text
        )
    )
    if n_itin:
        placement_text += (
            f" Les {_fr.integer(n_itin)} postes itinérants sont ensuite répartis "
            "entre les communes peu denses que les postes fixes laissent sans "
            "offre ou dont la fragilité est élevée (section « Circuits "
            "itinérants »)."
        )
    travel_model_text = (
        f"{plan.travel_model}. Le temps est mesuré depuis le point de chaque unité de "
        f"demande{unit['paren']} jusqu'au lieu le plus proche, sans transports en "
        "commun."
    )
    cost_text = (
        f"{_fr.cost_per_post(cost_each)} : subvention de l'État par poste de "
        f"conseiller numérique France Services ; soit {cost} pour "
        f"{_fr.plural(_fr.COST_YEARS, 'an')}."
    )
    solver_rows = _solver_rows(plan.solution, units=unit["plural"])

    # ---- sources
    sources = []
    for p in catalog.data_provenance(plan.data_dir):
        url = p.get("url")
        sources.append(
            {
                **{k: (v if v is not None else "—") for k, v in p.items()},
                "vintage": _fr.source_vintage(p),
                "url": url,
                "url_short": (
                    url.split("/")[3] + "/" + url.split("/")[4]
                    if url and url.count("/") >= 4
                    else url
                ),
            }
        )

    gaps_data = data_gaps(plan)
    missing_sources = [str(m) for m in (getattr(orep, "missing_sources", []) or [])]
    if "status" in counts.columns:  # said per source (table) and in data_gaps
        missing_sources = []
    circ = circuits_context(plan)
    return {
        "title": REPORT_TITLE,
        "unit": unit,
        "by_share": by_share,
        "data_gaps": gaps_data,
        "priority": priority_context(plan),
        "circuits": circ,
        "robustness": robustness_context(plan),
        "priority_png": (
            base64.b64encode(priority_map_png(plan)).decode("ascii") if with_map else ""
        ),
        "circuits_png": (
            base64.b64encode(circuits_map_png(plan)).decode("ascii")
            if with_map and has_circuits(plan)
            else ""
        ),
        "dep_label": f"{dep_name} ({dep})",
        "scenario": scenario,
        "synthesis": synthesis,
        "kpis": kpis,
        "map_png": (base64.b64encode(static_map_png(plan)).decode("ascii") if with_map else ""),
        "n_posts": len(posts),
        "coverage_rows": coverage_rows,
        "unit_comparison": unit_comparison_context(plan),
        "advisor_defaults": advisor_defaults_context(plan),
        "posts": post_rows,
        "posts_total": posts_total,
        "posts_intro": posts_intro,
        "cost": cost,
        "gaps": gaps,
        "gaps_intro": gaps_intro,
        "epci_rows": epci_rows,
        "epci_total": epci_total,
        "any_straddles": any(e["straddles"] for e in epci_rows),
        "kind_rows": kind_rows,
        "kind_total": kind_total,
        "source_rows": source_rows,
        "source_total": source_total,
        "dedup_rule": dedup_rule,
        "missing_sources": missing_sources,
        "offer_warnings": [
            _fr.import_warning(str(w)) for w in (getattr(orep, "warnings", []) or [])
        ],
        "rejected": rejected,
        "rejected_intro": rejected_intro,
        "need_notes": need_notes,
        "placement_text": placement_text,
        "travel_model_text": travel_model_text,
        "cost_text": cost_text,
        "solver_rows": solver_rows,
        "sources": sources,
        "journal_rows": _journal_rows(plan),
        "version": _version(),
    }


def _journal_rows(plan: Any) -> list[dict[str, str]]:
    """Rows of the « Journal des données » section: sources with repairs or rejections."""
    journal = getattr(plan, "journal", None)
    if journal is None or not len(journal):
        return []
    return [
        {
            "source": str(r.source),
            "file": str(r.file),
            **{k: _fr.integer(getattr(r, k)) for k in ("read", "kept", "merged", "rejected")},
            "repaired": _fr.integer(r.repaired),
            "reasons": str(r.reasons),
        }
        for r in journal.itertuples()
        if r.rejected or r.repaired
    ]


@functools.lru_cache(maxsize=1)
def _environment() -> Environment:
    """The report's jinja2 environment, built once: it keeps the compiled template."""
    return Environment(
        loader=PackageLoader("cnfs_geo", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_report(plan: Any, *, with_map: bool = True) -> str:
    """The report's HTML text (see :func:`report_context`)."""
    return render_context(report_context(plan, with_map=with_map))


def render_context(context: dict[str, Any]) -> str:
    """The report's HTML text from a :func:`report_context` dict; a ``pdf`` entry
    (:func:`cnfs_geo.pdf.pdf_context`) adds the PDF's print-only pages."""
    return _environment().get_template(TEMPLATE).render(**context)


def write_report(
    plan: Any, path: str | Path, *, with_map: bool = True, context: dict[str, Any] | None = None
) -> Path:
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
    context : dict, optional
        The plan's :func:`report_context` when the caller has it already (computed from
        ``plan`` otherwise); not changed.

    Returns
    -------
    Path
        The file written.
    """
    out = Path(path)
    if out.is_dir():
        out = out / REPORT_FILENAME
    if context is None:
        context = report_context(plan, with_map=with_map)
    text = render_context(context)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    log.info("report: %s (%.0f kB)", out, len(text.encode("utf-8")) / 1024)
    return out
