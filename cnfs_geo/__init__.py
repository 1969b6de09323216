"""cnfs_geo: coverage diagnosis and placement of conseillers numériques France Services.

Import the module you need (``from cnfs_geo import plan``); nothing heavy is imported here.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cnfs_geo")
except PackageNotFoundError:  # pragma: no cover - running from a source tree, not installed
    __version__ = "0+unknown"

#: Public modules, in pipeline order (see DESIGN.md).
__all__ = [
    "settings",
    "catalog",
    "sources",
    "territory",
    "offer",
    "need",
    "demand",
    "access",
    "roads",
    "coverage",
    "gaps",
    "placement",
    "itinerant",
    "plan",
    "maps",
    "report",
    "cli",
]
