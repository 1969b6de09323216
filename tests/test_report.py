"""Planning report (report.py) on real plans; outputs that combine map and report.

Plans are built from the embedded Maine-et-Loire bundle (8 fixed posts; 6 fixed + 2
itinerant posts; IRIS demand units) and, when ``CNFS_GEO_DATA_DIR`` is set, from the
national files for Corse-du-Sud (2A: no departmental file of lieux de médiation, EPCI
without a digital project). The HTML outputs are parsed back (stdlib ``html.parser`` and
``json``) and compared with the plans' own frames.
"""

from __future__ import annotations

import base64
import html
import re
import shutil

import numpy as np
import pytest
from _html_tables import fr_int, fr_pct, layer_keys, one_var, section_text, squash, tables

from cnfs_geo import _fr, _map_style, catalog, maps, offer, report
from cnfs_geo._errors import ValidationError
from cnfs_geo._plan_view import stop_label
from cnfs_geo.plan import Scenario, run


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def plan(plan49):
    """Maine-et-Loire, 8 fixed posts (the first demo)."""
    return plan49


@pytest.fixture(scope="module")
def map_html(map49_html):
    """maps.coverage_map(plan, path=...) read back (built once in conftest.map49_html)."""
    return map49_html


@pytest.fixture(scope="module")
def report_html(plan, tmp_path_factory):
    path = report.write_report(plan, tmp_path_factory.mktemp("report") / "rapport.html")
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def report_html_fresh(plan49_fresh, tmp_path_factory):
    """report.write_report of the same scenario run again from scratch (conftest
    ``plan49_fresh``) into a directory (which gets rapport.html), read back: the second
    build compared with :func:`report_html`."""
    path = report.write_report(plan49_fresh, tmp_path_factory.mktemp("report_fresh"))
    return path.read_text(encoding="utf-8")


def _pngs(page: str) -> dict[str, bytes]:
    """The report's inline PNG images by their alternative text."""
    found = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]*)"', page)
    return {alt: base64.b64decode(data) for alt, data in found}


def _png(page: str, alt_start: str) -> bytes:
    """The one inline PNG of ``page`` whose alternative text starts with ``alt_start``."""
    hits = [png for alt, png in _pngs(page).items() if alt.startswith(alt_start)]
    assert len(hits) == 1, alt_start
    return hits[0]


#: Alternative texts (their start) of the report's static maps (templates/rapport.html.j2)
ALT_MAP, ALT_PRIORITY, ALT_CIRCUITS = (
    "Carte du temps d'accès",
    "Carte du score de priorité",
    "Carte des circuits",
)


@pytest.fixture(scope="module")
def plan_itin(plan49_mixed):
    """Maine-et-Loire, 6 fixed + 2 itinerant posts (real circuits from cnfs_geo.itinerant)."""
    return plan49_mixed


@pytest.fixture(scope="module")
def report_html_itin(plan_itin, tmp_path_factory):
    path = report.write_report(plan_itin, tmp_path_factory.mktemp("report") / "rapport.html")
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def iris_plan(plan49_iris):
    """Maine-et-Loire, 8 fixed posts, IRIS demand units."""
    return plan49_iris


@pytest.fixture(scope="module")
def plan_2a(raw_dir):
    return run(Scenario(departement="2A", posts=4, data_dir=str(raw_dir)))


# ------------------------------------------------------------------ report (8 fixed posts)
def test_report_key_figures_match_the_summary(plan, report_html):
    s = plan.summary()
    text = html.unescape(report_html)
    assert "Maine-et-Loire (49)" in text
    for key in ("population_covered_before", "population_covered_after"):
        assert fr_int(s[key]) in text, key
    for key in (
        "pct_population_covered_before",
        "pct_population_covered_after",
        "pct_need_covered_before",
        "pct_need_covered_after",
    ):
        assert fr_pct(s[key]) in text, key
    assert f"{fr_int(s['communes_covered_before'])} → {fr_int(s['communes_covered_after'])}" in text
    assert fr_int(s["population"]) in text


def test_report_coverage_table_at_every_threshold(plan, report_html):
    rows = tables(report_html, "couverture")[0][2:]
    cb = plan.coverage_before.set_index("threshold_min")
    ca = plan.coverage_after.set_index("threshold_min")
    assert len(rows) == len(cb)
    for row, th in zip(rows, sorted(cb.index)):
        assert row[0].startswith(f"≤ {th:g}")
        assert row[1] == f"{fr_int(cb.at[th, 'units_covered'])} / {fr_int(cb.at[th, 'units'])}"
        assert row[2] == f"{fr_int(ca.at[th, 'units_covered'])} / {fr_int(ca.at[th, 'units'])}"
        assert row[4] == (
            f"{fr_int(ca.at[th, 'population_covered'])} "
            f"({fr_pct(ca.at[th, 'pct_population_covered'])})"
        )


def test_report_lists_every_post_and_the_cost(plan, report_html):
    text = html.unescape(report_html)
    body = tables(report_html, "postes")[0][1:-1]
    assert [r[1] for r in body] == list(plan.posts["host"])
    assert [r[3] for r in body] == [f"{r.commune} ({r.insee})" for r in plan.posts.itertuples()]
    cost = len(plan.posts) * plan.settings.cost_per_post_eur
    assert (
        f"{len(plan.posts)} × {fr_int(plan.settings.cost_per_post_eur)}\u00a0€ = "
        f"{fr_int(cost)}\u00a0€" in text
    )
    # newly covered population per post adds up to the coverage gain at the threshold
    s = plan.summary()
    total = sum(int(r[5].replace("\u202f", "")) for r in body)
    assert abs(total - (s["population_covered_after"] - s["population_covered_before"])) <= len(
        body
    )


def test_report_gap_communes_ranked_by_need(plan, report_html):
    rows = tables(report_html, "zones-blanches")[0][1:]
    gap = plan.communes[plan.communes["gap"]]
    assert len(rows) == min(report.TOP_GAPS, len(gap))
    expected = gap.sort_values("need", ascending=False).head(report.TOP_GAPS)
    assert [r[1].split("\n")[0] for r in rows] == [f"{n} ({i})" for i, n in expected["nom"].items()]
    for r, (_, c) in zip(rows, expected.iterrows()):
        assert r[6].startswith(f"{c['minutes_before']:.1f}".replace(".", ",") + "\u00a0min")


def test_report_epci_table(plan, report_html):
    rows = tables(report_html, "epci")[0]
    body, total = rows[1:-1], rows[-1]
    assert len(body) == len(plan.epci) == 10
    assert [r[1] for r in body] == list(plan.epci.index)
    c = plan.communes
    for r in body:
        members = c[c["epci"] == r[1]]
        assert r[2] == fr_int(len(members))
        assert r[3] == fr_int(members["population"].sum())
        assert r[8] == fr_int((plan.posts["epci"] == r[1]).sum())
    assert total[1] == fr_int(len(c)) and total[7] == fr_int(len(plan.posts))


def test_report_offer_sources_and_rejections(plan, report_html):
    text = html.unescape(report_html)
    rows = tables(report_html, "offre")[1][1:-1]
    counts = plan.offer_report.counts
    assert [r[0].split("\n")[-1] for r in rows] == list(counts["source"])
    for r, c in zip(rows, counts.itertuples()):
        assert r[1:] == [fr_int(c.read), fr_int(c.kept), fr_int(c.merged), fr_int(c.rejected)]
    # the offer module's English rule is not shown: its French wording, with the distance
    assert plan.offer_report.dedup_rule not in text
    assert _fr.DEDUP_RULE.format(d=fr_int(plan.settings.dedup_distance_m)) in text
    rej = plan.offer_report.rejected
    if len(rej) <= report.MAX_REJECTED_ROWS:
        for rid in rej["record_id"]:
            assert f"<td>{html.escape(str(rid))}</td>" in report_html


def test_report_sources_method_and_solver(plan, report_html):
    text = html.unescape(report_html)
    for p in catalog.provenance():
        assert p["title"] in text and p["vintage"] in text
    assert plan.travel_model in text
    assert "population × IFN / 10" in text
    # solver diagnostics: in the appendix, in plain French (no solver name, no model size)
    assert plan.solution["solver"] not in text and "HiGHS" not in text
    appendix = section_text(report_html, "annexe-calcul")
    assert "solution optimale prouvée" in appendix and "Écart à l'optimum" in appendix
    assert "couverture maximale (MCLP)" in text


def test_report_is_self_contained_rendered_and_deterministic(plan, report_html, report_html_fresh):
    assert "{{" not in report_html and "{%" not in report_html and "}}" not in report_html
    assert "data:image/png;base64," in report_html
    assert not re.search(r"<(script|link)\b[^>]*(src|href)=\"https?://", report_html)
    # a second build (write_report into a directory) of the same scenario gives the same file
    assert report_html_fresh == report_html
    png = _png(report_html, ALT_MAP)  # figures.static_map_png(plan), as embedded
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "data:image/png" not in report.render_report(plan, with_map=False)


def test_outputs_are_identical_for_a_fresh_run_of_the_same_scenario(
    plan49_fresh, map49_fresh_bytes, report_html_fresh, map_html, report_html
):
    # conftest ``plan49_fresh``: run(Scenario(departement="49", posts=8, data_dir=bundle))
    # without ``prepared``; its report and map built once (also compared by the
    # determinism tests of this module and of test_maps)
    fresh = plan49_fresh
    assert fresh.solution["time_s"] is not None  # wall-clock: must not leak into the report
    assert report_html_fresh == report_html
    assert map49_fresh_bytes.decode("utf-8") == map_html


def test_report_rejects_a_plan_without_the_threshold_row(plan):
    import dataclasses

    bad = dataclasses.replace(
        plan,
        coverage_after=plan.coverage_after[
            plan.coverage_after["threshold_min"] != plan.scenario.threshold
        ],
    )
    with pytest.raises(ValidationError, match="no row for the threshold"):
        report.write_report(bad, "/nonexistent/rapport.html")


# ------------------------------------------------------------------ report: itinerant, IRIS, 2A
def test_report_priority_method_and_clusters(plan_itin, report_html_itin):
    text = squash(section_text(report_html_itin, "territoires-prioritaires"))
    methods = plan_itin.gap_clusters.attrs["methods_fr"]
    for line in methods.splitlines():
        if line.strip():
            assert squash(line) in text, line
    cl = plan_itin.gap_clusters.sort_values("cluster_id")
    rows = tables(report_html_itin, "territoires-prioritaires")[0][1:]
    assert [r[0] for r in rows] == list(cl["cluster_id"])
    for row, c in zip(rows, cl.itertuples()):
        assert row[1] == f"{c.n_communes} : " + c.names.replace(";", ",")
        assert row[3] == fr_int(c.population) and row[4] == fr_int(c.need)
        assert row[7].startswith(c.nearest_place_name)


def test_report_priority_communes_with_reasons(plan_itin, report_html_itin):
    rows = tables(report_html_itin, "territoires-prioritaires")[1][1:]
    c = plan_itin.communes
    pg = c[c["priority_gap"]].sort_values("priority_rank").head(report.TOP_PRIORITY)
    assert len(rows) == len(pg) > 0
    for k, (row, (insee, r)) in enumerate(zip(rows, pg.iterrows())):
        assert row[0] == fr_int(k + 1)  # consecutive ranks among the priority communes
        assert row[1].split("\n")[0] == f"{r['nom']} ({insee})"
        assert row[3] == f"{r['priority_score']:.1f}".replace(".", ",")
        assert row[9] == r["gap_cluster"]
        assert row[10] == r["gap_reasons"]
    # ranks increase down the table
    ranks = [int(r[0].replace("\u202f", "")) for r in rows]
    assert ranks == sorted(ranks)


def test_report_communes_beyond_each_threshold(plan_itin, report_html_itin):
    rows = tables(report_html_itin, "territoires-prioritaires")[2][1:]
    gc = plan_itin.gap_communes
    ths = sorted(plan_itin.coverage_before["threshold_min"])
    assert len(rows) == len(ths)
    for row, th in zip(rows, ths):
        sub = gc[gc["threshold_min"] == th]
        assert row[0].startswith(f"> {th:g}")
        assert row[1] == fr_int(len(sub)) and row[2] == fr_int(sub["population"].sum())
        first = list(sub.sort_values("rank")["nom"].head(3))
        assert row[4] == (", ".join(first) or "—")


def test_report_says_no_epci_without_project_in_49(plan_itin, report_html_itin):
    text = squash(section_text(report_html_itin, "territoires-prioritaires"))
    assert "Aucun EPCI sans projet numérique dans ce département" in text
    assert "Critère : un EPCI est « sans projet numérique »" in text
    # one table less than with EPCI without project (clusters, communes, thresholds)
    assert len(tables(report_html_itin, "territoires-prioritaires")) == 3
    rows = tables(report_html_itin, "epci")[0][1:-1]
    assert all(r[9] == "oui" for r in rows) and len(rows) == len(plan_itin.epci)


def test_report_circuits_and_weekly_grids(plan_itin, report_html_itin):
    text = squash(section_text(report_html_itin, "circuits"))
    tabs = tables(report_html_itin, "circuits")
    summary = tabs[0][1:]
    circuits = plan_itin.circuits.sort_values("circuit_id")
    assert [r[0].split()[-1] for r in summary] == list(circuits["circuit_id"])
    names = plan_itin.units["nom"]  # stops are demand units
    tt = plan_itin.timetable
    for row, grid, c in zip(summary, tabs[1:], circuits.itertuples()):
        assert row[1] == f"{c.base_nom} ({c.base_insee})"
        assert row[4] == fr_int(c.km_per_week) and row[7] == fr_int(c.population)
        # each stop in tour order with the reason it is one (as in the timetable)
        why = tt.drop_duplicates("insee").set_index("insee")["reason"]
        stops = " → ".join(
            f"{k}. {stop_label(names[x], x)} — {why[x]}"
            for k, x in enumerate(c.stops.split(";"), start=1)
        )
        assert squash(f"{stops} → retour à la base") in text
        # day × half-day grid
        assert grid[0] == ["Planning", "lundi", "mardi", "mercredi", "jeudi", "vendredi"]
        assert [g[0] for g in grid[1:]] == ["matin", "après-midi"]
        sub = tt[tt["circuit_id"] == c.circuit_id]
        for v in sub.itertuples():
            cell = grid[1 + ["matin", "après-midi"].index(v.half_day)][1 + grid[0][1:].index(v.day)]
            assert cell.startswith(stop_label(v.nom, v.insee))
        free = sum(cell == "—" for g in grid[1:] for cell in g[1:])
        assert free == 10 - len(sub)


def test_report_posts_split_fixed_and_itinerant(plan_itin, report_html_itin):
    rows = tables(report_html_itin, "postes")[0]
    body, foot = rows[1:-2], rows[-2:]
    assert [r[1] for r in body] == list(plan_itin.posts["host"])
    itin = plan_itin.posts["kind"] == "itinerant"
    assert [("circuit" in r[2]) for r in body] == list(itin)
    s = plan_itin.summary()
    fixed_total = int(foot[0][1].replace("\u202f", ""))
    assert abs(
        fixed_total - (s["population_covered_after"] - s["population_covered_before"])
    ) <= int((~itin).sum())
    assert foot[1][1] == fr_int(plan_itin.posts.loc[itin, "covered_population"].sum())
    assert "dont 2 itinérants" in html.unescape(report_html_itin)


def test_report_is_deterministic(plan_itin, report_html_itin, tmp_path):
    again = report.write_report(plan_itin, tmp_path).read_text(encoding="utf-8")
    assert again == report_html_itin
    assert "{{" not in report_html_itin and "{%" not in report_html_itin
    # three inline PNG maps: before/after, priority, circuits
    assert report_html_itin.count("data:image/png;base64,") == 3
    # figures.priority_map_png and figures.circuits_map_png of plan_itin, as embedded by
    # each of the two builds
    assert _png(report_html_itin, ALT_PRIORITY)[:8] == b"\x89PNG\r\n\x1a\n"
    assert _png(again, ALT_CIRCUITS) == _png(report_html_itin, ALT_CIRCUITS)


def test_outputs_without_itinerant_posts(plan, map_html):
    p = plan  # Scenario(departement="49", posts=8): no itinerant post
    assert len(p.circuits) == 0
    text = report.render_report(p, with_map=False)
    assert "aucun poste itinérant" in section_text(text, "circuits")
    assert tables(text, "circuits") == []
    m = map_html  # maps.coverage_map(p) rendered (conftest ``map49_html``)
    assert _fr.LAYER_CIRCUITS not in layer_keys(m) and "circuits_data" not in m


def test_iris_outputs_name_the_demand_unit(iris_plan, outputs_of, tmp_path):
    p = iris_plan
    assert p.scenario.demand_unit == "iris" and len(p.units) > len(p.communes)
    # the report and map of the plan's outputs, written once per session (conftest
    # ``outputs_of``; test_consistency checks the same folder)
    text = (outputs_of(p) / "rapport.html").read_text(encoding="utf-8")
    plain = html.unescape(text)
    short = p.demand_unit.split(" : ")[0]
    assert f"unité de demande : {short}" in plain  # header
    assert p.demand_unit in plain  # coverage note and method
    head = tables(text, "couverture")[0]
    assert head[0][1] == "IRIS couverts"
    cb = p.coverage_before.set_index("threshold_min")
    for row, th in zip(head[2:], sorted(cb.index)):
        assert row[1] == f"{fr_int(cb.at[th, 'units_covered'])} / {fr_int(len(p.units))}"
    assert "IRIS couverts : " in plain  # key figure in units
    mh = (outputs_of(p) / "carte_couverture.html").read_text(encoding="utf-8")
    keys = layer_keys(mh)
    assert "Temps d'accès actuel, par IRIS" in keys
    assert "Temps d'accès avec les nouveaux postes, par IRIS" in keys
    feats = one_var(mh, "units_data")["features"]
    u = p.units
    assert sorted(f["id"] for f in feats) == sorted(u.index.astype(str))
    for f in feats:
        r = u.loc[f["id"]]
        kb = int(np.searchsorted(_map_style.MINUTE_BREAKS, r["minutes_before"], side="left"))
        ka = int(np.searchsorted(_map_style.MINUTE_BREAKS, r["minutes_after"], side="left"))
        assert f["properties"]["b"] == _map_style.MINUTE_COLOURS[kb]
        assert f["properties"]["a"] == _map_style.MINUTE_COLOURS[ka]
    assert f"unité de demande : {short}" in html.unescape(mh)
    assert len(mh.encode("utf-8")) < 1_500_000
    maps.coverage_map(p, path=tmp_path / "again.html")
    assert (tmp_path / "again.html").read_text(encoding="utf-8") == mh


def test_missing_national_file_is_named(tmp_path):
    """A copy of the real bundle without the data·inclusion file."""
    data = tmp_path / "data"
    shutil.copytree(catalog.bundle_dir(), data)
    (data / catalog.SOURCES["data_inclusion"].relpath).unlink()
    p = run(Scenario(departement="49", posts=2, data_dir=str(data)))
    st = dict(zip(p.offer_report.counts["source"], p.offer_report.counts["status"]))
    assert st["data_inclusion"] == "missing" and st["lieux_cd49_2022"] == "read"
    gaps = report.data_gaps(p)
    assert gaps == [
        "Fichier absent du répertoire de données, source non prise en "
        "compte : data·inclusion (data_inclusion)."
    ]
    text = html.unescape(report.render_report(p, with_map=False))
    assert gaps[0] in text and "Pas de fichier départemental" not in text


def test_2a_report_says_where_the_offer_comes_from(plan_2a):
    p = plan_2a
    st = dict(zip(p.offer_report.counts["source"], p.offer_report.counts["status"]))
    assert {st[k] for k in offer.LOCAL_SOURCES} == {"not applicable"}
    read = [
        k
        for k in ("france_services", "cnfs_permanences", "aidants_connect", "data_inclusion")
        if st[k] == "read"
    ]
    assert len(read) == 4  # premise of the sentence below
    text = report.render_report(p, with_map=False)
    plain = html.unescape(text)
    sentence = (
        "Pas de fichier départemental des lieux de médiation : l'offre provient de "
        "France Services, CNFS, Aidants Connect et data·inclusion."
    )
    assert sentence in section_text(text, "synthese") and sentence in section_text(text, "offre")
    assert "Sources absentes du répertoire de données" not in plain
    rows = tables(text, "offre")[1][1:-1]
    for r in rows:
        code = r[0].split("\n")[-1]
        assert ("non applicable" in r[0]) == (st[code] == "not applicable")


def test_2a_epci_without_project(plan_2a, tmp_path):
    p = plan_2a
    nop = p.epci_without_project
    assert len(nop) > 0
    text = report.render_report(p, with_map=False)
    tabs = tables(text, "territoires-prioritaires")
    rows = tabs[3][1:]
    assert [r[1] for r in rows] == list(nop.index)
    c = p.communes
    for r in rows:
        members = c[c["epci"] == r[1]]
        assert r[0] == nop.at[r[1], "nom"]
        assert r[2] == fr_int(len(members)) and r[3] == fr_int(members["population"].sum())
        assert r[6] == fr_int(nop.at[r[1], "n_france_services"])
    assert f"{len(nop)} EPCI sur {len(p.epci)} n'ont aucun projet numérique" in html.unescape(text)
    epci_rows = tables(text, "epci")[0][1:-1]
    assert {r[1] for r in epci_rows if r[9] == "non"} == set(nop.index)
    m = maps.render_html(maps.coverage_map(p))
    assert _fr.LAYER_NO_PROJECT in layer_keys(m)
    feats = one_var(m, "no_project_data")["features"]
    assert sorted(f["id"] for f in feats) == sorted(nop.index)
    assert "cgHatch(st.fillColor)" in m
    assert (
        "EPCI sans projet numérique (ni lieu de médiation ni conseiller numérique)"
        in html.unescape(m)
    )


def test_report_names_the_placement_model(plan49_equity, outputs_of):
    p = plan49_equity  # 8 fixed posts placed by the equity model (conftest, once per session)
    assert p.scenario.model == "equity" and p.scenario.p == 8
    # the report of the plan's outputs, written once per session (conftest ``outputs_of``;
    # test_consistency checks the same folder)
    page = (outputs_of(p) / "rapport.html").read_text(encoding="utf-8")
    text = squash(section_text(page, "methode"))
    assert "8 postes fixes sont placés par le modèle capacité / équité" in text
    assert "couverture maximale, MCLP" not in text


def test_gap_table_says_which_circuit_serves_a_commune(plan_itin, report_html_itin):
    c = plan_itin.communes
    served = c[c["gap"] & c["itinerant_circuit"].notna()]
    assert len(served), "the mixed 49 plan serves some uncovered communes by a circuit"
    text = section_text(report_html_itin, "zones-blanches")
    for _insee, r in served.iterrows():
        assert f"desservie par le circuit {r['itinerant_circuit']}" in text


def test_stops_are_named_with_codes_readers_know(cli49_mixed):
    """A circuit stop that is a whole-commune IRIS is shown with its commune's INSEE code
    (« Tuffalun (49003) », not « (490030000) ») in the report and on the map's stop
    markers, and the map's tour order names the stops instead of listing ids."""
    import re

    page = (cli49_mixed.out / "rapport.html").read_text(encoding="utf-8")
    assert re.findall(r"\(\d{5}0000\)", page) == []
    carte = (cli49_mixed.out / "carte_couverture.html").read_text(encoding="utf-8")
    stops = re.findall(r'"id": ?"I\d+:\d+", ?"properties": ?\{"t": ?\["([^"]+)"', carte)
    assert stops and not [t for t in stops if re.search(r"\(\d{5}0000\)", t)], stops
    tours = re.findall(r"ordre de la tourn\u00e9e</th><td>([^<]+)</td>", carte)
    assert tours and not [t for t in tours if re.search(r"\d{9}", t)], tours
