"""territory on every département of the national raw files (needs $CNFS_GEO_DATA_DIR).

One module-scoped fixture builds the communes of all 101 départements once
(≈35 s); the tests then check them against the COG 2026 and the raw polygons.
"""

from __future__ import annotations

import json
import time

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from cnfs_geo import territory
from cnfs_geo._errors import UnknownDepartementError, ValidationError

# Working CRS per département as fixed in DESIGN.md (not read from settings.py,
# so that a wrong setting fails here).
EXPECTED_EPSG = {"971": 5490, "972": 5490, "973": 2972, "974": 2975, "976": 4471}


def _dep(insee: str) -> str:
    return insee[:3] if insee.startswith("97") else insee[:2]


@pytest.fixture(scope="module")
def cog(national):
    return territory.cog_communes(national)


@pytest.fixture(scope="module")
def current(cog):
    """COG 2026 communes of the départements (COM left out), index code."""
    cur = cog[(cog["type"] == "commune-actuelle") & (cog["zone"] != "com")]
    return cur.set_index("code")


@pytest.fixture(scope="module")
def everything(national):
    """{dep: (communes, report, seconds)} for every département of the COG."""
    out = {}
    for dep in territory.departement_codes(national):
        t0 = time.perf_counter()
        communes, report = territory.communes_with_report(dep, national)
        out[dep] = (communes, report, time.perf_counter() - t0)
    return out


def test_departements_are_the_101_of_the_cog(national, everything):
    deps = json.loads(national.file("cog_departements").read_text(encoding="utf-8"))
    expected = {d["code"] for d in deps if d["zone"] != "com"}
    assert set(everything) == expected
    assert len(expected) == 101  # 96 metropolitan + 971–974, 976 (SOURCES.md)


def test_every_departement_matches_cog_2026(everything, current):
    for dep, (communes, report, _) in everything.items():
        cur = current[current["departement"] == dep]
        assert communes.index.tolist() == sorted(cur.index), dep
        pd.testing.assert_series_equal(
            communes["population"],
            cur["population"].astype(int).reindex(communes.index),
            check_names=False,
            obj=f"population {dep}",
        )
        assert report.n_communes == len(cur)
        assert report.population == int(cur["population"].sum())
        assert (communes["departement"] == dep).all()
        assert communes.crs.to_epsg() == EXPECTED_EPSG.get(dep, 2154), dep
        assert report.crs == communes.crs.to_string()
        geom = communes.geometry
        assert geom.notna().all() and not geom.is_empty.any(), dep
        assert geom.is_valid.all(), dep
        assert set(geom.geom_type) <= {"Polygon", "MultiPolygon"}, dep
        # density 0 is real: the Meuse villages "morts pour la France" have no inhabitant
        assert (communes["area_km2"] > 0).all() and (communes["density"] >= 0).all()
        assert ((communes["density"] == 0) == (communes["population"] == 0)).all()
        ref = gpd.GeoSeries(
            gpd.points_from_xy(communes.ref_x, communes.ref_y),
            index=communes.index,
            crs=communes.crs,
        )
        assert ref.within(geom).all(), dep
    # all of France but the COM: 34 875 communes (SOURCES.md section 0)
    assert sum(len(c) for c, _, _ in everything.values()) == len(current) == 34_875


def test_every_2018_polygon_is_used_exactly_once(everything):
    codes = []
    for dep, (communes, report, _) in everything.items():
        own = [c for s in communes["codes_2018"] if s for c in s.split(",")]
        assert len(own) == report.n_polygons_2018 - len(report.other_departements), dep
        codes += own
    assert len(codes) == len(set(codes)) == 35_357  # polygons of the archive (SOURCES.md)
    assert all(r.other_departements.empty for _, r, _ in everything.values())


def test_fusions_simples_all_assigned_by_the_cog_history(everything, cog):
    fused = pd.concat([r.fusions_simples for _, r, _ in everything.values()], ignore_index=True)
    # independent expectation: 2018 codes that are neither current nor délégué/associé
    known = set(cog.loc[cog["type"] != "arrondissement-municipal", "code"])
    used = {
        c
        for comm, _, _ in everything.values()
        for s in comm["codes_2018"]
        if s
        for c in s.split(",")
    }
    expected = sorted(used - known)
    assert sorted(fused["code_2018"]) == expected
    assert len(expected) == 85  # SOURCES.md section 1
    assert (fused["rule"] == territory.RULE_FORMER).all()
    former = {
        old: row.code
        for row in cog.dropna(subset=["anciensCodes"]).itertuples()
        for old in row.anciensCodes
    }
    assert dict(zip(fused["code_2018"], fused["insee"])) == {c: former[c] for c in expected}
    for r in fused.itertuples():
        communes = everything[_dep(r.insee)][0]
        assert r.code_2018 in communes.at[r.insee, "codes_2018"].split(",")
        assert r.nom == communes.at[r.insee, "nom"]


def test_fusion_simple_polygons_touch_their_commune(everything, national):
    """Each absorbed polygon shares a border with the rest of its commune's 2018 polygons."""
    fused = pd.concat([r.fusions_simples for _, r, _ in everything.values()], ignore_index=True)
    for dep, rows in fused.groupby(fused["insee"].map(_dep)):
        polys = territory.polygons_2018(dep, national).to_crs(2154).set_index("code")
        communes = everything[dep][0]
        for r in rows.itertuples():
            others = [c for c in communes.at[r.insee, "codes_2018"].split(",") if c != r.code_2018]
            assert others, r.code_2018
            rest = shapely.union_all(polys.loc[others].geometry.values)
            shared = polys.at[r.code_2018, "geometry"].boundary.intersection(rest).length
            assert shared > 500, (r.code_2018, r.nom_2018, r.insee, shared)


def test_homonym_trap_bouin(everything):
    # Bouin (79045) joined Valdelaume (79140); Neuvy-Bouin (79190) is another
    # commune 68 km away: a name rule would pick it, the COG history does not.
    fused = everything["79"][1].fusions_simples.set_index("code_2018")
    assert fused.at["79045", "insee"] == "79140"
    assert "79045" not in everything["79"][0].at["79190", "codes_2018"]


def test_recreated_communes_share_their_parent_polygon(everything, current, national):
    shared = pd.concat([r.shared_polygons for _, r, _ in everything.values()], ignore_index=True)
    children = shared[shared["geometry_source"] == territory.GEOMETRY_SHARED_CHILD]
    # independent expectation: communes of the COG without any 2018 polygon
    with_polygon = {
        i for comm, _, _ in everything.values() for i in comm.index[comm["codes_2018"] != ""]
    }
    expected = sorted(set(current.index) - with_polygon)
    assert sorted(children["insee"]) == expected
    assert len(expected) == 7  # SOURCES.md section 1
    datasfun = pd.read_csv(national.file("datasfun_communes"), dtype=str)
    datasfun = datasfun[datasfun["commune_type"] == "COM"].drop_duplicates("insee_com")
    area_2024 = pd.to_numeric(datasfun.set_index("insee_com")["superficie_km2"])
    for parent_code, grp in shared.groupby("code_2018"):
        dep = _dep(parent_code)
        communes = everything[dep][0]
        parent = grp[grp["geometry_source"] == territory.GEOMETRY_SHARED_PARENT]
        assert len(parent) == 1
        members = grp["insee"].tolist()
        assert (
            communes.loc[members, "geometry"]
            .geom_equals(communes.at[parent["insee"].iloc[0], "geometry"])
            .all()
        )
        assert (
            communes.loc[members, "population"].tolist()
            == current.loc[members, "population"].astype(int).tolist()
        )
        assert communes.loc[members, "epci"].nunique() == 1
        # the shared polygon is the territory of the whole group: its area matches the
        # official areas (datas.fun, COG 2024) of the group's members present in 2024
        known = area_2024.reindex(members).dropna()
        assert len(known) >= 1
        assert communes.at[members[0], "area_km2"] == pytest.approx(known.sum(), rel=0.02)
        for m in members:
            assert communes.at[m, "geometry_source"] in (
                territory.GEOMETRY_SHARED_CHILD,
                territory.GEOMETRY_SHARED_PARENT,
            )
            assert m in everything[dep][1].summary()
        # density is that of the shared territory, the same for every sharer
        assert communes.loc[members, "density"].nunique() == 1
    assert (children["reason"].str.len() > 0).all()


def test_paris_lyon_marseille_are_one_commune(everything, cog):
    arr = cog[cog["type"] == "arrondissement-municipal"]
    for commune, rows in arr.groupby("commune"):
        communes, report, _ = everything[_dep(commune)]
        assert commune in communes.index
        assert not communes.index.isin(rows["code"]).any()
        assert communes.at[commune, "population"] == int(rows["population"].sum())
        assert any(commune in n and str(len(rows)) in n for n in report.notes)
    assert sorted(arr["commune"].unique()) == ["13055", "69123", "75056"]


def test_communes_without_epci_are_reported(everything, national):
    members = {
        m["code"]
        for e in json.loads(national.file("cog_epci").read_text("utf-8"))
        for m in e["membres"]
    }
    for dep, (communes, report, _) in everything.items():
        expected = sorted(set(communes.index) - members)
        assert report.no_epci["insee"].tolist() == expected, dep
        assert (communes.loc[expected, "epci"] == "sans EPCI").all()
    assert sum(len(r.no_epci) for _, r, _ in everything.values()) >= 1


def test_collectivites_outre_mer_are_refused(national, cog):
    com = sorted(cog.loc[cog["zone"] == "com", "departement"].unique())
    assert {"975", "977", "978"} <= set(com)
    for code in com:
        with pytest.raises(UnknownDepartementError, match="collectivité d'outre-mer"):
            territory.communes_from_cog(code, national)


def test_time_per_departement(everything):
    seconds = pd.Series({d: s for d, (_, _, s) in everything.items()})
    # the archive is decompressed once: later départements must not pay for it again
    assert seconds.drop(seconds.index[0]).median() < 2.0
    assert seconds.sum() < 180


# --- explicit overrides (hand-made assignments, labelled as such) --------------------------


def test_code_override_is_checked_first(national, tmp_path):
    # Hand-made override: Saint-Champ (01341, absorbed by Magnieu 01227) forced
    # to its other neighbour Pollieu (01302) — only to show that an override
    # wins over the COG history and is reported.
    c, rep = territory.communes_with_report("01", national, code_overrides={"01341": "01302"})
    assert "01341" in c.at["01302", "codes_2018"].split(",")
    assert "01341" not in c.at["01227", "codes_2018"]
    row = rep.code_assignments.set_index("code_2018").loc["01341"]
    assert row["rule"] == territory.RULE_OVERRIDE and row["insee"] == "01302"
    assert len(rep.fusions_simples) == 1
    # the same from a CSV file
    csv = tmp_path / "overrides.csv"
    csv.write_text("old_code,new_code,reason\n01341,01302,test\n", encoding="utf-8")
    c2 = territory.communes_from_cog("01", national, code_overrides=csv)
    assert c2.geometry.geom_equals(c.geometry).all()


def test_bad_override_names_the_code(national):
    with pytest.raises(ValidationError, match="01341.*99999"):
        territory.communes_from_cog("01", national, code_overrides={"01341": "99999"})


def test_former_codes_in_current_code_map(national):
    with_former = territory.current_code_map(national)
    without = territory.current_code_map(national, former_codes=False)
    assert with_former["91182"] == "91228"  # Courcouronnes → Évry-Courcouronnes
    assert "91182" not in without
    # délégué status wins over anciensCodes (60455 is listed in both)
    assert with_former["60455"] == without["60455"]
    assert set(without.items()) <= set(with_former.items())


def test_code_table_rules_are_exclusive(national):
    table = territory.code_table(national)
    assert table.index.is_unique
    assert set(table["rule"]) == {
        territory.RULE_CURRENT,
        territory.RULE_DELEGUEE,
        territory.RULE_ASSOCIEE,
        territory.RULE_ARRONDISSEMENT,
        territory.RULE_FORMER,
    }
    cur = table[table["rule"] == territory.RULE_CURRENT]
    assert (cur.index == cur["insee"]).all()
    assert table["insee"].isin(cur.index).all()
    assert table.at["75101", "insee"] == "75056"
    assert table.at["75101", "rule"] == territory.RULE_ARRONDISSEMENT
