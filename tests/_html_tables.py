"""HTML readers shared by the map/report tests (tables, JS variables, sections, French numbers)."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser


class _Tables(HTMLParser):
    """Collect every <table> as (section id, rows of cell texts) — test-side parser."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[tuple[str, list[list[str]]]] = []
        self._section = ""
        self._rows: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self._section = a.get("id", "")
        elif tag == "table":
            self._rows = []
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th") and self._rows is not None:
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._rows:
            self._rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table" and self._rows is not None:
            self.tables.append((self._section, self._rows))
            self._rows = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables(text: str, section: str) -> list[list[list[str]]]:
    p = _Tables()
    p.feed(text)
    return [rows for sec, rows in p.tables if sec == section]


def fr_int(x: float) -> str:
    """French integer as the outputs print it: narrow no-break space every 3 digits."""
    return f"{int(round(float(x))):,}".replace(",", "\u202f")


def fr_pct(x: float) -> str:
    """French percent with one decimal; a share that is not whole (not nil) is never
    printed 100,0 % (0,0 %)."""
    x = float(x)
    if 99.95 <= x < 100:
        x = 99.9
    elif 0 < x < 0.05:
        x = 0.1
    return f"{x:.1f}".replace(".", ",") + "\u00a0%"


def js_vars(text: str, prefix: str) -> dict[str, dict]:
    """JSON values of ``var <prefix>_NNNN = {...};`` lines in the map HTML."""
    out = {}
    for name, body in re.findall(rf"var ({prefix}_\d+) = (\{{.*?\}});\n", text):
        out[name] = json.loads(body.replace("<\\/", "</"))
    return out


def section_text(text: str, section: str) -> str:
    """Unescaped text of ``<section id=...>`` (tags removed)."""
    m = re.search(rf'<section id="{section}">(.*?)</section>', text, re.S)
    assert m, section
    return html.unescape(re.sub(r"<[^>]+>", " ", m.group(1)))


def squash(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def one_var(text: str, prefix: str) -> dict:
    data = js_vars(text, prefix)
    assert len(data) == 1, (prefix, list(data))
    return next(iter(data.values()))


def layer_keys(text: str) -> list[str]:
    block = text[text.index("overlays :") :]
    block = block[: block.index("}")]
    return [json.loads(k) for k in re.findall(r'("(?:[^"\\]|\\.)*")\s*:', block)]
