"""``cnfs-geo data fetch --source official`` against a local HTTP server on 127.0.0.1 serving
FIXTURES in each official format (tests/official_fixtures.py: built from the real raw files,
reshaped to the documented formats). No network."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from official_fixtures import PLACEHOLDER_MAIL, PLACEHOLDER_PHONE, FixtureServer, build

from cnfs_geo import catalog, cli, fetch
from cnfs_geo._errors import DataFileError

FAST = {"backoff": 0.01}


@pytest.fixture(scope="module")
def fixtures53(raw_dir, tmp_path_factory):
    return build(raw_dir, ["53"], tmp_path_factory.mktemp("official53"))


@pytest.fixture
def server(fixtures53):
    with FixtureServer(fixtures53, delay=2.0) as srv:
        yield srv


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones included) with its sha256."""
    return {
        str(p.relative_to(root)): catalog.file_sha256(p) for p in root.rglob("*") if p.is_file()
    }


def _fetched(server, tmp_path) -> Path:
    dd = tmp_path / "donnees"
    fetch.fetch_official(["53"], dd, base_url=server.url, **FAST)
    return dd


def test_full_fetch_of_one_departement(server, tmp_path):
    dd = _fetched(server, tmp_path)
    lock = json.loads((dd / catalog.LOCK_NAME).read_text(encoding="utf-8"))
    assert lock["departements"] == ["53"] and lock["source"] == "official"
    keys = {"cog_communes", "cog_epci", "contours_53", "deleguees_53", "datasfun_communes"}
    assert keys | {"data_inclusion", "fibre", "ifn_communes", "france_services"} == set(
        lock["files"]
    )
    for key, e in lock["files"].items():  # sha256 and size of what is on disk
        p = dd / e["file"]
        assert catalog.file_sha256(p) == e["sha256"] and p.stat().st_size == e["size"], key
        assert e["vintage"] and e["retrieved"] and e["licence"] and e["url"]
    # one request per endpoint: the API returns whole lists (no pagination)
    assert all(n == 1 for n in server.hits.values()) and len(server.hits) == 9
    # data.gouv.fr: the dataset description, then its most recent CSV resource only
    assert "/old-liste-fs.csv" not in server.hits and server.hits["/liste-fs.csv"] == 1
    assert lock["files"]["france_services"]["vintage"].endswith("fichier publié le 2024-08-01")
    assert set(lock["upstream"]) == {
        "communes:53",
        "deleguees:53",
        "epcis",
        "lieux_inclusion",
        "france_services",
        "arcep_mci",
        "ifn_communes",
    }
    # contacts dropped at ingest: nothing of the upstream placeholders, no mail column
    for p in dd.rglob("*"):
        if p.is_file():
            text = p.read_text(encoding="utf-8")
            assert PLACEHOLDER_MAIL not in text and PLACEHOLDER_PHONE not in text, p
    fs = (dd / lock["files"]["france_services"]["file"]).read_text(encoding="utf-8")
    assert "mail" not in fs.splitlines()[0].split(",")
    # the stages read the files through the lock; no staging folder left
    d = catalog.resolve_data_dir(dd)
    assert d.file("france_services").name == "structures-france-services.csv"
    assert not (dd / ".cnfs_geo_fetch").exists()
    from cnfs_geo import territory

    c = territory.communes_from_cog("53", d)
    assert len(c) == 240 and int(c["population"].sum()) == 305_468
    # provenance of the directory: every official source with vintage and retrieval date
    prov = catalog.data_provenance(d)
    assert len(prov) == 5 and all(r["retrieved"] == lock["retrieved"] for r in prov)
    assert cli.main(["data", "check", "--data-dir", str(dd), "--departement", "53"]) == 0


def test_locked_reproduces_and_refuses_a_changed_file(server, tmp_path):
    dd = _fetched(server, tmp_path)
    before = _snapshot(dd)
    fetch.fetch_official(["53"], dd, base_url=server.url, locked=True, **FAST)
    assert _snapshot(dd) == before  # same set, same lock
    body = (server.root / "liste-fs.csv").read_bytes()  # same dataset, the file changed
    server.overrides["/liste-fs.csv"] = body.replace(b"France services", b"France Services", 1)
    with pytest.raises(DataFileError) as exc:
        fetch.fetch_official(["53"], dd, base_url=server.url, locked=True, **FAST)
    msg = str(exc.value)
    assert "Liste des structures France services" in msg and f"{server.url}/liste-fs.csv" in msg
    assert "sans --locked" in msg and "Correctif" in msg
    assert _snapshot(dd) == before  # nothing written


@pytest.mark.parametrize(
    ("path", "faults", "kwargs", "source", "words"),
    [
        ("/liste-fs.csv", ["404"], {}, "Liste des structures France services", "HTTP 404"),
        ("/commune_techno.csv", ["500"] * 3, {"retries": 2}, "Ma connexion internet", "HTTP 500"),
        ("/geo/epcis", ["timeout"], {"retries": 0, "timeout": 0.5}, "API Découpage", "réponse"),
        (
            "/lieux-de-mediation-numerique.csv",
            ["truncate"] * 2,
            {"retries": 1},
            "Cartographie nationale",
            "incomplet",
        ),
        ("/geo/communes", ["429"] * 2, {"retries": 1}, "API Découpage", "HTTP 429"),
    ],
)
def test_download_errors_name_source_url_and_fix(
    server, tmp_path, path, faults, kwargs, source, words
):
    server.faults[path] = list(faults)
    dd = tmp_path / "donnees"
    with pytest.raises(DataFileError) as exc:
        fetch.fetch_official(["53"], dd, base_url=server.url, **{**FAST, **kwargs})
    msg = str(exc.value)
    assert source in msg and server.url + path in msg and words in msg and "Correctif" in msg
    assert server.hits[path] == len(faults)  # every retry spent, no more
    assert _snapshot(dd) == {}  # nothing half-written, no temporary file


def test_429_then_success(server, tmp_path):
    server.faults["/geo/epcis"] = ["429", "503"]
    dd = tmp_path / "donnees"
    fetch.fetch_official(["53"], dd, base_url=server.url, retries=3, **FAST)
    assert server.hits["/geo/epcis"] == 3
    assert (dd / catalog.LOCK_NAME).is_file()


def test_interrupted_download_leaves_previous_data(server, tmp_path):
    dd = _fetched(server, tmp_path)
    before = _snapshot(dd)
    server.faults["/commune_techno.csv"] = ["truncate"]
    with pytest.raises(DataFileError, match="incomplet"):
        fetch.fetch_official(["53"], dd, base_url=server.url, retries=0, **FAST)
    assert _snapshot(dd) == before


def test_plan_refuses_truncated_or_edited_files(server, tmp_path):
    from cnfs_geo.plan import Scenario, prepare

    dd = _fetched(server, tmp_path)
    lock = catalog.read_lock(dd)
    fs = dd / lock["files"]["france_services"]["file"]
    data = fs.read_bytes()
    fs.write_bytes(data[: int(len(data) * 0.6)])  # cut at 60 %
    with pytest.raises(DataFileError) as exc:
        prepare(Scenario(departement="53", data_dir=dd))
    msg = str(exc.value)
    assert str(fs) in msg and "octets au lieu de" in msg and "cnfs-geo data fetch" in msg
    assert cli.main(["data", "check", "--data-dir", str(dd)]) == 2
    fs.write_bytes(data.replace(b"France services", b"France servicez", 1))  # same size
    with pytest.raises(DataFileError, match="sha256"):
        catalog.check_data_dir(catalog.resolve_data_dir(dd), "53")
    fs.unlink()  # a required file missing
    assert cli.main(["data", "check", "--data-dir", str(dd)]) == 2


def test_bundle_copy_checked_against_manifest(tmp_path):
    dd = tmp_path / "49"
    shutil.copytree(catalog.bundle_dir(), dd)
    d = catalog.resolve_data_dir(dd)
    catalog.check_data_dir(d, "49")  # intact
    fs = dd / catalog.SOURCES["france_services"].relpath
    data = fs.read_bytes()
    fs.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(DataFileError, match="france_services/liste-fs-20240801.csv"):
        catalog.check_data_dir(d, "49")


def test_plan_without_data_says_which_command(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv(catalog.ENV_VAR, raising=False)
    rc = cli.main(["plan", "--departement", "53", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(catalog.bundle_dir()) in err and "cnfs-geo data fetch --departement 53" in err
    assert err.count("\n") == 1 and "data/49" in err  # one sentence, the right folder


def test_fetched_directory_refuses_another_departement(server, tmp_path):
    dd = _fetched(server, tmp_path)
    with pytest.raises(DataFileError) as exc:
        catalog.check_data_dir(catalog.resolve_data_dir(dd), "2a")
    assert f"--departement 2A --data-dir {dd}" in str(exc.value)


def test_cli_fetch_with_base_url_env(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(catalog.FETCH_BASE_ENV, server.url)
    dd = tmp_path / "donnees"
    rc = cli.main(["data", "fetch", "--departement", "53", "--data-dir", str(dd)])
    out = capsys.readouterr().out
    assert rc == 0 and "API Découpage administratif" in out and "récupéré le" in out
    assert f"cnfs-geo plan --departement 53 --data-dir {dd}" in out
    server.faults["/liste-fs.csv"] = ["404"]
    rc = cli.main(["data", "fetch", "--departement", "53", "--data-dir", str(dd)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("HTTP 404") == 1  # printed once


def test_all_and_several_departements_in_one_directory(raw_dir, tmp_path):
    fixtures = build(raw_dir, ["53", "2A"], tmp_path / "official")
    dd = tmp_path / "donnees"
    with FixtureServer(fixtures) as srv:
        fetch.fetch_official(["2a"], dd, base_url=srv.url, **FAST)
        # a second département joins the first: both fetched again, one consistent set
        fetch.fetch_official(["53"], dd, base_url=srv.url, **FAST)
        assert catalog.read_lock(dd)["departements"] == ["2A", "53"]
        assert srv.hits["/geo/communes"] == 3
        res = fetch.fetch_official("all", tmp_path / "tout", base_url=srv.url, **FAST)
        assert res.departements == ["2A", "53"] and srv.hits["/geo/departements"] == 1
    from cnfs_geo import territory

    d = catalog.resolve_data_dir(dd)
    for dep, n in (("2A", 124), ("53", 240)):
        catalog.check_data_dir(d, dep)
        assert len(territory.communes_from_cog(dep, d)) == n


def test_pinned_fetch_error_printed_once(tmp_path, capsys):
    with FixtureServer(tmp_path) as srv:  # an empty mirror: every file is a 404
        rc = cli.main(
            [
                "data",
                "fetch",
                "--source",
                "pinned",
                "fibre",
                "--data-dir",
                str(tmp_path / "d"),
                "--base-url",
                srv.url + "/{relpath}",
            ]
        )
    err = capsys.readouterr().err
    assert rc == 2 and err.count("HTTP 404") == 1


def test_dataset_without_csv_resource(server, tmp_path, monkeypatch):
    slug = "liste-des-structures-france-services"
    server.overrides[f"/datagouv/api/1/datasets/{slug}/"] = b'{"resources": []}'
    with pytest.raises(DataFileError) as exc:
        fetch.fetch_official(["53"], tmp_path / "d", base_url=server.url, **FAST)
    assert "aucun fichier CSV" in str(exc.value) and "CNFS_GEO_FRANCE_SERVICES_URL" in str(
        exc.value
    )
    # the per-source variable gives the file directly (no dataset description asked)
    monkeypatch.setenv("CNFS_GEO_FRANCE_SERVICES_URL", server.url + "/liste-fs.csv")
    fetch.fetch_official(["53"], tmp_path / "d", base_url=server.url, **FAST)
    assert server.hits[f"/datagouv/api/1/datasets/{slug}/"] == 1


def test_plan_on_an_empty_folder_says_which_command(tmp_path, capsys):
    empty = tmp_path / "vide"
    empty.mkdir()
    rc = cli.main(["plan", "--departement", "2A", "--data-dir", str(empty), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert f"cnfs-geo data fetch --departement 2A --data-dir {empty}" in err
