"""Benchmark: the road work of ONE département's task of a national road run, and its memory.

Run on demand (not part of the tests)::

    .venv/bin/python benchmarks/bench_roads_task.py              # 900 × 900 grid (81 km side)
    .venv/bin/python benchmarks/bench_roads_task.py --side 400   # quick run

In a national road run (``cnfs-geo plan --departement all --osm extracts/``), each
département's task builds its own road graph from its extract (or a regional one) and keeps
the part within :data:`cnfs_geo.national.ROAD_BUFFER_M` (20 km) of the département
(:func:`cnfs_geo.roads.clip_road_graph`); no process ever holds a national graph. This
script times that task's road steps on a SYNTHETIC road-like graph (the perturbed grid of
``bench_access.py``, 100 m spacing) standing for a regional extract: a square département of
``--dep-km`` km side in its middle, clipped with the 20 km buffer, then

* ``road_network`` (graph → CSR, once per task),
* ``nearest_road``: every demand unit (``--units`` random points) to its nearest place
  (``--places``), as the first pass does,
* ``od_road``: units × candidate sites (units + places) within ``--minutes``, as the
  placement needs.

Printed: graph sizes, each step's time, and the peak resident memory of the process (the
task's memory on a worker: the graph, its CSR copy and the OD tables).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from shapely.geometry import box

sys.path.insert(0, str(Path(__file__).parent))
from bench_access import synthetic_graph  # noqa: E402

from cnfs_geo import roads  # noqa: E402
from cnfs_geo.national import ROAD_BUFFER_M  # noqa: E402


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=900, help="grid side in nodes (100 m apart)")
    ap.add_argument("--dep-km", type=float, default=50.0, help="side of the département (km)")
    ap.add_argument("--units", type=int, default=400, help="demand units (communes)")
    ap.add_argument("--places", type=int, default=150, help="existing places")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    G = synthetic_graph(args.side, args.seed)
    t_gen = time.perf_counter() - t0
    print(
        f"regional graph (synthetic): {len(G):,} nodes, {G.number_of_edges():,} edges, "
        f"{args.side / 10:.0f} km side, built in {t_gen:.1f} s, peak {rss_gb():.2f} GB"
    )

    cx, cy = 400_000 + args.side * 50, 6_700_000 + args.side * 50
    half = args.dep_km * 500
    dep = box(cx - half, cy - half, cx + half, cy + half)
    t = time.perf_counter()
    sub = roads.clip_road_graph(G, dep.buffer(ROAD_BUFFER_M))
    t_clip = time.perf_counter() - t
    del G
    print(
        f"clip to département ({args.dep_km:g} km) + {ROAD_BUFFER_M / 1000:g} km buffer: "
        f"{len(sub):,} nodes, {t_clip:.1f} s"
    )

    rng = np.random.default_rng(args.seed)

    def points(n: int, prefix: str) -> pd.DataFrame:
        return pd.DataFrame(
            {"x": rng.uniform(cx - half, cx + half, n), "y": rng.uniform(cy - half, cy + half, n)},
            index=pd.Index([f"{prefix}{i}" for i in range(n)], name="id"),
        )

    units, places = points(args.units, "u"), points(args.places, "p")
    candidates = pd.concat([units, places])
    t = time.perf_counter()
    net = roads.road_network(sub)
    t_net = time.perf_counter() - t
    t = time.perf_counter()
    near = roads.nearest_road(units, places, net)
    t_near = time.perf_counter() - t
    t = time.perf_counter()
    od = roads.od_road(units, candidates, net, max_minutes=args.minutes)
    t_od = time.perf_counter() - t
    total = t_clip + t_net + t_near + t_od
    print(f"road_network: {t_net:.1f} s")
    print(
        f"nearest_road: {len(units)} units → {len(places)} places, {t_near:.1f} s "
        f"(median {near['minutes'].median():.1f} min)"
    )
    print(
        f"od_road: {len(units)} × {len(candidates)} within {args.minutes:g} min: "
        f"{len(od):,} pairs, {t_od:.1f} s"
    )
    print(f"task road work (clip + network + nearest + OD): {total:.1f} s")
    print(
        f"peak memory of the task process: {rss_gb():.2f} GB "
        "(includes the regional graph it was clipped from)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
