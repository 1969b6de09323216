"""Tests of cnfs_geo.placement.covering (MCLP, LSCP) on the real 49 instance (embedded bundle).

Instance: the 176 communes of 49 (COG 2026) as demand units (travel from their
representative point, weight = population légale, or need-weighted population),
candidate sites = every commune's chef-lieu point, existing sites = the 28
France Services of 49 (ANCT list 2024-08-01, ``data/49/france_services``), travel
time = crow-fly × 1.3 at 50 km/h (:func:`cnfs_geo.access.od_crowfly`).

Exactness is checked against spopt (PySAL) solved by CBC through pulp on the
same dense cost matrix built from the same OD table; spopt is a test dependency
only.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from cnfs_geo import access, coverage, placement
from cnfs_geo._errors import PlacementError

T = 10.0
P = 8


@pytest.fixture(scope="module")
def inst(fs49):
    """The real 49 instance (see module docstring; built once in conftest.fs49)."""
    return fs49


@pytest.fixture(scope="module")
def mclp8(inst):
    """Exact MCLP, p=8, 10 min, population, France Services as existing sites."""
    return placement.mclp_from_od(
        inst["od"],
        inst["communes"]["population"],
        p=P,
        threshold=T,
        candidates=inst["cand"],
        demand=inst["communes"],
        rules=placement.Rules(existing=inst["ex_ids"]),
    )


def _spopt_solver():
    pulp = pytest.importorskip("pulp")
    pytest.importorskip("spopt")
    return pulp, pulp.PULP_CBC_CMD(msg=False)


def _predefined(inst) -> np.ndarray:
    return np.r_[np.zeros(inst["n_cand"]), np.ones(len(inst["ex_ids"]))].astype(int)


def _covered_before(inst) -> pd.Series:
    near = coverage.nearest_from_od(
        inst["od"][inst["od"]["destination_id"].isin(inst["ex_ids"])],
        inst["communes"].index.astype(str),
    )
    return near["minutes"].le(T)


# ----------------------------------------------------------------------------------------
# MCLP exactness against spopt
# ----------------------------------------------------------------------------------------
def test_mclp_equals_spopt_with_predefined_existing_sites(inst, mclp8):
    pulp, solver = _spopt_solver()
    from spopt.locate import MCLP

    w = inst["communes"]["population"].to_numpy(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = MCLP.from_cost_matrix(
            inst["dense"].to_numpy(),
            w,
            service_radius=T,
            p_facilities=P + len(inst["ex_ids"]),
            predefined_facilities_arr=_predefined(inst),
        ).solve(solver)
    spopt_total = pulp.value(m.problem.objective)
    d = mclp8.solution.details
    assert d["weight_covered_after"] == pytest.approx(spopt_total, abs=1e-6)
    # the existing sites' coverage is what spopt gets with p=0 new posts
    assert d["weight_covered_before"] == pytest.approx(
        float(inst["communes"]["population"][_covered_before(inst).to_numpy()].sum())
    )
    assert mclp8.solution.objective == pytest.approx(spopt_total - d["weight_covered_before"])


def test_mclp_equals_spopt_on_residual_instance_need_weight(inst, bundle):
    """Need weights, residual instance: covered demand zeroed, candidates only in spopt."""
    pulp, solver = _spopt_solver()
    from spopt.locate import MCLP

    from cnfs_geo import need

    communes, _ = need.need_from_sources(inst["communes"], bundle)
    ours = placement.mclp_from_od(
        inst["od"],
        communes["need"],
        p=P,
        threshold=T,
        candidates=inst["cand"],
        demand=communes,
        rules=placement.Rules(existing=inst["ex_ids"]),
    )
    residual = communes["need"].where(~_covered_before(inst).to_numpy(), 0.0).to_numpy(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = MCLP.from_cost_matrix(
            inst["dense"].iloc[:, : inst["n_cand"]].to_numpy(),
            residual,
            service_radius=T,
            p_facilities=P,
        ).solve(solver)
    assert ours.solution.objective == pytest.approx(pulp.value(m.problem.objective), rel=1e-9)
    assert ours.posts["covered_need"].sum() == pytest.approx(ours.solution.objective, rel=1e-9)


# ----------------------------------------------------------------------------------------
# MCLP result contract
# ----------------------------------------------------------------------------------------
def test_mclp_posts_and_coverage_are_consistent(inst, mclp8):
    posts, sol = mclp8.posts, mclp8.solution
    assert len(posts) == P and posts["candidate_id"].is_unique
    assert list(posts.columns[:8]) == [
        "post_id",
        "candidate_id",
        "insee",
        "host",
        "kind",
        "covered_weight",
        "covered_population",
        "covered_need",
    ]
    assert (posts["kind"] == "fixed").all()
    assert set(posts["candidate_id"]) <= set(inst["cand"].index)
    assert not set(posts["candidate_id"]) & set(inst["ex_ids"])
    assert posts["covered_need"].isna().all()  # no need column was given
    assert sol.status == "optimal" and sol.gap == 0.0
    assert sol.bound >= sol.objective - 1e-6
    assert sol.solver == "HiGHS via scipy.optimize.milp"
    assert sol.n_variables > 0 and sol.n_constraints > 0 and sol.time_s >= 0
    assert dict(sol)["objective"] == sol.objective

    # independent recomputation from the OD table
    od, pop = inst["od"], inst["communes"]["population"]
    before = _covered_before(inst)
    open_ids = set(inst["ex_ids"]) | set(posts["candidate_id"])
    near = coverage.nearest_from_od(od[od["destination_id"].isin(open_ids)], pop.index)
    after = near["minutes"].le(T)
    pd.testing.assert_series_equal(mclp8.covered, after.rename("covered"), check_names=False)
    newly = after & ~before
    assert float(pop[newly].sum()) == pytest.approx(sol.objective)
    # each newly covered commune is given to its nearest new post
    to_posts = coverage.nearest_from_od(
        od[od["destination_id"].isin(posts["candidate_id"])], pop.index
    )
    expected = pop[newly].groupby(to_posts.loc[newly, "nearest_id"]).sum()
    got = posts.set_index("candidate_id")["covered_population"]
    pd.testing.assert_series_equal(
        got.sort_index(),
        expected.reindex(got.index).fillna(0).astype(float).sort_index(),
        check_names=False,
    )
    assert posts["covered_weight"].is_monotonic_decreasing
    assert list(posts["post_id"]) == [f"P{k:02d}" for k in range(1, P + 1)]
    assert mclp8.uncoverable.empty


def test_mclp_is_deterministic_whatever_the_row_order(inst, mclp8):
    again = placement.mclp_from_od(
        inst["od"],
        inst["communes"]["population"],
        p=P,
        threshold=T,
        candidates=inst["cand"],
        demand=inst["communes"],
        rules=placement.Rules(existing=inst["ex_ids"]),
    )
    pd.testing.assert_frame_equal(again.posts, mclp8.posts)
    rng = np.random.default_rng(0)
    od_shuffled = inst["od"].sample(frac=1.0, random_state=1).reset_index(drop=True)
    w_shuffled = inst["communes"]["population"].iloc[rng.permutation(len(inst["communes"]))]
    cand_shuffled = inst["cand"].iloc[rng.permutation(inst["n_cand"])]
    shuffled = placement.mclp_from_od(
        od_shuffled,
        w_shuffled,
        p=P,
        threshold=T,
        candidates=cand_shuffled,
        demand=inst["communes"],
        rules=placement.Rules(existing=list(reversed(inst["ex_ids"]))),
    )
    assert list(shuffled.posts["candidate_id"]) == list(mclp8.posts["candidate_id"])
    assert shuffled.solution.objective == mclp8.solution.objective
    # outputs follow the order of the weights given
    assert list(shuffled.covered.index) == list(w_shuffled.index)


def test_mclp_tie_break_prefers_lowest_ranked_candidates(inst):
    """With p above what full coverage needs, spare posts go to the first candidate ids.

    A chosen post whose removal keeps the coverage could be swapped for any unchosen
    candidate without loss; the smallest-rank-sum optimum therefore has every such
    post ranked before every unchosen candidate.
    """
    od, pop = inst["od"], inst["communes"]["population"]
    lscp = placement.lscp_from_od(
        od,
        pop,
        threshold=T,
        candidates=inst["cand"],
        rules=placement.Rules(existing=inst["ex_ids"]),
    )
    r = placement.mclp_from_od(
        od,
        pop,
        p=int(lscp.solution.objective) + 3,
        threshold=T,
        candidates=inst["cand"],
        rules=placement.Rules(existing=inst["ex_ids"]),
    )
    assert r.covered.all()
    chosen = list(r.posts["candidate_id"])
    within = od[od["minutes"].le(T)]

    def covered_weight(open_ids):
        units = within.loc[within["destination_id"].isin(open_ids), "origin_id"].unique()
        return float(pop[units].sum())

    full = covered_weight(chosen + inst["ex_ids"])
    spare = [
        j for j in chosen if covered_weight([c for c in chosen if c != j] + inst["ex_ids"]) == full
    ]
    assert len(spare) >= 1
    unchosen = sorted(set(inst["cand"].index) - set(chosen))
    assert max(spare) < unchosen[0]


def test_mclp_from_geodataframes_delegates_to_from_od(inst, mclp8):
    r = placement.mclp_from_geodataframes(
        inst["communes"],
        inst["cand"].drop(columns=["x", "y"]),
        weight_col="population",
        p=P,
        threshold=T,
        rules=placement.Rules(existing=inst["existing"]),
    )
    assert isinstance(r.posts, gpd.GeoDataFrame) and r.posts.crs == inst["communes"].crs
    assert list(r.posts["candidate_id"]) == list(mclp8.posts["candidate_id"])
    assert r.solution.objective == mclp8.solution.objective
    pts = inst["cand"].loc[r.posts["candidate_id"]]
    assert np.allclose(r.posts.geometry.x, pts["x"]) and np.allclose(r.posts.geometry.y, pts["y"])
    assert (r.posts["insee"].to_numpy() == pts["insee"].to_numpy()).all()


def test_mclp_already_covered_equals_existing(inst, mclp8):
    r = placement.mclp_from_od(
        inst["od"],
        inst["communes"]["population"],
        p=P,
        threshold=T,
        candidates=inst["cand"],
        already_covered=_covered_before(inst),
    )
    assert r.solution.objective == mclp8.solution.objective
    # without `demand`, the column named like the weights is still reported per post
    assert r.posts["covered_population"].sum() == pytest.approx(r.solution.objective)
    assert r.posts["covered_need"].isna().all()


# ----------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, needle",
    [
        ({"p": 177}, "p=177"),
        ({"p": -1}, "p=-1"),
        ({"p": 2.5}, "p=2.5"),
        ({"eligible": []}, "no eligible candidate"),
        ({"threshold": 0}, "threshold=0"),
        ({"threshold": -5.0}, "threshold=-5.0"),
        ({"weights": "empty"}, "no demand unit"),
        ({"weights": "negative"}, "negative weight"),
        ({"weights": "nan"}, "NaN"),
        ({"p": None}, "budget_eur"),
    ],
)
def test_mclp_errors_name_the_setting_and_the_fix(inst, change, needle):
    kwargs = {"p": P, "threshold": T, "candidates": inst["cand"], "existing": inst["ex_ids"]}
    w = inst["communes"]["population"].astype(float)
    od = inst["od"]
    kind = change.pop("weights", None)
    if kind == "empty":
        w, od = w.iloc[:0], od.iloc[:0]
    elif kind == "negative":
        w = w.copy()
        w.iloc[3] = -1.0
    elif kind == "nan":
        w = w.copy()
        w.iloc[[5, 9]] = np.nan
    kwargs.update(change)
    rules = placement.Rules(**{k: kwargs.pop(k) for k in ("existing", "eligible") if k in kwargs})
    with pytest.raises(PlacementError) as err:
        placement.mclp_from_od(od, w, rules=rules, **kwargs)
    msg = str(err.value)
    assert needle in msg
    assert any(w in msg.lower() for w in ("fix", "give", "correction"))  # English or French
    if kind in ("negative", "nan"):
        bad = [w.index[3]] if kind == "negative" else [w.index[5], w.index[9]]
        assert all(b in msg for b in bad)


def test_od_origin_without_weight_is_an_error(inst):
    w = inst["communes"]["population"].iloc[1:]
    with pytest.raises(PlacementError, match=inst["communes"].index[0]):
        placement.mclp_from_od(inst["od"], w, p=P, threshold=T, candidates=inst["cand"])


def test_crs_mismatch_is_an_error(inst):
    with pytest.raises(PlacementError, match="to_crs"):
        placement.mclp_from_geodataframes(
            inst["communes"], inst["cand"].to_crs(4326), weight_col="population", p=P
        )


# ----------------------------------------------------------------------------------------
# Rules: eligible hosts, budget, quotas, separation
# ----------------------------------------------------------------------------------------
def test_mclp_eligible_filter_and_euro_budget(inst, mclp8):
    cand = inst["cand"]
    # eligible: only the chefs-lieux of communes of more than 3 000 inhabitants
    big = inst["communes"]["population"].gt(3000)
    mask = pd.Series(big.to_numpy(), index=cand.index)
    r = placement.mclp_from_od(
        inst["od"],
        inst["communes"]["population"],
        p=P,
        threshold=T,
        candidates=cand,
        rules=placement.Rules(existing=inst["ex_ids"], eligible=mask),
    )
    assert mask[r.posts["candidate_id"]].all()
    assert r.solution.objective <= mclp8.solution.objective
    same = placement.mclp_from_od(
        inst["od"],
        inst["communes"]["population"],
        p=P,
        threshold=T,
        candidates=cand[mask],
        rules=placement.Rules(existing=inst["ex_ids"]),
    )
    assert same.solution.objective == r.solution.objective
    # 3 posts' worth of euros = p=3
    b = placement.mclp_from_od(
        inst["od"],
        inst["communes"]["population"],
        p=None,
        threshold=T,
        candidates=cand,
        rules=placement.Rules(budget_eur=3 * 50_000, existing=inst["ex_ids"]),
    )
    p3 = placement.mclp_from_od(
        inst["od"],
        inst["communes"]["population"],
        p=3,
        threshold=T,
        candidates=cand,
        rules=placement.Rules(existing=inst["ex_ids"]),
    )
    assert len(b.posts) == 3 and b.solution.objective == p3.solution.objective
    # a cost per candidate: a cheaper host lets the budget buy one more post
    cost = pd.Series(50_000.0, index=cand.index)
    cost[p3.posts["candidate_id"]] = 40_000.0
    b2 = placement.mclp_from_od(
        inst["od"],
        inst["communes"]["population"],
        p=None,
        threshold=T,
        candidates=cand,
        rules=placement.Rules(
            budget_eur=3 * 40_000 + 50_000, post_cost_eur=cost, existing=inst["ex_ids"]
        ),
    )
    assert len(b2.posts) == 4 and b2.solution.details["rules"][0].startswith("budget_eur")
    assert b2.solution.objective >= p3.solution.objective
    with pytest.raises(PlacementError, match="budget_eur"):
        placement.mclp_from_od(
            inst["od"],
            inst["communes"]["population"],
            p=P,
            threshold=T,
            candidates=cand,
            rules=placement.Rules(budget_eur=100_000),
        )


def test_mclp_quotas_per_epci(inst, mclp8):
    cand = inst["cand"]
    r = placement.mclp_from_od(
        inst["od"],
        inst["communes"]["population"],
        p=P,
        threshold=T,
        candidates=cand,
        rules=placement.Rules(existing=inst["ex_ids"], groups="epci", max_per_group=1),
    )
    assert r.posts["group"].is_unique
    assert (r.posts["group"].to_numpy() == cand.loc[r.posts["candidate_id"], "epci"]).all()
    assert r.solution.objective <= mclp8.solution.objective
    # a non-binding quota changes nothing
    loose = placement.mclp_from_od(
        inst["od"],
        inst["communes"]["population"],
        p=P,
        threshold=T,
        candidates=cand,
        rules=placement.Rules(existing=inst["ex_ids"], groups="epci", max_per_group=P),
    )
    assert loose.solution.objective == mclp8.solution.objective
    # a minimum: 3 posts in the EPCI with the fewest posts in the free solution
    counts = cand.loc[mclp8.posts["candidate_id"], "epci"].value_counts()
    target = sorted(set(cand["epci"]) - set(counts.index))[0]
    m = placement.mclp_from_od(
        inst["od"],
        inst["communes"]["population"],
        p=P,
        threshold=T,
        candidates=cand,
        rules=placement.Rules(existing=inst["ex_ids"], groups="epci", min_per_group={target: 3}),
    )
    assert (m.posts["group"] == target).sum() >= 3
    with pytest.raises(PlacementError, match="min_per_group"):
        placement.mclp_from_od(
            inst["od"],
            inst["communes"]["population"],
            p=P,
            threshold=T,
            candidates=cand,
            rules=placement.Rules(groups="epci", min_per_group={target: 999}),
        )
    with pytest.raises(PlacementError, match="unknown group"):
        placement.mclp_from_od(
            inst["od"],
            inst["communes"]["population"],
            p=P,
            threshold=T,
            candidates=cand,
            rules=placement.Rules(groups="epci", max_per_group={"nope": 1}),
        )


def test_mclp_minimum_separation(inst, mclp8):
    cand = inst["cand"]
    sep = 20.0
    r = placement.mclp_from_od(
        inst["od"],
        inst["communes"]["population"],
        p=P,
        threshold=T,
        candidates=cand,
        rules=placement.Rules(existing=inst["ex_ids"], min_separation_min=sep),
    )
    xy = cand.loc[r.posts["candidate_id"], ["x", "y"]]
    pairs = access.od_crowfly(xy, xy, max_minutes=sep)
    pairs = pairs[pairs["origin_id"] != pairs["destination_id"]]
    assert pairs.empty or (pairs["minutes"] >= sep).all()
    # the free optimum violates it, so the constrained one covers less
    xy8 = cand.loc[mclp8.posts["candidate_id"], ["x", "y"]]
    close = access.od_crowfly(xy8, xy8, max_minutes=sep)
    assert (close["origin_id"] != close["destination_id"]).any()
    assert r.solution.objective < mclp8.solution.objective
    with pytest.raises(PlacementError, match="min_separation_min"):
        placement.mclp_from_od(
            inst["od"],
            inst["communes"]["population"],
            p=P,
            threshold=T,
            candidates=cand,
            rules=placement.Rules(min_separation_min=500.0),
        )


# ----------------------------------------------------------------------------------------
# LSCP
# ----------------------------------------------------------------------------------------
def test_lscp_equals_spopt_with_existing_sites(inst):
    pulp, solver = _spopt_solver()
    from spopt.locate import LSCP

    ours = placement.lscp_from_od(
        inst["od"],
        inst["communes"]["population"],
        threshold=T,
        candidates=inst["cand"],
        rules=placement.Rules(existing=inst["ex_ids"]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LSCP.from_cost_matrix(
            inst["dense"].to_numpy(), T, predefined_facilities_arr=_predefined(inst)
        ).solve(solver)
    assert ours.solution.objective == pulp.value(m.problem.objective) - len(inst["ex_ids"])
    assert len(ours.posts) == ours.solution.objective
    assert ours.covered.all() and ours.uncoverable.empty
    assert ours.solution.details["cost_eur"] == 50_000 * len(ours.posts)


def test_lscp_reports_uncoverable_units_with_an_eligible_filter(inst):
    pulp, solver = _spopt_solver()
    from spopt.locate import LSCP

    cand, od = inst["cand"], inst["od"]
    # eligible hosts: the chefs-lieux of the EPCI with most communes only
    epci = cand["epci"].value_counts().index[0]
    eligible = list(cand.index[cand["epci"] == epci])
    r = placement.lscp_from_od(
        od,
        inst["communes"]["population"],
        threshold=T,
        candidates=cand,
        rules=placement.Rules(existing=inst["ex_ids"], eligible=eligible),
    )
    reach = od[od["minutes"].le(T) & od["destination_id"].isin(eligible + inst["ex_ids"])]
    expected = sorted(set(inst["communes"].index) - set(reach["origin_id"]))
    assert sorted(r.uncoverable) == expected and len(expected) > 0
    assert set(r.posts["candidate_id"]) <= set(eligible)
    assert not r.covered[expected].any() and r.covered.drop(expected).all()
    # spopt on the coverable rows, eligible columns + existing sites
    cols = eligible + inst["ex_ids"]
    sub = inst["dense"].drop(index=expected)[cols]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LSCP.from_cost_matrix(
            sub.to_numpy(),
            T,
            predefined_facilities_arr=np.r_[
                np.zeros(len(eligible)), np.ones(len(inst["ex_ids"]))
            ].astype(int),
        ).solve(solver)
    assert r.solution.objective == pulp.value(m.problem.objective) - len(inst["ex_ids"])
    with pytest.raises(PlacementError, match="max_posts=2"):
        placement.lscp_from_od(
            od,
            inst["communes"]["population"],
            threshold=T,
            candidates=cand,
            rules=placement.Rules(existing=inst["ex_ids"], max_posts=2),
        )


def test_lscp_geodataframes_and_separation(inst):
    base = placement.lscp_from_geodataframes(
        inst["communes"],
        inst["cand"],
        weight_col="population",
        threshold=T,
        rules=placement.Rules(existing=inst["existing"]),
    )
    sep = placement.lscp_from_geodataframes(
        inst["communes"],
        inst["cand"],
        weight_col="population",
        threshold=T,
        rules=placement.Rules(existing=inst["existing"], min_separation_min=6.0),
    )
    assert sep.covered.all()
    assert sep.solution.objective >= base.solution.objective
    xy = inst["cand"].loc[sep.posts["candidate_id"], ["x", "y"]]
    close = access.od_crowfly(xy, xy, max_minutes=6.0)
    assert (close["origin_id"] == close["destination_id"]).all()
