"""Road travel times (cnfs_geo.roads: od_road, nearest_road, road_snap, loaders).

No OSM extract of Maine-et-Loire is available offline (SOURCES.md § 7), so these
tests run on ``tests/data/osm/mini_network.osm``, a HAND-MADE fictitious network
(see the comment at the top of that file for its drawing). Every expected time
below is computed by hand from the fixture's coordinates, independently of osmnx
and of the code under test; all OD times are also cross-checked against
networkx's Dijkstra on the same osmnx graph.

Hand computation
----------------
osmnx measures edges as great-circle distances on a sphere of radius
R = 6 371 009 m, so one degree is R·π/180 = 111 195.08 m and

* a north-south step of 0.009° is       L_NS = 0.009 × 111 195.08       = 1000.756 m
* an east-west step of 0.0133° at lat φ is L_EW(φ) = 0.0133 × 111 195.08 × cos φ:
  row 0 (47.400°): L0 = 1001.028 m; row 1 (47.409°): L1 = 1000.857 m;
  row 2 (47.418°): L2 = 1000.686 m; row 3 (47.427°): L3 = 1000.515 m.

Speeds in metres per minute: v(k) = k × 1000 / 60, so 80 → 1333.33, 50 → 833.33,
30 → 500, 20 → 333.33, 130 → 2166.67.

* 101→105 along the D1 (secondary, maxspeed 80): 4·L0/v80 = 4004.11/1333.33 = 3.003 min
* 303→302 on the Rue du Bourg (residential without maxspeed → fallback 30 km/h,
  not the 20 km/h of the other residential way): L2/v30 = 1000.69/500 = 2.001 min
* 303→103 down the one-way street (maxspeed 20): 2·L_NS/v20 = 2001.51/333.33 = 6.005 min
* 103→303 cannot take the one-way street upwards; the footway (col 1) and the
  private lane (col 3) are not drivable; best is 103→102→101 (2·L0/v80 = 1.502),
  up the tertiary col 0 (2·L_NS/v50 = 2.402), 301→302→303 (2·L2/v30 = 4.003):
  7.906 min (the mirror path by 105 and the unclassified col 4 at the fallback
  50 km/h ties exactly). Road km = (2·L0 + 2·L_NS + 2·L2)/1000 = 6.005 km.
  Via the motorway instead: 1.502 + 2.402 + (2·L_NS + 4·L3)/v130 (= 2.771) + 2·L2/v30
  (4.003) = 10.68 min, slower.
* 301→305 by the motorway (maxspeed 130) through 401..405: (2·L_NS + 4·L3)/v130
  = 6003.57/2166.67 = 2.771 min (residential row: 4·L2/v30 = 8.005 min; via the D1:
  2.402 + 3.003 + 2.402 = 7.807 min).
* 102→302: the footway would take 2·L_NS; by road 102→101 (L0/v80 = 0.751), up col 0
  (2.402), 301→302 (2.001) = 5.154 min.
* 901→902 on the isolated lane: L1/v30 = 2.002 min; 901 reaches nothing else.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest

osmnx = pytest.importorskip("osmnx")

from cnfs_geo import roads  # noqa: E402
from cnfs_geo._errors import DataFileError, ValidationError  # noqa: E402
from cnfs_geo.settings import Settings  # noqa: E402

FIXTURE = Path(__file__).parent / "data" / "osm" / "mini_network.osm"
CRS = "EPSG:2154"

# --- hand computation (see module docstring) -----------------------------------------
DEG = 6_371_009 * math.pi / 180
L_NS = 0.009 * DEG


def L_EW(row: int) -> float:
    return 0.0133 * DEG * math.cos(math.radians(47.4 + 0.009 * row))


L0, L1, L2, L3 = (L_EW(r) for r in range(4))


def v(kmh: float) -> float:
    """metres per minute"""
    return kmh * 1000 / 60


HAND = {
    ("101", "105"): 4 * L0 / v(80),
    ("303", "302"): L2 / v(30),
    ("303", "103"): 2 * L_NS / v(20),
    ("103", "303"): 2 * L0 / v(80) + 2 * L_NS / v(50) + 2 * L2 / v(30),
    ("301", "305"): (2 * L_NS + 4 * L3) / v(130),
    ("102", "302"): L0 / v(80) + 2 * L_NS / v(50) + L2 / v(30),
    ("901", "902"): L1 / v(30),
}
MOTORWAY_ONLY = {401, 402, 403, 404, 405}


@pytest.fixture(scope="module")
def graph():
    """The fixture graph with every connected piece (the isolated lane included)."""
    return roads.road_graph_from_xml(FIXTURE, crs=CRS, retain_all=True)


def node_points(G, nodes) -> pd.DataFrame:
    return pd.DataFrame(
        {"x": [G.nodes[n]["x"] for n in nodes], "y": [G.nodes[n]["y"] for n in nodes]},
        index=pd.Index([str(n) for n in nodes], name="id"),
    )


def snappable(G) -> list[int]:
    """Nodes a point lying exactly on them snaps to (not the motorway-only ones)."""
    return sorted(n for n in G.nodes if n not in MOTORWAY_ONLY)


# --- loading --------------------------------------------------------------------------


def test_loader_keeps_drivable_public_roads(graph):
    assert set(graph.nodes) == {
        101,
        102,
        103,
        104,
        105,
        201,
        203,
        205,
        301,
        302,
        303,
        304,
        305,
        401,
        402,
        403,
        404,
        405,
        901,
        902,
    }  # 202, 204 dropped
    highways = {d["highway"] for _, _, d in graph.edges(data=True)}
    assert "footway" not in highways
    assert not any(d.get("access") == "private" for _, _, d in graph.edges(data=True))
    # one-way street: only north to south
    assert graph.has_edge(303, 203) and graph.has_edge(203, 103)
    assert not graph.has_edge(203, 303) and not graph.has_edge(103, 203)
    assert graph.graph["crs"] == CRS
    assert "sha256" in graph.graph["cnfs_geo_source"]


def test_loader_default_keeps_largest_component():
    G = roads.road_graph_from_xml(FIXTURE, crs=CRS)
    assert 901 not in G and 902 not in G
    assert len(G) == 18


def test_speeds_from_maxspeed_then_highway_fallback(graph):
    speed = {(u, w): d["speed_kph"] for u, w, d in graph.edges(data=True)}
    assert speed[(101, 102)] == 80  # maxspeed tag
    assert speed[(303, 203)] == 20  # maxspeed tag
    assert speed[(301, 302)] == roads.ROAD_SPEEDS_KMH["residential"] == 30  # no tag
    assert speed[(105, 205)] == roads.ROAD_SPEEDS_KMH["unclassified"] == 50  # no tag
    tt = graph.edges[101, 102, 0]["travel_time"]
    assert tt == pytest.approx(L0 / (80 / 3.6), rel=1e-6)


def test_speed_override():
    G = roads.road_graph_from_xml(FIXTURE, crs=CRS, speeds={"residential": 15})
    assert G.edges[301, 302, 0]["speed_kph"] == 15
    assert G.edges[303, 203, 0]["speed_kph"] == 20  # a maxspeed tag still wins
    with pytest.raises(ValidationError, match="residential"):
        roads.road_graph_from_xml(FIXTURE, crs=CRS, speeds={"residential": 0})


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(DataFileError, match="not found"):
        roads.road_graph_from_xml(tmp_path / "absent.osm", crs=CRS)
    with pytest.raises(DataFileError, match="not found"):
        roads.road_graph_from_pbf(tmp_path / "absent.osm.pbf", crs=CRS)


def test_pbf_without_osmium_names_the_package(tmp_path, monkeypatch):
    pbf = tmp_path / "x.osm.pbf"
    pbf.write_bytes(b"not read")
    monkeypatch.setattr(roads.shutil, "which", lambda name: None)
    with pytest.raises(DataFileError, match="osmium-tool"):
        roads.road_graph_from_pbf(pbf, crs=CRS)


@pytest.mark.skipif(shutil.which("osmium") is None, reason="osmium-tool not installed")
def test_pbf_gives_the_same_graph_as_xml(tmp_path, graph):
    pbf = tmp_path / "mini_network.osm.pbf"
    subprocess.run(["osmium", "cat", str(FIXTURE), "-o", str(pbf)], check=True)
    G = roads.road_graph_from_pbf(pbf, crs=CRS, retain_all=True)
    edges = {(u, w): round(d["travel_time"], 9) for u, w, d in G.edges(data=True)}
    expected = {(u, w): round(d["travel_time"], 9) for u, w, d in graph.edges(data=True)}
    assert edges == expected
    assert G.graph["cnfs_geo_source"].startswith("mini_network.osm.pbf")


# --- OD table -------------------------------------------------------------------------


def test_hand_computed_times(graph):
    pts = node_points(graph, snappable(graph))
    od = roads.od_road(pts, pts, graph, max_minutes=np.inf).set_index(
        ["origin_id", "destination_id"]
    )
    for pair, minutes in HAND.items():
        assert od.loc[pair, "minutes"] == pytest.approx(minutes, rel=1e-6), pair
    assert od.loc[("103", "303"), "km"] == pytest.approx(
        (2 * L0 + 2 * L_NS + 2 * L2) / 1000, rel=1e-6
    )
    assert od.loc[("301", "305"), "km"] == pytest.approx((2 * L_NS + 4 * L3) / 1000, rel=1e-6)
    # the isolated lane is connected to nothing else
    assert (
        not od.reset_index()
        .query("origin_id == '901' and destination_id != '901' and destination_id != '902'")
        .shape[0]
    )
    assert ("101", "901") not in od.index


def test_contract_and_attrs(graph):
    pts = node_points(graph, snappable(graph))
    od = roads.od_road(pts, pts, graph, max_minutes=10)
    assert list(od.columns) == ["origin_id", "destination_id", "minutes", "km"]
    assert od.attrs["travel_model"] == "road (OSM)"
    assert "OpenStreetMap" in od.attrs["travel_model_label"]
    keys = list(zip(od["origin_id"], od["destination_id"]))
    assert keys == sorted(keys)
    assert all(isinstance(x, str) for x in od["origin_id"])


def test_prepared_network_gives_the_same_table(graph, tmp_path):
    pts = node_points(graph, snappable(graph))
    net = roads.road_network(graph)
    assert roads.road_network(net) is net
    assert net.n == len(graph) and net.crs == CRS
    assert not net.snap[np.searchsorted(net.nodes, sorted(MOTORWAY_ONLY))].any()
    direct = roads.od_road(pts, pts, graph, max_minutes=8)
    pd.testing.assert_frame_equal(roads.od_road(pts, pts, net, max_minutes=8), direct)
    pd.testing.assert_frame_equal(
        roads.nearest_road(pts, pts.iloc[:3], net), roads.nearest_road(pts, pts.iloc[:3], graph)
    )
    # same cache key whether given the graph or its conversion
    roads.od_road(pts, pts, graph, max_minutes=8, cache_dir=tmp_path)
    roads.od_road(pts, pts, net, max_minutes=8, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("od_road_*.parquet"))) == 1


def test_all_times_match_networkx(graph):
    nodes = snappable(graph)
    pts = node_points(graph, nodes)
    od = roads.od_road(pts, pts, graph, max_minutes=np.inf)
    got = {(o, d): (t, k) for o, d, t, k in od.itertuples(index=False)}
    expected = {}
    for o in nodes:
        lengths, paths = nx.single_source_dijkstra(graph, o, weight="travel_time")
        for d in nodes:
            if d in lengths:
                path = paths[d]
                km = (
                    sum(
                        min(graph[a][b].values(), key=lambda e: e["travel_time"])["length"]
                        for a, b in zip(path[:-1], path[1:])
                    )
                    / 1000
                )
                expected[(str(o), str(d))] = (lengths[d] / 60, km)
    assert got.keys() == expected.keys()
    for pair, (t, k) in expected.items():
        assert got[pair][0] == pytest.approx(t, rel=1e-9, abs=1e-12), pair
        assert got[pair][1] == pytest.approx(k, rel=1e-9, abs=1e-12), pair


def test_cutoff_is_respected(graph):
    nodes = snappable(graph)
    pts = node_points(graph, nodes)
    full = roads.od_road(pts, pts, graph, max_minutes=np.inf)
    cut = roads.od_road(pts, pts, graph, max_minutes=7.0)
    assert (cut["minutes"] <= 7.0).all()
    expected = full[full["minutes"] <= 7.0].reset_index(drop=True)
    pd.testing.assert_frame_equal(cut, expected)
    pairs = set(zip(cut["origin_id"], cut["destination_id"]))
    assert ("303", "103") in pairs  # 6.005 min down the one-way street
    assert ("103", "303") not in pairs  # 7.906 min back


def test_off_network_legs_added_at_both_ends(graph):
    a = node_points(graph, [101])
    e = node_points(graph, [105])
    origin = pd.DataFrame(
        {"x": a["x"].to_numpy() + 30, "y": a["y"].to_numpy() + 40}, index=["o"]
    )  # 50 m off
    dest = pd.DataFrame(
        {"x": e["x"].to_numpy(), "y": e["y"].to_numpy() - 100}, index=["d"]
    )  # 100 m off
    od = roads.od_road(origin, dest, graph, max_minutes=30)
    assert od["minutes"].iloc[0] == pytest.approx(
        HAND[("101", "105")] + 150 * 1.3 / v(20), rel=1e-6
    )
    assert od["km"].iloc[0] == pytest.approx((4 * L0 + 150 * 1.3) / 1000, rel=1e-6)
    # the leg speed and detour are options
    s = Settings(detour_factor=1.5)
    od2 = roads.od_road(origin, dest, graph, max_minutes=30, settings=s, off_network_kmh=15)
    assert od2["minutes"].iloc[0] == pytest.approx(
        HAND[("101", "105")] + 150 * 1.5 / v(15), rel=1e-6
    )
    # the cutoff counts the legs: network 3.003 + legs 0.585 min
    assert roads.od_road(origin, dest, graph, max_minutes=3.5).empty


def test_no_snapping_onto_the_motorway(graph):
    m = node_points(graph, [403])
    near = pd.DataFrame({"x": m["x"].to_numpy(), "y": m["y"].to_numpy() + 10}, index=["p"])
    snap = roads.road_snap(near, graph)
    assert snap.loc["p", "node"] == 303
    h = node_points(graph, [303])
    gap = math.hypot(near["x"].iloc[0] - h["x"].iloc[0], near["y"].iloc[0] - h["y"].iloc[0])
    assert snap.loc["p", "snap_m"] == pytest.approx(gap)
    assert gap > 1000
    od = roads.od_road(near, h, graph, max_minutes=30)
    assert od["minutes"].iloc[0] == pytest.approx(gap * 1.3 / v(20))


def test_nearest_road(graph):
    nodes = snappable(graph)
    pts = node_points(graph, nodes)
    dests = pts.loc[["101", "303", "902"]]
    near = roads.nearest_road(pts, dests, graph)
    od = roads.od_road(pts, dests, graph, max_minutes=np.inf)
    best = od.sort_values(["origin_id", "minutes"]).drop_duplicates("origin_id")
    best = best.set_index("origin_id")
    for o in pts.index:
        assert near.loc[o, "nearest_id"] == best.loc[o, "destination_id"], o
        assert near.loc[o, "minutes"] == pytest.approx(best.loc[o, "minutes"], abs=1e-9)
    assert near.loc["103", "nearest_id"] == "101"
    assert near.loc["103", "minutes"] == pytest.approx(2 * L0 / v(80), rel=1e-6)
    assert near.attrs["travel_model"] == "road (OSM)"
    # a cutoff leaves origins without nearest
    cut = roads.nearest_road(pts, dests, graph, max_minutes=1.0)
    assert cut.loc["103", "nearest_id"] is None and np.isinf(cut.loc["103", "minutes"])


def test_nearest_road_ties_and_unreachable(graph):
    pts = node_points(graph, [101, 901])
    twin = node_points(graph, [105])
    dests = pd.concat([twin.rename(index={"105": "z"}), twin.rename(index={"105": "a"})])
    near = roads.nearest_road(pts, dests, graph)
    assert near.loc["101", "nearest_id"] == "z"  # exact tie: first in index order
    assert near.loc["101", "minutes"] == pytest.approx(HAND[("101", "105")], rel=1e-6)
    assert roads.nearest_road(pts, dests.iloc[::-1], graph).loc["101", "nearest_id"] == "a"
    assert near.loc["901", "nearest_id"] is None
    assert np.isinf(near.loc["901", "minutes"])


def test_cache_hit_returns_identical_table(graph, tmp_path, monkeypatch):
    pytest.importorskip("pyarrow")
    pts = node_points(graph, snappable(graph))
    first = roads.od_road(pts, pts, graph, max_minutes=8, cache_dir=tmp_path)
    files = list(tmp_path.glob("od_road_*.parquet"))
    assert len(files) == 1

    def no_routing(*args, **kwargs):
        raise AssertionError("routing ran although the table is cached")

    monkeypatch.setattr(roads, "_od_core", no_routing)
    second = roads.od_road(pts, pts, graph, max_minutes=8, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(first, second)
    assert second.attrs == first.attrs
    # another cutoff is another key: it must route (and here fail loudly)
    with pytest.raises(AssertionError, match="routing ran"):
        roads.od_road(pts, pts, graph, max_minutes=9, cache_dir=tmp_path)
    # moving one point is another key too
    moved = pts.copy()
    moved.iloc[0, 0] += 1.0
    with pytest.raises(AssertionError, match="routing ran"):
        roads.od_road(moved, pts, graph, max_minutes=8, cache_dir=tmp_path)


def test_empty_inputs(graph):
    pts = node_points(graph, [101])
    od = roads.od_road(pts, pts.iloc[:0], graph, max_minutes=10)
    assert od.empty and list(od.columns) == ["origin_id", "destination_id", "minutes", "km"]
    assert od.attrs["travel_model"] == "road (OSM)"
    near = roads.nearest_road(pts, pts.iloc[:0], graph)
    assert near.loc["101", "nearest_id"] is None


# --- bad input ------------------------------------------------------------------------


def test_unprojected_graph_is_rejected():
    G = osmnx.graph_from_xml(FIXTURE, simplify=False, retain_all=True)
    roads.add_road_travel_times(G)
    pts = pd.DataFrame({"x": [0.5], "y": [47.4]}, index=["a"])
    with pytest.raises(ValidationError, match="project_graph"):
        roads.od_road(pts, pts, G, max_minutes=10)


def test_graph_without_travel_times_is_rejected():
    G = osmnx.projection.project_graph(
        osmnx.graph_from_xml(FIXTURE, simplify=False, retain_all=True), to_crs=CRS
    )
    pts = node_points(G, [101])
    with pytest.raises(ValidationError, match="add_road_travel_times"):
        roads.od_road(pts, pts, G, max_minutes=10)


def test_crs_mismatch_names_both(graph):
    pts = node_points(graph, [101])
    g = gpd.GeoDataFrame(pts, geometry=gpd.points_from_xy(pts["x"], pts["y"]), crs=CRS)
    wgs = g.to_crs("EPSG:4326")
    wgs["x"], wgs["y"] = wgs.geometry.x, wgs.geometry.y
    with pytest.raises(ValidationError, match="EPSG:4326.*EPSG:2154"):
        roads.od_road(wgs, g, graph, max_minutes=10)
    with pytest.raises(ValidationError, match="EPSG:2154"):
        roads.od_road(pts, pts, graph, max_minutes=10, crs="EPSG:3857")
    # the right CRS passes
    assert len(roads.od_road(g, g, graph, max_minutes=10)) == 1


def test_bad_points_and_options(graph):
    pts = node_points(graph, [101, 102])
    dup = pts.rename(index={"102": "101"})
    with pytest.raises(ValidationError, match="duplicated"):
        roads.od_road(dup, pts, graph, max_minutes=10)
    with pytest.raises(ValidationError, match="missing column 'lon'"):
        roads.od_road(pts, pts, graph, max_minutes=10, origin_xy=("lon", "y"))
    nan = pts.copy()
    nan.iloc[0, 0] = np.nan
    with pytest.raises(ValidationError, match="missing or infinite"):
        roads.od_road(pts, nan, graph, max_minutes=10)
    with pytest.raises(ValidationError, match="max_minutes"):
        roads.od_road(pts, pts, graph, max_minutes=-1)
    with pytest.raises(ValidationError, match="off_network_kmh"):
        roads.od_road(pts, pts, graph, max_minutes=10, off_network_kmh=0)


def test_far_points_are_logged(graph, caplog):
    pts = node_points(graph, [101])
    far = pd.DataFrame(
        {"x": pts["x"].to_numpy() + 5000, "y": pts["y"].to_numpy() - 5000}, index=["far"]
    )
    with caplog.at_level("WARNING", logger="cnfs_geo.roads"):
        roads.od_road(far, pts, graph, max_minutes=60)
    assert "more than 2000 m from the road graph" in caplog.text
    assert "far" in caplog.text
