"""Tests of cnfs_geo.placement.median (p-median) on the real Maine-et-Loire instance.

Instance: conftest.fs49 (176 communes of 49, chef-lieu candidates, the 28 France
Services as existing sites, crow-fly travel times). Exactness is checked against
spopt (PySAL) solved by CBC through pulp on the same dense cost matrix; spopt is a
test dependency only. The two exactness checks run on the real communes of one EPCI
of 49 (CA Saumur Val de Loire, 45 communes and their chefs-lieux, with the 28 France
Services of the département as existing sites): the same question on a real instance
that spopt builds and CBC solves in well under a second, instead of ~10 s for the
whole département.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from cnfs_geo import access, placement
from cnfs_geo._errors import PlacementError

T = 10.0
P = 8
EPCI = "200071876"  # CA Saumur Val de Loire, the EPCI of 49 with the most communes (45)


@pytest.fixture(scope="module")
def inst(fs49):
    """The real 49 instance (built once in conftest.fs49)."""
    return fs49


@pytest.fixture(scope="module")
def epci_inst(fs49):
    """The real instance restricted to the communes of one EPCI (:data:`EPCI`): demand and
    candidates are its communes and their chefs-lieux; the existing sites stay the 28
    France Services of 49 (the OD tables are those of fs49, filtered)."""
    communes = fs49["communes"][fs49["communes"]["epci"] == EPCI]
    assert communes["epci_nom"].iloc[0] == "CA Saumur Val de Loire" and len(communes) == 45
    cand = fs49["cand"][fs49["cand"]["epci"] == EPCI]
    sites = [*cand.index, *fs49["ex_ids"]]
    od = fs49["od_wide"]
    return {
        **fs49,
        "communes": communes,
        "cand": cand,
        "od_wide": od[od["origin_id"].isin(communes.index) & od["destination_id"].isin(sites)],
        "dense": fs49["dense"].loc[communes.index, sites],
        "n_cand": len(cand),
    }


def _spopt_solver():
    pulp = pytest.importorskip("pulp")
    pytest.importorskip("spopt")
    return pulp, pulp.PULP_CBC_CMD(msg=False)


def _predefined(inst) -> np.ndarray:
    return np.r_[np.zeros(inst["n_cand"]), np.ones(len(inst["ex_ids"]))].astype(int)


# ----------------------------------------------------------------------------------------
# p-median
# ----------------------------------------------------------------------------------------
def test_pmedian_equals_spopt_with_existing_sites(epci_inst):
    inst = epci_inst
    pulp, solver = _spopt_solver()
    from spopt.locate import PMedian

    w = inst["communes"]["population"]
    ours = placement.pmedian_from_od(
        inst["od_wide"],
        w,
        p=P,
        candidates=inst["cand"],
        demand=inst["communes"],
        rules=placement.Rules(existing=inst["ex_ids"]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = PMedian.from_cost_matrix(
            inst["dense"].to_numpy(),
            w.to_numpy(float),
            p_facilities=P + len(inst["ex_ids"]),
            predefined_facilities_arr=_predefined(inst),
        ).solve(solver)
    assert ours.solution.objective == pytest.approx(pulp.value(m.problem.objective), rel=1e-9)
    assert ours.solution.gap == pytest.approx(0.0, abs=1e-9)
    assert len(ours.posts) == P
    # every commune is assigned to its nearest open site; posts' population adds up
    a = ours.assignment
    assert float((w * a["minutes"]).sum()) == pytest.approx(ours.solution.objective)
    assert ours.posts["covered_population"].sum() == pytest.approx(float(w[a["new_post"]].sum()))


def test_pmedian_k_expansion_is_exact_without_existing_sites(epci_inst):
    """Start from the 2 nearest sites only: the k-doubling must reach the full optimum."""
    inst = epci_inst
    pulp, solver = _spopt_solver()
    from spopt.locate import PMedian

    w = inst["communes"]["population"]
    ours = placement.pmedian_from_od(inst["od_wide"], w, p=P, candidates=inst["cand"], k=2)
    assert ours.solution.details["rounds"] > 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = PMedian.from_cost_matrix(
            inst["dense"].iloc[:, : inst["n_cand"]].to_numpy(), w.to_numpy(float), p_facilities=P
        ).solve(solver)
    assert ours.solution.objective == pytest.approx(pulp.value(m.problem.objective), rel=1e-9)


def test_pmedian_rules_and_geodataframes(inst):
    w = inst["communes"]["population"]
    free = placement.pmedian_from_od(
        inst["od_wide"],
        w,
        p=P,
        candidates=inst["cand"],
        rules=placement.Rules(existing=inst["ex_ids"]),
    )
    q = placement.pmedian_from_geodataframes(
        inst["communes"],
        inst["cand"],
        weight_col="population",
        p=P,
        max_minutes=60,
        rules=placement.Rules(existing=inst["existing"], groups="epci", max_per_group=1),
    )
    assert q.posts["group"].is_unique
    assert q.solution.objective >= free.solution.objective - 1e-6
    g = placement.pmedian_from_geodataframes(
        inst["communes"],
        inst["cand"],
        weight_col="population",
        p=P,
        max_minutes=60,
        rules=placement.Rules(existing=inst["existing"]),
    )
    assert list(g.posts["candidate_id"]) == list(free.posts["candidate_id"])
    with pytest.raises(PlacementError, match="max_minutes"):  # 1 post cannot reach all in 30 min
        placement.pmedian_from_od(
            access.od_crowfly(
                inst["communes"][["ref_x", "ref_y"]].set_axis(["x", "y"], axis=1),
                inst["cand"][["x", "y"]],
                max_minutes=30,
            ),
            w,
            p=1,
            candidates=inst["cand"],
        )
