"""Tests of cnfs_geo.robustness on the real Maine-et-Loire plan (embedded bundle).

The perturbed solves reuse the prepared frames; here each kind of perturbation is
checked against a full, independent pipeline run (``plan.prepare`` + ``plan.run``) with
the changed assumption, so the shortcut must give the very same posts.
"""

from __future__ import annotations

import dataclasses

import pyogrio
import pytest

from cnfs_geo import maps, outputs, report, robustness
from cnfs_geo._errors import ValidationError
from cnfs_geo.plan import prepare, run


@pytest.fixture(scope="module")
def rob(plan49_commune, prepared49_commune):
    """The robustness of the commune-point plan (demand_unit="commune"), from the frames
    it was planned on (conftest ``prepared49_commune``)."""
    return robustness.with_robustness(plan49_commune, prepared49_commune)


def _hosts(plan) -> list[str]:
    return sorted(plan.posts.loc[plan.posts["kind"] == "fixed", "insee"].astype(str))


def _row(r, key: str):
    hit = r.perturbations[r.perturbations["key"] == key]
    assert len(hit) == 1, key
    return hit.iloc[0]


def test_perturbations_of_a_commune_unit_plan(rob, plan49_commune):
    r = rob.robustness
    keys = list(r.perturbations["key"])
    t = plan49_commune.scenario.threshold
    assert keys == [
        "speed_kmh=40",
        "speed_kmh=60",
        "detour_factor=1.2",
        "detour_factor=1.5",
        f"threshold_minutes={t - 2:g}",
        f"threshold_minutes={t + 2:g}",
    ]
    # the plan already counts people at the commune point: no unit variant, said why
    assert any("demand unit" in s for s in r.skipped)
    assert r.seconds > 0 and (r.perturbations["seconds"] > 0).all()


@pytest.mark.parametrize(
    "key, change",
    [
        ("threshold_minutes=12", {"threshold_minutes": 12.0}),
        ("speed_kmh=60", {"speed_kmh": 60.0}),
    ],
)
def test_shortcut_equals_a_full_pipeline_run(rob, plan49_commune, key, change):
    """The re-solve from the prepared frames chooses the same hosts as a plan built
    from scratch with the changed assumption."""
    sc = plan49_commune.scenario
    if "speed_kmh" in change:
        other = dataclasses.replace(sc, settings=sc.settings.replace(**change))
    else:
        other = dataclasses.replace(sc, **change)
    full = run(other, prepared=prepare(other))
    assert _row(rob.robustness, key)["hosts"].split(";") == _hosts(full)


def test_counts_labels_and_cut_off(rob, plan49_commune):
    r = rob.robustness
    fixed = plan49_commune.posts[plan49_commune.posts["kind"] == "fixed"]
    assert list(r.posts["post_id"]) == list(fixed["post_id"])
    hosts = [h.split(";") for h in r.perturbations["hosts"]]
    for p in r.posts.itertuples():
        assert p.same_commune == sum(p.insee in h for h in hosts)
        assert p.same_commune <= p.chosen_again <= p.runs == len(hosts)
        assert p.share == pytest.approx(p.chosen_again / p.runs)
        assert p.robust == (p.share >= robustness.ROBUST_SHARE - 1e-12)
        assert p.label == ("poste robuste" if p.robust else "poste fragile")
    # kept per perturbation = posts chosen again by it, summed over the posts
    assert r.perturbations["kept"].sum() == r.posts["chosen_again"].sum()
    # both verdicts occur on this plan: the analysis discriminates
    assert set(r.posts["label"]) == {"poste robuste", "poste fragile"}


def test_posts_column_map_report_and_geopackage(rob, plan49, tmp_path):
    assert "robustness" not in plan49.posts.columns  # the input plan is unchanged
    posts = rob.posts
    fixed = posts["kind"] == "fixed"
    assert set(posts.loc[fixed, "robustness"]) <= {"poste robuste", "poste fragile"}
    path = tmp_path / "plan.gpkg"
    outputs.write_geopackage(rob, path)
    back = pyogrio.read_dataframe(path, layer="posts")
    assert back["robustness"].tolist() == posts["robustness"].tolist()
    assert back["robustness_share"].tolist() == pytest.approx(posts["robustness_share"].tolist())
    ctx = report.report_context(rob, with_map=False)
    rows = ctx["robustness"]["rows"]
    assert [x["label"] for x in rows] == list(rob.robustness.posts["label"])
    assert "Durée de l'analyse" in ctx["robustness"]["intro"]
    html = report.render_context(ctx)  # report.render_report(rob, with_map=False)
    assert "Robustesse des postes proposés" in html
    # the run time is stated as a bracket: two runs of different duration give the same file
    import dataclasses

    runs = [
        report.render_report(
            dataclasses.replace(rob, robustness=dataclasses.replace(rob.robustness, seconds=t)),
            with_map=False,
        )
        for t in (1.2, 3.4)
    ]
    assert runs[0] == runs[1] and "analyse : moins de 5 s" in runs[0]
    maps.coverage_map(rob, path=tmp_path / "carte.html")
    text = (tmp_path / "carte.html").read_text(encoding="utf-8")
    assert "dashed #000" in text and "Robustesse" in text


def test_unit_perturbation_equals_a_commune_point_plan(
    plan49_commune2018, prepared49_commune2018, plan49_commune
):
    """A plan on the 2018 communes: the commune-point variant gives the hosts of a plan
    built from scratch on the commune point (conftest ``plan49_commune``: the same
    scenario but the demand unit, through its own ``prepare``)."""
    sc = plan49_commune2018.scenario
    assert sc.demand_unit == "commune2018"
    r = robustness.robustness(plan49_commune2018, prepared49_commune2018)
    assert "demand_unit=commune" in set(r.perturbations["key"])
    commune = plan49_commune
    assert commune.scenario == dataclasses.replace(sc, demand_unit="commune")
    assert _row(r, "demand_unit=commune")["hosts"].split(";") == _hosts(commune)


def test_bad_inputs(plan49, prepared49, prepared49_15):
    other = prepared49_15  # prepare() of plan49's scenario at 15 min (conftest)
    assert other.scenario.key == dataclasses.replace(plan49.scenario, threshold_minutes=15.0).key
    with pytest.raises(ValidationError, match="another scenario"):
        robustness.robustness(plan49, other)
    eq = dataclasses.replace(plan49, scenario=dataclasses.replace(plan49.scenario, model="equity"))
    with pytest.raises(ValidationError, match="mclp"):
        robustness.robustness(eq, prepared49)


def test_cli_runs_it_by_default(cli49):
    """`cnfs-geo plan --departement 49 --posts 8 --threshold 10` (conftest ``cli49``)."""
    assert cli49.rc == 0
    posts = pyogrio.read_dataframe(cli49.out / "plan.gpkg", layer="posts")
    html = (cli49.out / "rapport.html").read_text(encoding="utf-8")
    assert "robustesse (" in cli49.stdout and "poste " in cli49.stdout
    assert set(posts["robustness"]) <= {"poste robuste", "poste fragile"}
    assert 'id="robustesse"' in html and "Durée de l" in html


def test_cli_without_it(cli49_sans_robustesse):
    """`cnfs-geo plan --departement 49 --posts 4 --sans-robustesse --sans-pdf
    --demand-unit commune` (conftest ``cli49_sans_robustesse``, its own process): commune
    points, no comparison of demand units to compute, robustness still on by default for
    them (test_perturbations_of_a_commune_unit_plan), off here."""
    run = cli49_sans_robustesse
    out, text = run.out, run.stdout
    assert not (out / "rapport.pdf").exists()  # --sans-pdf: the other outputs only
    assert run.rc == 0
    posts = pyogrio.read_dataframe(out / "plan.gpkg", layer="posts")
    html = (out / "rapport.html").read_text(encoding="utf-8")
    assert "robustesse (" not in text and "robustness" not in posts.columns
    assert 'id="robustesse"' not in html
