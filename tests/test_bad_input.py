"""Bad input of every kind: a clear French error (exit 2) or a repair the user sees.

Each case corrupts one file of a copy of the embedded ``data/49`` bundle (real files, one
corruption per copy), runs ``cli.main`` in-process and asserts the exit code, that no
traceback reaches the user, and that the message names the file and the fix. Repairs are
checked on one full run of a copy carrying all of them (conftest ``repaired49``, its own
process): printed on stderr, in the ``journal`` table, and accounted for (read = kept +
merged + rejected). A few runs go through a subprocess to prove that no traceback reaches
the real stderr.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from _bundle_copies import POLY, REL, dup_row, latin1, repairs, reseal

from cnfs_geo import _fr, _journal, catalog, cli, outputs, territory
from cnfs_geo._errors import ArgumentError, CnfsGeoError, FileFormatError, ValidationError
from cnfs_geo.plan import Scenario
from cnfs_geo.sources import france_services

BUNDLE = catalog.bundle_dir()
IRIS = "socio/mednum_indice-fragilite-numerique_iris_dep49_2020.csv"


@pytest.fixture(scope="module")
def _data49_copy(tmp_path_factory) -> Path:
    """One copy of the embedded bundle for the module, restored after each test."""
    dst = tmp_path_factory.mktemp("bundle") / "data"
    shutil.copytree(BUNDLE, dst)
    return dst


def _restore(copy: Path) -> None:
    """Make ``copy`` the bundle again: every file changed or removed is copied back with
    its modification time (``shutil.copy2``), any file added is removed."""
    for src in BUNDLE.rglob("*"):
        dst = copy / src.relative_to(BUNDLE)
        if src.is_dir():
            dst.mkdir(exist_ok=True)
        elif not dst.is_file() or dst.read_bytes() != src.read_bytes():
            shutil.copy2(src, dst)
    for dst in sorted(copy.rglob("*"), reverse=True):
        if not (BUNDLE / dst.relative_to(copy)).exists():
            shutil.rmtree(dst) if dst.is_dir() else dst.unlink()


@pytest.fixture
def data49(_data49_copy) -> Iterator[Path]:
    """A writable copy of the embedded bundle (one corruption per test). The copy is the
    same folder for every test, restored to the bundle's bytes and modification times
    after each: the readers cached per path, modification time and size (the files left
    intact) are parsed once for the module, the corrupted file is read afresh."""
    _restore(_data49_copy)  # as the bundle, whatever ran before
    yield _data49_copy
    _restore(_data49_copy)


# ----------------------------------------------------------------------------- corruptions


def empty(p: Path) -> None:
    p.write_bytes(b"")


def truncated(p: Path) -> None:
    b = p.read_bytes()
    p.write_bytes(b[: int(len(b) * 0.6)])


def extra_field(p: Path) -> None:
    lines = p.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[3] = lines[3].rstrip("\n") + ",en trop\n"
    p.write_text("".join(lines), encoding="utf-8")


def not_json(p: Path) -> None:
    p.write_text("<html>Not found</html>", encoding="utf-8")


def json_edit(fn: Callable) -> Callable[[Path], None]:
    def edit(p: Path) -> None:
        data = json.loads(p.read_text(encoding="utf-8"))
        data = fn(data) or data
        p.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    return edit


def csv_edit(fn: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], None]:
    def edit(p: Path) -> None:
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
        fn(df).to_csv(p, index=False)

    return edit


def _set(df: pd.DataFrame, col: str, value: str) -> pd.DataFrame:
    df.loc[1, col] = value
    return df


def _cog_dup(d: list) -> list:
    return d + [d[5]]


def _cog_pop(value):
    def f(d: list) -> None:
        next(r for r in d if r["type"] == "commune-actuelle")["population"] = value

    return f


def _ring2(d: dict) -> None:
    d["features"][3]["geometry"] = {
        "type": "Polygon",
        "coordinates": [[[-0.5, 47.4], [-0.4, 47.5]]],
    }


OFFER_JSON = ["cnfs_permanences", "lieux_cd49_2022", "lieux_cd49_2020", "conumm_angers",
              "data_inclusion"]  # fmt: skip
OFFER_CSV = ["france_services", "aidants_connect"]

CASES: list[tuple[str, str, Callable[[Path], None], list[str]]] = []
for key in OFFER_JSON:
    CASES += [
        (f"{key}-empty", REL[key], empty, ["vide"]),
        (f"{key}-latin1", REL[key], latin1, ["Latin-1", "UTF-8"]),
        (f"{key}-truncated", REL[key], truncated, ["JSON tronqué"]),
        (f"{key}-not-json", REL[key], not_json, ["JSON invalide"]),
        (f"{key}-not-a-list", REL[key], json_edit(lambda d: {"records": d}), ["liste JSON"]),
    ]
for key in OFFER_CSV:
    CASES += [
        (f"{key}-empty", REL[key], empty, ["vide"]),
        (f"{key}-latin1", REL[key], latin1, ["Latin-1"]),
        (f"{key}-truncated", REL[key], truncated, ["tronqué"]),
        (f"{key}-extra-field", REL[key], extra_field, ["ligne 4", "champs au lieu de"]),
    ]
CASES += [
    ("france_services-dup-row", REL["france_services"], dup_row, ["en double", "276"]),
    ("france_services-no-lat", REL["france_services"],
     csv_edit(lambda df: df.rename(columns={"latitude": "lat"})), ["latitude"]),
    # territory
    ("cog-empty", REL["cog_communes"], empty, ["vide"]),
    ("cog-latin1", REL["cog_communes"], latin1, ["Latin-1"]),
    ("cog-truncated", REL["cog_communes"], truncated, ["JSON tronqué"]),
    ("cog-dup-commune", REL["cog_communes"], json_edit(_cog_dup), ["en double"]),
    ("cog-pop-1e12", REL["cog_communes"], json_edit(_cog_pop(10**12)), ["population"]),
    ("cog-pop-negative", REL["cog_communes"], json_edit(_cog_pop(-5)), ["population"]),
    ("cog-pop-text", REL["cog_communes"], json_edit(_cog_pop("beaucoup")), ["population"]),
    ("cog-not-a-list", REL["cog_communes"], json_edit(lambda d: {"c": d}), ["liste JSON"]),
    ("epci-empty", REL["cog_epci"], empty, ["vide"]),
    ("epci-truncated", REL["cog_epci"], truncated, ["JSON tronqué"]),
    ("epci-dup", REL["cog_epci"], json_edit(lambda d: d + [d[0]]), ["en double"]),
    ("epci-no-code", REL["cog_epci"], json_edit(lambda d: [{"nom": "x"}] + d), ["liste JSON"]),
    ("polygons-empty", POLY, empty, ["vide"]),
    ("polygons-truncated", POLY, truncated, ["JSON tronqué"]),
    ("polygons-ring-2-points", POLY, json_edit(_ring2), ["géométrie illisible"]),
    ("polygons-not-fc", POLY, json_edit(lambda d: d["features"]), ["FeatureCollection"]),
    ("polygons-no-feature", POLY, json_edit(lambda d: {**d, "features": []}),
     ["aucune commune"]),
    ("datasfun-empty", REL["datasfun_communes"], empty, ["vide"]),
    ("datasfun-latin1", REL["datasfun_communes"], latin1, ["Latin-1"]),
    ("datasfun-truncated", REL["datasfun_communes"], truncated, ["tronqué"]),
    ("datasfun-renamed-lat", REL["datasfun_communes"],
     csv_edit(lambda df: df.rename(columns={"lat": "latitude"})), ["'lat'"]),
    # need
    ("fibre-empty", REL["fibre"], empty, ["vide"]),
    ("fibre-latin1", REL["fibre"], latin1, ["Latin-1"]),
    ("fibre-truncated", REL["fibre"], truncated, ["tronqué"]),
    ("fibre-extra-field", REL["fibre"], extra_field, ["champs au lieu de"]),
    ("fibre-dup-row", REL["fibre"], dup_row, ["en double", "49329"]),
    ("fibre-negative-count", REL["fibre"], csv_edit(lambda df: _set(df, "nb_locaux", "-40")),
     ["nb_locaux", "-40"]),
    ("fibre-text-count", REL["fibre"],
     csv_edit(lambda df: _set(df, "nb_locaux_fibre", "beaucoup")), ["nb_locaux_fibre"]),
    ("ifn-empty", REL["ifn_communes"], empty, ["vide"]),
    ("ifn-latin1", REL["ifn_communes"], latin1, ["Latin-1"]),
    ("ifn-truncated", REL["ifn_communes"], truncated, ["tronqué"]),
    ("ifn-dup-row", REL["ifn_communes"], dup_row, ["en double", "49003"]),
    ("ifn-score-12", REL["ifn_communes"], csv_edit(lambda df: _set(df, "total", "12")),
     ["total", "entre 0 et 10"]),
    ("ifn-negative-score", REL["ifn_communes"],
     csv_edit(lambda df: _set(df, "poverty_rate", "-1")), ["poverty_rate"]),
]  # fmt: skip


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    if "--data-dir" in args and Path(args[args.index("--data-dir") + 1]) != BUNDLE:
        reseal(Path(args[args.index("--data-dir") + 1]))  # a copy (the bundle is untouched)
    rc = cli.main(args)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _assert_clear(err: str, file_name: str, words: list[str]) -> None:
    assert "Traceback" not in err and 'File "' not in err, err
    assert err.startswith("cnfs-geo : erreur"), err
    assert file_name in err, err
    assert "correction" in err.lower() or "correctif" in err.lower(), err
    for w in words:
        assert w in err, (w, err)


@pytest.fixture
def no_stage(monkeypatch) -> None:
    """The territory stage (the first transform of a plan) fails the test if it runs: the
    input files are read and checked before it (:func:`cnfs_geo.plan.check_inputs`)."""

    def stage(*a, **k):
        raise AssertionError("a stage ran before every input file was checked")

    monkeypatch.setattr(territory, "communes_from_frames", stage)


@pytest.mark.parametrize("rel, corrupt, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_corrupt_file_is_a_clear_error(data49, tmp_path, capsys, no_stage, rel, corrupt, words):
    corrupt(data49 / rel)
    out = tmp_path / "out"
    rc, _, err = _run(["plan", "--data-dir", str(data49), "--out", str(out)], capsys)
    assert rc == 2
    _assert_clear(err, Path(rel).name, words)
    assert not out.exists() or not any(out.iterdir())  # nothing written


@pytest.mark.parametrize(
    "corrupt, words",
    [(truncated, ["tronqué"]), (extra_field, ["champs au lieu de"]), (empty, ["vide"])],
    ids=["truncated", "extra-field", "empty"],
)
def test_iris_file_is_checked(data49, tmp_path, capsys, no_stage, corrupt, words):
    if corrupt is extra_field:

        def corrupt(p: Path) -> None:  # the IRIS file is ';'-separated, without header
            lines = p.read_text(encoding="utf-8").splitlines(keepends=True)
            lines[3] = lines[3].rstrip("\n") + ";en trop\n"
            p.write_text("".join(lines), encoding="utf-8")

    corrupt(data49 / IRIS)
    rc, _, err = _run(
        ["plan", "--data-dir", str(data49), "--demand-unit", "iris", "--out",
         str(tmp_path / "o")], capsys)  # fmt: skip
    assert rc == 2
    _assert_clear(err, Path(IRIS).name, words)


@pytest.mark.parametrize("key", ["cog_communes", "cog_epci", "fibre", "ifn_communes"])
def test_missing_required_file_fails_plan_and_data_check(data49, tmp_path, capsys, no_stage, key):
    (data49 / REL[key]).unlink()
    rc, _, err = _run(["data", "check", "--data-dir", str(data49)], capsys)
    assert rc == 2
    assert Path(REL[key]).name in err and "Traceback" not in err and "correction" in err
    rc, _, err = _run(["plan", "--data-dir", str(data49), "--out", str(tmp_path / "o")], capsys)
    assert rc == 2
    assert Path(REL[key]).name in err and "Traceback" not in err


def test_utf8_with_bom_is_read(data49):
    path = data49 / REL["france_services"]
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    df = france_services.read_france_services(path)
    assert len(df) == 28 and "id_fs" in df.columns


def test_reader_error_is_a_valueerror_naming_the_file(data49):
    path = data49 / REL["france_services"]
    truncated(path)
    with pytest.raises(FileFormatError) as e:
        france_services.read_france_services(path)
    assert isinstance(e.value, ValueError) and e.value.source == str(path)


# ----------------------------------------------------------------------------- repairs


@pytest.fixture(scope="module")
def repaired(repaired49):
    """One full run on a copy carrying every repair (conftest ``repaired49``, its own
    process): exit code, standard error, the output folder and the two France Services
    ids."""
    r = repaired49
    return SimpleNamespace(rc=r.rc, err=r.stderr, out=r.out, zero=r.zero, swapped=r.swapped)


@pytest.mark.slow
def test_repairs_are_printed_journaled_and_accounted(repaired):
    import pyogrio

    rc, err, out = repaired.rc, repaired.err, repaired.out
    assert rc == 0, err
    assert "Traceback" not in err
    assert "49007 : lat/lng inversés" in err
    lines = {ln.split(" (")[0].strip(): ln for ln in err.splitlines()[1:]}
    assert "3 réparés" in lines["cnfs_permanences"] and "nb_aidants" in lines["cnfs_permanences"]
    assert "polygone invalide" in lines["communes_2018"]
    journal = pyogrio.read_dataframe(out / "plan.gpkg", layer="journal")
    reasons = journal.set_index("source")["reasons"]
    assert "nb_aidants -3" in reasons["cnfs_permanences"]
    assert "nb_aidants 'abc'" in reasons["cnfs_permanences"]
    assert "réparé (make_valid)" in reasons["communes_2018"]
    assert (journal["read"] == journal["kept"] + journal["merged"] + journal["rejected"]).all()
    rep = journal.set_index("source")["repaired"]
    assert rep["datasfun_communes"] == 1 and rep["cnfs_permanences"] == 3
    assert rep["communes_2018"] >= 1
    ac = journal.set_index("source").loc["aidants_connect"]
    assert ac["read"] == 58  # every record of the file accounted for
    html = (out / "rapport.html").read_text(encoding="utf-8")
    assert "Journal des données" in html and "lat/lng inversés" in html


@pytest.mark.slow
def test_coordinate_repairs_of_the_offer_are_said_in_french(repaired):
    """A France Services site at (0, 0) and one with latitude/longitude swapped: both are
    repaired (relocated at the chef-lieu of its commune; swapped back) and the terminal
    and the journal say which record and why, in French (not a generic line)."""
    import pyogrio

    rc, err, zero, swapped = repaired.rc, repaired.err, repaired.zero, repaired.swapped
    assert rc == 0 and "Traceback" not in err
    line = next(ln for ln in err.splitlines() if ln.strip().startswith("france_services"))
    assert "2 réparés" in line and f"fiche {swapped}" in line, line
    assert "coordonnées inversées" in line and _fr.WARNING_OTHER not in line, line
    journal = pyogrio.read_dataframe(repaired.out / "plan.gpkg", layer="journal")
    reasons = journal.set_index("source").at["france_services", "reasons"]
    assert f"fiche {zero} : coordonnées '0'/'0' à" in reasons, reasons
    assert "hors du département 49 ; lieu placé au chef-lieu de sa commune" in reasons
    assert "swapped" not in reasons and "relocated" not in reasons


def test_reader_repairs_are_recorded(data49):
    from cnfs_geo.sources.datasfun import read_datasfun_communes

    repairs(data49)
    with _journal.collect() as events:
        df = read_datasfun_communes(data49 / REL["datasfun_communes"])
    rep = [e for e in events if e.kind == "repaired"]
    assert len(rep) == 1 and "49007" in rep[0].reason
    row = df[df["insee_com"] == "49007"].iloc[0]
    assert 47 < float(row["lat"]) < 48  # swapped back
    table = _journal.journal_table(events)
    line = _journal.summary_lines(table)[0]
    assert "1 réparé" in line and "215 lus" in line


# ----------------------------------------------------------------------------- CLI arguments


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "--posts", "huit"],
        ["plan", "--threshold", "dix"],
        ["plan", "--demand-unit", "canton"],
        ["plan", "--model", "random"],
        ["nope"],
        ["plan", "--itinerant", "-x"],
    ],
    ids=["posts-text", "threshold-text", "unit", "model", "command", "itinerant"],
)
def test_bad_arguments_exit_2(args, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(args)
    assert e.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, words",
    [
        (["plan", "--posts", "-3"], ["option --posts/-n : -3 : un nombre entier positif"]),
        (["plan", "--posts", "2.7"], ["option --posts/-n : « 2.7 » n'est pas un nombre entier"]),
        (["plan", "--threshold", "-5"], ["option --threshold/-t : -5 : un temps en minutes"]),
        (["plan", "--threshold", "nan"], ["option --threshold/-t : nan : un temps en minutes"]),
        (["plan", "--itinerant", "-1"], ["option --itinerant : -1 : un nombre entier positif"]),
        (["plan", "--fibre-target", "150"], ["option --fibre-target : 150 : un pourcentage"]),
        (["plan", "--workers", "0"], ["option --workers : 0 : au moins 1"]),
        (["compare", "--posts", "2", "-4"], ["option --posts/-n : -4 : un nombre entier"]),
        (["data", "fetch", "--timeout", "0"], ["option --timeout : 0 : un nombre strictement"]),
    ],
    ids=["posts-negative", "posts-decimal", "threshold-negative", "threshold-nan",
         "itinerant-negative", "fibre-150", "workers-0", "compare-posts", "timeout-0"],
)  # fmt: skip
def test_bad_option_values_are_french_usage_errors(args, words, capsys):
    """Option values are checked as the command line is read: one French line naming the
    option, the value and what is expected (exit 2), before any computation."""
    with pytest.raises(SystemExit) as e:
        cli.main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "give a" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("cnfs-geo") and ": erreur : " in last, last
    for w in words:
        assert w in last, last


@pytest.mark.parametrize(
    "args, words",
    [(["plan", "--departement", "99"], ["99"]),
     (["plan", "--posts", "1000", "--sans-robustesse"],
      ["1000 nouveaux postes demandés", "--posts", "correction"])],
    ids=["departement", "posts-above-candidates"],
)  # fmt: skip
def test_bad_values_are_clear_errors(args, words, tmp_path, capsys):
    # on the embedded bundle (what a run without --data-dir reads when CNFS_GEO_DATA_DIR is
    # not set), whatever the environment: the national files add nothing to these checks
    rc, _, err = _run([*args, "--data-dir", str(BUNDLE), "--out", str(tmp_path / "o")], capsys)
    assert rc == 2 and "Traceback" not in err and err.startswith("cnfs-geo : erreur")
    for w in words:
        assert w in err


def test_missing_data_dir_is_a_french_error(tmp_path, capsys):
    rc, _, err = _run(["plan", "--data-dir", str(tmp_path / "absent"), "--out",
                       str(tmp_path / "o")], capsys)  # fmt: skip
    assert rc == 2 and "Traceback" not in err
    assert "n'existe pas" in err and "correction" in err and "absent" in err
    assert "does not exist" not in err


def test_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "fichier.txt"
    f.write_text("x")
    rc, _, err = _run(["plan", "--out", str(f)], capsys)
    assert rc == 2 and "est un fichier" in err and "--out" in err and "Traceback" not in err
    rc, _, err = _run(["plan", "--out", str(f / "sous-dossier")], capsys)
    assert rc == 2 and "fichier" in err and "Traceback" not in err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_out_not_writable(tmp_path, capsys):
    import os

    if os.getuid() == 0:
        pytest.skip("root writes everywhere")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        rc, _, err = _run(["plan", "--out", str(ro / "49")], capsys)
    finally:
        ro.chmod(0o700)
    assert rc == 2 and "droit d'écriture" in err and "Traceback" not in err


def test_internal_error_prints_one_line_and_a_log(monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise RuntimeError("panne simulée")

    monkeypatch.setattr(catalog, "verify", boom)
    rc, _, err = _run(["data", "check"], capsys)
    assert rc == 1 and "Traceback" not in err
    assert err.count("\n") == 1 and "erreur interne" in err
    log = Path(err.split("détails dans ")[1].split(" ")[0])
    assert "RuntimeError: panne simulée" in log.read_text(encoding="utf-8")
    log.unlink()
    with pytest.raises(RuntimeError):
        cli.main(["--debug", "data", "check"])


def test_keyboard_interrupt_exits_130(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(catalog, "verify", interrupted)
    rc, _, err = _run(["data", "check"], capsys)
    assert rc == 130 and err.count("\n") == 1 and "interrompu" in err


def _no_traceback_on_real_stderr(run) -> None:
    assert run.rc == 2
    assert "Traceback" not in run.stderr and run.file in run.stderr
    assert len(run.stderr.strip().splitlines()) <= 4


def test_subprocess_no_traceback_on_real_stderr_fibre_dup(bad49_fibre_dup):
    """`python -m cnfs_geo.cli plan --data-dir COPY` on a copy whose fibre file has a
    duplicated row (conftest ``bad49_fibre_dup``, its own process)."""
    _no_traceback_on_real_stderr(bad49_fibre_dup)


def test_subprocess_no_traceback_on_real_stderr_cog_latin1(bad49_cog_latin1):
    """The same on a copy whose COG is Latin-1 (conftest ``bad49_cog_latin1``)."""
    _no_traceback_on_real_stderr(bad49_cog_latin1)


# ----------------------------------------------------------------------------- API misuse


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"posts": 2.7}, ValidationError),
        ({"posts": "8"}, ArgumentError),
        ({"posts": True}, ArgumentError),
        ({"posts": -1}, ValidationError),
        ({"threshold_minutes": "10"}, ArgumentError),
        ({"threshold_minutes": 0}, ValidationError),
        ({"departement": 49}, ArgumentError),
        ({"data_dir": 3}, ArgumentError),
        ({"itinerant_posts": 1.5}, ValidationError),
        ({"settings": {"posts": 3}}, ArgumentError),
    ],
    ids=["posts-2.7", "posts-str", "posts-bool", "posts-neg", "threshold-str", "threshold-0",
         "dep-int", "data_dir-int", "itinerant-1.5", "settings-dict"],
)  # fmt: skip
def test_scenario_misuse(kwargs, error):
    with pytest.raises(error) as e:
        Scenario(**kwargs)
    assert isinstance(e.value, CnfsGeoError)
    if error is ArgumentError:
        assert isinstance(e.value, TypeError)
    else:
        assert isinstance(e.value, ValueError)


def test_whole_float_posts_are_accepted():
    assert Scenario(posts=8.0).p == 8


def test_run_without_a_scenario_is_a_project_error():
    from cnfs_geo.plan import prepare, run

    with pytest.raises(ArgumentError):
        run("49")  # was AttributeError
    with pytest.raises(ArgumentError):
        prepare({"departement": "49"})


def test_write_outputs_into_a_file_is_a_project_error(tmp_path):
    f = tmp_path / "plan.txt"
    f.write_text("x")
    with pytest.raises(CnfsGeoError) as e:
        outputs.write_outputs(object(), f)  # was FileExistsError after writing nothing
    assert isinstance(e.value, OSError)
    with pytest.raises(ArgumentError):
        outputs.write_outputs(object(), 42)  # was TypeError


def test_journal_reasons_agree_in_number_and_punctuation():
    """Beyond four reasons the rest is counted with a real plural ("2 autres motifs", not
    "2 autre motifs"), and a reason's final period does not give ". ;"."""
    events = [_journal.Event("x", "x.csv", "read", count=6)] + [
        _journal.Event("x", "x.csv", "repaired", f"fiche {i} : corrigée.") for i in range(6)
    ]
    reasons = _journal.journal_table(events).set_index("source").at["x", "reasons"]
    assert reasons.endswith("; et 2 autres motifs"), reasons
    assert ". ;" not in reasons


def test_ctrl_c_as_the_temporary_folder_is_created_leaves_none(tmp_path, monkeypatch):
    """The interrupt test sends SIGINT as soon as the temporary folder appears: a Ctrl-C
    landing just after ``mkdir`` (still inside the folder's creation) must not leave it
    behind (it did, now and then, when the folder was made before the ``try``)."""
    import os

    real_mkdir = os.mkdir

    def mkdir_then_ctrl_c(path, *args, **kwargs):
        real_mkdir(path, *args, **kwargs)
        if Path(path).name.startswith(outputs.TMP_PREFIX):
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "mkdir", mkdir_then_ctrl_c)
    out = tmp_path / "49"
    with pytest.raises(KeyboardInterrupt):
        outputs.write_files(out, {"a.csv": lambda p: p.write_text("x", encoding="utf-8")})
    monkeypatch.undo()
    assert not list(tmp_path.glob(f"{outputs.TMP_PREFIX}*"))
    assert not (out / "a.csv").exists()
