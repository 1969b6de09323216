"""Edited copies of the embedded 49 bundle shared by tests/test_bad_input.py and the
background run of tests/conftest.py (``repaired49``): real files, each edit labelled."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from cnfs_geo import catalog

REL = {k: s.relpath for k, s in catalog.SOURCES.items()}
POLY = "communes/communes-49-maine-et-loire_adminexpress-cog2018.geojson"


def latin1(p: Path) -> None:
    """The file re-encoded in Windows-1252 (Latin-1), as a spreadsheet may save it."""
    p.write_bytes(p.read_text(encoding="utf-8").encode("cp1252", errors="replace"))


def dup_row(p: Path) -> None:
    """The CSV's second record written twice."""
    lines = p.read_text(encoding="utf-8").splitlines(keepends=True)
    p.write_text("".join(lines[:3] + [lines[2]] + lines[3:]), encoding="utf-8")


#: Corruptions the background commands of tests/conftest.py apply, by name.
CORRUPTIONS = {"latin1": latin1, "dup_row": dup_row}


def reseal(data_dir: Path) -> None:
    """Record the corrupted files' checksums in the copy's MANIFEST.json, as for a file
    already corrupt at its source: the corruption then reaches the readers, whose checks
    this suite tests (the MANIFEST/lock check itself is tested in tests/test_fetch.py)."""
    mpath = data_dir / "MANIFEST.json"
    if not mpath.is_file():
        return
    manifest = json.loads(mpath.read_text(encoding="utf-8"))
    for rel, entry in manifest.items():
        f = data_dir / rel
        if isinstance(entry, dict) and "bundle_sha256" in entry and f.is_file():
            entry["bundle_sha256"] = hashlib.sha256(f.read_bytes()).hexdigest()
    mpath.write_text(json.dumps(manifest, indent=1), encoding="utf-8")


def repairs(data: Path) -> None:
    """Three repairs in one copy: swapped chef-lieu, invalid advisor counts, a bow-tie
    polygon (self-intersecting)."""
    p = data / REL["datasfun_communes"]
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    i = df.index[df["insee_com"] == "49007"][0]
    df.loc[i, ["lat", "lng"]] = df.loc[i, ["lng", "lat"]].to_numpy()
    df.to_csv(p, index=False)
    p = data / REL["cnfs_permanences"]
    recs = json.loads(p.read_text(encoding="utf-8"))
    for r, v in zip(recs[:3], [-3, "abc", None]):
        r["nb_aidants"] = v
    p.write_text(json.dumps(recs, ensure_ascii=False), encoding="utf-8")
    p = data / POLY
    fc = json.loads(p.read_text(encoding="utf-8"))
    g = fc["features"][0]["geometry"]
    ring = g["coordinates"][0] if g["type"] == "Polygon" else g["coordinates"][0][0]
    ring[1:1] = [ring[len(ring) // 2], ring[len(ring) // 3]]  # chords: self-intersection
    import shapely.geometry

    assert not shapely.geometry.shape(g).is_valid
    p.write_text(json.dumps(fc), encoding="utf-8")


def coordinate_repairs(data: Path) -> tuple[str, str]:
    """A France Services site at (0, 0) and one with latitude/longitude swapped; return
    their ids."""
    p = data / REL["france_services"]
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    zero, swapped = df.loc[2, "id_fs"], df.loc[3, "id_fs"]
    df.loc[2, ["latitude", "longitude"]] = ["0", "0"]
    df.loc[3, ["latitude", "longitude"]] = df.loc[3, ["longitude", "latitude"]].to_numpy()
    df.to_csv(p, index=False)
    return zero, swapped
