"""COG 2018 commune polygons reader (cnfs_geo.sources.polygons): per-département files and
the national archive, valid and invalid inputs."""

from pathlib import Path

import pytest

from cnfs_geo import catalog
from cnfs_geo._errors import CrsError, DataFileError, MissingColumnError, ValidationError
from cnfs_geo.sources import polygons

INVALID = Path(__file__).parent / "data" / "sources"
ARCHIVE = "communes/france-geojson_departements_communes_adminexpress-cog2018.tar.gz"


def test_departement_file(bundle):
    p = polygons.read_polygons(bundle.file("communes_2018_49"))
    assert list(p.columns) == ["code", "nom", "geometry"]
    assert len(p) == 183 and p["code"].is_unique and p.crs.to_epsg() == 4326
    assert p.attrs["source"].endswith("communes-49-maine-et-loire_adminexpress-cog2018.geojson")
    assert p["code"].map(type).eq(str).all()


def test_departement_polygons_prefers_the_departement_file(bundle):
    p = polygons.departement_polygons("49", bundle)
    assert len(p) == 183 and list(p.columns) == ["code", "nom", "geometry"]


def test_archive_members_are_the_departement_files(raw_dir):
    archive = raw_dir / ARCHIVE
    deps = polygons.archive_departements(archive)
    assert len(deps) == 101 and {"2A", "2B", "971", "976"} <= set(deps)
    a = polygons.read_polygons_archive(archive, ["49"])
    f = polygons.read_polygons(
        raw_dir / "communes" / "communes-49-maine-et-loire_adminexpress-cog2018.geojson"
    )
    assert list(a["code"]) == list(f["code"])
    assert a.geometry.geom_equals_exact(f.geometry, tolerance=0).all()
    assert a.attrs["source"].endswith("communes-49-maine-et-loire.geojson")
    two = polygons.read_polygons_archive(archive, ["974", "2A"])
    assert set(two["departement"]) == {"2A", "974"} and two.attrs["source"] == str(archive)
    assert two["code"].str[:2].isin(["2A", "97"]).all()


def test_archive_without_the_departement(raw_dir):
    with pytest.raises(DataFileError, match="département.*99"):
        polygons.read_polygons_archive(raw_dir / ARCHIVE, ["99"])


def test_national_directory_reads_the_archive(raw_dir, tmp_path):
    """A data directory without per-département file falls back on the archive."""
    (tmp_path / "communes").mkdir()
    (tmp_path / ARCHIVE).symlink_to(raw_dir / ARCHIVE)
    d = catalog.DataDir(path=tmp_path, is_bundle=False, origin="test")
    p = polygons.departement_polygons("2B", d)
    assert list(p.columns) == ["code", "nom", "geometry"] and len(p) > 200
    assert "!departements/2B-" in p.attrs["source"]


def test_missing_code_property():
    with pytest.raises(MissingColumnError, match="polygons_missing_code.*\n.*'code'") as e:
        polygons.read_polygons(INVALID / "polygons_missing_code.geojson")
    assert isinstance(e.value, ValidationError) and isinstance(e.value, ValueError)


def test_projected_geojson_is_refused():
    with pytest.raises(CrsError, match="2154") as e:
        polygons.read_polygons(INVALID / "polygons_lambert93.geojson")
    assert isinstance(e.value, ValueError)


def test_missing_file(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        polygons.read_polygons(tmp_path / "nothing.geojson")


def test_archive_departement_read_twice_journals_both_reads(raw_dir, tmp_path):
    """The first pass and the demand units both read a département's polygons: the second
    read comes from the cache, yet each read is in the journal and callers get a copy."""
    from cnfs_geo import _journal

    (tmp_path / "communes").mkdir()
    (tmp_path / ARCHIVE).symlink_to(raw_dir / ARCHIVE)
    d = catalog.DataDir(path=tmp_path, is_bundle=False, origin="test")
    with _journal.collect() as first:
        a = polygons.departement_polygons("2A", d)
    a.loc[a.index[0], "nom"] = "changed by the caller"
    with _journal.collect() as second:
        b = polygons.departement_polygons("2A", d)
    reads = [e for e in first if e.kind == "read"]
    assert reads and reads == [e for e in second if e.kind == "read"]
    assert reads[0].count == len(b) == len(a)
    assert b["nom"].iloc[0] != "changed by the caller"
    assert b.attrs["source"] == a.attrs["source"] and "!departements/2A-" in b.attrs["source"]
