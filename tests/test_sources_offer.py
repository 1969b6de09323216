"""Tests of the offer readers (cnfs_geo.sources: france_services, lieux, cnfs, conumm,
data_inclusion, aidants_connect) on the real 49 bundle and national files, their structure
checks, and of offer.places_from_frames (the stage fed with frames instead of files)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cnfs_geo import catalog, offer, territory
from cnfs_geo._errors import DataFileError, ValidationError
from cnfs_geo.sources import france_services, lieux
from cnfs_geo.sources._contract import CONTACT_FIELDS
from cnfs_geo.sources.cog import read_cog_records

INVALID = Path(__file__).parent / "data" / "offer"
KEYS = list(offer.SOURCE_ORDER)


def _raw_rows(path: Path) -> tuple[int, set[str]]:
    """(number of records, column names) of a source file, read without the readers."""
    if path.suffix == ".csv":
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
        return len(raw), set(raw.columns)
    data = json.loads(path.read_text(encoding="utf-8"))
    return len(data), set().union(*(r.keys() for r in data))


def _check_frame(key: str, path: Path) -> pd.DataFrame:
    df = offer.READERS[key](path)
    n, columns = _raw_rows(path)
    assert isinstance(df.index, pd.RangeIndex) and len(df) == n
    assert set(offer.CONTRACTS[key].required) <= set(df.columns)
    assert not set(df.columns) & CONTACT_FIELDS
    assert set(df.columns) == columns - CONTACT_FIELDS  # nothing else dropped
    if path.suffix == ".csv":  # CSV values stay text: leading zeros of codes kept
        assert all(df[c].map(type).eq(str).all() for c in df.columns)
    return df


# ----------------------------------------------------------------------------- real files


@pytest.mark.parametrize("key", KEYS)
def test_reader_on_bundle(bundle, key):
    _check_frame(key, bundle.file(key))


@pytest.mark.parametrize("key", KEYS)
def test_reader_on_national_files(raw_dir, key):
    national = catalog.resolve_data_dir(raw_dir)
    df = _check_frame(key, national.file(key))
    assert len(df) > 0


def test_national_contacts_are_dropped(raw_dir):
    national = catalog.resolve_data_dir(raw_dir)
    for key, cols in (
        ("france_services", {"mail", "telephone"}),
        ("lieux_cd49_2022", {"Téléphone", "Courriel"}),
        ("lieux_cd49_2020", {"NUM_TEL", "MAIL_STRUC"}),
        ("conumm_angers", {"MAIL", "TELEPHONE"}),
    ):
        path = national.file(key)
        assert cols <= _raw_rows(path)[1], key  # the file does hold them
        assert not cols & set(offer.READERS[key](path).columns), key


def test_codes_keep_leading_zeros_and_letters(raw_dir):
    fs = france_services.read_france_services(
        catalog.resolve_data_dir(raw_dir).file("france_services")
    )
    assert {"01", "2A", "2B", "974"} <= set(fs["insee_dep"])
    assert fs["insee_com"].str.fullmatch(r"[0-9][0-9AB][0-9]{3}").all()


def test_lambert93_decimal_commas_kept_as_written(bundle):
    cd = lieux.read_lieux_cd49_2020(bundle.file("lieux_cd49_2020"))
    xs = cd["x"].dropna().astype(str)
    assert xs.str.contains(",").any()  # parsed (and reported as written) by the offer stage


# ----------------------------------------------------------------------------- structure


def test_missing_columns_named():
    with pytest.raises(ValidationError) as exc:
        france_services.read_france_services(INVALID / "france_services_missing_columns.csv")
    msg = str(exc.value)
    assert "france_services_missing_columns.csv" in msg and "format attendu" in msg
    assert "latitude" in msg and "insee_com" in msg


def test_csv_resaved_with_semicolons_says_so(bundle, tmp_path):
    """The real France services file re-saved by a spreadsheet (BOM, « ; » separator): the
    error says the separator and how to re-save, not only a field count."""
    src = bundle.file("france_services")
    df = pd.read_csv(src, dtype=str, keep_default_na=False)
    path = tmp_path / src.name
    df.to_csv(path, sep=";", index=False, encoding="utf-8-sig")
    with pytest.raises(ValidationError) as exc:
        france_services.read_france_services(path)
    msg = str(exc.value)
    assert "le séparateur du fichier semble être « ; »" in msg, msg
    assert "réenregistrer le fichier en CSV séparé par « , »" in msg and src.name in msg


def test_json_not_a_list_of_objects(tmp_path):
    path = tmp_path / "cd49.json"
    path.write_text(json.dumps({"ID": "LMN001"}), encoding="utf-8")
    with pytest.raises(ValidationError, match="une liste JSON d'objets"):
        lieux.read_lieux_cd49_2022(path)


def test_unreadable_file(tmp_path):
    path = tmp_path / "cd49.json"
    path.write_text("[{", encoding="utf-8")
    with pytest.raises(ValidationError, match="JSON tronqué.*correction : restaurer"):
        lieux.read_lieux_cd49_2020(path)
    with pytest.raises(DataFileError):
        lieux.read_lieux_cd49_2020(tmp_path / "absent.json")


def test_contract_check_on_frames():
    contract = offer.CONTRACTS["conumm_angers"]
    with pytest.raises(ValidationError, match="expected a pandas DataFrame"):
        contract.check([{"TYPO_UID": 1}], "frames['conumm_angers']")
    df = pd.DataFrame(
        {
            "TYPO_UID": [1],
            "USER_NOM": ["x"],
            "USER_ADRES": ["y"],
            "LAT": [47.0],
            "LNG": [-0.5],
            "MAIL": ["a@b.fr"],
        }
    )
    assert "MAIL" not in contract.check(df, "df").columns
    with pytest.raises(ValidationError, match=r"colonne absente : \['LNG'\]"):
        contract.check(df.drop(columns="LNG"), "df")


# ----------------------------------------------------------------------------- frames in


@pytest.fixture(scope="module")
def inputs49(bundle, cog49):
    communes = cog49.copy()  # territory.communes_from_cog("49", bundle)
    frames = {k: offer.READERS[k](bundle.file(k)) for k in KEYS}
    cog = dict(
        cog_records=read_cog_records(bundle.file("cog_communes")),
        code_map=territory.current_code_map(bundle),
    )
    return communes, frames, cog


def test_places_from_frames_equals_sources(inputs49, offer49):
    communes, frames, cog = inputs49
    places, report = offer.places_from_frames(communes, frames, **cog)
    expected, expected_report = offer49  # offer.places_from_sources(communes, bundle)
    pd.testing.assert_frame_equal(pd.DataFrame(places), pd.DataFrame(expected))
    pd.testing.assert_frame_equal(report.counts, expected_report.counts)
    pd.testing.assert_frame_equal(report.rejected, expected_report.rejected)
    assert report.warnings == expected_report.warnings


def test_places_from_frames_caller_frames(inputs49):
    communes, frames, cog = inputs49
    fs = frames["france_services"]
    fixed = ~fs["format_fs"].str.contains("bus|itin", case=False)
    part = {"france_services": fs[fixed].reset_index(drop=True)}
    places, report = offer.places_from_frames(
        communes, part, **cog, missing_reasons={"cnfs_permanences": "not asked"}
    )
    counts = report.counts.set_index("source")
    assert counts.loc["france_services", "kept"] == len(places) == 27
    assert (counts.drop("france_services")["status"] == "missing").all()
    assert "cnfs_permanences: not asked; source skipped" in report.warnings
    assert "aidants_connect: no frame given; source skipped" in report.warnings
    with pytest.raises(ValidationError, match="unknown source key"):
        offer.places_from_frames(communes, {"france_service": fs}, **cog)
    with pytest.raises(ValidationError, match="no source of the existing offer.*aidants_connect"):
        offer.places_from_frames(communes, {}, **cog)
    with pytest.raises(ValidationError, match=r"frames\['france_services'\]"):
        offer.places_from_frames(communes, {"france_services": fs.drop(columns="lib_fs")}, **cog)
