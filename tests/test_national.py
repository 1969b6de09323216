"""All of France: national budget shared by uncovered need, one plan per département, serial
or as tasks on a local Dask cluster (identical bytes), failures reported per département."""

import filecmp
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from cnfs_geo import cli, roads
from cnfs_geo._errors import DataFileError, ValidationError
from cnfs_geo.national import (
    COMMUNE_COLUMNS,
    allocate_posts,
    national,
    osm_for_departement,
    read_inputs,
    write_national,
)
from cnfs_geo.plan import Scenario, prepare

FIXTURE_OSM = Path(__file__).parent / "data" / "osm" / "mini_network.osm"


def test_allocate_posts_by_need():
    need = pd.Series({"01": 50.0, "02": 30.0, "2A": 20.0, "974": 0.0})
    a = allocate_posts(need, 10)
    assert a.to_dict() == {"01": 5, "02": 3, "2A": 2, "974": 0}
    # largest remainders: 7 × (0.5, 0.3, 0.2) = 3.5, 2.1, 1.4 → 3+1, 2, 1
    assert allocate_posts(need, 7).to_dict() == {"01": 4, "02": 2, "2A": 1, "974": 0}
    capped = allocate_posts(need, 10, cap=pd.Series({"01": 2, "02": 10, "2A": 10, "974": 0}))
    assert capped.sum() == 10 and capped["01"] == 2 and capped["974"] == 0
    assert capped["02"] > capped["2A"]
    assert allocate_posts(need, 50, cap=pd.Series({"01": 1, "02": 1, "2A": 1, "974": 1})).sum() == 4


def test_national_inputs_give_the_same_frames_as_the_files(raw_dir):
    """The national frames read once give exactly what prepare reads from the files."""
    inputs = read_inputs(raw_dir)
    assert "49" in inputs.departements and "2A" in inputs.departements
    from cnfs_geo._runtime import python_strings
    from cnfs_geo.national import first_pass

    sc = Scenario(departement="2A", posts=0, data_dir=str(raw_dir))
    once = first_pass("2A", sc, inputs)
    with python_strings():  # the string storage of national work (dtypes compared too)
        files = prepare(sc)
    pd.testing.assert_frame_equal(once.communes, files.communes)
    pd.testing.assert_frame_equal(once.places, files.places)
    pd.testing.assert_frame_equal(once.epci, files.epci)
    pd.testing.assert_frame_equal(once.od, files.od)


@pytest.mark.parametrize("dep", ["2A", "75", "974"])
def test_offer_frames_cut_per_departement_give_the_same_places(raw_dir, dep):
    """The national offer frames cut per département (keys parsed once) give exactly the
    places and offer report of the whole national frames (Corsica, Paris and its
    arrondissements, an overseas département), and cut most rows away."""
    import pickle

    from cnfs_geo import catalog, offer, territory
    from cnfs_geo.sources import polygons

    inputs = read_inputs(raw_dir)
    d = catalog.resolve_data_dir(raw_dir)
    communes, _ = territory.communes_from_frames(
        inputs.cog,
        polygons.departement_polygons(dep, d),
        inputs.epci_members,
        departement=dep,
        codes=inputs.code_table,
        chef_lieux=territory.chef_lieu_from_frame(inputs.datasfun, dep, inputs.code_map),
    )
    frames = {k: v for k, v in inputs.offer_frames.items() if k not in offer.LOCAL_SOURCES}
    kw = {"cog_records": inputs.cog_records, "code_map": inputs.code_map}
    full = offer.places_from_frames(communes, frames, **kw)
    cut = offer.departement_frames(frames, inputs.offer_index, communes)
    assert sum(map(len, cut.values())) < sum(map(len, frames.values())) / 5
    again = offer.places_from_frames(
        communes, cut, in_file={k: len(v) for k, v in frames.items()}, **kw
    )
    assert len(full[0]) > 0
    pd.testing.assert_frame_equal(full[0], again[0])
    assert pickle.dumps(full[1]) == pickle.dumps(again[1])


def _data_with_broken_departement(raw_dir: Path, tmp: Path, dep: str) -> Path:
    """A copy of the national data directory (symlinks) where ``dep``'s commune polygons
    are a broken file (read before the national archive)."""
    data = tmp / "data"
    for sub in raw_dir.iterdir():
        if sub.is_dir():
            (data / sub.name).mkdir(parents=True)
            for f in sub.iterdir():
                (data / sub.name / f.name).symlink_to(f)
        else:
            (data / sub.name).parent.mkdir(parents=True, exist_ok=True)
            (data / sub.name).symlink_to(sub)
    bad = data / "communes" / f"communes-{dep}-test_adminexpress-cog2018.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    return data


def test_serial_and_dask_outputs_are_byte_identical_and_failures_reported(raw_dir, tmp_path):
    """2 Dask workers vs in-process: every output file byte-identical, the failing
    département (broken polygons, hand-made) reported in both while the others complete."""
    pytest.importorskip("distributed")
    data = _data_with_broken_departement(raw_dir, tmp_path, "2B")
    deps = ["2A", "2B", "90"]
    sc = Scenario(data_dir=str(data))
    inputs = read_inputs(data)  # read once, shared by both runs (scattered to the workers)
    kw = {"total_posts": 12, "departements": deps, "inputs": inputs}
    serial = national(sc, out_dir=tmp_path / "s", workers=1, **kw)
    write_national(serial, tmp_path / "s")
    dask = national(sc, out_dir=tmp_path / "d", workers=2, **kw)
    write_national(dask, tmp_path / "d")
    assert dask.workers == 2 and serial.workers == 1
    assert list(serial.failures) == list(dask.failures) == ["2B"]
    # the reason, as raised in the task: the file and what is wrong with it, in French
    reason = serial.failures["2B"]
    assert "communes-2B-test_adminexpress-cog2018.geojson" in reason
    assert "JSON tronqué" in reason and "correction" in reason
    assert list(serial.table["departement"]) == ["2A", "90"]
    assert serial.table["posts"].sum() == 12
    cmp = filecmp.dircmp(tmp_path / "s", tmp_path / "d")
    assert sorted(cmp.common) == sorted(
        ["2A", "90", "synthese_nationale.csv", "communes_france.parquet"]
    )
    names = ["synthese_nationale.csv", "communes_france.parquet"] + [
        f"{d}/{n}"
        for d in ("2A", "90")
        for n in ("plan.gpkg", "carte_couverture.html", "rapport.html")
    ]
    for name in names:
        assert (tmp_path / "s" / name).read_bytes() == (tmp_path / "d" / name).read_bytes(), name
    # the national GeoParquet: every commune of the départements planned, posts included
    g = gpd.read_parquet(tmp_path / "s" / "communes_france.parquet")
    assert list(g.columns) == list(COMMUNE_COLUMNS) + ["geometry"]
    assert g.crs.to_epsg() == 4326
    assert len(g) == serial.table["communes"].sum()
    assert g["new_posts"].sum() == serial.table["posts"].sum()
    assert g["insee"].is_monotonic_increasing and g["insee"].is_unique
    assert (g["pct_covered_after"] >= g["pct_covered_before"]).all()


def test_cli_list_of_departements_exit_code_on_failure(raw_dir, tmp_path, capsys):
    data = _data_with_broken_departement(raw_dir, tmp_path, "2A")
    out = tmp_path / "out"
    rc = cli.main(
        ["plan", "-d", "2A,90", "--posts", "3", "--workers", "1", "--data-dir", str(data)]
        + ["--out", str(out)]
    )
    assert rc == 3
    captured = capsys.readouterr()
    assert "1 département en échec" in captured.err and "2A :" in captured.err
    assert "Traceback" not in captured.err
    assert "cnfs-geo plan — 1 département," in captured.out
    table = pd.read_csv(out / "synthese_nationale.csv", dtype={"departement": str})
    assert list(table["departement"]) == ["90"] and table["posts"].sum() == 3
    assert (out / "90" / "rapport.html").exists() and not (out / "2A").exists()
    assert not (out / "90" / "rapport.pdf").exists()  # national runs: PDF only with --pdf


def test_missing_dask_is_a_french_message(raw_dir, monkeypatch, tmp_path, capsys):
    import builtins

    real = builtins.__import__

    def no_dask(name, *a, **k):
        if name.startswith("dask") or name.startswith("distributed"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    rc = cli.main(
        [
            "plan",
            "-d",
            "90,2A",
            "--workers",
            "2",
            "--data-dir",
            str(raw_dir),
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "pip install 'cnfs_geo[dask]'" in err and "--workers 1" in err
    assert "Traceback" not in err


def test_osm_extract_per_departement(tmp_path):
    (tmp_path / "49-maine-et-loire.osm.pbf").write_bytes(b"")
    (tmp_path / "2A.osm").write_bytes(b"")
    (tmp_path / "2.osm").write_bytes(b"")
    assert osm_for_departement(tmp_path, "49").endswith("49-maine-et-loire.osm.pbf")
    assert osm_for_departement(tmp_path, "2A").endswith("2A.osm")
    assert osm_for_departement("ex/{dep}.osm.pbf", "974") == "ex/974.osm.pbf"
    assert osm_for_departement("pays-de-la-loire.osm.pbf", "49") == "pays-de-la-loire.osm.pbf"
    with pytest.raises(DataFileError, match="no OSM extract for département 44"):
        osm_for_departement(tmp_path, "44")


def test_clip_road_graph_keeps_the_buffered_area():
    pytest.importorskip("osmnx")
    from shapely.geometry import box

    G = roads.road_graph_from_xml(FIXTURE_OSM, crs="EPSG:2154")
    xs = np.array([d["x"] for _, d in G.nodes(data=True)])
    ys = np.array([d["y"] for _, d in G.nodes(data=True)])
    area = box(xs.min() - 1, ys.min() - 1, np.median(xs), ys.max() + 1)
    clipped = roads.clip_road_graph(G, area)
    assert 0 < len(clipped) < len(G)
    assert all(d["x"] <= np.median(xs) for _, d in clipped.nodes(data=True))
    assert "clipped to the area" in clipped.graph["cnfs_geo_source"]
    with pytest.raises(ValidationError, match="no road of the extract"):
        roads.clip_road_graph(G, box(0, 0, 1, 1))


def test_national_road_run_builds_the_graph_inside_the_task(monkeypatch, tmp_path):
    """Road travel on the hand-made fixture network (département 49 of the bundle): the graph
    is built and clipped to the département + buffer in the département's task."""
    pytest.importorskip("osmnx")
    monkeypatch.delenv("CNFS_GEO_DATA_DIR", raising=False)
    built = []
    real = roads.clip_road_graph

    def spy(G, area):
        out = real(G, area)
        built.append((len(G), len(out), area.area))
        return out

    monkeypatch.setattr(roads, "clip_road_graph", spy)
    sc = Scenario(travel="road", osm_file=str(tmp_path / "{dep}.osm"))
    # the fixture network moved 0.6° west, into the east of Maine-et-Loire (near Saumur)
    text = re.sub(
        r'lon="(-?[0-9.]+)"',
        lambda m: f'lon="{float(m.group(1)) - 0.6:.4f}"',
        FIXTURE_OSM.read_text(encoding="utf-8"),
    )
    (tmp_path / "49.osm").write_text(text, encoding="utf-8")
    res = national(sc, total_posts=1, departements=["49"], workers=1)
    assert res.failures == {}
    assert len(built) == 1 and 0 < built[0][1] <= built[0][0]
    assert res.table["posts"].sum() == 1


def test_interrupted_national_run_leaves_the_previous_outputs_intact(
    raw_dir, tmp_path, monkeypatch
):
    """Ctrl-C during the placements of a national run (here as the second département is
    planned, the first one's files already written): no département folder of the
    previous run is changed, none is added, and no temporary folder is left."""
    from cnfs_geo import national as nat
    from cnfs_geo.outputs import TMP_PREFIX

    sc = Scenario(data_dir=str(raw_dir))
    inputs = read_inputs(raw_dir)
    out = tmp_path / "france"
    national(sc, out_dir=out, workers=1, total_posts=2, departements=["90"], inputs=inputs)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert Path("90/plan.gpkg") in before
    real_place = nat.place

    def place(dep, *args, **kwargs):
        if dep == "2A":
            raise KeyboardInterrupt
        return real_place(dep, *args, **kwargs)

    monkeypatch.setattr(nat, "place", place)
    sc = Scenario(data_dir=str(raw_dir), threshold_minutes=15)  # other outputs for 90
    with pytest.raises(KeyboardInterrupt):
        national(
            sc, out_dir=out, workers=1, total_posts=6, departements=["90", "2A"], inputs=inputs
        )
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert not list(tmp_path.glob(f"{TMP_PREFIX}*"))
    # and the same run, not interrupted, replaces them all at once
    monkeypatch.setattr(nat, "place", real_place)
    national(sc, out_dir=out, workers=1, total_posts=6, departements=["90", "2A"], inputs=inputs)
    assert (out / "2A" / "plan.gpkg").exists()
    assert (out / "90" / "plan.gpkg").read_bytes() != before[Path("90/plan.gpkg")]
    assert not list(tmp_path.glob(f"{TMP_PREFIX}*"))
