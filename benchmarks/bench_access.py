"""Benchmark: road OD times with scipy (cnfs_geo.roads.od_road) vs networkx.

Run on demand (not part of the tests)::

    .venv/bin/python benchmarks/bench_access.py            # ~1M nodes, 200 × 2000, 20 min
    .venv/bin/python benchmarks/bench_access.py --side 300 # quick run

The graph is SYNTHETIC and road-like: a ``side × side`` grid with 100 m spacing
(1000 × 1000 = 1M nodes, 100 km × 100 km, the size of a département), node
positions jittered by ±30 m, 8 % of the edges removed at random, a faster
"secondary" road every 20th row and column (80 km/h) and local roads at random
speeds between 30 and 50 km/h, and 3 % of the local streets one-way. It is built
as an osmnx-format ``networkx.MultiDiGraph`` (node ``x``/``y`` in EPSG:2154, edge
``length``, ``travel_time``, ``highway``), the graph od_road takes.

Origins and destinations are random nodes (points exactly on them, so the
off-network legs are 0 and both sides compute the same node-to-node times).

Timed:

* scipy core: ``roads._od_core`` (chunked multi-source
  ``scipy.sparse.csgraph.dijkstra`` with ``limit``), times only, and with road km;
* the one-off graph → CSR conversion (``roads.road_network``, done once per graph
  and reusable across calls);
* ``roads.od_road`` on the converted network (snapping + routing + km + table),
  and on the raw graph (conversion included);
* networkx: ``nx.single_source_dijkstra_path_length(G, o, cutoff=…,
  weight="travel_time")`` from every origin on the same MultiDiGraph (the fair
  peer: one bounded Dijkstra per origin). With ``--nx-origins K`` < origins only K
  origins are timed and the total is extrapolated linearly (printed as such).

Both sides' times are compared on the origins networkx ran.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import networkx as nx
import numpy as np

from cnfs_geo import roads


def synthetic_graph(side: int, seed: int) -> nx.MultiDiGraph:
    """Perturbed grid road graph in osmnx format (see module docstring)."""
    rng = np.random.default_rng(seed)
    spacing = 100.0
    n = side * side
    ii, jj = np.divmod(np.arange(n), side)
    x = 400_000 + jj * spacing + rng.uniform(-30, 30, n)
    y = 6_700_000 + ii * spacing + rng.uniform(-30, 30, n)
    # undirected grid edges: right and up neighbours
    right = np.flatnonzero(jj < side - 1)
    up = np.flatnonzero(ii < side - 1)
    a = np.concatenate([right, up])
    b = np.concatenate([right + 1, up + side])
    keep = rng.random(len(a)) > 0.08
    a, b = a[keep], b[keep]
    horizontal = b == a + 1
    line = np.where(horizontal, ii[a], jj[a])
    main = line % 20 == 0
    speed = np.where(main, 80.0, rng.uniform(30.0, 50.0, len(a)))
    length = np.hypot(x[a] - x[b], y[a] - y[b])
    tt = length / (speed / 3.6)
    oneway = ~main & (rng.random(len(a)) < 0.03)
    hwy = np.where(main, "secondary", "residential")

    G = nx.MultiDiGraph(crs="EPSG:2154")
    G.add_nodes_from((int(k), {"x": float(x[k]), "y": float(y[k])}) for k in range(n))
    fwd = (
        (
            int(u),
            int(w),
            {"length": float(L), "travel_time": float(t), "highway": str(h), "speed_kph": float(s)},
        )
        for u, w, L, t, h, s in zip(a, b, length, tt, hwy, speed)
    )
    G.add_edges_from(fwd)
    two = ~oneway
    back = (
        (
            int(w),
            int(u),
            {"length": float(L), "travel_time": float(t), "highway": str(h), "speed_kph": float(s)},
        )
        for u, w, L, t, h, s in zip(a[two], b[two], length[two], tt[two], hwy[two], speed[two])
    )
    G.add_edges_from(back)
    return G


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--side", type=int, default=1000, help="grid side (nodes = side²)")
    p.add_argument("--origins", type=int, default=200)
    p.add_argument("--destinations", type=int, default=2000)
    p.add_argument("--cutoff", type=float, default=20.0, help="minutes")
    p.add_argument(
        "--nx-origins",
        type=int,
        default=None,
        help="origins timed with networkx (default: all; fewer → extrapolated)",
    )
    p.add_argument("--seed", type=int, default=49)
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    G = synthetic_graph(args.side, args.seed)
    print(
        f"graph: {G.number_of_nodes():,} nodes, {G.number_of_edges():,} edges, built in "
        f"{time.perf_counter() - t0:.1f} s (peak RSS {rss_gb():.1f} GB)"
    )

    rng = np.random.default_rng(args.seed + 1)
    nodes = np.array(sorted(G.nodes))
    o_nodes = rng.choice(nodes, args.origins, replace=False)
    d_nodes = rng.choice(nodes, args.destinations, replace=False)
    import pandas as pd

    def pts(ns, prefix):
        return pd.DataFrame(
            {"x": [G.nodes[int(k)]["x"] for k in ns], "y": [G.nodes[int(k)]["y"] for k in ns]},
            index=[f"{prefix}{int(k)}" for k in ns],
        )

    origins, destinations = pts(o_nodes, "o"), pts(d_nodes, "d")

    # --- scipy -------------------------------------------------------------------------
    t0 = time.perf_counter()
    net = roads.road_network(G)
    t_conv = time.perf_counter() - t0
    pos = {int(k): i for i, k in enumerate(net.nodes.tolist())}
    o_idx = np.array([pos[int(k)] for k in o_nodes])
    d_idx = np.array([pos[int(k)] for k in d_nodes])
    zo, zd = np.zeros(len(o_idx)), np.zeros(len(d_idx))
    t0 = time.perf_counter()
    i, j, minutes, _ = roads._od_core(net, o_idx, zo, d_idx, zd, args.cutoff, with_km=False)
    t_core = time.perf_counter() - t0
    t0 = time.perf_counter()
    roads._od_core(net, o_idx, zo, d_idx, zd, args.cutoff, with_km=True)
    t_core_km = time.perf_counter() - t0
    t0 = time.perf_counter()
    od = roads.od_road(origins, destinations, net, max_minutes=args.cutoff)
    t_e2e = time.perf_counter() - t0
    t0 = time.perf_counter()
    od_g = roads.od_road(origins, destinations, G, max_minutes=args.cutoff)
    t_e2e_g = time.perf_counter() - t0
    assert od_g.equals(od)
    print(
        f"scipy: graph -> RoadNetwork conversion {t_conv:.2f} s (once per graph); routing "
        f"core {t_core:.2f} s (times only), {t_core_km:.2f} s (with road km); od_road "
        f"{t_e2e:.2f} s on the RoadNetwork, {t_e2e_g:.2f} s on the graph (conversion "
        f"included); {len(od):,} pairs within {args.cutoff:g} min "
        f"(peak RSS {rss_gb():.1f} GB)"
    )

    # --- networkx ----------------------------------------------------------------------
    k = args.origins if args.nx_origins is None else min(args.nx_origins, args.origins)
    dset = {int(x): c for c, x in enumerate(d_nodes)}
    got = {}
    for a, b, t in zip(i, j, minutes):
        if a < k:
            got[(int(a), int(b))] = t
    expected = {}
    t0 = time.perf_counter()
    for a in range(k):
        lengths = nx.single_source_dijkstra_path_length(
            G, int(o_nodes[a]), cutoff=args.cutoff * 60, weight="travel_time"
        )
        for node, sec in lengths.items():
            c = dset.get(node)
            if c is not None:
                expected[(a, c)] = sec / 60
    t_nx_k = time.perf_counter() - t0
    t_nx = t_nx_k * args.origins / k
    how = "measured" if k == args.origins else f"extrapolated from {k} origins ({t_nx_k:.1f} s)"
    print(
        f"networkx: single_source_dijkstra_path_length × {args.origins} origins: "
        f"{t_nx:.1f} s ({how})"
    )

    # --- agreement ---------------------------------------------------------------------
    # pairs within the cutoff up to float rounding of the sums may differ at the edge
    core = {pair for pair, t in got.items() if t < args.cutoff - 1e-9}
    ref = {pair for pair, t in expected.items() if t < args.cutoff - 1e-9}
    same_pairs = core == ref
    max_diff = max((abs(got[pair] - expected[pair]) for pair in ref & core), default=0.0)
    print(
        f"check on {k} origins: {len(ref):,} pairs; same pairs: {same_pairs}; "
        f"max |Δ minutes| = {max_diff:.2e}"
    )
    # road km on a few origins: od_road's km vs the length of networkx's fastest path
    od_km = {
        (o, d): km for o, d, km in od[["origin_id", "destination_id", "km"]].itertuples(index=False)
    }
    km_diff, km_n = 0.0, 0
    for a in range(min(3, k)):
        _, paths = nx.single_source_dijkstra(
            G, int(o_nodes[a]), cutoff=args.cutoff * 60 - 1e-6, weight="travel_time"
        )
        for node, path in paths.items():
            if node in dset:
                metres = sum(
                    min(G[x][y].values(), key=lambda e: e["travel_time"])["length"]
                    for x, y in zip(path[:-1], path[1:])
                )
                km_diff = max(km_diff, abs(od_km[(f"o{o_nodes[a]}", f"d{node}")] - metres / 1000))
                km_n += 1
    print(f"road km check on {min(3, k)} origins: {km_n} pairs; max |Δ km| = {km_diff:.2e}")
    print(
        f"speed-up (target ≥ 20×): networkx / scipy core = {t_nx / t_core:.0f}×; "
        f"networkx / od_road on RoadNetwork = {t_nx / t_e2e:.0f}×; "
        f"networkx / od_road on graph incl. conversion = {t_nx / t_e2e_g:.0f}×"
    )
    return 0 if same_pairs and max_diff < 1e-6 and km_diff < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
