"""File-format plumbing shared by the readers (JSON, CSV, cache keys) and the structural
checks every reader runs before reading content: file present and not empty, UTF-8 (with
or without BOM), JSON that parses, CSV records with the header's number of fields (a cut
last record is reported as a truncated file), unique keys."""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

import pandas as pd

from .. import _journal
from .._errors import DataFileError, FileFormatError
from .._validate import require_columns

RESTORE = "restaurer le fichier depuis sa source (voir data/README.md ou cnfs-geo data fetch)"


def _guess_encoding(raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16"
    try:
        raw.decode("cp1252")
    except UnicodeDecodeError:
        return "inconnu (ni UTF-8 ni Latin-1)"
    return "Latin-1 / Windows-1252"


def read_text(path: str | Path) -> str:
    """Text of a data file, checked: present, readable, not empty, UTF-8 (BOM removed).

    Raises
    ------
    DataFileError
        No such file, or unreadable.
    FileFormatError
        Empty file, or an encoding other than UTF-8 (the message names the encoding found
        and the byte, line where decoding failed).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFileError(
            f"{path} : fichier absent ou illisible ({exc.strerror or exc}) ; correction : {RESTORE}"
        ) from exc
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if not raw.strip():
        raise FileFormatError(str(path), [f"fichier vide ; correction : {RESTORE}"])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        enc = _guess_encoding(raw)
        raise FileFormatError(
            str(path),
            [
                f"encodage {enc} trouvé au lieu d'UTF-8 (octet {exc.start}, ligne {line}) ; "
                "correction : réenregistrer le fichier en UTF-8 (par exemple "
                f"iconv -f WINDOWS-1252 -t UTF-8 {path.name} > copie.csv) ou {RESTORE}"
            ],
        ) from exc


def load_json(path: str | Path) -> Any:
    """Parsed JSON of a data file, after :func:`read_text`; a file that does not parse (cut,
    corrupted) is a :class:`~cnfs_geo._errors.FileFormatError` naming line and column."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        end = text.rstrip()
        starts = end.lstrip().startswith(("[", "{"))
        cut = starts and (exc.pos >= len(end) - 1 or not end.endswith(("]", "}")))
        what = "JSON tronqué (la fin du fichier manque)" if cut else "JSON invalide"
        raise FileFormatError(
            str(path),
            [
                f"{what} à la ligne {exc.lineno}, colonne {exc.colno} ({exc.msg}) ; "
                f"correction : {RESTORE}"
            ],
        ) from exc


def check_csv(path: str | Path, *, sep: str = ",", n_fields: int | None = None) -> str:
    """Text of a CSV file whose every record has the same number of fields.

    Parameters
    ----------
    path : path
    sep : str
        Field separator.
    n_fields : int, optional
        Expected fields per record (file without header row); default the header's.

    Raises
    ------
    FileFormatError
        As :func:`read_text`, or records with another number of fields (the last one
        cut: "fichier tronqué"), naming the line numbers.
    """
    text = read_text(path)
    problems: list[str] = []
    n_bad = 0
    expected = n_fields
    rows = csv.reader(io.StringIO(text), delimiter=sep)
    last_line = 0
    try:
        for row in rows:
            line = rows.line_num
            if not row:
                continue
            if expected is None:
                expected = len(row)
                continue
            if len(row) != expected:
                n_bad += 1
                if len(problems) < 5:
                    problems.append(f"ligne {line} : {len(row)} champs au lieu de {expected}")
            last_line = line
    except csv.Error as exc:
        problems.append(f"ligne {rows.line_num} : CSV illisible ({exc})")
    if not problems:
        return text
    cut = not text.endswith(("\n", "\r")) and problems[-1].startswith(f"ligne {last_line} ")
    head = (
        "fichier tronqué : le dernier enregistrement est coupé"
        if cut and n_bad == 1
        else f"{n_bad} enregistrement{'s' if n_bad > 1 else ''} sans le bon nombre de champs"
    )
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    other = next(
        (o for o in (";", ",", "\t") if o != sep and first.count(o) > first.count(sep)), None
    )
    if other is not None:
        # a whole file with another separator (re-saved by a spreadsheet): say so first
        shown = "tabulation" if other == "\t" else f"« {other} »"
        head = (
            f"le séparateur du fichier semble être {shown} (ligne d'en-tête), et non "
            f"« {sep} » ; {head}"
        )
        fix = (
            f"correction : réenregistrer le fichier en CSV séparé par « {sep} » (un tableur "
            f"l'enregistre souvent avec {shown}) ou {RESTORE}"
        )
    else:
        fix = f"correction : corriger ces lignes (séparateur {sep!r}) ou {RESTORE}"
    raise FileFormatError(str(path), [head, *problems, fix])


def read_csv_text(path: str | Path, *, sep: str = ",", **kwargs: Any) -> pd.DataFrame:
    """A CSV checked by :func:`check_csv`, read as strings (blanks kept as ``""``)."""
    n_fields = kwargs.pop("n_fields", None)
    text = check_csv(path, sep=sep, n_fields=n_fields)
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, **kwargs)
    except (pd.errors.ParserError, ValueError) as exc:
        raise FileFormatError(
            str(path), [f"illisible en CSV ({exc}) ; correction : {RESTORE}"]
        ) from exc


def check_unique(df: pd.DataFrame, columns: Sequence[str], path: str | Path, what: str) -> None:
    """FileFormatError naming every duplicated key (``columns``) of ``df`` read from ``path``."""
    dup = df[df.duplicated(list(columns), keep=False)]
    if not len(dup):
        return
    keys = sorted(
        {" / ".join(str(v) for v in k) for k in dup[list(columns)].itertuples(index=False)}
    )
    raise FileFormatError(
        str(path),
        [
            f"{what} en double : {', '.join(keys[:10])}"
            + (f" (et {len(keys) - 10} autres)" if len(keys) > 10 else "")
            + f" ; correction : garder une seule ligne par {what} (aucune moyenne n'est faite), "
            f"ou {RESTORE}"
        ],
    )


def file_key(path: Path) -> tuple[str, int, int]:
    """Cache key of a file: path, modification time and size (a changed file is re-read)."""
    st = Path(path).stat()
    return str(path), st.st_mtime_ns, st.st_size


@lru_cache(maxsize=4)
def _read_json(path: str, mtime_ns: int, size: int) -> Any:
    return load_json(path)


def read_json(path: Path) -> Any:
    """Parsed JSON of ``path``, cached per path, modification time and size (callers must
    not mutate the result)."""
    path = Path(path)
    try:
        key = file_key(path)
    except OSError as exc:
        raise DataFileError(
            f"{path} : fichier absent ou illisible ({exc.strerror or exc}) ; correction : {RESTORE}"
        ) from exc
    return _read_json(*key)


P = ParamSpec("P")
F = TypeVar("F", bound=pd.DataFrame)

# One dictionary per open one_read_per_file() block: (reader, file key, arguments) →
# (frame, journal events of the reader).
_READS: list[dict[tuple, tuple[pd.DataFrame, list[_journal.Event]]]] = []


@contextmanager
def one_read_per_file() -> Iterator[None]:
    """Inside the block, each reader marked :func:`read_once` parses a file version once.

    A later call with the same file (path, modification time, size) and arguments gets a
    copy of the first call's frame, and the first call's journal events are recorded
    again, so the journal does not depend on who read first. A plan reads and checks
    every input before any transform this way, without parsing any file twice.
    """
    _READS.append({})
    try:
        yield
    finally:
        _READS.pop()


def read_once(reader: Callable[P, F]) -> Callable[P, F]:
    """Mark a reader (first argument: the file's path; returns a frame) for
    :func:`one_read_per_file`. Outside such a block the reader runs as written."""

    @functools.wraps(reader)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> F:
        if not _READS:
            return reader(*args, **kwargs)
        try:
            file = file_key(Path(args[0]))  # type: ignore[arg-type]
        except (OSError, TypeError, IndexError):
            return reader(*args, **kwargs)  # the reader says what is wrong with the path
        key = (reader.__qualname__, file, args[1:], tuple(sorted(kwargs.items())))
        hit = _READS[-1].get(key)
        if hit is None:
            with _journal.collect(isolated=True) as events:
                frame = reader(*args, **kwargs)
            hit = _READS[-1][key] = (frame, events)
        _journal.replay(hit[1])
        return cast(F, hit[0].copy())  # a copy: the caller may change its frame

    return wrapper


def read_csv_columns(path: str | Path, required: list[str], **kwargs: Any) -> pd.DataFrame:
    """A CSV read as strings (``dtype=str``, blanks kept as ``""``) with ``required`` columns.

    Raises :class:`~cnfs_geo._errors.ValidationError` when the file cannot be parsed and
    :class:`~cnfs_geo._errors.MissingColumnError` naming every missing column. The frame's
    ``attrs["source"]`` is the path.
    """
    df = read_csv_text(path, **kwargs)
    require_columns(
        df,
        required,
        str(path),
        expected=f"colonnes attendues : {required} ; est-ce le bon fichier ? "
        f"Correction : vérifier le fichier et le nom de ses colonnes, ou {RESTORE}",
    )
    df.attrs["source"] = str(path)
    return df


def check_counts(
    df: pd.DataFrame,
    columns: Sequence[str],
    path: str | Path,
    key: str,
    *,
    upper: float | None = None,
) -> None:
    """FileFormatError naming each row (by ``key``) whose value in ``columns`` is not blank
    and not a number ≥ 0 (and ≤ ``upper`` when given: a score on a bounded scale)."""
    problems: list[str] = []
    scale = f"entre 0 et {upper:g}" if upper is not None else "≥ 0"
    for col in columns:
        text = df[col].astype(str).str.strip()
        num = pd.to_numeric(text, errors="coerce")
        ok = (text == "") | ((num >= 0) & ((num <= upper) if upper is not None else True))
        for k, v in zip(df.loc[~ok, key], text[~ok]):
            problems.append(f"{key} {k}, champ {col} : {v!r} n'est pas un nombre {scale}")
    if problems:
        n = len(problems)
        raise FileFormatError(
            str(path),
            problems[:10]
            + ([f"et {n - 10} autres valeurs"] if n > 10 else [])
            + [f"correction : corriger ces valeurs (vide = inconnu) ou {RESTORE}"],
        )
