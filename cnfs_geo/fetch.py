"""``cnfs-geo data fetch --source official``: everything a plan needs for some départements,
from the current official sources, into a data directory with a lock file.

Downloads go through :mod:`pooch` (``pooch.retrieve`` with its ``HTTPDownloader``: a
temporary file in the target folder, moved into place only when complete and, when a
sha256 is known, verified; query strings are kept since the file name is given), with our
own retry loop around it (429 and 5xx and dropped connections, exponential backoff,
``Retry-After`` honoured) because pooch's ``retry_if_failed`` retries every error alike,
404 included. Each payload lands in a staging folder, is read by its reader of
:mod:`cnfs_geo.sources` (structure checked, contact fields dropped), and only when every
source succeeded are the data files written (each atomically) and then the lock.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import _fr, _progress, catalog
from ._errors import DataFileError, ValidationError
from .sources import geo_api
from .sources.arcep_mci import read_commune_techno
from .sources.datagouv import latest_resource, read_dataset_resources
from .sources.france_services import read_france_services
from .sources.mediation_num import read_lieux_mediation_num

log = logging.getLogger(__name__)

#: Files written in the data directory (catalog key → path), read by the stages through
#: :meth:`cnfs_geo.catalog.DataDir.file` (the lock maps the keys to these paths).
OFFICIAL_FILES = {
    "cog_communes": "cog/communes_api-decoupage-administratif.json",
    "cog_epci": "cog/epci_api-decoupage-administratif.json",
    "datasfun_communes": "communes/mairies_api-decoupage-administratif.csv",
    "france_services": "france_services/structures-france-services.csv",
    "data_inclusion": "lieux_mediation/lieux-inclusion-numerique_cartographie-nationale.json",
    "fibre": "fibre/arcep_ma-connexion-internet_commune_techno.csv",
    "ifn_communes": catalog.SOURCES["ifn_communes"].relpath,
}
_STAGING = ".cnfs_geo_fetch"
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


def contours_key(dep: str) -> str:
    """Lock key of the commune contours of a département (read by the polygon reader)."""
    return f"contours_{dep}"


def contours_file(dep: str) -> str:
    """Path, in a data directory, of the commune contours of a département."""
    return f"communes/communes-{dep}_api-decoupage-administratif.geojson"


def unit_polygons_key(dep: str) -> str:
    """Lock key of the communes déléguées / associées contours of a département (the
    finest demand units, :func:`cnfs_geo.sources.polygons.departement_unit_polygons`)."""
    return f"deleguees_{dep}"


def unit_polygons_file(dep: str) -> str:
    """Path, in a data directory, of the communes déléguées / associées contours."""
    return f"communes/communes-deleguees-{dep}_api-decoupage-administratif.geojson"


@dataclass
class Download:
    """One payload: which official source, which request, where it went, its checksum."""

    source: str
    request: str
    url: str
    path: Path
    sha256: str = ""
    size: int = 0
    modified: str = ""  # last_modified of its data.gouv.fr resource, when known


@dataclass
class FetchResult:
    """What :func:`fetch_official` did.

    Attributes
    ----------
    data_dir : Path
    departements : list of str
    downloads : list of Download
    files : dict
        Catalog key → lock entry written.
    lock_path : Path
    """

    data_dir: Path
    departements: list[str]
    downloads: list[Download] = field(default_factory=list)
    files: dict[str, dict] = field(default_factory=dict)
    lock_path: Path | None = None


def _quiet_pooch() -> Any:
    import pooch

    pooch.get_logger().setLevel(logging.WARNING)
    return pooch


def download(
    source: str,
    url: str,
    dest_dir: Path,
    fname: str,
    *,
    timeout: float = 60,
    retries: int = 3,
    backoff: float = 1.0,
    known_hash: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Path:
    """Download ``url`` to ``dest_dir/fname`` (pooch), retrying 429/5xx and dropped links.

    Parameters
    ----------
    source : str
        Title of the source, named in errors.
    url : str
        Address, query string included.
    dest_dir : Path
        Folder of the result (pooch writes a temporary file there first).
    fname : str
        File name of the result.
    timeout : float
        Seconds allowed to connect and between two reads.
    retries : int
        Further attempts after a 429, a 5xx, a timeout or a dropped connection.
    backoff : float
        First wait in seconds, doubled at each attempt (a ``Retry-After`` header of a
        429/503 is honoured, capped at 60 s).
    known_hash : str, optional
        Expected sha256; a mismatch is refused (nothing kept).

    Returns
    -------
    Path

    Raises
    ------
    DataFileError
        In French, naming the source, the URL, what happened and the fix; nothing is
        left at ``dest_dir/fname``.
    """
    import requests

    pooch = _quiet_pooch()
    dest_dir.mkdir(parents=True, exist_ok=True)
    downloader = pooch.HTTPDownloader(
        progressbar=_progress.enabled(),
        timeout=timeout,
        headers={"User-Agent": "cnfs_geo (pooch)"},
    )
    attempt = 0
    while True:
        try:
            path = pooch.retrieve(
                url,
                known_hash=f"sha256:{known_hash}" if known_hash else None,
                fname=fname,
                path=dest_dir,
                downloader=downloader,
            )
            return Path(path)
        except requests.exceptions.HTTPError as exc:
            resp = exc.response
            status = resp.status_code if resp is not None else 0
            if resp is not None:
                resp.close()  # pooch leaves the failed response open
            if status in _RETRY_STATUS and attempt < retries:
                wait = backoff * 2**attempt
                ra = resp.headers.get("Retry-After", "") if resp is not None else ""
                if ra.isdigit():
                    wait = max(wait, min(float(ra), 60.0))
                log.info("%s: HTTP %s for %s, new attempt in %.1f s", source, status, url, wait)
                sleep(wait)
                attempt += 1
                continue
            if status == 404:
                problem, fix = (
                    "HTTP 404, le fichier n'est pas à cette adresse",
                    "vérifiez l'adresse (variable CNFS_GEO_FETCH_BASE_URL ou la variable "
                    "propre à la source) ; si la source officielle a déménagé, donnez sa "
                    "nouvelle adresse par cette variable",
                )
            elif status == 429:
                problem, fix = (
                    f"HTTP 429, trop de requêtes, encore après {_fr.plural(retries + 1, 'essai')}",
                    "attendez quelques minutes puis relancez la même commande",
                )
            else:
                problem, fix = (
                    f"HTTP {status}, le serveur a échoué"
                    + (f" {_fr.plural(retries + 1, 'fois', 'fois')}" if retries else ""),
                    "relancez plus tard ; si l'erreur persiste, signalez-la au producteur",
                )
            raise DataFileError(_fr.download_error(source, url, problem, fix)) from exc
        except (
            requests.exceptions.Timeout,
            requests.exceptions.ConnectionError,
            requests.exceptions.ChunkedEncodingError,  # body shorter than Content-Length
        ) as exc:
            timed_out = isinstance(exc, requests.exceptions.Timeout)
            if attempt < retries:
                wait = backoff * 2**attempt
                log.info("%s: %s for %s, new attempt in %.1f s", source, exc, url, wait)
                sleep(wait)
                attempt += 1
                continue
            problem = (
                f"pas de réponse en {_fr.number(timeout, trim=True)} s"
                if timed_out
                else "connexion coupée ou refusée (téléchargement incomplet)"
            )
            raise DataFileError(
                _fr.download_error(
                    source,
                    url,
                    f"{problem}, après {_fr.plural(attempt + 1, 'essai')} ; rien n'a été écrit",
                    "vérifiez la connexion (et le proxy, variable https_proxy) puis relancez "
                    "la même commande",
                )
            ) from exc
        except ValueError as exc:  # pooch: sha256 mismatch
            raise DataFileError(
                _fr.download_error(
                    source,
                    url,
                    f"empreinte sha256 inattendue ({exc}) ; rien n'a été écrit",
                    "relancez ; si cela persiste, le fichier a changé à la source",
                )
            ) from exc
        finally:
            for tmp in dest_dir.glob("tmp*"):  # pooch's temporary file of a failed attempt
                if tmp.is_file() and tmp.name != fname:
                    tmp.unlink()


def _api_url(root: str, endpoint: str, **params: str) -> str:
    return f"{root}/{endpoint}?{urllib.parse.urlencode(params, safe=',')}"


def _requests(deps: list[str], base_url: str | None) -> list[tuple[str, str, str, str]]:
    """(official source key, request id, url, staging file name) of every download."""
    geo = catalog.OFFICIAL["geo_api"].resolved_url(base_url)
    out = []
    for dep in deps:
        out.append(
            (
                "geo_api",
                f"communes:{dep}",
                _api_url(
                    geo,
                    "communes",
                    codeDepartement=dep,
                    type="commune-actuelle",
                    fields=geo_api.COMMUNE_FIELDS,
                    format="json",
                ),
                f"communes_{dep}.json",
            )
        )
        out.append(
            (
                "geo_api",
                f"deleguees:{dep}",
                _api_url(
                    geo,
                    "communes_associees_deleguees",
                    codeDepartement=dep,
                    fields=geo_api.DELEGUEE_FIELDS,
                    format="json",
                ),
                f"deleguees_{dep}.json",
            )
        )
        if dep in geo_api.ARRONDISSEMENT_PARENT:
            out.append(
                (
                    "geo_api",
                    f"arrondissements:{dep}",
                    _api_url(
                        geo,
                        "communes",
                        codeDepartement=dep,
                        type="arrondissement-municipal",
                        fields=geo_api.ARRONDISSEMENT_FIELDS,
                        format="json",
                    ),
                    f"arrondissements_{dep}.json",
                )
            )
    out.append(
        (
            "geo_api",
            "epcis",
            _api_url(geo, "epcis", fields=geo_api.EPCI_FIELDS, format="json"),
            "epcis.json",
        )
    )
    for key, fname in (
        ("lieux_inclusion", "lieux.csv"),
        ("france_services", "france_services.csv"),
        ("arcep_mci", "commune_techno.csv"),
        ("ifn_communes", "ifn.csv"),
    ):
        out.append((key, key, catalog.OFFICIAL[key].resolved_url(base_url), fname))
    return out


def _current_file(
    src_key: str, url: str, base_url: str | None, staging: Path, kw: dict[str, Any]
) -> tuple[str, str]:
    """(address, last_modified) of the current file of a source: for a data.gouv.fr
    dataset, its most recent CSV resource as the data.gouv.fr API lists it."""
    src = catalog.OFFICIAL[src_key]
    api = src.dataset_api_url(base_url)
    if api is None:
        return url, ""
    meta = download(src.title, api, staging, f"{src_key}_dataset.json", **kw)
    res = latest_resource(read_dataset_resources(meta), "csv")
    meta.unlink()
    if res is None:
        raise DataFileError(
            _fr.download_error(
                src.title,
                api,
                "le jeu de données ne liste aucun fichier CSV",
                f"donnez l'adresse du fichier par la variable {src.env}",
            )
        )
    return res["url"], res["last_modified"][:10]


def _all_departements(base_url: str | None, staging: Path, **kw: Any) -> list[str]:
    geo = catalog.OFFICIAL["geo_api"].resolved_url(base_url)
    url = _api_url(geo, "departements", fields="code", format="json")
    path = download(catalog.OFFICIAL["geo_api"].title, url, staging, "departements.json", **kw)
    return sorted(str(d["code"]) for d in json.loads(path.read_text(encoding="utf-8")))


def _sha256(path: Path) -> str:
    return catalog.file_sha256(path)


def _write_atomic(target: Path, write: Callable[[Path], None]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _json_writer(obj: Any) -> Callable[[Path], None]:
    def w(p: Path) -> None:
        p.write_text(json.dumps(obj, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")

    return w


def _records(df: pd.DataFrame) -> list[dict]:
    """Records of a string frame with blanks left out; coordinates as numbers."""
    out = []
    for r in df.to_dict("records"):
        rec: dict[str, Any] = {}
        for k, v in r.items():
            if v is None or (isinstance(v, float) and pd.isna(v)) or str(v).strip() == "":
                continue
            if k in ("latitude", "longitude"):
                try:
                    v = float(str(v).replace(",", "."))
                except ValueError:
                    pass
            rec[k] = v
        out.append(rec)
    return out


def fetch_official(
    departements: Iterable[str] | str,
    data_dir: str | os.PathLike,
    *,
    locked: bool = False,
    base_url: str | None = None,
    timeout: float = 60,
    retries: int = 3,
    backoff: float = 1.0,
    today: datetime.date | None = None,
) -> FetchResult:
    """Get every file a plan needs for ``departements`` from the official sources.

    Parameters
    ----------
    departements : str or iterable of str
        Codes (``"53"``, ``"2A"``), or ``"all"`` (every département the API lists). The
        départements already in the directory's lock are fetched again with them, so the
        directory stays consistent.
    data_dir : path
        Target data directory (created when missing); use it as ``--data-dir``.
    locked : bool
        Reproduce exactly the lock's set: any payload whose sha256 differs from the one
        recorded (or not recorded) is an error naming the source and URL; nothing is
        written.
    base_url : str, optional
        Root replacing every official host (else ``$CNFS_GEO_FETCH_BASE_URL``; a
        per-source variable such as ``CNFS_GEO_GEO_API_URL`` wins over both).
    timeout, retries, backoff
        See :func:`download`.
    today : date, optional
        Retrieval date written in the lock (default today).

    Returns
    -------
    FetchResult

    Raises
    ------
    DataFileError
        A download failed, a payload is malformed, or ``locked`` and something changed;
        the data directory is left as it was.
    """
    root = Path(data_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    old_lock = catalog.read_lock(root)
    if locked and not old_lock:
        raise DataFileError(
            f"--locked : {root} n'a pas de {catalog.LOCK_NAME}. Correctif : lancez d'abord "
            f"`cnfs-geo data fetch --departement D --data-dir {root}` sans --locked."
        )
    staging = root / _STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    kw: dict[str, Any] = {"timeout": timeout, "retries": retries, "backoff": backoff}
    retrieved = (today or datetime.date.today()).isoformat()
    try:
        if isinstance(departements, str):
            departements = [departements]
        wanted = [catalog.normalise_departement(d) for d in departements]
        if "ALL" in wanted:
            deps = _all_departements(base_url, staging, **kw)
        else:
            deps = sorted(set(wanted) | set(old_lock.get("departements", [])))
        if not deps:
            raise ValidationError("departement", ["no département given; use e.g. 53 or all"])
        result = FetchResult(root, deps)
        old_up = old_lock.get("upstream", {})
        reqs = _requests(deps, base_url)
        for src_key, req, url, fname in _progress.bar(
            reqs, desc="Téléchargement", total=len(reqs), unit="fichier"
        ):
            title = catalog.OFFICIAL[src_key].title
            url, modified = _current_file(src_key, url, base_url, staging, kw)
            known = catalog.SOURCES["ifn_communes"].sha256 if src_key == "ifn_communes" else None
            path = download(title, url, staging, fname, known_hash=known, **kw)
            d = Download(src_key, req, url, path, _sha256(path), path.stat().st_size, modified)
            if locked:
                rec = old_up.get(req)
                if rec is None or rec.get("sha256") != d.sha256:
                    raise DataFileError(
                        _fr.download_error(
                            title,
                            url,
                            "la réponse a changé depuis le verrou (empreinte sha256 "
                            f"{d.sha256[:12]}… au lieu de "
                            f"{(rec or {}).get('sha256', 'aucune')[:12]}…) ; rien n'a été écrit",
                            "pour garder les données actuelles, n'utilisez pas cette commande ; "
                            "pour accepter la nouvelle version, relancez sans --locked",
                        )
                    )
            result.downloads.append(d)
        outputs = _convert(result, staging)
        # every payload read without error: write the data files, then the lock
        for rel, writer in outputs["writers"].items():
            _write_atomic(root / rel, writer)
        files = {}
        for key, meta in outputs["files"].items():
            p = root / meta["file"]
            files[key] = {**meta, "sha256": _sha256(p), "size": p.stat().st_size}
            src = catalog.OFFICIAL[meta["source"]]
            files[key].update(
                title=src.title,
                producer=src.producer,
                licence=src.licence,
                refresh=src.refresh,
                url=src.url,
                retrieved=retrieved,
            )
        lock = {
            "format": 1,
            "source": "official",
            "departements": deps,
            "retrieved": retrieved,
            "files": files,
            "upstream": {
                d.request: {
                    "source": d.source,
                    "url": d.url,
                    "sha256": d.sha256,
                    "size": d.size,
                }
                for d in result.downloads
            },
        }
        if locked and old_lock.get("retrieved"):
            lock["retrieved"] = old_lock["retrieved"]
            for key, e in files.items():
                e["retrieved"] = old_lock.get("files", {}).get(key, {}).get("retrieved", retrieved)
        result.files = files
        result.lock_path = catalog.write_lock(root, lock)
        log.info(
            "fetch official into %s: %d départements, %d downloads, %d files",
            root,
            len(deps),
            len(result.downloads),
            len(files),
        )
        return result
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _convert(result: FetchResult, staging: Path) -> dict:
    """Read every payload with its reader and prepare the data files (not written yet)."""
    by_req = {d.request: d for d in result.downloads}
    deps = result.departements
    communes = []
    deleguees = []
    arrondissements = [
        geo_api.read_api_json(by_req[f"arrondissements:{dep}"].path, "arrondissements")
        for dep in deps
        if f"arrondissements:{dep}" in by_req
    ]
    writers: dict[str, Callable[[Path], None]] = {}
    files: dict[str, dict] = {}
    for dep in deps:
        c = geo_api.read_api_json(by_req[f"communes:{dep}"].path, "communes")
        if not len(c):
            raise DataFileError(
                _fr.download_error(
                    catalog.OFFICIAL["geo_api"].title,
                    by_req[f"communes:{dep}"].url,
                    f"aucune commune pour le département {dep}",
                    "vérifiez le code du département (01…95, 2A, 2B, 971…976)",
                )
            )
        communes.append(c)
        d = geo_api.read_api_json(by_req[f"deleguees:{dep}"].path, "deleguees")
        deleguees.append(d)
        poly = geo_api.polygons_from_api(c)
        rel = contours_file(dep)
        writers[rel] = _geojson_writer(poly)
        files[contours_key(dep)] = {
            "file": rel,
            "source": "geo_api",
            "vintage": f"COG en vigueur ({len(c)} communes)",
        }
        units = geo_api.unit_polygons_from_api(c, d)
        n_split = int(units["type"].isin(["commune-deleguee", "commune-associee"]).sum())
        rel = unit_polygons_file(dep)
        writers[rel] = _geojson_writer(units)
        files[unit_polygons_key(dep)] = {
            "file": rel,
            "source": "geo_api",
            "vintage": "COG en vigueur ("
            + _fr.plural(n_split, "commune déléguée ou associée", "communes déléguées ou associées")
            + " avec contour)",
        }
    allc = pd.concat(communes, ignore_index=True)
    alld = pd.concat(deleguees, ignore_index=True)
    n_cur = len(allc)
    geo_vintage = f"COG en vigueur ({_fr.plural(n_cur, 'commune')})"
    arr = pd.concat(arrondissements, ignore_index=True) if arrondissements else None
    cog = geo_api.cog_records_from_api(allc, alld, arr)
    writers[OFFICIAL_FILES["cog_communes"]] = _json_writer(cog)
    epcis = geo_api.read_api_json(by_req["epcis"].path, "epcis")
    writers[OFFICIAL_FILES["cog_epci"]] = _json_writer(geo_api.epci_records_from_api(epcis, allc))
    mairies = geo_api.chef_lieux_from_api(allc)
    writers[OFFICIAL_FILES["datasfun_communes"]] = _csv_writer(mairies)
    for key in ("cog_communes", "cog_epci", "datasfun_communes"):
        files[key] = {"file": OFFICIAL_FILES[key], "source": "geo_api", "vintage": geo_vintage}

    lieux = read_lieux_mediation_num(by_req["lieux_inclusion"].path)
    dates = sorted(d for d in lieux.get("date_maj", pd.Series(dtype=str)) if d)
    writers[OFFICIAL_FILES["data_inclusion"]] = _json_writer(_records(lieux))
    files["data_inclusion"] = {
        "file": OFFICIAL_FILES["data_inclusion"],
        "source": "lieux_inclusion",
        "vintage": (f"lieux mis à jour jusqu'au {dates[-1]}" if dates else "lieux non datés")
        + _resource_date(by_req["lieux_inclusion"]),
    }
    fs = read_france_services(by_req["france_services"].path)
    writers[OFFICIAL_FILES["france_services"]] = _csv_writer(fs)
    files["france_services"] = {
        "file": OFFICIAL_FILES["france_services"],
        "source": "france_services",
        "vintage": _fr.plural(len(fs), "structure") + _resource_date(by_req["france_services"]),
    }
    fib = read_commune_techno(by_req["arcep_mci"].path)
    writers[OFFICIAL_FILES["fibre"]] = _csv_writer(fib)
    files["fibre"] = {
        "file": OFFICIAL_FILES["fibre"],
        "source": "arcep_mci",
        "vintage": str(fib.attrs.get("vintage") or "non datée"),
    }
    ifn_bytes = by_req["ifn_communes"].path.read_bytes()

    def write_ifn(p: Path) -> None:
        p.write_bytes(ifn_bytes)

    writers[OFFICIAL_FILES["ifn_communes"]] = write_ifn
    files["ifn_communes"] = {
        "file": OFFICIAL_FILES["ifn_communes"],
        "source": "ifn_communes",
        "vintage": catalog.SOURCES["ifn_communes"].vintage,
    }
    return {"writers": writers, "files": files}


def _csv_writer(df: pd.DataFrame) -> Callable[[Path], None]:
    def w(p: Path) -> None:
        df.to_csv(p, index=False, lineterminator="\n")

    return w


def _geojson_writer(gdf: Any) -> Callable[[Path], None]:
    def w(p: Path) -> None:
        p.write_text(gdf.to_json(drop_id=True, to_wgs84=False) + "\n", encoding="utf-8")

    return w


def _resource_date(d: Download) -> str:
    return f", fichier publié le {d.modified}" if d.modified else ""
