"""Dask plumbing of the national run: the optional import, a client, tasks with progress.

``dask[distributed]`` is an optional extra (``pip install cnfs_geo[dask]``); nothing here is
imported before :func:`distributed` is called.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from . import _progress
from ._errors import CnfsGeoError

__all__ = ["DaskMissingError", "TaskFailure", "default_workers", "distributed", "open_client"]


class DaskMissingError(CnfsGeoError, ImportError):
    """``dask.distributed`` is needed (``--workers`` > 1 or ``--scheduler``) but not installed."""


class TaskFailure:
    """A task that raised: its key and the reason (the French message of the tool's own
    errors; the exception type and message of anything unexpected)."""

    def __init__(self, key: str, exc: BaseException) -> None:
        self.key = key
        self.reason = str(exc) if isinstance(exc, CnfsGeoError) else f"{type(exc).__name__}: {exc}"

    def __repr__(self) -> str:
        return f"TaskFailure({self.key!r}, {self.reason!r})"


def distributed() -> Any:
    """The ``dask.distributed`` module, or :class:`DaskMissingError` with a French message."""
    try:
        import dask.distributed as dd
    except ImportError as exc:
        raise DaskMissingError(
            "le calcul réparti (--workers supérieur à 1 ou --scheduler) demande Dask, qui "
            "n'est pas installé : installez-le avec « pip install 'cnfs_geo[dask]' », ou "
            "lancez le calcul sans Dask avec --workers 1"
        ) from exc
    return dd


def available() -> bool:
    """Whether ``dask.distributed`` can be imported."""
    import importlib.util

    return importlib.util.find_spec("distributed") is not None


def default_workers() -> int:
    """Cores this process may use (``os.sched_getaffinity`` where available)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


@contextmanager
def open_client(*, workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: on ``scheduler`` (an existing cluster's address, e.g.
    ``tcp://10.0.0.5:8786``) or on a new local cluster of ``workers`` processes (one thread
    each, no dashboard), closed on exit."""
    dd = distributed()
    if scheduler:
        try:
            client = dd.Client(scheduler, timeout="30s")
        except OSError as exc:
            raise CnfsGeoError(
                f"ordonnanceur Dask injoignable à l'adresse {scheduler} ({exc}) : vérifiez "
                "l'adresse (tcp://hôte:8786) et que le cluster est démarré"
            ) from exc
        try:
            yield client
        finally:
            client.close()
        return
    n = workers or default_workers()
    cluster = dd.LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
        memory_limit=0,  # no pausing/killing: the benchmark states the peak per worker
    )
    client = dd.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _import(module: str) -> None:
    importlib.import_module(module)


def warm_up(client: Any, module: str) -> list[Any]:
    """Have every worker of ``client`` import ``module`` now (futures, not awaited): the
    workers load the package while the client goes on (reading the national files),
    rather than when the scattered data or the first task reaches them."""
    workers = sorted(client.scheduler_info().get("workers", {}))
    return [
        client.submit(_import, module, workers=[w], pure=False, key=f"cnfs-geo-import-{i}")
        for i, w in enumerate(workers)
    ]


def run_tasks(
    client: Any,
    func: Callable[..., Any],
    items: Sequence[str],
    *args: Any,
    desc: str,
    prefix: str,
    extra: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, TaskFailure]]:
    """Submit ``func(item, *args, **extra[item])`` per item; futures by item and failures.

    The futures stay on the workers (results are not gathered); a progress bar of ``desc``
    advances as tasks finish; a task that raises becomes a :class:`TaskFailure` (its
    dependents are not run) while the others complete.
    """
    dd = distributed()
    futures = {
        item: client.submit(
            func, item, *args, key=f"{prefix}-{item}", pure=False, **(extra or {}).get(item, {})
        )
        for item in items
    }
    by_key = {f.key: item for item, f in futures.items()}
    failures: dict[str, TaskFailure] = {}
    bar = _progress.counter(desc=desc, total=len(futures), unit="dép.")
    try:
        for fut in dd.as_completed(list(futures.values())):
            if fut.status == "error":
                item = by_key[fut.key]
                failures[item] = TaskFailure(item, fut.exception())
            bar.update(1)
    finally:
        bar.close()
    ok = {item: f for item, f in futures.items() if item not in failures}
    return ok, failures
