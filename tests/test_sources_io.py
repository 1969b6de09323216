"""cnfs_geo.sources._io.one_read_per_file: inside the block a marked reader parses a file
version once, later calls get a copy and the same journal events (real 49 files)."""

from __future__ import annotations

import os
import shutil

import pandas as pd

from cnfs_geo import _journal, catalog
from cnfs_geo.sources import arcep, france_services, one_read_per_file

BUNDLE = catalog.bundle_dir()


def _counting(monkeypatch, module, name: str) -> list:
    """Replace ``module.name`` (the parser a reader calls) by a wrapper counting calls."""
    calls: list = []
    real = getattr(module, name)

    def counted(*a, **k):
        calls.append(a[0])
        return real(*a, **k)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_a_file_is_parsed_once_per_block_and_each_caller_gets_its_copy(monkeypatch):
    calls = _counting(monkeypatch, france_services, "read_csv_strings")
    path = BUNDLE / catalog.SOURCES["france_services"].relpath
    with one_read_per_file():
        first = france_services.read_france_services(path)
        first.loc[0, "id_fs"] = "changé par l'appelant"
        second = france_services.read_france_services(path)
    assert len(calls) == 1
    assert second.loc[0, "id_fs"] != "changé par l'appelant"  # a copy each time
    assert second.attrs == first.attrs and len(second) == len(first) == 28
    france_services.read_france_services(path)  # outside a block: read again
    assert len(calls) == 2


def test_later_calls_record_the_same_journal_events(monkeypatch):
    path = BUNDLE / catalog.SOURCES["fibre"].relpath
    calls = _counting(monkeypatch, arcep, "read_csv_columns")
    with _journal.collect() as alone:
        expected = arcep.read_fibre(path)
    with one_read_per_file():
        with _journal.collect(isolated=True) as discarded:
            arcep.read_fibre(path)
        with _journal.collect() as again:
            got = arcep.read_fibre(path)
    assert len(calls) == 2  # once alone, once in the block
    assert alone and again == alone and discarded == alone
    pd.testing.assert_frame_equal(got, expected)


def test_a_changed_file_is_read_again(tmp_path, monkeypatch):
    src = BUNDLE / catalog.SOURCES["fibre"].relpath
    path = tmp_path / src.name
    shutil.copy2(src, path)
    calls = _counting(monkeypatch, arcep, "read_csv_columns")
    with one_read_per_file():
        before = arcep.read_fibre(path)
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(lines[:-1]), encoding="utf-8")  # one commune less
        st = os.stat(src)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
        after = arcep.read_fibre(path)
    assert len(calls) == 2 and len(after) == len(before) - 1
