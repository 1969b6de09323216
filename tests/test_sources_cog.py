"""COG readers (cnfs_geo.sources.cog): communes.json and the re-created communes table."""

import json
from pathlib import Path

import pytest

from cnfs_geo._errors import MissingColumnError
from cnfs_geo.sources import cog

INVALID = Path(__file__).parent / "data" / "sources"


def test_cog_communes_frame(bundle):
    df = cog.read_cog_communes(bundle.file("cog_communes"))
    assert tuple(df.columns) == cog.COG_COLUMNS
    recs = json.loads(bundle.file("cog_communes").read_text(encoding="utf-8"))
    assert len(df) == len(recs) and list(df["code"]) == [r["code"] for r in recs]
    current = df[df["type"] == "commune-actuelle"]
    assert len(current) == 176 and int(current["population"].sum()) == 833_776
    # the caller gets a copy: changing it does not change the next read
    df.loc[:, "nom"] = "x"
    assert (cog.read_cog_communes(bundle.file("cog_communes"))["nom"] != "x").all()


def test_changed_file_is_read_again(bundle, tmp_path):
    path = tmp_path / "communes.json"
    recs = json.loads(bundle.file("cog_communes").read_text(encoding="utf-8"))
    path.write_text(json.dumps(recs[:10]))
    assert len(cog.read_cog_communes(path)) == 10
    path.write_text(json.dumps(recs[:12]))
    assert len(cog.read_cog_communes(path)) == 12


def test_cog_without_type():
    with pytest.raises(MissingColumnError, match="'type'"):
        cog.read_cog_communes(INVALID / "cog_communes_missing_type.json")


def test_recreated_communes():
    df = cog.read_recreated_communes()
    assert df.index.name == "insee" and tuple(df.columns) == cog.RECREATED_COLUMNS
    assert set(df.index) == {"14666", "15031", "15035", "15047", "15171", "85165", "85212"}


def test_recreated_communes_missing_column(tmp_path):
    path = tmp_path / "recreated.csv"
    path.write_text("insee,nom,departement\n85165,L'Oie,85\n", encoding="utf-8")
    with pytest.raises(MissingColumnError, match="parent_code_2018"):
        cog.read_recreated_communes(path)


def test_departement_names(bundle, tmp_path):
    path = bundle.file("cog_departements")
    names = cog.read_departement_names(path)
    recs = json.loads(path.read_text(encoding="utf-8"))
    assert len(names) == len(recs)
    assert names["49"] == "Maine-et-Loire" and names["2A"] == "Corse-du-Sud"
    assert all(isinstance(k, str) for k in names)
    bad = tmp_path / "departements.json"
    bad.write_text(json.dumps([{"code": "49"}]), encoding="utf-8")  # no "nom"
    with pytest.raises(MissingColumnError, match="code, nom"):
        cog.read_departement_names(bad)
