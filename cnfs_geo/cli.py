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
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from . import _fr, _journal, _progress, catalog
from ._errors import CnfsGeoError, DataFileError, InterruptedAfterWriting, OutputDirError
from .settings import DEFAULT, DEMAND_UNITS

if TYPE_CHECKING:
    import pandas as pd


def _fmt_int(x: float) -> str:
    return _fr.integer(x)


def _fmt_pct(x: float) -> str:
    return _fr.percent(x)


class _FrenchHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's help, with the French "utilisation :" prefix."""

    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None = None) -> None:
        if prefix is None:
            prefix = "utilisation : "
        super().add_usage(usage, actions, groups, prefix=prefix)


class _FrenchParser(argparse.ArgumentParser):
    """ArgumentParser whose help and errors read in French (subcommands inherit it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _FrenchHelpFormatter)
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        self._positionals.title = "arguments"
        self._optionals.title = "options"
        self.add_argument("-h", "--help", action="help", help=_fr.CLI_HELP_HELP)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog} : erreur : {_fr.argparse_error(message)}\n")


def _count(text: str) -> int:
    """An option's whole number ≥ 0 (posts, itinerant posts, retries), or a French error."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"« {text} » n'est pas un nombre entier") from None
    if n < 0:
        raise argparse.ArgumentTypeError(
            f"{text} : un nombre entier positif ou nul est attendu, par exemple 8"
        )
    return n


def _at_least_one(text: str) -> int:
    """An option's whole number ≥ 1 (worker processes), or a French error."""
    n = _count(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text} : au moins 1 est attendu")
    return n


def _positive(text: str) -> float:
    """An option's finite number > 0 (seconds, minutes), or a French error."""
    try:
        x = float(text.replace(",", "."))
    except ValueError:
        raise argparse.ArgumentTypeError(f"« {text} » n'est pas un nombre") from None
    if not math.isfinite(x) or x <= 0:
        raise argparse.ArgumentTypeError(f"{text} : un nombre strictement positif est attendu")
    return x


def _minutes(text: str) -> float:
    """A threshold in minutes (> 0, finite), or a French error."""
    try:
        return _positive(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text} : un temps en minutes strictement positif est attendu, par exemple 10"
        ) from None


def _percent(text: str) -> float:
    """A share in %, in ]0 ; 100], or a French error."""
    x = _positive(text)
    if x > 100:
        raise argparse.ArgumentTypeError(f"{text} : un pourcentage entre 0 et 100 est attendu")
    return x


def _fr_float(x: float) -> str:
    return _fr.number(x, 1)


def _write_spreadsheet_csv(frame: pd.DataFrame, path: Path) -> None:
    """CSV for a French spreadsheet: French headers, ``;`` separator, decimal comma,
    UTF-8 with BOM; written atomically."""
    tmp = path.with_name(path.name + ".tmp")
    _fr.spreadsheet_columns(frame).to_csv(
        tmp, index=False, sep=";", decimal=",", encoding="utf-8-sig", lineterminator="\n"
    )
    os.replace(tmp, path)


def _cmd_plan(args: argparse.Namespace) -> int:
    from .outputs import write_outputs
    from .plan import Scenario, compare_demand_units, prepare, run

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
    prepared = prepare(scenario)
    plan = run(scenario, prepared=prepared)
    if plan.scenario.demand_unit != "commune":
        plan.unit_comparison = compare_demand_units(plan)
    # on by default: 2–6 s on a département (docs/methods_robustness.md)
    if getattr(args, "robustness", True) and scenario.model == "mclp":
        from .robustness import with_robustness

        plan = with_robustness(plan, prepared)
    with _progress.stage(_fr.PROGRESS_WRITE):
        paths = write_outputs(plan, args.out, with_pdf=getattr(args, "with_pdf", True))
    wall = time.perf_counter() - t0
    s = plan.summary()
    counts = plan.offer_report.counts
    print(
        f"cnfs-geo plan — département {s['departement']} ({s['communes']} communes, "
        f"{_fmt_int(s['population'])} habitants)"
    )
    origin = _fr.DATA_ORIGIN.get(plan.data_dir.origin, plan.data_dir.origin)
    print(f"  données : {plan.data_dir.path} ({origin})")
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
    n_posts = _fr.plural(s["posts"], "nouveau poste", "nouveaux postes")
    print(f"  {n_posts} ({_fr.euros(s['cost_eur'])} pour {_fr.plural(_fr.COST_YEARS, 'an')}) :")
    for r in plan.posts.itertuples():
        gain = _fmt_int(r.covered_population)
        print(f"    {r.post_id}  {r.commune:<32} {r.host[:40]:<40} +{gain} hab.")
    for r in plan.circuits.itertuples():
        print(
            f"    circuit {r.circuit_id} basé {_fr.of(r.base_nom, 'à')} : "
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
            f"{_fr.number(rob.seconds)} s) :"
        )
        for r in rob.posts.itertuples():
            print(
                f"    {r.post_id}  {r.commune:<32} choisi à nouveau {r.chosen_again}/{r.runs} "
                f"fois : {r.label}"
            )
    for p in paths.values():
        print(f"  écrit : {p}")
    print(f"  durée : {_fr.number(wall, 1)} s")
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
    from .national import national, write_national
    from .plan import Scenario

    if args.data_dir is None and not os.environ.get(catalog.ENV_VAR):
        raise DataFileError(
            "--departement all demande les fichiers nationaux : "
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
        with_pdf=getattr(args, "pdf", False) and getattr(args, "with_pdf", True),
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
        choices=list(DEMAND_UNITS),
        default=None,
        help="où la population est comptée : finest (défaut : IRIS, sinon communes de 2018, "
        "sinon la commune entière ; unités de village à leur chef-lieu), commune (un point "
        "par commune), iris ou commune2018",
    )
    p.add_argument(
        "--osm",
        default=None,
        metavar="FICHIER",
        help="extrait OpenStreetMap (.osm ou .osm.pbf) pour des temps de trajet par la route "
        "(défaut : distance à vol d'oiseau × détour)",
    )
    p.add_argument(
        "--need-weights",
        choices=["equal"],
        default=None,
        help="indice de besoin : les cinq dimensions de l'IFN à poids égaux "
        "(défaut : l'indice composite officiel)",
    )
    p.add_argument(
        "--model",
        choices=["mclp", "equity"],
        default="mclp",
        help="modèle de placement : couverture maximale au seuil (mclp, défaut) ou "
        "capacité / équité (equity : déficit d'accessibilité sous une cible)",
    )
    p.add_argument(
        "--fibre-target",
        type=_percent,
        default=None,
        metavar="PCT",
        help="hypothèse fibre : déploiement porté à PCT %% dans chaque commune",
    )


def _cmd_compare(args: argparse.Namespace) -> int:
    import dataclasses

    from .figures import compare_chart
    from .outputs import check_out_dir, write_files
    from .plan import Scenario, compare_posts, compare_scenarios, standard_variants

    scenario = Scenario(
        departement=args.departement,
        threshold_minutes=args.threshold,
        data_dir=args.data_dir,
        **_scenario_options(args),
    )
    out = check_out_dir(args.out)  # before the computation, not after it
    table = compare_posts(scenario, args.posts)
    variants = None
    if args.budget:
        variants = compare_scenarios(
            standard_variants(
                dataclasses.replace(scenario, posts=args.budget),
                itinerant_posts=args.itinerant,
                fibre_target_pct=args.fibre_what_if,
            )
        )
    title = f"Département {scenario.departement} — seuil {scenario.threshold:g} min"
    writers: dict[str, Callable[[Path], object]] = {
        "comparaison.csv": lambda p: _write_spreadsheet_csv(table, p),
        "comparaison.png": lambda p: compare_chart(table, p, title=title),
    }
    if variants is not None:
        writers["variantes.csv"] = lambda p: _write_spreadsheet_csv(variants, p)
    # all files together: an interrupted run leaves the previous comparison intact
    paths = write_files(out, writers)
    shown = ["posts", "cost_eur", "pct_population_covered", "pct_need_covered", "marginal_need"]
    print(_fr.spreadsheet_columns(table[shown]).to_string(index=False, float_format=_fr_float))
    if variants is not None:
        print(
            _fr.spreadsheet_columns(variants.drop(columns=["fibre_target_pct"])).to_string(
                index=False, float_format=_fr_float
            )
        )
    for path in paths:
        print(f"  écrit : {path}")
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
            print(f"  présent  {key:<24} {path}")
        raise
    for key, path in got.items():
        print(f"  présent  {key:<24} {path}")
    wanted = keys or list(catalog.SOURCES)
    missing = [k for k in wanted if k not in got]
    if missing:
        print(catalog.manual_instructions(missing, cache_dir=target, sources=sources))
    cache = target or catalog.default_cache_dir()
    print(
        f"À utiliser avec : cnfs-geo plan --data-dir {cache} …  "
        f"(ou export {catalog.ENV_VAR}={cache})"
    )
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
    print(f"  {'source':<22} {'':<10} {'état':<28} fichier")
    for key, r in table.iterrows():
        need = "requis" if r["required"] else "facultatif"
        state = _fr.DATA_FILE_STATUS.get(r["status"], r["status"])
        print(f"  {key:<22} {need:<10} {state:<28} {r['file']}")
    bad = table.index[
        table["status"].isin(["checksum mismatch", "size mismatch"])
        | (table["required"] & (table["status"] == "missing"))
    ].tolist()
    if args.departement is not None:
        catalog.check_data_dir(data_dir, args.departement)  # DataFileError: exit 2
    if bad:
        lock = catalog.read_lock(data_dir.path)
        fix = (
            f"cnfs-geo data fetch --departement {' '.join(lock.get('departements', ['D']))} "
            f"--data-dir {data_dir.path}"
            if lock
            else f"cnfs-geo data fetch --source pinned --force {' '.join(bad)}"
        )
        what = _fr.plural(len(bad), "fichier manquant ou modifié", "fichiers manquants ou modifiés")
        files = ", ".join(f"{k} ({table.at[k, 'file']})" for k in bad)
        raise DataFileError(f"{what} : {files} ; correction : {fix}")
    return 0


def _add_threshold(p: argparse.ArgumentParser) -> None:
    """``--threshold`` of ``plan`` and ``compare``."""
    p.add_argument(
        "--threshold",
        "-t",
        type=_minutes,
        default=None,
        metavar="MINUTES",
        help=f"seuil de couverture en minutes (défaut : {_fr.number(DEFAULT.threshold_minutes)})",
    )


def build_parser() -> argparse.ArgumentParser:
    p = _FrenchParser(prog="cnfs-geo", description=_fr.CLI_DESCRIPTION)
    p.add_argument(
        "-v", "--verbose", action="store_true", help="journal détaillé de chaque étape (en anglais)"
    )
    shown = p.add_mutually_exclusive_group()
    shown.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="sans barre de progression (affichée par défaut dans un terminal seulement)",
    )
    shown.add_argument(
        "--progression",
        action="store_true",
        help="barres de progression même hors d'un terminal (journal d'un job, CI)",
    )
    sub = p.add_subparsers(dest="command", required=True, title="commandes", metavar="COMMANDE")
    pl = sub.add_parser(
        "plan",
        help="diagnostic de couverture et nouveaux postes pour un département",
        description=_fr.CLI_PLAN_DESCRIPTION,
    )
    p.add_argument("--debug", action="store_true", help="affiche la trace Python d'une erreur")
    pl.add_argument(
        "--departement",
        "-d",
        default=catalog.BUNDLE_DEPARTEMENT,
        metavar="CODE",
        help="code INSEE du département (49, 2A, 974…), ou « all » pour tous les "
        "départements, --posts étant réparti selon le besoin (ou une liste : 2A,2B,48) ; "
        "défaut : 49",
    )
    pl.add_argument(
        "--posts",
        "-n",
        type=_count,
        default=None,
        metavar="N",
        help=f"nombre de nouveaux postes à placer (défaut : {DEFAULT.posts})",
    )
    _add_threshold(pl)
    pl.add_argument(
        "--out",
        "-o",
        type=Path,
        default=None,
        metavar="DOSSIER",
        help="dossier de sortie (défaut : maps/<département>)",
    )
    pl.add_argument(
        "--data-dir",
        default=None,
        metavar="DOSSIER",
        help=f"dossier des fichiers de données nationaux (défaut : ${catalog.ENV_VAR}, "
        "sinon le jeu de Maine-et-Loire fourni avec le logiciel)",
    )
    _add_scenario_options(pl)
    pl.add_argument(
        "--itinerant",
        type=_count,
        default=0,
        metavar="K",
        help="dont K postes itinérants mutualisés (médiateur volant) pour les communes "
        "rurales peu denses que les postes fixes laissent sans offre",
    )
    pl.add_argument(
        "--sans-robustesse",
        "--no-robustness",
        dest="robustness",
        action="store_false",
        help="sans l'analyse de robustesse (par défaut, les postes fixes sont recalculés "
        "sous d'autres hypothèses — vitesse 40/60 km/h, détour 1,2/1,5, seuil ± 2 min, "
        "un point par commune — et chacun est dit robuste ou fragile ; 2 à 6 s)",
    )
    pl.add_argument(
        "--workers",
        type=_at_least_one,
        default=None,
        metavar="N",
        help="avec --departement all : une grappe Dask locale de N processus (défaut : un par "
        "cœur ; 1 = dans ce processus, sans Dask ; demande pip install 'cnfs_geo[dask]')",
    )
    pl.add_argument(
        "--scheduler",
        default=None,
        metavar="ADRESSE",
        help="avec --departement all : calcule sur une grappe Dask existante "
        "(tcp://hote:8786) ; ses processus doivent voir le dossier de données et --out aux "
        "mêmes chemins (README)",
    )
    pl.add_argument(
        "--pdf",
        action="store_true",
        help="avec --departement all ou une liste : écrit aussi rapport.pdf dans le dossier "
        "de chaque département (par défaut non : le PDF prend plus de temps que tout le "
        "reste du calcul d'un département ; rapport.html est toujours écrit)",
    )
    pl.add_argument(
        "--sans-pdf",
        "--no-pdf",
        dest="with_pdf",
        action="store_false",
        help="sans rapport.pdf (pour essayer des variantes vite : le PDF prend plus de temps "
        "que le reste du calcul ; rapport.html, la carte et plan.gpkg sont écrits)",
    )
    pl.set_defaults(func=_cmd_plan)

    cp = sub.add_parser(
        "compare",
        help="compare plusieurs nombres de postes : couverture gagnée par poste ajouté "
        "(tableau CSV et graphique PNG)",
        description=_fr.CLI_COMPARE_DESCRIPTION,
    )
    cp.add_argument(
        "--departement",
        "-d",
        default=catalog.BUNDLE_DEPARTEMENT,
        metavar="CODE",
        help="code INSEE du département (défaut : 49)",
    )
    cp.add_argument(
        "--posts",
        "-n",
        type=_count,
        nargs="+",
        default=list(range(0, 21, 2)),
        metavar="N",
        help="nombres de postes à comparer (défaut : 0 2 4 … 20)",
    )
    _add_threshold(cp)
    cp.add_argument(
        "--out",
        "-o",
        type=Path,
        default=None,
        metavar="DOSSIER",
        help="dossier de sortie (défaut : maps/<département>/comparaison)",
    )
    cp.add_argument(
        "--data-dir",
        default=None,
        metavar="DOSSIER",
        help="dossier des fichiers de données (comme pour plan)",
    )
    _add_scenario_options(cp)
    cp.add_argument(
        "--budget",
        type=_count,
        default=8,
        metavar="N",
        help="compare aussi, pour N postes, postes fixes seuls ou fixes et itinérants, "
        "avec et sans l'hypothèse fibre (variantes.csv ; 0 pour ne pas le faire ; défaut : 8)",
    )
    cp.add_argument(
        "--itinerant",
        type=_count,
        default=2,
        metavar="K",
        help="postes itinérants des variantes mixtes (défaut : 2)",
    )
    cp.add_argument(
        "--fibre-what-if",
        type=_percent,
        default=100.0,
        metavar="PCT",
        help="déploiement de la fibre, en %%, des variantes « hypothèse fibre » (défaut : 100)",
    )
    cp.set_defaults(func=_cmd_compare)

    data = sub.add_parser(
        "data",
        help="télécharge ou vérifie les fichiers de données nationaux",
        description="Téléchargement et vérification des fichiers de données nationaux.",
    )
    dsub = data.add_subparsers(
        dest="data_command", required=True, title="commandes", metavar="COMMANDE"
    )
    fe = dsub.add_parser(
        "fetch",
        help="télécharge tout ce qu'un plan demande pour un département (sources officielles "
        "courantes, ou instantanés épinglés) dans un dossier utilisable comme --data-dir",
        description="Télécharge les données d'un plan dans un dossier utilisable comme --data-dir.",
    )
    fe.add_argument(
        "sources",
        nargs="*",
        help=f"avec --source pinned : sources à télécharger (défaut : toutes) : "
        f"{', '.join(catalog.SOURCES)}",
    )
    fe.add_argument(
        "--source",
        choices=["official", "pinned"],
        default="official",
        help="official : sources officielles courantes (API Découpage administratif, "
        "Cartographie nationale des lieux d'inclusion numérique, France services, ARCEP ; "
        "défaut) ; pinned : instantanés épinglés du catalogue (reproductibilité hors ligne)",
    )
    fe.add_argument(
        "--data-dir",
        default=None,
        metavar="DOSSIER",
        help=f"dossier cible (défaut : --cache-dir, ${catalog.CACHE_ENV_VAR} ou le cache de "
        "l'utilisateur)",
    )
    fe.add_argument(
        "--cache-dir", default=None, metavar="DOSSIER", help="comme --data-dir (ancien nom)"
    )
    fe.add_argument(
        "--base-url",
        default=None,
        metavar="ADRESSE",
        help=f"miroir ou serveur de test : adresse racine officielle (défaut "
        f"${catalog.FETCH_BASE_ENV}), ou avec --source pinned un modèle comme "
        "http://hote/{relpath}",
    )
    fe.add_argument(
        "--locked",
        action="store_true",
        help="reproduit exactement l'ensemble noté dans data.lock.json, ou échoue en disant ce "
        "qui a changé",
    )
    fe.add_argument(
        "--timeout", type=_positive, default=60, help="secondes par requête (défaut : 60)"
    )
    fe.add_argument(
        "--retries",
        type=_count,
        default=3,
        help="nouvelles tentatives après 429, 5xx ou délai dépassé (défaut : 3)",
    )
    fe.add_argument(
        "--force",
        action="store_true",
        help="instantanés épinglés : télécharge de nouveau même si le fichier est là",
    )
    fe.add_argument(
        "--departement",
        "-d",
        action="append",
        default=None,
        metavar="CODE",
        help="département à télécharger (option répétable ; « all » pour tous) ; avec "
        "--source pinned : télécharge aussi les contours de ses communes",
    )
    fe.set_defaults(func=_cmd_data_fetch)
    ch = dsub.add_parser(
        "check",
        help="liste les fichiers d'un dossier de données présents et intacts",
        description="Liste les fichiers d'un dossier de données présents et intacts.",
    )
    ch.add_argument(
        "--data-dir",
        default=None,
        metavar="DOSSIER",
        help="dossier à vérifier (défaut : comme pour plan)",
    )
    ch.add_argument(
        "--departement",
        "-d",
        default=None,
        help="vérifie aussi que ce département est couvert",
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


class _CountingHandler(logging.Handler):
    """Counts the developer log's warnings instead of printing them (no ``-v``)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 bad input or arguments,
    1 internal error, 130 interrupted). Never lets a traceback reach the user unless
    ``--debug``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quiet or args.progression:
        _progress.configure(quiet=args.quiet)
    # developer log (English) only with -v; otherwise its warnings are counted and the
    # count is said in French at the end (their content is in the report or with -v)
    counted = _CountingHandler()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        handlers=None if args.verbose else [counted],
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
    except InterruptedAfterWriting as exc:
        if args.debug:
            raise
        print(
            "cnfs-geo : interrompu (Ctrl-C) pendant la mise en place des fichiers, achevée "
            f"d'abord : les nouvelles sorties sont complètes dans {exc.folder}.",
            file=sys.stderr,
        )
        return 130
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
    finally:
        if counted.count:
            n = _fr.plural(counted.count, "avertissement technique", "avertissements techniques")
            print(f"  {n} ; détail (en anglais) avec cnfs-geo -v", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
