"""The PDF report (pdf.py) on the real Maine-et-Loire plan (8 fixed posts).

The PDF is written once per module with a fixed production date, its text read back
with ``pdftotext`` (poppler-utils) and compared with ``plan.gpkg`` written from the same
plan. Skipped, with the reason, when WeasyPrint's libraries or pdftotext are missing.
"""

from __future__ import annotations

import datetime
import re
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest

from cnfs_geo import _fr, pdf
from cnfs_geo._errors import CnfsGeoError

DATE = datetime.date(2026, 11, 30)

if shutil.which("pdftotext") is None:
    pytest.skip("pdftotext not found (Debian package poppler-utils)", allow_module_level=True)


def _pdf_of(run) -> Path:
    """The PDF a shared command wrote (conftest ``cli49``…). When there is none, the test
    is skipped, with the reason, if WeasyPrint cannot load (Pango missing: the command
    then writes the other outputs); it fails otherwise."""
    assert run.rc == 0, run.stderr
    path = run.out / pdf.PDF_FILENAME
    if not path.exists():
        probe = [sys.executable, "-c", "import weasyprint"]
        r = subprocess.run(probe, capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"WeasyPrint cannot load: {r.stderr.strip().splitlines()[-1]}")
    assert path.exists(), run.stderr
    return path


def _pages(path, *, layout: bool = True) -> list[str]:
    """Text of each page, spaces normalised (no-break and narrow no-break as spaces);
    without ``layout``, in reading order with every run of white space as one space."""
    args = ["pdftotext", *(["-layout"] if layout else []), str(path), "-"]
    text = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    pattern = r"[ \u00a0\u202f]+" if layout else r"\s+"
    return [re.sub(pattern, " ", p) for p in text.split("\f")[:-1]]


def _flat(s: str) -> str:
    return re.sub(r"\s+", " ", s)


@pytest.fixture(scope="module")
def written(cli49):
    """The PDF and GeoPackage of `cnfs-geo plan --departement 49 --posts 8 --threshold 10`
    (conftest ``cli49``, the PDF dated ``DATE`` through ``SOURCE_DATE_EPOCH``)."""
    path = _pdf_of(cli49)
    return cli49.out, path, _pages(path), _pages(path, layout=False)


def test_pdf_holds_the_key_figures_of_the_geopackage(written):
    out, _, pages, flat = written
    communes = gpd.read_file(out / "plan.gpkg", layer="communes")
    # people are counted on the demand units (IRIS of the cities, communes elsewhere);
    # a commune is covered when at least half of its population is
    units = gpd.read_file(out / "plan.gpkg", layer="units")
    posts = gpd.read_file(out / "plan.gpkg", layer="posts")
    pop = units["population"].sum()
    assert pop == pytest.approx(communes["population"].sum())
    before = units["covered_before"].astype(bool)
    after = units["covered_after"].astype(bool)
    synthesis = flat[1]
    assert "Synthèse pour les élus" in synthesis
    # who is left out, before and after; what the posts change; what it costs
    assert _flat(f"{_fr.integer(units.loc[~before, 'population'].sum())} habitants") in synthesis
    c_before = communes["covered_before"].astype(bool)
    assert _flat(_fr.plural((~c_before).sum(), "commune")) in synthesis
    assert _flat(f"{_fr.integer(units.loc[~after, 'population'].sum())} habitants") in synthesis
    gained = units.loc[after & ~before, "population"].sum()
    assert _flat(f"{_fr.integer(gained)} habitants") in synthesis
    assert _flat(_fr.percent(100 * units.loc[~before, "population"].sum() / pop)) in synthesis
    cost = len(posts) * 50_000
    assert _flat(f"{_fr.euros(cost / 2)} par an") in synthesis
    assert _flat(f"{_fr.euros(cost)} sur le programme") in synthesis
    # every post in order, with its commune and the population it newly covers
    # pdftotext drops the hyphen of a name broken across lines: compare without hyphens
    text = synthesis.replace("- ", "").replace("-", "")
    at = 0
    for r in posts.itertuples():
        found = re.search(
            rf"{re.escape(r.commune.replace('-', ''))} (fixe )?\({r.insee}\) (fixe )?"
            rf"{re.escape(_flat(_fr.integer(r.covered_population)))}",
            text[at:],
        )
        assert found, (r.commune, text[at : at + 200])
        at += found.end()


def test_pdf_title_page_contents_and_page_numbers(written, plan49):
    _, path, pages, _ = written
    title = pages[0]
    assert "Maine-et-Loire (49)" in title and "8 nouveaux postes" in title
    assert "Date de production" in title and "30 novembre 2026" in title
    assert "Millésimes des données" in title and "COG 2026" in title
    assert "page" not in title.split("Millésimes")[0]  # no number on the title page
    n = len(pages)
    for i, page in enumerate(pages[1:], start=2):
        assert f"page {i} sur {n}" in page
    # the table of contents gives the page on which each section starts
    toc = pages[2]
    assert "Sommaire" in toc
    entries = re.findall(r"^ *(\d+\. [^.\n]+?)\s*\.{3,}\s*(\d+)\s*$", toc, re.M)
    assert len(entries) >= 8
    for heading, page in entries:
        text = pages[int(page) - 1]
        assert re.search(rf"^ *{re.escape(heading)}", text, re.M), (heading, page)


def test_pdf_is_deterministic_and_dated(written, cli49_again):
    # the same command run again in another process (conftest ``cli49_again``): the
    # same PDF, byte for byte
    assert _pdf_of(cli49_again).read_bytes() == written[1].read_bytes()
    # the command line's PDF, dated through $SOURCE_DATE_EPOCH
    info = subprocess.run(["pdfinfo", str(written[1])], capture_output=True, text=True).stdout
    assert re.search(r"CreationDate:\s+Mon Nov 30 00:00:00 2026", info)


def test_production_date_from_source_date_epoch(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1795996800")
    assert pdf.production_date() == DATE
    assert pdf.production_date(datetime.date(2025, 1, 1)) == datetime.date(2025, 1, 1)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "demain")
    with pytest.raises(CnfsGeoError, match="SOURCE_DATE_EPOCH='demain'.*nombre entier"):
        pdf.production_date()


def test_pdf_table_totals_are_printed_once(cli49_mixed):
    """A table's total row (tfoot) is printed once, after its last row: WeasyPrint's default
    repeats it at every page break, where it reads as the total of the rows above it (the
    EPCI and source tables of the 6 + 2 plan each break across two pages)."""
    # `cnfs-geo plan --departement 49 --posts 6 --itinerant 2` (conftest ``cli49_mixed``)
    text = "\n".join(_pages(_pdf_of(cli49_mixed)))
    assert len(re.findall(r"Département \(\d+ EPCI\)", text)) == 1
    assert len(re.findall(r"^ ?Total \d", text, flags=re.M)) == 1
    assert text.count("Total des lieux distincts") == 1
