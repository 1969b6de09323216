"""The cnfs-geo command line on the embedded bundle: the first demo command in its own
process (conftest ``cli49``), the others in-process."""

import geopandas as gpd
import pytest

from cnfs_geo import _fr, _progress, catalog, cli

NNBSP = "\u202f"


def test_plan_49_writes_every_output(cli49):
    """`cnfs-geo --progression plan --departement 49 --posts 8 --threshold 10`, run once
    per session (conftest ``cli49``: its own process, standard error a file, progress
    shown because of ``--progression``)."""
    rc, out = cli49.rc, cli49.out
    assert rc == 0
    text = cli49.stdout
    # progress on stderr: one line per stage of plan (reading the files may come from the
    # process cache, then it has no line), then the writing stage
    for stage in ("read", "need", "coverage", "gaps", "placement", "itinerant", "outputs"):
        assert _fr.PLAN_STAGES[stage] in cli49.stderr, stage
    assert _fr.PROGRESS_WRITE in cli49.stderr
    for name in ("plan.gpkg", "carte_couverture.html", "rapport.html"):
        assert (out / name).stat().st_size > 10_000, name
        assert name in text
    assert f"833{NNBSP}776 habitants" in text
    assert f"8 nouveaux postes (400{NNBSP}000\u00a0€ pour 2 ans)" in text
    assert "couverture à 10 min" in text
    communes = gpd.read_file(out / "plan.gpkg", layer="communes")
    assert len(communes) == 176 and communes["population"].sum() == 833_776


def test_other_departement_without_data_dir_says_what_is_needed(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CNFS_GEO_DATA_DIR", raising=False)
    rc = cli.main(["plan", "--departement", "44", "--out", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    # one French sentence naming the folder and the command to run (issue 8)
    assert "ne couvrent que le Maine-et-Loire (49)" in err and str(catalog.bundle_dir()) in err
    assert "cnfs-geo data fetch --departement 44 --data-dir" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unknown_departement(raw_dir, tmp_path, capsys):
    rc = cli.main(
        ["plan", "--departement", "20", "--data-dir", str(raw_dir), "--out", str(tmp_path)]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "'20' is not a département code" in err and "2A" in err


def test_missing_data_dir(tmp_path, capsys):
    rc = cli.main(["plan", "--data-dir", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert rc == 2
    assert "n'existe pas" in capsys.readouterr().err


def test_data_check_on_bundle(capsys, monkeypatch):
    monkeypatch.delenv("CNFS_GEO_DATA_DIR", raising=False)
    assert cli.main(["data", "check"]) == 0
    out = capsys.readouterr().out
    assert "france_services" in out and "intact" in out and "fichier" in out


def test_bad_arguments_exit_nonzero():
    with pytest.raises(SystemExit) as exc:
        cli.main(["plan", "--posts", "huit"])
    assert exc.value.code == 2


def test_quiet_switches_progress_off(capsys, monkeypatch):
    monkeypatch.delenv("CNFS_GEO_DATA_DIR", raising=False)
    monkeypatch.setitem(_progress._STATE, "quiet", False)
    assert _progress.enabled()
    assert cli.main(["--quiet", "data", "check"]) == 0
    assert not _progress.enabled()
    assert capsys.readouterr().err == ""


def test_all_france_needs_national_files(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CNFS_GEO_DATA_DIR", raising=False)
    rc = cli.main(["plan", "--departement", "all", "--posts", "100", "--out", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "fichiers nationaux" in err and "--data-dir" in err and "Traceback" not in err
    assert err.startswith("cnfs-geo : erreur")


def test_compare_writes_its_files_together(tmp_path, capsys, monkeypatch, compare49):
    """`cnfs-geo compare` writes comparaison.csv, comparaison.png (and variantes.csv with
    --budget) together into --out (conftest ``compare49``, its own process); an --out that
    is a file is refused before computing."""
    import pandas as pd

    monkeypatch.delenv("CNFS_GEO_DATA_DIR", raising=False)
    blocker = tmp_path / "fichier"
    blocker.write_text("x")
    rc = cli.main(["compare", "--posts", "0", "2", "--budget", "0", "--out", str(blocker)])
    assert rc != 0 and "ce chemin est un fichier" in capsys.readouterr().err
    out, text = compare49.out, compare49.stdout
    assert compare49.rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["comparaison.csv", "comparaison.png"]
    assert f"écrit : {out / 'comparaison.csv'}" in text
    table = pd.read_csv(out / "comparaison.csv", sep=";", decimal=",", encoding="utf-8-sig")
    assert len(table) == 2
    assert not list(out.parent.glob(".*comparaison-*")) and not list(out.parent.glob("*tmp*"))


def test_progress_option_and_quiet_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--progression", "-q", "data", "check"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "incompatible avec l'option" in err and "--progression" in err and "--quiet" in err
    assert "Traceback" not in err


def test_the_same_command_writes_the_same_files(cli49, cli49_again):
    """The first demo command run twice, in two processes (conftest ``cli49`` and
    ``cli49_again``), into two folders: every file byte-identical."""
    assert cli49.rc == cli49_again.rc == 0
    names = sorted(p.relative_to(cli49.out) for p in cli49.out.rglob("*") if p.is_file())
    again = sorted(p.relative_to(cli49_again.out) for p in cli49_again.out.rglob("*"))
    assert names == [p for p in again if (cli49_again.out / p).is_file()]
    assert {"plan.gpkg", "carte_couverture.html", "rapport.html", "rapport.pdf"} <= {
        str(p) for p in names
    }
    for name in names:
        assert (cli49.out / name).read_bytes() == (cli49_again.out / name).read_bytes(), name


def test_every_stage_of_plan_has_its_french_label():
    """Each stage timed by ``plan`` (``lap("…")``) is said in French on the terminal."""
    import inspect
    import re

    from cnfs_geo import plan

    stages = set(re.findall(r'lap\("(\w+)"\)', inspect.getsource(plan)))
    assert {"read", "territory", "offer", "need", "placement"} <= stages
    assert stages <= set(_fr.PLAN_STAGES), stages - set(_fr.PLAN_STAGES)
