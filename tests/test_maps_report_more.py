"""Map and report: priority territories, EPCI without a digital project, demand units,
data gaps and itinerant circuits, on real plans.

Plans are built from the embedded Maine-et-Loire bundle (6 fixed + 2 itinerant posts;
IRIS demand units; 8 fixed posts) and, when ``CNFS_GEO_DATA_DIR`` is set, from the
national files for Corse-du-Sud (2A: no departmental file of lieux de médiation, EPCI
without a digital project). The HTML outputs are parsed back (stdlib ``html.parser``
and ``json``) and compared with the plans' own frames.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from cnfs_geo import catalog, maps, offer, report
from cnfs_geo._errors import ValidationError
from cnfs_geo.plan import Scenario, run

from _html_tables import tables


# ------------------------------------------------------------------ helpers (test-side)
def fr_int(x: float) -> str:
    return f"{int(round(float(x))):,}".replace(",", "\u202f")



def section_text(text: str, section: str) -> str:
    """Unescaped text of ``<section id=...>`` (tags removed)."""
    m = re.search(rf'<section id="{section}">(.*?)</section>', text, re.S)
    assert m, section
    return html.unescape(re.sub(r"<[^>]+>", " ", m.group(1)))


def squash(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def js_vars(text: str, prefix: str) -> dict[str, dict]:
    out = {}
    for name, body in re.findall(rf"var ({prefix}_\d+) = (\{{.*?\}});\n", text):
        out[name] = json.loads(body.replace("<\\/", "</"))
    return out


def one_var(text: str, prefix: str) -> dict:
    data = js_vars(text, prefix)
    assert len(data) == 1, (prefix, list(data))
    return next(iter(data.values()))


def layer_keys(text: str) -> list[str]:
    block = text[text.index("overlays :"):]
    block = block[:block.index("}")]
    return [json.loads(k) for k in re.findall(r'("(?:[^"\\]|\\.)*")\s*:', block)]


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def plan():
    """Maine-et-Loire, 6 fixed + 2 itinerant posts (real circuits from cnfs_geo.itinerant)."""
    return run(Scenario(departement="49", posts=6, itinerant_posts=2,
                        data_dir=str(catalog.bundle_dir())))


@pytest.fixture(scope="module")
def map_html(plan, tmp_path_factory):
    path = tmp_path_factory.mktemp("map") / "carte.html"
    maps.coverage_map(plan, path=path)
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def report_html(plan, tmp_path_factory):
    path = report.write_report(plan, tmp_path_factory.mktemp("report") / "rapport.html")
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def iris_plan():
    return run(Scenario(departement="49", posts=8, demand_unit="iris",
                        data_dir=str(catalog.bundle_dir())))


@pytest.fixture(scope="module")
def plan_2a(raw_dir):
    return run(Scenario(departement="2A", posts=4, data_dir=str(raw_dir)))


# ------------------------------------------------------------------ map: priority, clusters
def test_map_layers_follow_the_plan(plan, map_html):
    keys = layer_keys(map_html)
    assert keys == maps.layer_names(plan)
    assert maps.LAYER_PRIORITY in keys and maps.LAYER_CLUSTERS in keys
    assert maps.LAYER_CIRCUITS in keys
    # Maine-et-Loire: every EPCI has a lieu de médiation or a CNFS
    assert len(plan.epci_without_project) == 0
    assert maps.LAYER_NO_PROJECT not in keys
    assert not any(k.startswith(maps.LAYER_UNITS_BEFORE) for k in keys)  # commune units
    text = html.unescape(map_html)
    assert "Aucun EPCI sans projet numérique" in text
    assert "Score de priorité (0 à 100)" in text
    for label in maps.priority_class_labels():
        assert label in text
    assert "unité de demande : Communes (COG 2026)" in text


def test_map_priority_layer_colours_and_tooltips(plan, map_html):
    feats = one_var(map_html, "communes_data")["features"]
    c = plan.communes
    assert sorted(f["id"] for f in feats) == sorted(c.index)
    n_reasons = 0
    for f in feats:
        r = c.loc[f["id"]]
        p = f["properties"]
        k = int(np.searchsorted(maps.PRIORITY_BREAKS, r["priority_score"], side="left"))
        assert p["ps"] == maps.PRIORITY_COLOURS[k]
        assert p["pg"] == ("1" if r["priority_gap"] else "0")
        tip = p["p"]
        assert len(tip) == len(maps.PRIORITY_TIP_LABELS) + 1
        lab = dict(zip(maps.PRIORITY_TIP_LABELS, tip[1:]))
        assert lab["Rang"] == f"{fr_int(r['priority_rank'])} sur {fr_int(len(c))}"
        assert lab["Accessibilité (E2SFCA)"].startswith(
            f"{r['accessibility']:.2f}".replace(".", ",").rstrip("0").rstrip(","))
        if r["priority_gap"]:
            n_reasons += 1
            assert lab["Motifs"] == r["gap_reasons"] and r["gap_reasons"]
            assert lab["Territoire prioritaire"] == f"oui, zone {r['gap_cluster']}"
        else:
            assert lab["Motifs"] is None and lab["Territoire prioritaire"] == "non"
    assert n_reasons == int(c["priority_gap"].sum()) > 0


def test_map_clusters_cover_their_communes(plan, map_html):
    feats = one_var(map_html, "clusters_data")["features"]
    polys = {f["id"]: f for f in feats if f["geometry"]["type"] != "Point"}
    labels = [f for f in feats if f["geometry"]["type"] == "Point"]
    cl = plan.gap_clusters
    assert sorted(polys) == sorted(cl["cluster_id"]) and len(labels) == len(cl)
    c = plan.communes
    for r in cl.itertuples():
        geom = gpd.GeoSeries([shapely.geometry.shape(polys[r.cluster_id]["geometry"])],
                             crs="EPSG:4326").to_crs(c.crs).iloc[0]
        members = r.communes.split(";")
        # members = the communes flagged with this cluster id in plan.communes
        assert sorted(members) == sorted(c.index[c["gap_cluster"] == r.cluster_id])
        area = float(c.loc[members].geometry.area.sum())
        assert abs(geom.area - area) / area < 0.01
        for pt in c.loc[members].geometry.representative_point():
            assert geom.buffer(50).contains(pt)
        tip = polys[r.cluster_id]["properties"]["t"]
        assert tip[0] == f"Territoire prioritaire {r.cluster_id}"
        assert fr_int(r.population) in tip[3] and r.nearest_place_name in tip[7]
    for f in labels:
        assert f["properties"]["icon"].endswith(f'>{f["id"].split(":")[0]}</div>')


# ------------------------------------------------------------------ map: circuits
def test_map_circuits_follow_the_tour(plan, map_html):
    feats = one_var(map_html, "circuits_data")["features"]
    circuits = plan.circuits
    assert len(circuits) == 2
    lines = {f["id"]: f for f in feats if f["geometry"]["type"] == "LineString"}
    assert sorted(lines) == sorted(circuits["circuit_id"])
    tt = plan.timetable
    names = plan.communes["nom"]
    for r in circuits.itertuples():
        line = lines[r.circuit_id]
        assert len(line["geometry"]["coordinates"]) == len(r.geometry.coords)
        stops = r.stops.split(";")
        assert len(stops) == r.n_stops
        assert line["properties"]["t"][1] == f"{r.base_nom} ({r.base_insee})"
        assert line["properties"]["t"][2] == " → ".join(names[x] for x in stops) + \
            " → retour à la base"
        assert line["properties"]["t"][3] == f"{fr_int(r.km_per_week)}\u00a0km"
        pts = {f["id"]: f for f in feats if f["id"].startswith(f"{r.circuit_id}:")}
        for k, insee in enumerate(stops, start=1):
            p = pts[f"{r.circuit_id}:{k}"]["properties"]
            assert p["t"][0] == f"{names[insee]} ({insee})"
            assert p["l"] == maps.STOP_TIP_LABELS
            slots = tt[(tt["circuit_id"] == r.circuit_id) & (tt["insee"] == insee)]
            assert p["t"][4] == ", ".join(f"{d} {h}" for d, h in
                                          zip(slots["day"], slots["half_day"]))
            assert p["icon"].endswith(f">{k}</div>")
    # itinerant posts are drawn at the base, in their circuit's colour
    order = list(circuits.sort_values("circuit_id")["circuit_id"])
    for i, r in enumerate(plan.posts.itertuples()):
        marker = f"background:{maps.POST_COLOUR};" if r.kind == "fixed" else \
            f"background:{maps.circuit_colour(order.index(r.circuit_id))};"
        assert marker in map_html
    text = html.unescape(map_html)
    assert text.count("(itinérant, circuit ") == int((plan.posts["kind"] == "itinerant").sum())


def test_map_is_deterministic_and_small(plan, map_html, tmp_path):
    maps.coverage_map(plan, path=tmp_path)
    assert (tmp_path / maps.MAP_FILENAME).read_text(encoding="utf-8") == map_html
    assert not re.search(r"_[0-9a-f]{32}\b", map_html)
    assert len(map_html.encode("utf-8")) < 1_500_000


def test_map_rejects_a_plan_without_priority_columns(plan):
    bad = dataclasses.replace(plan, communes=plan.communes.drop(columns=["priority_score"]))
    with pytest.raises(ValidationError, match="priority_score"):
        maps.coverage_map(bad)
    bad = dataclasses.replace(plan, timetable=plan.timetable.drop(columns=["half_day"]))
    with pytest.raises(ValidationError, match="timetable: missing column 'half_day'"):
        maps.coverage_map(bad)


# ------------------------------------------------------------------ report: priority section
def test_report_priority_method_and_clusters(plan, report_html):
    text = squash(section_text(report_html, "territoires-prioritaires"))
    methods = plan.gap_clusters.attrs["methods_fr"]
    for line in methods.splitlines():
        if line.strip():
            assert squash(line) in text, line
    cl = plan.gap_clusters.sort_values("cluster_id")
    rows = tables(report_html, "territoires-prioritaires")[0][1:]
    assert [r[0] for r in rows] == list(cl["cluster_id"])
    for row, c in zip(rows, cl.itertuples()):
        assert row[1] == f"{c.n_communes} : " + c.names.replace(";", ",")
        assert row[3] == fr_int(c.population) and row[4] == fr_int(c.need)
        assert row[7].startswith(c.nearest_place_name)


def test_report_priority_communes_with_reasons(plan, report_html):
    rows = tables(report_html, "territoires-prioritaires")[1][1:]
    c = plan.communes
    pg = c[c["priority_gap"]].sort_values("priority_rank").head(report.TOP_PRIORITY)
    assert len(rows) == len(pg) > 0
    for row, (insee, r) in zip(rows, pg.iterrows()):
        assert row[0] == fr_int(r["priority_rank"])
        assert row[1].split("\n")[0] == f"{r['nom']} ({insee})"
        assert row[3] == f"{r['priority_score']:.1f}".replace(".", ",")
        assert row[9] == r["gap_cluster"]
        assert row[10] == r["gap_reasons"]
    # ranks increase down the table
    ranks = [int(r[0].replace("\u202f", "")) for r in rows]
    assert ranks == sorted(ranks)


def test_report_communes_beyond_each_threshold(plan, report_html):
    rows = tables(report_html, "territoires-prioritaires")[2][1:]
    gc = plan.gap_communes
    ths = sorted(plan.coverage_before["threshold_min"])
    assert len(rows) == len(ths)
    for row, th in zip(rows, ths):
        sub = gc[gc["threshold_min"] == th]
        assert row[0].startswith(f"> {th:g}")
        assert row[1] == fr_int(len(sub)) and row[2] == fr_int(sub["population"].sum())
        first = list(sub.sort_values("rank")["nom"].head(3))
        assert row[4] == (", ".join(first) or "—")


def test_report_says_no_epci_without_project_in_49(plan, report_html):
    text = squash(section_text(report_html, "territoires-prioritaires"))
    assert "Aucun EPCI sans projet numérique dans ce département" in text
    assert "Critère : un EPCI est « sans projet numérique »" in text
    # one table less than with EPCI without project (clusters, communes, thresholds)
    assert len(tables(report_html, "territoires-prioritaires")) == 3
    rows = tables(report_html, "epci")[0][1:-1]
    assert all(r[9] == "oui" for r in rows) and len(rows) == len(plan.epci)


# ------------------------------------------------------------------ report: circuits, posts
def test_report_circuits_and_weekly_grids(plan, report_html):
    text = squash(section_text(report_html, "circuits"))
    tabs = tables(report_html, "circuits")
    summary = tabs[0][1:]
    circuits = plan.circuits.sort_values("circuit_id")
    assert [r[0].split()[-1] for r in summary] == list(circuits["circuit_id"])
    names = plan.communes["nom"]
    tt = plan.timetable
    for row, grid, c in zip(summary, tabs[1:], circuits.itertuples()):
        assert row[1] == f"{c.base_nom} ({c.base_insee})"
        assert row[4] == fr_int(c.km_per_week) and row[7] == fr_int(c.population)
        stops = " → ".join(f"{k}. {names[x]} ({x})"
                           for k, x in enumerate(c.stops.split(";"), start=1))
        assert f"{stops} → retour à la base" in text
        # day × half-day grid
        assert grid[0] == ["Planning", "lundi", "mardi", "mercredi", "jeudi", "vendredi"]
        assert [g[0] for g in grid[1:]] == ["matin", "après-midi"]
        sub = tt[tt["circuit_id"] == c.circuit_id]
        for v in sub.itertuples():
            cell = grid[1 + ["matin", "après-midi"].index(v.half_day)][
                1 + grid[0][1:].index(v.day)]
            assert cell.startswith(f"{v.nom} ({v.insee})")
        free = sum(cell == "—" for g in grid[1:] for cell in g[1:])
        assert free == 10 - len(sub)


def test_report_posts_split_fixed_and_itinerant(plan, report_html):
    rows = tables(report_html, "postes")[0]
    body, foot = rows[1:-2], rows[-2:]
    assert [r[1] for r in body] == list(plan.posts["host"])
    itin = plan.posts["kind"] == "itinerant"
    assert [("circuit" in r[2]) for r in body] == list(itin)
    s = plan.summary()
    fixed_total = int(foot[0][1].replace("\u202f", ""))
    assert abs(fixed_total - (s["population_covered_after"] - s["population_covered_before"])) \
        <= int((~itin).sum())
    assert foot[1][1] == fr_int(plan.posts.loc[itin, "covered_population"].sum())
    assert "dont 2 itinérant(s)" in html.unescape(report_html)


def test_report_is_deterministic(plan, report_html, tmp_path):
    assert report.write_report(plan, tmp_path).read_text(encoding="utf-8") == report_html
    assert "{{" not in report_html and "{%" not in report_html
    # three inline PNG maps: before/after, priority, circuits
    assert report_html.count("data:image/png;base64,") == 3
    assert report.priority_map_png(plan)[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.circuits_map_png(plan) == report.circuits_map_png(plan)


def test_outputs_without_itinerant_posts(tmp_path):
    p = run(Scenario(departement="49", posts=8, data_dir=str(catalog.bundle_dir())))
    assert len(p.circuits) == 0
    text = report.render_report(p, with_map=False)
    assert "aucun poste itinérant" in section_text(text, "circuits")
    assert tables(text, "circuits") == []
    m = maps.render_html(maps.coverage_map(p))
    assert maps.LAYER_CIRCUITS not in layer_keys(m) and "circuits_data" not in m


# ------------------------------------------------------------------ demand units (IRIS)
def test_iris_outputs_name_the_demand_unit(iris_plan, tmp_path):
    p = iris_plan
    assert p.scenario.demand_unit == "iris" and len(p.units) > len(p.communes)
    text = report.render_report(p, with_map=False)
    plain = html.unescape(text)
    short = p.demand_unit.split(" : ")[0]
    assert f"unité de demande : {short}" in plain  # header
    assert p.demand_unit in plain                    # coverage note and method
    head = tables(text, "couverture")[0]
    assert head[0][1] == "IRIS couverts"
    cb = p.coverage_before.set_index("threshold_min")
    for row, th in zip(head[2:], sorted(cb.index)):
        assert row[1] == f"{fr_int(cb.at[th, 'units_covered'])} / {fr_int(len(p.units))}"
    assert "IRIS couverts : " in plain  # key figure in units
    m = tmp_path / "carte.html"
    maps.coverage_map(p, path=m)
    mh = m.read_text(encoding="utf-8")
    keys = layer_keys(mh)
    assert "Temps d'accès actuel, par IRIS" in keys
    assert "Temps d'accès avec les nouveaux postes, par IRIS" in keys
    feats = one_var(mh, "units_data")["features"]
    u = p.units
    assert sorted(f["id"] for f in feats) == sorted(u.index.astype(str))
    for f in feats:
        r = u.loc[f["id"]]
        kb = int(np.searchsorted(maps.MINUTE_BREAKS, r["minutes_before"], side="left"))
        ka = int(np.searchsorted(maps.MINUTE_BREAKS, r["minutes_after"], side="left"))
        assert f["properties"]["b"] == maps.MINUTE_COLOURS[kb]
        assert f["properties"]["a"] == maps.MINUTE_COLOURS[ka]
    assert f"unité de demande : {short}" in html.unescape(mh)
    assert len(mh.encode("utf-8")) < 1_500_000
    maps.coverage_map(p, path=tmp_path / "again.html")
    assert (tmp_path / "again.html").read_text(encoding="utf-8") == mh


# ------------------------------------------------------------------ data gaps
def test_missing_national_file_is_named(tmp_path):
    """A copy of the real bundle without the data·inclusion file."""
    data = tmp_path / "data"
    shutil.copytree(catalog.bundle_dir(), data)
    (data / catalog.SOURCES["data_inclusion"].relpath).unlink()
    p = run(Scenario(departement="49", posts=2, data_dir=str(data)))
    st = dict(zip(p.offer_report.counts["source"], p.offer_report.counts["status"]))
    assert st["data_inclusion"] == "missing" and st["lieux_cd49_2022"] == "read"
    gaps = report.data_gaps(p)
    assert gaps == ["Fichier(s) absent(s) du répertoire de données, source(s) non prise(s) en "
                    "compte : data·inclusion (data_inclusion)."]
    text = html.unescape(report.render_report(p, with_map=False))
    assert gaps[0] in text and "Pas de fichier départemental" not in text


def test_2a_report_says_where_the_offer_comes_from(plan_2a):
    p = plan_2a
    st = dict(zip(p.offer_report.counts["source"], p.offer_report.counts["status"]))
    assert {st[k] for k in offer.LOCAL_SOURCES} == {"not applicable"}
    read = [k for k in ("france_services", "cnfs_permanences", "aidants_connect",
                        "data_inclusion") if st[k] == "read"]
    assert len(read) == 4  # premise of the sentence below
    text = report.render_report(p, with_map=False)
    plain = html.unescape(text)
    sentence = ("Pas de fichier départemental des lieux de médiation : l'offre provient de "
                "France Services, CNFS, Aidants Connect et data·inclusion.")
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
    assert f"{len(nop)} EPCI sur {len(p.epci)} n'ont aucun projet numérique" in \
        html.unescape(text)
    epci_rows = tables(text, "epci")[0][1:-1]
    assert {r[1] for r in epci_rows if r[9] == "non"} == set(nop.index)
    m = maps.render_html(maps.coverage_map(p))
    assert maps.LAYER_NO_PROJECT in layer_keys(m)
    feats = one_var(m, "no_project_data")["features"]
    assert sorted(f["id"] for f in feats) == sorted(nop.index)
    assert "cgHatch(st.fillColor)" in m
    assert "EPCI sans projet numérique (ni lieu de médiation ni conseiller numérique)" in \
        html.unescape(m)


def test_report_names_the_placement_model():
    p = run(Scenario(departement="49", posts=4, model="equity",
                     data_dir=str(catalog.bundle_dir())))
    text = squash(section_text(report.render_report(p, with_map=False), "methode"))
    assert "4 postes fixes sont placés par le modèle capacité / équité" in text
    assert "couverture maximale, MCLP" not in text


def test_gap_table_says_which_circuit_serves_a_commune(plan, report_html):
    c = plan.communes
    served = c[c["gap"] & c["itinerant_circuit"].notna()]
    assert len(served), "the mixed 49 plan serves some uncovered communes by a circuit"
    text = section_text(report_html, "zones-blanches")
    for insee, r in served.iterrows():
        assert f"desservie par le circuit {r['itinerant_circuit']}" in text
