"""How the pipeline's own work runs: pandas string storage and garbage-collector thresholds
(same results, less CPU; see docs/methods_national.md)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd

__all__ = ["batched_gc", "python_strings", "task_mode"]


@contextmanager
def batched_gc() -> Iterator[None]:
    """Run the cyclic garbage collector less often: pandas and shapely allocate many
    short-lived objects, and the default threshold (700) runs a collection about 2 000
    times per département, some 5 % of its time. Thresholds restored after."""
    saved = gc.get_threshold()
    gc.set_threshold(20_000, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*saved)


@contextmanager
def python_strings() -> Iterator[None]:
    """pandas ``str`` columns created inside are backed by Python objects
    (``mode.string_storage = "python"``) rather than by Arrow arrays (pandas' default when
    pyarrow is installed). A département's work is many operations on small frames (a few
    hundred communes, places, candidates): Arrow-backed strings pay a conversion on each
    ``take``, comparison, ``map`` or iteration that costs more than the work itself there,
    about a fifth of a plan's CPU time. Same values, same dtype (``str``), same output
    files. The option is restored on exit: a caller's pandas settings are left as they
    were."""
    with pd.option_context("mode.string_storage", "python"):
        yield


@contextmanager
def task_mode() -> Iterator[None]:
    """What a national task works under: :func:`batched_gc` and :func:`python_strings`.

    Frames that a reader caches while it runs (per file version) keep their
    Python-backed strings when a later plan of the same process takes them: same values
    and ``str`` dtype, another storage (``pandas.testing`` compares it)."""
    with batched_gc(), python_strings():
        yield
