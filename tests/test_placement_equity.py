"""Tests of cnfs_geo.placement.equity (equity placement) on the real Maine-et-Loire plan.

Instance: ``cnfs_geo.plan.prepare(Scenario())`` on the embedded 49 bundle
(conftest.prepared49) — its 367 demand units (the default ``finest`` unit: IRIS of the
cities, whole communes elsewhere; demand = need-weighted population ``units["need"]``,
travel from their representative point), the existing
accompaniment places (supply = their ``advisors``) and the plan's candidate sites
(every commune's chef-lieu ``commune:<insee>`` and every place ``place:<place_id>``).
OD = crow-fly × 1.3 at 50 km/h within the 20-minute catchment, from the demand units to
the existing places and the candidates. Every expected value is recomputed
independently here with :func:`cnfs_geo.coverage.two_step_fca`, never copied from an
output.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pandas as pd
import pytest

from cnfs_geo import access, coverage, placement
from cnfs_geo._errors import PlacementError
from cnfs_geo.placement import equity_from_od, equity_of_posts
from cnfs_geo.settings import DEFAULT

CATCHMENT = 20.0
P = 8


@pytest.fixture(scope="module")
def inst(prepared49):
    pr = prepared49  # plan.prepare(Scenario(departement="49")) on the bundle, shared
    places = pr.places
    acc = places[places["service_level"] == "accompaniment"]
    ex_ids = acc["place_id"].astype(str).to_numpy()
    existing = pd.DataFrame(
        {"x": acc.geometry.x.to_numpy(), "y": acc.geometry.y.to_numpy()}, index=ex_ids
    )
    sites = pd.concat([existing, pr.candidates[["x", "y"]]])
    assert not sites.index.has_duplicates
    od = access.od_crowfly(pr.origins, sites, max_minutes=CATCHMENT)
    supply = pd.Series(acc["advisors"].to_numpy(dtype=float), index=ex_ids, name="advisors")
    need = pr.units["need"]
    return {"pr": pr, "od": od, "supply": supply, "need": need, "cand": pr.candidates}


@pytest.fixture(scope="module")
def eq8(inst):
    return equity_from_od(inst["od"], inst["need"], inst["supply"], p=P, candidates=inst["cand"])


def _fca(inst, supply: pd.Series) -> pd.Series:
    """Independent E2SFCA (stepped weights, 20 min) for ``supply`` (site id → advisors)."""
    od = inst["od"][inst["od"]["destination_id"].isin(supply.index)]
    return coverage.two_step_fca(od, inst["need"], supply, catchment=CATCHMENT, weights="stepped")[
        "access"
    ]


def _baseline(inst) -> tuple[pd.Series, float, float]:
    """Accessibility before, reference ratio (need-weighted mean), default target."""
    a0 = _fca(inst, inst["supply"])
    need = inst["need"].reindex(a0.index).astype(float)
    ref = float((need * a0).sum() / need.sum())
    return a0, ref, DEFAULT.thin_share * ref  # default target: the gaps "thin" threshold


def _shortfall(inst, access: pd.Series, target: float) -> float:
    need = inst["need"].reindex(access.index).astype(float)
    return float((need * np.maximum(0.0, target - access)).sum())


def _enlarged(inst, post_sites) -> pd.Series:
    counts = pd.Series(1.0, index=pd.Index(list(post_sites))).groupby(level=0).sum()
    return inst["supply"].add(counts, fill_value=0.0)


def test_linear_model_equals_recomputed_2sfca_and_objective(inst, eq8):
    units = eq8.units
    a0, ref, target = _baseline(inst)
    # posts are at candidate ids, distinct from the existing site ids
    assert not set(eq8.posts["candidate_id"]) & set(inst["supply"].index)
    a1 = _fca(inst, _enlarged(inst, eq8.posts["candidate_id"]))
    np.testing.assert_allclose(
        units["access_before"], a0.reindex(units.index), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        units["access_after"], a1.reindex(units.index), rtol=1e-12, atol=1e-12
    )
    d = eq8.solution.details
    assert d["reference_ratio"] == pytest.approx(ref, rel=1e-12)
    assert d["target"] == pytest.approx(target, rel=1e-12)
    expected = _shortfall(inst, a1, target)
    assert eq8.solution.objective == pytest.approx(expected, rel=1e-9)
    assert d["shortfall_before"] == pytest.approx(_shortfall(inst, a0, target), rel=1e-9)
    assert d["second_target"] == pytest.approx(ref, rel=1e-12)
    assert d["second_shortfall_after"] == pytest.approx(_shortfall(inst, a1, ref), rel=1e-9)
    assert eq8.solution.status == "optimal" and eq8.solution.gap == 0.0
    assert eq8.solution.bound == pytest.approx(eq8.solution.objective, rel=1e-7)
    # the evaluation helper (2SFCA recomputed inside) agrees with the linear model
    ev = equity_of_posts(inst["od"], inst["need"], inst["supply"], eq8.posts["candidate_id"])
    np.testing.assert_allclose(ev["access_after"], units["access_after"], rtol=1e-12, atol=1e-12)
    assert ev.attrs["summary"]["shortfall_after"] == pytest.approx(expected, rel=1e-9)


def test_linear_model_holds_when_posts_reinforce_existing_places(inst):
    # candidates "place:<id>" sit exactly on the existing place <id>: same catchment demand
    sup = inst["supply"]
    cand_ids = [f"place:{i}" for i in sup.index]
    r = equity_from_od(
        inst["od"], inst["need"], sup, p=4, candidates=cand_ids, max_posts_per_site=2
    )
    assert len(r.posts) == 4 and r.posts["site_posts"].le(2).all()
    ratios = coverage.site_supply_ratios(
        inst["od"][inst["od"]["destination_id"].isin(sup.index)],
        inst["need"],
        sup,
        catchment=CATCHMENT,
        weights="stepped",
    )["demand_weighted"]
    host = r.posts["candidate_id"].str.removeprefix("place:")
    np.testing.assert_allclose(r.posts["catchment_need"], ratios.reindex(host), rtol=1e-12)
    # merge the new advisors into the existing place and recompute without the candidate rows
    merged = sup.add(pd.Series(1.0, index=host.to_numpy()).groupby(level=0).sum(), fill_value=0.0)
    a1 = _fca(inst, merged)
    np.testing.assert_allclose(
        r.units["access_after"], a1.reindex(r.units.index), rtol=1e-12, atol=1e-12
    )
    # several posts at one site (x = 3): A0 + 3 g, equal to the 2SFCA with 3 more advisors
    site = r.posts["candidate_id"].iloc[0]
    r3 = equity_from_od(inst["od"], inst["need"], sup, p=3, candidates=[site], max_posts_per_site=3)
    assert r3.posts["candidate_id"].tolist() == [site] * 3
    assert r3.posts["site_posts"].tolist() == [3, 3, 3]
    merged3 = sup.add(pd.Series({site.removeprefix("place:"): 3.0}), fill_value=0.0)
    np.testing.assert_allclose(
        r3.units["access_after"],
        _fca(inst, merged3).reindex(r3.units.index),
        rtol=1e-12,
        atol=1e-12,
    )
    target = _baseline(inst)[2]
    assert r3.solution.objective == pytest.approx(
        _shortfall(inst, _fca(inst, merged3), target), rel=1e-9
    )


def test_posts_frame_is_consistent(inst, eq8):
    posts, d = eq8.posts, eq8.solution.details
    assert len(posts) == P
    assert posts["post_id"].tolist() == [f"P{k:02d}" for k in range(1, P + 1)]
    assert posts["candidate_id"].isin(inst["cand"].index).all()
    assert (posts["insee"] == inst["cand"].loc[posts["candidate_id"], "insee"].to_numpy()).all()
    keys = list(zip(-posts["shortfall_reduced"], posts["candidate_id"]))
    assert keys == sorted(keys)
    cand_sites = inst["od"][inst["od"]["destination_id"].isin(inst["cand"].index)]
    dj = coverage.site_supply_ratios(
        cand_sites,
        inst["need"],
        pd.Series(1.0, index=inst["cand"].index),
        catchment=CATCHMENT,
        weights="stepped",
    )["demand_weighted"]
    np.testing.assert_allclose(
        posts["catchment_need"], dj.reindex(posts["candidate_id"]), rtol=1e-12
    )
    np.testing.assert_allclose(posts["ratio_added"], 1e4 / posts["catchment_need"], rtol=1e-12)
    assert posts["shortfall_reduced"].sum() == pytest.approx(
        d["shortfall_before"] - d["shortfall_after"], rel=1e-9
    )
    # by 2SFCA conservation one advisor adds exactly 10 000 to Σ need × access, so no post
    # can remove more than that from the shortfall
    assert (posts["shortfall_reduced"] <= 1e4 * (1 + 1e-9)).all()
    assert posts["covered_need"].sum() == pytest.approx(
        d["need_covered_after"] - d["need_covered_before"], rel=1e-9, abs=1e-9
    )
    # 10-minute coverage before = nearest accompaniment place within 10 min (plan.prepare)
    c = inst["pr"].units
    assert d["need_covered_before"] == pytest.approx(
        float(c.loc[c["covered_before"], "need"].sum()), rel=1e-12
    )


def test_shortfall_decreases_with_p_and_p0_is_the_baseline(inst, eq8):
    a0, _, target = _baseline(inst)
    base = _shortfall(inst, a0, target)
    objs = []
    fewer = {
        p: equity_from_od(inst["od"], inst["need"], inst["supply"], p=p, candidates=inst["cand"])
        for p in (0, 1, 2, 4)
    }
    for p, r in {**fewer, P: eq8}.items():  # P posts: the module's eq8 (the same call)
        assert len(r.posts) == p
        objs.append(r.solution.objective)
        if p == 0:
            np.testing.assert_allclose(
                r.units["access_after"], a0.reindex(r.units.index), rtol=1e-12, atol=1e-12
            )
            assert r.solution.objective == pytest.approx(base, rel=1e-12)
            assert not r.units["covered_after"].ne(r.units["covered_before"]).any()
    assert objs[0] == pytest.approx(base, rel=1e-12)
    assert all(b < a for a, b in zip(objs, objs[1:])), objs


def test_tie_breaks_keep_the_optimum_and_absolute_target(inst, eq8):
    _, ref, _ = _baseline(inst)
    # without the second solve the optimum is the same (only the choice among ties changes)
    # and the shortfall below the mean is no smaller than with it
    r = equity_from_od(
        inst["od"], inst["need"], inst["supply"], p=P, candidates=inst["cand"], second_target=None
    )
    assert r.solution.objective == pytest.approx(eq8.solution.objective, rel=1e-7)
    assert r.solution.details["second_shortfall_after"] is None
    assert eq8.solution.details["second_shortfall_after"] <= _shortfall(
        inst, _fca(inst, _enlarged(inst, r.posts["candidate_id"])), ref
    ) * (1 + 1e-9)
    # an absolute target (here the mean itself)
    ra = equity_from_od(
        inst["od"], inst["need"], inst["supply"], p=P, candidates=inst["cand"], target=ref
    )
    assert ra.solution.details["target"] == ref and ra.solution.details["target_rule"] == "given"
    assert ra.solution.details["second_target"] is None  # same level: solve 2 skipped
    a1 = _fca(inst, _enlarged(inst, ra.posts["candidate_id"]))
    assert ra.solution.objective == pytest.approx(_shortfall(inst, a1, ref), rel=1e-9)
    # optimal: no worse than the default posts evaluated at that target
    a_eq = _fca(inst, _enlarged(inst, eq8.posts["candidate_id"]))
    assert ra.solution.objective <= _shortfall(inst, a_eq, ref) * (1 + 1e-9)
    # and no post can remove more than one advisor (10 000 need × advisors per 10 000)
    assert ra.solution.details["shortfall_before"] - ra.solution.objective <= P * 1e4 * (1 + 1e-9)


def test_equity_versus_mclp_on_49(inst, eq8):
    """The 8 posts of the equity model vs pure MCLP (10 min) on the 49 plan."""
    pr = inst["pr"]
    c = pr.units
    mclp = placement.mclp_from_od(
        pr.od, c["need"], p=P, threshold=10.0, already_covered=c["covered_before"], demand=c
    )
    m_ids = mclp.posts["candidate_id"].tolist()
    e_ids = eq8.posts["candidate_id"].tolist()
    assert set(m_ids) != set(e_ids)
    target = _baseline(inst)[2]
    short_m = _shortfall(inst, _fca(inst, _enlarged(inst, m_ids)), target)
    short_e = _shortfall(inst, _fca(inst, _enlarged(inst, e_ids)), target)
    # the MCLP posts are a feasible solution of the equity model: it cannot do worse
    assert short_e < short_m
    ev = equity_of_posts(inst["od"], inst["need"], inst["supply"], m_ids)
    s = ev.attrs["summary"]
    assert s["shortfall_after"] == pytest.approx(short_m, rel=1e-9)
    # 10-minute coverage: the same figure as MCLP's own record; MCLP is optimal for it
    assert s["need_covered_after"] == pytest.approx(
        mclp.solution.details["weight_covered_after"], rel=1e-9
    )
    assert s["need_covered_after"] > eq8.solution.details["need_covered_after"]


def test_deterministic_whatever_the_row_order(inst, eq8):
    rng = np.random.default_rng(0)
    od = inst["od"].sample(frac=1.0, random_state=1).reset_index(drop=True)
    need = inst["need"].iloc[rng.permutation(len(inst["need"]))]
    sup = inst["supply"].iloc[rng.permutation(len(inst["supply"]))]
    cand = inst["cand"].iloc[rng.permutation(len(inst["cand"]))]
    r = equity_from_od(od, need, sup, p=P, candidates=cand)
    pd.testing.assert_frame_equal(r.posts, eq8.posts)
    pd.testing.assert_frame_equal(r.units, eq8.units)
    assert r.solution.objective == eq8.solution.objective


def test_solver_writes_nothing_to_stdout(inst, capfd):
    # this instance makes the HiGHS bundled with scipy print a debug line in the
    # tie-breaking solve unless the library silences the C-level stdout
    r = equity_from_od(
        inst["od"], inst["need"], inst["supply"], p=P, candidates=inst["cand"], max_posts_per_site=3
    )
    assert r.posts["site_posts"].le(3).all()
    ctypes.CDLL(None).fflush(None)
    assert capfd.readouterr().out == ""


def test_candidates_without_demand_are_skipped(inst):
    # hand-made id absent from the OD table: no demand within its catchment
    cand = list(inst["cand"].index[:20]) + ["nowhere"]
    r = equity_from_od(inst["od"], inst["need"], inst["supply"], p=2, candidates=cand)
    assert r.skipped.tolist() == ["nowhere"]
    assert "nowhere" not in set(r.posts["candidate_id"])
    with pytest.raises(PlacementError, match="lieux? d’accueil utiles?"):
        equity_from_od(inst["od"], inst["need"], inst["supply"], p=1, candidates=["nowhere"])
    r0 = equity_from_od(inst["od"], inst["need"], inst["supply"], p=0, candidates=["nowhere"])
    assert r0.posts.empty and r0.solution.objective == r0.solution.details["shortfall_before"]


@pytest.mark.parametrize(
    "change, setting",
    [
        ({"p": -1}, "p"),
        ({"p": 2 * 555 + 1, "max_posts_per_site": 2}, "p"),
        ({"p": 2.5}, "p"),
        ({"target": 0.0}, "target"),
        ({"target": -3.0}, "target"),
        ({"max_posts_per_site": 0}, "max_posts_per_site"),
        ({"weights": "linear"}, "weights"),
        ({"threshold": 30.0}, "threshold"),
        ({"target_share": 0.0}, "target_share"),
        ({"second_target": "median"}, "second_target"),
        ({"catchment": 0}, "catchment"),
    ],
)
def test_bad_settings_name_the_setting_and_the_fix(inst, change, setting):
    kwargs = {"p": 1, "candidates": inst["cand"], **change}
    with pytest.raises(PlacementError) as err:
        equity_from_od(inst["od"], inst["need"], inst["supply"], **kwargs)
    msg = str(err.value)
    assert err.value.source == setting and f"{setting}=" in msg
    assert "fix" in msg or "correction" in msg  # English API messages, or French ones


def test_bad_inputs_name_the_input_and_the_fix(inst):
    empty = inst["need"].iloc[:0]
    with pytest.raises(PlacementError, match=r"(?s)demand.*empty.*fix"):
        equity_from_od(inst["od"], empty, inst["supply"], p=1, candidates=inst["cand"])
    bad = inst["need"].copy()
    bad.iloc[3] = np.nan
    with pytest.raises(PlacementError, match=str(bad.index[3])):
        equity_from_od(inst["od"], bad, inst["supply"], p=1, candidates=inst["cand"])
    with pytest.raises(PlacementError, match="origin ids absent from demand"):
        equity_from_od(
            inst["od"], inst["need"].iloc[1:], inst["supply"], p=1, candidates=inst["cand"]
        )
    # no existing advisor: the default target (mean accessibility) is 0 → ask for a target
    with pytest.raises(PlacementError, match=r"(?s)target.*fix"):
        equity_from_od(
            inst["od"], inst["need"], inst["supply"].iloc[:0], p=1, candidates=inst["cand"]
        )
    with pytest.raises(PlacementError, match="new_posts"):
        equity_of_posts(inst["od"], inst["need"], inst["supply"], ["not-a-site"])
