"""Input checks shared by the stages: each gathers every problem of one input into one
error naming the input, the ids at fault and the fix."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from ._errors import CrsError, MissingColumnError, ValidationError


def nonnegative_series(
    x: Any,
    name: str,
    what: str,
    *,
    error: type[ValidationError] = ValidationError,
    example: str | None = None,
    allow_empty: bool = True,
) -> pd.Series:
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
        raise error(
            name,
            [
                f"expected a pandas Series of {what} indexed by id, got "
                f"{type(x).__name__}; fix: pass one value per id{eg}"
            ],
        )
    if len(x) == 0 and not allow_empty:
        raise error(
            name,
            [f"no {what} (empty Series); fix: pass one value per demand unit of the territory{eg}"],
        )
    s = x.copy()
    s.index = pd.Index(s.index.astype(str), name=x.index.name)
    problems: list[str] = []
    dup = s.index[s.index.duplicated()].unique()
    if len(dup):
        problems.append(
            f"{len(dup)} duplicated id(s), e.g. {list(dup[:10])}: aggregate them "
            "first (one value per id)"
        )
    num = pd.to_numeric(s, errors="coerce").astype(float)
    bad = ~np.isfinite(num.to_numpy())
    if bad.any():
        problems.append(
            f"{int(bad.sum())} missing, non-numeric or infinite value(s) at id(s) "
            f"{list(s.index[bad][:10])}: give a number >= 0 (0 = none)"
        )
    neg = num.to_numpy() < 0
    if neg.any():
        problems.append(
            f"{int(neg.sum())} negative value(s) at id(s) "
            f"{list(s.index[neg][:10])}: {what} must be >= 0"
        )
    if problems:
        raise error(name, problems)
    num.name = x.name
    return num.sort_index(kind="stable")


OD_COLUMNS = ("origin_id", "destination_id", "minutes")


def require_od(
    od: Any,
    *,
    error: type[ValidationError] = ValidationError,
    hint: str = "cnfs_geo.access.od_crowfly",
) -> pd.DataFrame:
    """Check that ``od`` is a long OD table (``origin_id``, ``destination_id``, ``minutes``).

    Raises ``error`` with source ``"od"`` naming the missing column(s) and how to build
    the table (``hint``). Returns ``od`` unchanged.
    """
    if not isinstance(od, pd.DataFrame):
        raise error(
            "od",
            [
                f"expected a long OD DataFrame (origin_id, destination_id, minutes), "
                f"got {type(od).__name__}; fix: build it with {hint}"
            ],
        )
    missing = [c for c in OD_COLUMNS if c not in od.columns]
    if missing:
        raise error(
            "od",
            [
                f"missing column {c!r}; fix: the OD table is long form (origin_id, "
                f"destination_id, minutes), see {hint}"
                for c in missing
            ],
        )
    return od


def require_columns(
    frame: Any, required: Iterable[str], source: str, *, expected: str | None = None
) -> None:
    """Check that ``frame`` (a DataFrame read from ``source``) has every ``required`` column.

    Raises :class:`~cnfs_geo._errors.MissingColumnError` naming every missing column, then
    ``expected`` (what the file or frame should be) when given. Used by the readers of
    :mod:`cnfs_geo.sources` on the columns they read.
    """
    present = set(frame.columns)
    missing = [c for c in required if c not in present]
    if missing:
        raise MissingColumnError(
            source, [f"colonne {c!r} absente" for c in missing] + ([expected] if expected else [])
        )


def _sample(values: Iterable[Any], n: int = 10) -> list[Any]:
    return list(values)[:n]


def sample_text(values: Iterable[Any], n: int = 10) -> str:
    """The first ``n`` values joined by commas, with the total when there are more (for
    error messages: ``"49001, 49002 … (12 in all)"``)."""
    values = list(values)
    more = f" … ({len(values)} in all)" if len(values) > n else ""
    return ", ".join(map(str, values[:n])) + more


def communes_table(
    communes: Any,
    *,
    required: Sequence[str] = (),
    name: str = "communes",
    hint: str = "cnfs_geo.territory.communes_from_cog",
    crs: Literal["any", "projected"] | None = "any",
    unique_index: bool = True,
    nonnegative: Sequence[str] = (),
    one_departement: bool = False,
) -> str | None:
    """Check a communes table; gather every problem into one error.

    Parameters
    ----------
    communes : GeoDataFrame
        The communes table to check: index ``insee`` (one row per commune), the
        ``required`` columns, a CRS (see ``crs``).
    required : sequence of str, keyword-only
        Columns it must hold (e.g. ``("nom", "departement", "population", "need")``).
    name : str, keyword-only
        Argument name, the error's source (default ``"communes"``).
    hint : str, keyword-only
        Function whose output is expected, named in the fixes (e.g.
        ``"cnfs_geo.need.need_from_sources"``).
    crs : {"any", "projected"} or None, keyword-only
        ``"any"``: a CRS must be set; ``"projected"``: a projected CRS (metres); ``None``:
        not checked, and a plain DataFrame is accepted.
    unique_index : bool, keyword-only
        Whether duplicated index values (INSEE codes) are an error (default True).
    nonnegative : sequence of str, keyword-only
        Columns (among ``required``) whose values must be finite numbers ≥ 0
        (e.g. ``("population", "need")``).
    one_departement : bool, keyword-only
        Whether the communes must all belong to one ``departement`` (which is returned).

    Returns
    -------
    str or None
        The département code when ``one_departement``, else None.

    Raises
    ------
    MissingColumnError
        Not a (Geo)DataFrame or missing columns, with every other structural problem.
    CrsError
        No CRS, or not projected when ``crs="projected"`` (and no missing column).
    ValidationError
        Duplicated index, bad values, several départements (every problem listed).
    """
    import geopandas as gpd

    want = gpd.GeoDataFrame if crs is not None else pd.DataFrame
    if not isinstance(communes, want):
        raise MissingColumnError(
            name,
            [
                f"expected a {want.__name__}, got "
                f"{type(communes).__name__}; fix: pass the output of "
                f"{hint}"
            ],
        )
    problems: list[str] = []
    missing = [c for c in required if c not in communes.columns]
    problems += [f"missing column {c!r}" for c in missing]
    if missing:
        problems.append(f"fix: pass the output of {hint}")
    crs_problem = False
    if crs is not None and communes.crs is None:
        crs_problem = True
        problems.append(
            f"has no CRS; fix: pass the output of {hint} (working CRS of the "
            "département, cnfs_geo.settings.working_crs)"
        )
    elif crs == "projected" and not communes.crs.is_projected:
        crs_problem = True
        problems.append(
            f"CRS {communes.crs} is not projected (metres); fix: "
            f"{name}.to_crs(cnfs_geo.settings.working_crs(departement))"
        )
    if unique_index and not communes.index.is_unique:
        dup = communes.index[communes.index.duplicated()].unique()
        problems.append(
            f"index (insee) has {len(dup)} duplicated code(s), e.g. "
            f"{_sample(dup)}; fix: one row per commune"
        )
    if problems:
        error = MissingColumnError if missing else CrsError if crs_problem else ValidationError
        raise error(name, problems)
    for col in nonnegative:
        vals = pd.to_numeric(communes[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(vals) | (np.nan_to_num(vals) < 0)
        if bad.any():
            problems.append(
                f"column {col!r}: {int(bad.sum())} missing, negative or non-numeric "
                f"value(s) at commune(s) {_sample(communes.index[bad])}; fix the "
                "input (numbers >= 0) or drop those communes"
            )
    dep = None
    if one_departement:
        deps = sorted(communes["departement"].astype(str).unique())
        if len(deps) != 1:
            problems.append(
                f"holds communes of {len(deps)} départements {deps[:5]}; fix: give "
                "the communes of one département"
            )
        else:
            dep = deps[0]
    if problems:
        raise ValidationError(name, problems)
    return dep
