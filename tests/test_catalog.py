"""Tests of cnfs_geo.catalog: fetch (download into a cache), verify, checksums.

No network: every download goes to an HTTP server started on 127.0.0.1 by the test,
serving the real files of the embedded 49 bundle (``data/49``) or the national raw
files (``raw_dir`` fixture, skipped when ``CNFS_GEO_DATA_DIR`` is not set). The
bundle files are filtered copies, so tests that serve them give ``fetch`` a catalog
whose sha256 are the bundle's (from the bundle's ``MANIFEST.json``) via ``sources=``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

from cnfs_geo import catalog, territory
from cnfs_geo._errors import DataFileError, ValidationError

BUNDLE = catalog.bundle_dir()
MANIFEST = json.loads((BUNDLE / "MANIFEST.json").read_text(encoding="utf-8"))
BUNDLE_KEYS = [entry["source"] for entry in MANIFEST.values()]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _bundle_bytes(key: str) -> bytes:
    return (BUNDLE / catalog.SOURCES[key].relpath).read_bytes()


def _bundle_sources(keys) -> dict[str, catalog.DataSource]:
    """The catalog entries of ``keys`` with the sha256 of the bundle's filtered copies."""
    by_rel = {entry["source"]: entry["bundle_sha256"] for entry in MANIFEST.values()}
    return {k: dataclasses.replace(catalog.SOURCES[k], sha256=by_rel[k]) for k in keys}


def _files_under(folder: Path) -> set[str]:
    """Every file (hidden temporary files included) under ``folder``, as relative paths."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


class _FileServer:
    """Serves in-memory bytes by URL path on 127.0.0.1; counts hits; can misbehave.

    ``faults[path]``: ``"truncate"`` (announces the full Content-Length, sends half
    and closes), ``"corrupt"`` (same length, one byte changed), ``"stall"`` (sends
    half, then waits longer than the client's timeout).
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, str] = {}
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                path = unquote(self.path.split("?", 1)[0])
                server.hits[path] += 1
                body = server.files.get(path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                fault = server.faults.get(path)
                if fault == "corrupt":
                    mid = len(body) // 2
                    body = body[:mid] + bytes([body[mid] ^ 0xFF]) + body[mid + 1 :]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if fault in ("truncate", "stall"):
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    if fault == "stall":
                        time.sleep(1.5)
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):  # keep pytest output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def serve_upstream(self, key: str, body: bytes) -> None:
        """Serve ``body`` where the prefix form of base_urls looks for ``key``."""
        self.files["/" + catalog.SOURCES[key].upstream_path] = body

    def upstream_hits(self, key: str) -> int:
        return self.hits["/" + catalog.SOURCES[key].upstream_path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """A proxy set in the environment must not intercept requests to the local server."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def server():
    srv = _FileServer()
    yield srv
    srv.close()


# --------------------------------------------------------------------------- fetch


def test_fetch_downloads_to_relpath_and_does_not_download_twice(server, tmp_path, caplog):
    keys = ["fibre", "ifn_communes", "france_services"]
    for k in keys:
        server.serve_upstream(k, _bundle_bytes(k))
    sources = _bundle_sources(keys)
    cache = tmp_path / "cache"

    with caplog.at_level(logging.INFO, logger="cnfs_geo.catalog"):
        got = catalog.fetch(keys, cache_dir=cache, base_urls=server.url, sources=sources)
    assert list(got) == keys
    for k in keys:
        assert got[k] == cache / catalog.SOURCES[k].relpath
        assert got[k].read_bytes() == _bundle_bytes(k)
        assert server.upstream_hits(k) == 1
    assert _files_under(cache) == {catalog.SOURCES[k].relpath for k in keys}  # no temp file
    assert any("downloading" in r.getMessage() for r in caplog.records)

    again = catalog.fetch(keys, cache_dir=cache, base_urls=server.url, sources=sources)
    assert again == got
    assert all(server.upstream_hits(k) == 1 for k in keys)  # verified copies kept

    catalog.fetch(["fibre"], cache_dir=cache, base_urls=server.url, sources=sources, force=True)
    assert server.upstream_hits("fibre") == 2
    assert server.upstream_hits("ifn_communes") == 1


def test_fetch_replaces_a_present_file_with_the_wrong_checksum(server, tmp_path):
    server.serve_upstream("fibre", _bundle_bytes("fibre"))
    dest = tmp_path / catalog.SOURCES["fibre"].relpath
    dest.parent.mkdir(parents=True)
    dest.write_bytes(_bundle_bytes("fibre")[:1000])  # an old truncated copy
    catalog.fetch(
        ["fibre"], cache_dir=tmp_path, base_urls=server.url, sources=_bundle_sources(["fibre"])
    )
    assert server.upstream_hits("fibre") == 1
    assert dest.read_bytes() == _bundle_bytes("fibre")


def test_checksum_mismatch_raises_and_leaves_nothing(server, tmp_path):
    # the real catalog expects the national file; the server sends the filtered 49 copy
    body = _bundle_bytes("fibre")
    server.serve_upstream("fibre", body)
    src = catalog.SOURCES["fibre"]
    with pytest.raises(DataFileError) as info:
        catalog.fetch(["fibre"], cache_dir=tmp_path, base_urls=server.url)
    msg = str(info.value)
    assert "fibre" in msg
    assert f"{server.url}/{src.upstream_path}" in msg
    assert f"expected sha256 {src.sha256}" in msg
    assert f"actual   sha256 {_sha(body)}" in msg
    assert "Fix:" in msg
    assert _files_under(tmp_path) == set()
    assert info.value.failures.keys() == {"fibre"}


@pytest.mark.parametrize(
    "fault, words", [("truncate", "incomplete"), ("corrupt", "checksum mismatch")]
)
def test_corrupted_download_raises_and_leaves_nothing(server, tmp_path, fault, words):
    body = _bundle_bytes("ifn_communes")
    server.serve_upstream("ifn_communes", body)
    server.faults["/" + catalog.SOURCES["ifn_communes"].upstream_path] = fault
    with pytest.raises(DataFileError, match=words) as info:
        catalog.fetch(
            ["ifn_communes"],
            cache_dir=tmp_path,
            base_urls=server.url,
            sources=_bundle_sources(["ifn_communes"]),
        )
    assert "ifn_communes" in str(info.value)
    if fault == "truncate":
        assert f"received {len(body) // 2} of {len(body)} bytes" in str(info.value)
    assert _files_under(tmp_path) == set()


def test_truncated_download_is_caught_without_a_checksum(server, tmp_path):
    body = _bundle_bytes("aidants_connect")
    server.serve_upstream("aidants_connect", body)
    server.faults["/" + catalog.SOURCES["aidants_connect"].upstream_path] = "truncate"
    no_sha = {
        "aidants_connect": dataclasses.replace(catalog.SOURCES["aidants_connect"], sha256=None)
    }
    with pytest.raises(DataFileError, match="incomplete"):
        catalog.fetch(["aidants_connect"], cache_dir=tmp_path, base_urls=server.url, sources=no_sha)
    assert _files_under(tmp_path) == set()


def test_failed_forced_download_keeps_the_good_file(server, tmp_path):
    body = _bundle_bytes("france_services")
    server.serve_upstream("france_services", body)
    sources = _bundle_sources(["france_services"])
    (dest,) = catalog.fetch(
        ["france_services"], cache_dir=tmp_path, base_urls=server.url, sources=sources
    ).values()
    server.faults["/" + catalog.SOURCES["france_services"].upstream_path] = "corrupt"
    with pytest.raises(DataFileError, match="checksum mismatch"):
        catalog.fetch(
            ["france_services"],
            cache_dir=tmp_path,
            base_urls=server.url,
            sources=sources,
            force=True,
        )
    assert server.upstream_hits("france_services") == 2
    assert dest.read_bytes() == body
    assert _files_under(tmp_path) == {catalog.SOURCES["france_services"].relpath}


def test_http_404_is_clear_and_other_sources_still_download(server, tmp_path):
    server.serve_upstream("fibre", _bundle_bytes("fibre"))  # ifn_communes is not served
    sources = _bundle_sources(["fibre", "ifn_communes"])
    with pytest.raises(DataFileError) as info:
        catalog.fetch(
            ["ifn_communes", "fibre"], cache_dir=tmp_path, base_urls=server.url, sources=sources
        )
    msg = str(info.value)
    assert "ifn_communes: HTTP 404" in msg
    assert f"{server.url}/{catalog.SOURCES['ifn_communes'].upstream_path}" in msg
    assert "Fix:" in msg
    assert info.value.failures.keys() == {"ifn_communes"}
    assert list(info.value.fetched) == ["fibre"]
    assert _files_under(tmp_path) == {catalog.SOURCES["fibre"].relpath}


def test_connection_refused_is_clear(tmp_path):
    with socket.socket() as s:  # a port nobody listens on any more
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataFileError) as info:
        catalog.fetch(
            ["fibre"], cache_dir=tmp_path, base_urls=f"http://127.0.0.1:{port}", timeout=5
        )
    msg = str(info.value)
    assert msg.count("cannot download") == 1 and "fibre" in msg
    assert f"127.0.0.1:{port}" in msg and "Fix:" in msg
    assert _files_under(tmp_path) == set()


def test_stalled_download_times_out(server, tmp_path):
    server.serve_upstream("fibre", _bundle_bytes("fibre"))
    server.faults["/" + catalog.SOURCES["fibre"].upstream_path] = "stall"
    with pytest.raises(DataFileError, match="timed out after 0.3 s"):
        catalog.fetch(
            ["fibre"],
            cache_dir=tmp_path,
            base_urls=server.url,
            timeout=0.3,
            sources=_bundle_sources(["fibre"]),
        )
    assert _files_under(tmp_path) == set()


def test_manual_sources_are_not_downloaded_and_get_instructions(server, tmp_path, caplog):
    # the upstream of the sanitized CNFS file would bring personal contacts back: even
    # when a server holds it, fetch does not take it from the upstream location
    server.serve_upstream("cnfs_permanences", _bundle_bytes("cnfs_permanences"))
    with caplog.at_level(logging.WARNING, logger="cnfs_geo.catalog"):
        got = catalog.fetch(
            ["cog_communes", "cog_epci", "cnfs_permanences"],
            cache_dir=tmp_path,
            base_urls=server.url,
        )
    assert got == {}
    assert server.upstream_hits("cnfs_permanences") == 0
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "npm pack @etalab/decoupage-administratif@6.0.0" in text
    assert f'package/data/*.json "{tmp_path / "cog"}/"' in text
    assert "courriel" in text
    assert _files_under(tmp_path) == set()

    # once placed by hand, a manual file is reported as present
    dest = tmp_path / catalog.SOURCES["cog_epci"].relpath
    dest.parent.mkdir(parents=True)
    dest.write_bytes(_bundle_bytes("cog_epci"))
    assert catalog.fetch(["cog_epci"], cache_dir=tmp_path) == {"cog_epci": dest}


def test_manual_instructions_name_every_manual_source(tmp_path):
    text = catalog.manual_instructions(cache_dir=tmp_path)
    manual = [k for k in catalog.SOURCES if not catalog.source_url(k)[1]]
    assert set(manual) == {
        "cog_communes",
        "cog_epci",
        "cog_departements",
        "communes_2018_archive",
        "data_inclusion",
        "cnfs_permanences",
    }
    for k in manual:
        assert f"{k} → {tmp_path / catalog.SOURCES[k].relpath}" in text
    assert text.count("npm pack") == 1  # the three COG files share one block
    assert catalog.SOURCES["communes_2018_archive"].commit in text


def test_bad_keys_and_placeholders_are_rejected(tmp_path):
    with pytest.raises(ValidationError, match="unknown source 'fibres'"):
        catalog.fetch(["fibres"], cache_dir=tmp_path)
    with pytest.raises(ValidationError, match="in base_urls"):
        catalog.fetch(["fibre"], cache_dir=tmp_path, base_urls={"fibr": "http://x/y"})
    with pytest.raises(ValidationError, match="placeholder"):
        catalog.fetch(["fibre"], cache_dir=tmp_path, base_urls="http://x/{file}")


def test_source_url_forms():
    src = catalog.SOURCES["fibre"]
    assert catalog.source_url("fibre") == (src.url, True)
    assert catalog.source_url("fibre", base_urls="http://m/") == (
        f"http://m/{src.upstream_path}",
        True,
    )
    assert catalog.source_url("fibre", base_urls="http://m/{key}/{relpath}") == (
        f"http://m/fibre/{src.relpath}",
        True,
    )
    assert catalog.source_url("fibre", base_urls={"fibre": "file:///x.csv"}) == (
        "file:///x.csv",
        True,
    )
    assert catalog.source_url("cog_epci") == (None, False)
    assert catalog.source_url("cog_epci", base_urls="http://m/{relpath}") == (
        "http://m/cog/epci.json",
        True,
    )
    assert catalog.source_url("cnfs_permanences")[1] is False
    assert catalog.source_url("cnfs_permanences", base_urls="http://m/{relpath}")[1] is True


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv(catalog.CACHE_ENV_VAR, str(tmp_path / "c"))
    assert catalog.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv(catalog.CACHE_ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if catalog.sys.platform not in ("win32", "darwin"):
        assert catalog.default_cache_dir() == tmp_path / "xdg" / "cnfs_geo"
    monkeypatch.setenv(catalog.CACHE_ENV_VAR, str(tmp_path / "d"))
    monkeypatch.setattr(catalog.Path, "home", lambda: tmp_path / "home")
    assert catalog.fetch(["cog_epci"]) == {}  # default cache used (and created), nothing to get
    assert (tmp_path / "d").is_dir()


def test_fetched_49_files_form_a_working_data_directory(server, tmp_path):
    """A mirror laid out like a data directory: every bundle file fetched, then read."""
    for key in BUNDLE_KEYS:
        server.files["/mirror/" + catalog.SOURCES[key].relpath] = _bundle_bytes(key)
    cache = tmp_path / "cache"
    got = catalog.fetch(
        BUNDLE_KEYS,
        cache_dir=cache,
        base_urls=server.url + "/mirror/{relpath}",
        sources=_bundle_sources(BUNDLE_KEYS),
    )
    assert sorted(got) == sorted(BUNDLE_KEYS)
    assert _files_under(cache) == set(MANIFEST)

    dd = catalog.resolve_data_dir(cache)
    assert (dd.is_bundle, dd.origin) == (False, "argument")
    fetched = territory.communes_from_cog("49", dd)
    reference = territory.communes_from_cog("49", catalog.resolve_data_dir(catalog.bundle_dir()))
    assert fetched.index.tolist() == reference.index.tolist()
    assert fetched["population"].tolist() == reference["population"].tolist()
    assert fetched["epci"].tolist() == reference["epci"].tolist()
    assert fetched.geometry.geom_equals(reference.geometry).all()

    # against the national catalog, only byte copies of national files check out
    report = catalog.verify(cache, keys=BUNDLE_KEYS)
    for entry in MANIFEST.values():
        same = entry["national_sha256"] == entry["bundle_sha256"]
        assert report.loc[entry["source"], "status"] == ("ok" if same else "checksum mismatch")
    assert (
        catalog.verify(cache, keys=BUNDLE_KEYS, sources=_bundle_sources(BUNDLE_KEYS))["status"]
        .eq("ok")
        .all()
    )


# --------------------------------------------------------------------------- verify


def test_verify_bundle_uses_its_manifest(tmp_path):
    report = catalog.verify(catalog.bundle_dir())
    assert list(report.index) == list(catalog.SOURCES)
    in_bundle = report.loc[BUNDLE_KEYS]
    assert in_bundle["status"].eq("ok").all()
    assert in_bundle["expected_from"].eq("MANIFEST.json").all()
    assert in_bundle["sha256_ok"].all()
    absent = report.drop(index=BUNDLE_KEYS)
    assert absent["status"].eq("missing").all() and not absent["present"].any()
    assert absent["sha256_ok"].isna().all() and absent["size_bytes"].isna().all()

    # a damaged copy and a deleted file are reported, nothing else changes
    copy = tmp_path / "49"
    shutil.copytree(catalog.bundle_dir(), copy)
    fibre = copy / catalog.SOURCES["fibre"].relpath
    fibre.write_bytes(fibre.read_bytes().replace(b"49", b"94", 1))
    (copy / catalog.SOURCES["ifn_communes"].relpath).unlink()
    damaged = catalog.verify(copy)
    changed = damaged.index[damaged["status"] != report["status"]].tolist()
    assert changed == ["fibre", "ifn_communes"]
    assert damaged.loc["fibre", "status"] == "checksum mismatch"
    assert damaged.loc["fibre", "sha256_ok"] == False  # noqa: E712 (pandas boolean)
    assert damaged.loc["ifn_communes", "status"] == "missing"


def test_verify_rejects_unknown_keys_and_missing_dirs(tmp_path):
    with pytest.raises(ValidationError, match="unknown source 'nope'"):
        catalog.verify(catalog.bundle_dir(), keys=["nope"])
    with pytest.raises(DataFileError, match="n'existe pas"):
        catalog.verify(tmp_path / "absent")


# --------------------------------------------------------------------------- national files


def test_catalog_checksums_match_the_national_files(raw_dir):
    with_sha = {k: s for k, s in catalog.SOURCES.items() if s.sha256}
    assert with_sha, "the catalog gives no checksum at all"
    mismatches = {
        k: catalog.file_sha256(raw_dir / s.relpath)
        for k, s in with_sha.items()
        if catalog.file_sha256(raw_dir / s.relpath) != s.sha256
    }
    assert mismatches == {}
    report = catalog.verify(raw_dir)
    assert report.loc[list(with_sha), "status"].eq("ok").all()


def test_fetch_national_files_with_the_real_catalog(server, raw_dir, tmp_path):
    """Every downloadable source, served from the national raw files at its upstream
    path, is fetched and verified against the catalog's own sha256."""
    keys = [k for k in catalog.SOURCES if catalog.source_url(k)[1]]
    for k in keys:
        server.serve_upstream(k, (raw_dir / catalog.SOURCES[k].relpath).read_bytes())
    got = catalog.fetch(keys, cache_dir=tmp_path, base_urls=server.url)
    assert list(got) == keys
    assert _files_under(tmp_path) == {catalog.SOURCES[k].relpath for k in keys}
    report = catalog.verify(tmp_path, keys=keys)
    assert report["status"].eq("ok").all()
    assert all(server.upstream_hits(k) == 1 for k in keys)


# --------------------------------------------------------------------------- polygons


def test_polygon_source_of_49_matches_the_shipped_byte_copy():
    src = catalog.polygon_source("49")
    shipped = catalog.bundle_dir() / src.relpath
    assert shipped.is_file()  # territory finds it under this very name
    assert _sha(shipped.read_bytes()) == src.sha256
    assert src.upstream_path == "departements/49-maine-et-loire/communes-49-maine-et-loire.geojson"
    assert catalog.polygon_source("2a").relpath.startswith("communes/communes-2A-")
    with pytest.raises(catalog.ValidationError, match="975"):
        catalog.polygon_source("975")


def test_polygon_sources_match_the_national_archive(raw_dir):
    import tarfile

    with tarfile.open(raw_dir / catalog.SOURCES["communes_2018_archive"].relpath) as tar:
        names = {m.name for m in tar.getmembers() if m.name.endswith(".geojson")}
        for dep in ("01", "2A", "2B", "49", "974", "976"):
            src = catalog.polygon_source(dep)
            assert src.upstream_path in names
            assert _sha(tar.extractfile(src.upstream_path).read()) == src.sha256


def test_fetched_polygons_and_bundle_files_plan_49(server, tmp_path, monkeypatch):
    """Per-département polygons fetched from a local server build the 49 communes."""
    from cnfs_geo import cli, territory

    src = catalog.polygon_source("49")
    poly = (catalog.bundle_dir() / src.relpath).read_bytes()
    server.files["/" + src.upstream_path] = poly
    keys = ["cog_communes", "cog_epci", "cog_departements"]
    for k in keys:  # the COG is a manual source upstream: served here as a mirror
        server.files["/" + catalog.SOURCES[k].relpath] = _bundle_bytes(k)
    cache = tmp_path / "cache"
    catalog.fetch(
        keys,
        cache_dir=cache,
        base_urls={k: server.url + "/" + catalog.SOURCES[k].relpath for k in keys},
        sources=_bundle_sources(keys),
    )
    got = catalog.fetch([src.key], cache_dir=cache, base_urls=server.url, sources={src.key: src})
    assert got[src.key].read_bytes() == poly
    communes = territory.communes_from_cog("49", catalog.resolve_data_dir(cache))
    assert len(communes) == 176 and int(communes["population"].sum()) == 833_776
    # the CLI passes --departement through to the same download
    rc = cli.main(
        [
            "data",
            "fetch",
            "--source",
            "pinned",
            src.key,
            "--departement",
            "49",
            "--cache-dir",
            str(cache),
            "--base-url",
            server.url,
        ]
    )
    assert rc == 0 and server.hits["/" + src.upstream_path] == 1  # verified copy kept
