"""IFN 2023 reader (cnfs_geo.sources.ifn)."""

from pathlib import Path

import pytest

from cnfs_geo._errors import MissingColumnError
from cnfs_geo.sources import ifn

INVALID = Path(__file__).parent / "data" / "sources"


def test_ifn_strings(bundle):
    df = ifn.read_ifn(bundle.file("ifn_communes"))
    assert {"code", "name", *ifn.IFN_COLUMNS} <= set(df.columns)
    assert all(df[c].map(type).eq(str).all() for c in ["code", *ifn.IFN_COLUMNS])
    assert df.attrs["source"] == str(bundle.file("ifn_communes"))


def test_ifn_missing_column():
    with pytest.raises(MissingColumnError, match="colonne 'poverty_rate' absente") as e:
        ifn.read_ifn(INVALID / "ifn_missing_column.csv")
    assert "ifn_missing_column.csv" in e.value.source
