"""ARCEP fibre reader (cnfs_geo.sources.arcep)."""

from pathlib import Path

import pytest

from cnfs_geo._errors import MissingColumnError
from cnfs_geo.sources import arcep

INVALID = Path(__file__).parent / "data" / "sources"


def test_fibre_strings(bundle):
    df = arcep.read_fibre(bundle.file("fibre"))
    assert {"code_insee", "commune", *arcep.FIBRE_COLUMNS} <= set(df.columns)
    assert df["code_insee"].str.len().eq(5).all()
    assert df.attrs["source"] == str(bundle.file("fibre"))


def test_fibre_missing_column():
    with pytest.raises(MissingColumnError, match="colonne 'nb_locaux_fibre' absente"):
        arcep.read_fibre(INVALID / "fibre_missing_column.csv")
