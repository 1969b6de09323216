"""Coverage map (maps.py) on real Maine-et-Loire plans.

Plans are built once per module from the embedded 49 bundle (8 fixed posts; 6 fixed + 2
itinerant posts). The HTML is parsed back (``json``, regular expressions) and compared
with the plans' own frames.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re

import geopandas as gpd
import numpy as np
import pytest
import shapely
from _html_tables import fr_int, js_vars, layer_keys, one_var

from cnfs_geo import _fr, _map_style, maps
from cnfs_geo._errors import ValidationError


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
def plan_itin(plan49_mixed):
    """Maine-et-Loire, 6 fixed + 2 itinerant posts (real circuits from cnfs_geo.itinerant)."""
    return plan49_mixed


@pytest.fixture(scope="module")
def map_html_itin(plan_itin, tmp_path_factory):
    path = tmp_path_factory.mktemp("map") / "carte.html"
    maps.coverage_map(plan_itin, path=path)
    return path.read_text(encoding="utf-8")


# ------------------------------------------------------------------ map (8 fixed posts)
def test_map_has_every_layer_in_the_layer_control(plan, map_html):
    block = map_html[map_html.index("overlays :") :]
    block = block[: block.index("}")]
    keys = [json.loads(k) for k in re.findall(r'("(?:[^"\\]|\\.)*")\s*:', block)]
    assert keys == maps.layer_names(plan)
    assert "Temps d'accès avec les nouveaux postes" in keys
    assert "Lieux : France Services" in keys and "Nouveaux postes proposés" in keys


def test_map_legend_and_title_are_french(plan, map_html):
    text = html.unescape(map_html)
    for label in [
        "Légende",
        "Temps d'accès au lieu d'accompagnement le plus proche",
        "Indice de fragilité numérique (0 à 10)",
        "toujours non couvertes",
        "nouveau poste proposé (numéro)",
        "limite d'EPCI",
        "cercle creux : accès seul, sans accompagnement",
        *_map_style.minute_class_labels(),
        *_map_style.need_class_labels(),
    ]:
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
        k_before = int(
            np.searchsorted(_map_style.MINUTE_BREAKS, row["minutes_before"], side="left")
        )
        k_after = int(np.searchsorted(_map_style.MINUTE_BREAKS, row["minutes_after"], side="left"))
        assert p["b"] == _map_style.MINUTE_COLOURS[k_before]
        assert p["a"] == _map_style.MINUTE_COLOURS[k_after]
        assert len(p["t"]) == len(_fr.COMMUNE_TIP_LABELS) + 1
    # tooltips carry French time labels
    assert any("min" in f["properties"]["t"][3] for f in feats)
    # coordinates are rounded to at most 5 decimals
    assert not re.search(r"\d\.\d{6,}", json.dumps([f["geometry"] for f in feats]))


def test_map_draws_every_place_once_with_its_service_level(plan, map_html):
    layers = js_vars(map_html, "places_data")
    assert len(layers) == len(_fr.KIND_LABELS)
    seen = {}
    for fc in layers.values():
        for f in fc["features"]:
            assert f["id"] not in seen
            seen[f["id"]] = f["properties"]
    pl = plan.places.set_index(plan.places["place_id"].astype(str))
    assert sorted(seen) == sorted(pl.index)
    for pid, p in seen.items():
        assert p["s"] == int(pl.at[pid, "service_level"] == "accompaniment")
        assert p["t"][3] == _fr.SERVICE_LABELS[pl.at[pid, "service_level"]]


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


def test_map_bytes_are_deterministic(map49_fresh_bytes, map_html):
    # a second build: the map of the same scenario run again from scratch, written into a
    # directory (which gets carte_couverture.html; conftest ``map49_fresh_bytes``, also
    # compared by test_report)
    again = map49_fresh_bytes
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


# ------------------------------------------------------------------ map: 6 fixed + 2 itinerant
def test_map_layers_follow_the_plan(plan_itin, map_html_itin):
    keys = layer_keys(map_html_itin)
    assert keys == maps.layer_names(plan_itin)
    assert _fr.LAYER_PRIORITY in keys and _fr.LAYER_CLUSTERS in keys
    assert _fr.LAYER_CIRCUITS in keys
    # Maine-et-Loire: every EPCI has a lieu de médiation or a CNFS
    assert len(plan_itin.epci_without_project) == 0
    assert _fr.LAYER_NO_PROJECT not in keys
    # the default demand units are finer than communes (issue 9): their layers are drawn
    assert any(k.startswith(_fr.LAYER_UNITS_BEFORE) for k in keys)
    text = html.unescape(map_html_itin)
    assert "Aucun EPCI sans projet numérique" in text
    assert "Score de priorité (0 à 100)" in text
    for label in _map_style.priority_class_labels():
        assert label in text
    assert "unité de demande : Unités les plus fines disponibles" in text


def test_map_priority_layer_colours_and_tooltips(plan_itin, map_html_itin):
    feats = one_var(map_html_itin, "communes_data")["features"]
    c = plan_itin.communes
    assert sorted(f["id"] for f in feats) == sorted(c.index)
    n_reasons = 0
    for f in feats:
        r = c.loc[f["id"]]
        p = f["properties"]
        k = int(np.searchsorted(_map_style.PRIORITY_BREAKS, r["priority_score"], side="left"))
        assert p["ps"] == _map_style.PRIORITY_COLOURS[k]
        assert p["pg"] == ("1" if r["priority_gap"] else "0")
        tip = p["p"]
        assert len(tip) == len(_fr.PRIORITY_TIP_LABELS) + 1
        lab = dict(zip(_fr.PRIORITY_TIP_LABELS, tip[1:]))
        assert lab["Rang"] == f"{fr_int(r['priority_rank'])} sur {fr_int(len(c))}"
        assert lab["Accessibilité (E2SFCA)"].startswith(
            f"{r['accessibility']:.2f}".replace(".", ",").rstrip("0").rstrip(",")
        )
        if r["priority_gap"]:
            n_reasons += 1
            assert lab["Motifs"] == r["gap_reasons"] and r["gap_reasons"]
            assert lab["Territoire prioritaire"] == f"oui, zone {r['gap_cluster']}"
        else:
            assert lab["Motifs"] is None and lab["Territoire prioritaire"] == "non"
    assert n_reasons == int(c["priority_gap"].sum()) > 0


def test_map_clusters_cover_their_communes(plan_itin, map_html_itin):
    feats = one_var(map_html_itin, "clusters_data")["features"]
    polys = {f["id"]: f for f in feats if f["geometry"]["type"] != "Point"}
    labels = [f for f in feats if f["geometry"]["type"] == "Point"]
    cl = plan_itin.gap_clusters
    assert sorted(polys) == sorted(cl["cluster_id"]) and len(labels) == len(cl)
    c = plan_itin.communes
    for r in cl.itertuples():
        geom = (
            gpd.GeoSeries(
                [shapely.geometry.shape(polys[r.cluster_id]["geometry"])], crs="EPSG:4326"
            )
            .to_crs(c.crs)
            .iloc[0]
        )
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
        assert f["properties"]["icon"].endswith(f">{f['id'].split(':')[0]}</div>")


def test_map_circuits_follow_the_tour(plan_itin, map_html_itin):
    feats = one_var(map_html_itin, "circuits_data")["features"]
    circuits = plan_itin.circuits
    assert len(circuits) == 2
    lines = {f["id"]: f for f in feats if f["geometry"]["type"] == "LineString"}
    assert sorted(lines) == sorted(circuits["circuit_id"])
    tt = plan_itin.timetable
    names = plan_itin.units["nom"]  # stops are demand units (IRIS or communes)
    for r in circuits.itertuples():
        line = lines[r.circuit_id]
        assert len(line["geometry"]["coordinates"]) == len(r.geometry.coords)
        stops = r.stops.split(";")
        assert len(stops) == r.n_stops
        assert line["properties"]["t"][1] == f"{r.base_nom} ({r.base_insee})"
        assert (
            line["properties"]["t"][2]
            == " → ".join(names[x] for x in stops) + " → retour à la base"
        )
        assert line["properties"]["t"][3] == f"{fr_int(r.km_per_week)}\u00a0km"
        pts = {f["id"]: f for f in feats if f["id"].startswith(f"{r.circuit_id}:")}
        for k, insee in enumerate(stops, start=1):
            p = pts[f"{r.circuit_id}:{k}"]["properties"]
            # a whole-commune IRIS (code ending 0000) is named with its commune's code
            code = insee[:5] if len(insee) == 9 and insee.endswith("0000") else insee
            assert p["t"][0] == f"{names[insee]} ({code})"
            assert p["l"] == _fr.STOP_TIP_LABELS
            slots = tt[(tt["circuit_id"] == r.circuit_id) & (tt["insee"] == insee)]
            assert p["t"][4] == ", ".join(
                f"{d} {h}" for d, h in zip(slots["day"], slots["half_day"])
            )
            assert p["icon"].endswith(f">{k}</div>")
    # itinerant posts are drawn at the base, in their circuit's colour
    order = list(circuits.sort_values("circuit_id")["circuit_id"])
    for r in plan_itin.posts.itertuples():
        marker = (
            f"background:{_map_style.POST_COLOUR};"
            if r.kind == "fixed"
            else f"background:{_map_style.circuit_colour(order.index(r.circuit_id))};"
        )
        assert marker in map_html_itin
    text = html.unescape(map_html_itin)
    assert text.count("(itinérant, circuit ") == int((plan_itin.posts["kind"] == "itinerant").sum())


def test_map_is_deterministic_and_small(plan_itin, map_html_itin, tmp_path):
    maps.coverage_map(plan_itin, path=tmp_path)
    assert (tmp_path / maps.MAP_FILENAME).read_text(encoding="utf-8") == map_html_itin
    assert not re.search(r"_[0-9a-f]{32}\b", map_html_itin)
    assert len(map_html_itin.encode("utf-8")) < 1_500_000


def test_map_rejects_a_plan_without_priority_columns(plan_itin):
    bad = dataclasses.replace(
        plan_itin, communes=plan_itin.communes.drop(columns=["priority_score"])
    )
    with pytest.raises(ValidationError, match="priority_score"):
        maps.coverage_map(bad)
    bad = dataclasses.replace(plan_itin, timetable=plan_itin.timetable.drop(columns=["half_day"]))
    with pytest.raises(ValidationError, match="timetable: missing column 'half_day'"):
        maps.coverage_map(bad)


def test_map_is_self_contained_with_base_maps_off(map_html):
    """Leaflet is inlined (no <script src>, no <link>), no CDN library is left, the page
    is in French, and the three base layers exist with "no base map" checked."""
    assert map_html.startswith('<!DOCTYPE html>\n<html lang="fr">')
    assert not re.search(r"<script[^>]+src=", map_html)
    assert not re.search(r"<link[^>]+stylesheet", map_html)
    for gone in ("jquery", "bootstrap", "fontawesome", "awesome-markers", "jsdelivr", "cdnjs"):
        assert gone not in map_html.lower()
    assert "Leaflet 1.9.4" in map_html and "L.Icon.Default.mergeOptions" in map_html
    block = map_html[map_html.index("base_layers :") :]
    block = block[: block.index("}")]
    keys = [json.loads(k) for k in re.findall(r'("(?:[^"\\]|\\.)*")\s*:', block)]
    assert keys == maps.base_layer_names()
    # tile layers are defined but not added to the map; attribution of each source
    assert maps.OSM_TILES in map_html and "PLANIGNV2" in map_html
    assert len(re.findall(r"L\.tileLayer\(", map_html)) == 2
    assert not re.search(r"tile_layer_\d+\.addTo", map_html)
    assert json.dumps(_fr.ATTRIBUTION_OSM)[1:-1].replace("'", "\\u0027") in map_html
    assert json.dumps(_fr.ATTRIBUTION_IGN)[1:-1] in map_html
    assert _fr.BASEMAP_UNAVAILABLE in html.unescape(map_html)


@pytest.mark.parametrize(
    "text",
    ["", "\n", "plain", "var x = 1;\n", "a\r\nb\rc\n\n", "obj = {a: {b: 1}};\n  ", "{ {x} }"],
)
def test_rendered_macro_text_is_what_jinja_gives(text):
    """Hand-made texts: the map's own elements add their rendered text without compiling it
    again, and get what branca's Element(text) (a jinja2 template) renders."""
    from branca.element import Element

    assert maps._text_element(text).render() == Element(text).render()
    assert isinstance(maps._text_element(text), maps._Text)


def test_rendered_macro_text_with_template_syntax_still_goes_through_jinja():
    """Hand-made text with jinja syntax: compiled as branca does."""
    el = maps._text_element("{{ 1 + 1 }} {# c #}{% if true %}y{% endif %}")
    assert not isinstance(el, maps._Text)
    assert el.render() == "2 y"


def test_map_geometry_json_is_shapely_mapping(plan):
    """Ring coordinates read in one go give the JSON of shapely's mapping (real simplified
    communes of 49, a hand-made polygon with a hole, a multipolygon and a point)."""
    geoms = list(maps.simplified_communes(plan.communes))
    square = shapely.Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (2, 1), (2, 2)]])
    geoms += [square, shapely.MultiPolygon([square, shapely.box(5, 5, 6, 6)]), shapely.Point(1, 2)]
    for g in geoms:
        assert json.dumps(maps._geometry(g)) == json.dumps(shapely.geometry.mapping(g))
