"""Tests of cnfs_geo.itinerant on the real Maine-et-Loire plan (embedded bundle).

The plan is built once per module with :func:`cnfs_geo.plan.run` (176 communes,
COG 2026, need from the IFN 2023, coverage at 10 min by crow-fly × 1.3 at
50 km/h). Travel times are recomputed here independently from the chef-lieu
coordinates (numpy, not the module's helpers) wherever a check depends on them.
Tours and day pairings are checked against brute-force enumeration.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString

from cnfs_geo import access, itinerant, placement
from cnfs_geo._errors import PlacementError, SettingsError, ValidationError
from cnfs_geo.itinerant import itinerant_circuits
from cnfs_geo.settings import DEFAULT

BUDGET = DEFAULT.weekly_hours * (1 - DEFAULT.coordination_share)  # 31.5 h
MIN_VISIT = DEFAULT.itinerant_min_stop_hours  # 2.5 h on site per half-day
MIN_PER_M = DEFAULT.detour_factor / (DEFAULT.speed_kmh * 1000 / 60)  # minutes per crow-fly metre


@pytest.fixture(scope="module")
def plan(plan49):
    return plan49


@pytest.fixture(scope="module")
def communes(plan):
    return plan.communes


@pytest.fixture(scope="module")
def r2(communes):
    """Two itinerant posts, covered communes of high need allowed (the setting
    itinerant_serve_covered; the plan's default is off) so the capacity binds."""
    return itinerant_circuits(communes, n_posts=2, serve_covered=True)


@pytest.fixture(scope="module")
def r_cuts(communes):
    """Need-only objective, 30 min reach, 3.5 h visits and a 0.5 min threshold (a commune
    is served by its own stop only): the exact week check cuts circuits off."""
    return itinerant_circuits(
        communes,
        n_posts=2,
        max_stop_minutes=30,
        priority="need",
        serve_covered=True,
        min_stop_hours=3.5,
        threshold=0.5,
    )


_XY: dict[int, pd.DataFrame] = {}


def _xy(communes) -> pd.DataFrame:
    key = id(communes)
    if key not in _XY:
        _XY[key] = communes[["chef_lieu_x", "chef_lieu_y"]].astype(float)
    return _XY[key]


def matrix(communes, nodes: list[str]) -> np.ndarray:
    """Minutes between chef-lieu points, recomputed here: crow-fly × 1.3 at 50 km/h."""
    p = _xy(communes).loc[list(nodes)].to_numpy()
    return np.hypot(p[:, None, 0] - p[None, :, 0], p[:, None, 1] - p[None, :, 1]) * MIN_PER_M


def minutes(communes, a: str, b: str) -> float:
    return float(matrix(communes, [a, b])[0, 1])


def brute_tour(m: np.ndarray) -> float:
    """Shortest closed tour 0 → … → 0 over every order of the other nodes, all orders at
    once (legs summed left to right, as a closed tour is added up)."""
    n = m.shape[0] - 1
    perms = np.array(list(itertools.permutations(range(1, n + 1))), dtype=np.intp)
    ends = np.zeros((len(perms), 1), dtype=np.intp)
    route = np.hstack([ends, perms, ends])
    return float(np.cumsum(m[route[:, :-1], route[:, 1:]], axis=1)[:, -1].min())


def brute_days(m: np.ndarray, visits: list[int]) -> float:
    """Least weekly travel over every partition of the visits into days of 1–2 visits."""
    best = math.inf

    def rec(left: list[int], acc: float, days: int) -> None:
        nonlocal best
        if not left:
            if days <= 5:
                best = min(best, acc)
            return
        a, rest = left[0], left[1:]
        rec(rest, acc + 2 * m[0, a], days + 1)
        for k, b in enumerate(rest):
            rec(rest[:k] + rest[k + 1 :], acc + m[0, a] + m[a, b] + m[b, 0], days + 1)

    rec(list(visits), 0.0, 0)
    return best


@pytest.fixture(scope="module")
def r6_after(communes):
    """What the fixed posts of the default plan leave, 6 itinerant posts (default rules)."""
    return itinerant_circuits(communes, n_posts=6, covered="covered_after")


def results(r2, r_cuts):
    return [("default", r2), ("cuts", r_cuts)]


# ----------------------------------------------------------------------------------------
# Eligibility
# ----------------------------------------------------------------------------------------
def test_eligibility_recomputed(communes, r2):
    c = communes
    high = c["need_index"] >= c["need_index"].quantile(0.75)
    expected = (c["population"] / (c.geometry.area / 1e6) < 60) & (~c["covered_before"] | high)
    got = r2.eligibility["eligible"]
    assert got.sum() > 0
    pd.testing.assert_series_equal(got, expected.rename("eligible"), check_names=False)
    # every stop is eligible, every eligible commune is served (a stop within the
    # threshold) or reported as dropped
    stops, dropped = set(r2.stops["insee"]), set(r2.dropped["insee"])
    served = set(r2.served.index[r2.served["served"]])
    assert stops <= set(expected.index[expected]) and stops <= served
    assert not served & dropped
    assert (served & set(expected.index[expected])) | dropped == set(expected.index[expected])
    assert r2.parameters["eligible"] == int(expected.sum())
    # without the setting only uncovered communes are eligible
    off = itinerant.eligible_communes(c)
    assert (off["eligible"] == (expected & ~c["covered_before"])).all()


def test_priority_is_lexicographic(communes, r2, r_cuts):
    """Default priority: at least as much uncovered need as the need-only objective, which
    in turn serves at least as much need in all (same posts, reach)."""
    r_need = itinerant_circuits(communes, n_posts=2, priority="need", serve_covered=True)

    def uncovered(r):
        return float(communes.loc[r.served["newly_served"].astype(bool), "need"].sum())

    assert uncovered(r2) >= uncovered(r_need) - 1e-6
    assert r_need.solution["objective"] >= r2.solution["objective"] - 1e-6
    assert uncovered(r2) > 0
    assert r2.solution["objective_uncovered"] == pytest.approx(uncovered(r2))
    assert r2.circuits["need"].sum() == pytest.approx(uncovered(r2))


# ----------------------------------------------------------------------------------------
# Circuits: reach, hours, budget
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["default", "cuts"])
def test_stops_within_max_time_of_base(communes, r2, r_cuts, which):
    r = dict(results(r2, r_cuts))[which]
    limit = r.parameters["max_stop_minutes"]
    base = r.stops["circuit_id"].map(r.circuits.set_index("circuit_id")["base_insee"])
    for s, b, got in zip(r.stops["insee"], base, r.stops["minutes_from_base"]):
        exact = minutes(communes, b, s)
        assert exact <= limit + 1e-9
        assert got == pytest.approx(exact, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("which", ["default", "cuts"])
def test_hours_and_weekly_budget(communes, r2, r_cuts, which):
    r = dict(results(r2, r_cuts))[which]
    assert len(r.circuits) == 2
    low = r.parameters["min_stop_hours"]
    assert (r.stops["hours"] >= low - 1e-9).all()
    assert (r.stops["visits"] >= 1).all()
    for circ in r.circuits.itertuples():
        st = r.stops[r.stops["circuit_id"] == circ.circuit_id]
        assert circ.n_stops == len(st) == len(circ.stops.split(";"))
        assert circ.hours_at_stops == pytest.approx(st["hours"].sum())
        assert circ.hours_at_stops + circ.minutes_per_week / 60 <= BUDGET + 1e-9
        assert circ.visits <= 10 and circ.visits == st["visits"].sum()
        assert circ.hours_per_visit >= low - 1e-9
        assert circ.population_stops == st["population"].sum()
        mine = r.served["newly_served"].astype(bool) & (r.served["circuit_id"] == circ.circuit_id)
        assert circ.population == communes.loc[mine, "population"].sum()
        assert circ.need == pytest.approx(communes.loc[mine, "need"].sum())
        assert circ.km_per_week == pytest.approx(circ.minutes_per_week / 60 * DEFAULT.speed_kmh)


def test_cut_path_was_exercised(r_cuts):
    """The 30-min need-only instance needs the exact week check (cuts > 0), and every
    circuit it returns fits (checked in the tests above)."""
    assert r_cuts.solution["cuts"] > 0
    assert r_cuts.solution["status"] == "optimal"


def test_visits_follow_need(r2, r_cuts):
    """Extra visits go one by one to the largest weight / visits so far (D'Hondt with a
    floor of one), the weight being the uncovered need served plus COVERED_VISIT_WEIGHT
    × the covered need served: the last visit of a stop was given at weight / (visits -
    1), which is at least every other stop's final weight / visits."""
    extra_seen = 0
    for r in (r2, r_cuts):
        for _, st in r.stops.groupby("circuit_id"):
            unc = st["need_served_uncovered"]
            assert (unc <= st["need_served"] + 1e-9).all()
            w = unc + itinerant.COVERED_VISIT_WEIGHT * (st["need_served"] - unc)
            w = w.clip(lower=1e-9)
            final = w / st["visits"]
            for i in st.index[st["visits"] > 1]:
                assert w[i] / (st.loc[i, "visits"] - 1) >= final.drop(i).max() - 1e-9
                extra_seen += 1
            # uncovered people first: a stop serving only covered (priority) people keeps
            # its single visit while another stop of the circuit serves uncovered people
            if (unc > 0).any():
                assert (st.loc[unc <= 0, "visits"] == 1).all(), st[["nom", "visits"]]
    assert extra_seen >= 1


# ----------------------------------------------------------------------------------------
# Order (TSP) and day routes
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["default", "cuts"])
def test_tour_order_is_optimal_brute_force(communes, r2, r_cuts, which):
    r = dict(results(r2, r_cuts))[which]
    checked = 0
    for circ in r.circuits.itertuples():
        stops = circ.stops.split(";")
        if len(stops) > 8:
            continue
        m = matrix(communes, [circ.base_insee, *stops])
        listed = itinerant.tour_minutes(m, range(1, len(stops) + 1))
        best = brute_tour(m)
        assert listed == pytest.approx(best, rel=1e-9)
        assert circ.tour_minutes == pytest.approx(best, rel=1e-9)
        # the fallback local search is never better than the optimum and is 2-optimal
        order, length = itinerant.two_opt(m)
        assert sorted(order) == list(range(1, len(stops) + 1))
        assert length >= best - 1e-9
        checked += 1
    assert checked >= 1


def test_held_karp_matches_brute_force_on_real_groups(communes):
    """Each of 12 communes with its 4–7 nearest communes (chef-lieu points)."""
    xy = communes[["chef_lieu_x", "chef_lieu_y"]].to_numpy(float)
    ids = communes.index.to_numpy()
    for b in range(0, len(ids), 15):
        d = np.hypot(*(xy - xy[b]).T)
        for k in (4, 7):
            near = [ids[i] for i in np.argsort(d, kind="stable")[1 : k + 1]]
            m = matrix(communes, [ids[b], *near])
            order, length = itinerant.tsp_order(m)
            assert sorted(order) == list(range(1, k + 1))
            assert length == pytest.approx(brute_tour(m), rel=1e-9)
            assert itinerant.tour_minutes(m, order) == pytest.approx(length, rel=1e-12)


def test_two_opt_is_locally_optimal(communes):
    ids = communes.index[:13].tolist()
    m = matrix(communes, ids)
    order, length = itinerant.tsp_order(m, method="2opt")
    route = [0, *order, 0]
    for i in range(1, len(route) - 2):
        for j in range(i + 1, len(route) - 1):
            a, b, c, d = route[i - 1], route[i], route[j], route[j + 1]
            assert m[a, c] + m[b, d] >= m[a, b] + m[c, d] - 1e-9
    assert length == pytest.approx(itinerant.tour_minutes(m, order))


@pytest.mark.parametrize("which", ["default", "cuts"])
def test_geometry_is_the_tour(communes, r2, r_cuts, which):
    r = dict(results(r2, r_cuts))[which]
    assert r.circuits.crs.to_epsg() == 2154
    for circ in r.circuits.itertuples():
        nodes = [circ.base_insee, *circ.stops.split(";"), circ.base_insee]
        pts = communes.loc[nodes, ["chef_lieu_x", "chef_lieu_y"]].to_numpy(float)
        assert isinstance(circ.geometry, LineString)
        np.testing.assert_allclose(np.asarray(circ.geometry.coords), pts)
        assert circ.geometry.length / 1000 * DEFAULT.detour_factor == pytest.approx(circ.tour_km)


@pytest.mark.parametrize("which", ["default", "cuts"])
def test_timetable_consistent_with_circuits(communes, r2, r_cuts, which):
    r = dict(results(r2, r_cuts))[which]
    tt = r.timetable
    assert list(tt.columns[:2]) == ["circuit_id", "day_index"]
    assert not tt.duplicated(["circuit_id", "day", "half_day"]).any()
    assert set(tt["day"]) <= {"lundi", "mardi", "mercredi", "jeudi", "vendredi"}
    assert set(tt["half_day"]) <= {"matin", "après-midi"}
    circuits = r.circuits.set_index("circuit_id")
    for cid, g in tt.groupby("circuit_id"):
        circ = circuits.loc[cid]
        st = r.stops[r.stops["circuit_id"] == cid].set_index("insee")
        # every stop has at least one half-day, visits match, nothing else is visited
        assert set(g["insee"]) == set(st.index)
        assert (
            g["insee"].value_counts().sort_index().equals(st["visits"].sort_index().rename("count"))
        )
        assert g.groupby("insee")["hours"].sum().min() >= r.parameters["min_stop_hours"] - 1e-9
        assert g["hours"].sum() == pytest.approx(circ["hours_at_stops"])
        assert g["travel_minutes"].sum() == pytest.approx(circ["minutes_per_week"])
        assert g["hours"].sum() + g["travel_minutes"].sum() / 60 <= BUDGET + 1e-9
        assert len(g) <= 10 and g.groupby("day").size().max() <= 2
        # each day's travel is the closed route base → morning → afternoon → base
        base = circ["base_insee"]
        for _, day in g.groupby("day_index"):
            assert list(day["half_day"]) == ["matin", "après-midi"][: len(day)]
            path = [base, *day["insee"], base]
            route = sum(minutes(communes, a, b) for a, b in zip(path[:-1], path[1:]))
            assert day["travel_minutes"].sum() == pytest.approx(route, rel=1e-9)
        # days follow the tour: the first visits of each day are in tour order
        pos = {s: k for k, s in enumerate(circ["stops"].split(";"))}
        firsts = [pos[d.iloc[0]] for _, d in g.groupby("day_index")["insee"]]
        assert firsts == sorted(firsts)
        # days are consecutive from lundi
        assert sorted(g["day_index"].unique()) == list(range(1, g["day_index"].max() + 1))


@pytest.mark.parametrize("which", ["default", "cuts"])
def test_day_pairing_is_optimal_brute_force(communes, r2, r_cuts, which):
    r = dict(results(r2, r_cuts))[which]
    for circ in r.circuits.itertuples():
        stops = circ.stops.split(";")
        m = matrix(communes, [circ.base_insee, *stops])
        st = r.stops[r.stops["circuit_id"] == circ.circuit_id].set_index("insee")
        visits = [k + 1 for k, s in enumerate(stops) for _ in range(int(st.loc[s, "visits"]))]
        assert circ.minutes_per_week == pytest.approx(brute_days(m, visits), rel=1e-9)


def test_circuit_full_claims_are_true(communes, r2, r_cuts):
    """A commune dropped as 'circuit_full' fits in none of the chosen circuits within reach:
    adding it makes the week infeasible (else the exact model would have taken it)."""
    seen = 0
    for r in (r2, r_cuts):
        limit = r.parameters["max_stop_minutes"]
        for s in r.dropped[r.dropped["reason"] == "circuit_full"].itertuples():
            for circ in r.circuits.itertuples():
                if minutes(communes, circ.base_insee, s.insee) > limit:
                    continue
                stops = [*circ.stops.split(";"), s.insee]
                m = matrix(communes, [circ.base_insee, *stops])
                order, _ = itinerant.tsp_order(m)
                perm = [0, *order]
                need = [communes.loc[stops[k - 1], "need"] for k in order]
                low = r.parameters["min_stop_hours"]
                wp = itinerant.week_plan(
                    m[np.ix_(perm, perm)], need, budget_hours=BUDGET, min_stop_hours=low
                )
                assert wp is None
                seen += 1
        for s in r.dropped[r.dropped["reason"] == "out_of_reach"].itertuples():
            assert min(minutes(communes, b, s.insee) for b in r.circuits["base_insee"]) > limit
    assert seen >= 1


# ----------------------------------------------------------------------------------------
# Optimality of the circuit model on checkable instances
# ----------------------------------------------------------------------------------------
def _fits(communes, base: str, stops: list[str], low: float = 3.5) -> bool:
    m = matrix(communes, [base, *stops])
    order, _ = itinerant.tsp_order(m)
    perm = [0, *order]
    need = [communes.loc[stops[k - 1], "need"] for k in order]
    wp = itinerant.week_plan(m[np.ix_(perm, perm)], need, budget_hours=BUDGET, min_stop_hours=low)
    return wp is not None


def test_one_circuit_is_best_by_enumeration(communes):
    """n_posts=1 on bases whose reachable eligible communes do *not* all fit in one week
    (the capacity binds): the model's circuit has the most need among every feasible
    subset, found by enumeration (week feasibility from week_plan, whose day pairing is
    checked against brute force above). Visits of 3.5 h and a 0.5 min threshold (each
    commune served by its own stop) make the capacity bind."""
    elig = itinerant.eligible_communes(communes, serve_covered=True)
    ids = elig.index[elig["eligible"]]
    t = 0.5
    opts = {"priority": "need", "serve_covered": True, "min_stop_hours": 3.5, "threshold": t}
    targets = list(elig.index[elig["eligible"] | ~elig["covered"]])

    pts = _xy(communes)
    a = pts.loc[targets].to_numpy()  # what does not depend on the subset, taken once
    need_targets = communes["need"].loc[targets]
    row = {c: i for i, c in enumerate(pts.index)}
    xy = pts.to_numpy()

    # within[i, k]: target i within t of commune k, for every pair at once (the same
    # elementwise formula); a subset serves the targets within t of one of its communes
    d = np.hypot(a[:, None, 0] - xy[None, :, 0], a[:, None, 1] - xy[None, :, 1]) * MIN_PER_M
    within = d <= t
    need_t = need_targets.to_numpy(dtype=float)

    def served_need(sub) -> float:
        return float(need_t[within[:, [row[c] for c in sub]].any(axis=1)].sum())

    # minutes(communes, b, s) for every pair at once (the same elementwise formula)
    every = matrix(communes, list(communes.index))
    reach = {b: [s for s in ids if every[row[b], row[s]] <= 25] for b in communes.index}
    bases = [
        b for b in sorted(reach) if 9 <= len(reach[b]) <= 10 and not _fits(communes, b, reach[b])
    ][:3]
    assert len(bases) == 3
    best = {}
    for b in bases:
        low = DEFAULT.itinerant_min_stops  # a circuit has at least that many stops
        subsets = [
            sub
            for k in range(low, len(reach[b]) + 1)
            for sub in itertools.combinations(reach[b], k)
        ]
        value = {sub: served_need(sub) for sub in subsets}
        subsets.sort(key=lambda sub: -value[sub])
        top = next(sub for sub in subsets if _fits(communes, b, list(sub)))
        best[b] = value[top]
        assert best[b] < served_need(reach[b])  # capacity binds
        r = itinerant_circuits(communes, n_posts=1, bases=[b], **opts)
        assert r.solution["objective"] == pytest.approx(best[b], rel=1e-9)
        assert (r.dropped["reason"] == "circuit_full").any()
    r = itinerant_circuits(communes, n_posts=1, bases=bases, **opts)
    assert r.solution["objective"] == pytest.approx(max(best.values()), rel=1e-9)


def test_more_posts_never_serve_less_need(communes, r2):
    r1 = itinerant_circuits(communes, n_posts=1, serve_covered=True)
    r3 = itinerant_circuits(communes, n_posts=3, serve_covered=True)
    u = [r.circuits["need"].sum() for r in (r1, r2, r3)]
    assert u[0] <= u[1] + 1e-6 <= u[2] + 2e-6
    assert len(r3.circuits) == 3


def test_zero_posts_reports_every_eligible_commune(communes, r2):
    r0 = itinerant_circuits(communes, n_posts=0, serve_covered=True)
    assert r0.circuits.empty and r0.timetable.empty and r0.stops.empty
    assert len(r0.dropped) == r2.parameters["eligible"]
    assert set(r0.dropped["reason"]) == {"no_post"}
    assert list(r0.circuits.columns) == itinerant.CIRCUIT_COLUMNS


def test_exclude_and_covered_series(communes, r2):
    first = r2.stops["insee"].iloc[0]
    r = itinerant_circuits(communes, n_posts=2, exclude=[first], serve_covered=True)
    assert first not in set(r.stops["insee"]) and first not in set(r.dropped["insee"])
    assert bool(r.eligibility.loc[first, "excluded"])
    # coverage given as a Series (e.g. after fixed posts): all covered → only high need
    everything = pd.Series(True, index=communes.index)
    r_cov = itinerant_circuits(communes, n_posts=2, covered=everything, serve_covered=True)
    assert r_cov.stops["covered"].all() and r_cov.stops["high_need"].all()
    assert r_cov.stops["reason"].str.contains("itinerant_serve_covered").all()
    assert r_cov.circuits["population"].sum() == 0  # nobody newly served
    # without the setting, covered communes are never stops
    with pytest.raises(PlacementError, match="no eligible commune"):
        itinerant_circuits(communes, n_posts=2, covered=everything)


# ----------------------------------------------------------------------------------------
# Determinism and outputs
# ----------------------------------------------------------------------------------------
def test_deterministic_and_row_order_independent(communes, r2):
    shuffled = communes.sample(frac=1.0, random_state=7)
    again = itinerant_circuits(shuffled, n_posts=2, serve_covered=True)
    pd.testing.assert_frame_equal(
        again.circuits.drop(columns="geometry"), r2.circuits.drop(columns="geometry")
    )
    assert again.circuits.geometry.geom_equals_exact(r2.circuits.geometry, 1e-9).all()
    pd.testing.assert_frame_equal(again.timetable, r2.timetable)
    pd.testing.assert_frame_equal(again.dropped, r2.dropped)


def test_columns_and_geopackage_round_trip(r2, tmp_path):
    import pyogrio

    assert list(r2.circuits.columns) == itinerant.CIRCUIT_COLUMNS
    assert list(r2.timetable.columns) == itinerant.TIMETABLE_COLUMNS
    assert list(r2.stops.columns) == itinerant.STOP_COLUMNS
    assert list(r2.dropped.columns) == itinerant.DROPPED_COLUMNS
    path = tmp_path / "itinerant.gpkg"
    r2.circuits.to_file(path, layer="circuits", driver="GPKG", engine="pyogrio")
    pyogrio.write_dataframe(r2.timetable, path, layer="timetable", driver="GPKG")
    back = pyogrio.read_dataframe(path, layer="timetable")
    assert len(back) == len(r2.timetable)
    assert back["nom"].tolist() == r2.timetable["nom"].tolist()
    circ = pyogrio.read_dataframe(path, layer="circuits")
    assert circ["stops"].tolist() == r2.circuits["stops"].tolist()


# ----------------------------------------------------------------------------------------
# Fixed + itinerant under one budget
# ----------------------------------------------------------------------------------------
def test_split_budget_with_mclp(plan, communes):
    t = plan.scenario.threshold
    origins = communes[["ref_x", "ref_y"]].set_axis(["x", "y"], axis=1)
    od = access.od_crowfly(origins, plan.candidates, max_minutes=t)

    def fixed(k: int) -> pd.Series:
        if k == 0:
            return communes["covered_before"]
        res = placement.mclp_from_od(
            od,
            communes["need"],
            p=k,
            threshold=t,
            already_covered=communes["covered_before"],
            demand=communes,
        )
        return res.covered

    out = itinerant.split_budget(communes, total_posts=3, fixed_coverage=fixed)
    tab = out.table
    assert tab["n_fixed"].tolist() == [0, 1, 2, 3]
    assert (tab["n_fixed"] + tab["n_itinerant"] == 3).all()
    assert np.allclose(tab["need_reached"], tab["need_fixed"] + tab["need_itinerant"])
    assert (np.diff(tab["need_fixed"]) >= -1e-6).all()  # exact MCLP: monotone
    assert tab.loc[tab["n_fixed"] == 3, "need_itinerant"].item() == 0
    assert tab.loc[tab["n_fixed"] == 0, "need_fixed"].item() == 0
    best = tab.loc[tab["n_fixed"] == out.best_n_fixed, "need_reached"].item()
    assert best == pytest.approx(tab["need_reached"].max())
    if out.itinerant is not None:
        assert len(out.itinerant.circuits) <= 3 - out.best_n_fixed


# ----------------------------------------------------------------------------------------
# Small hand-made cases (labelled fixtures) and bad input
# ----------------------------------------------------------------------------------------
def test_week_plan_small_handmade_case():
    """Hand-made: base + 2 stops 10 min away and 10 min apart, needs 3 : 1."""
    m = np.array([[0, 10, 10], [10, 0, 10], [10, 10, 0]], float)
    wp = itinerant.week_plan(m, [3.0, 1.0], budget_hours=31.5, min_stop_hours=3.5)
    # 3.5 h a visit: 8 visits: 6 + 2 by D'Hondt; 4 days; hours + travel = budget
    assert sum(wp.visits) == 8 and wp.visits == (6, 2)
    assert wp.travel_minutes == pytest.approx(brute_days(m, [1] * 6 + [2] * 2))
    assert sum(wp.visits) * wp.hours_per_visit + wp.travel_minutes / 60 == pytest.approx(31.5)
    # the default 2.5 h a visit: 10 visits (7 + 3) on the five days; 3 × 20 + 30 + 20 min
    wp = itinerant.week_plan(m, [3.0, 1.0], budget_hours=31.5)
    assert wp.visits == (7, 3) and len(wp.days) == 5
    assert wp.travel_minutes == pytest.approx(brute_days(m, [1] * 7 + [2] * 3)) == 110.0
    assert wp.hours_per_visit == pytest.approx((31.5 - 110 / 60) / 10)
    assert itinerant.week_plan(np.zeros((12, 12)), [1.0] * 11, budget_hours=31.5) is None


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n_posts": -1}, "n_posts"),
        ({"n_posts": 1.5}, "n_posts"),
        ({"n_posts": 2, "max_stop_minutes": 0}, "max_stop_minutes"),
        ({"n_posts": 2, "max_stop_minutes": -5}, "max_stop_minutes"),
        ({"n_posts": 2, "max_stop_minutes": float("nan")}, "max_stop_minutes"),
        ({"n_posts": 2, "min_stop_hours": 40}, "min_stop_hours"),
        ({"n_posts": 2, "density_max": 0}, "density_max"),
        ({"n_posts": 2, "need_quantile_min": 1.5}, "need_quantile_min"),
        ({"n_posts": 2, "half_days_per_day": 3}, "half_days_per_day"),
        ({"n_posts": 2, "priority": "fast"}, "priority"),
        ({"n_posts": 2, "min_stops": 0}, "min_stops"),
        ({"n_posts": 2, "min_stops": 11}, "min_stops"),
        ({"n_posts": 2, "min_stops": 2.0}, "min_stops"),
        ({"n_posts": 2, "days_per_week": 1, "min_stops": 3}, "min_stops"),
    ],
)
def test_bad_parameters_name_the_parameter(communes, kwargs, name):
    with pytest.raises(PlacementError) as exc:
        itinerant_circuits(communes, **kwargs)
    assert exc.value.source == name
    assert "fix" in str(exc.value)


def test_no_eligible_commune_is_a_clear_error(communes):
    with pytest.raises(PlacementError, match="no eligible commune") as exc:
        itinerant_circuits(communes, n_posts=2, density_max=5)
    assert "density_max" in str(exc.value)


def test_bad_communes_and_codes(communes):
    with pytest.raises(ValidationError, match="'need'"):
        itinerant_circuits(communes.drop(columns="need"), n_posts=1)
    with pytest.raises(ValidationError, match="99999"):
        itinerant_circuits(communes, n_posts=1, exclude=["99999"])
    with pytest.raises(ValidationError, match="12345"):
        itinerant_circuits(communes, n_posts=1, bases=["12345"])
    with pytest.raises(ValidationError, match="covered_after"):
        itinerant_circuits(
            communes.drop(columns="covered_after"), n_posts=1, covered="covered_after"
        )
    with pytest.raises(ValidationError):
        itinerant.tsp_order(np.zeros((2, 3)))


# ----------------------------------------------------------------------------------------
# In the plan: `--posts 6 --itinerant 2` on 49 (the "done when")
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mixed(plan49_mixed):
    return plan49_mixed


def _stops(plan) -> list[str]:
    return [x for r in plan.circuits.itertuples() for x in str(r.stops).split(";")]


def test_plan_half_days_go_to_uncovered_stops_first(mixed):
    """On the 49 mixed plan, the covered priority stops serve no one beyond the threshold
    (their neighbours are covered too): each keeps a single half-day, and every other
    half-day of its circuit goes to a stop beyond the threshold (the earlier share by
    total need gave Ombrée d'Anjou 8 of its circuit's 10 half-days)."""
    u, tt = mixed.units, mixed.timetable
    assert len(tt) > 0
    for _, t in tt.groupby("circuit_id"):
        cov = t["insee"].map(u["covered_after"]).astype(bool)
        if cov.all():
            continue
        assert (t[cov].groupby("insee").size() == 1).all(), t[["insee", "nom"]]
        assert (~cov).sum() == len(t) - t.loc[cov, "insee"].nunique()


def test_plan_stops_are_uncovered_after_fixed_posts_or_priority(mixed):
    """Every stop is beyond the threshold after the fixed posts (or a priority unit with no
    new fixed post within the threshold), and the timetable says why."""
    u, c, tt, t = mixed.units, mixed.communes, mixed.timetable, mixed.scenario.threshold
    stops = _stops(mixed)
    assert len(mixed.circuits) == 2 and stops
    for x in stops:
        reasons = set(tt.loc[tt["insee"] == x, "reason"])
        assert len(reasons) == 1
        why = reasons.pop()
        if bool(u.loc[x, "covered_after"]):
            assert why.startswith("territoire prioritaire"), (x, why)
            assert bool(c.loc[u.loc[x, "insee"], "priority_gap"])
        else:
            assert u.loc[x, "minutes_after"] > t
            assert why.startswith(f"sans lieu ni poste fixe à moins de {t:g} min"), (x, why)
        assert "itinerant_serve_covered" not in why  # the setting is off by default
    # sparse rural: the unit's density below the setting
    frame = itinerant.units_inputs(c, u)[0]
    assert (frame.loc[stops, "density"] < mixed.settings.itinerant_density_max).all()


def test_plan_week_is_35h_less_coordination_including_travel(mixed):
    s = mixed.settings
    cap = 35 * (1 - s.coordination_share)
    tt = mixed.timetable
    for r in mixed.circuits.itertuples():
        g = tt[tt["circuit_id"] == r.circuit_id]
        assert r.hours_at_stops + r.minutes_per_week / 60 <= cap + 1e-9
        assert g["hours"].sum() + g["travel_minutes"].sum() / 60 <= cap + 1e-9
        assert g["hours"].sum() + g["travel_minutes"].sum() / 60 == pytest.approx(cap)
        assert (g["hours"] >= s.itinerant_min_stop_hours - 1e-9).all()
        days = set(g["day"])
        if r.empty_days:
            assert r.empty_days_reason and len(days) == 5 - r.empty_days
        else:
            assert days == {"lundi", "mardi", "mercredi", "jeudi", "vendredi"}


def test_plan_bases_lie_in_the_territory_they_serve(mixed):
    """Base and every stop share an EPCI or a gap cluster."""
    c, u = mixed.communes, mixed.units
    for r in mixed.circuits.itertuples():
        base = c.loc[r.base_insee]
        for x in str(r.stops).split(";"):
            com = c.loc[u.loc[x, "insee"]]
            same_cluster = (
                pd.notna(base["gap_cluster"]) and base["gap_cluster"] == com["gap_cluster"]
            )
            assert base["epci"] == com["epci"] or same_cluster, (r.circuit_id, x)


def test_plan_served_has_one_definition_everywhere(mixed, tmp_path):
    """Served = a stop within the threshold, recomputed here from the stop points; the
    circuits, posts, summary, GeoPackage and report all give the same population."""
    import pyogrio

    from cnfs_geo import outputs, report

    u, t = mixed.units, mixed.scenario.threshold
    pts = u[["x", "y"]].to_numpy(float)
    sp = u.loc[_stops(mixed), ["x", "y"]].to_numpy(float)
    d = np.hypot(pts[:, None, 0] - sp[None, :, 0], pts[:, None, 1] - sp[None, :, 1]) * MIN_PER_M
    served = d.min(axis=1) <= t
    assert (u["served_itinerant"].to_numpy(bool) == served).all()
    newly = u[served & ~u["covered_after"].to_numpy(bool)]
    total = float(newly["population"].sum())
    assert total > 0
    circ = mixed.circuits
    assert circ["population"].sum() == pytest.approx(total, abs=len(circ))
    for r in circ.itertuples():
        mine = newly[newly["itinerant_circuit"] == r.circuit_id]
        assert r.population == pytest.approx(mine["population"].sum(), abs=0.5)
    itin = mixed.posts[mixed.posts["kind"] == "itinerant"]
    assert itin["covered_population"].sum() == circ["population"].sum()
    sm = mixed.summary()
    assert sm["population_served_itinerant"] == round(total)
    assert sm["units_served_itinerant"] == len(newly)
    path = tmp_path / "plan.gpkg"
    outputs.write_geopackage(mixed, path)
    com = pyogrio.read_dataframe(path, layer="communes")
    assert com["population_served_itinerant"].sum() == pytest.approx(total)
    layer = pyogrio.read_dataframe(path, layer="units_served")
    assert set(layer["unit_id"]) == set(u.index[served])
    ctx = report.report_context(mixed, with_map=False)
    assert _fr_integer(circ["population"].sum()) in ctx["synthesis"]
    assert "non comptées ci-dessus comme couvertes" not in ctx["synthesis"]


def _fr_integer(x) -> str:
    from cnfs_geo import _fr

    return _fr.integer(x)


def test_plan_circuit_counted_in_the_epci_of_the_people_it_serves(mixed):
    u, c = mixed.units, mixed.communes
    newly = u[u["served_itinerant"].astype(bool) & ~u["covered_after"].astype(bool)]
    by = (
        newly.assign(epci=newly["insee"].map(c["epci"]))
        .groupby(["itinerant_circuit", "epci"])["population"]
        .sum()
    )
    for p in mixed.posts[mixed.posts["kind"] == "itinerant"].itertuples():
        mine = by.loc[p.circuit_id]
        assert p.epci == mine.idxmax()
        assert mine.max() > 0


# ----------------------------------------------------------------------------------------
# At least itinerant_min_stops stops a circuit (one stop all week is a fixed post)
# ----------------------------------------------------------------------------------------
def _n_stops_ok(r, k: int) -> None:
    assert len(r.circuits)
    assert (r.circuits["n_stops"] >= k).all(), r.circuits[["circuit_id", "n_stops"]]
    by_stops = r.stops.groupby("circuit_id").size()
    assert (by_stops.reindex(r.circuits["circuit_id"]).to_numpy() >= k).all()
    by_tt = r.timetable.groupby("circuit_id")["insee"].nunique()
    assert (by_tt.reindex(r.circuits["circuit_id"]).to_numpy() >= k).all()


@pytest.mark.parametrize("which", [0, 1])
def test_every_circuit_has_min_stops(r2, r_cuts, which):
    assert DEFAULT.itinerant_min_stops >= 2
    name, r = results(r2, r_cuts)[which]
    assert r.parameters["min_stops"] == DEFAULT.itinerant_min_stops
    _n_stops_ok(r, DEFAULT.itinerant_min_stops)


def test_min_stops_is_a_constraint_of_the_model(communes, r2, r6_after):
    """3 stops a circuit: enforced by the model (not only by removing bases with fewer
    stops in reach), and a tighter rule never serves more need; 1 never serves less."""
    r3 = itinerant_circuits(communes, n_posts=2, serve_covered=True, min_stops=3)
    _n_stops_ok(r3, 3)
    r1 = itinerant_circuits(communes, n_posts=2, serve_covered=True, min_stops=1)
    need = [r.solution["objective"] for r in (r1, r2, r3)]
    assert need[0] >= need[1] - 1e-6 and need[1] >= need[2] - 1e-6
    # what the fixed posts leave, 6 posts: with one stop allowed every circuit has one;
    # bases with 2 stops in reach are not opened with a single stop
    r6 = itinerant_circuits(communes, n_posts=6, covered="covered_after", min_stops=1)
    assert (r6.circuits["n_stops"] == 1).any()
    r6 = r6_after  # itinerant_circuits(communes, n_posts=6, covered="covered_after")
    _n_stops_ok(r6, 2)
    assert (r6.dropped["reason"] == "too_few_stops").any()
    # the same through the setting
    s3 = DEFAULT.replace(itinerant_min_stops=3)
    r3s = itinerant_circuits(communes, n_posts=2, serve_covered=True, settings=s3)
    assert r3s.circuits["stops"].tolist() == r3.circuits["stops"].tolist()


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2", 11])
def test_bad_min_stops_setting_is_named(value):
    with pytest.raises(SettingsError) as exc:
        DEFAULT.replace(itinerant_min_stops=value)
    assert "itinerant_min_stops" in str(exc.value)
    assert "1 to 10" in str(exc.value)


def test_min_stops_setting_bounds_follow_the_week():
    assert DEFAULT.replace(itinerant_min_stops=1).itinerant_min_stops == 1
    assert DEFAULT.replace(itinerant_min_stops=10).itinerant_min_stops == 10
    with pytest.raises(SettingsError, match="itinerant_min_stops"):
        DEFAULT.replace(itinerant_days_per_week=3, itinerant_min_stops=7)


def test_plan_circuits_have_min_stops(mixed):
    """`--posts 6 --itinerant 2` on 49: no circuit is a single stop visited all week."""
    k = mixed.settings.itinerant_min_stops
    assert k >= 2
    tt = mixed.timetable
    assert len(mixed.circuits) == 2
    for r in mixed.circuits.itertuples():
        stops = str(r.stops).split(";")
        assert r.n_stops == len(stops) >= k
        assert tt.loc[tt["circuit_id"] == r.circuit_id, "insee"].nunique() >= k


def test_too_few_stops_claims_are_true(mixed):
    """A unit dropped as 'too_few_stops' has, within reach of every base of its territory,
    fewer than min_stops eligible units of the base's territory (travel recomputed here
    from the points); the plan's units as the plan gives them to the circuits."""
    c, u, t = mixed.communes, mixed.units, mixed.scenario.threshold
    s = mixed.settings
    frame, bases, groups, reasons = itinerant.units_inputs(c, u)
    r = itinerant_circuits(
        frame,
        n_posts=2,
        settings=s,
        covered="covered_after",
        threshold=t,
        priority_reasons=reasons,
        base_sites=bases,
        groups=groups,
    )
    _n_stops_ok(r, s.itinerant_min_stops)
    few = r.dropped[r.dropped["reason"] == "too_few_stops"]
    assert len(few) > 0
    # only stops beyond the threshold count towards min_stops (priority "uncovered")
    e = r.eligibility
    elig = list(e.index[e["eligible"] & ~e["covered"]])
    ex, ey = frame.loc[elig, "chef_lieu_x"].to_numpy(), frame.loc[elig, "chef_lieu_y"].to_numpy()
    for row in few.itertuples():
        x, y = frame.loc[row.insee, ["chef_lieu_x", "chef_lieu_y"]]
        mine = set(groups[row.insee])
        reaching = [
            b
            for b in bases.itertuples()
            if mine & set(b.groups)
            and math.hypot(b.x - x, b.y - y) * MIN_PER_M <= s.itinerant_max_stop_minutes
        ]
        assert reaching, row.insee  # within reach of some base: not 'out_of_reach'
        for b in reaching:
            near = np.hypot(ex - b.x, ey - b.y) * MIN_PER_M <= s.itinerant_max_stop_minutes
            same = [bool(set(groups[e]) & set(b.groups)) for e in elig]
            assert int((near & np.array(same)).sum()) < s.itinerant_min_stops, (row.insee, b)
    assert set(few["insee"]).isdisjoint(r.stops["insee"])
    label = itinerant.REASON_LABELS["too_few_stops"]
    assert "itinerant_min_stops" in label and "arrêts" in label


def test_plan_report_states_the_rule_and_the_units_left(mixed):
    from cnfs_geo import _fr, report

    ctx = report.report_context(mixed, with_map=False)
    intro = ctx["circuits"]["intro"]
    k = mixed.settings.itinerant_min_stops
    assert f"au moins {_fr.plural(k, 'arrêt')}" in intro
    few = mixed.itinerant_dropped[mixed.itinerant_dropped["reason"] == "too_few_stops"]
    for name in few["nom"]:
        assert name in intro


def test_min_stops_one_brings_back_single_stop_circuits(mixed):
    """With itinerant_min_stops = 1 (the former behaviour) `--posts 6 --itinerant 2` on 49
    has a circuit with a single stop, visited every half-day of the week; that unit is
    one the default plan reports as 'too_few_stops'."""
    from cnfs_geo.plan import run

    sc = dataclasses.replace(mixed.scenario, settings=mixed.settings.replace(itinerant_min_stops=1))
    one = run(sc)
    single = one.circuits[one.circuits["n_stops"] == 1]
    assert len(single) >= 1
    dropped = mixed.itinerant_dropped.set_index("insee")["reason"]
    for r in single.itertuples():
        tt = one.timetable[one.timetable["circuit_id"] == r.circuit_id]
        assert set(tt["insee"]) == {r.stops}
        assert len(tt) == r.visits
        assert dropped.get(r.stops) == "too_few_stops"
    # the fixed posts do not depend on the setting
    fixed = one.posts[one.posts["kind"] == "fixed"]["candidate_id"].tolist()
    assert fixed == mixed.posts[mixed.posts["kind"] == "fixed"]["candidate_id"].tolist()


def test_stops_taken_claims_are_true(communes, r6_after):
    """What the fixed posts of the default plan leave, 6 posts: a post is left unused and
    a commune dropped as 'stops_taken' has, within reach of every base that reaches it,
    fewer than min_stops − 1 other eligible communes that are in no circuit (travel
    recomputed here): a circuit with it would have to take stops of other circuits."""
    k = DEFAULT.itinerant_min_stops
    r = r6_after  # itinerant_circuits(communes, n_posts=6, covered="covered_after")
    assert len(r.circuits) < 6
    taken = r.dropped[r.dropped["reason"] == "stops_taken"]
    assert len(taken) > 0
    elig = list(r.eligibility.index[r.eligibility["eligible"]])
    in_circuits = set(r.stops["insee"])
    reach = DEFAULT.itinerant_max_stop_minutes
    for s in taken["insee"]:
        bases = [b for b in communes.index if minutes(communes, b, s) <= reach]
        assert bases
        for b in bases:
            free = [
                e
                for e in elig
                if e != s and e not in in_circuits and minutes(communes, b, e) <= reach
            ]
            assert len(free) < k - 1, (s, b, free)
    assert "déjà dans d'autres circuits" in itinerant.REASON_LABELS["stops_taken"]


def test_min_stops_counts_only_stops_beyond_the_threshold(bundle, prepared49_commune):
    """At commune scale on 49 (6 fixed + 2 itinerant posts), every circuit has at least
    min_stops stops beyond the threshold after the fixed posts: a covered priority stop
    does not make a one-village circuit (before the rule, a circuit based at Verrie held
    9 of its 10 half-days in Verrie, with Tuffalun, already covered, as second stop)."""
    from cnfs_geo.plan import Scenario, run

    p = run(
        Scenario(
            departement="49",
            posts=6,
            itinerant_posts=2,
            threshold_minutes=10,
            demand_unit="commune",
            data_dir=str(bundle.path),
        ),
        prepared=prepared49_commune,  # the same scenario but the posts, prepared once
    )
    k = p.settings.itinerant_min_stops
    assert len(p.circuits) >= 1
    for circ in p.circuits.itertuples():
        stops = circ.stops.split(";")
        beyond = ~p.units.loc[stops, "covered_after"].astype(bool)
        assert int(beyond.sum()) >= k, (circ.circuit_id, stops)
    few = p.itinerant_dropped[p.itinerant_dropped["reason"] == "too_few_stops"]
    assert "Verrie" in set(few["nom"])
