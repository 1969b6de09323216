"""``cnfs-geo`` command line.

Commands
--------
``cnfs-geo plan --departement 49 --posts 8 --threshold 10 --out maps/49``
    Coverage diagnosis and placement of new posts; writes ``plan.gpkg``,
    ``carte_couverture.html`` and ``rapport.html`` into ``--out`` and prints a summary.

Errors in the inputs are printed as one clear message (file, row or field, fix)
and the command exits with status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from . import _fr, catalog
from ._errors import CnfsGeoError, DataFileError
from .settings import DEFAULT


def _fmt_int(x: float) -> str:
    return _fr.integer(x, sep=" ")


def _fmt_pct(x: float) -> str:
    return _fr.percent(x, space=" ")


def _cmd_plan(args: argparse.Namespace) -> int:
    from .outputs import write_outputs
    from .plan import Scenario, run

    if str(args.departement).lower() in ("all", "france") or "," in str(args.departement):
        return _cmd_plan_national(args)

    settings = DEFAULT
    t0 = time.perf_counter()
    scenario = Scenario(
        departement=args.departement,
        posts=args.posts,
        threshold_minutes=args.threshold,
        data_dir=args.data_dir,
        itinerant_posts=args.itinerant,
        **_scenario_options(args),
        settings=settings,
    )
    plan = run(scenario)
    paths = write_outputs(plan, args.out)
    wall = time.perf_counter() - t0
    s = plan.summary()
    counts = plan.offer_report.counts
    print(
        f"cnfs-geo plan — département {s['departement']} ({s['communes']} communes, "
        f"{_fmt_int(s['population'])} habitants)"
    )
    print(f"  données : {plan.data_dir.path} ({plan.data_dir.origin})")
    print(
        f"  offre existante : {s['places']} lieux, dont {s['accompaniment_places']} "
        f"d'accompagnement"
    )
    for r in counts.itertuples():
        print(
            f"    {r.source:<20} lus {r.read:>5}  gardés {r.kept:>5}  fusionnés {r.merged:>5}  "
            f"rejetés {r.rejected:>5}"
        )
    print(f"  temps de trajet : {s['travel_model']}")
    print(f"  unités de demande : {s['demand_unit']} ({s['units']} unités)")
    pop_before = _fmt_int(s["population_covered_before"])
    pop_after = _fmt_int(s["population_covered_after"])
    pct_before = _fmt_pct(s["pct_population_covered_before"])
    pct_after = _fmt_pct(s["pct_population_covered_after"])
    print(
        f"  couverture à {s['threshold_min']:g} min : population {pop_before} ({pct_before})"
        f" → {pop_after} ({pct_after})"
        f" ; communes {s['communes_covered_before']} → {s['communes_covered_after']}"
    )
    need_before, need_after = (
        _fmt_pct(s["pct_need_covered_before"]),
        _fmt_pct(s["pct_need_covered_after"]),
    )
    print(f"  population pondérée par le besoin couverte : {need_before} → {need_after}")
    print(f"  {s['posts']} nouveaux postes ({_fmt_int(s['cost_eur'])} €) :")
    for r in plan.posts.itertuples():
        gain = _fmt_int(r.covered_population)
        print(f"    {r.post_id}  {r.commune:<32} {r.host[:40]:<40} +{gain} hab.")
    for r in plan.circuits.itertuples():
        print(
            f"    circuit {r.circuit_id} basé à {r.base_nom} : {r.n_stops} arrêts "
            f"({r.stop_names.replace(';', ', ')}), {r.km_per_week:.0f} km/semaine, "
            f"{_fmt_int(r.population)} hab."
        )
    for p in paths.values():
        print(f"  écrit : {p}")
    print(f"  durée : {wall:.1f} s")
    return 0


def _cmd_plan_national(args: argparse.Namespace) -> int:
    from .national import national, write_national
    from .plan import Scenario

    if args.data_dir is None and not os.environ.get(catalog.ENV_VAR):
        raise DataFileError(
            "--departement all needs the national files: "
            + catalog.missing_files_message(
                ["cog_communes", "cog_epci", "communes_2018_archive"], catalog.resolve_data_dir()
            )
        )
    t0 = time.perf_counter()
    scenario = Scenario(
        departement="49",
        threshold_minutes=args.threshold,
        data_dir=args.data_dir,
        itinerant_posts=args.itinerant,
        **_scenario_options(args),
    )
    total = args.posts if args.posts is not None else 0
    out = Path(args.out)
    result = national(
        scenario,
        total_posts=total,
        out_dir=out,
        workers=args.workers,
        scheduler=args.scheduler,
        departements=None
        if str(args.departement).lower() in ("all", "france")
        else [d.strip().upper().zfill(2) for d in str(args.departement).split(",") if d.strip()],
    )
    path = write_national(result, out)["table"]
    table = result.table
    pop = table["population"].sum() if len(table) else 0
    if pop:
        before = (table["pct_population_covered_before"] * table["population"]).sum() / pop
        after = (table["pct_population_covered_after"] * table["population"]).sum() / pop
    print(
        f"cnfs-geo plan — {_fr.plural(len(table), 'département')}, {_fmt_int(pop)} habitants, "
        f"{_fr.plural(int(table['posts'].sum()) if len(table) else 0, 'poste')} répartis "
        "selon le besoin non couvert"
    )
    if pop:
        print(f"  couverture à {scenario.threshold:g} min : {_fmt_pct(before)} → {_fmt_pct(after)}")
    print(f"  écrit : {path}, communes_france.parquet et un dossier par département dans {out}")
    calc = (
        f"cluster Dask {args.scheduler}"
        if args.scheduler
        else "sans Dask"
        if result.workers <= 1
        else f"{_fr.plural(result.workers, 'processus', 'processus')} Dask locaux"
    )
    print(f"  durée : {time.perf_counter() - t0:.0f} s ({calc})")
    if result.failures:
        print(
            f"cnfs-geo : {_fr.plural(len(result.failures), 'département')} en échec "
            "(les autres sont écrits) :",
            file=sys.stderr,
        )
        for dep, reason in result.failures.items():
            print(f"  {dep} : {reason}", file=sys.stderr)
        return 3
    return 0


def _scenario_options(args: argparse.Namespace) -> dict:
    return {
        "demand_unit": args.demand_unit,
        "travel": "road" if args.osm else "crow-fly",
        "osm_file": args.osm,
        "need_weights": args.need_weights,
        "fibre_target_pct": args.fibre_target,
        "model": args.model,
    }


def _add_scenario_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--demand-unit",
        choices=["commune", "iris", "commune2018"],
        default="commune",
        help="where people are counted (default commune)",
    )
    p.add_argument(
        "--osm",
        default=None,
        metavar="FILE",
        help="OSM extract (.osm or .osm.pbf) for road travel times (default: crow-fly × detour)",
    )
    p.add_argument(
        "--need-weights",
        choices=["equal"],
        default=None,
        help="need index from the five IFN dimensions with equal weights "
        "(default: the official IFN composite)",
    )
    p.add_argument(
        "--model",
        choices=["mclp", "equity"],
        default="mclp",
        help="placement model: maximal covering within the threshold (default) or "
        "capacity/equity (shortfall below a target 2SFCA accessibility)",
    )
    p.add_argument(
        "--fibre-target",
        type=float,
        default=None,
        metavar="PCT",
        help="fibre what-if: FTTH rollout raised to PCT %% in every commune",
    )


def _cmd_compare(args: argparse.Namespace) -> int:
    import dataclasses

    from .figures import compare_chart
    from .plan import Scenario, compare_posts, compare_scenarios, standard_variants

    scenario = Scenario(
        departement=args.departement,
        threshold_minutes=args.threshold,
        data_dir=args.data_dir,
        **_scenario_options(args),
    )
    table = compare_posts(scenario, args.posts)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = out / "comparaison.csv", out / "comparaison.png"
    table.to_csv(csv_path, index=False, lineterminator="\n")
    compare_chart(
        table,
        png_path,
        title=f"Département {scenario.departement} — seuil {scenario.threshold:g} min",
    )
    print(
        table[
            ["posts", "cost_eur", "pct_population_covered", "pct_need_covered", "marginal_need"]
        ].to_string(index=False)
    )
    print(f"  écrit : {csv_path}\n  écrit : {png_path}")
    if args.budget:
        variants = compare_scenarios(
            standard_variants(
                dataclasses.replace(scenario, posts=args.budget),
                itinerant_posts=args.itinerant,
                fibre_target_pct=args.fibre_what_if,
            )
        )
        var_path = out / "variantes.csv"
        variants.to_csv(var_path, index=False, lineterminator="\n")
        print(variants.drop(columns=["fibre_target_pct"]).to_string(index=False))
        print(f"  écrit : {var_path}")
    return 0


def _cmd_data_fetch(args: argparse.Namespace) -> int:
    keys = args.sources or None
    sources = dict(catalog.SOURCES)
    for dep in args.departement or []:
        src = catalog.polygon_source(dep)
        sources[src.key] = src
        keys = keys or [k for k in catalog.SOURCES if k != "communes_2018_archive"]
        keys = keys + [src.key] if src.key not in keys else keys
    try:
        got = catalog.fetch(
            keys,
            cache_dir=args.cache_dir,
            base_urls=args.base_url,
            force=args.force,
            sources=sources,
        )
    except CnfsGeoError as exc:
        got = getattr(exc, "fetched", {})
        for key, path in got.items():
            print(f"  ok       {key:<24} {path}")
        raise
    for key, path in got.items():
        print(f"  ok       {key:<24} {path}")
    wanted = keys or list(catalog.SOURCES)
    missing = [k for k in wanted if k not in got]
    if missing:
        print(catalog.manual_instructions(missing, cache_dir=args.cache_dir, sources=sources))
    cache = args.cache_dir or catalog.default_cache_dir()
    print(f"Use it with: cnfs-geo plan --data-dir {cache} …  (or export {catalog.ENV_VAR}={cache})")
    return 0


def _cmd_data_check(args: argparse.Namespace) -> int:
    table = catalog.verify(args.data_dir)
    print(table[["relpath", "status"]].to_string())
    bad = table.index[table["status"] == "checksum mismatch"].tolist()
    if bad:
        print(
            f"checksum mismatch: {', '.join(bad)} — fetch them again (cnfs-geo data fetch --force "
            f"{' '.join(bad)})"
        )
    return 1 if bad else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cnfs-geo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every stage")
    sub = p.add_subparsers(dest="command", required=True)
    pl = sub.add_parser("plan", help="coverage diagnosis and new posts for a département")
    pl.add_argument(
        "--departement",
        "-d",
        default=catalog.BUNDLE_DEPARTEMENT,
        help="INSEE département code (49, 2A, 974…), or 'all' for every "
        "département with --posts shared by need (or a list: 2A,2B,48); default 49",
    )
    pl.add_argument(
        "--posts",
        "-n",
        type=int,
        default=None,
        help=f"new posts to place (default {DEFAULT.posts})",
    )
    pl.add_argument(
        "--threshold",
        "-t",
        type=float,
        default=None,
        help=f"coverage threshold in minutes (default {DEFAULT.threshold_minutes:g})",
    )
    pl.add_argument(
        "--out", "-o", type=Path, default=None, help="output folder (default maps/<département>)"
    )
    pl.add_argument(
        "--data-dir",
        default=None,
        help=f"folder of national data files (default ${catalog.ENV_VAR}, "
        "else the embedded Maine-et-Loire bundle)",
    )
    _add_scenario_options(pl)
    pl.add_argument(
        "--itinerant",
        type=int,
        default=0,
        metavar="K",
        help="also K mutualised itinerant posts (médiateur volant) for the sparse "
        "rural communes the fixed posts leave uncovered",
    )
    pl.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="with --departement all: a local Dask cluster of N processes (default: one per "
        "core; 1 = in this process, without Dask; needs pip install 'cnfs_geo[dask]')",
    )
    pl.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="with --departement all: run on an existing Dask cluster (tcp://host:8786); its "
        "workers need the data directory and --out at the same paths (README)",
    )
    pl.set_defaults(func=_cmd_plan)

    cp = sub.add_parser(
        "compare",
        help="sweep the number of posts: coverage gained per added post (CSV table + PNG chart)",
    )
    cp.add_argument("--departement", "-d", default=catalog.BUNDLE_DEPARTEMENT)
    cp.add_argument(
        "--posts",
        "-n",
        type=int,
        nargs="+",
        default=list(range(0, 21, 2)),
        help="numbers of posts to compare (default 0 2 4 … 20)",
    )
    cp.add_argument("--threshold", "-t", type=float, default=None)
    cp.add_argument(
        "--out",
        "-o",
        type=Path,
        default=None,
        help="output folder (default maps/<département>/comparaison)",
    )
    cp.add_argument("--data-dir", default=None)
    _add_scenario_options(cp)
    cp.add_argument(
        "--budget",
        type=int,
        default=8,
        metavar="N",
        help="also compare, for N posts, fixed only vs fixed + itinerant, with and "
        "without the fibre what-if (variantes.csv; 0 to skip; default 8)",
    )
    cp.add_argument(
        "--itinerant",
        type=int,
        default=2,
        metavar="K",
        help="itinerant posts in the mixed variants (default 2)",
    )
    cp.add_argument(
        "--fibre-what-if",
        type=float,
        default=100.0,
        metavar="PCT",
        help="fibre rollout of the what-if variants (default 100)",
    )
    cp.set_defaults(func=_cmd_compare)

    data = sub.add_parser("data", help="download or check the national data files")
    dsub = data.add_subparsers(dest="data_command", required=True)
    fe = dsub.add_parser(
        "fetch",
        help="download the national files (pinned URLs, sha256 "
        "checked, atomic) into a cache usable as --data-dir",
    )
    fe.add_argument(
        "sources", nargs="*", help=f"source keys (default all): {', '.join(catalog.SOURCES)}"
    )
    fe.add_argument(
        "--cache-dir",
        default=None,
        help=f"target folder (default ${catalog.CACHE_ENV_VAR} or the user cache)",
    )
    fe.add_argument(
        "--base-url", default=None, help="mirror URL template, e.g. http://host/{relpath}"
    )
    fe.add_argument("--force", action="store_true", help="download again even if present")
    fe.add_argument(
        "--departement",
        "-d",
        action="append",
        default=None,
        metavar="CODE",
        help="also fetch this département's commune polygons (repeatable); "
        "instead of the national archive, which cannot be downloaded",
    )
    fe.set_defaults(func=_cmd_data_fetch)
    ch = dsub.add_parser(
        "check", help="list which files of a data directory are present and intact"
    )
    ch.add_argument("--data-dir", default=None, help="folder to check (default as for plan)")
    ch.set_defaults(func=_cmd_data_check)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "out", "unset") is None:
        args.out = Path("maps") / (
            "france"
            if str(args.departement).lower() in ("all", "france")
            else str(args.departement)
        )
        if args.command == "compare":
            args.out = args.out / "comparaison"
    try:
        return args.func(args)
    except CnfsGeoError as exc:
        print(f"cnfs-geo: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
