"""Input checks shared by the stages: each gathers every problem of one input into one
error naming the input, the ids at fault and the fix."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._errors import ValidationError


def nonnegative_series(x: Any, name: str, what: str, *,
                       error: type[ValidationError] = ValidationError,
                       example: str | None = None, allow_empty: bool = True) -> pd.Series:
    """Check a Series of non-negative numbers indexed by id; return it as float, str ids, sorted.

    Parameters
    ----------
    x : Series
        Values indexed by identifier (demand per unit, advisors per site…).
    name : str
        Argument name, used as the error's source.
    what : str
        What the values are, for the messages ("advisors per site").
    error : ValidationError subclass
        Exception type raised (e.g. :class:`cnfs_geo._errors.PlacementError`).
    example : str, optional
        An example of a right value, added to the fixes.
    allow_empty : bool
        Whether an empty Series is acceptable.
    """
    eg = f", e.g. {example}" if example else ""
    if not isinstance(x, pd.Series):
        raise error(name, [f"expected a pandas Series of {what} indexed by id, got "
                           f"{type(x).__name__}; fix: pass one value per id{eg}"])
    if len(x) == 0 and not allow_empty:
        raise error(name, [f"no {what} (empty Series); fix: pass one value per demand unit "
                           f"of the territory{eg}"])
    s = x.copy()
    s.index = pd.Index(s.index.astype(str), name=x.index.name)
    problems: list[str] = []
    dup = s.index[s.index.duplicated()].unique()
    if len(dup):
        problems.append(f"{len(dup)} duplicated id(s), e.g. {list(dup[:10])}: aggregate them "
                        "first (one value per id)")
    num = pd.to_numeric(s, errors="coerce").astype(float)
    bad = ~np.isfinite(num.to_numpy())
    if bad.any():
        problems.append(f"{int(bad.sum())} missing, non-numeric or infinite value(s) at id(s) "
                        f"{list(s.index[bad][:10])}: give a number >= 0 (0 = none)")
    neg = num.to_numpy() < 0
    if neg.any():
        problems.append(f"{int(neg.sum())} negative value(s) at id(s) "
                        f"{list(s.index[neg][:10])}: {what} must be >= 0")
    if problems:
        raise error(name, problems)
    num.name = x.name
    return num.sort_index(kind="stable")


OD_COLUMNS = ("origin_id", "destination_id", "minutes")


def require_od(od: Any, *, error: type[ValidationError] = ValidationError,
               hint: str = "cnfs_geo.access.od_crowfly") -> pd.DataFrame:
    """Check that ``od`` is a long OD table (``origin_id``, ``destination_id``, ``minutes``).

    Raises ``error`` with source ``"od"`` naming the missing column(s) and how to build
    the table (``hint``). Returns ``od`` unchanged.
    """
    if not isinstance(od, pd.DataFrame):
        raise error("od", [f"expected a long OD DataFrame (origin_id, destination_id, minutes), "
                           f"got {type(od).__name__}; fix: build it with {hint}"])
    missing = [c for c in OD_COLUMNS if c not in od.columns]
    if missing:
        raise error("od", [f"missing column {c!r}; fix: the OD table is long form (origin_id, "
                           f"destination_id, minutes), see {hint}" for c in missing])
    return od
