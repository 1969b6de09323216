"""Benchmark: all of France (``--departement all --posts 2000``, crow-fly), serial vs Dask.

One command prints everything (run it on an idle machine; it takes minutes)::

    CNFS_GEO_DATA_DIR=/work/shared/data/raw .venv/bin/python benchmarks/bench_national.py
    .venv/bin/python benchmarks/bench_national.py --departements 2A,2B,48 --posts 20  # quick

Each mode runs in its own Python process (same code as ``cnfs-geo plan --departement all``:
:func:`cnfs_geo.national.national` then :func:`~cnfs_geo.national.write_national`, every
département's outputs written):

* serial: ``workers=1``, in-process without Dask;
* Dask: a local cluster of ``--workers`` processes (one thread each), started inside the
  timed region, driven through its scheduler address (the ``--scheduler`` path), so that each
  worker's peak resident memory (``ru_maxrss``) can be read before the cluster closes.

Printed: wall time of each mode (with the 1-minute load average at its end: on a shared
machine the ratio is only honest when both loads are alike), the ratio, peak memory of the
serial process, of the Dask client and of each worker, the machine load
(``os.getloadavg``) before and after, and whether
the two output folders are byte-identical (every file).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _run_mode(mode: str, out: str, deps: list[str] | None, posts: int, workers: int) -> dict:
    from cnfs_geo.national import national, read_inputs, write_national
    from cnfs_geo.plan import Scenario

    t0 = time.perf_counter()
    scenario = Scenario(data_dir=os.environ.get("CNFS_GEO_DATA_DIR"))
    info: dict = {"mode": mode}
    if mode == "serial":
        inputs = read_inputs(scenario.data_dir)
        res = national(
            scenario, total_posts=posts, out_dir=out, departements=deps, workers=1, inputs=inputs
        )
    else:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            memory_limit=0,
        )
        info["cluster_start_s"] = round(time.perf_counter() - t0, 1)
        res = national(
            scenario,
            total_posts=posts,
            out_dir=out,
            departements=deps,
            scheduler=cluster.scheduler_address,
        )
        with Client(cluster) as client:
            peaks = client.run(_peak_gb)
        info["worker_peak_gb"] = sorted(round(v, 2) for v in peaks.values())
        cluster.close()
    write_national(res, out)
    info["wall_s"] = round(time.perf_counter() - t0, 1)
    info["load_1min_end"] = round(os.getloadavg()[0], 2)
    info["peak_gb"] = round(_peak_gb(), 2)
    info["departements"] = len(res.table)
    info["failures"] = res.failures
    info["posts"] = int(res.table["posts"].sum())
    return info


def _identical(a: Path, b: Path) -> tuple[int, list[str]]:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    differ = [str(f) for f in files if not filecmp.cmp(a / f, b / f, shallow=False)]
    missing = sorted(
        str(p.relative_to(b))
        for p in b.rglob("*")
        if p.is_file() and not (a / p.relative_to(b)).exists()
    )
    return len(files), differ + missing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--departements", default=None, help="comma list (default: all of France)")
    ap.add_argument("--posts", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--mode", choices=["serial", "dask"], default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    deps = args.departements.split(",") if args.departements else None
    if args.mode:  # child process: one mode, JSON on the last line
        info = _run_mode(args.mode, args.out, deps, args.posts, args.workers)
        print(json.dumps(info))
        return 0
    if not os.environ.get("CNFS_GEO_DATA_DIR"):
        print("set CNFS_GEO_DATA_DIR to the national raw data folder", file=sys.stderr)
        return 2
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"cores: {len(os.sched_getaffinity(0))}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_national_") as tmp:
        for mode in ("serial", "dask"):
            out = Path(tmp) / mode
            cmd = [sys.executable, __file__, "--mode", mode, "--out", str(out)]
            cmd += ["--posts", str(args.posts), "--workers", str(args.workers)]
            if args.departements:
                cmd += ["--departements", args.departements]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        n_files, differ = _identical(Path(tmp) / "serial", Path(tmp) / "dask")
    s, d = results["serial"], results["dask"]
    scope = args.departements or "all of France"
    print(f"scope: {scope}, {s['departements']} départements planned, {s['posts']} posts")
    print(
        f"serial (in-process, no Dask): {s['wall_s']:.1f} s, peak memory {s['peak_gb']:.2f} GB"
        f" (1-min load at its end {s['load_1min_end']:.2f})"
    )
    print(
        f"dask, {args.workers} local workers: {d['wall_s']:.1f} s "
        f"(cluster start {d['cluster_start_s']:.1f} s), client peak {d['peak_gb']:.2f} GB"
        f" (1-min load at its end {d['load_1min_end']:.2f})"
    )
    print(f"peak memory per worker: {', '.join(f'{g:.2f} GB' for g in d['worker_peak_gb'])}")
    print(f"ratio serial / dask: {s['wall_s'] / d['wall_s']:.2f}x")
    print(f"failures: serial {s['failures'] or 'none'}, dask {d['failures'] or 'none'}")
    print(
        f"identity: {n_files} files compared, "
        + ("all byte-identical" if not differ else f"{len(differ)} differ: {differ[:5]}")
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if not differ else 1


if __name__ == "__main__":
    sys.exit(main())
