"""MedNum IRIS reader (cnfs_geo.sources.iris)."""

from pathlib import Path

import pytest

from cnfs_geo._errors import DataFileError, MissingColumnError
from cnfs_geo.sources import iris

INVALID = Path(__file__).parent / "data" / "sources"


def test_iris_frame(bundle):
    names = iris.read_iris_headers(bundle.file("mednum_iris_headers"))
    assert len(names) == 152
    df = iris.read_iris(iris.iris_path("49", bundle), names)
    assert df.index.name == "iris" and df.index.is_monotonic_increasing and len(df) == 357
    assert list(df.columns) == [c for c in iris.IRIS_COLUMNS.values() if c != "iris"]
    assert df.crs.to_epsg() == 4326
    assert (df.index.str[:5] == df["com"]).all()


def test_headers_missing_column():
    with pytest.raises(MissingColumnError, match="nom de colonne 'P16 Pop' absent"):
        iris.read_iris_headers(INVALID / "iris_headers_missing_column.csv")


def test_missing_iris_file_names_the_upstream(raw_dir):
    from cnfs_geo import catalog

    with pytest.raises(DataFileError, match="team-48/inr-indice-fragilite"):
        iris.iris_path("2A", catalog.resolve_data_dir(raw_dir))
