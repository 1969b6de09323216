"""Tests of cnfs_geo.offer on the real 49 bundle, the national files (when
$CNFS_GEO_DATA_DIR is set) and deliberately invalid files in tests/data/offer/
(real bundle records with one defect each, see tests/data/offer/README.md)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from cnfs_geo import catalog, offer, territory
from cnfs_geo._errors import DataFileError, ValidationError
from cnfs_geo.settings import DEFAULT

INVALID = Path(__file__).parent / "data" / "offer"
TOL = DEFAULT.coordinate_tolerance_m


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def communes49(cog49):
    return cog49.copy()  # territory.communes_from_cog("49", bundle)


def _raw_json(data_dir, key):
    return json.loads(data_dir.file(key).read_text(encoding="utf-8"))


def _raw_csv(data_dir, key):
    return pd.read_csv(data_dir.file(key), dtype=str, keep_default_na=False)


def _record_place(places) -> dict[str, str]:
    """'source:record_id' → place_id."""
    out = {}
    for pid, sids in zip(places["place_id"], places["source_ids"]):
        for sid in sids.split(";"):
            assert sid not in out, f"{sid} in two places"
            out[sid] = pid
    return out


#: id(communes) -> (communes, outline): the union is taken once per communes frame (the
#: frame is held, so its id is not reused by another frame)
_OUTLINES: dict[int, tuple[gpd.GeoDataFrame, shapely.Geometry]] = {}


def _outline(communes):
    held = _OUTLINES.get(id(communes))
    if held is None or held[0] is not communes:
        held = _OUTLINES[id(communes)] = (communes, shapely.union_all(communes.geometry.to_numpy()))
    return held[1]


def _copy_bundle(tmp_path, replace: dict[str, Path | None]) -> catalog.DataDir:
    """Copy the bundle to tmp_path and replace (or delete, with None) source files."""
    dest = tmp_path / "data"
    shutil.copytree(catalog.bundle_dir(), dest)
    for key, src in replace.items():
        target = dest / catalog.SOURCES[key].relpath
        target.unlink()
        if src is not None:
            shutil.copyfile(src, target)
    return catalog.resolve_data_dir(dest)


def _to_work(lon, lat, crs):
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    return shapely.Point(x, y)


def _check_invariants(places, report, communes):
    counts = report.counts.set_index("source")
    assert (counts["read"] == counts["kept"] + counts["merged"] + counts["rejected"]).all()
    assert counts["kept"].sum() == len(places)
    assert places["place_id"].is_unique and places["place_id"].is_monotonic_increasing
    assert isinstance(places.index, pd.RangeIndex)
    assert places.crs == communes.crs
    # every record read is in exactly one place or rejected: nothing silently dropped
    in_places = set(_record_place(places))
    rejected = {f"{s}:{i}" for s, i in zip(report.rejected["source"], report.rejected["record_id"])}
    assert not in_places & rejected
    assert len(in_places) + len(rejected) == counts["read"].sum()
    for key, n in (counts["kept"] + counts["merged"]).items():
        assert sum(1 for sid in in_places if sid.startswith(key + ":")) == n
    # a place holds at most one record per source
    for sids in places["source_ids"]:
        keys = [s.split(":", 1)[0] for s in sids.split(";")]
        assert len(keys) == len(set(keys)), sids
    # inside the département (+ tolerance)
    d = shapely.distance(places.geometry.to_numpy(), _outline(communes))
    assert d.max() <= TOL
    assert set(places["insee"]) <= set(communes.index)
    assert set(places["located"]) <= {"address", "commune"}
    assert set(places["service_level"]) <= {"accompaniment", "access"}


# ----------------------------------------------------------------------------- 49 bundle


def test_the_stage_reads_only_the_settings_it_declares(communes49, bundle):
    """offer.SETTINGS_USED is every setting the stage reads (a plan's cache of its
    territory, offer and need is keyed on them): attribute reads of the settings object
    are recorded during a whole run of the stage on the bundle."""
    import dataclasses

    from cnfs_geo.settings import Settings

    fields = {f.name for f in dataclasses.fields(Settings)}
    read: set[str] = set()
    recording = []

    class Recording(Settings):
        def __getattribute__(self, name):
            if recording and name in fields:
                read.add(name)
            return super().__getattribute__(name)

    settings = Recording(**{name: getattr(DEFAULT, name) for name in fields})  # checked
    recording.append(True)  # from here
    offer.places_from_sources(communes49, bundle, settings=settings)
    assert read and read <= set(offer.SETTINGS_USED), read - set(offer.SETTINGS_USED)


def test_counts_invariant_49(offer49, communes49, bundle):
    places, report = offer49
    _check_invariants(places, report, communes49)
    counts = report.counts.set_index("source")
    # every record of the bundle files concerns Maine-et-Loire
    assert (counts["read"] == counts["in_file"]).all()
    assert counts.loc["lieux_cd49_2022", "read"] == len(_raw_json(bundle, "lieux_cd49_2022"))
    assert counts.loc["lieux_cd49_2020", "read"] == len(_raw_json(bundle, "lieux_cd49_2020"))
    assert report.missing_sources == []
    total = report.counts_with_total().iloc[-1]
    assert total["source"] == "total" and total["kept"] == len(places)


def test_france_services_49(offer49, bundle):
    places, report = offer49
    raw = _raw_csv(bundle, "france_services")
    assert len(raw) == 28
    fs_places = places[places["is_france_services"]]
    assert len(fs_places) == 28  # France Services are never merged with each other
    assert (fs_places["service_level"] == "accompaniment").all()
    bus = raw[raw["format_fs"].str.contains("bus|itin", case=False)]
    assert len(bus) == 1
    itinerant = places[places["itinerant"]]
    assert len(itinerant) == 1
    assert f"france_services:{bus['id_fs'].iloc[0]}" in itinerant["source_ids"].iloc[0].split(";")


def test_communes_are_cog_2026(offer49, communes49, bundle):
    places, _ = offer49
    where = _record_place(places)
    raw = _raw_csv(bundle, "france_services")
    old = raw.loc[raw["insee_com"] == "49069", "id_fs"]
    assert len(old) == 1  # Orée d'Anjou, COG 2024 code
    row = places[places["place_id"] == where[f"france_services:{old.iloc[0]}"]].iloc[0]
    assert row["insee"] == "49126"
    assert "49069" not in set(places["insee"])
    assert (places["commune"] == communes49.loc[places["insee"], "nom"].to_numpy()).all()
    assert (places["epci"] == communes49.loc[places["insee"], "epci"].to_numpy()).all()


def test_places_inside_departement_and_commune_points(offer49, communes49):
    places, _ = offer49
    d = shapely.distance(places.geometry.to_numpy(), _outline(communes49))
    assert d.max() <= TOL
    com = places[places["located"] == "commune"]
    assert len(com) > 0
    cl = communes49.loc[com["insee"]]
    assert np.allclose(com.geometry.x.to_numpy(), cl["chef_lieu_x"].to_numpy())
    assert np.allclose(com.geometry.y.to_numpy(), cl["chef_lieu_y"].to_numpy())
    # Aidants Connect gives no coordinates: a place whose only source is AC is at commune level
    only_ac = places[places["sources"] == "aidants_connect"]
    assert (only_ac["located"] == "commune").all()


def test_cnfs_advisors_match_nb_aidants(offer49, bundle):
    places, report = offer49
    raw = {r["id"]: r["nb_aidants"] for r in _raw_json(bundle, "cnfs_permanences")}
    assert sum(raw.values()) == 46  # SOURCES.md: Σ nb_aidants = 46 in 49
    rejected = set(
        report.rejected.loc[report.rejected["source"] == "cnfs_permanences", "record_id"]
    )
    expected = sum(v for k, v in raw.items() if k not in rejected)
    measured = places.loc[places["is_cnfs"] & (places["advisors_basis"] == "source"), "advisors"]
    assert measured.sum() == expected
    # every CNFS permanence is in one place whose advisors are its nb_aidants
    where = _record_place(places)
    by_id = places.set_index("place_id")
    for rid, nb in raw.items():
        if rid in rejected:
            continue
        row = by_id.loc[where[f"cnfs_permanences:{rid}"]]
        assert row["is_cnfs"] and not row["advisors_assumed"] and row["advisors"] == nb
    # without a CNFS count, an Aidants Connect structure's « Nombre d'aidants » (> 0) is the
    # count (at least the France Services charter's two agents when it is one)
    ac = {
        r["ID"]: float(r["Nombre d'aidants"])
        for r in _raw_csv(bundle, "aidants_connect").to_dict("records")
        if str(r["Nombre d'aidants"]).strip() not in ("", "0")
    }
    by_ac = places[~places["is_cnfs"] & (places["advisors_basis"] == "source")]
    assert len(by_ac) > 20
    for r in by_ac.itertuples():
        counts = [
            ac.get(i.split(":", 1)[1], 0.0)
            for i in r.source_ids.split(";")
            if i.startswith("aidants_connect:")
        ]
        assert r.is_aidants_connect and r.advisors == max(counts) >= (
            2 if r.is_france_services else 1
        )
    # other places: the largest default of their kinds; France Services without a count
    # carry the charter's two agents as a rule, not as a default
    other = places[places["advisors_basis"] != "source"]
    expect = [
        max(DEFAULT.default_advisors[k] for k in kinds.split(";")) for kinds in other["kinds"]
    ]
    assert other["advisors"].tolist() == expect
    assert not other["is_cnfs"].any()
    rule = other["advisors_basis"] == "rule"
    assert (rule == other["is_france_services"]).all() and (other.loc[rule, "advisors"] == 2).all()
    assert (other["advisors_assumed"] == (other["advisors_basis"] == "default")).all()
    ids_default = {
        i.split(":", 1)[1]
        for ids in other.loc[~rule, "source_ids"]
        for i in ids.split(";")
        if i.startswith("aidants_connect:")
    }
    assert not ids_default & set(ac)


def test_cd49_files_merged_on_id(offer49, bundle):
    places, report = offer49
    ids22 = {r["ID"] for r in _raw_json(bundle, "lieux_cd49_2022")}
    ids20 = {r["ID_LieuMed"] for r in _raw_json(bundle, "lieux_cd49_2020")}
    shared = ids22 & ids20
    assert (len(shared), len(ids22 - ids20), len(ids20 - ids22)) == (181, 54, 62)
    where = _record_place(places)
    for lmn in ids22 | ids20:
        pids = {where.get(f"lieux_cd49_2022:{lmn}"), where.get(f"lieux_cd49_2020:{lmn}")} - {None}
        assert len(pids) <= 1, lmn
    for lmn in shared:  # a 2022 record exists: never rejected, both in the same place
        assert where[f"lieux_cd49_2022:{lmn}"] == where[f"lieux_cd49_2020:{lmn}"]
    # no LMN id appears in two places
    lmn_ids = [m for sids in places["source_ids"] for m in set(re.findall(r"LMN\d+", sids))]
    assert len(lmn_ids) == len(set(lmn_ids))


def test_inactive_cd49_records(offer49, bundle):
    places, report = offer49
    ids22 = {r["ID"] for r in _raw_json(bundle, "lieux_cd49_2022")}
    rej = report.rejected[report.rejected["source"] == "lieux_cd49_2020"].set_index("record_id")
    inactive = [
        r["ID_LieuMed"] for r in _raw_json(bundle, "lieux_cd49_2020") if r["AFFICHAGE"] == "INACTIF"
    ]
    assert len(inactive) == 18
    for lmn in inactive:
        if lmn in ids22:
            assert lmn not in rej.index
            assert any(lmn in w and "INACTIF" in w for w in report.warnings)
        else:
            assert "INACTIF" in rej.loc[lmn, "reason"]


def test_no_contact_data(offer49):
    places, report = offer49
    _assert_no_contacts(places)
    _assert_no_contacts(report.rejected)


def _assert_no_contacts(df):
    assert not set(df.columns) & offer.CONTACT_FIELDS
    email = re.compile(r"[\w.+-]+@[\w-]+\.[a-z]{2,}", re.I)
    phone = re.compile(r"(?:\+33\s?|\b0)[1-9](?:[ .-]?\d{2}){4}\b")
    for col in df.columns:
        if df[col].dtype == object:
            for v in df[col].dropna():
                assert not email.search(str(v)) and not phone.search(str(v)), (col, v)


def test_service_level_is_traceable(offer49, bundle):
    places, _ = offer49
    assert (places["service_basis"].str.len() > 0).all()
    helped = places["is_france_services"] | places["is_cnfs"] | places["is_aidants_connect"]
    assert (places.loc[helped, "service_level"] == "accompaniment").all()
    # the basis names the deciding record(s), which belong to the place
    for sids, basis in zip(places["source_ids"], places["service_basis"]):
        named = set(re.findall(r"\[([^\]]+)\]", basis))
        assert named and named <= set(sids.split(";")), (sids, basis)
    # independent recomputation from the raw CD49 2022 file
    where = _record_place(places)
    level = places.set_index("place_id")["service_level"]
    for r in _raw_json(bundle, "lieux_cd49_2022"):
        helps = any(
            str(r.get(c, "")).lower() == "oui"
            for c in (
                "Démarches générales",
                "Démarches spécifiques",
                "Initiation aux outils numériques",
            )
        )
        helps |= any(r.get(c) for c in r if c.startswith("JT_RH_"))
        if helps:
            assert level[where[f"lieux_cd49_2022:{r['ID']}"]] == "accompaniment", r["ID"]
    # an access place has no record saying a person helps
    raw20 = {r["ID_LieuMed"]: r for r in _raw_json(bundle, "lieux_cd49_2020")}
    raw22 = {r["ID"]: r for r in _raw_json(bundle, "lieux_cd49_2022")}
    conumm = {str(r["TYPO_UID"]): r for r in _raw_json(bundle, "conumm_angers")}
    access = places[places["service_level"] == "access"]
    assert len(access) > 0
    for sids in access["source_ids"]:
        for sid in sids.split(";"):
            src, rid = sid.split(":", 1)
            assert src in {"lieux_cd49_2022", "lieux_cd49_2020", "conumm_angers", "data_inclusion"}
            if src == "lieux_cd49_2022":
                assert not any(k.startswith("JT_RH_") for k in raw22[rid])
            if src == "lieux_cd49_2020" and raw20[rid]["AFFICHAGE"] != "INACTIF":
                assert all(raw20[rid][c] != "Oui" for c in ("DEM_Gen", "DEM_Spe", "INITIATION"))
            if src == "conumm_angers":
                assert not conumm[rid]["AIDE_DEMAT"] and not conumm[rid]["FORM_PERF"]


def test_dedup_examples_and_rule(offer49, bundle):
    places, report = offer49
    where = _record_place(places)
    # same normalised name within 150 m
    assert where["france_services:2067"] == where["lieux_cd49_2022:LMN266"]
    # data·inclusion copies of CNFS permanences are merged by id
    for r in _raw_json(bundle, "data_inclusion"):
        if r["source"] == "conseiller-numerique":
            assert (
                where[f"data_inclusion:conseiller-numerique:{r['id']}"]
                == where[f"cnfs_permanences:{r['id']}"]
            )
    # names of generic words only never match, distinct places with the same SIRET stay apart
    assert (
        offer._names_match(
            offer._name_keys("Mairie", "Angers"), offer._name_keys("Médiathèque", "Angers")
        )
        == 0
    )
    assert (
        offer._names_match(
            offer._name_keys("CS du Chemillois - France Services", "Chemillé-en-Anjou"),
            offer._name_keys("CENTRE SOCIAL DU CHEMILLOIS", "Chemillé-en-Anjou"),
        )
        == 2
    )
    assert (
        offer._names_match(
            offer._name_keys("Régie de Quartiers d'Angers - Antenne de Belle Beille", "Angers"),
            offer._name_keys("Bibliothèque municipale - Belle-Beille", "Angers"),
        )
        == 0
    )
    raw = _raw_json(bundle, "cnfs_permanences")
    sirets = pd.Series([offer.clean_siret(r["pivot"]) for r in raw]).dropna()
    multi = sirets[sirets.duplicated(keep=False)]
    assert len(multi) > 0  # one establishment, several permanences → several places
    assert places["siret"].dropna().str.fullmatch(r"\d{14}").all()
    # records merged into a place of another source lie within the dedup distance
    fs = _raw_csv(bundle, "france_services").set_index("id_fs")
    cn = {r["id"]: r for r in raw}
    geo = places.set_index("place_id").geometry
    for sid, pid in where.items():
        src, rid = sid.split(":", 1)
        if pid.split(":")[0] in {"fs", "cd49"} and src == "cnfs_permanences":
            p = _to_work(cn[rid]["longitude"], cn[rid]["latitude"], places.crs)
            assert p.distance(geo[pid]) <= DEFAULT.dedup_distance_m
        if pid.split(":")[0] == "cnfs" and src == "france_services":
            p = _to_work(
                float(fs.loc[rid, "longitude"]), float(fs.loc[rid, "latitude"]), places.crs
            )
            assert p.distance(geo[pid]) <= DEFAULT.dedup_distance_m
    assert "150 m" in report.dedup_rule and "SIRET" in report.dedup_rule
    assert report.dedup_rule == offer.DEDUP_RULE.format(d=DEFAULT.dedup_distance_m)


def test_deterministic_and_geopackage(offer49, communes49, bundle, tmp_path):
    places, report = offer49
    again, report2 = offer.places_from_sources(communes49, bundle)
    pd.testing.assert_frame_equal(pd.DataFrame(places), pd.DataFrame(again))
    pd.testing.assert_frame_equal(report.counts, report2.counts)
    for col in places.columns.drop("geometry"):
        assert not places[col].map(lambda v: isinstance(v, (list, dict, set, tuple))).any(), col
    path = tmp_path / "places.gpkg"
    places.to_file(path, layer="places", driver="GPKG")
    back = gpd.read_file(path, layer="places")
    assert list(back.columns) == list(places.columns)
    assert back["place_id"].tolist() == places["place_id"].tolist()
    for col in ("is_cnfs", "itinerant", "advisors_assumed"):
        assert back[col].dtype == bool
    assert back["advisors"].sum() == pytest.approx(places["advisors"].sum())


def test_distance_setting_is_used(communes49, bundle, offer49):
    places, _ = offer49
    tight, report = offer.places_from_sources(
        communes49, bundle, settings=DEFAULT.replace(dedup_distance_m=1.0)
    )
    assert len(tight) > len(places)


# ----------------------------------------------------------------------------- missing files


def test_missing_source_is_skipped(tmp_path, communes49, offer49):
    d = _copy_bundle(tmp_path, {"aidants_connect": None})
    places, report = offer.places_from_sources(communes49, d)
    assert report.missing_sources == ["aidants_connect"]
    assert any("aidants_connect" in w and "not found" in w for w in report.warnings)
    row = report.counts.set_index("source").loc["aidants_connect"]
    assert row["status"] == "missing" and row["read"] == 0
    assert not places["is_aidants_connect"].any()
    base = offer49[1].counts.set_index("source")
    assert (
        report.counts.set_index("source").loc["france_services", "kept"]
        == base.loc["france_services", "kept"]
    )


def test_all_sources_missing_is_an_error(tmp_path, communes49):
    keys = [k for k in offer.SOURCE_ORDER]
    d = _copy_bundle(tmp_path, {k: None for k in keys})
    with pytest.raises(DataFileError, match="no source of the existing offer"):
        offer.places_from_sources(communes49, d)


# ----------------------------------------------------------------------------- invalid files


def test_missing_columns(tmp_path, communes49):
    d = _copy_bundle(tmp_path, {"france_services": INVALID / "france_services_missing_columns.csv"})
    with pytest.raises(ValidationError) as exc:
        offer.places_from_sources(communes49, d)
    msg = str(exc.value)
    assert "liste-fs-20240801.csv" in msg
    assert "latitude" in msg and "insee_com" in msg and "format attendu" in msg


def test_swapped_coordinates_are_corrected(tmp_path, communes49, bundle):
    rid = "6299ff664bdc5506ec39de23"
    d = _copy_bundle(tmp_path, {"cnfs_permanences": INVALID / "cnfs_swapped_coordinates.json"})
    places, report = offer.places_from_sources(communes49, d)
    _check_invariants(places, report, communes49)
    assert any(rid in w and "swapped" in w for w in report.warnings)
    assert rid not in set(report.rejected["record_id"])
    true = next(r for r in _raw_json(bundle, "cnfs_permanences") if r["id"] == rid)
    pid = _record_place(places)[f"cnfs_permanences:{rid}"]
    geom = places.set_index("place_id").geometry[pid]
    assert geom.distance(_to_work(true["longitude"], true["latitude"], places.crs)) < 1.0


def test_out_of_range_without_commune_code(tmp_path, communes49):
    d = _copy_bundle(tmp_path, {"cnfs_permanences": INVALID / "cnfs_out_of_range.json"})
    places, report = offer.places_from_sources(communes49, d)
    _check_invariants(places, report, communes49)
    # no data·inclusion copy, no commune code: rejected, the reason names file, record, fields
    rid = "62b306f6dd51e705b1808120"
    row = report.rejected.set_index("record_id").loc[rid]
    assert row["source"] == "cnfs_permanences"
    for part in (
        "cnfs_permanences_conseiller-numerique",
        rid,
        "longitude/latitude",
        "out of range",
    ):
        assert part in row["reason"]
    # a data·inclusion copy with good coordinates: merged by identifier, with a warning
    rid = "6299ff664bdc5506ec39de23"
    assert rid not in set(report.rejected["record_id"])
    where = _record_place(places)
    assert where[f"cnfs_permanences:{rid}"] == where[f"data_inclusion:conseiller-numerique:{rid}"]
    assert any(
        rid in w and "out of range" in w and "merged by identifier" in w for w in report.warnings
    )
    counts = report.counts.set_index("source").loc["cnfs_permanences"]
    assert (counts["read"], counts["rejected"]) == (3, 1)


def test_out_of_range_with_commune_code_is_relocated(tmp_path, communes49):
    d = _copy_bundle(tmp_path, {"france_services": INVALID / "france_services_out_of_range.csv"})
    places, report = offer.places_from_sources(communes49, d)
    _check_invariants(places, report, communes49)
    assert report.rejected.empty or "france_services" not in set(report.rejected["source"])
    pid = _record_place(places)["france_services:280"]
    row = places.set_index("place_id").loc[pid]
    assert row["located"] == "commune" and row["insee"] == "49126"
    assert row.geometry.x == pytest.approx(communes49.loc["49126", "chef_lieu_x"])
    assert any(
        "record 280" in w and "relocated" in w and "longitude/latitude" in w
        for w in report.warnings
    )


def test_point_outside_departement(tmp_path, communes49):
    d = _copy_bundle(
        tmp_path, {"lieux_cd49_2022": INVALID / "lieux_cd49_2022_outside_departement.json"}
    )
    places, report = offer.places_from_sources(communes49, d)
    _check_invariants(places, report, communes49)
    rej = report.rejected.set_index("record_id")
    reason = rej.loc["LMN029", "reason"]
    assert "lieux-de-mediation-numerique-en-maine-et-loire_cd49_2022-12.json" in reason
    assert "Geo Point" in reason and "outside département 49" in reason
    # LMN266 has a 2020 record with good coordinates: merged by ID, not rejected
    assert "LMN266" not in rej.index
    where = _record_place(places)
    assert where["lieux_cd49_2022:LMN266"] == where["lieux_cd49_2020:LMN266"]
    assert any("LMN266" in w and "merged by identifier" in w for w in report.warnings)


def test_non_numeric_coordinates(tmp_path, communes49):
    d = _copy_bundle(tmp_path, {"lieux_cd49_2020": INVALID / "lieux_cd49_2020_non_numeric.json"})
    places, report = offer.places_from_sources(communes49, d)
    _check_invariants(places, report, communes49)
    rej = report.rejected.set_index("record_id")
    for lmn in ("LMN203", "LMN273"):
        assert rej.loc[lmn, "source"] == "lieux_cd49_2020"
        assert "not numeric" in rej.loc[lmn, "reason"] and "x/y" in rej.loc[lmn, "reason"]
    assert "lieux_cd49_2020:LMN209" in _record_place(places)  # decimal-comma Lambert-93 parsed
    counts = report.counts.set_index("source").loc["lieux_cd49_2020"]
    assert (counts["read"], counts["rejected"]) == (3, 2)


# ----------------------------------------------------------------------------- national files


def test_national_49_equals_bundle(national, offer49):
    communes = territory.communes_from_cog("49", national)
    places, report = offer.places_from_sources(communes, national)
    assert places["place_id"].tolist() == offer49[0]["place_id"].tolist()
    cols = ["source", "read", "kept", "merged", "rejected"]
    pd.testing.assert_frame_equal(report.counts[cols], offer49[1].counts[cols])
    _assert_no_contacts(places)
    # the national CD49/FS files do hold contact columns, dropped at ingest
    for key, col in (("lieux_cd49_2022", "Téléphone"), ("france_services", "mail")):
        path = national.file(key)
        head = path.read_text(encoding="utf-8")[:200_000]
        assert col in head
        assert col not in offer.READERS[key](path).columns


@pytest.mark.parametrize("dep, crs", [("2A", 2154), ("974", 2975)])
def test_other_departements(national, dep, crs):
    communes = territory.communes_from_cog(dep, national)
    places, report = offer.places_from_sources(communes, national)
    _check_invariants(places, report, communes)
    assert places.crs.to_epsg() == crs
    assert set(report.missing_sources) == {"lieux_cd49_2022", "lieux_cd49_2020", "conumm_angers"}
    counts = report.counts.set_index("source")
    assert (counts.loc[report.missing_sources, "status"] == "not applicable").all()
    fs = _raw_csv(national, "france_services")
    n_fs = int((fs["insee_dep"] == dep).sum())
    assert counts.loc["france_services", "read"] == n_fs > 0
    assert places["is_france_services"].sum() == counts.loc["france_services", "kept"]
    assert counts.loc["aidants_connect", "read"] > 0 and counts.loc["cnfs_permanences", "read"] > 0
    _assert_no_contacts(places)
