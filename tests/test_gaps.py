"""Gap territories on the real 49 plan (embedded bundle), checked against independent
computations (geopandas spatial join for adjacency, networkx for connectivity,
the places' own ``epci`` column for the EPCI criterion)."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest

from cnfs_geo import gaps
from cnfs_geo._errors import ValidationError
from cnfs_geo.plan import Scenario, run
from cnfs_geo.settings import DEFAULT, Settings


@pytest.fixture(scope="module")
def plan(plan49):
    return plan49


@pytest.fixture(scope="module")
def accessibility(plan):
    return gaps.need_accessibility(plan.communes, plan.places)


@pytest.fixture(scope="module")
def scores(plan, accessibility):
    return gaps.priority_scores(plan.communes, accessibility, settings=plan.settings)


@pytest.fixture(scope="module")
def neighbours(plan):
    """Adjacent pairs computed independently: geopandas sjoin + exact shared border."""
    c = plan.communes[["geometry"]].reset_index()
    j = gpd.sjoin(c, c, predicate="intersects", lsuffix="a", rsuffix="b")
    j = j[j["insee_a"] < j["insee_b"]]
    ga = c.set_index("insee").geometry
    shared = [ga[a].intersection(ga[b]).length for a, b in zip(j["insee_a"], j["insee_b"])]
    j = j.assign(shared=shared)
    j = j[j["shared"] >= gaps.MIN_SHARED_BORDER_M]
    return {(a, b): s for a, b, s in zip(j["insee_a"], j["insee_b"], j["shared"])}


# ----------------------------------------------------------------------------------------
# 1. gap communes by distance
# ----------------------------------------------------------------------------------------
def test_gap_communes_are_exactly_the_communes_beyond_each_threshold(plan):
    c = plan.communes
    out = gaps.gap_communes(c, thresholds=[5, 10, 15, 20])
    assert list(out.columns) == gaps.GAP_COMMUNE_COLUMNS
    assert sorted(out["threshold_min"].unique()) == [5.0, 10.0, 15.0]  # nobody beyond 20
    for t in (5, 10, 15, 20):
        sel = out[out["threshold_min"] == t]
        assert set(sel["insee"]) == set(c.index[c["minutes_before"] > t])
        assert sel["rank"].tolist() == list(range(1, len(sel) + 1))
        assert (np.diff(sel["need"].to_numpy()) <= 0).all()  # ranked by need, descending
        exp = c.loc[sel["insee"]]
        assert np.allclose(sel["minutes"], exp["minutes_before"])
        assert (sel["population"].to_numpy() == exp["population"].to_numpy()).all()
    at10 = set(out.loc[out["threshold_min"] == 10, "insee"])
    at5 = set(out.loc[out["threshold_min"] == 5, "insee"])
    assert at10 and at10 <= at5


def test_gap_communes_reject_bad_input(plan):
    with pytest.raises(ValidationError, match="need"):
        gaps.gap_communes(plan.communes.drop(columns="need"))
    with pytest.raises(ValidationError, match="thresholds"):
        gaps.gap_communes(plan.communes, thresholds=[-1])


# ----------------------------------------------------------------------------------------
# 2. accessibility and priority
# ----------------------------------------------------------------------------------------
def test_accessibility_shares_out_every_advisor(plan, accessibility):
    acc_places = plan.places[plan.places["service_level"] == "accompaniment"]
    total = (accessibility["demand"] * accessibility["access"]).sum() / 10_000
    assert total == pytest.approx(acc_places["advisors"].sum())
    assert accessibility.attrs["method"] == "E2SFCA"
    assert accessibility.index.equals(plan.communes.index.sort_values())


def test_priority_criteria_flags_and_reasons_are_consistent(plan, accessibility, scores):
    c = plan.communes
    s = scores
    assert list(s.columns) == gaps.PRIORITY_COLUMNS
    assert s.index.equals(c.index)
    # reference ratio = département advisors per 10 000 need-weighted inhabitants
    acc_places = plan.places[plan.places["service_level"] == "accompaniment"]
    reference = acc_places["advisors"].sum() / c["need"].sum() * 10_000
    assert s.attrs["reference_ratio"] == pytest.approx(reference)
    assert s.attrs["target_ratio"] == pytest.approx(DEFAULT.thin_share * reference)
    target = s.attrs["target_ratio"]
    assert np.allclose(s["accessibility"], accessibility["access"].reindex(c.index))
    assert (s["is_far"] == (c["minutes_before"] > plan.settings.threshold_minutes)).all()
    assert (s["is_thin"] == (s["accessibility"] < target)).all()
    assert (s["is_high_need"] == (c["need_index"] >= np.median(c["need_index"]))).all()
    assert (s["is_low_fibre"] == (c["pct_fibre"] < 80)).all()
    assert (s["is_gap"] == ((s["is_far"] | s["is_thin"]) & s["is_high_need"])).all()
    # with the default share, thin <=> crit_access > 0.5
    assert (s["is_thin"] == (s["crit_access"] > 0.5)).all()
    checks = [
        ("loin (> 10 min)", "is_far"),
        ("offre mince (ratio < cible)", "is_thin"),
        ("fragilité élevée", "is_high_need"),
        ("fibre < 80 %", "is_low_fibre"),
    ]
    for insee, row in s.iterrows():
        parts = row["gap_reasons"].split(" ; ") if row["gap_reasons"] else []
        if not row["is_gap"]:
            assert parts == []
            continue
        assert parts == [label for label, flag in checks if row[flag]], insee
    # distance alone is not the gap in 49: some gaps are near but thin, some far communes
    # are not fragile enough to be gaps
    assert (s["is_gap"] & ~s["is_far"]).any()
    assert (s["is_far"] & ~s["is_gap"]).any()


def test_priority_score_recomputed_from_the_documented_formula(plan, scores):
    c = plan.communes
    s = scores
    w = gaps.PRIORITY_WEIGHTS
    ref = s.attrs["reference_ratio"]
    expected = (
        100
        * (
            w["time"] * np.minimum(c["minutes_before"] / 20, 1)
            + w["access"] * np.clip(1 - s["accessibility"] / ref, 0, 1)
            + w["need"] * c["need_index"] / 10
            + w["fibre"] * (1 - c["pct_fibre"] / 100)
        )
        / sum(w.values())
    )
    assert np.allclose(s["priority_score"], expected)
    assert s["priority_score"].between(0, 100).all()
    assert sorted(s["priority_rank"]) == list(range(1, len(s) + 1))
    ordered = s.sort_values("priority_rank")["priority_score"].to_numpy()
    assert (np.diff(ordered) <= 0).all()


def test_priority_options_and_errors(plan, accessibility, scores):
    c = plan.communes
    low = gaps.priority_scores(c, accessibility, target_ratio=1.0)
    assert low.attrs["target_ratio"] == 1.0 and low.attrs["target_share"] is None
    assert (low["is_thin"] == (low["accessibility"] < 1.0)).all()
    assert low["is_thin"].sum() < scores["is_thin"].sum()
    far_only = gaps.priority_scores(c, accessibility["access"], threshold=15)
    assert (far_only["is_far"] == (c["minutes_before"] > 15)).all()
    assert "loin (> 15 min)" in ";".join(far_only["gap_reasons"])
    with pytest.raises(ValidationError, match="absent"):
        gaps.priority_scores(c, accessibility.iloc[:-3])
    with pytest.raises(ValidationError, match="unknown key"):
        gaps.priority_scores(c, accessibility, weights={**gaps.PRIORITY_WEIGHTS, "foo": 1})
    with pytest.raises(ValidationError, match="target_share"):
        gaps.priority_scores(c, accessibility, target_share=0)


def test_methods_text_carries_the_values_used(scores):
    text = gaps.methods_fr(scores)
    assert "plus de 10 min" in text and "fibre inférieure à 80 %" in text
    ref = f"{scores.attrs['reference_ratio']:.2f}".rstrip("0").replace(".", ",")
    assert ref in text
    assert "E2SFCA" in text and gaps.methods_fr() != text
    assert "loin" in gaps.methods_fr() and "{" not in gaps.methods_fr()


def test_access_catchment_setting_is_honoured(plan):
    """need_accessibility reads settings.access_catchment_minutes when catchment is None
    (it once used a module copy of the default, 20 min, whatever the settings said)."""
    c, p = plan.communes, plan.places
    s30 = Settings(access_catchment_minutes=30)
    acc30 = gaps.need_accessibility(c, p, settings=s30)
    assert acc30.attrs["catchment_minutes"] == 30
    explicit = gaps.need_accessibility(c, p, catchment=30)
    assert np.allclose(acc30["access"], explicit["access"])
    acc20 = gaps.need_accessibility(c, p)
    assert acc20.attrs["catchment_minutes"] == 20
    assert (acc30["n_sites"] >= acc20["n_sites"]).all()
    assert (acc30["n_sites"] > acc20["n_sites"]).any()
    # the other settings are honoured the same way
    s = gaps.priority_scores(c, acc20, settings=Settings(low_fibre_pct=50.0, thin_share=0.25))
    assert s.attrs["fibre_min_pct"] == 50.0 and s.attrs["target_share"] == 0.25
    assert "fibre < 50 %" in gaps.methods_fr(settings=Settings(low_fibre_pct=50.0)).replace(
        "fibre inférieure à 50 %", "fibre < 50 %"
    )
    far = gaps.gap_communes(c, settings=Settings(report_thresholds=(7.0,)))
    assert set(far["threshold_min"]) == {7.0}


# ----------------------------------------------------------------------------------------
# 3. adjacency and clusters
# ----------------------------------------------------------------------------------------
def test_adjacency_matches_an_independent_spatial_join(plan, neighbours):
    adj = gaps.commune_adjacency(plan.communes)
    pairs = {(a, b): m for a, b, m in zip(adj["insee_a"], adj["insee_b"], adj["shared_m"])}
    assert set(pairs) == set(neighbours)
    # the 1 m snap may add a few metres where three borders meet at an acute angle
    keys = sorted(pairs)
    assert np.allclose([pairs[k] for k in keys], [neighbours[k] for k in keys], rtol=0.01, atol=10)
    # every commune of the (connected) département has a neighbour
    touched = set(adj["insee_a"]) | set(adj["insee_b"])
    assert touched == set(plan.communes.index)


def _gap_sets(plan, scores):
    return {"far_10min": plan.communes["minutes_before"] > 10, "priority": scores["is_gap"]}


@pytest.mark.parametrize("which", ["far_10min", "priority"])
def test_clusters_partition_the_gap_communes_into_contiguous_groups(
    plan, scores, neighbours, which
):
    c = plan.communes
    is_gap = _gap_sets(plan, scores)[which]
    cl = gaps.gap_clusters(c, is_gap=is_gap, places=plan.places)
    assert list(cl.columns) == gaps.CLUSTER_COLUMNS
    assert cl.crs == c.crs
    members = [m.split(";") for m in cl["communes"]]
    flat = [x for m in members for x in m]
    gap_ids = set(c.index[is_gap.reindex(c.index).to_numpy()])
    assert len(flat) == len(set(flat)) and set(flat) == gap_ids  # exact partition
    assert cl["n_communes"].tolist() == [len(m) for m in members]
    assert cl["population"].sum() == c.loc[list(gap_ids), "population"].sum()
    assert cl["need"].sum() == pytest.approx(c.loc[list(gap_ids), "need"].sum())
    for m, row in zip(members, cl.itertuples()):
        assert row.population == c.loc[m, "population"].sum()
        assert row.minutes_max == pytest.approx(c.loc[m, "minutes_before"].max())
        # contiguous: the independent adjacency graph restricted to the cluster is connected
        g = nx.Graph()
        g.add_nodes_from(m)
        g.add_edges_from(k for k in neighbours if k[0] in m and k[1] in m)
        assert nx.is_connected(g), row.cluster_id
        assert row.geometry.buffer(gaps.ADJACENCY_TOLERANCE_M).geom_type == "Polygon"
        assert row.geometry.area == pytest.approx(c.loc[m].geometry.area.sum(), rel=1e-6)
        # nearest offer = the member commune closest to a place, with its nearest place
        best = c.loc[m, "minutes_before"].idxmin()
        assert row.nearest_place_minutes == pytest.approx(c.loc[best, "minutes_before"])
        assert row.nearest_place_id == c.loc[best, "nearest_place_before"]
        assert row.n_places == int(plan.places["insee"].isin(m).sum())
    # two clusters never share a border
    cluster_of = {x: cid for cid, m in zip(cl["cluster_id"], members) for x in m}
    for a, b in neighbours:
        if a in cluster_of and b in cluster_of:
            assert cluster_of[a] == cluster_of[b], (a, b)
    geoms = cl.geometry.to_numpy()
    for i in range(len(geoms)):
        for j in range(i + 1, len(geoms)):
            assert geoms[i].intersection(geoms[j]).length < gaps.MIN_SHARED_BORDER_M
    # ids G01… by need-weighted population, descending
    width = max(2, len(str(len(cl))))
    assert cl["cluster_id"].tolist() == [f"G{k:0{width}d}" for k in range(1, len(cl) + 1)]
    assert (np.diff(cl["need"].to_numpy()) <= 0).all()
    # the per-commune id agrees with the cluster table
    ids = gaps.gap_cluster_ids(c, is_gap=is_gap)
    assert ids.dropna().to_dict() == cluster_of
    assert ids[~is_gap.reindex(c.index).to_numpy()].isna().all()


def test_cluster_ids_do_not_depend_on_row_order(plan, scores):
    c = plan.communes
    a = gaps.gap_clusters(c, is_gap=scores["is_gap"])
    shuffled = c.sample(frac=1.0, random_state=7)
    b = gaps.gap_clusters(shuffled, is_gap=scores["is_gap"].sample(frac=1.0, random_state=3))
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
    assert all(x.equals(y) for x, y in zip(a.geometry, b.geometry))


def test_clusters_without_gaps_and_bad_input(plan):
    c = plan.communes
    none = gaps.gap_clusters(c, is_gap=pd.Series(False, index=c.index))
    assert len(none) == 0 and list(none.columns) == gaps.CLUSTER_COLUMNS
    with pytest.raises(ValidationError, match="absent"):
        gaps.gap_clusters(c, is_gap=pd.Series(True, index=c.index[:10]))
    with pytest.raises(ValidationError, match="non-boolean"):
        gaps.gap_clusters(c, is_gap=pd.Series(1, index=c.index))
    with pytest.raises(ValidationError, match="to_crs"):
        gaps.gap_clusters(c.to_crs(4326), is_gap=c["minutes_before"] > 10)


# ----------------------------------------------------------------------------------------
# 4. EPCI without a digital project
# ----------------------------------------------------------------------------------------
def _project_epci(places: pd.DataFrame) -> set[str]:
    """EPCI with a lieu de médiation or a CNFS, from the places' own epci column."""
    p = places[places["is_lieu_mediation"] | places["is_cnfs"]]
    return set(p["epci"].astype(str))


def test_epci_offer_counts_match_the_places(plan):
    t = gaps.epci_offer(plan.communes, plan.places, plan.epci)
    assert list(t.columns) == gaps.EPCI_COLUMNS
    assert set(t.index) == set(plan.epci.index)
    assert t["n_places"].sum() == len(plan.places)
    assert t["population"].sum() == plan.communes["population"].sum()
    by_epci = plan.places.groupby(plan.places["epci"].astype(str))
    assert (
        t["n_france_services"] == by_epci["is_france_services"].sum().reindex(t.index).fillna(0)
    ).all()
    assert set(t.index[t["has_project"]]) == _project_epci(plan.places)


def test_epci_without_project_in_49(plan):
    out = gaps.epci_without_project(plan.communes, plan.places, plan.epci)
    assert set(out.index) == set(plan.epci.index) - _project_epci(plan.places)
    assert list(out.columns) == gaps.EPCI_COLUMNS


def test_epci_without_project_on_a_modified_real_offer(plan):
    """Real-data variant (labelled): the lieux de médiation and CNFS of one EPCI are
    removed from the real places; its France Services / Aidants Connect stay."""
    pl = plan.places
    proj = pl["is_lieu_mediation"] | pl["is_cnfs"]
    stats = pd.DataFrame(
        {"proj": proj.groupby(pl["epci"]).sum(), "other": (~proj).groupby(pl["epci"]).sum()}
    )
    # the EPCI with the fewest such places among those also holding other places
    stats = stats[stats["other"] > 0].sort_index()
    victim = stats.sort_values("proj", kind="stable").index[0]
    kept = pl[~(proj & (pl["epci"] == victim))].reset_index(drop=True)
    out = gaps.epci_without_project(plan.communes, kept, plan.epci)
    assert victim in out.index
    assert set(out.index) == set(plan.epci.index) - _project_epci(kept)
    row = out.loc[victim]
    left = kept[kept["epci"] == victim]
    assert row["n_lieu_mediation"] == 0 and row["n_cnfs"] == 0
    assert row["n_places"] == len(left) > 0
    assert row["n_france_services"] == int(left["is_france_services"].sum())
    assert row["n_aidants_connect"] == int(left["is_aidants_connect"].sum())
    members = plan.communes[plan.communes["epci"] == victim]
    assert row["population"] == members["population"].sum()
    assert row["need"] == pytest.approx(members["need"].sum())
    assert row["n_communes"] == len(members)
    # removing every place of a second EPCI lists it too, with no place at all
    second = sorted(set(plan.epci.index) - {victim})[0]
    none = kept[kept["epci"] != second]
    out2 = gaps.epci_without_project(plan.communes, none, plan.epci)
    assert {victim, second} <= set(out2.index)
    assert out2.loc[second, "n_places"] == 0
    with pytest.raises(ValidationError, match="absent from `communes`"):
        bad = kept.copy()
        bad.loc[0, "insee"] = "75056"
        gaps.epci_without_project(plan.communes, bad, plan.epci)


def test_epci_without_project_national_data(raw_dir):
    p = run(Scenario(departement="48", data_dir=str(raw_dir)))
    out = gaps.epci_without_project(p.communes, p.places, p.epci)
    assert set(out.index) == set(p.epci.index) - _project_epci(p.places)
    assert (out[["n_lieu_mediation", "n_cnfs"]] == 0).all().all()
    assert (np.diff(out["need"].to_numpy()) <= 0).all()
    for e, row in out.iterrows():
        assert row["n_communes"] == int((p.communes["epci"] == e).sum())


def test_default_advisor_counts_are_flagged_and_their_sensitivity_measured(plan49):
    """Issue 9: which advisor counts are defaults, and how the priority list moves when
    they are halved or doubled (columns of plan.communes, recomputed here)."""
    from cnfs_geo import gaps

    places, c = plan49.places, plan49.communes
    acc = places["service_level"] == "accompaniment"
    info = plan49.advisor_defaults
    assert info["n_counts"] == int(acc.sum())
    assert info["n_default"] == int((acc & places["advisors_assumed"]).sum())
    assert 0 < info["n_default"] < info["n_counts"]
    assert info["factors"] == plan49.settings.default_advisors_factors == (0.5, 2.0)
    # the France Services charter and the CNFS counts are not defaults
    assert not places.loc[places["advisors_basis"] != "default", "advisors_assumed"].any()
    # with factor 1 the ranks are the plan's own; low and high factors move some ranks
    sens = gaps.default_advisors_sensitivity(
        c, places, settings=plan49.settings, threshold=plan49.scenario.threshold
    )
    assert (sens["priority_rank"] == c["priority_rank"]).all()
    assert (sens["priority_rank_low"] == c["priority_rank_low"]).all()
    assert (sens["priority_rank_high"] == c["priority_rank_high"]).all()
    assert (c["priority_rank_low"] != c["priority_rank"]).any()
    assert (c["priority_rank_high"] != c["priority_rank"]).any()
    # factor 1 for both: nothing moves
    same = gaps.default_advisors_sensitivity(c, places, settings=plan49.settings, factors=(1, 1))
    assert (same["priority_rank_low"] == same["priority_rank"]).all()
    assert (same["priority_gap_high"] == same["priority_gap"]).all()


def test_cluster_ids_given_or_computed_give_the_same_clusters(plan, scores):
    """gap_clusters with the ids of gap_cluster_ids (as plan.prepare passes them: the
    adjacency computed once) equals gap_clusters computing them; ids of other communes are
    refused."""
    is_gap = scores["is_gap"].astype(bool)
    c = plan.communes
    ids = gaps.gap_cluster_ids(c, is_gap=is_gap)
    assert ids.notna().any()
    computed = gaps.gap_clusters(c, is_gap=is_gap, places=plan.places)
    given = gaps.gap_clusters(c, is_gap=is_gap, places=plan.places, cluster_ids=ids)
    pd.testing.assert_frame_equal(computed, given)
    with pytest.raises(ValidationError, match="cluster_ids"):
        gaps.gap_clusters(c, is_gap=is_gap, cluster_ids=ids.iloc[1:])


def test_crowfly_access_od_given_as_od_gives_the_same_accessibility(plan, accessibility):
    """The crow-fly table computed once (plan.prepare) and given as ``od`` gives what
    need_accessibility computes without it."""
    od = gaps.crowfly_access_od(plan.communes, plan.places)
    assert set(od.columns) >= {"origin_id", "destination_id", "minutes"}
    assert (od["minutes"] <= DEFAULT.access_catchment_minutes).all()
    again = gaps.need_accessibility(plan.communes, plan.places, od=od)
    pd.testing.assert_frame_equal(accessibility, again)
