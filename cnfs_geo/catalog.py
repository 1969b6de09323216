"""Every data source cnfs_geo reads: where it comes from and where to find it.

A *data directory* has the layout of the project's raw data (``cog/``,
``communes/``, ``france_services/``, ``lieux_mediation/``, ``cnfs/``, ``fibre/``,
``socio/``) and holds national files. It is chosen, in order, by

1. the ``data_dir`` argument (``--data-dir`` on the command line);
2. the environment variable ``CNFS_GEO_DATA_DIR``;
3. the embedded Maine-et-Loire bundle ``data/49`` shipped in the repository,
   which holds the same files filtered to département 49 (built by
   :mod:`cnfs_geo.build_data`).

Each :class:`DataSource` records the file name, licence, vintage, the pinned
upstream location (repository, commit, path) and the sha256 of the national
file.

Examples
--------
>>> from cnfs_geo import catalog
>>> catalog.SOURCES["france_services"].vintage
'2024-08-01'
>>> catalog.resolve_data_dir().is_bundle
True
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ._errors import DataFileError

log = logging.getLogger(__name__)

ENV_VAR = "CNFS_GEO_DATA_DIR"
BUNDLE_DEPARTEMENT = "49"


@dataclass(frozen=True)
class DataSource:
    """One data file.

    Attributes
    ----------
    key : str
        Identifier used in code and logs.
    relpath : str
        Path inside a data directory.
    title : str
        What the file is, in French for reports.
    producer : str
        Who publishes the data.
    licence : str
    vintage : str
    repository, commit, upstream_path : str or None
        Pinned upstream location (GitHub repository, commit, path in it).
    sha256 : str or None
        Checksum of the national file (the bundle holds a filtered copy, see
        ``data/README.md``).
    """

    key: str
    relpath: str
    title: str
    producer: str
    licence: str
    vintage: str
    repository: str | None = None
    commit: str | None = None
    upstream_path: str | None = None
    sha256: str | None = None

    @property
    def url(self) -> str | None:
        """Pinned download URL of the national file, when it comes from a repository."""
        if self.repository and self.commit and self.upstream_path:
            return (f"https://raw.githubusercontent.com/{self.repository}/{self.commit}/"
                    f"{self.upstream_path}")
        return None


_MEDNUM = "anct-cartographie-nationale/mednum-cli"
_STACK = "inclusion-numerique/stack"

SOURCES: dict[str, DataSource] = {s.key: s for s in [
    DataSource("cog_communes", "cog/communes.json",
               "Code officiel géographique 2026 : communes et populations légales",
               "INSEE / Etalab (@etalab/decoupage-administratif 6.0.0)", "Licence Ouverte",
               "COG 2026", sha256="6cafec09b4e127d08edc47f366b28261bee70cca323fbfcb957dd169fcad9284"),
    DataSource("cog_epci", "cog/epci.json", "EPCI à fiscalité propre 2026 et leurs membres",
               "DGCL / Etalab (@etalab/decoupage-administratif 6.0.0)", "Licence Ouverte",
               "COG 2026", sha256="40758ace686311837c484da81c2a8ba00a9f356bc6210f3316c6b19daa4dc967"),
    DataSource("cog_departements", "cog/departements.json", "Départements 2026",
               "INSEE / Etalab (@etalab/decoupage-administratif 6.0.0)", "Licence Ouverte",
               "COG 2026", sha256="1ebe7e0ad0a49653c899087194344ec67f7115b728c4e1b98f741bd655b545e0"),
    DataSource("communes_2018_archive",
               "communes/france-geojson_departements_communes_adminexpress-cog2018.tar.gz",
               "Contours des communes (ADMIN EXPRESS COG 2018, simplifiés)",
               "IGN / gregoiredavid/france-geojson", "Licence Ouverte", "COG 2018",
               "gregoiredavid/france-geojson", "5d34ee6d0140c29f785fdb047d9329f1aab58833", None,
               "ab15eba380ce859846950678e9518bd9c249b56d4ae38bd0f38a60cb5b5188ae"),
    DataSource("communes_2018_49",
               "communes/communes-49-maine-et-loire_adminexpress-cog2018.geojson",
               "Contours des communes de Maine-et-Loire (ADMIN EXPRESS COG 2018, simplifiés)",
               "IGN / gregoiredavid/france-geojson", "Licence Ouverte", "COG 2018",
               "gregoiredavid/france-geojson", "5d34ee6d0140c29f785fdb047d9329f1aab58833",
               "departements/49-maine-et-loire/communes-49-maine-et-loire.geojson",
               "bc2107893277225db9f030b4232e411144c40f2db074acaa639b85d0d146bd70"),
    DataSource("france_services", "france_services/liste-fs-20240801.csv",
               "Liste des structures France services", "ANCT", "Licence Ouverte 2.0", "2024-08-01",
               "anct-carto/france_services", "e1016fd717a8c9cc53406621959c837fb74fc0c9",
               "data/liste-fs-20240801.csv",
               "6eabcb0792c8681af513e65560a7dea08e15d3e72b070a14ca1fed032164efad"),
    DataSource("lieux_cd49_2022",
               "lieux_mediation/lieux-de-mediation-numerique-en-maine-et-loire_cd49_2022-12.json",
               "Lieux de médiation numérique en Maine-et-Loire (export 2022-12)",
               "Département de Maine-et-Loire", "Licence Ouverte 2.0", "2022-12",
               _MEDNUM, "716e56f4989a773359d896894dc7c3c6332f2101",
               "assets/input/lieux-de-mediation-numerique-en-maine-et-loire.json",
               "f0b7feb557f3760434888b5cb3f165f1d56b05197ce2874e69b71ceb2291f6e4"),
    DataSource("lieux_cd49_2020",
               "lieux_mediation/maine-et-loire_lieux-mediation-numerique_cd49_source-2020-2021_lambert93.json",
               "Lieux de médiation numérique en Maine-et-Loire (source 2020-2021, Lambert-93)",
               "Département de Maine-et-Loire", "Licence Ouverte 2.0", "2020-2023",
               _MEDNUM, "3c0da255b25b6091867b6f698ec2f4e072dcf04b",
               "assets/input/maine-et-loire/maine-et-loire.json",
               "0949460e27dda4441ebde034c27c3be83985059658f40492ac8c1f67c585580d"),
    DataSource("conumm_angers",
               "lieux_mediation/conumm_angers_guide-services-numeriques_2022-09.json",
               "Guide des services numériques d'Angers (CONUMM)", "Ville d'Angers / CONUMM",
               "non précisée (page publique de la Ville d'Angers)", "2022-09",
               _MEDNUM, "024543952ff12ab996d2977e05bfe0254074ffa5",
               "assets/input/conumm/conumm.json",
               "3eda232ad996cbc163c59ad4413732cf0aafb8643b20bcc72917b0cc1eec7c33"),
    DataSource("data_inclusion",
               "lieux_mediation/data-inclusion_lieux-mediation-numerique_2023-02_sanitized.json",
               "data·inclusion : lieux de médiation numérique (contacts retirés)",
               "data·inclusion / ANCT", "non précisée", "2023-02",
               _MEDNUM, "5c7c8a2adb6e982011017da01989d106f8b33205",
               "assets/input/data-inclusion/data-inclusion.json",
               None),  # the stored file is sanitized: upstream checksum does not apply
    DataSource("aidants_connect",
               "lieux_mediation/aidants-connect_structures_2024-02-12.csv",
               "Structures habilitées Aidants Connect", "ANCT (Aidants Connect)",
               "non précisée", "2024-02-12",
               _STACK, "8cb7b0e7a627793bf9ee10deb71c292b310e6f20",
               "apps/web/public/data/20240212-aidants_connect_structures.csv",
               "260f1acd4a67161cdd214b124bf2b8a0c83f6f67bbb38dc3c6124b6386a4fa2f"),
    DataSource("cnfs_permanences",
               "cnfs/cnfs_permanences_conseiller-numerique_2022-12-02_sanitized.json",
               "Permanences des conseillers numériques France Services (contacts retirés)",
               "ANCT (conseiller-numerique.gouv.fr)", "non précisée", "2022-12-02",
               _MEDNUM, "8098cc4a19a42b6acfd15b1345d5d3b99039b64b", "assets/input/cnfs.json",
               None),  # sanitized copy: upstream checksum does not apply
    DataSource("fibre",
               "fibre/arcep_ma-connexion-internet_techno_commune_2024_via-carte-fibre-france.csv",
               "Éligibilité par technologie et par commune (Ma connexion internet)",
               "ARCEP (via ThibautNguyen/carte-fibre-france)", "Licence Ouverte 2.0", "2024",
               "ThibautNguyen/carte-fibre-france", "b553ecded1b1b30f788806b5587c1dfbb5f12830",
               "data/fibre_data.csv",
               "7d8fa5e78d591ab7ba7351e97afb2d81dbb48404376cfc68833e752107f71d44"),
    DataSource("ifn_communes", "socio/ifn_indice-fragilite-numerique_communes_anct_2023.csv",
               "Indice de fragilité numérique par commune (scores 0–10)", "La MedNum / ANCT",
               "non précisée", "2023", _STACK, "c24834a37a3fa2d21a4401bb5de2ae0e0b3f2108",
               "apps/web/public/data/ifn-city-all-variation.csv",
               "6eeddf3c1a6a6be522e15480891e0459e64ed6197e8c9a042c034dd38124d5ac"),
    DataSource("datasfun_communes", "socio/datasfun_communes_cog2024_pop2021_chomage2021.csv",
               "Communes : chef-lieu (lat/lng), superficie, population 2021",
               "INSEE / La Poste via rcarlier/datas.fun", "Licence Ouverte (données INSEE)",
               "COG 2024, RP 2021", "rcarlier/datas.fun",
               "b9874080432e11b943e93aeae75ee372a024697b", "France/communes.csv",
               "2c2676845aa41545ea8b4420e6d3bebb818146d0f657ebb938cb4375751f1b65"),
]}


@dataclass(frozen=True)
class DataDir:
    """A resolved data directory.

    Attributes
    ----------
    path : Path
    is_bundle : bool
        True for the embedded Maine-et-Loire bundle (département 49 only).
    origin : str
        How it was chosen: ``"argument"``, ``"environment"`` or ``"bundle"``.
    """

    path: Path
    is_bundle: bool
    origin: str

    def file(self, key: str, *, required: bool = True) -> Path | None:
        """Path of source ``key`` in this directory; DataFileError if missing and required."""
        src = SOURCES[key]
        p = self.path / src.relpath
        if p.is_file():
            return p
        if not required:
            return None
        raise DataFileError(missing_files_message([key], self))


def bundle_dir() -> Path:
    """Folder of the embedded Maine-et-Loire bundle (``data/49`` in the repository)."""
    return Path(__file__).resolve().parent.parent / "data" / BUNDLE_DEPARTEMENT


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> DataDir:
    """Choose the data directory (argument, then ``CNFS_GEO_DATA_DIR``, then the bundle)."""
    if data_dir is not None:
        origin, path = "argument", Path(data_dir)
    elif os.environ.get(ENV_VAR):
        origin, path = "environment", Path(os.environ[ENV_VAR])
    else:
        origin, path = "bundle", bundle_dir()
    path = path.expanduser()
    if not path.is_dir():
        where = {"argument": "--data-dir / data_dir", "environment": f"${ENV_VAR}",
                 "bundle": "the embedded bundle"}[origin]
        fix = ("run `python -m cnfs_geo.build_data RAW_DIR` to rebuild it from the raw files"
               if origin == "bundle" else "give the folder that holds cog/, communes/, …")
        raise DataFileError(f"data directory {path} (from {where}) does not exist: {fix}")
    return DataDir(path=path.resolve(), is_bundle=(origin == "bundle"), origin=origin)


def missing_files_message(keys: list[str], data_dir: DataDir) -> str:
    """Error text listing missing files with their upstream location and how to provide them."""
    lines = [f"missing data file(s) in {data_dir.path}:"]
    for key in keys:
        src = SOURCES[key]
        where = src.url or src.producer
        lines.append(f"  - {src.relpath}  ({src.title}, {src.vintage}; from {where})")
    lines.append(
        "Fix: point --data-dir (or the environment variable "
        f"{ENV_VAR}) at a folder holding these national files with this layout.")
    return "\n".join(lines)


def provenance(keys: list[str] | None = None) -> list[dict[str, str | None]]:
    """Provenance records (for reports): title, producer, licence, vintage, URL."""
    keys = list(SOURCES) if keys is None else keys
    return [{"key": k, "title": SOURCES[k].title, "producer": SOURCES[k].producer,
             "licence": SOURCES[k].licence, "vintage": SOURCES[k].vintage,
             "file": SOURCES[k].relpath, "url": SOURCES[k].url} for k in keys]
