"""Demand units (commune, IRIS, 2018 communes) on the real 49 data.

The IRIS file is re-read in the tests with the csv module (not the loader), and the
2018 polygons with geopandas, to get the expected codes and populations.
"""

import csv
import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from cnfs_geo import catalog, demand, need, territory
from cnfs_geo._errors import DataFileError, ValidationError

NO_IRIS = {"49018", "49228", "49248", "49307"}  # SOURCES.md: COG 2026 communes absent


def _iris_rows(data_dir) -> pd.DataFrame:
    """The IRIS file read with the csv module and the header file (independent of the loader)."""
    names = data_dir.file("mednum_iris_headers").read_text(encoding="utf-8-sig").split(";")
    names[-1] = names[-1].rstrip("\r\n")
    with open(data_dir.file("mednum_iris_49"), encoding="utf-8", newline="") as fh:
        rows = [dict(zip(names, r, strict=True)) for r in csv.reader(fh, delimiter=";")]
    df = pd.DataFrame(rows)
    return pd.DataFrame(
        {"iris": df["Code Iris"], "com": df["COM"], "p16": df["P16 Pop"].astype(float)}
    ).set_index("iris")


@pytest.fixture(scope="module")
def communes(bundle, cog49):
    c, _ = need.need_from_sources(cog49.copy(), bundle)
    return c


@pytest.fixture(scope="module")
def mapping(bundle):
    return territory.current_code_map(bundle)


@pytest.fixture(scope="module")
def iris_rows(bundle, mapping):
    df = _iris_rows(bundle)
    return df.assign(insee=df["com"].map(mapping))


@pytest.fixture(scope="module")
def iris_units(communes, bundle):
    return demand.demand_units(communes, bundle, unit="iris")


@pytest.fixture(scope="module")
def c2018_units(communes, bundle):
    return demand.demand_units(communes, bundle, unit="commune2018")


@pytest.fixture(scope="module")
def polys_2018(bundle):
    gdf = gpd.read_file(bundle.file("communes_2018_49"))
    return gdf.set_index("code")


def _check_totals(units, communes):
    by = units.groupby("insee")[["population", "need"]].sum()
    assert set(by.index) == set(communes.index)
    assert np.allclose(by["population"], communes.loc[by.index, "population"], rtol=0, atol=1e-6)
    assert np.allclose(by["need"], communes.loc[by.index, "need"], rtol=0, atol=1e-6)
    assert units["population"].sum() == pytest.approx(833_776, abs=1e-6)
    assert (units["population"] >= 0).all()
    assert (units["need"] <= units["population"] + 1e-9).all()
    assert units.index.is_unique and units.index.name == "unit_id"
    assert list(units["insee"]) == sorted(units["insee"])


# --- IRIS --------------------------------------------------------------------------


def test_iris_loader_matches_the_file(bundle, iris_rows):
    iris = demand.iris_from_mednum("49", bundle)
    assert len(iris) == len(iris_rows) == 357
    assert iris["com"].nunique() == 173
    assert iris["p16_pop"].sum() == pytest.approx(iris_rows["p16"].sum())
    assert iris.crs.to_epsg() == 2154 and iris.geometry.is_valid.all()
    assert iris["score_mednum"].notna().all()


def test_iris_units_counts_and_fallbacks(iris_units, iris_rows, polys_2018, mapping):
    u = iris_units
    assert set(u.index[u["unit_type"] == "iris"]) == set(iris_rows.index)
    assert set(u.index[u["unit_type"] == "commune"]) == NO_IRIS
    assert set(u["insee"]) - set(iris_rows["insee"]) == NO_IRIS
    # 2018 communes without IRIS row, inside a commune that has IRIS: derived from codes,
    # while the module decides on coverage of the polygons
    no_row = {code for code in polys_2018.index if code not in set(iris_rows["com"])}
    expected = {code for code in no_row if mapping[code] not in NO_IRIS}
    assert set(u.index[u["unit_type"] == "commune2018"]) == expected
    assert len(expected) == 6
    assert u.attrs["demand_unit_key"] == "iris" and "IRIS" in u.attrs["demand_unit"]


def test_iris_population_sums_and_shares(iris_units, communes, iris_rows):
    u = iris_units
    _check_totals(u, communes)
    # a commune made only of IRIS units splits its COG 2026 population by P16 shares
    only_iris = u.groupby("insee")["unit_type"].agg(lambda s: set(s) == {"iris"})
    for insee in only_iris.index[only_iris]:
        rows = iris_rows[iris_rows["insee"] == insee]
        if rows["p16"].sum() == 0:
            continue
        share = rows["p16"] / rows["p16"].sum()
        got = u.loc[rows.index, "population"] / communes.at[insee, "population"]
        assert np.allclose(got, share, atol=1e-12), insee
    # 2018 communes without IRIS carry the rest: COG 2026 − Σ P16 of the commune's IRIS
    rest = u[u["unit_type"] == "commune2018"].groupby("insee")["population"].sum()
    for insee, pop in rest.items():
        p16 = iris_rows.loc[iris_rows["insee"] == insee, "p16"].sum()
        assert pop == pytest.approx(communes.at[insee, "population"] - p16)


def test_iris_inside_their_commune(bundle, communes, iris_units, mapping):
    # raw IRIS polygons vs the (simplified) 2018 communes: ≥ 94 % of each IRIS area
    # inside, median ≥ 99 % (docs/methods_need.md, tolerance)
    iris = demand.iris_from_mednum("49", bundle)
    insee = iris["com"].map(mapping)
    cg = gpd.GeoSeries(communes.geometry.reindex(insee).to_numpy(), index=iris.index, crs=iris.crs)
    share = iris.geometry.intersection(cg).area / iris.geometry.area
    assert share.min() >= 0.94 and share.median() >= 0.99
    # units: point inside their commune, ≥ 97.5 % of each commune covered (min 49: 97.99 %)
    u = iris_units
    pts = gpd.GeoSeries(gpd.points_from_xy(u["x"], u["y"]), index=u.index, crs=u.crs)
    ucg = gpd.GeoSeries(communes.geometry.reindex(u["insee"]).to_numpy(), index=u.index, crs=u.crs)
    assert pts.within(ucg).all()
    assert pts.within(u.geometry).all()
    covered = u.geometry.area.groupby(u["insee"]).sum() / communes.geometry.area
    assert covered.between(0.975, 1 + 1e-9).all()
    union = u.dissolve(by="insee").geometry.area
    assert np.allclose(union, u.geometry.area.groupby(u["insee"]).sum(), rtol=1e-6)  # no overlap


def test_large_commune_nouvelle_is_split(iris_units, communes):
    chemille = iris_units[iris_units["insee"] == "49092"]
    assert communes.at["49092", "area_km2"] > 300
    assert len(chemille) == 9 and (chemille["area_km2"] < 100).all()
    # Gennes-Val-de-Loire: non-IRIS commune, its stale IRIS contour is replaced by the
    # 2018 polygon of the whole commune
    gennes = iris_units.loc["492610000"]
    assert gennes["area_km2"] == pytest.approx(communes.at["49261", "area_km2"], rel=1e-6)


def test_need_split_by_iris_score(communes, bundle, iris_units):
    uni = demand.demand_units(communes, bundle, unit="iris", need_split="uniform")
    _check_totals(uni, communes)
    idx_c = communes["need_index"].reindex(uni["insee"]).to_numpy()
    assert np.allclose(uni["need_index"], idx_c)
    # "iris": need_index of an IRIS unit ∝ its MedNum score within its commune (no cap hit)
    angers = iris_units[(iris_units["insee"] == "49007") & (iris_units["population"] > 0)]
    ratio = angers["need_index"] / angers["score_mednum"]
    assert ratio.max() == pytest.approx(ratio.min(), rel=1e-9)
    assert not np.allclose(iris_units["need"], uni["need"])
    assert iris_units.attrs["need_split"] == "iris" and uni.attrs["need_split"] == "uniform"


# --- 2018 communes and communes ----------------------------------------------------


def test_commune2018_units(c2018_units, communes, polys_2018, iris_rows, mapping):
    u = c2018_units
    assert len(u) == 183 and set(u.index) == set(polys_2018.index)
    assert (u["unit_type"] == "commune2018").all()
    _check_totals(u, communes)
    single = u.groupby("insee").size() == 1
    for insee in single.index[single]:
        assert u.loc[u["insee"] == insee, "population"].iloc[0] == communes.at[insee, "population"]
    # Les Hauts-d'Anjou (49080) = Châteauneuf-sur-Sarthe (one non-IRIS IRIS) + 49065:
    # Châteauneuf keeps its P16, 49065 the rest
    p16 = iris_rows.loc[iris_rows["com"] == "49080", "p16"].sum()
    assert u.at["49080", "population"] == pytest.approx(p16)
    assert u.at["49065", "population"] == pytest.approx(communes.at["49080", "population"] - p16)
    assert "IRIS" in u.attrs["demand_unit"]


def test_commune2018_by_area(communes, bundle):
    u = demand.demand_units(communes, bundle, unit="commune2018", population_from="area")
    _check_totals(u, communes)
    area_c = u.groupby("insee")["area_km2"].transform("sum")
    pop_c = communes["population"].reindex(u["insee"]).to_numpy()
    assert np.allclose(u["population"], pop_c * u["area_km2"] / area_c)
    assert "surface" in u.attrs["demand_unit"] and u.attrs["need_split"] == "uniform"


def test_commune_units_are_the_communes(communes, bundle, c2018_units):
    u = demand.demand_units(communes, bundle)
    assert list(u.index) == list(communes.index)
    assert (u["population"] == communes["population"]).all()
    assert (u["need"] == communes["need"]).all()
    assert (u["x"] == communes["ref_x"]).all() and (u["y"] == communes["ref_y"]).all()
    assert u.attrs["demand_unit_key"] == "commune"
    labels = {
        demand.demand_units(communes, bundle, unit="commune").attrs["demand_unit"],
        c2018_units.attrs["demand_unit"],  # demand_units(communes, bundle, unit="commune2018")
    }
    assert len(labels) == 2


# --- bad input ---------------------------------------------------------------------


def test_bad_options_are_rejected(communes, bundle):
    with pytest.raises(ValidationError, match="unit='canton'") as info:
        demand.demand_units(communes, bundle, unit="canton", need_split="x")
    assert len(info.value.problems) == 2
    with pytest.raises(ValidationError, match="need_split='iris' needs the IRIS file"):
        demand.demand_units(communes, bundle, unit="commune", need_split="iris")
    with pytest.raises(ValidationError, match="missing column 'need'.*\n.*need_from_sources"):
        demand.demand_units(communes.drop(columns="need"), bundle, unit="iris")


def _copy(bundle, tmp_path) -> catalog.DataDir:
    shutil.copytree(bundle.path, tmp_path / "d")
    return catalog.DataDir(path=tmp_path / "d", is_bundle=True, origin="bundle")


def test_missing_iris_file(communes, bundle, tmp_path):
    d = _copy(bundle, tmp_path)
    (d.path / catalog.SOURCES["mednum_iris_49"].relpath).unlink()
    with pytest.raises(DataFileError, match="mednum_indice-fragilite-numerique_iris_dep49"):
        demand.demand_units(communes, d, unit="iris")
    # the area split does not need it
    u = demand.demand_units(communes, d, unit="commune2018", population_from="area")
    assert len(u) == 183


def test_bad_iris_rows_are_named(communes, bundle, tmp_path):
    d = _copy(bundle, tmp_path)
    path = Path(d.path / catalog.SOURCES["mednum_iris_49"].relpath)
    names = d.file("mednum_iris_headers").read_text(encoding="utf-8-sig").split(";")
    i_pop, i_shape, i_code = (
        names.index("P16 Pop"),
        names.index("Geo Shape"),
        names.index("Code Iris"),
    )
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    rows[0][i_pop] = "-5"
    rows[1][i_shape] = json.dumps({"type": "Point", "coordinates": [0, 47]})
    bad_pop, bad_shape = rows[0][i_code], rows[1][i_code]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, delimiter=";", lineterminator="\n").writerows(rows)
    with pytest.raises(ValidationError) as info:
        demand.demand_units(communes, d, unit="iris")
    text = str(info.value)
    assert f"IRIS {bad_pop}: P16 Pop '-5'" in text and f"IRIS {bad_shape}: Geo Shape" in text
    # a row with a column too many
    rows[0] = rows[0] + ["x"]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, delimiter=";", lineterminator="\n").writerows(rows)
    with pytest.raises(ValidationError, match="ligne 1 : 153 champs au lieu de 152"):
        demand.iris_from_mednum("49", d)


def test_national_directory_gives_the_same_units(communes, raw_dir, iris_units):
    d = catalog.resolve_data_dir(raw_dir)
    u = demand.demand_units(communes, d, unit="iris")
    assert list(u.index) == list(iris_units.index)
    # populations depend on P16 only; geometry is rounded to 1 m in the bundle
    assert np.allclose(u["population"], iris_units["population"], rtol=1e-9)
    assert np.allclose(u["area_km2"], iris_units["area_km2"], rtol=5e-3)


# --- national demand units (COG 2018 polygons, COG 2026 populations) ----------------

PDL_FILE = "communes/communes-pays-de-la-loire_adminexpress-cog2018.geojson"


def _cog_population(raw_dir, deps: set[str]) -> tuple[float, dict[str, float]]:
    recs = json.loads((raw_dir / "cog" / "communes.json").read_text(encoding="utf-8"))
    cur = {
        r["code"]: float(r.get("population") or 0)
        for r in recs
        if r["type"] == "commune-actuelle" and r["departement"] in deps
    }
    return sum(cur.values()), cur


def test_demand_units_cog2018_pays_de_la_loire(raw_dir):
    units = demand.demand_units_cog2018(raw_dir, path=raw_dir / PDL_FILE)
    assert len(units) == 1272 and units.index.is_unique and units.index.is_monotonic_increasing
    assert units.crs.to_epsg() == 2154
    assert set(units["departement"]) == {"44", "49", "53", "72", "85"}
    total, cur = _cog_population(raw_dir, set(units["departement"]))
    left = units.attrs["communes_without_polygon"]
    assert set(left) == {"85165", "85212"}  # split after 2018
    assert units["population"].sum() + sum(left.values()) == pytest.approx(total, rel=1e-12)
    # each current commune's population is shared by area among its 2018 pieces
    per = units.groupby("insee")["population"].sum()
    assert per.to_dict() == pytest.approx({c: cur[c] for c in per.index}, rel=1e-9)
    pieces = units[units["insee"] == units["insee"].value_counts().index[0]]
    assert len(pieces) > 1
    assert (pieces["population"] / pieces["area_km2"]).nunique() == 1 or np.allclose(
        pieces["population"] / pieces["area_km2"],
        (pieces["population"] / pieces["area_km2"]).iloc[0],
    )
    inside = gpd.points_from_xy(units["ref_x"], units["ref_y"], crs=units.crs)
    assert gpd.GeoSeries(inside, index=units.index).within(units.geometry).all()


def test_demand_units_cog2018_metropolitan_france(raw_dir):
    """The national archive, read by the one polygon reader (sources.polygons)."""
    units = demand.demand_units_cog2018(raw_dir)
    deps = set(units["departement"])
    assert len(deps) == 96 and {"2A", "2B"} <= deps and not any(d.startswith("97") for d in deps)
    assert len(units) == 35228
    total, _ = _cog_population(raw_dir, deps)
    left = units.attrs["communes_without_polygon"]
    assert set(left) == {"14666", "15031", "15035", "15047", "15171", "85165", "85212"}
    assert units["population"].sum() + units.attrs["population_left_out"] == pytest.approx(
        total, rel=1e-12
    )
    assert (units["population"] >= 0).all() and units["insee"].notna().all()
    # the units of 49 are the 2018 polygons of 49, as the département reader gives them
    p49 = demand.commune2018_polygons("49", catalog.resolve_data_dir(raw_dir))
    u49 = units[units["departement"] == "49"]
    assert list(u49.index) == list(p49.index)
    assert (u49["insee"] == p49["insee"]).all()


def test_demand_units_from_frames_is_what_demand_units_reads(
    communes, bundle, mapping, iris_units, c2018_units
):
    iris = demand.iris_from_mednum("49", bundle)
    polys = demand.commune2018_polygons("49", bundle)
    kw = dict(iris=iris, polygons_2018=polys, code_map=mapping)
    u = demand.demand_units_from_frames(communes, unit="iris", **kw)
    assert u.equals(iris_units) and u.attrs == iris_units.attrs
    u = demand.demand_units_from_frames(communes, unit="commune2018", **kw)
    assert u.equals(c2018_units)
    with pytest.raises(ValidationError, match="polygons_2018 is needed"):
        demand.demand_units_from_frames(communes, unit="commune2018", population_from="area")


# ---------------------------------------------------------------------------
# Finest units (the default)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finest_units(communes, bundle):
    return demand.demand_units(communes, bundle, unit="finest")


def test_finest_units_are_the_iris_units_with_village_units_at_their_chef_lieu(
    finest_units, iris_units, communes
):
    u = finest_units
    assert u.attrs["demand_unit_key"] == "finest"
    assert u.attrs["demand_unit"].startswith("Unités les plus fines disponibles")
    # in 49 the IRIS units are the finest everywhere: same units, same populations
    assert list(u.index) == list(iris_units.index)
    assert np.allclose(u["population"], iris_units["population"])
    assert np.allclose(u["need"], iris_units["need"])
    pop = u.groupby("insee")["population"].sum()
    assert np.allclose(pop.reindex(communes.index), communes["population"])
    # the 4 communes without any IRIS and one 2018 polygon each stay whole, at their chef-lieu
    whole = u[u["unit_type"] == "commune"]
    assert set(whole["insee"]) == NO_IRIS
    assert (whole["point_basis"] == "chef-lieu (datas.fun)").all()
    assert np.allclose(whole["x"], communes.loc[whole["insee"], "chef_lieu_x"])
    assert np.allclose(whole["y"], communes.loc[whole["insee"], "chef_lieu_y"])
    # one unit at most per commune sits at the chef-lieu; split IRIS of towns never do
    at = u[u["point_basis"] != demand.POINT_REPRESENTATIVE]
    assert at["insee"].is_unique
    split_iris = (u["unit_type"] == "iris") & ~u.index.str.endswith("0000")
    assert (u.loc[split_iris, "point_basis"] == demand.POINT_REPRESENTATIVE).all()
    assert len(at) > 100  # most 2016 communes of 49 are one IRIS « commune non découpée »
    # every other unit keeps its representative point, inside its polygon
    rep = u[u["point_basis"] == demand.POINT_REPRESENTATIVE]
    inside = gpd.points_from_xy(rep["x"], rep["y"]).within(rep.geometry.to_numpy())
    assert inside.all()


def test_ombree_danjou_travels_from_its_chef_lieu(finest_units, communes):
    """Issue 9: a 205 km² commune nouvelle without IRIS nor 2018 split is counted at its
    chef-lieu, not at the representative point of its outline."""
    r = finest_units.loc["49248"]
    c = communes.loc["49248"]
    assert r["unit_type"] == "commune" and r["population"] == c["population"] == 8813
    assert (r["x"], r["y"]) == (c["chef_lieu_x"], c["chef_lieu_y"])
    assert np.hypot(r["x"] - c["ref_x"], r["y"] - c["ref_y"]) > 2000


def test_finest_units_without_iris_split_communes_nouvelles_by_their_2018_communes(
    communes, bundle, mapping
):
    polys = demand.commune2018_polygons("49", bundle)
    u = demand.demand_units_from_frames(
        communes, unit="finest", polygons_2018=polys, code_map=mapping
    )
    assert u.attrs["need_split"] == "uniform" and "pas de fichier IRIS" in u.attrs["demand_unit"]
    n_pieces = polys.groupby("insee").size()
    several = set(n_pieces[n_pieces > 1].index)
    assert set(u.loc[u["unit_type"] == "commune2018", "insee"]) == several
    assert len(u) == len(polys)  # 183 units: one per 2018 polygon
    assert set(u.loc[u["unit_type"] == "commune", "insee"]) == set(communes.index) - several
    pop = u.groupby("insee")["population"].sum()
    assert np.allclose(pop.reindex(communes.index), communes["population"])
    # the piece holding the chef-lieu travels from it; one per commune
    at = u[u["point_basis"] != demand.POINT_REPRESENTATIVE]
    assert at["insee"].is_unique and len(at) == len(communes)
    with pytest.raises(ValidationError, match="need_split='iris' needs iris"):
        demand.demand_units_from_frames(
            communes, unit="finest", polygons_2018=polys, code_map=mapping, need_split="iris"
        )
