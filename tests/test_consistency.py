"""One set of figures (issue 9): every figure of rapport.html and of the terminal summary
recomputed from plan.gpkg, on every kind of generated plan (real 49 bundle, and the
national files for another département)."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from cnfs_geo import consistency
from cnfs_geo.consistency import ConsistencyError
from cnfs_geo.outputs import write_outputs
from cnfs_geo.plan import Scenario, compare_demand_units, run


@pytest.fixture(scope="module")
def cli49_figures(cli49):
    """``consistency.check_outputs`` of the first demo's outputs (conftest ``cli49``) with
    its terminal summary, once per module: the figures of plan.gpkg, the report and the
    summary checked against them (the check without the summary is a part of it)."""
    return consistency.check_outputs(cli49.out, summary=cli49.stdout)


def test_default_plan_report_and_summary_agree_with_the_geopackage(cli49, cli49_figures):
    """`cnfs-geo plan --departement 49 --posts 8 --threshold 10` (conftest ``cli49``)."""
    assert cli49.rc == 0
    out = cli49.out
    f = cli49_figures  # consistency.check_outputs(out, summary=cli49.stdout)
    assert f["n_posts"] == 8 and f["cost_eur"] == 400_000
    assert f["units"] == 367 and f["demand_unit"].startswith("Unités les plus fines")
    assert round(f["units_population"]) == round(f["population"]) == 833_776
    # the report carries the comparison with the commune-point plan
    html = (out / "rapport.html").read_text(encoding="utf-8")
    assert 'id="unite-de-demande"' in html and 'id="conseillers-par-defaut"' in html


def test_mixed_plan_with_itinerant_posts_agrees(cli49_mixed):
    """`cnfs-geo plan --departement 49 --posts 6 --itinerant 2` (conftest ``cli49_mixed``)."""
    assert cli49_mixed.rc == 0
    f = consistency.check_outputs(cli49_mixed.out, summary=cli49_mixed.stdout)
    assert f["n_fixed"] == 6 and f["n_itinerant"] == 2 and len(f["circuits"]) == 2
    for v in f["circuits"].values():
        assert v["visits"] > 0 and v["timetable_hours"] > 0


@pytest.mark.parametrize(
    "changes, fixture",
    [({"model": "equity"}, "plan49_equity"), ({"demand_unit": "iris"}, "plan49_iris"),
     ({"demand_unit": "commune"}, "plan49_commune")],
    ids=["equity", "iris", "commune"],
)  # fmt: skip
def test_other_plans_of_49_agree(plan49, changes, fixture, outputs_of, request):
    # the plan of plan49's scenario with these changes, built once per session (conftest)
    plan = request.getfixturevalue(fixture)
    other = dataclasses.replace(plan49.scenario, **changes)
    assert (plan.scenario.key, plan.scenario.p, plan.scenario.model) == (
        other.key,
        other.p,
        other.model,
    )
    # the check reads the GeoPackage and HTML of write_outputs(plan, folder, with_pdf=False),
    # written once per session (conftest ``outputs_of``; test_report reads the IRIS map)
    f = consistency.check_outputs(outputs_of(plan))
    assert f["units"] == len(plan.units)


def test_another_departement_with_national_data_agrees(raw_dir, tmp_path):
    plan = run(Scenario(departement="44", posts=8, data_dir=str(raw_dir)))
    plan.unit_comparison = compare_demand_units(plan)
    write_outputs(plan, tmp_path)
    f = consistency.check_outputs(tmp_path)
    assert f["communes"] == 207 and "pas de fichier IRIS" in f["demand_unit"]


def test_a_changed_figure_is_reported(cli49, cli49_figures, tmp_path):
    """The check fails on any difference: one number of the EPCI table, one post's
    population, one line of the summary."""
    f = cli49_figures  # consistency.check_outputs(cli49.out) passes (with the summary too)
    html = (cli49.out / "rapport.html").read_text(encoding="utf-8")
    post = f["posts"][0]
    shown = consistency._i(post["covered_population"]).replace(" ", "\u202f")
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(cli49.out / "plan.gpkg", bad / "plan.gpkg")
    i = html.index('id="postes"')
    j = html.index(f">{shown}<", i)
    (bad / "rapport.html").write_text(
        html[:j] + ">1<" + html[j + len(shown) + 2 :], encoding="utf-8"
    )
    with pytest.raises(ConsistencyError, match=f"postes {post['post_id']} population"):
        consistency.check_outputs(bad)
    problems = consistency.summary_differences(
        f, "  couverture à 10 min : population 1 (0,0 %) → 2 (0,0 %) ; communes 1 → 2"
    )
    assert any("couverture à 10 min" in p for p in problems)
    assert any(f"no line for post {post['post_id']}" in p for p in problems)
