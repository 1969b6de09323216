"""Progress shown to the user on long work (tqdm on stderr), quiet when asked or not a terminal.

One switch for the whole process: :func:`configure` (the CLI calls it from ``--quiet``); every
bar and stage line goes through :func:`bar` or :func:`stage`. Labels are French (users read them).

>>> configure(quiet=True)
>>> list(bar(range(3), desc="Départements"))
[0, 1, 2]
>>> with stage("Lecture des données"):
...     pass
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_STATE: dict[str, bool | None] = {"quiet": None, "steps_muted": False}


def configure(quiet: bool | None) -> None:
    """Set the process-wide switch: True silences, False forces, None = only on a terminal."""
    _STATE["quiet"] = quiet


def enabled() -> bool:
    """Whether progress is shown (not ``--quiet``, and stderr is a terminal unless forced)."""
    quiet = _STATE["quiet"]
    if quiet is None:
        return sys.stderr.isatty()
    return not quiet


def bar(
    iterable: Iterable[T], *, desc: str, total: int | None = None, unit: str = ""
) -> Iterator[T]:
    """Iterate with a progress bar on stderr (a plain iteration when progress is off)."""
    if not enabled():
        yield from iterable
        return
    kwargs: dict[str, Any] = {"desc": desc, "total": total, "file": sys.stderr, "leave": False}
    if unit:
        kwargs["unit"] = unit
    with tqdm(iterable, **kwargs) as it:
        yield from it


def counter(*, desc: str, total: int | None, unit: str = "") -> Any:
    """A manual bar (``.update(n)``, ``.close()``), or a no-op object when progress is off."""
    if not enabled():
        return _NoBar()
    return tqdm(desc=desc, total=total, file=sys.stderr, leave=False, unit=unit or "it")


class _NoBar:
    def update(self, n: float = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def step(label: str, seconds: float) -> None:
    """Print one finished stage, ``  label : 1,2 s``, on stderr (nothing when progress is off)."""
    if not enabled() or _STATE["steps_muted"]:
        return
    sys.stderr.write(f"  {label} : {seconds:.1f} s\n".replace(".", ","))
    sys.stderr.flush()


@contextmanager
def muted_steps() -> Iterator[None]:
    """No :func:`step` lines inside (a loop with its own bar runs many staged computations)."""
    before = _STATE["steps_muted"]
    _STATE["steps_muted"] = True
    try:
        yield
    finally:
        _STATE["steps_muted"] = before


@contextmanager
def stage(label: str) -> Iterator[None]:
    """Print ``label…`` on stderr, then its duration when done (nothing when progress is off)."""
    if not enabled():
        yield
        return
    t0 = time.perf_counter()
    sys.stderr.write(f"{label}…")
    sys.stderr.flush()
    try:
        yield
    finally:
        dt = time.perf_counter() - t0
        sys.stderr.write(f" {dt:.1f} s\n".replace(".", ","))
        sys.stderr.flush()
