"""The planning report as a PDF (WeasyPrint), from the HTML report's template.

The PDF adds print-only pages before the report (``templates/rapport_pdf.html.j2``):
a title page (département, scenario, production date, data vintages), a one-page
*synthèse pour les élus* and a table of contents; ``templates/rapport_pdf.css`` sets
the A4 pages, their numbers and where tables may break. Same plan and production
date, same bytes. Why WeasyPrint and how the date is chosen: ``docs/methods_outputs.md``.

Examples
--------
>>> import datetime
>>> from cnfs_geo.plan import Scenario, run
>>> from cnfs_geo.pdf import pdf_context
>>> ctx = pdf_context(run(Scenario(departement="49", posts=8)), date=datetime.date(2026, 3, 1))
>>> ctx["date"]
'1er mars 2026'
"""

from __future__ import annotations

import base64
import datetime
import html
import logging
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from . import _fr, report
from ._errors import CnfsGeoError
from ._plan_view import is_itinerant_post, posts_with_coverage
from .figures import synthesis_map_png

log = logging.getLogger(__name__)

PDF_FILENAME = "rapport.pdf"
#: Environment variable fixing the production date (seconds since 1970, UTC), as in
#: reproducible builds (https://reproducible-builds.org/specs/source-date-epoch/).
DATE_ENV_VAR = "SOURCE_DATE_EPOCH"
#: Communes listed by name among those still left out (largest first).
TOP_LEFT_OUT = 6
_SECTION = re.compile(r'<section id="([^"]+)">\s*<h2>(.*?)</h2>', re.S)


class PdfUnavailableError(CnfsGeoError, RuntimeError):
    """WeasyPrint cannot run here (its system libraries, Pango, are missing)."""


def production_date(date: datetime.date | None = None) -> datetime.date:
    """The report's production date: ``date`` when given, else ``$SOURCE_DATE_EPOCH``
    (UTC) when set, else today (UTC)."""
    if date is not None:
        return date
    epoch = os.environ.get(DATE_ENV_VAR)
    if epoch:
        try:
            return datetime.datetime.fromtimestamp(int(epoch), datetime.UTC).date()
        except (ValueError, OverflowError, OSError) as exc:
            raise CnfsGeoError(
                f"variable d'environnement {DATE_ENV_VAR}={epoch!r} : un nombre entier de "
                "secondes depuis le 1er janvier 1970 est attendu (par exemple 1795996800 "
                "pour le 30 novembre 2026) ; "
                "corrigez-la ou retirez-la pour dater le rapport d'aujourd'hui"
            ) from exc
    return datetime.datetime.now(datetime.UTC).date()


def _left_out(plan: Any) -> list[dict[str, str]]:
    """The largest communes still beyond the threshold after the new posts."""
    c = plan.communes
    out = c[~c["covered_after"].astype(bool)].sort_values(
        ["population", "nom"], ascending=[False, True], kind="stable"
    )
    return [
        {
            "name": f"{r.nom} ({insee})",
            "population": _fr.integer(r.population) + "\u00a0hab.",
            "minutes": _fr.minutes(r.minutes_after),
        }
        for insee, r in zip(out.index[:TOP_LEFT_OUT], out.head(TOP_LEFT_OUT).itertuples())
    ]


def pdf_context(plan: Any, *, date: datetime.date | None = None) -> dict[str, Any]:
    """Values of the PDF's print-only pages (title page, synthesis), in French.

    Parameters
    ----------
    plan : cnfs_geo.plan.Plan
        Uses ``communes`` (``nom``, ``population``, ``covered_before``,
        ``covered_after``, ``minutes_after``), ``posts`` and ``settings``
        (``cost_per_post_eur``, ``programme_years``).
    date : datetime.date, optional
        Production date (default :func:`production_date`).

    Returns
    -------
    dict
        Strings and lists of dicts of strings; ``map_png`` is a base64 PNG.
    """
    d = production_date(date)
    s = plan.summary()
    c = plan.communes
    t = _fr.minutes(plan.scenario.threshold, fixed=False)
    pop = float(s["population"])
    out_before = pop - s["population_covered_before"]
    out_after = pop - s["population_covered_after"]
    n_out_before = int((~c["covered_before"].astype(bool)).sum())
    n_out_after = int((~c["covered_after"].astype(bool)).sum())
    posts = posts_with_coverage(plan)
    itin = np.array([is_itinerant_post(r) for r in posts.itertuples(index=False)], dtype=bool)
    gained = float(s["population_covered_after"] - s["population_covered_before"])
    years = float(plan.settings.programme_years)
    total = float(s["cost_eur"])
    per_year = total / years
    post_rows = [
        {
            "number": str(i + 1),
            "commune": f"{r.commune} ({r.insee})",
            "host": str(r.host),
            "kind": "itinérant" if itin[i] else "fixe",
            "population": _fr.integer(r.covered_population),
        }
        for i, r in enumerate(posts.itertuples(index=False))
    ]
    n_itin = int(itin.sum())
    posts_label = _fr.plural(len(posts), "nouveau poste", "nouveaux postes")
    if n_itin:
        posts_label += (
            f" ({_fr.plural(len(posts) - n_itin, 'fixe')}, {_fr.plural(n_itin, 'itinérant')})"
        )
    if len(posts) == 0:
        with_posts = "Sans nouveau poste"
    elif len(posts) == 1:
        with_posts = "Avec le nouveau poste" + posts_label[len("1 nouveau poste") :]
    else:
        with_posts = f"Avec les {posts_label}"

    def people(n: float) -> str:
        return _fr.plural(n, "habitant", fmt=_fr.integer)

    def majority(n: int) -> str:
        # people are counted where they live (demand units), communes by the half rule:
        # say so, so that the two figures are not read as the same people
        verb = "a la majorité de ses" if n <= 1 else "ont la majorité de leurs"
        return f"{_fr.plural(n, 'commune')} {verb} habitants dans ce cas"

    return {
        "date": _fr.date(d),
        "with_posts": with_posts,
        "iso_date": d.isoformat(),
        "threshold": t,
        "posts_label": posts_label,
        "population": _fr.integer(pop),
        "communes": _fr.plural(s["communes"], "commune"),
        "out_before": people(out_before),
        "out_before_pct": _fr.percent(100 * out_before / pop),
        "communes_out_before": majority(n_out_before),
        "out_after": people(out_after),
        "out_after_pct": _fr.percent(100 * out_after / pop),
        "communes_out_after": majority(n_out_after),
        "gained": people(gained),
        "communes_gained": _fr.plural(n_out_before - n_out_after, "commune"),
        "covered_before_pct": _fr.percent(s["pct_population_covered_before"]),
        "covered_after_pct": _fr.percent(s["pct_population_covered_after"]),
        "left_out": _left_out(plan),
        "post_rows": post_rows,
        "cost_total": _fr.euros(total),
        "cost_per_post": _fr.euros(plan.settings.cost_per_post_eur),
        "years": _fr.plural(years, "an"),
        "cost_per_year": _fr.euros(per_year),
        "cost_per_person_year": _fr.euros(per_year / gained) if gained > 0 else _fr.MISSING,
        "itinerant_communes": _fr.integer(s.get("communes_served_itinerant", 0)),
        "n_itinerant": n_itin,
        "map_png": base64.b64encode(synthesis_map_png(plan)).decode("ascii"),
        "toc": [],
    }


def _template_text(name: str) -> str:
    return (
        resources.files("cnfs_geo").joinpath("templates").joinpath(name).read_text(encoding="utf-8")
    )


def render_pdf_html(
    plan: Any, *, date: datetime.date | None = None, context: dict[str, Any] | None = None
) -> str:
    """The HTML the PDF is printed from: the report with its print-only pages and a
    table of contents listing every numbered section of the report. ``context`` is the
    plan's :func:`cnfs_geo.report.report_context` when the caller has it (not changed)."""
    context = dict(report.report_context(plan) if context is None else context)
    context["pdf"] = pdf_context(plan, date=date)
    first = report.render_context(context)
    context["pdf"]["toc"] = [
        {"id": sid, "title": html.unescape(re.sub(r"<[^>]+>", "", title)).strip()}
        for sid, title in _SECTION.findall(first)
    ]
    return report.render_context(context)


def _weasyprint() -> Any:
    try:
        import weasyprint
    except (ImportError, OSError) as exc:
        raise PdfUnavailableError(
            f"le rapport PDF ne peut pas être produit : WeasyPrint ne se charge pas ({exc}). "
            "Installez les bibliothèques Pango (Debian/Ubuntu : apt-get install "
            "libpango-1.0-0 libpangoft2-1.0-0) ; le rapport HTML, la carte et le "
            "GeoPackage sont produits quand même."
        ) from exc
    return weasyprint


def write_pdf(
    plan: Any,
    path: str | Path,
    *,
    date: datetime.date | None = None,
    context: dict[str, Any] | None = None,
) -> Path:
    """Write the report of ``plan`` as an A4 PDF (title page, synthesis for elected
    officials, contents, numbered pages), atomically.

    Parameters
    ----------
    plan : cnfs_geo.plan.Plan
        As for :func:`cnfs_geo.report.write_report`.
    path : str or Path
        Output file; a directory gets ``rapport.pdf``.
    date : datetime.date, optional
        Production date printed on the title page and stored as the PDF's creation
        and modification dates (default :func:`production_date`).
    context : dict, optional
        The plan's :func:`cnfs_geo.report.report_context` when the caller has it already
        (the HTML report's); computed from ``plan`` otherwise.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    PdfUnavailableError
        WeasyPrint's system libraries are missing.
    """
    wp = _weasyprint()
    out = Path(path)
    if out.is_dir():
        out = out / PDF_FILENAME
    d = production_date(date)
    text = render_pdf_html(plan, date=d, context=context)
    css = wp.CSS(string=_template_text("rapport_pdf.css"))
    doc = wp.HTML(string=text, base_url=str(out.parent)).render(stylesheets=[css])
    stamp = f"{d.isoformat()}T00:00:00Z"
    doc.metadata.created = stamp
    doc.metadata.modified = stamp
    doc.metadata.lang = "fr"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    # a fixed identifier: WeasyPrint's default would differ from run to run
    doc.write_pdf(tmp, pdf_identifier=b"cnfs_geo-" + d.isoformat().encode())
    tmp.replace(out)
    log.info("pdf: %s (%d pages, %.0f kB)", out, len(doc.pages), out.stat().st_size / 1024)
    return out
