"""Tests of the scalable MCLP solver (cnfs_geo.placement.mclp_scalable_from_od); the national
demand units it runs on (cnfs_geo.demand.demand_units_cog2018) are tested in test_demand.py.

Real instances only:

* Maine-et-Loire (embedded bundle): the 176 communes (COG 2026) as demand units from
  their representative point, weight = population légale; candidates = every commune's
  chef-lieu; optionally the 28 France Services of 49 as existing sites; crow-fly × 1.3
  at 50 km/h. The exact MILP (``method="exact"``) is the reference.
* Pays de la Loire (national raw files, skipped without ``CNFS_GEO_DATA_DIR``): the
  1 272 COG 2018 commune polygons of the region as demand units and candidates (their
  representative points), COG 2026 populations shared by area.

No timing is asserted: the solver is given short time limits and only the validity of
what it reports is checked (bound ≥ exact optimum ≥ its objective, gap consistent).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from cnfs_geo import access, coverage, demand, placement
from cnfs_geo._errors import PlacementError
from cnfs_geo.placement import _base, _scalable

T = 10.0
PDL_FILE = "communes/communes-pays-de-la-loire_adminexpress-cog2018.geojson"


@pytest.fixture(scope="module")
def inst49(fs49):
    """The real 49 instance (see module docstring; built once in conftest.fs49)."""
    return {
        "communes": fs49["communes"],
        "cand": fs49["cand"],
        "ex_ids": fs49["ex_ids"],
        "od": fs49["od"],
        "pop": fs49["communes"]["population"],
    }


def _newly_covered(
    od: pd.DataFrame, weights: pd.Series, open_ids: list[str], existing: list[str]
) -> float:
    """Weight within T of a new post and of no existing site, from the OD table alone."""
    within = od[od["minutes"].le(T)]
    before = set(within.loc[within["destination_id"].isin(existing), "origin_id"])
    after = set(within.loc[within["destination_id"].isin(open_ids), "origin_id"])
    return float(weights[sorted(after - before)].sum())


@pytest.mark.parametrize("p, with_existing", [(8, True), (30, False)])
def test_bound_is_above_the_exact_optimum_and_the_posts_below(inst49, p, with_existing):
    ex_ids = inst49["ex_ids"] if with_existing else None
    kw = dict(
        p=p,
        threshold=T,
        candidates=inst49["cand"],
        rules=placement.Rules(existing=ex_ids),
        demand=inst49["communes"],
    )
    exact = placement.mclp_from_od(inst49["od"], inst49["pop"], method="exact", **kw)
    assert exact.solution.status == "optimal"
    r = placement.mclp_scalable_from_od(inst49["od"], inst49["pop"], time_limit_s=30, **kw)
    s, opt = r.solution, exact.solution.objective
    tol = 1e-6 * opt
    assert s.bound >= opt - tol  # the bound is proven
    assert s.objective <= opt + tol  # posts are feasible
    assert s.gap == pytest.approx((s.bound - s.objective) / s.bound, abs=1e-12)
    assert (opt - s.objective) / opt <= s.gap + 1e-9  # within the reported gap
    assert s.solver == placement.SCALABLE_SOLVER and s.model == "mclp"
    assert s.status in {"optimal", "converged", "time_limit", "target_gap"}
    # posts: p distinct candidates, never an existing site, objective recomputed from od
    posts = r.posts
    assert len(posts) == p and posts["candidate_id"].is_unique
    assert set(posts["candidate_id"]) <= set(inst49["cand"].index)
    assert s.objective == pytest.approx(
        _newly_covered(inst49["od"], inst49["pop"], list(posts["candidate_id"]), ex_ids or []),
        rel=1e-12,
    )
    assert posts["covered_population"].sum() == pytest.approx(s.objective)
    d = s.details
    assert d["weight_covered_before"] == pytest.approx(
        exact.solution.details["weight_covered_before"]
    )
    assert d["greedy_objective"] <= d["swap_objective"] + tol <= s.objective + 2 * tol
    assert d["bound_history"][-1] == pytest.approx(s.bound) or s.bound < d["bound_history"][-1]
    assert list(np.diff(d["bound_history"]) <= 1e-9 * s.bound) == [True] * (
        len(d["bound_history"]) - 1
    )  # best bound never gets worse


def test_scalable_is_deterministic_when_it_converges(inst49):
    kw = dict(
        p=12,
        threshold=T,
        candidates=inst49["cand"],
        rules=placement.Rules(existing=inst49["ex_ids"]),
        time_limit_s=60,
    )
    a = placement.mclp_scalable_from_od(inst49["od"], inst49["pop"], **kw)
    shuffled_od = inst49["od"].sample(frac=1.0, random_state=3).reset_index(drop=True)
    w = inst49["pop"].iloc[np.random.default_rng(1).permutation(len(inst49["pop"]))]
    b = placement.mclp_scalable_from_od(shuffled_od, w, **kw)
    if "time_limit" in (a.solution.status, b.solution.status):
        pytest.skip("the machine was too slow for both runs to converge within 60 s")
    assert list(a.posts["candidate_id"]) == list(b.posts["candidate_id"])
    assert a.solution.objective == b.solution.objective
    assert a.solution.bound == pytest.approx(b.solution.bound, rel=1e-9)


def test_reduction_keeps_the_optimum(inst49):
    """Merged rows and dropped dominated candidates: the reduced MILP has the same optimum."""
    p = 8
    prepared = _base.prepare(
        inst49["od"],
        inst49["pop"],
        candidates=inst49["cand"],
        existing=inst49["ex_ids"],
        eligible=None,
        demand=None,
        already_covered=None,
    )
    by_exist, cu, cj = _base.coverage_sets(prepared, T)
    red = _scalable.reduce_mclp(prepared, by_exist, cu, cj)
    m, n = red.a.shape
    assert n < prepared.nc and red.n_dominated > 0  # something was dropped
    assert m < len(np.unique(cu[~by_exist[cu]]))  # and merged
    c = np.r_[np.zeros(n), -red.w]
    cons = [
        LinearConstraint(sparse.hstack([-red.a, sparse.identity(m)]).tocsr(), -np.inf, 0),
        LinearConstraint(np.r_[np.ones(n), np.zeros(m)].reshape(1, -1), p, p),
    ]
    res = milp(
        c,
        integrality=np.r_[np.ones(n), np.zeros(m)],
        bounds=Bounds(0, 1),
        constraints=cons,
        options={"mip_rel_gap": 0.0},
    )
    exact = placement.mclp_from_od(
        inst49["od"],
        inst49["pop"],
        p=p,
        threshold=T,
        candidates=inst49["cand"],
        method="exact",
        rules=placement.Rules(existing=inst49["ex_ids"]),
    )
    assert -res.fun == pytest.approx(exact.solution.objective, rel=1e-9)
    # the Lagrangian value is an upper bound for any multipliers in [0, w]
    rng = np.random.default_rng(0)
    for _ in range(20):
        lam = red.w * rng.random(m)
        assert _scalable.lagrangian_value(red.at, red.w, lam, p) >= -res.fun - 1e-6


def test_method_auto_exact_scalable(inst49):
    kw = dict(
        p=8,
        threshold=T,
        candidates=inst49["cand"],
        rules=placement.Rules(existing=inst49["ex_ids"]),
    )
    auto = placement.mclp_from_od(inst49["od"], inst49["pop"], **kw)
    assert auto.solution.solver == placement.SOLVER  # small: exact by default
    sc = placement.mclp_from_od(
        inst49["od"], inst49["pop"], method="scalable", time_limit_s=30, **kw
    )
    assert sc.solution.solver == placement.SCALABLE_SOLVER
    assert sc.solution.bound >= auto.solution.objective - 1e-6
    with pytest.raises(PlacementError, match="method='exact'"):
        placement.mclp_from_od(
            inst49["od"],
            inst49["pop"],
            method="scalable",
            **{
                **kw,
                "rules": placement.Rules(existing=inst49["ex_ids"], groups="epci", max_per_group=1),
            },
        )
    with pytest.raises(PlacementError, match="method='bogus'"):
        placement.mclp_from_od(inst49["od"], inst49["pop"], method="bogus", **kw)


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"time_limit_s": 0}, "time_limit_s=0"),
        ({"target_gap": 1.5}, "target_gap=1.5"),
        ({"threads": 3}, "threads=3"),
        ({"window_work": 0}, "window_work=0"),
        ({"p": None}, "needs the number of new posts"),
        ({"p": 500}, "p=500"),
    ],
)
def test_scalable_errors_name_the_argument(inst49, change, needle):
    kw = dict(p=8, threshold=T, candidates=inst49["cand"])
    kw.update(change)
    with pytest.raises(PlacementError, match=needle):
        placement.mclp_scalable_from_od(inst49["od"], inst49["pop"], **kw)


def test_single_thread_gives_a_valid_bound(inst49):
    kw = dict(
        p=8,
        threshold=T,
        candidates=inst49["cand"],
        rules=placement.Rules(existing=inst49["ex_ids"]),
    )
    exact = placement.mclp_from_od(inst49["od"], inst49["pop"], method="exact", **kw)
    r = placement.mclp_scalable_from_od(
        inst49["od"], inst49["pop"], threads=1, time_limit_s=20, **kw
    )
    assert r.solution.bound >= exact.solution.objective - 1e-6 >= r.solution.objective - 2e-6


# ----------------------------------------------------------------------------------------
# National files: demand units, Pays de la Loire against the exact MILP
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pdl(raw_dir):
    units = demand.demand_units_cog2018(raw_dir, path=raw_dir / PDL_FILE)
    xy = units[["ref_x", "ref_y"]].set_axis(["x", "y"], axis=1)
    cand = xy.copy()
    cand.index = "site:" + cand.index
    return units, cand, access.od_crowfly(xy, cand, max_minutes=T)


def test_pays_de_la_loire_scalable_against_exact(pdl):
    units, cand, od = pdl
    w = units["population"]
    kw = dict(p=120, threshold=T, candidates=cand)
    exact = placement.mclp_from_od(od, w, method="exact", **kw)
    assert exact.solution.status == "optimal"
    r = placement.mclp_scalable_from_od(od, w, time_limit_s=10, **kw)
    opt, s = exact.solution.objective, r.solution
    assert s.bound >= opt - 1e-6 * opt
    assert s.objective <= opt + 1e-6 * opt
    assert (opt - s.objective) / opt <= s.gap + 1e-9
    assert s.details["units"] == len(units) and len(r.posts) == 120
    near = coverage.nearest_from_od(od[od["destination_id"].isin(r.posts["candidate_id"])], w.index)
    assert float(w[near["minutes"].le(T)].sum()) == pytest.approx(s.objective, rel=1e-12)


@pytest.mark.parametrize("p", [0, 1, 170])
def test_trivial_sizes_are_solved_to_optimality(inst49, p):
    """p=0, a single post, and more posts than undominated candidates: proven optimal."""
    kw = dict(p=p, threshold=T, candidates=inst49["cand"])
    exact = placement.mclp_from_od(inst49["od"], inst49["pop"], method="exact", **kw)
    r = placement.mclp_scalable_from_od(inst49["od"], inst49["pop"], time_limit_s=20, **kw)
    assert r.solution.objective == pytest.approx(exact.solution.objective)
    assert len(r.posts) == p
    if p != 1:  # one post: greedy is optimal, the LP bound need not be tight
        assert r.solution.status == "optimal" and r.solution.gap == 0.0


def test_everything_already_covered(inst49):
    covered = pd.Series(True, index=inst49["pop"].index)
    r = placement.mclp_scalable_from_od(
        inst49["od"],
        inst49["pop"],
        p=5,
        threshold=T,
        candidates=inst49["cand"],
        already_covered=covered,
    )
    assert r.solution.objective == 0.0 == r.solution.bound and r.solution.status == "optimal"
    assert len(r.posts) == 5 and r.covered.all()
