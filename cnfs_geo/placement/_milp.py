"""The one HiGHS call of cnfs_geo: :func:`scipy.optimize.milp` with named statuses, a time
limit, a deterministic tie-breaking solve and a guard on the C-level stdout.

Every MILP of the package (covering, p-median, equity, the LNS windows of the national
solver) and of :mod:`cnfs_geo.itinerant` goes through :func:`solve`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, OptimizeResult, milp

__all__ = [
    "ABS_TOL",
    "REL_TOL",
    "SOLVER",
    "STATUS",
    "TieBreak",
    "keep_objective",
    "n_rows",
    "quiet_c_stdout",
    "solve",
    "status_name",
    "tie_break",
]

SOLVER = "HiGHS via scipy.optimize.milp"
#: scipy's ``milp`` status codes → the names reported in ``Solution.status``.
STATUS = {0: "optimal", 1: "time_limit", 2: "infeasible", 3: "unbounded", 4: "error"}

#: Tolerance of a kept optimum in the tie-breaking solves (``c·x <= optimum +
#: REL_TOL·max(1, |optimum|) + ABS_TOL``; ABS_TOL is HiGHS's feasibility tolerance) and, relative
#: part only, of the check that a tie-broken solution has the same true objective. One value
#: for every model: the covering / median models used 1e-9 + 1e-7 and the equity model 1e-7
#: relative; unified on 1e-9 + 1e-7, which changed no output (demo, tests, and 124 MCLP /
#: equity runs on the 49 compared before and after).
REL_TOL = 1e-9
ABS_TOL = 1e-7

_STDOUT_LOCK = threading.Lock()


def status_name(res: OptimizeResult) -> str:
    """Name of a ``milp`` result's status (``"error"`` for an unknown code)."""
    return STATUS.get(res.status, "error")


def n_rows(constraints: Sequence[LinearConstraint]) -> int:
    """Number of constraint rows of a model."""
    return int(sum(c.A.shape[0] for c in constraints))


@contextlib.contextmanager
def quiet_c_stdout() -> Iterator[None]:
    """Send the process's C-level stdout (file descriptor 1) to the null device.

    HiGHS as bundled with scipy writes a stray debug line
    (``HighsMipSolverData::transformNewIntegerFeasibleSolution tmpSolver.run();``)
    straight to stdout when it repairs an incumbent of a model with continuous
    variables (e.g. in tie-breaking solves); ``disp=False`` does not silence it, and the
    library must not print. C stdio buffers are flushed before the descriptor is
    restored. Where descriptor 1 cannot be duplicated the solve runs unchanged. Output
    written by other threads during a solve is lost too; solves from several threads
    take turns on the descriptor (a lock), not on the solver.
    """
    with _STDOUT_LOCK:
        try:
            sys.stdout.flush()
        except (AttributeError, ValueError, OSError):
            pass
        try:
            saved = os.dup(1)
        except OSError:
            yield
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            yield
        finally:
            try:
                ctypes.CDLL(None).fflush(None)  # POSIX: flush every C stdio stream
            except (OSError, TypeError, AttributeError):
                pass
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)


def solve(
    c: np.ndarray,
    *,
    integrality: np.ndarray,
    lb: Any,
    ub: Any,
    constraints: Sequence[LinearConstraint],
    time_limit_s: float,
) -> tuple[OptimizeResult, float]:
    """Minimise ``c @ x`` with HiGHS, exactly (``mip_rel_gap = 0``), within a time limit.

    Parameters
    ----------
    c : ndarray
        Objective coefficients (minimised).
    integrality : ndarray
        1 for an integer variable, 0 for a continuous one.
    lb, ub : float or ndarray
        Variable bounds.
    constraints : list of LinearConstraint
        Sparse constraint blocks.
    time_limit_s : float
        Wall-clock limit of this solve (``settings.milp_time_limit_s`` for the models);
        at the limit the best solution found is returned with status ``time_limit``.

    Returns
    -------
    (OptimizeResult, float)
        scipy's result (``x`` None when no feasible solution was found; map ``status``
        with :func:`status_name`) and the solve's wall time in seconds.
    """
    t0 = time.perf_counter()
    with quiet_c_stdout():
        res = milp(
            c,
            integrality=integrality,
            bounds=Bounds(lb, ub),
            constraints=list(constraints),
            options={
                "time_limit": float(time_limit_s),
                "mip_rel_gap": 0.0,
                "disp": False,
                "presolve": True,
            },
        )
    return res, time.perf_counter() - t0


def keep_objective(
    c: np.ndarray, value: float, *, rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL
) -> LinearConstraint:
    """Row ``c @ x <= value + rel_tol · max(1, |value|) + abs_tol``: keep an optimum.

    The tolerance lets the solver re-find the optimum it proved despite floating point
    (HiGHS's feasibility tolerance is 1e-7 absolute).
    """
    tol = rel_tol * max(1.0, abs(value)) + abs_tol
    return LinearConstraint(sparse.csr_array(c.reshape(1, -1)), -np.inf, value + tol)


@dataclass
class TieBreak:
    """Outcome of :func:`tie_break`."""

    x: np.ndarray  # the tie-broken solution when accepted, else the first
    accepted: bool  # the second solve ran, found a solution and ``accept`` held
    res: OptimizeResult  # result of the second solve
    time_s: float  # wall time of the second solve


def tie_break(
    c: np.ndarray,
    first: OptimizeResult,
    *,
    n_ranked: int,
    integrality: np.ndarray,
    lb: Any,
    ub: Any,
    constraints: Sequence[LinearConstraint],
    time_limit_s: float,
    rel_tol: float = REL_TOL,
    abs_tol: float = ABS_TOL,
    accept: Callable[[np.ndarray], bool] = lambda x: True,
) -> TieBreak:
    """Deterministic choice among optimal solutions: a second solve of smallest rank sum.

    Keeps ``c @ x`` at the optimum of ``first`` (:func:`keep_objective`) and minimises
    ``Σ_j rank_j x_j`` over the first ``n_ranked`` variables (rank ``j + 1``, so the
    variables must be ordered by identifier): among optimal solutions the one made of
    the "earliest" ones is returned, whatever the row order of the inputs.

    Parameters
    ----------
    c, first : the objective of the first solve and its result (with ``x``).
    n_ranked : int
        Leading variables ranked (the candidate sites).
    integrality, lb, ub, constraints, time_limit_s
        The model of the second solve (usually that of the first; a caller may fix
        variables or bounds differently).
    rel_tol, abs_tol : float
        Tolerance of the kept optimum (:func:`keep_objective`).
    accept : callable
        Check of the second solution (e.g. its true objective equals the first one's);
        when it fails, or the second solve finds nothing, the first solution is kept.
    """
    ranks = np.zeros(len(c))
    ranks[:n_ranked] = np.arange(1, n_ranked + 1, dtype=float)
    cap = keep_objective(c, float(first.fun), rel_tol=rel_tol, abs_tol=abs_tol)
    res, t = solve(
        ranks,
        integrality=integrality,
        lb=lb,
        ub=ub,
        constraints=[*constraints, cap],
        time_limit_s=time_limit_s,
    )
    ok = res.x is not None and res.status in (0, 1) and bool(accept(res.x))
    return TieBreak(x=res.x if ok else first.x, accepted=ok, res=res, time_s=t)
