"""Benchmark: the robustness analysis of a département plan (cnfs_geo.robustness).

Run on demand (not part of the tests)::

    CNFS_GEO_DATA_DIR=../shared/data/raw .venv/bin/python benchmarks/bench_robustness.py
    .venv/bin/python benchmarks/bench_robustness.py --departement 44 --unit commune2018

Times ``plan.prepare`` + ``plan.run`` (once) and then ``robustness.robustness`` (one
exact MCLP re-solve per perturbation, from the prepared frames), and prints the
seconds of each perturbation, so the cost of ``cnfs-geo plan --robustesse`` can be
compared with the plan itself.
"""

from __future__ import annotations

import argparse
import time

from cnfs_geo import plan, robustness


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--departement", default="49")
    ap.add_argument("--posts", type=int, default=8)
    ap.add_argument("--unit", default=None, help="demand unit (default: the scenario's)")
    args = ap.parse_args()
    options = {"demand_unit": args.unit} if args.unit else {}
    sc = plan.Scenario(departement=args.departement, posts=args.posts, **options)
    t0 = time.perf_counter()
    prepared = plan.prepare(sc)
    t1 = time.perf_counter()
    p = plan.run(sc, prepared=prepared)
    t2 = time.perf_counter()
    r = robustness.robustness(p, prepared)
    t3 = time.perf_counter()
    print(f"département {args.departement}, {args.posts} posts, unit {sc.demand_unit}")
    print(f"  prepare {t1 - t0:6.2f} s   run {t2 - t1:6.2f} s   robustness {t3 - t2:6.2f} s")
    for row in r.perturbations.itertuples():
        print(f"    {row.key:<24} {row.seconds:6.2f} s   kept {row.kept}/{len(r.posts)}")
    print(f"  robust posts: {int(r.posts['robust'].sum())} of {len(r.posts)}")


if __name__ == "__main__":
    main()
