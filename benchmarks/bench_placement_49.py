"""Benchmark: exact MCLP of cnfs_geo.placement (HiGHS, sparse) vs spopt (pulp + CBC, dense).

Run on demand (not part of the tests)::

    .venv/bin/python benchmarks/bench_placement_49.py              # p=8, 10 min, population
    .venv/bin/python benchmarks/bench_placement_49.py --weight need --p 12 --repeat 5
    .venv/bin/python benchmarks/bench_placement_49.py --all        # + p-median and LSCP

Instance (real data, embedded bundle): the 176 communes of Maine-et-Loire (COG
2026) as demand units, travelling from their representative point; candidate
sites = every commune's chef-lieu point; existing sites = the 28 France Services
of 49 (ANCT list 2024-08-01); travel = crow-fly × 1.3 at 50 km/h
(``access.od_crowfly``). Both solvers get the same OD table: cnfs_geo the sparse
long table cut at the threshold, spopt the dense matrix pivoted from the full
table, with the France Services as predefined facilities
(``p_facilities = p + 28``).

Timed, in one process, the median of ``--repeat`` runs of each side:

* ours: ``placement.mclp_from_od`` end to end (validation, model, both solves of
  the deterministic tie-break, outputs);
* spopt: ``MCLP.from_cost_matrix(...)`` + ``.solve(pulp.PULP_CBC_CMD(msg=False))``
  (the dense matrix is built once, outside the timing).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd


def build_instance(threshold: float):
    from cnfs_geo import access, catalog, need, territory

    data_dir = catalog.resolve_data_dir()
    communes = territory.communes_from_cog("49", data_dir)
    communes, _ = need.need_from_sources(communes, data_dir)
    fs = pd.read_csv(data_dir.file("france_services"), dtype={"id_fs": str})
    fs = fs[fs["insee_dep"].astype(str) == "49"]
    ex = gpd.GeoDataFrame(
        {"place_id": "fs-" + fs["id_fs"]},
        geometry=gpd.points_from_xy(fs["longitude"], fs["latitude"]),
        crs="EPSG:4326",
    ).to_crs(communes.crs)
    ex_xy = pd.DataFrame(
        {"x": ex.geometry.x.to_numpy(), "y": ex.geometry.y.to_numpy()},
        index=ex["place_id"].to_numpy(),
    )
    cand = pd.DataFrame(
        {
            "x": communes["chef_lieu_x"].to_numpy(),
            "y": communes["chef_lieu_y"].to_numpy(),
            "insee": communes.index.to_numpy(),
            "host": "mairie",
        },
        index=pd.Index("commune:" + communes.index, name="candidate_id"),
    )
    demand_xy = communes[["ref_x", "ref_y"]].set_axis(["x", "y"], axis=1)
    sites = pd.concat([cand[["x", "y"]], ex_xy])
    od = access.od_crowfly(demand_xy, sites, max_minutes=threshold)
    od_all = access.od_crowfly(demand_xy, sites, max_minutes=1e6)
    dense = (
        od_all.pivot(index="origin_id", columns="destination_id", values="minutes")
        .reindex(index=communes.index.astype(str), columns=sites.index)
        .to_numpy()
    )
    predefined = np.r_[np.zeros(len(cand)), np.ones(len(ex_xy))].astype(int)
    return communes, cand, list(ex_xy.index), od, od_all, dense, predefined


def timed(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--p", type=int, default=8)
    ap.add_argument("--threshold", type=float, default=10.0)
    ap.add_argument("--weight", choices=["population", "need"], default="population")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--all", action="store_true", help="also p-median and LSCP")
    args = ap.parse_args()

    import pulp
    from spopt.locate import LSCP, MCLP, PMedian

    from cnfs_geo import placement

    communes, cand, ex_ids, od, od_all, dense, predefined = build_instance(args.threshold)
    w = communes[args.weight].astype(float)
    p, t = args.p, args.threshold
    print(
        f"instance 49: {len(communes)} communes, {len(cand)} candidates, {len(ex_ids)} "
        f"France Services (existing), weight={args.weight}, p={p}, threshold={t:g} min, "
        f"OD rows within threshold={len(od)}, dense matrix {dense.shape}"
    )
    warnings.filterwarnings("ignore")
    rows = []

    t_ours, ours = timed(
        lambda: placement.mclp_from_od(
            od,
            w,
            p=p,
            threshold=t,
            candidates=cand,
            demand=communes,
            rules=placement.Rules(existing=ex_ids),
        ),
        args.repeat,
    )
    t_sp, sp = timed(
        lambda: MCLP.from_cost_matrix(
            dense,
            w.to_numpy(),
            service_radius=t,
            p_facilities=p + len(ex_ids),
            predefined_facilities_arr=predefined,
        ).solve(pulp.PULP_CBC_CMD(msg=False)),
        args.repeat,
    )
    ours_total = ours.solution.details["weight_covered_after"]
    rows.append(("MCLP covered weight", ours_total, pulp.value(sp.problem.objective), t_ours, t_sp))
    print(
        f"MCLP: newly covered {ours.solution.objective:.1f} + already covered "
        f"{ours.solution.details['weight_covered_before']:.1f}; posts "
        f"{', '.join(ours.posts['insee'])}"
    )

    if args.all:
        od60 = od_all[od_all["minutes"] <= 60]
        t_ours, ours = timed(
            lambda: placement.pmedian_from_od(
                od60, w, p=p, candidates=cand, rules=placement.Rules(existing=ex_ids)
            ),
            args.repeat,
        )
        t_sp, sp = timed(
            lambda: PMedian.from_cost_matrix(
                dense,
                w.to_numpy(),
                p_facilities=p + len(ex_ids),
                predefined_facilities_arr=predefined,
            ).solve(pulp.PULP_CBC_CMD(msg=False)),
            args.repeat,
        )
        rows.append(
            (
                "p-median weight×min",
                ours.solution.objective,
                pulp.value(sp.problem.objective),
                t_ours,
                t_sp,
            )
        )
        t_ours, ours = timed(
            lambda: placement.lscp_from_od(
                od, w, threshold=t, candidates=cand, rules=placement.Rules(existing=ex_ids)
            ),
            args.repeat,
        )
        t_sp, sp = timed(
            lambda: LSCP.from_cost_matrix(dense, t, predefined_facilities_arr=predefined).solve(
                pulp.PULP_CBC_CMD(msg=False)
            ),
            args.repeat,
        )
        rows.append(
            (
                "LSCP new posts",
                ours.solution.objective,
                pulp.value(sp.problem.objective) - len(ex_ids),
                t_ours,
                t_sp,
            )
        )

    print(
        f"{'model':<22}{'ours':>16}{'spopt':>16}{'equal':>7}{'ours s':>10}{'spopt s':>10}"
        f"{'spopt/ours':>12}"
    )
    for name, a, b, ta, tb in rows:
        equal = abs(a - b) <= 1e-9 * max(1.0, abs(b))
        print(
            f"{name:<22}{a:>16.3f}{b:>16.3f}{str(equal):>7}{ta:>10.4f}{tb:>10.4f}{tb / ta:>12.1f}"
        )


if __name__ == "__main__":
    main()
