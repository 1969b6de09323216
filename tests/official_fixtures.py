"""FIXTURES (test data, not official files): the official sources of ``cnfs-geo data fetch``
rebuilt from the real files of the raw data set, reshaped to each documented format, and a
local HTTP server on 127.0.0.1 that serves them like the official hosts.

* API Découpage administratif (geo.api.gouv.fr): ``/communes``, ``/communes_associees_
  deleguees``, ``/epcis``, ``/departements`` JSON responses with the documented fields
  (``code``, ``nom``, ``codeDepartement``, ``codeEpci``, ``population``, ``codesPostaux``,
  ``contour``, ``mairie``; ``type``, ``chefLieu``). Built from the COG 2026 of the raw
  data set (codes, names, populations, EPCI) and the communes today's readers make of the
  COG-2018 polygons (contours: their dissolved polygons; mairie: their chef-lieu); a
  commune déléguée's ``contour`` is its 2018 polygon when it has one of its own
  (:func:`_deleguee_contours`).
* Cartographie nationale des lieux d'inclusion numérique: CSV in the schema of
  ``LaMednum/standard-mediation-num`` v1.0.2 (columns of its ``schema.json``, ``|``-joined
  multi-values) built from the data·inclusion records of the raw data set; the contact
  columns hold labelled placeholders (``fixture-contact@example.invalid``) so that the
  test can check they are dropped.
* France services: the raw ANCT CSV rows of the départements (same published columns).
* data.gouv.fr API: ``/api/1/datasets/<slug>/`` descriptions listing those two files
  (:data:`DATASETS`).
* ARCEP ``commune_techno.csv``: ``code_insee``, ``nom_com``, ``nbr``, ``elig_ftth``,
  ``date`` from the raw « Ma connexion internet » file.
* IFN: the raw file as is (pinned upstream, sha256 of the catalog).
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import shapely.geometry

from cnfs_geo import catalog, territory
from cnfs_geo.settings import GEOGRAPHIC_CRS
from cnfs_geo.sources import polygons

SCHEMA_COLUMNS = [
    "id", "pivot", "nom", "commune", "code_postal", "code_insee", "adresse",
    "complement_adresse", "latitude", "longitude", "typologie", "telephone", "courriels",
    "site_web", "horaires", "presentation_resume", "presentation_detail", "source",
    "itinerance", "structure_parente", "date_maj", "services",
    "publics_specifiquement_adresses", "prise_en_charge_specifique", "frais_a_charge",
    "dispositif_programmes_nationaux", "formations_labels", "autres_formations_labels",
    "modalites_acces", "modalites_accompagnement", "fiche_acces_libre", "prise_rdv",
]  # fmt: skip
PLACEHOLDER_MAIL = "fixture-contact@example.invalid"
PLACEHOLDER_PHONE = "+33000000000"


def _dep_of(code: object, postal: object) -> str | None:
    code = str(code or "").strip()
    if len(code) == 5:
        return code[:3] if code.startswith("97") else code[:2]
    postal = str(postal or "").strip()
    if len(postal) == 5:
        return postal[:2] if not postal.startswith("97") else postal[:3]
    return None


def pinned_subset(raw: Path, out: Path) -> Path:
    """A data directory in the pinned layout holding the raw files the fixtures come from
    (the same data read through today's readers)."""
    for key in (
        "cog_communes",
        "cog_epci",
        "cog_departements",
        "communes_2018_archive",
        "france_services",
        "data_inclusion",
        "fibre",
        "ifn_communes",
        "datasfun_communes",
    ):
        rel = catalog.SOURCES[key].relpath
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).symlink_to(raw / rel)
    return out


def _deleguee_contours(dep: str, raw_dd: catalog.DataDir) -> dict[str, dict]:
    """Contours (GeoJSON geometry, WGS 84, as read) of the communes déléguées / associées
    of ``dep`` whose territory is a COG 2018 polygon: the 2018 polygon of the same code
    and the same name, whose code maps to the déléguée's chef-lieu commune (a commune
    déléguée of a commune nouvelle created after 2018). A déléguée of a commune nouvelle
    created before 2018 (53137 Loiron: its 2018 polygon is Loiron-Ruillé) or a commune
    associée has no 2018 polygon of its own: the fixture gives it no contour, as the API
    does for a record without feature in the IGN layer."""
    cog = territory.cog_communes(raw_dd)
    dl = cog[cog["type"].isin(["commune-deleguee", "commune-associee"])]
    name = dict(zip(dl["code"], dl["nom"]))
    chef = dict(zip(dl["code"], dl["chefLieu"]))
    cmap = territory.current_code_map(raw_dd)
    out = {}
    for r in polygons.departement_polygons(dep, raw_dd).itertuples():
        if name.get(r.code) == r.nom and cmap.get(r.code) == chef.get(r.code):
            out[r.code] = shapely.geometry.mapping(r.geometry)
    return out


def build(raw: Path, deps: list[str], out: Path) -> Path:
    """Write the fixtures of ``deps`` under ``out`` (laid out as the server serves them)."""
    raw_dd = catalog.resolve_data_dir(raw)
    geo = out / "geo"
    geo.mkdir(parents=True, exist_ok=True)
    cog = json.loads((raw / catalog.SOURCES["cog_communes"].relpath).read_text("utf-8"))
    epci = json.loads((raw / catalog.SOURCES["cog_epci"].relpath).read_text("utf-8"))
    epci_of = {m["code"]: e["code"] for e in epci for m in e.get("membres", [])}
    for dep in deps:
        c = territory.communes_from_cog(dep, raw_dd)
        wgs = c.to_crs(GEOGRAPHIC_CRS)
        pts = pd.DataFrame({"x": c["chef_lieu_x"], "y": c["chef_lieu_y"]})
        import geopandas as gpd

        mairies = gpd.GeoSeries(gpd.points_from_xy(pts["x"], pts["y"]), crs=c.crs).to_crs(
            GEOGRAPHIC_CRS
        )
        recs = {r["code"]: r for r in cog if r["type"] == "commune-actuelle"}
        rows = []
        for code, geom, m in zip(c.index, wgs.geometry, mairies):
            r = recs[code]
            rows.append(
                {
                    "code": code,
                    "nom": r["nom"],
                    "type": "commune-actuelle",
                    "codeDepartement": r["departement"],
                    "codeRegion": r.get("region"),
                    "codeEpci": epci_of.get(code),
                    "siren": r.get("siren"),
                    "codesPostaux": r.get("codesPostaux", []),
                    "population": r.get("population"),
                    "mairie": shapely.geometry.mapping(m),
                    "contour": shapely.geometry.mapping(geom),
                }
            )
        (geo / f"communes_{dep}.json").write_text(json.dumps(rows), "utf-8")
        dl = []
        contour_2018 = _deleguee_contours(dep, raw_dd)
        for r in cog:
            if r["type"] in ("commune-deleguee", "commune-associee") and r["departement"] == dep:
                rec = {
                    "code": r["code"],
                    "nom": r["nom"],
                    "type": r["type"],
                    "chefLieu": r["chefLieu"],
                    "codeDepartement": r["departement"],
                }
                if r["code"] in contour_2018:
                    rec["contour"] = contour_2018[r["code"]]
                dl.append(rec)
        (geo / f"deleguees_{dep}.json").write_text(json.dumps(dl), "utf-8")
        arr = [
            {
                "code": r["code"],
                "nom": r["nom"],
                "codeDepartement": r["departement"],
                "codesPostaux": r.get("codesPostaux", []),
                "population": r.get("population"),
            }
            for r in cog
            if r["type"] == "arrondissement-municipal" and r["departement"] == dep
        ]
        if arr:
            (geo / f"arrondissements_{dep}.json").write_text(json.dumps(arr), "utf-8")
    (geo / "epcis.json").write_text(
        json.dumps(
            [{"code": e["code"], "nom": e["nom"], "population": e.get("populationMunicipale")}
             for e in epci]
        ),
        "utf-8",
    )  # fmt: skip
    (geo / "departements.json").write_text(json.dumps([{"code": d} for d in deps]), "utf-8")

    di = json.loads((raw / catalog.SOURCES["data_inclusion"].relpath).read_text("utf-8"))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SCHEMA_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in di:
        if _dep_of(r.get("code_insee"), r.get("code_postal")) not in deps:
            continue
        row = {k: r.get(k, "") for k in SCHEMA_COLUMNS if k in r}
        for k in ("services", "modalites_accompagnement", "typologie"):
            if row.get(k):
                row[k] = str(row[k]).replace(";", "|")
        if r.get("labels_nationaux"):
            row["dispositif_programmes_nationaux"] = str(r["labels_nationaux"]).replace(";", "|")
        row["telephone"], row["courriels"] = PLACEHOLDER_PHONE, PLACEHOLDER_MAIL
        w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    (out / "lieux-de-mediation-numerique.csv").write_text(buf.getvalue(), "utf-8")

    fs = pd.read_csv(raw / catalog.SOURCES["france_services"].relpath, dtype=str,
                     keep_default_na=False)  # fmt: skip
    fs[fs["insee_dep"].isin(deps)].to_csv(out / "liste-fs.csv", index=False)

    fib = pd.read_csv(raw / catalog.SOURCES["fibre"].relpath, dtype=str, keep_default_na=False)
    fib = fib[fib["code_insee"].map(lambda c: _dep_of(c, None)).isin(deps)]
    pd.DataFrame(
        {
            "code_insee": fib["code_insee"],
            "nom_com": fib["commune"],
            "nbr": fib["nb_locaux"],
            "elig_ftth": fib["nb_locaux_fibre"],
            "date": "2024",
        }
    ).to_csv(out / "commune_techno.csv", index=False)
    (out / "ifn-city-all-variation.csv").write_bytes(
        (raw / catalog.SOURCES["ifn_communes"].relpath).read_bytes()
    )
    return out


#: data.gouv.fr datasets served under ``/datagouv/api/1/datasets/<slug>/``: the file each
#: lists (mirror name) with the date of the raw file it is built from as ``last_modified``,
#: and an older CSV resource that must not be chosen.
DATASETS = {
    "liste-des-structures-france-services": ("liste-fs.csv", "2024-08-01T00:00:00"),
    "cartographie-nationale-des-lieux-dinclusion-numerique": (
        "lieux-de-mediation-numerique.csv",
        "2023-02-01T00:00:00",
    ),
}

_ROUTES = {
    "/geo/communes": "geo/communes_{dep}.json",
    "/geo/communes_associees_deleguees": "geo/deleguees_{dep}.json",
    "/geo/epcis": "geo/epcis.json",
    "/geo/departements": "geo/departements.json",
}


class FixtureServer:
    """HTTP server on 127.0.0.1 serving a fixture folder like the official hosts.

    ``faults[path]`` is a list of behaviours consumed one per request of that path (an
    HTTP status such as ``"404"``, ``"429"``, ``"503"``; ``"timeout"``; ``"truncate"``);
    ``hits`` counts requests per path; ``overrides[path]`` replaces the body served.
    """

    def __init__(self, root: Path, *, delay: float = 3.0):
        self.root = Path(root)
        self.delay = delay
        self.faults: dict[str, list[str]] = {}
        self.overrides: dict[str, bytes] = {}
        self.hits: Counter = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                u = urllib.parse.urlsplit(self.path)
                server.hits[u.path] += 1
                fault = server.faults.get(u.path, [])
                behaviour = fault.pop(0) if fault else None
                if behaviour is not None and behaviour.isdigit():  # an HTTP error status
                    self.send_response(int(behaviour))
                    if behaviour == "429":
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if behaviour == "timeout":
                    time.sleep(server.delay)
                body = server.overrides.get(u.path)
                slug = u.path.removeprefix("/datagouv/api/1/datasets/").strip("/")
                if body is None and slug in DATASETS:
                    name, modified = DATASETS[slug]
                    body = json.dumps(
                        {
                            "slug": slug,
                            "resources": [
                                {"url": f"{server.url}/old-{name}", "format": "csv",
                                 "title": "ancienne version", "last_modified": "2020-01-01"},
                                {"url": f"{server.url}/{name}", "format": "csv",
                                 "title": name, "last_modified": modified},
                                {"url": f"{server.url}/{name}.json", "format": "json",
                                 "title": "autre format", "last_modified": "2030-01-01"},
                            ],
                        }
                    ).encode()  # fmt: skip
                if body is None:
                    q = dict(urllib.parse.parse_qsl(u.query))
                    route = _ROUTES.get(u.path, u.path.lstrip("/"))
                    if q.get("type") == "arrondissement-municipal":
                        route = "geo/arrondissements_{dep}.json"
                    rel = route.format(dep=q.get("codeDepartement", ""))
                    f = server.root / rel
                    if not f.is_file():
                        body = json.dumps([]).encode() if u.path in _ROUTES else None
                        if body is None:
                            self.send_response(404)
                            self.send_header("Content-Length", "0")
                            self.end_headers()
                            return
                    else:
                        body = f.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if behaviour == "truncate":
                        self.wfile.write(body[: len(body) // 2])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FixtureServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
