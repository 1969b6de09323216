"""The wheel carries everything ``cnfs-geo plan --departement 49`` needs.

CI (.ci/run) builds the wheel, installs it in a fresh venv and runs the 49 plan outside the
repository; these tests check, without building (no network in tests), that pyproject's
explicit package list and package data cover the package and the embedded bundle.
"""

from __future__ import annotations

import fnmatch
import json
import tomllib
from pathlib import Path

from cnfs_geo import catalog

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_subpackage_is_listed():
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "cnfs_geo").rglob("__init__.py")
    }
    assert found, "no package found"
    missing = found - set(CONFIG["packages"])
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"


def test_the_bundle_ships_as_package_data():
    mapped = CONFIG["package-dir"]["cnfs_geo._bundle49"]
    assert (ROOT / mapped).resolve() == catalog.bundle_dir().resolve()
    assert "cnfs_geo._bundle49" in CONFIG["packages"]
    patterns = CONFIG["package-data"]["cnfs_geo._bundle49"]
    files = [p.relative_to(ROOT / mapped).as_posix() for p in (ROOT / mapped).rglob("*")]
    files = [f for f in files if (ROOT / mapped / f).is_file()]
    assert "MANIFEST.json" in files and len(files) > 10
    left_out = [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert not left_out, f"bundle files not in the wheel's package data: {left_out}"
    # every file the manifest lists is shipped
    manifest = json.loads((ROOT / mapped / "MANIFEST.json").read_text(encoding="utf-8"))
    assert set(manifest) <= set(files), sorted(set(manifest) - set(files))


def test_bundle_dir_prefers_the_installed_copy(tmp_path, monkeypatch):
    """In a wheel, catalog.py sits next to _bundle49; in the repository, data/49 is used."""
    fake = tmp_path / "cnfs_geo"
    (fake / "_bundle49").mkdir(parents=True)
    monkeypatch.setattr(catalog, "__file__", str(fake / "catalog.py"))
    assert catalog.bundle_dir() == (fake / "_bundle49").resolve()
    (fake / "_bundle49").rmdir()
    assert catalog.bundle_dir() == (tmp_path / "data" / "49").resolve()
