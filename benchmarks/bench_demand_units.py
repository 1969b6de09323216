"""Benchmark: demand units of Maine-et-Loire by kind, and the default plan's extra stages.

Run on demand (not part of the tests)::

    .venv/bin/python benchmarks/bench_demand_units.py              # median of 3 runs
    .venv/bin/python benchmarks/bench_demand_units.py --repeat 5

Instance (real data, embedded bundle): the 176 communes of 49 with their need
(``need.need_from_sources``), then ``demand.demand_units`` for each kind (IRIS and 2018
polygons read once, outside the timing, with ``demand_units_from_frames``); then, on the
default plan, ``plan.compare_demand_units`` (the commune-point variant of the report)
and ``gaps.default_advisors_sensitivity`` (the advisor-default table).
"""

from __future__ import annotations

import argparse
import statistics
import time


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from cnfs_geo import catalog, demand, gaps, need, territory
    from cnfs_geo.plan import Scenario, compare_demand_units, run

    d = catalog.resolve_data_dir(catalog.bundle_dir())
    communes, _ = need.need_from_sources(territory.communes_from_cog("49", d), d)
    mapping = territory.current_code_map(d)
    iris = demand.iris_from_mednum("49", d)
    polys = demand.commune2018_polygons("49", d)
    for unit in demand.UNIT_TYPES:
        kw = {"iris": iris, "polygons_2018": polys, "code_map": mapping}
        if unit == "commune":
            kw = {}
        sec = _median(
            lambda unit=unit, kw=kw: demand.demand_units_from_frames(communes, unit=unit, **kw),
            args.repeat,
        )
        n = len(demand.demand_units_from_frames(communes, unit=unit, **kw))
        print(f"demand_units {unit:<12} {n:>4} units  {sec:6.2f} s")
    plan = run(Scenario(departement="49", posts=8, data_dir=str(d.path)))
    print(f"default plan stages (s): {plan.timings}")
    sec = _median(lambda: compare_demand_units(plan), args.repeat)
    print(f"compare_demand_units (commune-point variant)  {sec:6.2f} s")
    sec = _median(
        lambda: gaps.default_advisors_sensitivity(
            plan.communes, plan.places, settings=plan.settings, threshold=10
        ),
        args.repeat,
    )
    print(f"default_advisors_sensitivity (3 accessibility runs)  {sec:6.2f} s")


if __name__ == "__main__":
    main()
