import hashlib
import json
import re

import pandas as pd

from cnfs_geo import build_data, catalog


def test_bundle_is_rebuilt_identically_from_raw(raw_dir, tmp_path):
    out = tmp_path / "49"
    manifest = build_data.build(raw_dir, out)
    shipped = json.loads((catalog.bundle_dir() / "MANIFEST.json").read_text())
    assert manifest == shipped
    for rel in manifest:
        assert (out / rel).read_bytes() == (catalog.bundle_dir() / rel).read_bytes(), rel


def test_manifest_matches_shipped_files():
    bundle = catalog.bundle_dir()
    manifest = json.loads((bundle / "MANIFEST.json").read_text())
    assert set(manifest) == {
        s.relpath for s in catalog.SOURCES.values() if (bundle / s.relpath).exists()
    }
    for rel, rec in manifest.items():
        assert hashlib.sha256((bundle / rel).read_bytes()).hexdigest() == rec["bundle_sha256"]


EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[a-z]{2,}")


def test_no_contact_fields_shipped():
    for rel in json.loads((catalog.bundle_dir() / "MANIFEST.json").read_text()):
        path = catalog.bundle_dir() / rel
        if path.suffix == ".csv":
            keys = set(pd.read_csv(path, nrows=0).columns)
        elif path.suffix == ".json" and "cog" not in path.parts:
            keys = {k for rec in json.loads(path.read_text()) for k in rec}
        else:
            continue
        assert not keys & build_data.CONTACT_FIELDS, path
        assert not EMAIL.search(path.read_text(encoding="utf-8")), path
