"""A plan on data fetched from the official-format FIXTURES (tests/official_fixtures.py) equals
a plan on the same data read through today's readers (pinned layout), for a département
other than 49; and the outputs name every source with its vintage and retrieval date."""

from __future__ import annotations

import html
import json
import sqlite3

import geopandas as gpd
import numpy as np
import pytest
from official_fixtures import FixtureServer, build, pinned_subset

from cnfs_geo import catalog, fetch, report
from cnfs_geo.outputs import write_outputs
from cnfs_geo.plan import Scenario, run

DEP = "53"


@pytest.fixture(scope="module")
def folders(raw_dir, tmp_path_factory):
    """(tmp, fetched folder, pinned folder) for DEP."""
    tmp = tmp_path_factory.mktemp("fetch_plan")
    fixtures = build(raw_dir, [DEP], tmp / "official")
    with FixtureServer(fixtures) as srv:
        fetch.fetch_official([DEP], tmp / "fetched", base_url=srv.url, backoff=0.01)
    return tmp, tmp / "fetched", pinned_subset(raw_dir, tmp / "pinned")


@pytest.fixture(scope="module")
def both_plans(folders):
    # one point per commune on both sides: the readers are compared (the finest units are
    # compared by the tests of `finest_plans`)
    tmp, fetched, pinned = folders
    official = run(Scenario(departement=DEP, data_dir=fetched, demand_unit="commune"))
    today = run(Scenario(departement=DEP, data_dir=pinned, demand_unit="commune"))
    return official, today, tmp


@pytest.fixture(scope="module")
def finest_plans(folders):
    """The default plan (finest demand units) on the fetched and on the pinned folder."""
    _, fetched, pinned = folders
    official = run(Scenario(departement=DEP, data_dir=fetched))
    today = run(Scenario(departement=DEP, data_dir=pinned))
    return official, today


def test_same_communes(both_plans):
    official, today, _ = both_plans
    a, b = official.communes, today.communes
    assert a.index.tolist() == b.index.tolist() and len(a) == 240
    for col in ("nom", "population", "epci", "departement"):
        assert a[col].tolist() == b[col].tolist(), col
    # contours: same polygons (a round trip through WGS 84 in the fixture)
    assert np.allclose(a.geometry.area, b.geometry.area, rtol=1e-6)
    assert np.allclose(a["chef_lieu_x"], b["chef_lieu_x"], atol=0.01)


def _same_coverage_and_posts(official, today):
    """The two plans cover the same people and communes and place the same posts."""
    sa, sb = official.summary(), today.summary()
    for k in (
        "population_covered_before",
        "population_covered_after",
        "communes_covered_before",
        "communes_covered_after",
        "pct_need_covered_before",
        "pct_need_covered_after",
    ):
        assert sa[k] == pytest.approx(sb[k]), k
    assert official.posts["insee"].tolist() == today.posts["insee"].tolist()


def test_same_places_and_coverage(both_plans):
    official, today, _ = both_plans
    pa, pb = official.places, today.places
    assert pa["place_id"].tolist() == pb["place_id"].tolist() and len(pa) == 31
    assert pa["kinds"].tolist() == pb["kinds"].tolist()
    assert pa["service_level"].tolist() == pb["service_level"].tolist()
    assert np.allclose(pa.geometry.x, pb.geometry.x) and np.allclose(pa.geometry.y, pb.geometry.y)
    _same_coverage_and_posts(official, today)


def test_outputs_name_sources_with_vintage_and_retrieval(both_plans):
    official, _, tmp = both_plans
    paths = write_outputs(official, tmp / "out")
    lock = catalog.read_lock(tmp / "fetched")
    prov = catalog.data_provenance(official.data_dir)
    assert {r["key"] for r in prov} == {
        "geo_api",
        "lieux_inclusion",
        "france_services",
        "arcep_mci",
        "ifn_communes",
    }
    with sqlite3.connect(paths["geopackage"]) as db:
        rows = dict(db.execute("select key, value from scenario where key like 'source.%'"))
    assert len(rows) == 5
    assert all(f"récupéré le {lock['retrieved']}" in v for v in rows.values())
    report_text = html.unescape(paths["report"].read_text(encoding="utf-8"))
    map_text = html.unescape(paths["map"].read_text(encoding="utf-8"))
    assert "Sources :" in map_text
    # the report says where the offer comes from, and does not call CNFS/Aidants Connect missing
    gaps = report.data_gaps(official)
    assert any("viennent de la Cartographie nationale" in g for g in gaps)
    assert any(g.startswith("CNFS et Aidants Connect : pas de fichier séparé") for g in gaps)
    assert not any("absent" in g for g in gaps) and "incomplète" not in " ".join(gaps)
    for r in prov:
        vintage = f"{r['vintage']}, récupéré le {r['retrieved']}"
        assert r["title"] in report_text and vintage in report_text, r["key"]
        assert f"{r['title']} ({vintage})" in map_text, r["key"]


def test_arrondissements_municipaux_same_places(raw_dir, tmp_path):
    """Marseille: records coded by arrondissement (132xx) land in 13055 as with the COG."""
    from cnfs_geo import offer, territory

    fixtures = build(raw_dir, ["13"], tmp_path / "official")
    with FixtureServer(fixtures) as srv:
        fetch.fetch_official(["13"], tmp_path / "fetched", base_url=srv.url, backoff=0.01)
        assert srv.hits["/geo/communes"] == 2  # communes, then arrondissements municipaux
    got = []
    for d in (tmp_path / "fetched", pinned_subset(raw_dir, tmp_path / "pinned")):
        dd = catalog.resolve_data_dir(d)
        places, _ = offer.places_from_sources(territory.communes_from_cog("13", dd), dd)
        got.append(places)
    a, b = got
    assert a["place_id"].tolist() == b["place_id"].tolist() and len(a) == 109
    assert a["insee"].tolist() == b["insee"].tolist() and "13055" in set(a["insee"])


#: Communes déléguées / associées of 53 the fixture serves without ``contour``: their
#: territory is no COG 2018 polygon of its own (communes nouvelles created before 2018,
#: a commune associée). The real API gives them a contour (IGN layer
#: COMMUNE_ASSOCIEE_OU_DELEGUEE): on real data the fetched finest units are then finer than
#: the pinned ones for these 8 communes (documented in docs/methods_demand.md).
NO_2018_POLYGON = {
    "53004": "53124", "53017": "53017", "53032": "53228", "53044": "53118", "53050": "53255",
    "53095": "53017", "53124": "53124", "53137": "53137", "53161": "53161", "53185": "53185",
    "53194": "53137", "53205": "53161", "53228": "53228", "53252": "53185", "53255": "53255",
}  # fmt: skip


def test_finest_units_same_as_pinned(finest_plans, folders):
    """Fetched 53 with the default finest units = pinned 53 with the finest units: same
    units (codes, kinds, populations to 1/100 of an inhabitant, points within 1 m, point
    basis); the one documented difference is the name of 53161, the remainder of Montsûrs
    (its déléguées Montsûrs and Saint-Céneré have no contour in the fixture), named after
    them instead of the 2018 name."""
    official, today = finest_plans
    a, b = official.units, today.units
    assert a.attrs["demand_unit_key"] == b.attrs["demand_unit_key"] == "finest"
    assert a.index.tolist() == b.index.tolist() and len(a) == 254
    assert a["unit_type"].value_counts().to_dict() == {"commune": 233, "commune2018": 21}
    assert a["unit_type"].tolist() == b["unit_type"].tolist()
    assert a["insee"].tolist() == b["insee"].tolist()
    assert np.abs(a["population"] - b["population"]).max() < 0.01
    assert np.abs(a["need"] - b["need"]).max() < 0.01
    assert np.hypot(a["x"] - b["x"], a["y"] - b["y"]).max() < 1.0
    assert a["point_basis"].tolist() == b["point_basis"].tolist()
    names = {
        u: (a.at[u, "nom"], b.at[u, "nom"]) for u in a.index if a.at[u, "nom"] != b.at[u, "nom"]
    }
    assert names == {"53161": ("Montsûrs et Saint-Céneré", "Montsûrs-Saint-Céneré")}
    # the labels say where the units come from
    assert "COG en vigueur" in a.attrs["demand_unit"]
    assert "communes de 2018" in b.attrs["demand_unit"]
    # the fetched folder holds them, recorded in the lock like every fetched file
    _, fetched, _ = folders
    lock = catalog.read_lock(fetched)
    e = lock["files"][fetch.unit_polygons_key(DEP)]
    assert e["file"] == fetch.unit_polygons_file(DEP) and e["source"] == "geo_api"
    assert e["vintage"] == "COG en vigueur (20 communes déléguées ou associées avec contour)"
    assert e["sha256"] == catalog.file_sha256(fetched / e["file"])
    pieces = gpd.read_file(fetched / e["file"])
    assert pieces["type"].value_counts().to_dict() == {
        "commune-actuelle": 233,
        "commune-deleguee": 20,
        "reste": 1,
    }
    served = json.loads((folders[0] / "official" / "geo" / f"deleguees_{DEP}.json").read_text())
    assert {r["code"]: r["chefLieu"] for r in served if "contour" not in r} == NO_2018_POLYGON


def test_finest_coverage_and_posts_same_as_pinned(finest_plans):
    official, today = finest_plans
    _same_coverage_and_posts(official, today)
    assert len(official.posts) == 8
    # finer than the commune points: the units differ from the commune plan's
    assert len(official.units) > len(official.communes)


def test_finest_units_49_remainders(raw_dir, tmp_path):
    """49 exercises the remainder rules on real contours: Les Hauts-d'Anjou (49080) has a
    contour for its déléguée Châteauneuf-sur-Sarthe only (the 2018 polygon 49065 is the
    2017 commune nouvelle of the 7 others): the rest is one unit, coded by the first of
    those 7 (49051) instead of 49065 and named after them; Ingrandes-le-Fresne-sur-Loire
    (49160) is split into Saint-Sigismond and the rest, named after the commune (current
    name). Otherwise the same 183 units, populations and points as the pinned 49 without
    IRIS file."""
    from cnfs_geo import demand, need, territory

    fixtures = build(raw_dir, ["49"], tmp_path / "official")
    with FixtureServer(fixtures) as srv:
        fetch.fetch_official(["49"], tmp_path / "fetched", base_url=srv.url, backoff=0.01)
    got = []
    for d in (tmp_path / "fetched", pinned_subset(raw_dir, tmp_path / "pinned")):
        dd = catalog.resolve_data_dir(d)
        communes, _ = need.need_from_sources(territory.communes_from_cog("49", dd), dd)
        got.append(demand.demand_units(communes, dd, unit="finest"))
    a, b = got
    assert len(a) == len(b) == 183
    assert sorted(set(a.index) ^ set(b.index)) == ["49051", "49065"]
    a = a.rename(index={"49051": "49065"}).sort_index()
    b = b.sort_index()
    assert a["unit_type"].tolist() == b["unit_type"].tolist()
    assert np.abs(a["population"] - b["population"]).max() < 0.01
    assert np.hypot(a["x"] - b["x"], a["y"] - b["y"]).max() < 1.0
    assert a["point_basis"].tolist() == b["point_basis"].tolist()
    names = {
        u: (a.at[u, "nom"], b.at[u, "nom"]) for u in a.index if a.at[u, "nom"] != b.at[u, "nom"]
    }
    assert names == {
        "49065": (
            "Brissarthe, Champigné, Cherré, Contigné, Marigné, Querré et Sœurdres",
            "Hauts d'Anjou",
        ),
        "49160": ("Ingrandes-le-Fresne-sur-Loire", "Ingrandes-Le Fresne sur Loire"),
    }
