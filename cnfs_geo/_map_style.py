"""Style tables of the map and the static figures: class breaks, colours, class labels."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from . import _fr
from ._fr import KIND_LABELS

# Travel-time classes (upper bounds, minutes) and colours (green = close, red = far).
MINUTE_BREAKS: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0)
MINUTE_COLOURS: tuple[str, ...] = ("#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#d73027")
NO_PLACE_COLOUR = "#7f0000"  # no accompaniment place at all (infinite time)

# Need index classes (0–10) and colours (light = low need, dark = high need).
NEED_BREAKS: tuple[float, ...] = (2.0, 4.0, 6.0, 8.0)
NEED_COLOURS: tuple[str, ...] = ("#f2f0f7", "#cbc9e2", "#9e9ac8", "#756bb1", "#54278f")
MISSING_COLOUR = "#bdbdbd"  # need or priority unknown

GAP_SOLVED_COLOUR = "#fd8d3c"
GAP_REMAINING_COLOUR = "#e31a1c"
EPCI_COLOUR = "#252525"
POST_COLOUR = "#0b4f9c"

# Place kinds (KIND_LABELS order: main kind first) and their colours.
KIND_COLOURS = {
    "france_services": "#1f78b4",
    "cnfs": "#33a02c",
    "lieu_mediation": "#6a3d9a",
    "aidants_connect": "#b15928",
}

# Priority score classes (0–100) and colours (light = low priority, dark = high).
PRIORITY_BREAKS: tuple[float, ...] = (20.0, 40.0, 60.0, 80.0)
PRIORITY_COLOURS: tuple[str, ...] = ("#ffffcc", "#fed976", "#fd8d3c", "#e31a1c", "#800026")
PRIORITY_GAP_LINE = "#000000"  # outline of the communes meeting the priority rule
CLUSTER_COLOUR = "#7a0177"  # outline of the priority territories (gap clusters)
NO_PROJECT_COLOUR = "#e66101"  # hatching of the EPCI without a digital project
# One colour per itinerant circuit (cycled).
CIRCUIT_COLOURS: tuple[str, ...] = (
    "#e7298a",
    "#1b9e77",
    "#d95f02",
    "#7570b3",
    "#66a61e",
    "#a6761d",
    "#1f78b4",
    "#666666",
)


def minute_class_labels() -> list[str]:
    """French labels of the travel-time classes (``≤ 5 min`` … ``> 20 min``)."""
    b = MINUTE_BREAKS
    labels = [f"≤ {_fr.number(b[0])} min"]
    labels += [f"{_fr.number(lo)} à {_fr.number(hi)} min" for lo, hi in zip(b[:-1], b[1:])]
    labels.append(f"> {_fr.number(b[-1])} min")
    return labels


def need_class_labels() -> list[str]:
    """French labels of the need-index classes."""
    b = (0.0, *NEED_BREAKS, 10.0)
    return [f"{_fr.number(lo)} à {_fr.number(hi)}" for lo, hi in zip(b[:-1], b[1:])]


def priority_class_labels() -> list[str]:
    """French labels of the priority-score classes (``0 à 20`` … ``80 à 100``)."""
    b = (0.0, *PRIORITY_BREAKS, 100.0)
    return [f"{_fr.number(lo)} à {_fr.number(hi)}" for lo, hi in zip(b[:-1], b[1:])]


def minute_colour(m: Any) -> str:
    """Colour of a travel time (:data:`NO_PLACE_COLOUR` when missing or infinite)."""
    if m is None or pd.isna(m) or not math.isfinite(float(m)):
        return NO_PLACE_COLOUR
    for bound, colour in zip(MINUTE_BREAKS, MINUTE_COLOURS):
        if m <= bound:
            return colour
    return MINUTE_COLOURS[-1]


def need_colour(v: Any) -> str:
    """Colour of a need index (0–10)."""
    if v is None or pd.isna(v):
        return MISSING_COLOUR
    for bound, colour in zip(NEED_BREAKS, NEED_COLOURS):
        if v <= bound:
            return colour
    return NEED_COLOURS[-1]


def priority_colour(v: Any) -> str:
    """Colour of a priority score (0–100)."""
    if v is None or pd.isna(v):
        return MISSING_COLOUR
    for bound, colour in zip(PRIORITY_BREAKS, PRIORITY_COLOURS):
        if v <= bound:
            return colour
    return PRIORITY_COLOURS[-1]


def circuit_colour(i: int) -> str:
    """Colour of the ``i``-th itinerant circuit (0-based, cycled)."""
    return CIRCUIT_COLOURS[i % len(CIRCUIT_COLOURS)]


def main_kind(kinds: str) -> str:
    """Main kind of a ``;``-joined kinds string (France Services first)."""
    present = {k.strip() for k in str(kinds).split(";") if k.strip()}
    for k in KIND_LABELS:
        if k in present:
            return k
    return "lieu_mediation"
