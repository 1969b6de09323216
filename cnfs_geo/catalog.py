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

import hashlib
import http.client
import json
import logging
import os
import string
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload

from ._errors import DataFileError, ValidationError

if TYPE_CHECKING:
    import pandas as pd

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
            return (
                f"https://raw.githubusercontent.com/{self.repository}/{self.commit}/"
                f"{self.upstream_path}"
            )
        return None


_MEDNUM = "anct-cartographie-nationale/mednum-cli"
_STACK = "inclusion-numerique/stack"

SOURCES: dict[str, DataSource] = {
    s.key: s
    for s in [
        DataSource(
            "cog_communes",
            "cog/communes.json",
            "Code officiel géographique 2026 : communes et populations légales",
            "INSEE / Etalab (@etalab/decoupage-administratif 6.0.0)",
            "Licence Ouverte",
            "COG 2026",
            sha256="6cafec09b4e127d08edc47f366b28261bee70cca323fbfcb957dd169fcad9284",
        ),
        DataSource(
            "cog_epci",
            "cog/epci.json",
            "EPCI à fiscalité propre 2026 et leurs membres",
            "DGCL / Etalab (@etalab/decoupage-administratif 6.0.0)",
            "Licence Ouverte",
            "COG 2026",
            sha256="40758ace686311837c484da81c2a8ba00a9f356bc6210f3316c6b19daa4dc967",
        ),
        DataSource(
            "cog_departements",
            "cog/departements.json",
            "Départements 2026",
            "INSEE / Etalab (@etalab/decoupage-administratif 6.0.0)",
            "Licence Ouverte",
            "COG 2026",
            sha256="1ebe7e0ad0a49653c899087194344ec67f7115b728c4e1b98f741bd655b545e0",
        ),
        DataSource(
            "communes_2018_archive",
            "communes/france-geojson_departements_communes_adminexpress-cog2018.tar.gz",
            "Contours des communes (ADMIN EXPRESS COG 2018, simplifiés)",
            "IGN / gregoiredavid/france-geojson",
            "Licence Ouverte",
            "COG 2018",
            "gregoiredavid/france-geojson",
            "5d34ee6d0140c29f785fdb047d9329f1aab58833",
            None,
            "ab15eba380ce859846950678e9518bd9c249b56d4ae38bd0f38a60cb5b5188ae",
        ),
        DataSource(
            "communes_2018_49",
            "communes/communes-49-maine-et-loire_adminexpress-cog2018.geojson",
            "Contours des communes de Maine-et-Loire (ADMIN EXPRESS COG 2018, simplifiés)",
            "IGN / gregoiredavid/france-geojson",
            "Licence Ouverte",
            "COG 2018",
            "gregoiredavid/france-geojson",
            "5d34ee6d0140c29f785fdb047d9329f1aab58833",
            "departements/49-maine-et-loire/communes-49-maine-et-loire.geojson",
            "bc2107893277225db9f030b4232e411144c40f2db074acaa639b85d0d146bd70",
        ),
        DataSource(
            "france_services",
            "france_services/liste-fs-20240801.csv",
            "Liste des structures France services",
            "ANCT",
            "Licence Ouverte 2.0",
            "2024-08-01",
            "anct-carto/france_services",
            "e1016fd717a8c9cc53406621959c837fb74fc0c9",
            "data/liste-fs-20240801.csv",
            "6eabcb0792c8681af513e65560a7dea08e15d3e72b070a14ca1fed032164efad",
        ),
        DataSource(
            "lieux_cd49_2022",
            "lieux_mediation/lieux-de-mediation-numerique-en-maine-et-loire_cd49_2022-12.json",
            "Lieux de médiation numérique en Maine-et-Loire (export 2022-12)",
            "Département de Maine-et-Loire",
            "Licence Ouverte 2.0",
            "2022-12",
            _MEDNUM,
            "716e56f4989a773359d896894dc7c3c6332f2101",
            "assets/input/lieux-de-mediation-numerique-en-maine-et-loire.json",
            "f0b7feb557f3760434888b5cb3f165f1d56b05197ce2874e69b71ceb2291f6e4",
        ),
        DataSource(
            "lieux_cd49_2020",
            "lieux_mediation/maine-et-loire_lieux-mediation-numerique_cd49_source-2020-2021_lambert93.json",
            "Lieux de médiation numérique en Maine-et-Loire (source 2020-2021, Lambert-93)",
            "Département de Maine-et-Loire",
            "Licence Ouverte 2.0",
            "2020-2023",
            _MEDNUM,
            "3c0da255b25b6091867b6f698ec2f4e072dcf04b",
            "assets/input/maine-et-loire/maine-et-loire.json",
            "0949460e27dda4441ebde034c27c3be83985059658f40492ac8c1f67c585580d",
        ),
        DataSource(
            "conumm_angers",
            "lieux_mediation/conumm_angers_guide-services-numeriques_2022-09.json",
            "Guide des services numériques d'Angers (CONUMM)",
            "Ville d'Angers / CONUMM",
            "non précisée (page publique de la Ville d'Angers)",
            "2022-09",
            _MEDNUM,
            "024543952ff12ab996d2977e05bfe0254074ffa5",
            "assets/input/conumm/conumm.json",
            "3eda232ad996cbc163c59ad4413732cf0aafb8643b20bcc72917b0cc1eec7c33",
        ),
        DataSource(
            "data_inclusion",
            "lieux_mediation/data-inclusion_lieux-mediation-numerique_2023-02_sanitized.json",
            "data·inclusion : lieux de médiation numérique (contacts retirés)",
            "data·inclusion / ANCT",
            "non précisée",
            "2023-02",
            _MEDNUM,
            "5c7c8a2adb6e982011017da01989d106f8b33205",
            "assets/input/data-inclusion/data-inclusion.json",
            # sha256 of the sanitized copy (courriel, telephone removed), not of the
            # upstream blob: fetch() does not download this one from upstream
            "3544f307a8b721a17738ff526695d9fe3f9df2a1f49987b552971f20db6c2b6c",
        ),
        DataSource(
            "aidants_connect",
            "lieux_mediation/aidants-connect_structures_2024-02-12.csv",
            "Structures habilitées Aidants Connect",
            "ANCT (Aidants Connect)",
            "non précisée",
            "2024-02-12",
            _STACK,
            "8cb7b0e7a627793bf9ee10deb71c292b310e6f20",
            "apps/web/public/data/20240212-aidants_connect_structures.csv",
            "260f1acd4a67161cdd214b124bf2b8a0c83f6f67bbb38dc3c6124b6386a4fa2f",
        ),
        DataSource(
            "cnfs_permanences",
            "cnfs/cnfs_permanences_conseiller-numerique_2022-12-02_sanitized.json",
            "Permanences des conseillers numériques France Services (contacts retirés)",
            "ANCT (conseiller-numerique.gouv.fr)",
            "non précisée",
            "2022-12-02",
            _MEDNUM,
            "8098cc4a19a42b6acfd15b1345d5d3b99039b64b",
            "assets/input/cnfs.json",
            # sha256 of the sanitized copy (aidants → nb_aidants, contacts removed), not of
            # the upstream blob: fetch() does not download this one from upstream
            "97a0566d912ffeea14550ffcda150b262712a96c5882787a656a64fd5646d2de",
        ),
        DataSource(
            "fibre",
            "fibre/arcep_ma-connexion-internet_techno_commune_2024_via-carte-fibre-france.csv",
            "Éligibilité par technologie et par commune (Ma connexion internet)",
            "ARCEP (via ThibautNguyen/carte-fibre-france)",
            "Licence Ouverte 2.0",
            "2024",
            "ThibautNguyen/carte-fibre-france",
            "b553ecded1b1b30f788806b5587c1dfbb5f12830",
            "data/fibre_data.csv",
            "7d8fa5e78d591ab7ba7351e97afb2d81dbb48404376cfc68833e752107f71d44",
        ),
        DataSource(
            "ifn_communes",
            "socio/ifn_indice-fragilite-numerique_communes_anct_2023.csv",
            "Indice de fragilité numérique par commune (scores 0–10)",
            "La MedNum / ANCT",
            "non précisée",
            "2023",
            _STACK,
            "c24834a37a3fa2d21a4401bb5de2ae0e0b3f2108",
            "apps/web/public/data/ifn-city-all-variation.csv",
            "6eeddf3c1a6a6be522e15480891e0459e64ed6197e8c9a042c034dd38124d5ac",
        ),
        DataSource(
            "datasfun_communes",
            "socio/datasfun_communes_cog2024_pop2021_chomage2021.csv",
            "Communes : chef-lieu (lat/lng), superficie, population 2021",
            "INSEE / La Poste via rcarlier/datas.fun",
            "Licence Ouverte (données INSEE)",
            "COG 2024, RP 2021",
            "rcarlier/datas.fun",
            "b9874080432e11b943e93aeae75ee372a024697b",
            "France/communes.csv",
            "2c2676845aa41545ea8b4420e6d3bebb818146d0f657ebb938cb4375751f1b65",
        ),
        # IRIS file: one per département upstream (dept_list/<code>.csv); only 49 is catalogued.
        # No header row: the column names are in the headers file below.
        DataSource(
            "mednum_iris_49",
            "socio/mednum_indice-fragilite-numerique_iris_dep49_2020.csv",
            "Indice de fragilité numérique par IRIS, Maine-et-Loire (contours IRIS, "
            "population 2016)",
            "La MedNum (via team-48/inr-indice-fragilite)",
            "non précisée (données ouvertes La MedNum, à vérifier)",
            "2020 (INSEE RP 2016, Filosofi 2015)",
            "team-48/inr-indice-fragilite",
            "4d86e8dedee8d0f07461d484f2240addc4431afd",
            "infrastructure/cities/data/dept_list/49.csv",
            "c3a163b46e7266cf3ddcd5158b4cb049a7c0298392bf19f56f4691a3124be2d9",
        ),
        # headers.csv beside the per-département files (blob 396d803a; the repository's own
        # parser opens infrastructure/cities/data/dept_list/headers.csv).
        DataSource(
            "mednum_iris_headers",
            "socio/mednum_indice-fragilite-numerique_iris_headers.csv",
            "Noms des 152 colonnes des fichiers IRIS de l'indice de fragilité numérique",
            "La MedNum (via team-48/inr-indice-fragilite)",
            "non précisée (données ouvertes La MedNum, à vérifier)",
            "2020",
            "team-48/inr-indice-fragilite",
            "4d86e8dedee8d0f07461d484f2240addc4431afd",
            "infrastructure/cities/data/dept_list/headers.csv",
            "e0f0a026b8c7a34e153cf65e88f3f841d44f1b37579e1bd3a91f577c3ac830ac",
        ),
    ]
}


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

    @overload
    def file(self, key: str, *, required: Literal[True] = True) -> Path: ...
    @overload
    def file(self, key: str, *, required: bool) -> Path | None: ...
    def file(self, key: str, *, required: bool = True) -> Path | None:
        """Path of source ``key`` in this directory; DataFileError if missing and required.

        A directory filled by ``cnfs-geo data fetch`` names its files in its lock file
        (:data:`LOCK_NAME`); a key the lock lists is read from there, others from the
        catalog's ``relpath``.
        """
        entry = read_lock(self.path).get("files", {}).get(key)
        if isinstance(entry, dict) and entry.get("file"):
            p = self.path / entry["file"]
        elif key in SOURCES:
            p = self.path / SOURCES[key].relpath
        else:
            p = None
        if p is not None and p.is_file():
            return p
        if not required:
            return None
        raise DataFileError(missing_files_message([key], self))


def bundle_dir() -> Path:
    """Folder of the embedded Maine-et-Loire bundle (``data/49`` in the repository).

    An installed wheel carries it as ``cnfs_geo/_bundle49`` (pyproject's package-dir mapping).
    """
    here = Path(__file__).resolve().parent
    installed = here / f"_bundle{BUNDLE_DEPARTEMENT}"
    if installed.is_dir():
        return installed
    return here.parent / "data" / BUNDLE_DEPARTEMENT


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
        where = {
            "argument": "--data-dir / data_dir",
            "environment": f"${ENV_VAR}",
            "bundle": "jeu de Maine-et-Loire fourni avec le logiciel",
        }[origin]
        fix = (
            "reconstruire le jeu avec `python -m cnfs_geo.build_data RAW_DIR`"
            if origin == "bundle"
            else "donner le dossier qui contient cog/, communes/, … (cnfs-geo data fetch "
            "le remplit)"
        )
        raise DataFileError(
            f"le dossier de données {path} ({where}) n'existe pas ; correction : {fix}"
        )
    return DataDir(path=path.resolve(), is_bundle=(origin == "bundle"), origin=origin)


def missing_files_message(keys: list[str], data_dir: DataDir) -> str:
    """Error text listing missing files with their upstream location and how to provide them."""
    from . import _fr

    lines = [_fr.data_missing_files(str(data_dir.path), len(keys))]
    for key in keys:
        src = SOURCES.get(key)
        if src is None:
            lines.append(f"  - {key}")
            continue
        where = src.url or src.producer
        lines.append(f"  - {src.relpath}  ({src.title}, {src.vintage} ; {where})")
    lines.append(_fr.data_fetch_hint("D", str(data_dir.path)))
    return "\n".join(lines)


def provenance(keys: list[str] | None = None) -> list[dict[str, str | None]]:
    """Provenance records (for reports): title, producer, licence, vintage, URL."""
    keys = list(SOURCES) if keys is None else keys
    return [
        {
            "key": k,
            "title": SOURCES[k].title,
            "producer": SOURCES[k].producer,
            "licence": SOURCES[k].licence,
            "vintage": SOURCES[k].vintage,
            "file": SOURCES[k].relpath,
            "url": SOURCES[k].url,
        }
        for k in keys
    ]


# ---------------------------------------------------------------------------
# Fetching national files into a cache, and checking a data directory
# ---------------------------------------------------------------------------

CACHE_ENV_VAR = "CNFS_GEO_CACHE_DIR"
_CHUNK = 1 << 16

# Sources whose upstream file is NOT the file stored in a data directory: the stored
# copy is sanitized (personal contacts removed), so downloading upstream would bring
# those contacts back and never match the catalog's sha256. They are fetched only
# from a mirror of a data directory (``base_urls`` with ``{relpath}``/``{key}``, or a
# per-key URL), otherwise reported as manual.
_UPSTREAM_DIFFERS = {
    "data_inclusion": (
        "the upstream file holds e-mails and phone numbers; the stored copy "
        "drops the fields `courriel` and `telephone` of every record"
    ),
    "cnfs_permanences": (
        "the upstream file holds the advisors' names, e-mails and phones; "
        "the stored copy replaces `aidants` by `nb_aidants` (number of "
        "advisors listed) and drops `courriel` and `telephone`"
    ),
}

_NPM_COG = "@etalab/decoupage-administratif@6.0.0"


def _manual_steps(key: str, src: DataSource, dest: Path) -> str:
    """How to put the file of a source that cannot be downloaded as-is at ``dest``."""
    if src.relpath.startswith("cog/"):
        return (
            f"npm pack {_NPM_COG}   # writes etalab-decoupage-administratif-6.0.0.tgz\n"
            "tar -xzf etalab-decoupage-administratif-6.0.0.tgz   # unpacks into package/\n"
            f'mkdir -p "{dest.parent}"\n'
            f'cp package/data/*.json "{dest.parent}/"   # communes.json, epci.json, '
            "departements.json, …"
        )
    if key == "communes_2018_archive":
        return (
            "git clone https://github.com/gregoiredavid/france-geojson.git\n"
            f"git -C france-geojson checkout {src.commit}\n"
            f'mkdir -p "{dest.parent}"\n'
            f'(cd france-geojson && tar -czf "{dest}" departements/*/communes-*.geojson)\n'
            "# a re-made archive has the same members but not the catalog's sha256 "
            "(tar/gzip metadata): the data check reports that mismatch, the members are "
            "what cnfs_geo reads"
        )
    if key in _UPSTREAM_DIFFERS:
        return (
            f"{_UPSTREAM_DIFFERS[key]}.\n"
            f'Copy the sanitized file of the project\'s raw data set to "{dest}",\n'
            f"or download {src.url} and remove those fields yourself, saving the result "
            f'as "{dest}" (its sha256 will then differ from the catalog\'s).'
        )
    where = src.url or src.producer
    return f'download it from {where} and save it as "{dest}"'


def default_cache_dir() -> Path:
    """Folder where :func:`fetch` puts national files by default.

    ``$CNFS_GEO_CACHE_DIR`` when set; otherwise the platform's user cache folder:
    ``$XDG_CACHE_HOME/cnfs_geo`` (default ``~/.cache/cnfs_geo``) on Linux and other
    Unix systems, ``~/Library/Caches/cnfs_geo`` on macOS,
    ``%LOCALAPPDATA%\\cnfs_geo\\Cache`` on Windows.
    """
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
        return (Path(base) if base else Path.home() / "AppData" / "Local") / "cnfs_geo" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "cnfs_geo"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base_dir = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base_dir / "cnfs_geo"


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def source_url(
    key: str,
    *,
    base_urls: Mapping[str, str] | str | None = None,
    sources: Mapping[str, DataSource] | None = None,
) -> tuple[str | None, bool]:
    """Download address of source ``key`` and whether :func:`fetch` may use it.

    Parameters
    ----------
    key : str
        Source key (see :data:`SOURCES`).
    base_urls : mapping or str, optional
        * mapping ``key → URL``: that exact URL, serving the file as stored in a
          data directory, for the keys it holds; other keys use their pinned
          upstream URL;
        * a string with placeholders ``{relpath}``, ``{key}``, ``{repository}``,
          ``{commit}``, ``{path}`` (upstream path): formatted per source, e.g.
          ``"http://mirror.example/cnfs/{relpath}"`` for a mirror laid out like a
          data directory (``file://`` URLs work too);
        * a string without placeholder: replaces the
          ``https://raw.githubusercontent.com/<repository>/<commit>`` prefix, the
          upstream path is appended (``<base>/<upstream_path>``).
    sources : mapping, optional
        Catalog to use instead of :data:`SOURCES`.

    Returns
    -------
    (url, usable) : tuple of (str or None, bool)
        ``url`` is None when the source has no download address (COG from npm,
        2018 polygon archive). ``usable`` is False when there is no URL, or when the
        URL points at the upstream file of a sanitized source (it holds personal
        contacts and differs from the stored copy); :func:`fetch` then treats the
        source as manual.
    """
    sources = SOURCES if sources is None else sources
    src = sources[key]
    url: str | None
    if isinstance(base_urls, str):
        fields = {f for _, f, _, _ in string.Formatter().parse(base_urls) if f is not None}
        unknown = fields - {"relpath", "key", "repository", "commit", "path"}
        if unknown:
            raise ValidationError(
                "base_urls",
                [
                    f"unknown placeholder(s) {sorted(unknown)} in {base_urls!r}; use {{relpath}}, "
                    "{key}, {repository}, {commit} or {path}"
                ],
            )
        values = {
            "relpath": src.relpath,
            "key": src.key,
            "repository": src.repository,
            "commit": src.commit,
            "path": src.upstream_path,
        }
        if fields:
            if any(values[f] is None for f in fields):
                return None, False
            url = base_urls.format(**values)
            from_upstream = not fields & {"relpath", "key"}
        elif src.upstream_path and src.repository and src.commit:
            url, from_upstream = f"{base_urls.rstrip('/')}/{src.upstream_path}", True
        else:
            return None, False
    elif base_urls is not None and key in base_urls:
        url, from_upstream = base_urls[key], False
    else:
        url, from_upstream = src.url, True
    if url is None:
        return None, False
    return url, not (from_upstream and key in _UPSTREAM_DIFFERS)


def _download(
    key: str,
    url: str,
    dest: Path,
    expected: str | None,
    *,
    timeout: float,
    opener: urllib.request.OpenerDirector,
) -> tuple[str, int]:
    """Download ``url`` to ``dest`` atomically; return (sha256, size). Raise DataFileError."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    fix_manual = f"or download the file by hand and save it as {dest}"
    try:
        h = hashlib.sha256()
        size = 0
        start = time.monotonic()
        req = urllib.request.Request(url, headers={"User-Agent": "cnfs_geo (python urllib)"})
        try:
            with os.fdopen(fd, "wb") as out, opener.open(req, timeout=timeout) as resp:
                declared = resp.headers.get("Content-Length")
                declared = int(declared) if declared and declared.isdigit() else None
                log.info(
                    "%s: downloading %s (%s) → %s",
                    key,
                    url,
                    f"{declared / 1e6:.1f} MB" if declared else "size unknown",
                    dest,
                )
                next_report = 10_000_000
                while True:
                    chunk = resp.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
                    if size >= next_report:
                        log.info("%s: %.0f MB received", key, size / 1e6)
                        next_report += 10_000_000
                out.flush()
                os.fsync(out.fileno())
        except urllib.error.HTTPError as exc:
            hint = (
                "the file is not at this address (pinned commit or path gone, or the "
                "mirror given by base_urls lacks it)"
                if exc.code == 404
                else "the server refused or failed the request"
            )
            raise DataFileError(
                f"{key}: HTTP {exc.code} {exc.reason} for {url}: {hint}. Nothing was written "
                f"to {dest}. Fix: check the address (catalog entry or base_urls), {fix_manual}."
            ) from exc
        except urllib.error.URLError as exc:
            reason = exc.reason
            raise DataFileError(
                f"{key}: cannot download {url}: {reason}. Nothing was written to {dest}. "
                "Fix: check the network connection and proxy settings (https_proxy), the "
                f"host of base_urls if you gave one, {fix_manual}."
            ) from exc
        except TimeoutError as exc:
            raise DataFileError(
                f"{key}: download of {url} timed out after {timeout} s ({size} bytes "
                f"received). Nothing was written to {dest}. Fix: retry with a larger "
                f"timeout, {fix_manual}."
            ) from exc
        except (http.client.HTTPException, ConnectionError) as exc:
            raise DataFileError(
                f"{key}: download of {url} was interrupted after {size} bytes "
                f"({type(exc).__name__}: {exc}). Nothing was written to {dest}. Fix: retry, "
                f"{fix_manual}."
            ) from exc
        if declared is not None and size != declared:
            raise DataFileError(
                f"{key}: download of {url} is incomplete: received {size} of {declared} "
                f"bytes (Content-Length). Nothing was written to {dest}. Fix: retry; if it "
                f"persists check the network or proxy, {fix_manual}."
            )
        actual = h.hexdigest()
        if expected is not None and actual != expected.lower():
            raise DataFileError(
                f"{key}: checksum mismatch for {url}\n"
                f"  expected sha256 {expected.lower()}\n"
                f"  actual   sha256 {actual} ({size} bytes)\n"
                f"Nothing was written to {dest}. Fix: retry the download; if the mismatch "
                "persists the server holds another version of the file (moved upstream "
                "file or wrong mirror): check the URL against the catalog's pinned commit, "
                f"{fix_manual} after checking it."
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
        log.info(
            "%s: %d bytes in %.1f s, sha256 %s%s",
            key,
            size,
            time.monotonic() - start,
            actual[:12],
            " (verified)" if expected else " (no checksum in catalog)",
        )
        return actual, size
    finally:
        if tmp.exists():
            tmp.unlink()


def fetch(
    keys: list[str] | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    base_urls: Mapping[str, str] | str | None = None,
    force: bool = False,
    timeout: float = 60,
    sources: Mapping[str, DataSource] | None = None,
) -> dict[str, Path]:
    """Download national data files into a cache usable as a data directory.

    Each file lands at ``<cache_dir>/<relpath>``, so ``resolve_data_dir(cache_dir)``
    (``--data-dir``) reads it. A download goes to a temporary file in the same
    folder, is checked (complete against ``Content-Length``, sha256 against the
    catalog when it has one) and only then moved into place with
    :func:`os.replace`: a failed, truncated or corrupted download leaves the
    destination as it was and no temporary file. A file already present with the
    catalog's sha256 is not downloaded again unless ``force``; one with another
    sha256 is downloaded again.

    Sources without a download address (the COG, which comes from an npm package;
    the 2018 polygon archive, built from a repository) and sanitized sources (whose
    upstream file holds personal contacts) are *manual*: they are not downloaded,
    and when missing a warning gives the exact steps (see
    :func:`manual_instructions`).

    Parameters
    ----------
    keys : list of str, optional
        Sources to fetch (default: every source of the catalog).
    cache_dir : path, optional
        Default :func:`default_cache_dir` (``$CNFS_GEO_CACHE_DIR`` or the user cache).
    base_urls : mapping or str, optional
        Mirror or test server; see :func:`source_url`. With a string holding
        ``{relpath}`` (a mirror laid out like a data directory), manual and
        sanitized sources are downloaded from it too.
    force : bool
        Download again even when the file is present and verified.
    timeout : float
        Seconds allowed for connecting and for each read.
    sources : mapping of key → DataSource, optional
        Catalog to use instead of :data:`SOURCES` (tests, other vintages).

    Returns
    -------
    dict of str → Path
        Every requested source present in the cache after the call (downloaded,
        already there, or put there by hand), in the order of ``keys``. Requested
        manual sources still missing are absent from it.

    Raises
    ------
    ValidationError
        Unknown key in ``keys`` or ``base_urls``.
    DataFileError
        One or more downloads failed (HTTP error, connection refused, timeout,
        truncated file, checksum mismatch). Every source is attempted first; the
        message lists each failure with its key, URL and fix; the exception's
        ``failures`` (key → message) and ``fetched`` (key → Path) attributes hold the
        details.

    Examples
    --------
    >>> from cnfs_geo import catalog
    >>> paths = catalog.fetch(["fibre", "ifn_communes"])          # doctest: +SKIP
    >>> catalog.resolve_data_dir(catalog.default_cache_dir())     # doctest: +SKIP
    """
    sources = SOURCES if sources is None else sources
    keys = list(sources) if keys is None else list(keys)
    problems = [f"unknown source {k!r} in keys" for k in keys if k not in sources]
    if base_urls is not None and not isinstance(base_urls, str):
        problems += [f"unknown source {k!r} in base_urls" for k in base_urls if k not in sources]
    if problems:
        raise ValidationError(
            "fetch", [p + f"; known sources: {', '.join(sources)}" for p in problems]
        )
    cache = Path(default_cache_dir() if cache_dir is None else cache_dir).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    # a fresh opener per call reads the proxy environment variables now
    opener = urllib.request.build_opener()

    fetched: dict[str, Path] = {}
    failures: dict[str, str] = {}
    manual: list[str] = []
    n_down = n_kept = 0
    for key in keys:
        src = sources[key]
        dest = cache / src.relpath
        url, usable = source_url(key, base_urls=base_urls, sources=sources)
        present = dest.is_file()
        if not usable or url is None:  # no URL is never usable
            if present:
                if src.sha256 and file_sha256(dest) != src.sha256:
                    log.warning(
                        "%s: %s was placed by hand and its sha256 differs from the catalog's %s",
                        key,
                        dest,
                        src.sha256,
                    )
                fetched[key] = dest
            else:
                manual.append(key)
            continue
        if present and not force:
            if src.sha256 is None:
                log.info("%s: %s already present (no checksum in catalog), kept", key, dest)
                fetched[key] = dest
                n_kept += 1
                continue
            actual = file_sha256(dest)
            if actual == src.sha256:
                log.info("%s: %s already present and verified, kept", key, dest)
                fetched[key] = dest
                n_kept += 1
                continue
            log.warning(
                "%s: %s has sha256 %s instead of %s: downloading it again",
                key,
                dest,
                actual,
                src.sha256,
            )
        try:
            _download(key, url, dest, src.sha256, timeout=timeout, opener=opener)
        except DataFileError as exc:
            log.info("%s", exc)  # raised below with every failure: printed once
            failures[key] = str(exc)
            continue
        fetched[key] = dest
        n_down += 1
    if manual:
        log.warning(
            "%d source(s) must be provided by hand:\n%s",
            len(manual),
            manual_instructions(manual, cache_dir=cache, sources=sources),
        )
    log.info(
        "fetch into %s: %d downloaded, %d already present, %d manual missing, %d failed",
        cache,
        n_down,
        n_kept,
        len(manual),
        len(failures),
    )
    if failures:
        err = DataFileError(f"{len(failures)} download(s) failed:\n" + "\n".join(failures.values()))
        err.failures = failures
        err.fetched = fetched
        raise err
    return fetched


def manual_instructions(
    keys: list[str] | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    sources: Mapping[str, DataSource] | None = None,
) -> str:
    """Steps to provide by hand the sources :func:`fetch` cannot download.

    Parameters
    ----------
    keys : list of str, optional
        Sources to explain (default: every manual source of the catalog: no
        download address, or sanitized copy). Keys of downloadable sources get a
        "download it from <url>" line.
    cache_dir : path, optional
        Data directory the files must go to (default :func:`default_cache_dir`).
    sources : mapping, optional
        Catalog to use instead of :data:`SOURCES`.

    Returns
    -------
    str
        One block per source (sources sharing the same steps, such as the three
        COG files of the npm package, are grouped), empty when ``keys`` is empty.
    """
    sources = SOURCES if sources is None else sources
    cache = Path(default_cache_dir() if cache_dir is None else cache_dir).expanduser()
    if keys is None:
        keys = [k for k in sources if not source_url(k, sources=sources)[1]]
    blocks: dict[str, list[str]] = {}
    for key in keys:
        src = sources[key]
        steps = _manual_steps(key, src, cache / src.relpath)
        blocks.setdefault(steps, []).append(f"{key} → {cache / src.relpath}")
    out = []
    for steps, targets in blocks.items():
        out.append("  - " + "\n    ".join(targets) + "\n      " + steps.replace("\n", "\n      "))
    return "\n".join(out)


def verify(
    data_dir: str | os.PathLike | DataDir | None = None,
    *,
    keys: list[str] | None = None,
    sources: Mapping[str, DataSource] | None = None,
) -> pd.DataFrame:
    """Presence and checksum of each source's file in a data directory.

    The expected sha256 is the catalog's (national file), except in a directory
    holding a ``MANIFEST.json`` written by :mod:`cnfs_geo.build_data` (the embedded
    bundle), whose ``bundle_sha256`` of each filtered file is used instead.

    Parameters
    ----------
    data_dir : path or DataDir, optional
        Folder to check; resolved by :func:`resolve_data_dir` (argument, then
        ``$CNFS_GEO_DATA_DIR``, then the bundle).
    keys : list of str, optional
        Sources to check (default: all, in catalog order).
    sources : mapping, optional
        Catalog to use instead of :data:`SOURCES`.

    Returns
    -------
    pandas.DataFrame
        One row per source, index ``key`` (catalog order). Columns ``relpath``,
        ``present`` (bool), ``size_bytes`` (Int64, NA when missing),
        ``sha256_expected``, ``expected_from`` (``"catalog"``, ``"MANIFEST.json"``
        or None), ``sha256_actual``, ``sha256_ok`` (boolean, NA when missing or no
        expected value), ``status`` (``"ok"``, ``"missing"``,
        ``"checksum mismatch"``, ``"unchecked"``), ``fetch`` (``"download"`` or
        ``"manual"``), ``url``.
    """
    import pandas as pd  # lazy: catalog stays light to import

    sources = SOURCES if sources is None else sources
    dd = data_dir if isinstance(data_dir, DataDir) else resolve_data_dir(data_dir)
    keys = list(sources) if keys is None else list(keys)
    unknown = [k for k in keys if k not in sources]
    if unknown:
        raise ValidationError(
            "verify",
            [f"unknown source {k!r}; known sources: {', '.join(sources)}" for k in unknown],
        )
    manifest: dict = {}
    mpath = dd.path / "MANIFEST.json"
    if mpath.is_file():
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataFileError(
                f"{mpath}: cannot be read as JSON ({exc}). Fix: rebuild it "
                "with `python -m cnfs_geo.build_data RAW_DIR`."
            ) from exc
    rows = []
    for key in keys:
        src = sources[key]
        path = dd.path / src.relpath
        entry = manifest.get(src.relpath) if isinstance(manifest, dict) else None
        if isinstance(entry, dict) and entry.get("bundle_sha256"):
            expected, origin = entry["bundle_sha256"], "MANIFEST.json"
        elif src.sha256:
            expected, origin = src.sha256, "catalog"
        else:
            expected, origin = None, None
        present = path.is_file()
        actual = file_sha256(path) if present else None
        ok = pd.NA if (actual is None or expected is None) else (actual == expected.lower())
        status = (
            "missing"
            if not present
            else "unchecked"
            if expected is None
            else "ok"
            if ok
            else "checksum mismatch"
        )
        url, usable = source_url(key, sources=sources)
        rows.append(
            {
                "key": key,
                "relpath": src.relpath,
                "present": present,
                "size_bytes": path.stat().st_size if present else pd.NA,
                "sha256_expected": expected,
                "expected_from": origin,
                "sha256_actual": actual,
                "sha256_ok": ok,
                "status": status,
                "fetch": "download" if usable else "manual",
                "url": url,
            }
        )
    df = pd.DataFrame(rows).set_index("key")
    df["size_bytes"] = df["size_bytes"].astype("Int64")
    df["sha256_ok"] = df["sha256_ok"].astype("boolean")
    df["present"] = df["present"].astype(bool)
    log.info(
        "verify %s: %d ok, %d missing, %d checksum mismatch, %d unchecked",
        dd.path,
        int((df["status"] == "ok").sum()),
        int((df["status"] == "missing").sum()),
        int((df["status"] == "checksum mismatch").sum()),
        int((df["status"] == "unchecked").sum()),
    )
    return df


# ----------------------------------------------------------------------------------------
# Per-département commune polygons (france-geojson, pinned commit)
# ----------------------------------------------------------------------------------------
_FRANCE_GEOJSON = ("gregoiredavid/france-geojson", "5d34ee6d0140c29f785fdb047d9329f1aab58833")


def polygon_source(departement: str) -> DataSource:
    """The COG-2018 commune polygons of one département as a downloadable source.

    The per-département files of gregoiredavid/france-geojson at the pinned commit are the
    members of the national archive; ``cnfs_geo/data/communes_2018_files.csv`` lists, for
    each of the 101 départements, its folder name and sha256 (computed from the archive).
    The file lands at ``communes/communes-<code>-<name>_adminexpress-cog2018.geojson``,
    where :func:`cnfs_geo.territory.communes_from_cog` looks first, so a data directory
    needs only the polygons of the départements it plans.

    Examples
    --------
    >>> polygon_source("49").relpath
    'communes/communes-49-maine-et-loire_adminexpress-cog2018.geojson'
    """
    import csv
    from importlib import resources

    with (
        resources.files("cnfs_geo")
        .joinpath("data/communes_2018_files.csv")
        .open(encoding="utf-8") as fh
    ):
        rows = {r["departement"]: r for r in csv.DictReader(fh)}
    code = str(departement).strip().upper()
    if code not in rows:
        raise ValidationError(
            "departement",
            [
                f"{departement!r}: no commune polygons for this code in france-geojson (known: "
                f"{', '.join(sorted(rows)[:4])} … {', '.join(sorted(rows)[-3:])}); use a "
                "département code"
            ],
        )
    slug, sha = rows[code]["slug"], rows[code]["sha256"]
    return DataSource(
        f"communes_2018_{code}",
        f"communes/communes-{slug}_adminexpress-cog2018.geojson",
        f"Contours des communes du département {code} (ADMIN EXPRESS COG 2018, simplifiés)",
        "IGN / gregoiredavid/france-geojson",
        "Licence Ouverte",
        "COG 2018",
        _FRANCE_GEOJSON[0],
        _FRANCE_GEOJSON[1],
        f"departements/{slug}/communes-{slug}.geojson",
        sha,
    )


#: Sources without which ``plan`` cannot run (the offer sources and datas.fun are optional).
PLAN_REQUIRED = ("cog_communes", "cog_epci", "fibre", "ifn_communes")


def missing_for_plan(table: pd.DataFrame) -> list[str]:
    """Keys of :data:`PLAN_REQUIRED` missing in a :func:`verify` table, plus
    ``communes_2018_archive`` when no commune polygon file at all is present."""
    status = table["status"]
    out = [k for k in PLAN_REQUIRED if k in status.index and status[k] == "missing"]
    polys = [k for k in status.index if k.startswith("communes_2018")]
    if polys and all(status[k] == "missing" for k in polys):
        out.append("communes_2018_archive")
    return out


# ----------------------------------------------------------------------------------------
# Official current sources, lock file, provenance of a data directory
# ----------------------------------------------------------------------------------------

#: Name of the lock file ``cnfs-geo data fetch`` writes in a data directory.
LOCK_NAME = "data.lock.json"
#: Environment variable: root URL replacing every official host (a mirror or a test
#: server laid out as ``<root>/<mirror_name>``, see :class:`OfficialSource`).
FETCH_BASE_ENV = "CNFS_GEO_FETCH_BASE_URL"


@dataclass(frozen=True)
class OfficialSource:
    """A current official source that ``cnfs-geo data fetch`` downloads.

    Attributes
    ----------
    key : str
        Identifier (lock file, logs).
    title, producer, licence, refresh : str
        What it is, who publishes it, its licence and how often it is refreshed (French).
    url : str
        Official address (an API root for the API Découpage administratif).
    mirror_name : str
        Path under ``$CNFS_GEO_FETCH_BASE_URL`` when that variable is set.
    env : str
        Environment variable giving this source's file address directly.
    dataset : str, optional
        Slug of its data.gouv.fr dataset: the current file is the most recent CSV
        resource the data.gouv.fr API lists for it.
    """

    key: str
    title: str
    producer: str
    licence: str
    refresh: str
    url: str
    mirror_name: str
    env: str
    dataset: str | None = None

    def resolved_url(self, base_url: str | None = None) -> str:
        """Address used now: per-source variable, then ``base_url`` or
        ``$CNFS_GEO_FETCH_BASE_URL`` (+ ``/<mirror_name>``), then the official one."""
        if os.environ.get(self.env):
            return os.environ[self.env].rstrip("/")
        base = base_url or os.environ.get(FETCH_BASE_ENV)
        if base:
            return f"{base.rstrip('/')}/{self.mirror_name}"
        return self.url

    def dataset_api_url(self, base_url: str | None = None) -> str | None:
        """For a source published on data.gouv.fr: the API description of its dataset
        (``/api/1/datasets/<slug>/``, under ``<base>/datagouv`` for a mirror), which
        lists its current file; None when the per-source variable gives the file or the
        source is not a data.gouv.fr dataset."""
        if self.dataset is None or os.environ.get(self.env):
            return None
        base = base_url or os.environ.get(FETCH_BASE_ENV)
        root = f"{base.rstrip('/')}/datagouv" if base else "https://www.data.gouv.fr"
        return f"{root}/api/1/datasets/{self.dataset}/"


OFFICIAL: dict[str, OfficialSource] = {
    s.key: s
    for s in [
        OfficialSource(
            "geo_api",
            "API Découpage administratif : communes (contour, mairie, population légale, "
            "EPCI), communes déléguées et associées, EPCI",
            "INSEE / IGN / DGCL via geo.api.gouv.fr (Etalab, DINUM)",
            "Licence Ouverte 2.0",
            "à chaque millésime du COG (annuel) ; contours ADMIN EXPRESS",
            "https://geo.api.gouv.fr",
            "geo",
            "CNFS_GEO_GEO_API_URL",
        ),
        OfficialSource(
            "lieux_inclusion",
            "Cartographie nationale des lieux d'inclusion numérique (export national, "
            "schéma standard-mediation-num)",
            "ANCT (Société Numérique) / La MedNum, data.gouv.fr",
            "Licence Ouverte 2.0",
            "quotidienne",
            "https://www.data.gouv.fr/fr/datasets/"
            "cartographie-nationale-des-lieux-dinclusion-numerique/",
            "lieux-de-mediation-numerique.csv",
            "CNFS_GEO_LIEUX_URL",
            "cartographie-nationale-des-lieux-dinclusion-numerique",
        ),
        OfficialSource(
            "france_services",
            "Liste des structures France services",
            "ANCT, data.gouv.fr",
            "Licence Ouverte 2.0",
            "mensuelle",
            "https://www.data.gouv.fr/fr/datasets/liste-des-structures-france-services/",
            "liste-fs.csv",
            "CNFS_GEO_FRANCE_SERVICES_URL",
            "liste-des-structures-france-services",
        ),
        OfficialSource(
            "arcep_mci",
            "Ma connexion internet : éligibilité des locaux par technologie et par commune",
            "ARCEP",
            "Licence Ouverte 2.0",
            "trimestrielle",
            "https://data.arcep.fr/fixe/maconnexioninternet/statistiques/last/commune/"
            "commune_techno.csv",
            "commune_techno.csv",
            "CNFS_GEO_ARCEP_URL",
        ),
        OfficialSource(
            "ifn_communes",
            "Indice de fragilité numérique par commune (scores 0–10), fichier épinglé : "
            "pas de fichier officiel plus récent",
            "La MedNum / ANCT",
            "non précisée",
            "aucune (édition 2023)",
            SOURCES["ifn_communes"].url or "",
            "ifn-city-all-variation.csv",
            "CNFS_GEO_IFN_URL",
        ),
    ]
}


def read_lock(path: str | os.PathLike) -> dict:
    """The lock file of a data directory (``{}`` when there is none).

    Raises
    ------
    DataFileError
        The lock exists but is not valid JSON.
    """
    p = Path(path) / LOCK_NAME
    if not p.is_file():
        return {}
    st = p.stat()
    return _read_lock_cached(str(p), st.st_mtime_ns, st.st_size)


_LOCK_CACHE: dict[tuple[str, int, int], dict] = {}


def _read_lock_cached(p: str, mtime_ns: int, size: int) -> dict:
    key = (p, mtime_ns, size)
    if key not in _LOCK_CACHE:
        try:
            data = json.loads(Path(p).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataFileError(
                f"{p} : fichier de verrou illisible ({exc}). Correctif : relancez "
                "`cnfs-geo data fetch` dans ce dossier."
            ) from exc
        if not isinstance(data, dict):
            raise DataFileError(
                f"{p} : fichier de verrou mal formé (objet JSON attendu). Correctif : relancez "
                "`cnfs-geo data fetch` dans ce dossier."
            )
        _LOCK_CACHE.clear()
        _LOCK_CACHE[key] = data
    return _LOCK_CACHE[key]


def write_lock(path: str | os.PathLike, lock: Mapping) -> Path:
    """Write ``lock`` as the lock file of ``path`` (sorted keys, atomic)."""
    target = Path(path) / LOCK_NAME
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{LOCK_NAME}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(lock, fh, ensure_ascii=False, indent=1, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def normalise_departement(code: str) -> str:
    """``"2a"`` → ``"2A"``, ``"1"`` → ``"01"``; other codes stripped and upper-cased."""
    code = str(code).strip().upper()
    return "0" + code if len(code) == 1 and code.isdigit() else code


def check_data_dir(data_dir: DataDir, departement: str | None = None) -> None:
    """Refuse a data directory that cannot serve ``departement`` or whose files changed.

    * the embedded bundle for a département other than 49, or a fetched directory whose
      lock does not list the département: one French sentence naming the folder and the
      command to run;
    * every file listed by the lock (``data.lock.json``) must have its recorded size and
      sha256; the bundle's files their ``MANIFEST.json`` ``bundle_sha256``. A truncated
      or edited file is refused, named, with the fix (an absent file is left to the
      reader: the offer skips a missing optional source and says so).

    A directory with neither lock nor manifest (the raw national files) is not checked.

    Raises
    ------
    DataFileError
    """
    from . import _fr

    dep = normalise_departement(departement) if departement is not None else None
    lock = read_lock(data_dir.path)
    if dep is not None:
        if data_dir.is_bundle and dep != BUNDLE_DEPARTEMENT:
            raise DataFileError(_fr.data_no_departement(dep, str(data_dir.path), bundle=True))
        deps = lock.get("departements")
        if lock and isinstance(deps, list) and dep not in deps:
            raise DataFileError(_fr.data_no_departement(dep, str(data_dir.path), bundle=False))
        cog = data_dir.path / SOURCES["cog_communes"].relpath
        if not lock and not cog.is_file():
            if (data_dir.path / "MANIFEST.json").is_file():  # a bundle copy lacking its COG
                raise DataFileError(
                    f"{cog} : fichier requis absent (communes du COG) ; correction : restaurer "
                    f"ce fichier, ou {_fr.data_fetch_hint(dep, str(data_dir.path)).lower()}"
                )
            # neither fetched nor a pinned/raw layout (e.g. an empty folder)
            raise DataFileError(_fr.data_no_departement(dep, str(data_dir.path), bundle=False))
    problems = []
    if lock:
        for key, entry in sorted(lock.get("files", {}).items()):
            p = data_dir.path / entry["file"]
            problems += _file_problem(p, entry.get("sha256"), entry.get("size"), key)
        fix = (
            f"relancez `cnfs-geo data fetch --departement "
            f"{' '.join(lock.get('departements', ['D']))} --data-dir {data_dir.path}`"
        )
    else:
        mpath = data_dir.path / "MANIFEST.json"
        if not mpath.is_file():
            return
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataFileError(
                f"{mpath} : illisible ({exc}). Correctif : reconstruisez les données avec "
                "`python -m cnfs_geo.build_data RAW_DIR`."
            ) from exc
        for rel, entry in sorted(manifest.items()):
            if isinstance(entry, dict) and entry.get("bundle_sha256"):
                problems += _file_problem(
                    data_dir.path / rel, entry["bundle_sha256"], entry.get("bundle_size"), rel
                )
        fix = "reconstruisez les données avec `python -m cnfs_geo.build_data RAW_DIR`"
    if problems:
        raise DataFileError(
            f"{_fr.plural(len(problems), 'fichier ne correspond', 'fichiers ne correspondent')} "
            f"pas au verrou de {data_dir.path} (fichier tronqué ou modifié) :\n"
            + "\n".join(f"  - {p}" for p in problems)
            + f"\nCorrectif : {fix}."
        )


def _file_problem(path: Path, sha256: str | None, size: int | None, key: str) -> list[str]:
    if not path.is_file():  # absent: the reader reports it (required or skipped source)
        return []
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return [f"{path} ({key}) : {actual_size} octets au lieu de {size}"]
    if sha256 and file_sha256(path) != sha256:
        return [f"{path} ({key}) : empreinte sha256 différente de celle enregistrée"]
    return []


def data_provenance(data_dir: DataDir | str | os.PathLike | None = None) -> list[dict]:
    """Sources of a data directory with their vintage and retrieval date.

    From the lock file when the directory was filled by ``cnfs-geo data fetch``; else
    (the embedded bundle, a raw or pinned directory) every source of the pinned catalog
    (retrieval date ``None``: a pinned commit, not a date).

    Returns
    -------
    list of dict
        One dict per source, sorted by title: ``key``, ``title``, ``producer``,
        ``licence``, ``vintage``, ``retrieved`` (ISO date or None), ``url``, ``file``.
    """
    dd = data_dir if isinstance(data_dir, DataDir) else resolve_data_dir(data_dir)
    lock = read_lock(dd.path)
    rows: list[dict] = []
    if lock:
        seen = set()
        for key, e in sorted(lock.get("files", {}).items()):
            sid = e.get("source", key)
            if sid in seen:
                continue
            seen.add(sid)
            rows.append(
                {
                    "key": sid,
                    "title": e.get("title"),
                    "producer": e.get("producer"),
                    "licence": e.get("licence"),
                    "vintage": e.get("vintage"),
                    "retrieved": e.get("retrieved"),
                    "url": e.get("url"),
                    "file": e.get("file"),
                }
            )
    else:  # bundle or raw national files: the pinned catalog
        for key, src in SOURCES.items():
            rows.append(
                {
                    "key": key,
                    "title": src.title,
                    "producer": src.producer,
                    "licence": src.licence,
                    "vintage": src.vintage,
                    "retrieved": None,
                    "url": src.url,
                    "file": src.relpath,
                }
            )
    return sorted(rows, key=lambda r: (str(r["title"]), r["key"]))


#: Sources a plan cannot do without (any département), checked by ``cnfs-geo data check``.
REQUIRED_KEYS = ("cog_communes", "cog_epci", "france_services", "fibre", "ifn_communes")


def check_table(data_dir: DataDir, departement: str | None = None) -> pd.DataFrame:
    """State of every file a plan reads in ``data_dir`` (``cnfs-geo data check``).

    For a directory with a lock file: every file of the lock (size and sha256 as
    recorded). Otherwise :func:`verify` (catalog or ``MANIFEST.json`` checksums), plus
    the commune polygons of ``departement`` (or of the bundle, or the national archive).

    Returns
    -------
    pandas.DataFrame
        Index ``key``; columns ``file``, ``status`` (``ok``, ``missing``, ``checksum
        mismatch``, ``size mismatch``, ``unchecked``), ``required`` (bool).
    """
    import pandas as pd

    lock = read_lock(data_dir.path)
    rows = []
    if lock:
        for key, e in sorted(lock.get("files", {}).items()):
            p = data_dir.path / e["file"]
            if not p.is_file():
                status = "missing"
            elif e.get("size") is not None and p.stat().st_size != e["size"]:
                status = "size mismatch"
            elif e.get("sha256") and file_sha256(p) != e["sha256"]:
                status = "checksum mismatch"
            else:
                status = "ok"
            rows.append({"key": key, "file": e["file"], "status": status, "required": True})
    else:
        table = verify(data_dir)
        for key, r in table.iterrows():
            rows.append(
                {
                    "key": key,
                    "file": r["relpath"],
                    "status": r["status"],
                    "required": key in REQUIRED_KEYS,
                }
            )
        poly = "communes_2018_49" if data_dir.is_bundle else "communes_2018_archive"
        if departement is not None and not data_dir.is_bundle:
            dep = normalise_departement(departement)
            has_dep = any((data_dir.path / "communes").glob(f"communes-{dep}-*.geojson"))
            if has_dep:
                poly = ""
        for r in rows:
            if r["key"] == poly:
                r["required"] = True
    return pd.DataFrame(rows).set_index("key")


def file_title(data_dir: DataDir, key: str) -> str:
    """Title of the file a stage reads as ``key`` in ``data_dir``: the lock's official
    source when the directory was fetched from the official sources, else the catalog's
    (the key itself when unknown)."""
    entry = read_lock(data_dir.path).get("files", {}).get(key)
    if isinstance(entry, dict) and entry.get("title"):
        return str(entry["title"])
    return SOURCES[key].title if key in SOURCES else key


def offer_covered_by(data_dir: DataDir) -> dict[str, str]:
    """Offer sources a fetched directory has no file for because another file holds them.

    The Cartographie nationale (read as ``data_inclusion``) carries the lieux labelled
    Conseillers numériques and Aidants Connect: in a directory fetched from the official
    sources, the separate CNFS permanences and Aidants Connect files are not missing but
    covered. Returns ``{key: title of the covering source}`` (empty otherwise).
    """
    entry = read_lock(data_dir.path).get("files", {}).get("data_inclusion", {})
    if isinstance(entry, dict) and entry.get("source") == "lieux_inclusion":
        title = str(entry.get("title") or OFFICIAL["lieux_inclusion"].title)
        return {"cnfs_permanences": title, "aidants_connect": title}
    return {}
