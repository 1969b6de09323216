"""Shared test fixtures.

Tests run on real data: the embedded Maine-et-Loire bundle (``data/49``) always,
and the national raw files when ``CNFS_GEO_DATA_DIR`` points at them (CI sets
it to ``../shared/data/raw``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cnfs_geo import catalog


@pytest.fixture(scope="session")
def bundle():
    """The embedded 49 bundle as a DataDir."""
    return catalog.DataDir(path=catalog.bundle_dir(), is_bundle=True, origin="bundle")


@pytest.fixture(scope="session")
def raw_dir() -> Path:
    """National raw data directory from $CNFS_GEO_DATA_DIR; skips when not set."""
    value = os.environ.get(catalog.ENV_VAR)
    if not value or not Path(value).is_dir():
        pytest.skip(f"national data not available: set {catalog.ENV_VAR} to the raw data folder")
    return Path(value).resolve()
