"""Input journal: what the readers read, repaired and rejected, collected during a run.

Readers call :func:`record` (a repair or a rejection, with its French reason) and
:func:`read_count` (records in a file); :func:`collect` gathers the events of one run;
:func:`journal_table` adds the offer stage's accounting, so that for every source
``read == kept + merged + rejected``; :func:`summary_lines` is the French summary printed
at the end of a run, one line per source with repairs or rejections.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from . import _fr

__all__ = [
    "JOURNAL_COLUMNS",
    "Event",
    "collect",
    "journal_table",
    "read_count",
    "record",
    "replay",
    "summary_lines",
]

#: Columns of the ``journal`` table (GeoPackage, report).
JOURNAL_COLUMNS = ["source", "file", "read", "kept", "merged", "rejected", "repaired", "reasons"]


@dataclass(frozen=True)
class Event:
    """One reader event: ``kind`` is ``"read"`` (``count`` records in the file),
    ``"repaired"`` or ``"rejected"`` (``count`` records, ``reason`` in French)."""

    source: str
    file: str
    kind: str
    reason: str = ""
    count: int = 1


_STACK: list[list[Event]] = []


@contextmanager
def collect(*, isolated: bool = False) -> Iterator[list[Event]]:
    """Collect the events recorded inside the ``with`` block; nested blocks all receive
    them, unless ``isolated`` (a cached reader collecting events to :func:`replay` them)."""
    events: list[Event] = []
    saved = _STACK[:]
    if isolated:
        _STACK.clear()
    _STACK.append(events)
    try:
        yield events
    finally:
        _STACK[:] = saved


def _emit(event: Event) -> None:
    for events in _STACK:
        events.append(event)


def record(source: str, path: str | Path, kind: str, reason: str, count: int = 1) -> None:
    """Record a repair (``kind="repaired"``) or a rejection (``"rejected"``) of a reader."""
    _emit(Event(source, Path(path).name, kind, reason, int(count)))


def read_count(source: str, path: str | Path, count: int) -> None:
    """Record that ``count`` records were read from ``path``."""
    _emit(Event(source, Path(path).name, "read", "", int(count)))


def replay(events: Iterable[Event]) -> None:
    """Emit again events collected earlier (a reader or a stage answered from its cache)."""
    for e in list(events):
        _emit(e)


def _reasons(texts: Iterable[str], limit: int = 4) -> str:
    seen: list[str] = []
    for t in texts:
        if t and t not in seen:
            seen.append(t)
    more = len(seen) - limit
    out = " ; ".join(t.rstrip(".") for t in seen[:limit])  # no ". ;"
    return out + (f" ; et {_fr.plural(more, 'autre motif', 'autres motifs')}" if more > 0 else "")


def journal_table(
    events: Iterable[Event], offer_report: Any = None, need_report: Any = None
) -> pd.DataFrame:
    """One row per source: records read, kept, merged, rejected, repaired, and the reasons.

    Parameters
    ----------
    events : iterable of Event
        Events of the readers (:func:`collect`).
    offer_report : cnfs_geo.offer.OfferReport, optional
        Offer accounting (``counts``, ``rejected``, ``warnings``): its rows are taken as is.
    need_report : cnfs_geo.need.NeedReport, optional
        Rows of the IFN and fibre files mapped to another code (merged) or to no
        commune (rejected).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`JOURNAL_COLUMNS`; ``read == kept + merged + rejected`` on every row
        (``kept`` counts the rows of other départements of a national file, not used).
    """
    events = list(events)
    rows: dict[str, dict[str, Any]] = {}

    def row(source: str, file: str = "") -> dict[str, Any]:
        r = rows.setdefault(
            source,
            {
                "source": source,
                "file": file,
                "read": 0,
                "merged": 0,
                "rejected": 0,
                "repaired": 0,
                "_reasons": [],
            },
        )
        r["file"] = r["file"] or file
        return r

    offer_keys: set[str] = set()
    if offer_report is not None:
        from . import catalog

        for c in offer_report.counts.itertuples():
            if c.status != "read":
                continue
            src = catalog.SOURCES.get(c.source)
            fname = Path(src.relpath).name if src else ""
            r = row(c.source, fname)
            r["read"], r["merged"], r["rejected"] = int(c.read), int(c.merged), int(c.rejected)
            offer_keys.add(c.source)
            rej = offer_report.rejected
            r["_reasons"] += [str(x) for x in rej.loc[rej["source"] == c.source, "reason"]]
            for w in offer_report.warnings:
                head = w.split(":", 1)[0].split(" ", 1)[0]
                if head in (c.source, fname):
                    r["repaired"] += 1
                    r["_reasons"].append(_fr.import_warning(w))  # French wording
    if need_report is not None:
        for label, df, col in (
            ("merged", need_report.remapped, None),
            ("rejected", need_report.unmatched, "reason"),
        ):
            for source, g in df.groupby("source"):
                key = {"ifn": "ifn_communes"}.get(str(source), str(source))
                r = row(key)
                r[label] += len(g)
                if col:
                    r["_reasons"] += [str(x) for x in g[col]]
    for e in events:
        if e.source in offer_keys and e.kind == "read":
            continue
        r = row(e.source, e.file)
        if e.kind == "read":
            r["read"] = max(r["read"], e.count)
        else:
            r[e.kind] += e.count
            r["_reasons"].append(e.reason)
    out = []
    for r in rows.values():
        r["read"] = max(r["read"], r["merged"] + r["rejected"])
        r["kept"] = r["read"] - r["merged"] - r["rejected"]
        r["reasons"] = _reasons(r.pop("_reasons"))
        out.append(r)
    return pd.DataFrame(out, columns=JOURNAL_COLUMNS).astype(
        {c: "int64" for c in ("read", "kept", "merged", "rejected", "repaired")}
    )


def summary_lines(table: pd.DataFrame) -> list[str]:
    """French summary of a journal: one line per source with repairs or rejections."""
    lines = []
    for r in table.itertuples():
        if not (r.rejected or r.repaired):
            continue
        parts = [
            _fr.plural(r.read, "lu"),
            _fr.plural(r.kept, "gardé"),
            _fr.plural(r.merged, "fusionné"),
            _fr.plural(r.rejected, "rejeté"),
            _fr.plural(r.repaired, "réparé"),
        ]
        reasons = r.reasons if len(r.reasons) <= 160 else r.reasons[:159] + "…"
        lines.append(f"{r.source} ({r.file}) : {', '.join(parts)} — {reasons}")
    return lines
