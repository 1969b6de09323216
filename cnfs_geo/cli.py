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

from . import _fr, _journal, catalog
from ._errors import CnfsGeoError, DataFileError, OutputDirError
from .settings import DEFAULT, DEMAND_UNITS


def _fmt_int(x: float) -> str:
    return _fr.integer(x, sep=" ")


def _fmt_pct(x: float) -> str:
    return _fr.percent(x, space=" ")


def _cmd_plan(args: argparse.Namespace) -> int:
    from .outputs import write_outputs
    from .plan import Scenario, compare_demand_units, prepare, run

    if str(args.departement).lower() in ("all", "france"):
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
    prepared = prepare(scenario)
    plan = run(scenario, prepared=prepared)
    if plan.scenario.demand_unit != "commune":
        plan.unit_comparison = compare_demand_units(plan)
    # on by default: 2–6 s on a département (docs/methods_robustness.md)
    if getattr(args, "robustness", True) and scenario.model == "mclp":
        from .robustness import with_robustness

        plan = with_robustness(plan, prepared)
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
            f"    circuit {r.circuit_id} basé à {r.base_nom} : "
            f"{_fr.plural(r.n_stops, 'arrêt')} ({r.stop_names.replace(';', ', ')}), "
            f"{_fr.hours(r.hours_at_stops)} sur place + {_fr.hours(r.minutes_per_week / 60)} "
            f"de route, {_fmt_int(r.km_per_week)} km/semaine, "
            f"{_fmt_int(r.population)} hab. desservis"
        )
        if r.empty_days_reason:
            print(f"      {r.empty_days_reason}")
    if len(plan.circuits):
        served = _fr.SERVED_DEFINITION.format(threshold=_fr.number(s["threshold_min"], trim=True))
        print(
            f"  couverture avec les circuits : +{_fmt_int(s['population_served_itinerant'])} hab. "
            f"({served})"
        )
    rob = getattr(plan, "robustness", None)
    if rob is not None:
        print(
            f"  robustesse ({_fr.plural(len(rob.perturbations), 'variante')} des hypothèses, "
            f"{rob.seconds:.1f} s) :"
        )
        for r in rob.posts.itertuples():
            print(
                f"    {r.post_id}  {r.commune:<32} choisi à nouveau {r.chosen_again}/{r.runs} "
                f"fois : {r.label}"
            )
    for p in paths.values():
        print(f"  écrit : {p}")
    print(f"  durée : {wall:.1f} s")
    lines = _journal.summary_lines(plan.journal)
    if lines:
        print(
            "cnfs-geo : données réparées ou rejetées (table journal de plan.gpkg) :",
            file=sys.stderr,
        )
        for line in lines:
            print(f"  {line}", file=sys.stderr)
    return 0


def _cmd_plan_national(args: argparse.Namespace) -> int:
    from .national import national
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
    table = national(scenario, total_posts=total, out_dir=out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "synthese_nationale.csv"
    table.to_csv(path, index=False, lineterminator="\n")
    pop = table["population"].sum()
    before = (table["pct_population_covered_before"] * table["population"]).sum() / pop
    after = (table["pct_population_covered_after"] * table["population"]).sum() / pop
    print(
        f"cnfs-geo plan — {len(table)} départements, {_fmt_int(pop)} habitants, "
        f"{int(table['posts'].sum())} postes répartis selon le besoin non couvert"
    )
    print(f"  couverture à {scenario.threshold:g} min : {_fmt_pct(before)} → {_fmt_pct(after)}")
    print(f"  écrit : {path} et un dossier par département dans {out}")
    print(f"  durée : {time.perf_counter() - t0:.0f} s")
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
        choices=list(DEMAND_UNITS),
        default=None,
        help="where people are counted: finest (default: IRIS, else communes "
        "déléguées, else the whole commune, village units at their chef-lieu), "
        "commune (one point per commune), iris or commune2018",
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
    if args.source == "official":
        return _cmd_data_fetch_official(args)
    keys = args.sources or None
    sources = dict(catalog.SOURCES)
    for dep in args.departement or []:
        src = catalog.polygon_source(dep)
        sources[src.key] = src
        keys = keys or [k for k in catalog.SOURCES if k != "communes_2018_archive"]
        keys = keys + [src.key] if src.key not in keys else keys
    target = args.data_dir or args.cache_dir
    try:
        got = catalog.fetch(
            keys,
            cache_dir=target,
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
        print(catalog.manual_instructions(missing, cache_dir=target, sources=sources))
    cache = target or catalog.default_cache_dir()
    print(f"Use it with: cnfs-geo plan --data-dir {cache} …  (or export {catalog.ENV_VAR}={cache})")
    return 0


def _cmd_data_fetch_official(args: argparse.Namespace) -> int:
    from .fetch import fetch_official

    if args.sources:
        raise DataFileError(
            "--source official prend tout ce qu'un plan demande ; les clés de sources "
            f"({' '.join(args.sources)}) ne valent qu'avec --source pinned."
        )
    if not args.departement:
        raise DataFileError(
            "indiquez le département : `cnfs-geo data fetch --departement 53 --data-dir "
            "DOSSIER` (ou --departement all)."
        )
    target = Path(args.data_dir or args.cache_dir or catalog.default_cache_dir())
    t0 = time.perf_counter()
    result = fetch_official(
        args.departement,
        target,
        locked=args.locked,
        base_url=args.base_url,
        timeout=args.timeout,
        retries=args.retries,
    )
    deps = result.departements
    print(
        f"cnfs-geo data fetch — {_fr.plural(len(deps), 'département')} "
        f"({', '.join(deps)}) dans {result.data_dir}"
        + (" (--locked : identique au verrou)" if args.locked else "")
    )
    print(
        f"  {_fr.plural(len(result.downloads), 'téléchargement')}, "
        f"{_fr.plural(len(result.files), 'fichier écrit', 'fichiers écrits')}, verrou "
        f"{result.lock_path}"
    )
    _print_provenance(catalog.resolve_data_dir(result.data_dir))
    print(f"  durée : {_fr.number(time.perf_counter() - t0)} s")
    dep = deps[0] if len(deps) == 1 else "D"
    print(f"Ensuite : cnfs-geo plan --departement {dep} --data-dir {result.data_dir}")
    return 0


def _print_provenance(data_dir: catalog.DataDir) -> None:
    print("  sources :")
    for r in catalog.data_provenance(data_dir):
        got = f", récupéré le {r['retrieved']}" if r.get("retrieved") else ""
        print(f"    - {r['title']} — {r['vintage']}{got}")


def _cmd_data_check(args: argparse.Namespace) -> int:
    data_dir = catalog.resolve_data_dir(args.data_dir)
    table = catalog.check_table(data_dir, args.departement)
    for key, r in table.iterrows():
        need = "requis" if r["required"] else "facultatif"
        state = _fr.DATA_FILE_STATUS.get(r["status"], r["status"])
        print(f"  {key:<22} {need:<10} {state:<28} {r['file']}")
    bad = table.index[
        table["status"].isin(["checksum mismatch", "size mismatch"])
        | (table["required"] & (table["status"] == "missing"))
    ].tolist()
    if args.departement is not None:
        try:
            catalog.check_data_dir(data_dir, args.departement)
        except DataFileError as exc:
            print(f"cnfs-geo: {exc}", file=sys.stderr)
            return 1
    if bad:
        lock = catalog.read_lock(data_dir.path)
        fix = (
            f"cnfs-geo data fetch --departement {' '.join(lock.get('departements', ['D']))} "
            f"--data-dir {data_dir.path}"
            if lock
            else f"cnfs-geo data fetch --source pinned --force {' '.join(bad)}"
        )
        what = _fr.plural(len(bad), "fichier manquant ou modifié", "fichiers manquants ou modifiés")
        print(
            f"{what} : {', '.join(bad)} — correctif : {fix}",
            file=sys.stderr,
        )
    return 1 if bad else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cnfs-geo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every stage")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)
    pl = sub.add_parser("plan", help="coverage diagnosis and new posts for a département")
    pl.add_argument(
        "--departement",
        "-d",
        default=catalog.BUNDLE_DEPARTEMENT,
        help="INSEE département code (49, 2A, 974…), or 'all' for every "
        "département with --posts shared by need; default 49",
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
        "--sans-robustesse",
        "--no-robustness",
        dest="robustness",
        action="store_false",
        help="skip the robustness analysis (by default the fixed posts are re-solved under "
        "changed assumptions — speed 40/60 km/h, detour 1.2/1.5, threshold ± 2 min, "
        "commune-point unit — and each is marked robust or fragile; 2–6 s)",
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
        help="download everything a plan needs for a département (official current "
        "sources, or the pinned snapshots) into a data folder usable as --data-dir",
    )
    fe.add_argument(
        "sources",
        nargs="*",
        help=f"with --source pinned: source keys (default all): {', '.join(catalog.SOURCES)}",
    )
    fe.add_argument(
        "--source",
        choices=["official", "pinned"],
        default="official",
        help="official: current official sources (API Découpage administratif, "
        "Cartographie nationale des lieux d'inclusion numérique, France services, ARCEP; "
        "default); pinned: the pinned snapshots of the catalog (offline reproducibility)",
    )
    fe.add_argument(
        "--data-dir",
        default=None,
        help=f"target folder (default --cache-dir, ${catalog.CACHE_ENV_VAR} or the user cache)",
    )
    fe.add_argument("--cache-dir", default=None, help="same as --data-dir (older name)")
    fe.add_argument(
        "--base-url",
        default=None,
        help=f"mirror or test server: official root URL (default ${catalog.FETCH_BASE_ENV}), "
        "or with --source pinned a template such as http://host/{relpath}",
    )
    fe.add_argument(
        "--locked",
        action="store_true",
        help="reproduce exactly the set recorded in data.lock.json, or fail naming what changed",
    )
    fe.add_argument("--timeout", type=float, default=60, help="seconds per request (default 60)")
    fe.add_argument(
        "--retries", type=int, default=3, help="new attempts after 429/5xx/timeout (default 3)"
    )
    fe.add_argument("--force", action="store_true", help="pinned: download again even if present")
    fe.add_argument(
        "--departement",
        "-d",
        action="append",
        default=None,
        metavar="CODE",
        help="département to fetch (repeatable; 'all' for every one); with --source "
        "pinned: also fetch its commune polygons",
    )
    fe.set_defaults(func=_cmd_data_fetch)
    ch = dsub.add_parser(
        "check", help="list which files of a data directory are present and intact"
    )
    ch.add_argument("--data-dir", default=None, help="folder to check (default as for plan)")
    ch.add_argument(
        "--departement", "-d", default=None, help="also check this département is covered"
    )
    ch.set_defaults(func=_cmd_data_check)
    return p


def _error_lines(exc: CnfsGeoError) -> str:
    """One French message for a project error: what, where (file, row, field), fix."""
    kind = "sortie" if isinstance(exc, OutputDirError) else "données d'entrée"
    return f"cnfs-geo : erreur ({kind}) — {exc}"


def _log_traceback() -> Path:
    """Write the current exception's traceback to a log file; return its path."""
    import tempfile
    import traceback

    fd, name = tempfile.mkstemp(prefix="cnfs-geo-erreur-", suffix=".log")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(traceback.format_exc())
    return Path(name)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 bad input or arguments,
    1 internal error, 130 interrupted). Never lets a traceback reach the user unless
    ``--debug``."""
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
        if getattr(args, "out", None) is not None:
            from .outputs import check_out_dir

            check_out_dir(args.out)
        return args.func(args)
    except CnfsGeoError as exc:
        if args.debug:
            raise
        print(_error_lines(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(
            "cnfs-geo : interrompu (Ctrl-C) ; les sorties précédentes sont intactes.",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:
        if args.debug:
            raise
        log_path = _log_traceback()
        print(
            f"cnfs-geo : erreur interne ({type(exc).__name__} : {exc}) ; détails dans "
            f"{log_path} (relancer avec --debug pour les afficher). Merci de la signaler.",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
