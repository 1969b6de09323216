"""Benchmark of cnfs_geo.placement's MCLP solvers, from one département to all of France.

Run on demand (not part of the tests), in one process::

    CNFS_GEO_DATA_DIR=../shared/data/raw .venv/bin/python benchmarks/bench_placement.py
    ... --skip-national              # 49 and Pays de la Loire only
    ... --time-limit 60 --spopt-solver cbc|highs

Rows of the table (real data only):

1. **49, exact vs spopt** — the instance of ``bench_placement_49.py`` (imported from
   it): 176 communes of Maine-et-Loire, candidates = chefs-lieux, the 28 France Services
   as existing sites, p=8 at 10 min, population. Ours: ``mclp_from_od(method="exact")``
   (sparse MILP, HiGHS); spopt: ``MCLP.from_cost_matrix`` on the dense matrix solved by
   pulp + CBC. Objectives must be equal; the time ratio is spopt / ours (median of 3).
2. **Pays de la Loire, exact vs spopt** — the 1 272 COG 2018 communes of the region
   (``cnfs_geo.demand.demand_units_cog2018``: representative points, COG 2026 populations
   shared by area) as demand and candidates, p=120 at 10 min; spopt on the dense
   1 272 × 1 272 matrix (CBC, or HiGHS through pulp when ``highspy`` is installed and
   ``--spopt-solver highs``). Also our scalable solver on the same instance.
3. **France, scalable** — the 35 228 COG 2018 communes of the 96 metropolitan
   départements as demand and candidates, p=4000 at 10 min and p=1000 at 20 min;
   ``mclp_scalable_from_od`` with ``--time-limit`` seconds (2 threads): share of the
   population covered, proven bound, gap = (bound − objective) / bound, time, and the
   time at which the proven gap first reached 1 %.

Travel: crow-fly × 1.3 at 50 km/h (``access.od_crowfly``, default settings): 10 min =
6.41 km and 20 min = 12.82 km as the crow flies.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_placement_49 as b49  # noqa: E402  (reused: instance builder and timer)

from cnfs_geo import access, catalog, demand, placement  # noqa: E402
from cnfs_geo.settings import DEFAULT  # noqa: E402

PDL_FILE = "communes/communes-pays-de-la-loire_adminexpress-cog2018.geojson"


def crowfly_km(minutes: float) -> float:
    s = DEFAULT
    return minutes * s.speed_m_per_min / s.detour_factor / 1000.0


def spopt_solver(name: str):
    import pulp

    if name == "highs":
        return pulp.HiGHS(msg=False)  # needs the highspy package
    return pulp.PULP_CBC_CMD(msg=False)


def units_instance(units: pd.DataFrame, threshold: float, *, dense: bool):
    xy = units[["ref_x", "ref_y"]].set_axis(["x", "y"], axis=1)
    cand = xy.copy()
    cand.index = "site:" + cand.index
    od = access.od_crowfly(xy, cand, max_minutes=threshold)
    mat = None
    if dense:
        full = access.od_crowfly(xy, cand, max_minutes=1e6)
        mat = (
            full.pivot(index="origin_id", columns="destination_id", values="minutes")
            .reindex(index=units.index, columns=cand.index)
            .to_numpy()
        )
    return cand, od, mat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--spopt-solver", choices=["cbc", "highs"], default="cbc")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-national", action="store_true")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import pulp
    from spopt.locate import MCLP

    data_dir = catalog.resolve_data_dir()
    rows = []

    # 1. 49: exact vs spopt ------------------------------------------------------------
    p, t = 8, 10.0
    communes, cand, ex_ids, od, _, dense, predefined = b49.build_instance(t)
    w = communes["population"].astype(float)
    t_ours, ours = b49.timed(
        lambda: placement.mclp_from_od(
            od,
            w,
            p=p,
            threshold=t,
            candidates=cand,
            method="exact",
            rules=placement.Rules(existing=ex_ids),
        ),
        args.repeat,
    )
    t_sp, sp = b49.timed(
        lambda: MCLP.from_cost_matrix(
            dense,
            w.to_numpy(),
            service_radius=t,
            p_facilities=p + len(ex_ids),
            predefined_facilities_arr=predefined,
        ).solve(spopt_solver(args.spopt_solver)),
        args.repeat,
    )
    total = ours.solution.details["weight_total"]
    rows.append(
        dict(
            instance="49 (176 communes)",
            p=p,
            minutes=t,
            solver="exact (HiGHS)",
            covered=ours.solution.details["weight_covered_after"] / total,
            bound=None,
            gap=ours.solution.gap,
            time_s=t_ours,
            spopt=pulp.value(sp.problem.objective) / total,
            spopt_s=t_sp,
        )
    )

    # 2. Pays de la Loire: exact vs spopt, and scalable -----------------------------------
    if data_dir.is_bundle:
        print(
            "national data not available: set CNFS_GEO_DATA_DIR to the raw data folder; "
            "only the 49 row is run"
        )
    else:
        units = demand.demand_units_cog2018(data_dir, path=data_dir.path / PDL_FILE)
        w = units["population"]
        total = float(w.sum())
        p, t = 120, 10.0
        cand, od, mat = units_instance(units, t, dense=True)
        t_ours, ours = b49.timed(
            lambda: placement.mclp_from_od(
                od, w, p=p, threshold=t, candidates=cand, method="exact"
            ),
            args.repeat,
        )
        t_sp, sp = b49.timed(
            lambda: MCLP.from_cost_matrix(
                mat, w.to_numpy(), service_radius=t, p_facilities=p
            ).solve(spopt_solver(args.spopt_solver)),
            1,
        )
        rows.append(
            dict(
                instance=f"Pays de la Loire ({len(units)})",
                p=p,
                minutes=t,
                solver="exact (HiGHS)",
                covered=ours.solution.objective / total,
                bound=None,
                gap=ours.solution.gap,
                time_s=t_ours,
                spopt=pulp.value(sp.problem.objective) / total,
                spopt_s=t_sp,
            )
        )
        t0 = time.perf_counter()
        sc = placement.mclp_scalable_from_od(
            od, w, p=p, threshold=t, candidates=cand, time_limit_s=args.time_limit
        )
        rows.append(
            dict(
                instance=f"Pays de la Loire ({len(units)})",
                p=p,
                minutes=t,
                solver="scalable",
                covered=sc.solution.objective / total,
                bound=sc.solution.bound / total,
                gap=sc.solution.gap,
                time_s=time.perf_counter() - t0,
                spopt=None,
                spopt_s=None,
                status=sc.solution.status,
                to_1pct=sc.solution.details["time_to_gap_s"][0.01],
            )
        )
        del mat

        # 3. France: scalable ---------------------------------------------------------
        if not args.skip_national:
            t0 = time.perf_counter()
            units = demand.demand_units_cog2018(data_dir)
            load_s = time.perf_counter() - t0
            w = units["population"]
            total = float(w.sum())
            print(
                f"France: {len(units)} demand units (COG 2018 polygons), "
                f"{total:,.0f} inhabitants, read in {load_s:.1f} s"
            )
            for p, t in ((4000, 10.0), (1000, 20.0)):
                t0 = time.perf_counter()
                cand, od, _ = units_instance(units, t, dense=False)
                od_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                sc = placement.mclp_scalable_from_od(
                    od, w, p=p, threshold=t, candidates=cand, time_limit_s=args.time_limit
                )
                d = sc.solution.details
                rows.append(
                    dict(
                        instance=f"France ({len(units)})",
                        p=p,
                        minutes=t,
                        solver="scalable",
                        covered=sc.solution.objective / total,
                        bound=sc.solution.bound / total,
                        gap=sc.solution.gap,
                        time_s=time.perf_counter() - t0,
                        spopt=None,
                        spopt_s=None,
                        status=sc.solution.status,
                        to_1pct=d["time_to_gap_s"][0.01],
                    )
                )
                print(
                    f"  p={p} at {t:g} min ({crowfly_km(t):.2f} km crow-fly): OD "
                    f"{len(od):,} pairs in {od_s:.1f} s; model {d['model_rows_merged']} rows "
                    f"× {d['candidates_in_model']} candidates ({d['candidates_dominated']} "
                    f"dominated dropped); greedy {d['greedy_objective'] / total:.3%}, swap "
                    f"{d['swap_objective'] / total:.3%}, LNS {d['lns_windows']} windows; "
                    f"bound {d['bound_sweeps']} sweeps, μ={d['bound_mu']:.0f}"
                )

    print(
        f"\ncores: {os.cpu_count()}, spopt solver: {args.spopt_solver}, time limit "
        f"{args.time_limit:g} s (scalable)"
    )
    head = (
        f"{'instance':<24}{'p':>6}{'min':>5}  {'solver':<15}{'covered':>10}{'bound':>10}"
        f"{'gap':>9}{'time s':>9}{'→1% s':>8}  {'status':<11}{'spopt':>10}{'spopt s':>9}"
        f"{'ratio':>8}{'equal':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:

        def pct(v):
            return f"{v:.4%}" if v is not None else "-"

        ratio = equal = "-"
        if r["spopt"] is not None:
            ratio = f"{r['spopt_s'] / r['time_s']:.1f}x"
            equal = str(abs(r["spopt"] - r["covered"]) <= 1e-9)
        to1 = r.get("to_1pct")
        to1_s = f"{to1:.1f}" if to1 is not None else "-"
        sp_s = f"{r['spopt_s']:.2f}" if r["spopt_s"] is not None else "-"
        print(
            f"{r['instance']:<24}{r['p']:>6}{r['minutes']:>5g}  {r['solver']:<15}"
            f"{pct(r['covered']):>10}{pct(r['bound']):>10}{r['gap']:>9.3%}"
            f"{r['time_s']:>9.2f}{to1_s:>8}  "
            f"{r.get('status', 'optimal'):<11}{pct(r['spopt']):>10}{sp_s:>9}"
            f"{ratio:>8}{equal:>7}"
        )
    print(
        "covered = share of the population within the threshold of a post (no existing site "
        "except in 49: there it includes the 28 France Services); bound = proven upper "
        "bound; gap = (bound - covered) / bound"
    )


if __name__ == "__main__":
    main()
