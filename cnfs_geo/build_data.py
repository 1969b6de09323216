"""Build the embedded Maine-et-Loire bundle ``data/49`` from the raw national files.

Usage::

    python -m cnfs_geo.build_data RAW_DIR [--out data/49]

``RAW_DIR`` is a data directory with the national files (layout of
:mod:`cnfs_geo.catalog`). Each bundle file keeps the name, format and columns of
its national source, filtered to département 49, so the same loaders read both (the MedNum IRIS
file keeps its 152 columns but only those cnfs_geo reads are filled);
contact fields (e-mails, phones) are removed and e-mail addresses or phone
numbers inside free text are replaced by "[contact retiré]". ``MANIFEST.json`` records, per
file, the national file's sha256, the filter applied and the bundle file's
sha256. Running the build twice gives identical bytes.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import shutil
import sys
from pathlib import Path

import pandas as pd

from . import catalog
from .sources._contract import CONTACT_FIELDS
from .sources.iris import IRIS_COLUMNS, IRIS_KEPT_EXTRA

DEP = catalog.BUNDLE_DEPARTEMENT

# Contact fields dropped from every file (personal or not, the tool does not need them).


# E-mail addresses and French phone numbers inside free-text fields (e.g. France
# Services `commentaire`: "Contacter l'accueil au 02.41… ou accueil@…") are scrubbed too.
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w-])(?:\+33\s?|0)[1-9](?:[\s.-]?\d{2}){4}(?![\w-])")
_SCRUBBED = "[contact retiré]"


def _scrub(value):
    if isinstance(value, str) and ("@" in value or any(ch.isdigit() for ch in value)):
        return _PHONE.sub(_SCRUBBED, _EMAIL.sub(_SCRUBBED, value))
    return value


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_json(records, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(records, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _write_csv(
    df: pd.DataFrame, out: Path, sep: str = ",", header: bool = True, scrub: bool = True
) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if scrub:
        df = df.apply(lambda col: col.map(_scrub))
    buf = io.StringIO()
    df.to_csv(
        buf, index=False, sep=sep, header=header, quoting=csv.QUOTE_MINIMAL, lineterminator="\n"
    )
    out.write_text(buf.getvalue(), encoding="utf-8")


def _round_coords(obj, ndigits: int = 5):
    if isinstance(obj, list):
        return [_round_coords(v, ndigits) for v in obj]
    if isinstance(obj, float):
        return round(obj, ndigits)
    return obj


def _round_geojson(text: str) -> str:
    """GeoJSON geometry text with coordinates rounded (5 decimals ≈ 1 m)."""
    geom = json.loads(text)
    geom["coordinates"] = _round_coords(geom["coordinates"])
    return json.dumps(geom)


def _strip(rec: dict) -> dict:
    return {k: _scrub(v) for k, v in rec.items() if k not in CONTACT_FIELDS}


def build(raw: Path, out: Path) -> dict:
    """Write the bundle into ``out``; return the manifest."""
    raw, out = Path(raw), Path(out)
    if not (raw / "cog" / "communes.json").is_file():
        raise SystemExit(
            f"{raw}: not a raw data directory (no cog/communes.json). "
            "Give the folder holding cog/, communes/, fibre/, … (the raw national files)"
        )
    if out.exists():
        shutil.rmtree(out)
    manifest: dict[str, dict] = {}

    def record(key: str, how: str) -> None:
        rel = catalog.SOURCES[key].relpath
        manifest[rel] = {
            "source": key,
            "national_sha256": _sha256(raw / rel),
            "filter": how,
            "bundle_sha256": _sha256(out / rel),
        }

    def load_json(key):
        return json.loads((raw / catalog.SOURCES[key].relpath).read_text(encoding="utf-8"))

    def dest(key):
        return out / catalog.SOURCES[key].relpath

    # COG
    cog = [r for r in load_json("cog_communes") if r.get("departement") == DEP]
    _write_json(cog, dest("cog_communes"))
    record("cog_communes", "records with departement == '49' (all types)")
    epci = [
        e for e in load_json("cog_epci") if any(m["code"].startswith(DEP) for m in e["membres"])
    ]
    _write_json(epci, dest("cog_epci"))
    record("cog_epci", "EPCI with at least one member in 49 (full member lists kept)")
    _write_json(load_json("cog_departements"), dest("cog_departements"))
    record("cog_departements", "copied")
    shutil.copyfile(
        raw / "cog" / "LICENSE-decoupage-administratif",
        out / "cog" / "LICENSE-decoupage-administratif",
    )

    # polygons: byte copy of the 49 file
    dest("communes_2018_49").parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(raw / catalog.SOURCES["communes_2018_49"].relpath, dest("communes_2018_49"))
    record("communes_2018_49", "byte copy")

    # France Services
    fs = pd.read_csv(
        raw / catalog.SOURCES["france_services"].relpath, dtype=str, keep_default_na=False
    )
    fs = fs[fs["insee_dep"] == DEP].drop(columns=[c for c in fs.columns if c in CONTACT_FIELDS])
    _write_csv(fs, dest("france_services"))
    record("france_services", "insee_dep == '49'; mail, telephone removed")

    # CD49 lieux and CONUMM: all 49, contacts removed
    for key in ("lieux_cd49_2022", "lieux_cd49_2020", "conumm_angers"):
        _write_json([_strip(r) for r in load_json(key)], dest(key))
        record(key, "all records (all in 49); contact fields removed")

    di = [
        r
        for r in load_json("data_inclusion")
        if str(r.get("code_insee") or "").startswith(DEP)
        or str(r.get("code_postal") or "").startswith(DEP)
    ]
    _write_json([_strip(r) for r in di], dest("data_inclusion"))
    record("data_inclusion", "code_insee or code_postal starting with 49")

    ac = pd.read_csv(
        raw / catalog.SOURCES["aidants_connect"].relpath, dtype=str, keep_default_na=False
    )
    ac = ac[ac["City Insee Code"].str.startswith(DEP) | ac["Zip Code"].str.startswith(DEP)]
    _write_csv(ac, dest("aidants_connect"))
    record("aidants_connect", "City Insee Code or Zip Code starting with 49")

    cnfs = [
        r
        for r in load_json("cnfs_permanences")
        if str(r.get("code_postal") or "").strip().startswith(DEP)
    ]
    _write_json([_strip(r) for r in cnfs], dest("cnfs_permanences"))
    record("cnfs_permanences", "code_postal starting with 49")

    fib = pd.read_csv(raw / catalog.SOURCES["fibre"].relpath, dtype=str, keep_default_na=False)
    _write_csv(fib[fib["code_insee"].str.startswith(DEP)], dest("fibre"))
    record("fibre", "code_insee starting with 49")

    ifn = pd.read_csv(
        raw / catalog.SOURCES["ifn_communes"].relpath, dtype=str, keep_default_na=False
    )
    _write_csv(ifn[ifn["code"].str.startswith(DEP)], dest("ifn_communes"))
    record("ifn_communes", "code starting with 49")

    dfn = pd.read_csv(
        raw / catalog.SOURCES["datasfun_communes"].relpath, dtype=str, keep_default_na=False
    )
    _write_csv(dfn[dfn["insee_dep"] == DEP], dest("datasfun_communes"))
    record("datasfun_communes", "insee_dep == '49'")

    # MedNum IRIS 2020 (already a 49-only file): same headerless ';' format and 152
    # columns, so the same loader reads it; columns cnfs_geo does not read are emptied
    # and polygon coordinates rounded to 5 decimals (≈ 1 m, as the commune polygons).
    dest("mednum_iris_headers").parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(
        raw / catalog.SOURCES["mednum_iris_headers"].relpath, dest("mednum_iris_headers")
    )
    record("mednum_iris_headers", "byte copy")
    names = (
        (raw / catalog.SOURCES["mednum_iris_headers"].relpath)
        .read_text(encoding="utf-8-sig")
        .rstrip("\r\n")
        .split(";")
    )
    iris = pd.read_csv(
        raw / catalog.SOURCES["mednum_iris_49"].relpath,
        sep=";",
        header=None,
        dtype=str,
        keep_default_na=False,
    )
    iris.columns = names
    kept = [*IRIS_COLUMNS, *IRIS_KEPT_EXTRA]
    for col in names:
        if col not in kept:
            iris[col] = ""
    iris = iris[iris["Insee Dep"] == DEP]
    iris["Geo Shape"] = iris["Geo Shape"].map(_round_geojson)
    # not scrubbed: codes, names and numbers only, and the phone pattern matches inside
    # long decimals (e.g. "-1.0424138699" of the upstream Geo Shape)
    _write_csv(iris, dest("mednum_iris_49"), sep=";", header=False, scrub=False)
    record(
        "mednum_iris_49",
        "Insee Dep == '49' (all rows); only the columns read by "
        "cnfs_geo.demand kept (others emptied); Geo Shape rounded to 5 decimals",
    )

    manifest = dict(sorted(manifest.items()))
    _write_json(manifest, out / "MANIFEST.json")
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m cnfs_geo.build_data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("raw_dir", type=Path, help="folder with the national raw files")
    p.add_argument(
        "--out",
        type=Path,
        default=catalog.bundle_dir(),
        help="bundle folder to (re)write (default: data/49 of the repository)",
    )
    args = p.parse_args(argv)
    manifest = build(args.raw_dir, args.out)
    total = sum((args.out / rel).stat().st_size for rel in manifest)
    print(f"wrote {len(manifest)} files, {total / 1e6:.2f} MB, into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
