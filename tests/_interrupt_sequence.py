"""The interrupted runs of ``tests/test_interrupt.py``, as a script the test session runs
in the background (``interrupt49`` in ``tests/conftest.py``'s ``DEMO_COMMANDS``)::

    python tests/_interrupt_sequence.py --out OUT

A first ``cnfs-geo plan`` writes a plan into OUT; then runs into OUT are stopped by a
signal at a moment of their writing stage (:data:`MOMENTS`); a last run completes. What
is seen after each run (exit status, standard error, digests of the files, layers of the
GeoPackage, temporary folders) is printed as one JSON object on standard output, for the
test to assert on. Nothing is asserted here.

The interrupted runs are real processes (real signals, exit status, standard error): each
is forked from this process and runs ``cli.main`` there, so it starts with the modules
already imported and the files already read (a fresh interpreter spent about 2.4 s on that
before reaching the writing stage). Each child waits at its moment for the signal, so
that it arrives there whatever the load of the machine. An exception escaping
``cli.main`` in a child is printed with its traceback and exits with status 1, as the
interpreter would. The first and the last run, whose point is the folder they leave, run
in this process.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from cnfs_geo import catalog
from cnfs_geo.outputs import TMP_PREFIX

#: The files whose bytes must survive every interrupted run.
NAMES = ("plan.gpkg", "carte_couverture.html", "rapport.html")

#: (moment, signal) of each interrupted run, in order: before the first file is written
#: into the new temporary folder (``"tmp"``), or once the GeoPackage, written last, is in
#: it, before anything is moved (``"gpkg"``).
MOMENTS = (
    ("tmp", signal.SIGKILL),
    ("gpkg", signal.SIGINT),
    ("gpkg", signal.SIGKILL),
    ("tmp", signal.SIGINT),
)


def _args(out: Path, posts: int = 2) -> list[str]:
    # the writing stage is what is interrupted: the analyses that only add a section
    # (robustness, the comparison with commune points) or a file (the PDF) are left out
    # to keep each run short
    return ["plan", "--posts", str(posts), "--data-dir", str(catalog.bundle_dir()), "--out",
            str(out), "--sans-robustesse", "--sans-pdf", "--demand-unit", "commune"]  # fmt: skip


def _hold_at(moment: str) -> None:
    """In a child: make the writing stage wait (up to 5 s) at ``moment`` for the signal.
    A SIGINT interrupts the wait as it would interrupt the writing; a SIGKILL ends the
    process."""
    from cnfs_geo import maps, outputs

    if moment == "tmp":
        real_map = maps.coverage_map

        def coverage_map(*a, **k):
            time.sleep(5)
            return real_map(*a, **k)

        maps.coverage_map = coverage_map
    else:
        real_gpkg = outputs.write_geopackage

        def write_geopackage(*a, **k):
            real_gpkg(*a, **k)
            time.sleep(5)

        outputs.write_geopackage = write_geopackage


class _Child:
    """``cnfs-geo plan`` (:func:`_args`) in a process forked from this one, its writing
    stage held at ``moment`` (:func:`_hold_at`), standard error in ``err_path``,
    standard output discarded."""

    def __init__(self, out: Path, posts: int, err_path: Path, moment: str) -> None:
        self.err_path = err_path
        self.returncode: int | None = None
        sys.stdout.flush()
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns
            rc = 1
            try:
                err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(err, 2)
                os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
                sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
                sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
                from cnfs_geo import cli

                # Ctrl-C raises KeyboardInterrupt, as in an interpreter started from a
                # terminal (a process started in the background of a shell inherits
                # SIGINT ignored)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                _hold_at(moment)
                rc = cli.main(_args(out, posts))
            except BaseException:  # what the interpreter would print
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(rc)

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> tuple[int, str]:
        """Exit status (``-signal`` when killed by a signal) and standard error."""
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode, self.err_path.read_text(encoding="utf-8")


def _run_here(out: Path) -> dict:
    """A complete run in this process: exit status and standard error."""
    from cnfs_geo import cli

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = cli.main(_args(out))
    return {"rc": rc, "err": err.getvalue(), "temps_after": len(_temps(out))}


def _digests(out: Path) -> dict[str, str]:
    return {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in NAMES}


def _temps(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f"{TMP_PREFIX}{out.name}-*"))


def _stop_when(proc: _Child, out: Path, moment: str, sig: int, old: list) -> None:
    """Send ``sig`` once the writing stage reaches ``moment`` (a new temporary folder, or
    the GeoPackage in it); polls."""
    while proc.poll() is None:
        temps = [t for t in _temps(out) if t not in old]
        if temps and (moment == "tmp" or (temps[-1] / "plan.gpkg").exists()):
            os.kill(proc.pid, sig)
            return
        time.sleep(0.01)


def sequence(out: Path) -> dict:
    """Run the sequence into ``out`` (see the module docstring); what was seen."""
    import pyogrio

    seen: dict = {"first": _run_here(out)}
    if seen["first"]["rc"] != 0:
        return seen
    seen["before"] = _digests(out)
    seen["steps"] = []
    for i, (moment, sig) in enumerate(MOMENTS):
        old = _temps(out)
        proc = _Child(out, 3, out.parent / f"stderr-{i}.txt", moment)
        _stop_when(proc, out, moment, sig, old)
        rc, err = proc.wait()
        seen["steps"].append(
            {
                "moment": moment,
                "signal": signal.Signals(sig).name,
                "stale_at_start": len(old),
                "rc": rc,
                "err": err,
                "digests": _digests(out),
                "layers": len(pyogrio.list_layers(out / "plan.gpkg")),
                "temps_after": len(_temps(out)),
            }
        )
    seen["last"] = _run_here(out)
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    out = parser.parse_args().out
    out.parent.mkdir(parents=True, exist_ok=True)
    json.dump(sequence(out), sys.stdout, ensure_ascii=False, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
