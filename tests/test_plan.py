"""End-to-end plan on the embedded 49 bundle, checked against independent computations."""

import geopandas as gpd
import numpy as np
import pyogrio
import pytest

from cnfs_geo import catalog
from cnfs_geo.outputs import write_geopackage
from cnfs_geo.plan import Scenario, run


@pytest.fixture(scope="module")
def plan(plan49):
    return plan49


def test_communes_and_population(plan):
    assert len(plan.communes) == 176
    assert int(plan.communes["population"].sum()) == 833_776


def _brute_force_minutes(points: gpd.GeoSeries, targets: gpd.GeoSeries, settings) -> np.ndarray:
    # independent of the KD-tree: every pairwise distance with shapely
    d = np.array([targets.distance(p).min() for p in points])
    return d * settings.detour_factor / (settings.speed_kmh * 1000 / 60)


def test_nearest_times_match_a_brute_force_check(plan, plan49_commune):
    # the default plan counts people at its demand units (finest units, issue 9): every
    # unit's time is checked from its own point …
    u = plan.units
    pts = gpd.GeoSeries(gpd.points_from_xy(u.x, u.y), index=u.index, crs=u.crs)
    acc = plan.places[plan.places.service_level == "accompaniment"].geometry
    assert np.allclose(
        u["minutes_before"].to_numpy(), _brute_force_minutes(pts, acc, plan.settings)
    )
    # … and a commune's time is the population-weighted mean of its units'
    w = u["population"].where(u["population"] > 0, 1e-9)
    mean = (u["minutes_before"] * w).groupby(u["insee"]).sum() / w.groupby(u["insee"]).sum()
    assert np.allclose(plan.communes["minutes_before"], mean.reindex(plan.communes.index))
    # one point per commune: the commune's representative point
    c = plan49_commune.communes
    pts = gpd.GeoSeries(gpd.points_from_xy(c.ref_x, c.ref_y), index=c.index, crs=c.crs)
    expected = _brute_force_minutes(pts, acc, plan.settings)
    assert np.allclose(c["minutes_before"].to_numpy(), expected)
    # access-only places never cover: the nearest place is always an accompaniment place
    kinds = plan.places.set_index("place_id")["service_level"]
    for p in (plan, plan49_commune):
        assert (p.communes["nearest_place_before"].map(kinds) == "accompaniment").all()


def test_hand_checked_communes(plan):
    """A few communes checked by hand from the raw coordinates (see the closing note)."""
    c = plan.communes
    # Angers has dozens of accompaniment places inside the city: covered within 5 min
    assert c.loc["49007", "minutes_before"] < 5 and c.loc["49007", "covered_before"]
    # Bourg-l'Évêque (49038, 0 % fibre) has no place within 10 min before the plan …
    assert not c.loc["49038", "covered_before"]
    # … and every uncovered commune is beyond 10 min, every covered one within
    assert (c["covered_before"] == (c["minutes_before"] <= 10)).all()


def test_result_is_not_vacuous(plan):
    c = plan.communes
    assert (~c["covered_before"]).sum() > 0, "some communes must be uncovered before"
    newly = c["covered_after"] & ~c["covered_before"]
    assert newly.sum() > 0, "the posts must cover some of them"
    assert not (c["covered_before"] & ~c["covered_after"]).any()
    assert (c["minutes_after"] <= c["minutes_before"]).all()
    assert len(plan.posts) == 8 and plan.posts["post_id"].is_unique
    s = plan.summary()
    assert s["population_covered_after"] > s["population_covered_before"]
    assert s["cost_eur"] == 8 * 50_000


@pytest.mark.parametrize("which", ["finest", "commune"])
def test_posts_cover_what_they_claim(plan, plan49_commune, which):
    p = plan if which == "finest" else plan49_commune
    u = p.units
    pts = gpd.GeoSeries(gpd.points_from_xy(u.x, u.y), index=u.index, crs=u.crs)
    to_posts = _brute_force_minutes(pts, p.posts.geometry, p.settings)
    newly = (to_posts <= 10) & ~u["covered_before"].to_numpy()
    assert newly.sum() == (u["covered_after"] & ~u["covered_before"]).sum()
    assert p.posts["covered_population"].sum() == pytest.approx(u.loc[newly, "population"].sum())
    assert p.posts["covered_need"].sum() == pytest.approx(u.loc[newly, "need"].sum())
    # the solver's objective is that newly covered need
    assert p.solution["objective"] == pytest.approx(u.loc[newly, "need"].sum())
    assert p.solution["gap"] == pytest.approx(0, abs=1e-6)


def test_gap_ranking(plan):
    c = plan.communes
    gaps = c[c["gap"]].sort_values("gap_rank")
    assert list(gaps["gap_rank"]) == list(range(1, len(gaps) + 1))
    assert gaps["need"].is_monotonic_decreasing
    assert c.loc[~c["gap"], "gap_rank"].isna().all()


def test_every_place_in_the_departement(plan):
    outline = plan.departement.geometry.iloc[0].buffer(plan.settings.coordinate_tolerance_m)
    assert plan.places.within(outline).all()
    assert plan.places["insee"].isin(plan.communes.index).all()


def test_other_threshold_changes_the_diagnosis(bundle, prepared49, prepared49_15):
    p15 = run(
        Scenario(departement="49", posts=2, threshold_minutes=15, data_dir=str(bundle.path)),
        prepared=prepared49_15,  # the same département, 15 min and data: prepared once
    )
    p10_cov = (
        run(
            Scenario(departement="49", posts=2, threshold_minutes=10, data_dir=str(bundle.path)),
            prepared=prepared49,  # the same département, 10 min and data: prepared once
        )
        .communes["covered_before"]
        .sum()
    )
    assert p15.communes["covered_before"].sum() >= p10_cov
    assert len(p15.posts) == 2


@pytest.mark.parametrize("dep", ["2A", "974"])
def test_plan_other_departements(raw_dir, dep):
    p = run(Scenario(departement=dep, posts=3, data_dir=str(raw_dir)))
    d = catalog.resolve_data_dir(raw_dir)
    from cnfs_geo import territory

    cog = territory.cog_communes(d)
    cur = cog[(cog.type == "commune-actuelle") & (cog.departement == dep)]
    assert len(p.communes) == len(cur)
    assert int(p.communes["population"].sum()) == int(cur["population"].sum())
    assert len(p.places) > 0 and len(p.posts) == 3


def test_compare_posts_curve(bundle, prepared49, plan49):
    from cnfs_geo.plan import compare_posts

    sc = Scenario(departement="49", threshold_minutes=10, data_dir=str(bundle.path))
    prep = prepared49  # prepare(sc), built once per session
    table = compare_posts(sc, [0, 2, 4, 8], prepared=prep)
    assert list(table["posts"]) == [0, 2, 4, 8]
    # 0 posts = the diagnosis; each exact solve can only cover more
    assert table["need_covered"].iloc[0] == pytest.approx(
        prep.coverage_before.set_index("threshold_min").loc[10.0, "need_covered"], rel=1e-6
    )
    assert table["need_covered"].is_monotonic_increasing
    # marginal gains are the differences of the covered need per added post
    assert table["marginal_need"].iloc[1] == pytest.approx(
        (table["need_covered"].iloc[1] - table["need_covered"].iloc[0]) / 2, abs=0.1
    )
    # the 8-post row is the plan of 8 posts run on its own (conftest.plan49: the same
    # scenario run on the same prepared49)
    assert plan49.scenario.key == sc.key and plan49.scenario.p == 8
    assert table.loc[table.posts == 8, "pct_need_covered"].item() == pytest.approx(
        plan49.summary()["pct_need_covered_after"], abs=1e-3
    )


@pytest.mark.parametrize("unit,n_units", [("iris", 367), ("commune2018", 183)])
def test_finer_demand_units(bundle, plan, unit, n_units, request):
    # the same scenarios as conftest.plan49_iris and plan49_commune2018, built once per session
    p = request.getfixturevalue(f"plan49_{unit}")
    assert p.scenario == Scenario(
        departement="49", posts=8, demand_unit=unit, data_dir=str(bundle.path)
    )
    assert p.scenario.demand_unit == unit
    assert len(p.units) == n_units
    cov = p.coverage_before.set_index("threshold_min")
    assert cov.loc[10.0, "population"] == pytest.approx(833_776)  # totals always COG 2026
    assert cov.loc[10.0, "units"] == n_units
    assert p.units.attrs["demand_unit"] == p.demand_unit != plan.demand_unit
    # commune figures are population-weighted aggregates of the units
    u = p.units
    share = (u["population"] * u["covered_before"]).groupby(u["insee"]).sum() / u.groupby("insee")[
        "population"
    ].sum()
    assert np.allclose(p.communes["pct_covered_before"], 100 * share.reindex(p.communes.index))
    assert (p.communes["covered_before"] == (p.communes["pct_covered_before"] >= 50)).all()
    assert p.summary()["population_covered_after"] >= p.summary()["population_covered_before"]


def test_fibre_what_if_scenario(bundle, plan, prepared49_fibre):
    p = run(
        Scenario(departement="49", posts=8, fibre_target_pct=100, data_dir=str(bundle.path)),
        prepared=prepared49_fibre,  # the same scenario but the posts, prepared once
    )
    assert (p.communes["pct_fibre"] >= 100 - 1e-9).all()
    assert p.communes["need"].sum() < plan.communes["need"].sum()
    assert int(p.communes["population"].sum()) == 833_776


def test_bad_scenario_options():
    from cnfs_geo._errors import ValidationError

    with pytest.raises(ValidationError, match="demand_unit"):
        Scenario(demand_unit="canton")
    with pytest.raises(ValidationError, match="osm_file"):
        Scenario(travel="road")
    with pytest.raises(ValidationError, match="fibre_target_pct"):
        Scenario(fibre_target_pct=150)


def test_fixed_plus_itinerant_plan(plan49_mixed, tmp_path):
    p = plan49_mixed  # Scenario(departement="49", posts=6, itinerant_posts=2) on the bundle
    assert list(p.posts["kind"]) == ["fixed"] * 6 + ["itinerant"] * 2
    assert p.summary()["cost_eur"] == 8 * 50_000
    assert len(p.circuits) == 2 and len(p.timetable) > 0
    served = p.communes["itinerant_circuit"].dropna()
    stops = {c for s in p.circuits["stops"] for c in s.split(";")}
    stop_communes = set(p.units.loc[list(stops), "insee"])
    # a commune is credited to a circuit when it has people newly served: a unit within
    # the threshold of a stop and not covered by the places and fixed posts (a stop may
    # sit in a covered commune to reach its uncovered neighbours)
    u = p.units
    newly = u[u["served_itinerant"] & ~u["covered_after"]]
    assert set(newly["insee"]) == set(served.index)
    assert set(u.loc[list(stops), "itinerant_stop"]) == set(p.circuits["circuit_id"])
    assert not p.communes.loc[served.index, "covered_after"].all()
    assert p.communes.loc[list(stop_communes), "covered_with_itinerant"].all()
    fixed = p.posts[p.posts["kind"] == "fixed"]
    assert not stops & set(fixed["insee"])
    budget = p.settings.advisor_hours_per_post
    week = p.timetable.groupby("circuit_id").agg(h=("hours", "sum"), m=("travel_minutes", "sum"))
    assert ((week["h"] + week["m"] / 60) <= budget + 1e-6).all()
    path = tmp_path / "p.gpkg"
    write_geopackage(p, path)
    layers = {name for name, _ in pyogrio.list_layers(path)}
    assert {"circuits", "timetable"} <= layers
    assert len(gpd.read_file(path, layer="timetable")) == len(p.timetable)


def test_compare_variants(bundle, prepared49, prepared49_fibre, monkeypatch):
    from cnfs_geo import plan as plan_module
    from cnfs_geo.plan import compare_scenarios, standard_variants

    sc = Scenario(departement="49", posts=8, data_dir=str(bundle.path))
    # the variants' two prepared scenarios (without and with the fibre what-if) are
    # conftest's, built once per session: prepare answers from them, and must be asked
    # once per distinct scenario key, in the order of the variants
    shared = {repr(pr.scenario.key): pr for pr in (prepared49, prepared49_fibre)}
    asked: list[str] = []

    def prepare(scenario):
        asked.append(repr(scenario.key))
        return shared[asked[-1]]

    monkeypatch.setattr(plan_module, "prepare", prepare)
    table = compare_scenarios(standard_variants(sc, itinerant_posts=2))
    assert asked == list(shared)
    assert len(table) == 4 and (table["cost_eur"] == 400_000).all()
    assert list(table["itinerant_posts"]) == [0, 2, 0, 2]
    fibre = table["fibre_target_pct"].notna()
    assert (table.loc[fibre, "need_total"] < table.loc[~fibre, "need_total"].iloc[0]).all()
    mixed = table["itinerant_posts"] > 0
    assert (table.loc[mixed, "communes_served_itinerant"] > 0).all()


def test_equity_model_plan(bundle, plan, plan49_equity):
    p = plan49_equity  # 8 posts, 10 min, the bundle, model="equity", built once per session
    assert p.scenario.key == Scenario(departement="49", data_dir=str(bundle.path)).key
    assert p.scenario.model == "equity" and p.scenario.p == 8
    assert p.solution["model"] == "equity" and p.solution["gap"] == pytest.approx(0, abs=1e-6)
    assert len(p.posts) == 8
    # it chooses differently from maximal covering, which covers more within 10 min …
    assert set(p.posts["candidate_id"]) != set(plan.posts["candidate_id"])
    assert p.summary()["need_covered_after"] <= plan.summary()["need_covered_after"]
    # … and credits to each post exactly the need it newly brings within the threshold
    # (counted on the demand units: finest units by default since issue 9)
    u = p.units
    assert p.posts["covered_need"].sum() == pytest.approx(
        u.loc[u["covered_after"] & ~u["covered_before"], "need"].sum()
    )


def test_settings_reach_the_gap_and_itinerant_stages(bundle, plan, plan49_mixed):
    from cnfs_geo.settings import Settings

    # one plan (one prepare: a change of settings reads the files again) with settings of
    # both stages changed: the gap stage (in prepare, whatever the posts) and the circuits
    changed = Settings().replace(
        thin_share=0.9, high_need_quantile=0.25, itinerant_max_stop_minutes=12.0
    )
    p = run(
        Scenario(
            departement="49",
            posts=6,
            itinerant_posts=2,
            data_dir=str(bundle.path),
            settings=changed,
        )
    )
    # a higher "thin" bar and a lower fragility bar can only add priority communes
    assert p.communes["priority_gap"].sum() > plan.communes["priority_gap"].sum()
    assert (
        plan.communes["priority_gap"][plan.communes["priority_gap"]]
        .index.isin(p.communes.index[p.communes["priority_gap"]])
        .all()
    )
    # circuits within the shorter reach (the default 25 min lets them go further)
    assert len(p.circuits) and (p.circuits["max_minutes_from_base"] <= 12.0 + 1e-9).all()
    assert (plan49_mixed.circuits["max_minutes_from_base"] > 12.0).any()


def test_inputs_are_read_first_and_the_journal_is_what_the_stages_record(monkeypatch):
    """``plan`` reads and checks every input before any transform
    (:func:`cnfs_geo.plan.check_inputs`); the stages then reuse the frames read there,
    so what they build and the journal (events, in order) are what the stages alone
    give."""
    import pandas as pd

    from cnfs_geo import _journal, territory
    from cnfs_geo import plan as plan_module

    sc = Scenario(departement="49", posts=2, demand_unit="finest")
    d = catalog.resolve_data_dir(catalog.bundle_dir())
    # the COG code table is cached for the process (territory._cog_code_table) and its
    # first build says one more COG read: built here, so both runs below find it cached
    with _journal.collect(isolated=True):
        territory.code_table(d)
    order: list[str] = []
    real_check, real_communes = plan_module.check_inputs, territory.communes_from_cog
    monkeypatch.setattr(
        plan_module, "check_inputs", lambda *a: order.append("check") or real_check(*a)
    )
    monkeypatch.setattr(
        territory, "communes_from_cog", lambda *a: order.append("build") or real_communes(*a)
    )
    with _journal.collect() as checked_first:
        a = plan_module._base_frames_uncached(sc, "49", d, plan_module._Laps())
    assert order == ["check", "build"]
    monkeypatch.setattr(plan_module, "check_inputs", lambda *a: None)
    with _journal.collect() as stages_alone:
        b = plan_module._base_frames_uncached(sc, "49", d, plan_module._Laps())
    assert len(checked_first) > 10 and checked_first == stages_alone
    for x, y in zip(a[:4], b[:4]):
        pd.testing.assert_frame_equal(x, y)


def test_demand_units_are_built_once_per_base_unit_and_fibre(monkeypatch, bundle):
    """A variant of a prepared plan that changes neither the files, the settings the
    base stages read, the unit nor the fibre what-if (here the threshold) reuses the
    demand units (``plan._UNITS_CACHE``): same units, same journal, a copy each time."""
    import dataclasses
    from collections import OrderedDict

    import pandas as pd

    from cnfs_geo import demand
    from cnfs_geo import plan as plan_module

    built: list[str] = []
    real = demand.demand_units
    monkeypatch.setattr(
        demand, "demand_units", lambda *a, **k: built.append(k["unit"]) or real(*a, **k)
    )
    monkeypatch.setattr(plan_module, "_UNITS_CACHE", OrderedDict())
    sc = Scenario(departement="49", posts=2, data_dir=str(bundle.path))
    a = plan_module.prepare(sc)
    added = ["minutes_before", "nearest_place_before", "covered_before"]  # by prepare
    cols = list(a.units.columns.drop(added))
    fresh = a.units[cols].copy()
    a.units["population"] = 0.0  # a caller's change stays in its copy
    b = plan_module.prepare(dataclasses.replace(sc, threshold_minutes=15))
    assert built == ["finest"]
    pd.testing.assert_frame_equal(b.units[cols], fresh)
    assert b.units.attrs == fresh.attrs and fresh.attrs["demand_unit_key"] == "finest"
    assert b.journal_events == a.journal_events and len(a.journal_events) > 10
    assert b.units["covered_before"].sum() > a.units["covered_before"].sum()  # at 15 min
    plan_module.prepare(dataclasses.replace(sc, fibre_target_pct=100.0))
    plan_module.prepare(dataclasses.replace(sc, demand_unit="commune"))
    assert built == ["finest", "finest", "commune"]
