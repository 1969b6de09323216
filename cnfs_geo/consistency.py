"""One set of figures: every figure of ``rapport.html`` and of the terminal summary
recomputed from ``plan.gpkg``.

:func:`figures_from_geopackage` recomputes the figures from the GeoPackage's layers alone
(demand units, communes, posts, places, EPCI, circuits, timetable, scenario);
:func:`report_differences` and :func:`summary_differences` compare them with the report
and with the text the CLI printed; :func:`check_outputs` runs both and raises
:class:`ConsistencyError` listing every difference. Method: ``docs/methods_consistency.md``.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import _fr
from ._errors import CnfsGeoError

__all__ = [
    "ConsistencyError",
    "check_outputs",
    "figures_from_geopackage",
    "report_differences",
    "summary_differences",
]


class ConsistencyError(CnfsGeoError):
    """The report or the summary says something the GeoPackage does not."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} difference(s)\n{lines}")


# ----------------------------------------------------------------------------------------
# Figures from the GeoPackage
# ----------------------------------------------------------------------------------------


def _read(path: Path, layer: str) -> pd.DataFrame | None:
    import pyogrio

    names = {str(n) for n, _ in pyogrio.list_layers(path)}
    if layer not in names:
        return None
    return pyogrio.read_dataframe(path, layer=layer)


def _flag(s: pd.Series) -> pd.Series:
    return s.fillna(False).astype(bool)


def figures_from_geopackage(path: str | Path) -> dict[str, Any]:
    """Every figure the report and the summary print, recomputed from ``plan.gpkg``.

    Parameters
    ----------
    path : path
        A GeoPackage written by :func:`cnfs_geo.outputs.write_geopackage` (layers
        ``units``, ``communes``, ``posts``, ``places``, ``epci``, ``scenario``;
        ``circuits`` and ``timetable`` with itinerant posts).

    Returns
    -------
    dict
        ``threshold``, ``thresholds``, ``demand_unit``, ``population``, ``units``,
        ``coverage`` (threshold → units/population/need covered before and after, from
        the units' travel times), ``communes``, ``communes_covered_before`` / ``_after``,
        ``places``, ``accompaniment_places``, ``posts`` (list of dicts in order),
        ``n_posts``, ``n_fixed``, ``n_itinerant``, ``cost_eur``, ``epci`` (SIREN →
        row), ``gaps`` (gap communes ranked), ``priority`` (priority communes ranked),
        ``circuits`` (circuit id → figures, with the timetable's half-days and hours).
    """
    path = Path(path)
    read = {
        n: _read(path, n)
        for n in (
            "scenario",
            "units",
            "communes",
            "posts",
            "places",
            "epci",
            "circuits",
            "timetable",
        )
    }
    required = ("scenario", "units", "communes", "posts", "places", "epci")
    missing = [n for n in required if read[n] is None]
    if missing:
        raise ConsistencyError(
            str(path),
            [f"layer {n!r} missing; rewrite the plan with cnfs-geo plan" for n in missing],
        )
    layers: dict[str, pd.DataFrame] = {n: v for n, v in read.items() if v is not None}
    sc = dict(zip(layers["scenario"]["key"], layers["scenario"]["value"]))
    t = float(sc["threshold_minutes"])
    thresholds = sorted(
        {float(x) for x in re.findall(r"[\d.]+", sc.get("settings.report_thresholds", ""))} | {t}
    )
    cost_each = float(sc["settings.cost_per_post_eur"])
    u = layers["units"]
    c = layers["communes"].set_index("insee")
    pop = u["population"].astype(float)
    need = u["need"].astype(float)
    mb = u["minutes_before"].astype(float).fillna(np.inf)
    ma = u["minutes_after"].astype(float).fillna(np.inf)
    coverage = {}
    for th in thresholds:
        b, a = mb <= th, ma <= th
        coverage[th] = {
            "units": len(u),
            "units_before": int(b.sum()),
            "units_after": int(a.sum()),
            "pop_before": float(pop[b].sum()),
            "pop_after": float(pop[a].sum()),
            "pct_pop_before": 100 * float(pop[b].sum()) / float(pop.sum()),
            "pct_pop_after": 100 * float(pop[a].sum()) / float(pop.sum()),
            "need_before": float(need[b].sum()),
            "need_after": float(need[a].sum()),
            "pct_need_before": 100 * float(need[b].sum()) / float(need.sum()),
            "pct_need_after": 100 * float(need[a].sum()) / float(need.sum()),
        }
    flags_b, flags_a = _flag(u["covered_before"]), _flag(u["covered_after"])
    problems = []
    if not (flags_b == (mb <= t)).all() or not (flags_a == (ma <= t)).all():
        problems.append("units: covered_before/after disagree with minutes_before/after")

    posts = layers["posts"]
    kinds = posts["kind"].astype(str)
    post_rows = [
        {
            "post_id": str(r.post_id),
            "insee": str(r.insee),
            "commune": str(r.commune),
            "epci": str(r.epci) if pd.notna(r.epci) else "",
            "kind": str(r.kind),
            "covered_population": float(r.covered_population),
            "covered_need": float(r.covered_need),
        }
        for r in posts.itertuples(index=False)
    ]
    # posts: newly covered population credited once, to the nearest new post
    newly = u[flags_a & ~flags_b]
    for p in post_rows:
        if p["kind"] == "fixed":
            mine = newly[newly["nearest_post"].astype(str) == p["post_id"]]
            p["units_population"] = float(mine["population"].sum())

    places = layers["places"]
    place_epci = places["insee"].map(c["epci"]).astype(object)
    acc = places["service_level"].astype(str) == "accompaniment"
    u_epci = u["insee"].map(c["epci"])
    ep = layers["epci"].set_index(layers["epci"].columns[0])
    epci = {}
    post_epci = posts["epci"].astype(str)
    for e in ep.index.astype(str):
        m = c[c["epci"].astype(str) == e]
        in_e = u_epci.astype(str) == e
        epci[e] = {
            "communes": len(m),
            "population": float(m["population"].sum()),
            "places": int((place_epci.astype(str) == e).sum()),
            "accompaniment": int(((place_epci.astype(str) == e) & acc).sum()),
            "covered_before": float(pop[in_e & flags_b].sum()),
            "covered_after": float(pop[in_e & flags_a].sum()),
            "posts": int((post_epci == e).sum()),
        }

    gap = c[_flag(c["gap"])].copy()
    gap = gap.sort_values("gap_rank", kind="stable")
    gaps = [
        {"rank": int(r.gap_rank), "insee": str(i), "population": float(r.population)}
        for i, r in gap.iterrows()
    ]
    prio = c[_flag(c["priority_gap"])].sort_values("priority_rank", kind="stable")
    priority = [{"rank": int(r.priority_rank), "insee": str(i)} for i, r in prio.iterrows()]

    circuits = {}
    if len(layers.get("circuits", ())):
        tt = layers.get("timetable", pd.DataFrame())
        for r in layers["circuits"].itertuples(index=False):
            sub = tt[tt["circuit_id"].astype(str) == str(r.circuit_id)] if len(tt) else tt
            circuits[str(r.circuit_id)] = {
                "base": f"{r.base_nom} ({r.base_insee})",
                "base_nom": str(r.base_nom),
                "n_stops": int(r.n_stops),
                "stops": [s for s in str(r.stops).split(";") if s],
                "km_per_week": float(r.km_per_week),
                "minutes_per_week": float(r.minutes_per_week),
                "hours_at_stops": float(r.hours_at_stops),
                "population": float(r.population),
                "need": float(r.need),
                "visits": len(sub),
                "timetable_hours": float(sub["hours"].sum()) if len(sub) else 0.0,
                "timetable_minutes": float(sub["travel_minutes"].sum()) if len(sub) else 0.0,
            }
    if problems:
        raise ConsistencyError(str(path), problems)
    return {
        "threshold": t,
        "thresholds": thresholds,
        "demand_unit": str(sc.get("demand_unit", "")),
        "population": float(c["population"].sum()),
        "units_population": float(pop.sum()),
        "units": len(u),
        "coverage": coverage,
        "communes": len(c),
        "communes_covered_before": int(_flag(c["covered_before"]).sum()),
        "communes_covered_after": int(_flag(c["covered_after"]).sum()),
        "places": len(places),
        "accompaniment_places": int(acc.sum()),
        "posts": post_rows,
        "n_posts": len(posts),
        "n_fixed": int((kinds == "fixed").sum()),
        "n_itinerant": int((kinds == "itinerant").sum()),
        "cost_each": cost_each,
        "cost_eur": len(posts) * cost_each,
        "epci": epci,
        "gaps": gaps,
        "gap_population": float(gap["population"].sum()),
        "priority": priority,
        "circuits": circuits,
    }


# ----------------------------------------------------------------------------------------
# Reading the report and the summary
# ----------------------------------------------------------------------------------------


class _Tables(HTMLParser):
    """Every <table> of a page as (section id, rows of cell texts)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[tuple[str, list[list[str]]]] = []
        self._section = ""
        self._rows: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self._section = a.get("id") or ""
        elif tag == "table":
            self._rows = []
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th") and self._rows is not None:
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._rows:
            self._rows[-1].append(_plain("".join(self._cell)))
            self._cell = None
        elif tag == "table" and self._rows is not None:
            self.tables.append((self._section, self._rows))
            self._rows = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _plain(text: str) -> str:
    """Text with every kind of space made one plain space (numbers compare as printed)."""
    text = text.replace(_fr.NNBSP, " ").replace(_fr.NBSP, " ")
    return re.sub(r"[ \t]+", " ", text).strip()


def _tables(text: str, section: str) -> list[list[list[str]]]:
    p = _Tables()
    p.feed(text)
    return [rows for sec, rows in p.tables if sec == section]


def _section_text(text: str, section: str) -> str:
    m = re.search(rf'<section id="{section}">(.*?)</section>', text, re.S)
    if not m:
        return ""
    return re.sub(r"\s+", " ", _plain(html.unescape(re.sub(r"<[^>]+>", " ", m.group(1)))))


def _i(x: float) -> str:
    return _plain(_fr.integer(x))


def _p(x: float) -> str:
    return _plain(_fr.percent(x))


def _share(value: float, total: float) -> str:
    return _plain(_fr.population_share(value, total))


# ----------------------------------------------------------------------------------------
# Comparisons
# ----------------------------------------------------------------------------------------


def report_differences(figures: dict[str, Any], report_html: str) -> list[str]:
    """Differences between the report's figures and ``figures``
    (:func:`figures_from_geopackage`); empty when they agree."""
    f, out = figures, []
    t = f["threshold"]
    cov = f["coverage"][t]

    def expect(where: str, shown: str, wanted: str) -> None:
        if shown != wanted:
            out.append(f"{where}: report shows {shown!r}, GeoPackage gives {wanted!r}")

    # key figures
    syn = _section_text(report_html, "synthese")
    for label, wanted in (
        ("population covered", f"{_i(cov['pop_before'])} → {_i(cov['pop_after'])}"),
        ("need covered", f"{_i(cov['need_before'])} → {_i(cov['need_after'])}"),
        (
            "communes covered",
            f"{_i(f['communes_covered_before'])} → {_i(f['communes_covered_after'])}",
        ),
        ("cost", f"coût {_plain(_fr.euros(f['cost_eur']))}"),
        ("population", f"{_i(f['population'])} habitants"),
        ("places", f"{_i(f['places'])} lieux"),
        ("accompaniment places", f"dont {_i(f['accompaniment_places'])} offrent"),
        (
            "people beyond the threshold before",
            f"{_i(f['population'] - cov['pop_before'])} habitants",
        ),
        (
            "people beyond the threshold after",
            f"ils seraient {_i(f['population'] - cov['pop_after'])}",
        ),
    ):
        if wanted not in syn:
            out.append(f"synthèse: {label} {wanted!r} not found")

    # coverage table, every threshold
    tabs = _tables(report_html, "couverture")
    rows = {r[0].split(" (")[0]: r for r in (tabs[0] if tabs else []) if r and r[0].startswith("≤")}
    for th, v in f["coverage"].items():
        key = f"≤ {_plain(_fr.minutes(th, fixed=False))}"
        r = rows.get(key)
        if r is None:
            out.append(f"couverture: no row {key!r}")
            continue
        cells = [
            f"{_i(v['units_before'])} / {_i(v['units'])}",
            f"{_i(v['units_after'])} / {_i(v['units'])}",
            f"{_i(v['pop_before'])} ({_p(v['pct_pop_before'])})",
            f"{_i(v['pop_after'])} ({_p(v['pct_pop_after'])})",
            f"{_i(v['need_before'])} ({_p(v['pct_need_before'])})",
            f"{_i(v['need_after'])} ({_p(v['pct_need_after'])})",
        ]
        for col, (shown, w) in enumerate(zip(r[1:7], cells)):
            expect(f"couverture {key} column {col + 2}", shown, w)

    # posts
    tabs = _tables(report_html, "postes")
    body = [r for r in (tabs[0] if tabs else [])[1:] if r and "·" in r[0]]
    if len(body) != f["n_posts"]:
        out.append(f"postes: {len(body)} rows, GeoPackage has {f['n_posts']} posts")
    for i, (r, p) in enumerate(zip(body, f["posts"])):
        expect(f"postes row {i + 1} id", r[0], f"{i + 1} · {p['post_id']}")
        expect(f"postes {p['post_id']} commune", r[3], f"{p['commune']} ({p['insee']})")
        expect(f"postes {p['post_id']} population", r[5], _i(p["covered_population"]))
        expect(f"postes {p['post_id']} need", r[6], _i(p["covered_need"]))
        if p["kind"] == "fixed":
            expect(
                f"posts layer {p['post_id']} covered_population vs its newly covered units",
                _i(p["covered_population"]),
                _i(p["units_population"]),
            )
    fixed = [p for p in f["posts"] if p["kind"] == "fixed"]
    foot = [r for r in (tabs[0] if tabs else []) if r and r[0].startswith("Total")]
    if foot:
        expect("postes total", foot[0][1], _i(sum(p["covered_population"] for p in fixed)))
        expect(
            "postes total vs coverage gain",
            foot[0][1],
            _i(sum(p["units_population"] for p in fixed)),
        )

    # EPCI
    tabs = _tables(report_html, "epci")
    rows_e = {r[1]: r for r in (tabs[0] if tabs else []) if len(r) >= 9 and r[1].isdigit()}
    for e, v in f["epci"].items():
        r = rows_e.get(e)
        if r is None:
            out.append(f"epci: no row for SIREN {e}")
            continue
        for col, w in (
            (2, _i(v["communes"])),
            (3, _i(v["population"])),
            (4, _i(v["places"])),
            (5, _i(v["accompaniment"])),
            (6, _share(v["covered_before"], v["population"])),
            (7, _share(v["covered_after"], v["population"])),
            (8, _i(v["posts"])),
        ):
            expect(f"epci {e} column {col + 1}", r[col], w)
    total = [r for r in (tabs[0] if tabs else []) if r and r[0].startswith("Département")]
    if total:
        r = total[0]
        expect("epci total population", r[2], _i(f["population"]))
        expect("epci total covered before", r[5], _share(cov["pop_before"], f["population"]))
        expect("epci total covered after", r[6], _share(cov["pop_after"], f["population"]))
        expect("epci total posts", r[7], _i(f["n_posts"]))
        s_b = sum(v["covered_before"] for v in f["epci"].values())
        s_a = sum(v["covered_after"] for v in f["epci"].values())
        expect("sum of the EPCI rows, covered before", _i(s_b), _i(cov["pop_before"]))
        expect("sum of the EPCI rows, covered after", _i(s_a), _i(cov["pop_after"]))

    # gap communes
    gtext = _section_text(report_html, "zones-blanches")
    if f["gaps"]:
        wanted = f"{_i(len(f['gaps']))} communes ({_i(f['gap_population'])} habitants"
        if len(f["gaps"]) > 1 and wanted not in gtext:
            out.append(f"zones-blanches: {wanted!r} not found")
        tabs = _tables(report_html, "zones-blanches")
        body = [r for r in (tabs[0] if tabs else [])[1:] if r and r[0].isdigit()]
        if not body:
            out.append("zones-blanches: no table of gap communes")
        for r, g in zip(body, f["gaps"]):
            expect(f"zones-blanches rank {g['rank']}", r[0], _i(g["rank"]))
            expect(
                f"zones-blanches rank {g['rank']} commune",
                r[1].split("\n")[0].rsplit("(", 1)[-1].rstrip(")"),
                g["insee"],
            )
            expect(f"zones-blanches {g['insee']} population", r[2], _i(g["population"]))

    # priority communes
    tabs = _tables(report_html, "territoires-prioritaires")
    ptab = [t_ for t_ in tabs if t_ and t_[0] and t_[0][0] == "Rang"]
    if f["priority"] and not ptab:
        out.append("territoires-prioritaires: no table of priority communes")
    if ptab:
        body = [r for r in ptab[0][1:] if r and r[0].isdigit()]
        # the report numbers the priority communes 1, 2, 3… in their rank order
        for k, (r, g) in enumerate(zip(body, f["priority"]), start=1):
            expect(f"priorité rank {g['rank']}", r[0], _i(k))
            code = r[1].split("\n")[0].rsplit("(", 1)[-1].rstrip(")")
            expect(f"priorité rank {g['rank']} commune", code, g["insee"])

    # circuits
    if f["circuits"]:
        tabs = _tables(report_html, "circuits")
        rows_c = {r[0].split()[-1]: r for r in (tabs[0] if tabs else [])[1:] if r}
        for cid, v in f["circuits"].items():
            r = rows_c.get(cid)
            if r is None:
                out.append(f"circuits: no row for {cid}")
                continue
            for col, w in (
                (1, v["base"]),
                (2, _i(v["n_stops"])),
                (3, _i(v["visits"])),
                (4, _i(v["km_per_week"])),
                (5, _plain(_fr.hours(v["minutes_per_week"] / 60.0))),
                (6, _plain(_fr.hours(v["hours_at_stops"]))),
                (7, _i(v["population"])),
                (8, _i(v["need"])),
            ):
                expect(f"circuits {cid} column {col + 1}", r[col], w)
            expect(
                f"circuit {cid} hours at stops vs its timetable",
                _plain(_fr.hours(v["hours_at_stops"])),
                _plain(_fr.hours(v["timetable_hours"])),
            )
    return out


def summary_differences(figures: dict[str, Any], summary: str) -> list[str]:
    """Differences between the terminal summary of ``cnfs-geo plan`` and ``figures``."""
    f, out = figures, []
    text = _plain(summary)
    t = f["threshold"]
    cov = f["coverage"][t]
    wanted = [
        f"({_i(f['communes'])} communes, {_i(f['population'])} habitants)",
        f"offre existante : {_i(f['places'])} lieux, dont {_i(f['accompaniment_places'])} "
        "d'accompagnement",
        f"({_i(f['units'])} unités)",
        f"couverture à {t:g} min : population {_i(cov['pop_before'])} "
        f"({_p(cov['pct_pop_before'])}) → {_i(cov['pop_after'])} ({_p(cov['pct_pop_after'])})"
        f" ; communes {f['communes_covered_before']} → {f['communes_covered_after']}",
        f"population pondérée par le besoin couverte : {_p(cov['pct_need_before'])} → "
        f"{_p(cov['pct_need_after'])}",
        f"{f['n_posts']} nouveaux postes ({_i(f['cost_eur'])} €",
    ]
    if f["demand_unit"]:
        wanted.append(f"unités de demande : {_plain(f['demand_unit'])}")
    for w in wanted:
        if w not in text:
            out.append(f"summary: {w!r} not found")
    lines: dict[str, str] = {}
    for row in text.splitlines():  # the first line of a post (not its robustness line)
        if re.match(r"\s*P\d+\s", row) and "choisi à nouveau" not in row:
            lines.setdefault(row.split()[0], row)
    for p in f["posts"]:
        ln = lines.get(p["post_id"])
        if ln is None:
            out.append(f"summary: no line for post {p['post_id']}")
        elif not ln.endswith(f"+{_i(p['covered_population'])} hab.") or p["commune"][:32] not in ln:
            out.append(
                f"summary: post {p['post_id']} line {ln!r}, GeoPackage gives "
                f"{p['commune']} +{_i(p['covered_population'])} hab."
            )
    for cid, v in f["circuits"].items():
        base = _fr.of(v["base_nom"], "à")
        head = f"circuit {cid} basé {base} : {_plain(_fr.plural(v['n_stops'], 'arrêt'))}"
        tail = f"{_i(v['km_per_week'])} km/semaine, {_i(v['population'])} hab."
        if head not in text or tail not in text:
            out.append(f"summary: circuit {cid}: {head!r} … {tail!r} not found")
    return out


def check_outputs(out_dir: str | Path, *, summary: str | None = None) -> dict[str, Any]:
    """Check that ``rapport.html`` (and ``summary``, the text ``cnfs-geo plan`` printed)
    say what ``plan.gpkg`` says.

    Parameters
    ----------
    out_dir : path
        Output folder of :func:`cnfs_geo.outputs.write_outputs`.
    summary : str, optional
        The terminal summary to check as well.

    Returns
    -------
    dict
        The figures (:func:`figures_from_geopackage`).

    Raises
    ------
    ConsistencyError
        Every difference, one line each.
    """
    out = Path(out_dir)
    figures = figures_from_geopackage(out / "plan.gpkg")
    problems = report_differences(figures, (out / "rapport.html").read_text(encoding="utf-8"))
    if summary is not None:
        problems += summary_differences(figures, summary)
    if problems:
        raise ConsistencyError(str(out), problems)
    return figures
