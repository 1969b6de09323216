import json
import shutil

import pytest

from cnfs_geo import catalog, territory
from cnfs_geo._errors import (
    DataFileError,
    UnknownCodeError,
    UnknownDepartementError,
    ValidationError,
)


@pytest.fixture(scope="module")
def communes(bundle):
    return territory.communes_from_cog("49", bundle)


def test_49_communes_match_cog_2026(communes, bundle):
    assert len(communes) == 176
    assert int(communes["population"].sum()) == 833_776
    assert communes.index.is_unique and communes.index.is_monotonic_increasing
    cog = territory.cog_communes(bundle)
    expected = set(cog.loc[(cog.type == "commune-actuelle") & (cog.departement == "49"), "code"])
    assert set(communes.index) == expected
    assert communes.crs.to_epsg() == 2154
    assert communes.geometry.is_valid.all()


def test_old_codes_are_dissolved_into_current_communes(communes):
    # Orée d'Anjou is coded 49126 since 2025 (49069 before); Saint-Sigismond (49321)
    # is a commune déléguée of Ingrandes-le-Fresne-sur-Loire (49160).
    assert "49069" not in communes.index and "49126" in communes.index
    assert "49321" in communes.loc["49160", "codes_2018"].split(",")
    # 183 polygons of 2018 → 176 communes: every 2018 code used exactly once
    codes = [c for s in communes["codes_2018"] for c in s.split(",")]
    assert len(codes) == 183 == len(set(codes))


def test_area_matches_polygon_union(communes):
    # Maine-et-Loire is ~7 166 km² (IGN); simplified polygons stay within 1 %
    assert communes["area_km2"].sum() == pytest.approx(7166, rel=0.01)


def test_points_inside_their_commune(communes):
    import geopandas as gpd

    rep = gpd.points_from_xy(communes.ref_x, communes.ref_y, crs=communes.crs)
    assert gpd.GeoSeries(rep, index=communes.index).within(communes.geometry).all()
    cl = gpd.GeoSeries(
        gpd.points_from_xy(communes.chef_lieu_x, communes.chef_lieu_y),
        index=communes.index,
        crs=communes.crs,
    )
    assert cl.distance(communes.geometry).max() < 500
    assert (communes["chef_lieu_source"] == "chef-lieu (datas.fun)").sum() >= 170


def test_epci(communes, bundle):
    epci = territory.epci_from_communes(communes, bundle)
    assert len(epci) == 10
    assert epci["population"].sum() == 833_776
    # CC du Pays d'Ancenis straddles 44 and 49 and keeps its full identity
    ancenis = epci.loc["244400552"]
    assert bool(ancenis["straddles"]) and ancenis["n_membres"] > ancenis["n_communes"]
    assert not epci.drop(index="244400552")["straddles"].any()


def test_departement_outline(communes):
    outline = territory.departement_outline(communes)
    assert len(outline) == 1
    assert outline.geometry.iloc[0].area / 1e6 == pytest.approx(communes.area_km2.sum(), rel=1e-6)


def test_communes_are_a_valid_coverage_and_its_union_is_the_general_union(communes):
    """The 49 communes form a valid coverage, so outline and EPCI take GEOS's coverage
    union; its polygons are those of the general union (rings normalized); a commune
    shifted onto its neighbour is no longer a coverage and takes the general union."""
    import shapely

    geoms = communes.geometry.to_numpy()
    assert territory.union_method(geoms) == "coverage"
    outline = territory.departement_outline(communes).geometry.iloc[0]
    unary = shapely.union_all(geoms)
    assert shapely.equals_exact(shapely.normalize(outline), shapely.normalize(unary), 0)
    moved = geoms.copy()
    moved[0] = shapely.affinity.translate(moved[0], 300.0, 0.0)
    assert territory.union_method(moved) == "unary"
    got = territory.dissolve(communes.assign(geometry=moved), "departement").geometry.iloc[0]
    assert got.equals(shapely.union_all(moved))


def test_unknown_departement(raw_dir):
    d = catalog.resolve_data_dir(raw_dir)
    with pytest.raises(UnknownDepartementError, match="2C"):
        territory.check_departement("2C", d)
    assert territory.check_departement("2a", d) == "2A"
    assert territory.check_departement("1", d) == "01"


def test_bundle_refuses_other_departements(bundle):
    with pytest.raises(DataFileError) as exc:
        territory.check_departement("44", bundle)
    msg = str(exc.value)
    assert "only holds Maine-et-Loire" in msg and "--data-dir" in msg and "cog/communes.json" in msg


def test_unmappable_2018_code_fails_loudly(tmp_path, bundle):
    shutil.copytree(bundle.path, tmp_path / "d")
    poly = next((tmp_path / "d" / "communes").glob("communes-49-*.geojson"))
    gj = json.loads(poly.read_text())
    gj["features"][0]["properties"]["code"] = "49999"
    poly.write_text(json.dumps(gj))
    d = catalog.DataDir(path=tmp_path / "d", is_bundle=True, origin="bundle")
    with pytest.raises(ValidationError, match="49999") as e:
        territory.communes_from_cog("49", d)
    assert isinstance(e.value, UnknownCodeError) and isinstance(e.value, ValueError)


def test_missing_population_is_an_error(tmp_path, bundle):
    shutil.copytree(bundle.path, tmp_path / "d")
    path = tmp_path / "d" / "cog" / "communes.json"
    recs = json.loads(path.read_text())
    for r in recs:
        if r["code"] == "49007" and r["type"] == "commune-actuelle":
            r.pop("population")
    path.write_text(json.dumps(recs))
    d = catalog.DataDir(path=tmp_path / "d", is_bundle=True, origin="bundle")
    with pytest.raises(ValidationError, match="49007.*population"):
        territory.communes_from_cog("49", d)


def test_missing_file_names_the_file(tmp_path, bundle):
    shutil.copytree(bundle.path, tmp_path / "d")
    (tmp_path / "d" / "cog" / "epci.json").unlink()
    d = catalog.DataDir(path=tmp_path / "d", is_bundle=True, origin="bundle")
    with pytest.raises(DataFileError, match="cog/epci.json"):
        territory.communes_from_cog("49", d)


@pytest.mark.parametrize("dep,crs", [("2A", 2154), ("974", 2975)])
def test_other_departements_from_national_files(raw_dir, dep, crs):
    d = catalog.resolve_data_dir(raw_dir)
    c = territory.communes_from_cog(dep, d)
    cog = territory.cog_communes(d)
    cur = cog[(cog.type == "commune-actuelle") & (cog.departement == dep)]
    assert set(c.index) == set(cur["code"])
    assert int(c["population"].sum()) == int(cur["population"].sum())
    assert c.crs.to_epsg() == crs


def test_communes_from_frames_is_what_communes_from_cog_reads(bundle):
    """The stage is a transform of the readers' frames; the data-directory entry point only
    composes readers and this transform."""
    from cnfs_geo.sources import cog, epci, polygons

    c_ref, rep_ref = territory.communes_with_report("49", bundle)
    frames = dict(
        cog=cog.read_cog_communes(bundle.file("cog_communes")),
        polygons=polygons.read_polygons(bundle.file("communes_2018_49")),
        epci_members=epci.read_epci_members(bundle.file("cog_epci")),
    )
    c, rep = territory.communes_from_frames(
        **frames, departement="49", chef_lieux=territory.chef_lieu_points("49", bundle)
    )
    assert c.equals(c_ref) and rep.summary() == rep_ref.summary()
    # without chef-lieu points every commune uses its representative point
    c2, _ = territory.communes_from_frames(**frames, departement="49")
    assert (c2["chef_lieu_x"] == c2["ref_x"]).all()
    assert (c2["chef_lieu_source"] == "point représentatif").all()
    e = territory.epci_from_frames(c, epci.read_epci(bundle.file("cog_epci")))
    assert e.equals(territory.epci_from_communes(c_ref, bundle))
