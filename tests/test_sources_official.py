"""Readers of the official formats of ``cnfs-geo data fetch`` (sources/geo_api.py,
sources/mediation_num.py, sources/arcep_mci.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely

from cnfs_geo._errors import CnfsGeoError, MissingColumnError, ValidationError
from cnfs_geo.sources import data_inclusion, geo_api
from cnfs_geo.sources.arcep_mci import read_commune_techno
from cnfs_geo.sources.mediation_num import read_lieux_mediation_num

SAMPLE = Path(__file__).parent / "data" / "official" / "standard-mediation-num_exemple-valide.csv"


def test_mediation_num_reads_the_schema_example_into_the_data_inclusion_contract():
    df = read_lieux_mediation_num(SAMPLE)
    assert len(df) >= 1
    assert set(data_inclusion.CONTRACT.required) <= set(df.columns)
    # contacts of the schema dropped at ingest
    assert not {"telephone", "courriels", "site_web", "prise_rdv"} & set(df.columns)
    assert "@" not in df.to_csv()
    # multi-valued fields re-joined with ';', programmes as labels_nationaux
    first = df.iloc[0]
    assert "|" not in first["services"] and ";" in first["services"]
    assert "Aidants Connect" in first["labels_nationaux"]


def test_mediation_num_missing_column_names_file(tmp_path):
    bad = tmp_path / "lieux.csv"
    bad.write_text("id,nom\n1,Médiathèque\n", encoding="utf-8")
    with pytest.raises(MissingColumnError) as exc:
        read_lieux_mediation_num(bad)
    assert str(bad) in str(exc.value) and "code_insee" in str(exc.value)


@pytest.mark.parametrize("sep", [",", ";"])
def test_commune_techno_both_separators(tmp_path, sep):
    p = tmp_path / "commune_techno.csv"
    rows = [
        ["code_insee", "nom_com", "nbr", "elig_ftth", "elig_cu_8", "date"],
        ["53130", "Laval", "30000", "29500", "28000", "2025-09-30"],
        ["2A004", "Ajaccio", "52000", "", "50000", "2025-09-30"],
    ]
    p.write_text("\n".join(sep.join(r) for r in rows) + "\n", encoding="utf-8")
    df = read_commune_techno(p)
    assert list(df.columns[:4]) == ["code_insee", "commune", "nb_locaux", "nb_locaux_fibre"]
    assert df["code_insee"].tolist() == ["53130", "2A004"]  # letters and zeros kept
    assert df["nb_locaux_fibre"].tolist() == ["29500", ""]
    assert df.attrs["vintage"] == "2025-09-30"


def test_commune_techno_missing_column(tmp_path):
    p = tmp_path / "commune_techno.csv"
    p.write_text("code_insee,nbr\n53130,1\n", encoding="utf-8")
    with pytest.raises(MissingColumnError, match="elig_ftth"):
        read_commune_techno(p)


def _communes_json(tmp_path: Path) -> Path:
    square = {"type": "Polygon", "coordinates": [[[0, 45], [0.1, 45], [0.1, 45.1], [0, 45]]]}
    recs = [  # hand-made fixture, labelled: two communes as the API documents them
        {
            "code": "2A004",
            "nom": "Ajaccio",
            "codeDepartement": "2A",
            "codeEpci": "242010056",
            "population": 75000,
            "codesPostaux": ["20000"],
            "mairie": {"type": "Point", "coordinates": [8.73, 41.92]},
            "contour": square,
        },
        {
            "code": "2A001",
            "nom": "Afa",
            "codeDepartement": "2A",
            "codeEpci": "242010056",
            "population": 3000,
            "contour": square,
        },
    ]
    p = tmp_path / "communes.json"
    p.write_text(json.dumps(recs), encoding="utf-8")
    return p


def test_geo_api_contracts(tmp_path):
    c = geo_api.read_api_json(_communes_json(tmp_path), "communes")
    poly = geo_api.polygons_from_api(c)
    assert poly["code"].tolist() == ["2A001", "2A004"] and str(poly.crs) == "EPSG:4326"
    mairies = geo_api.chef_lieux_from_api(c)
    assert mairies["insee_com"].tolist() == ["2A004"]  # no mairie point: left out
    recs = geo_api.cog_records_from_api(
        c,
        geo_api.pd.DataFrame(
            [{"code": "2A999", "nom": "X", "type": "commune-deleguee", "chefLieu": "2A004"}]
        ),
    )
    dl = [r for r in recs if r["type"] == "commune-deleguee"]
    assert dl == [
        {
            "code": "2A999",
            "nom": "X",
            "type": "commune-deleguee",
            "departement": "2A",
            "chefLieu": "2A004",
        }
    ]
    ep = geo_api.epci_records_from_api(
        geo_api.pd.DataFrame([{"code": "242010056", "nom": "CA du Pays Ajaccien"}]), c
    )
    assert [m["code"] for m in ep[0]["membres"]] == ["2A001", "2A004"]


def test_geo_api_errors(tmp_path):
    p = tmp_path / "truncated.json"
    p.write_text('[{"code": "2A004", "nom": "Ajac', encoding="utf-8")
    with pytest.raises(CnfsGeoError, match="illisible"):
        geo_api.read_api_json(p, "communes")
    q = tmp_path / "nocontour.json"
    q.write_text(
        json.dumps([{"code": "1", "nom": "a", "codeDepartement": "01", "population": 1}]),
        encoding="utf-8",
    )
    with pytest.raises(MissingColumnError, match="contour"):
        geo_api.read_api_json(q, "communes")
    r = tmp_path / "nullcontour.json"
    r.write_text(
        json.dumps(
            [{"code": "1", "nom": "a", "codeDepartement": "01", "population": 1, "contour": None}]
        ),
        encoding="utf-8",
    )
    with pytest.raises(ValidationError, match="commune 1: no contour"):
        geo_api.polygons_from_api(geo_api.read_api_json(r, "communes"))


def test_datagouv_latest_csv_resource(tmp_path):
    from cnfs_geo.sources.datagouv import latest_resource, read_dataset_resources

    p = tmp_path / "dataset.json"
    p.write_text(  # hand-made fixture in the shape of /api/1/datasets/<slug>/
        json.dumps(
            {
                "resources": [
                    {"url": "https://x/a.csv", "format": "CSV", "last_modified": "2025-01-02"},
                    {"url": "https://x/b.csv", "format": "csv", "last_modified": "2025-03-01"},
                    {"url": "https://x/c.json", "format": "json", "last_modified": "2026-01-01"},
                ]
            }
        ),
        encoding="utf-8",
    )
    res = read_dataset_resources(p)
    assert latest_resource(res, "csv")["url"] == "https://x/b.csv"
    assert latest_resource(res, "xlsx") is None
    p.write_text("<html>maintenance</html>", encoding="utf-8")
    with pytest.raises(CnfsGeoError, match="data.gouv.fr illisible"):
        read_dataset_resources(p)


def _box(x0: float, x1: float) -> dict:
    return {
        "type": "Polygon",
        "coordinates": [[[x0, 45], [x1, 45], [x1, 46], [x0, 46], [x0, 45]]],
    }


def test_geo_api_unit_polygons_split_communes_into_their_deleguees():
    """Hand-made FIXTURE (labelled): unit squares as the API's ``contour`` fields."""
    pd = geo_api.pd
    codes = ["01001", "01002", "01003", "01004", "01005", "01006"]
    communes = pd.DataFrame(
        [
            {"code": c, "nom": f"C{c[-1]}", "codeDepartement": "01", "population": 1,
             "contour": _box(i, i + 1)}
            for i, c in enumerate(codes)
        ]
    )  # fmt: skip
    dl = [
        # 01001: a commune associée on its left half; the rest is the absorbing commune's
        ("01901", "Associée", "commune-associee", "01001", _box(0, 0.5)),
        # 01002: two déléguées leaving a 0.2 % sliver (generalisation), dropped
        ("01002", "Chef", "commune-deleguee", "01002", _box(1, 1.5)),
        ("01902", "Deux", "commune-deleguee", "01002", _box(1.5, 1.999)),
        # 01003: the chef-lieu déléguée has a contour, two others not: their remainder
        ("01003", "Trois", "commune-deleguee", "01003", _box(2, 2.5)),
        ("01913", "Sans", "commune-deleguee", "01003", None),
        ("01903", "Autre", "commune-deleguee", "01003", None),
        # 01004: the chef-lieu déléguée and another without contour: one remainder
        ("01904", "Quatre", "commune-deleguee", "01004", _box(3, 3.5)),
        ("01004", "Ville", "commune-deleguee", "01004", None),
        ("01905", "Hameau", "commune-deleguee", "01004", None),
        # 01005: every déléguée contoured, 20 % uncovered: joins the chef-lieu déléguée
        ("01005", "Cinq", "commune-deleguee", "01005", _box(4, 4.5)),
        ("01906", "Six", "commune-deleguee", "01005", _box(4.5, 4.8)),
        # a déléguée of a commune of another département
        ("01907", "Ailleurs", "commune-deleguee", "02001", _box(9, 10)),
    ]
    deleguees = pd.DataFrame(dl, columns=["code", "nom", "type", "chefLieu", "contour"])
    u = geo_api.unit_polygons_from_api(communes, deleguees).set_index("code")
    assert u.index.tolist() == [
        "01001", "01901", "01002", "01902", "01003", "01903", "01004", "01904", "01005",
        "01906", "01006",
    ]  # fmt: skip
    assert u["type"].to_dict() == {
        "01001": "reste",
        "01901": "commune-associee",
        "01002": "commune-deleguee",
        "01902": "commune-deleguee",
        "01003": "commune-deleguee",
        "01903": "reste",
        "01004": "reste",
        "01904": "commune-deleguee",
        "01005": "commune-deleguee",
        "01906": "commune-deleguee",
        "01006": "commune-actuelle",
    }
    assert u["nom"][["01001", "01903", "01004"]].tolist() == [
        "C1",
        "Sans et Autre",
        "Ville et Hameau",
    ]
    area = geo_api.pd.Series(shapely.area(u.geometry.to_numpy()), u.index).round(6)
    assert area["01001"] == area["01901"] == 0.5 and area["01902"] == 0.499
    assert area["01003"] == area["01903"] == area["01004"] == 0.5
    assert area["01005"] == 0.7 and area["01006"] == 1.0
    assert set(u["chefLieu"]) == set(codes)


def test_geo_api_unit_polygons_bad_contour_is_named():
    pd = geo_api.pd
    communes = pd.DataFrame(
        [
            {
                "code": "01001",
                "nom": "A",
                "codeDepartement": "01",
                "population": 1,
                "contour": _box(0, 1),
            }
        ]
    )
    line = {"type": "Polygon", "coordinates": [[[0, 45], [1, 45]]]}  # a ring of 2 points
    deleguees = pd.DataFrame(
        [("01901", "X", "commune-deleguee", "01001", line)],
        columns=["code", "nom", "type", "chefLieu", "contour"],
    )
    with pytest.raises(ValidationError, match="01901: unreadable contour"):
        geo_api.unit_polygons_from_api(communes, deleguees)
