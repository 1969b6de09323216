"""2SFCA / E2SFCA accessibility (cnfs_geo.coverage.two_step_fca, site_supply_ratios).

Real data: the communes of Maine-et-Loire (demand = population at the
representative point) and the France Services of 49 (advisors = 2 each, the
France Services minimum), crow-fly OD within a 20-minute catchment. Results are
cross-checked against PySAL ``access`` (a test dependency only).

One small hand-made example (labelled as such) checks the arithmetic by hand.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from cnfs_geo import access as od_access
from cnfs_geo import coverage
from cnfs_geo._errors import ValidationError

CATCHMENT = 20.0
FS_ADVISORS = 2.0  # France Services label minimum: two trained agents per site
LUO_QI_20 = [(5.0, 1.0), (10.0, 0.68), (15.0, 0.22), (20.0, 0.03)]


# --------------------------------------------------------------------------------------
# Real 49 data
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def communes_49(cog49):
    return cog49.copy()  # territory.communes_from_cog("49", bundle)


@pytest.fixture(scope="module")
def fs_49(bundle) -> pd.DataFrame:
    """France Services of 49 from the ANCT list, in Lambert-93, indexed by id_fs (str)."""
    path = bundle.file("france_services")
    fs = pd.read_csv(path, dtype={"id_fs": str, "insee_dep": str, "insee_com": str})
    fs = fs[fs["insee_dep"] == "49"].copy()
    tr = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)
    fs["x"], fs["y"] = tr.transform(fs["longitude"].to_numpy(), fs["latitude"].to_numpy())
    fs["advisors"] = FS_ADVISORS
    return fs.set_index("id_fs").sort_index()


@pytest.fixture(scope="module")
def od_49(communes_49, fs_49) -> pd.DataFrame:
    return od_access.od_crowfly(
        communes_49, fs_49, max_minutes=CATCHMENT, origin_xy=("ref_x", "ref_y")
    )


@pytest.fixture(scope="module")
def inputs_49(communes_49, fs_49, od_49):
    demand = communes_49["population"].astype(float).rename("population")
    supply = fs_49["advisors"].rename("advisors")
    return od_49, demand, supply


def _pysal(od, demand, supply, *, weight_fn=None, normalize=False) -> pd.Series:
    """PySAL access 2SFCA (raw: advisors per inhabitant), 0 where no site is reachable."""
    access = pytest.importorskip("access")
    demand_df = demand.rename("pop").to_frame()
    demand_df.index.name = "geoid"
    supply_df = supply.rename("advisors").to_frame()
    supply_df.index.name = "site"
    acc = access.Access(
        demand_df=demand_df,
        demand_index=True,
        demand_value="pop",
        supply_df=supply_df,
        supply_index=True,
        supply_value="advisors",
        cost_df=od[["origin_id", "destination_id", "minutes"]].copy(),
        cost_origin="origin_id",
        cost_dest="destination_id",
        cost_name="minutes",
    )
    if weight_fn is None:
        res = acc.two_stage_fca(name="x", max_cost=CATCHMENT, normalize=normalize)
    else:
        res = acc.enhanced_two_stage_fca(
            name="x", max_cost=CATCHMENT, weight_fn=weight_fn, normalize=normalize
        )
    return res["x_advisors"].reindex(demand.index).fillna(0.0)


def test_fs_49_input_is_real(fs_49, communes_49, od_49):
    # SOURCES.md: 28 France Services in 49 in the 2024-08-01 list
    assert len(fs_49) == 28
    assert fs_49[["x", "y"]].notna().all().all()
    # every site lies within the département's extent (lat/lon -> EPSG:2154 is right)
    xmin, ymin, xmax, ymax = communes_49.total_bounds
    assert fs_49["x"].between(xmin, xmax).all() and fs_49["y"].between(ymin, ymax).all()
    assert od_49["minutes"].max() <= CATCHMENT


@pytest.mark.parametrize("weights", ["none", "stepped", "gaussian"])
def test_matches_pysal_access(inputs_49, weights):
    od, demand, supply = inputs_49
    weights_mod = pytest.importorskip("access.weights")
    fn = {
        "none": None,
        "stepped": weights_mod.step_fn(dict(LUO_QI_20)),
        "gaussian": weights_mod.gaussian(CATCHMENT / 2),
    }[weights]
    kw = {"steps": LUO_QI_20} if weights == "stepped" else {}
    ours = coverage.two_step_fca(od, demand, supply, catchment=CATCHMENT, weights=weights, **kw)
    ref = _pysal(od, demand, supply, weight_fn=fn) * 10_000  # PySAL: per inhabitant
    assert ours.index.equals(demand.index)
    assert ours["access"].gt(0).sum() > 100  # a real, non-trivial comparison
    np.testing.assert_allclose(ours["access"].to_numpy(), ref.to_numpy(), rtol=1e-9, atol=0)


@pytest.mark.parametrize("weights", ["none", "stepped", "gaussian"])
def test_site_ratios_match_pysal_weighted_catchment(inputs_49, weights):
    od, demand, supply = inputs_49
    fca = pytest.importorskip("access.fca")
    weights_mod = pytest.importorskip("access.weights")
    fn = {
        "none": None,
        "stepped": weights_mod.step_fn(dict(LUO_QI_20)),
        "gaussian": weights_mod.gaussian(CATCHMENT / 2),
    }[weights]
    sites = coverage.site_supply_ratios(
        od, demand, supply, catchment=CATCHMENT, weights=weights
    )  # default steps = Luo & Qi on 20 min
    d_j = fca.weighted_catchment(
        demand.rename("pop").to_frame(),
        od.copy(),
        CATCHMENT,
        cost_source="origin_id",
        cost_dest="destination_id",
        cost_cost="minutes",
        loc_index=True,
        loc_value="pop",
        weight_fn=fn,
    )
    d_j = d_j.reindex(sites.index)
    np.testing.assert_allclose(sites["demand_weighted"], d_j, rtol=1e-9, atol=0)
    np.testing.assert_allclose(sites["ratio"], sites["supply"] / d_j * 10_000, rtol=1e-12)


def test_units_match_pysal_normalised(inputs_49):
    # PySAL normalize=True divides by the demand-weighted mean access; by conservation
    # that mean is total supply / total demand, so ours / (per * S / D) must equal it.
    od, demand, supply = inputs_49
    ours = coverage.two_step_fca(od, demand, supply, catchment=CATCHMENT)
    ref = _pysal(od, demand, supply, normalize=True)
    mean = 10_000 * supply.sum() / demand.sum()
    np.testing.assert_allclose(ours["access"] / mean, ref, rtol=1e-9)


@pytest.mark.parametrize("weights", ["none", "stepped", "gaussian"])
def test_conservation_49(inputs_49, weights):
    od, demand, supply = inputs_49
    sites = coverage.site_supply_ratios(od, demand, supply, catchment=CATCHMENT, weights=weights)
    assert (sites["demand_weighted"] > 0).all()  # precondition: every site has demand
    units = coverage.two_step_fca(od, demand, supply, catchment=CATCHMENT, weights=weights)
    total = (units["access"] * units["demand"]).sum() / 10_000
    assert total == pytest.approx(supply.sum(), rel=1e-12)
    assert supply.sum() == 28 * FS_ADVISORS


def test_49_figures_are_consistent(inputs_49, od_49):
    od, demand, supply = inputs_49
    units = coverage.two_step_fca(od, demand, supply, catchment=CATCHMENT)
    # units reaching no site within 20 min have access 0, the others > 0
    reach = od_49.groupby("origin_id").size().reindex(units.index, fill_value=0)
    assert (units["n_sites"] == reach).all()
    assert ((units["access"] > 0) == (reach > 0)).all()
    assert units.attrs["unit"] == "advisors per 10000 population"
    assert units.attrs["travel_model"] == "crow-fly"
    # per scales linearly
    per_1 = coverage.two_step_fca(od, demand, supply, catchment=CATCHMENT, per=1)
    np.testing.assert_allclose(per_1["access"] * 10_000, units["access"], rtol=1e-12)
    # a shorter catchment is exactly the same as pre-filtering the OD table
    short = coverage.two_step_fca(od, demand, supply, catchment=10)
    pre = coverage.two_step_fca(od[od["minutes"] <= 10], demand, supply, catchment=10)
    pd.testing.assert_frame_equal(short, pre)
    # deterministic regardless of input row order
    shuffled = od.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(
        coverage.two_step_fca(
            shuffled, demand.iloc[::-1], supply.iloc[::-1], catchment=CATCHMENT, weights="gaussian"
        ),
        coverage.two_step_fca(od, demand, supply, catchment=CATCHMENT, weights="gaussian"),
    )


# --------------------------------------------------------------------------------------
# Hand-made example (NOT real data): two sites P (2 advisors), Q (1 advisor); three
# units a (1 000 inh.), b (3 000), c (6 000). Travel times: a-P 5, b-P 12, b-Q 8,
# c-Q 18, c-P 25 (beyond the 20-min catchment).
# --------------------------------------------------------------------------------------

HAND_OD = pd.DataFrame(
    {
        "origin_id": ["a", "b", "b", "c", "c"],
        "destination_id": ["P", "P", "Q", "Q", "P"],
        "minutes": [5.0, 12.0, 8.0, 18.0, 25.0],
    }
)
HAND_DEMAND = pd.Series({"a": 1000.0, "b": 3000.0, "c": 6000.0}, name="population")
HAND_SUPPLY = pd.Series({"P": 2.0, "Q": 1.0}, name="advisors")


def test_hand_example_classic():
    # D_P = 1000 + 3000 = 4000 -> R_P = 2/4000 = 5 per 10 000
    # D_Q = 3000 + 6000 = 9000 -> R_Q = 1/9000 = 1.1111 per 10 000  (c-P at 25 min is out)
    # A_a = R_P = 5; A_b = R_P + R_Q = 6.1111; A_c = R_Q = 1.1111
    sites = coverage.site_supply_ratios(HAND_OD, HAND_DEMAND, HAND_SUPPLY, catchment=20)
    assert sites["demand_weighted"].tolist() == [4000.0, 9000.0]
    assert sites["n_units"].tolist() == [2, 2]
    np.testing.assert_allclose(sites["ratio"], [5.0, 10_000 / 9000], rtol=1e-12)
    units = coverage.two_step_fca(HAND_OD, HAND_DEMAND, HAND_SUPPLY, catchment=20)
    assert units.index.tolist() == ["a", "b", "c"]
    assert units["n_sites"].tolist() == [1, 2, 1]
    np.testing.assert_allclose(
        units["access"], [5.0, 5.0 + 10_000 / 9000, 10_000 / 9000], rtol=1e-12
    )
    # conservation: 1000*5 + 3000*6.1111 + 6000*1.1111 = 30 000 -> 3 advisors
    assert (units["access"] * units["demand"]).sum() / 10_000 == pytest.approx(3.0, rel=1e-12)


def test_hand_example_stepped():
    # steps (10 min -> 1.0, 20 min -> 0.5): w(a-P)=1, w(b-P)=0.5, w(b-Q)=1, w(c-Q)=0.5
    # D_P = 1000*1 + 3000*0.5 = 2500 -> R_P = 2/2500 = 8 per 10 000
    # D_Q = 3000*1 + 6000*0.5 = 6000 -> R_Q = 1/6000 = 1.6667 per 10 000
    # A_a = 1*8 = 8; A_b = 0.5*8 + 1*1.6667 = 5.6667; A_c = 0.5*1.6667 = 0.8333
    units = coverage.two_step_fca(
        HAND_OD,
        HAND_DEMAND,
        HAND_SUPPLY,
        catchment=20,
        weights="stepped",
        steps=[(10, 1.0), (20, 0.5)],
    )
    np.testing.assert_allclose(units["access"], [8.0, 4.0 + 10 / 6, 10 / 12], rtol=1e-12)
    # conservation holds with weights too: 8000 + 17000 + 5000 = 30 000 -> 3 advisors
    assert (units["access"] * units["demand"]).sum() / 10_000 == pytest.approx(3.0, rel=1e-12)
    assert units.attrs["method"] == "E2SFCA"


def test_hand_example_gaussian():
    # sigma = 10: w(t) = exp(-t^2/200); D_P = 1000 w(5) + 3000 w(12), R_P = 2 / D_P, ...
    w = {t: math.exp(-t * t / 200.0) for t in (5, 12, 8, 18)}
    r_p = 2 / (1000 * w[5] + 3000 * w[12])
    r_q = 1 / (3000 * w[8] + 6000 * w[18])
    expected = [w[5] * r_p, w[12] * r_p + w[8] * r_q, w[18] * r_q]
    units = coverage.two_step_fca(
        HAND_OD, HAND_DEMAND, HAND_SUPPLY, catchment=20, weights="gaussian", sigma=10, per=1
    )
    np.testing.assert_allclose(units["access"], expected, rtol=1e-12)
    # default sigma is catchment / 2 = 10
    default = coverage.two_step_fca(
        HAND_OD, HAND_DEMAND, HAND_SUPPLY, catchment=20, weights="gaussian", per=1
    )
    pd.testing.assert_series_equal(default["access"], units["access"])


def test_fca_weights_values():
    t = np.array([0.0, 5.0, 5.0001, 10.0, 14.9, 20.0, 20.5])
    np.testing.assert_array_equal(
        coverage.fca_weights(t, catchment=20, weights="stepped"),
        [1.0, 1.0, 0.68, 0.68, 0.22, 0.03, 0.0],
    )
    np.testing.assert_array_equal(coverage.fca_weights(t, catchment=20), [1, 1, 1, 1, 1, 1, 0])
    g = coverage.fca_weights(np.array([0.0, 10.0, 25.0]), catchment=20, weights="gaussian")
    np.testing.assert_allclose(g, [1.0, math.exp(-0.5), 0.0])
    assert coverage.luo_qi_steps(20) == LUO_QI_20


def test_unit_out_of_reach_and_site_without_demand(caplog):
    # hand-made: unit d reaches nothing (access 0); site R only reaches a zero-demand
    # unit z (ratio undefined -> NaN, warning, its advisor is not shared out)
    od = pd.concat(
        [HAND_OD, pd.DataFrame({"origin_id": ["z"], "destination_id": ["R"], "minutes": [3.0]})],
        ignore_index=True,
    )
    demand = pd.concat([HAND_DEMAND, pd.Series({"d": 500.0, "z": 0.0})])
    supply = pd.concat([HAND_SUPPLY, pd.Series({"R": 1.0, "S": 0.0})])
    with caplog.at_level(logging.WARNING, logger="cnfs_geo.coverage"):
        sites = coverage.site_supply_ratios(od, demand, supply, catchment=20)
    assert "['R']" in caplog.text and "no demand" in caplog.text
    assert math.isnan(sites.loc["R", "ratio"]) and math.isnan(sites.loc["S", "ratio"])
    units = coverage.two_step_fca(od, demand, supply, catchment=20)
    assert units.loc["d", "access"] == 0.0 and units.loc["d", "n_sites"] == 0
    assert units.loc["z", "access"] == 0.0 and units.loc["z", "n_sites"] == 1
    assert np.isfinite(units["access"]).all()
    # conservation then misses exactly R's advisor
    total = (units["access"] * units["demand"]).sum() / 10_000
    assert total == pytest.approx(3.0, rel=1e-12)


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _problems(excinfo) -> str:
    return "\n".join(excinfo.value.problems)


def test_missing_od_column():
    with pytest.raises(ValidationError) as e:
        coverage.two_step_fca(
            HAND_OD.drop(columns="minutes"), HAND_DEMAND, HAND_SUPPLY, catchment=20
        )
    assert "'minutes'" in _problems(e) and e.value.source == "od"


def test_negative_supply():
    with pytest.raises(ValidationError) as e:
        coverage.two_step_fca(HAND_OD, HAND_DEMAND, pd.Series({"P": 2.0, "Q": -1.0}), catchment=20)
    assert e.value.source == "supply" and "['Q']" in _problems(e)


def test_unknown_weights():
    with pytest.raises(ValidationError) as e:
        coverage.two_step_fca(HAND_OD, HAND_DEMAND, HAND_SUPPLY, catchment=20, weights="gravity")
    assert "'gravity'" in _problems(e) and "stepped" in _problems(e)


def test_od_ids_absent_from_demand_and_supply():
    with pytest.raises(ValidationError) as e:
        coverage.two_step_fca(HAND_OD, HAND_DEMAND.drop("c"), HAND_SUPPLY.drop("Q"), catchment=20)
    text = _problems(e)
    assert "origin_id(s) absent from demand" in text and "['c']" in text
    assert "destination_id(s) absent from supply" in text and "['Q']" in text


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"catchment": 0}, "catchment"),
        ({"catchment": 20, "per": -1}, "per"),
        (
            {"catchment": 20, "weights": "stepped", "steps": [(10, 1.0), (5, 0.5)]},
            "strictly increasing",
        ),
        ({"catchment": 20, "weights": "stepped", "steps": [(10, -1.0)]}, ">= 0"),
        ({"catchment": 20, "weights": "stepped", "steps": [(10,)]}, "pairs"),
        ({"catchment": 20, "steps": [(10, 1.0)]}, "weights='stepped'"),
        ({"catchment": 20, "weights": "gaussian", "sigma": 0}, "sigma"),
        ({"catchment": 20, "sigma": 5}, "weights='gaussian'"),
    ],
)
def test_bad_options(kwargs, fragment):
    with pytest.raises(ValidationError) as e:
        coverage.two_step_fca(HAND_OD, HAND_DEMAND, HAND_SUPPLY, **kwargs)
    assert fragment in _problems(e)


def test_bad_minutes_and_duplicates():
    od = pd.concat([HAND_OD, HAND_OD.iloc[[0]]], ignore_index=True)
    od.loc[1, "minutes"] = np.nan
    with pytest.raises(ValidationError) as e:
        coverage.two_step_fca(od, HAND_DEMAND, HAND_SUPPLY, catchment=20)
    text = _problems(e)
    assert "missing, infinite or negative minutes" in text and "[1]" in text
    assert "duplicated (origin_id, destination_id)" in text and "[5]" in text


def test_missing_demand_value():
    with pytest.raises(ValidationError) as e:
        coverage.two_step_fca(
            HAND_OD, HAND_DEMAND.replace(3000.0, np.nan), HAND_SUPPLY, catchment=20
        )
    assert e.value.source == "demand" and "['b']" in _problems(e)


# ---------------------------------------------------------------------------
# Issue 9: posts whose main covered population is a representative-point artefact
# ---------------------------------------------------------------------------


def _artefacts(plan):
    from cnfs_geo.coverage import point_artefacts

    return point_artefacts(
        plan.units,
        plan.communes,
        plan.places,
        plan.posts,
        threshold=plan.scenario.threshold,
        settings=plan.settings,
    )


def test_commune_points_put_the_first_post_on_ombree_danjous_representative_point(
    plan49_commune,
):
    """Before issue 9 (one point per commune), P01 at Bourg-l'Évêque mainly covered the
    representative point of Ombrée d'Anjou, whose chef-lieu already has its France
    Services within 10 min: the named check finds it."""
    a = _artefacts(plan49_commune).set_index("post_id")
    assert "P01" in a.index
    r = a.loc["P01"]
    assert r["post_commune"] == "Bourg-l'Évêque" and r["insee"] == "49248"
    assert r["unit_population"] == 8813
    assert r["unit_minutes_before"] > 10 >= r["chef_lieu_minutes"]
    assert r["chef_lieu_place"] == "France services Ombrée d'Anjou"
    assert not plan49_commune.communes.at["49248", "covered_before"]


def test_default_plan_has_no_representative_point_artefact(plan49):
    """Done-when of issue 9 on the default (finest units) plan."""
    assert plan49.scenario.demand_unit == "finest"
    assert _artefacts(plan49).empty
    assert "Bourg-l'Évêque" not in set(plan49.posts["commune"])
    c = plan49.communes.loc["49248"]
    assert c["covered_before"] and c["minutes_before"] <= 10
