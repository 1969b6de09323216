"""Coverage map (maps.py) and planning report (report.py) on the real Maine-et-Loire plan.

The plan is built once per module from the embedded 49 bundle
(``Scenario(departement="49", posts=8)``). The HTML outputs are parsed back
(stdlib ``html.parser`` and ``json``) and compared with the plan's own frames.
"""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest

from cnfs_geo import catalog, maps, report
from cnfs_geo._errors import ValidationError
from cnfs_geo.plan import Scenario, run

from _html_tables import tables


# ------------------------------------------------------------------ helpers (test-side)
def fr_int(x: float) -> str:
    """French integer as the outputs print it: narrow no-break space every 3 digits."""
    return f"{int(round(float(x))):,}".replace(",", "\u202f")


def fr_pct(x: float) -> str:
    return f"{float(x):.1f}".replace(".", ",") + "\u00a0%"



def js_vars(text: str, prefix: str) -> dict[str, dict]:
    """JSON values of ``var <prefix>_NNNN = {...};`` lines in the map HTML."""
    out = {}
    for name, body in re.findall(rf"var ({prefix}_\d+) = (\{{.*?\}});\n", text):
        out[name] = json.loads(body.replace("<\\/", "</"))
    return out


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def plan():
    return run(Scenario(departement="49", posts=8, data_dir=str(catalog.bundle_dir())))


@pytest.fixture(scope="module")
def map_html(plan, tmp_path_factory):
    path = tmp_path_factory.mktemp("map") / "carte_couverture.html"
    maps.coverage_map(plan, path=path)
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def report_html(plan, tmp_path_factory):
    path = report.write_report(plan, tmp_path_factory.mktemp("report") / "rapport.html")
    return path.read_text(encoding="utf-8")


# ------------------------------------------------------------------ map
def test_map_has_every_layer_in_the_layer_control(plan, map_html):
    block = map_html[map_html.index("overlays :"):]
    block = block[:block.index("}")]
    keys = [json.loads(k) for k in re.findall(r'("(?:[^"\\]|\\.)*")\s*:', block)]
    assert keys == maps.layer_names(plan)
    assert "Temps d'accès avec les nouveaux postes" in keys
    assert "Lieux : France Services" in keys and "Nouveaux postes proposés" in keys


def test_map_legend_and_title_are_french(plan, map_html):
    text = html.unescape(map_html)
    for label in ["Légende", "Temps d'accès au lieu d'accompagnement le plus proche",
                  "Indice de fragilité numérique (0 à 10)", "toujours non couvertes",
                  "nouveau poste proposé (numéro)", "limite d'EPCI",
                  "cercle creux : accès seul, sans accompagnement",
                  *maps.minute_class_labels(), *maps.need_class_labels()]:
        assert label in text, label
    assert "Maine-et-Loire (49)" in text
    assert f"{len(plan.posts)} nouveaux postes proposés" in text


def test_map_draws_every_commune_with_its_classes(plan, map_html):
    data = js_vars(map_html, "communes_data")
    assert len(data) == 1
    feats = next(iter(data.values()))["features"]
    c = plan.communes
    assert sorted(f["id"] for f in feats) == sorted(c.index)
    for f in feats:
        row = c.loc[f["id"]]
        p = f["properties"]
        assert p["t"][0] == f"{row['nom']} ({f['id']})"
        assert p["gap"] == bool(row["gap"])
        # class = first break the time does not exceed (≤ 5, 5–10, …, > 20)
        k_before = int(np.searchsorted(maps.MINUTE_BREAKS, row["minutes_before"], side="left"))
        k_after = int(np.searchsorted(maps.MINUTE_BREAKS, row["minutes_after"], side="left"))
        assert p["b"] == maps.MINUTE_COLOURS[k_before]
        assert p["a"] == maps.MINUTE_COLOURS[k_after]
        assert len(p["t"]) == len(maps.COMMUNE_TIP_LABELS) + 1
    # tooltips carry French time labels
    assert any("min" in f["properties"]["t"][3] for f in feats)
    # coordinates are rounded to at most 5 decimals
    assert not re.search(r"\d\.\d{6,}", json.dumps([f["geometry"] for f in feats]))


def test_map_draws_every_place_once_with_its_service_level(plan, map_html):
    layers = js_vars(map_html, "places_data")
    assert len(layers) == len(maps.KIND_LABELS)
    seen = {}
    for fc in layers.values():
        for f in fc["features"]:
            assert f["id"] not in seen
            seen[f["id"]] = f["properties"]
    pl = plan.places.set_index(plan.places["place_id"].astype(str))
    assert sorted(seen) == sorted(pl.index)
    for pid, p in seen.items():
        assert p["s"] == int(pl.at[pid, "service_level"] == "accompaniment")
        assert p["t"][3] == maps.SERVICE_LABELS[pl.at[pid, "service_level"]]


def test_map_marks_every_post(plan, map_html):
    text = html.unescape(map_html)
    assert len(re.findall(r"var marker_\d+ = L\.marker", map_html)) == len(plan.posts)
    for r in plan.posts.itertuples():
        assert r.host in text
        assert f"{r.commune} ({r.insee})" in text
    assert text.count("Nouveau poste n°") == len(plan.posts)


def test_map_epci_outlines(plan, map_html):
    data = js_vars(map_html, "epci_data")
    feats = next(iter(data.values()))["features"]
    assert sorted(f["id"] for f in feats) == sorted(plan.epci.index)
    names = {f["id"]: f["properties"]["t"][0] for f in feats}
    assert names == {k: v for k, v in plan.epci["nom"].items()}


def test_map_bytes_are_deterministic(plan, tmp_path, map_html):
    maps.coverage_map(plan, path=tmp_path)  # a directory gets carte_couverture.html
    again = (tmp_path / maps.MAP_FILENAME).read_bytes()
    assert again == map_html.encode("utf-8")
    # no random 32-hex element id left by folium/branca
    assert not re.search(r"_[0-9a-f]{32}\b", map_html)
    assert len(again) < 1_500_000


def test_simplification_needs_a_projected_crs(plan):
    with pytest.raises(ValidationError, match="projected CRS"):
        maps.simplified_communes(plan.communes.to_crs("EPSG:4326"))


def test_simplified_communes_keep_shared_borders(plan):
    g = maps.simplified_communes(plan.communes).to_crs(plan.communes.crs)
    # coverage simplification: no overlaps appear and the total area barely moves
    area_before = float(plan.communes.geometry.area.sum())
    assert abs(float(g.area.sum()) - area_before) / area_before < 0.002
    assert float(g.union_all().area) == pytest.approx(float(g.area.sum()), rel=1e-4)


# ------------------------------------------------------------------ report
def test_report_key_figures_match_the_summary(plan, report_html):
    s = plan.summary()
    text = html.unescape(report_html)
    assert "Maine-et-Loire (49)" in text
    for key in ("population_covered_before", "population_covered_after"):
        assert fr_int(s[key]) in text, key
    for key in ("pct_population_covered_before", "pct_population_covered_after",
                "pct_need_covered_before", "pct_need_covered_after"):
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
        assert row[4] == (f"{fr_int(ca.at[th, 'population_covered'])} "
                          f"({fr_pct(ca.at[th, 'pct_population_covered'])})")


def test_report_lists_every_post_and_the_cost(plan, report_html):
    text = html.unescape(report_html)
    body = tables(report_html, "postes")[0][1:-1]
    assert [r[1] for r in body] == list(plan.posts["host"])
    assert [r[3] for r in body] == [f"{r.commune} ({r.insee})" for r in plan.posts.itertuples()]
    cost = len(plan.posts) * plan.settings.cost_per_post_eur
    assert f"{len(plan.posts)} × {fr_int(plan.settings.cost_per_post_eur)}\u00a0€ = " \
           f"{fr_int(cost)}\u00a0€" in text
    # newly covered population per post adds up to the coverage gain at the threshold
    s = plan.summary()
    total = sum(int(r[5].replace("\u202f", "")) for r in body)
    assert abs(total - (s["population_covered_after"] - s["population_covered_before"])) <= len(body)


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
    assert plan.offer_report.dedup_rule in text
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
    assert plan.solution["solver"] in text
    assert "couverture maximale (MCLP)" in text


def test_report_is_self_contained_rendered_and_deterministic(plan, report_html, tmp_path):
    assert "{{" not in report_html and "{%" not in report_html and "}}" not in report_html
    assert "data:image/png;base64," in report_html
    assert not re.search(r"<(script|link)\b[^>]*(src|href)=\"https?://", report_html)
    assert report.write_report(plan, tmp_path).read_text(encoding="utf-8") == report_html
    png = report.static_map_png(plan)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "data:image/png" not in report.render_report(plan, with_map=False)


def test_outputs_are_identical_for_a_fresh_run_of_the_same_scenario(plan, map_html,
                                                                   report_html, tmp_path):
    fresh = run(Scenario(departement="49", posts=8, data_dir=str(catalog.bundle_dir())))
    assert fresh.solution["time_s"] is not None  # wall-clock: must not leak into the report
    assert report.render_report(fresh) == report_html
    maps.coverage_map(fresh, path=tmp_path / "m.html")
    assert (tmp_path / "m.html").read_text(encoding="utf-8") == map_html


def test_report_rejects_a_plan_without_the_threshold_row(plan):
    import dataclasses

    bad = dataclasses.replace(plan, coverage_after=plan.coverage_after[
        plan.coverage_after["threshold_min"] != plan.scenario.threshold])
    with pytest.raises(ValidationError, match="no row for the threshold"):
        report.write_report(bad, "/nonexistent/rapport.html")
