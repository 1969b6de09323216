import shutil

import pandas as pd
import pytest

from cnfs_geo import catalog, need, territory
from cnfs_geo._errors import ValidationError


@pytest.fixture(scope="module")
def communes(cog49):
    return cog49.copy()  # territory.communes_from_cog("49", bundle)


@pytest.fixture(scope="module")
def with_need(communes, bundle):
    return need.need_from_sources(communes, bundle)


def test_fibre_totals_match_the_arcep_file(with_need, bundle):
    c, _ = with_need
    raw = pd.read_csv(bundle.file("fibre"), dtype=str)
    assert c["nb_locaux"].sum() == pd.to_numeric(raw["nb_locaux"]).sum() == 495_707
    assert c["nb_locaux_fibre"].sum() == pytest.approx(
        pd.to_numeric(raw["nb_locaux_fibre"]).fillna(0).sum()
    )
    assert 100 * c["nb_locaux_fibre"].sum() / c["nb_locaux"].sum() == pytest.approx(89.7, abs=0.05)
    assert c.loc[["49038", "49053"], "pct_fibre"].eq(0).all()  # no FTTH at all in 2024
    assert c["pct_fibre"].between(0, 100).all()


def test_old_codes_are_mapped_and_reported(with_need):
    c, rep = with_need
    assert rep.unmatched.empty
    pairs = set(zip(rep.remapped["code"], rep.remapped["insee"]))
    assert {("49069", "49126"), ("49321", "49160")} <= pairs
    assert not c[["ifn_total", "pct_fibre"]].isna().any().any()


def test_merged_commune_scores_are_population_weighted(with_need, bundle):
    c, _ = with_need
    ifn = pd.read_csv(bundle.file("ifn_communes"), dtype=str).set_index("code")
    pop = (
        pd.read_csv(bundle.file("fibre"), dtype=str)
        .set_index("code_insee")["nb_locaux"]
        .astype(float)
    )
    a, b = float(ifn.loc["49160", "total"]), float(ifn.loc["49321", "total"])
    expected = (a * pop["49160"] + b * pop["49321"]) / (pop["49160"] + pop["49321"])
    assert c.loc["49160", "ifn_total"] == pytest.approx(expected)
    assert min(a, b) <= c.loc["49160", "ifn_total"] <= max(a, b)


def test_need_weighted_population(with_need):
    c, _ = with_need
    assert (c["need"] == c["population"] * c["need_index"] / 10).all()
    assert c["need_index"].between(0, 10).all()
    assert 0 < c["need"].sum() < c["population"].sum()


def _copy(bundle, tmp_path):
    shutil.copytree(bundle.path, tmp_path / "d")
    return catalog.DataDir(path=tmp_path / "d", is_bundle=True, origin="bundle")


def test_missing_ifn_row_is_imputed_and_reported(communes, bundle, tmp_path):
    d = _copy(bundle, tmp_path)
    p = d.path / catalog.SOURCES["ifn_communes"].relpath
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    df[df["code"] != "49007"].to_csv(p, index=False)
    c, rep = need.need_from_sources(communes, d)
    assert rep.imputed == ["49007"]
    assert bool(c.loc["49007", "need_imputed"])
    assert c.loc["49007", "need_index"] == pytest.approx(
        c.drop(index="49007")["ifn_total"].median()
    )


def test_unknown_code_is_reported_not_dropped(communes, bundle, tmp_path):
    d = _copy(bundle, tmp_path)
    p = d.path / catalog.SOURCES["fibre"].relpath
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    extra = df.iloc[[0]].assign(code_insee="49999", commune="Nulle-Part")
    pd.concat([df, extra]).to_csv(p, index=False)
    _, rep = need.need_from_sources(communes, d)
    assert rep.unmatched[["source", "code"]].values.tolist() == [["fibre", "49999"]]


def test_ifn_out_of_range_is_an_error(communes, bundle, tmp_path):
    d = _copy(bundle, tmp_path)
    p = d.path / catalog.SOURCES["ifn_communes"].relpath
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    df.loc[df["code"] == "49007", "poverty_rate"] = "45.3"  # a rate, not a 0–10 score
    df.to_csv(p, index=False)
    with pytest.raises(ValidationError, match="49007.*poverty_rate.*(0–10|entre 0 et 10)"):
        need.need_from_sources(communes, d)


def test_missing_column_is_an_error(communes, bundle, tmp_path):
    d = _copy(bundle, tmp_path)
    p = d.path / catalog.SOURCES["fibre"].relpath
    pd.read_csv(p, dtype=str).drop(columns=["nb_locaux_fibre"]).to_csv(p, index=False)
    with pytest.raises(ValidationError, match="nb_locaux_fibre"):
        need.need_from_sources(communes, d)


def test_nan_population_is_an_error(communes, bundle):
    bad = communes.copy()
    bad.loc["49007", "population"] = float("nan")
    with pytest.raises(ValidationError, match="49007"):
        need.need_from_sources(bad, bundle)


@pytest.mark.parametrize("dep,city", [("75", "75056"), ("13", "13055"), ("69", "69123")])
def test_plm_scores_come_from_their_arrondissements(raw_dir, dep, city):
    d = catalog.resolve_data_dir(raw_dir)
    c, rep = need.need_from_sources(territory.communes_from_cog(dep, d), d)
    assert not c.loc[city, "need_imputed"]
    ifn = pd.read_csv(d.file("ifn_communes"), dtype=str, keep_default_na=False)
    prefix = city[:2] + ("1" if dep == "75" else "2" if dep == "13" else "38")
    arr = ifn[ifn["code"].str.startswith(prefix)]
    arr = arr[arr["name"].str.contains("Arrondissement")]
    totals = pd.to_numeric(arr["total"])
    assert totals.min() <= c.loc[city, "ifn_total"] <= totals.max()
    assert c.loc[city, "pct_fibre"] > 0
    assert (
        rep.unmatched["reason"].str.contains("without any score") | (rep.unmatched["code"] != city)
    ).all()


def test_need_from_frames_is_what_need_from_sources_reads(bundle):
    from cnfs_geo.sources import arcep, ifn

    communes = territory.communes_from_cog("49", bundle)
    ref, rep_ref = need.need_from_sources(communes, bundle)
    c, rep = need.need_from_frames(
        communes,
        ifn.read_ifn(bundle.file("ifn_communes")),
        arcep.read_fibre(bundle.file("fibre")),
        territory.code_table(bundle),
    )
    assert c.equals(ref) and c.attrs == ref.attrs
    assert rep.remapped.equals(rep_ref.remapped) and rep.imputed == rep_ref.imputed
