"""An interrupted or killed ``cnfs-geo plan`` leaves the previous outputs untouched.

A first run writes a plan into a folder; then runs into the same folder are stopped by
SIGKILL and SIGINT at several moments of the writing stage (when the temporary folder
appears, when the new GeoPackage has been written in it, before anything is moved: the
child waits there for the signal, so that it arrives at that moment whatever the load).
After each, the previous files are byte-identical and the GeoPackage opens; Ctrl-C exits
with status 130 and one line; the temporary folder of a killed run is removed by the next
run.

The interrupted runs are real processes (real signals, exit status, standard error): each
is forked from the test process and runs ``cli.main`` there, so it starts with the modules
already imported and the files already read (a fresh interpreter spent about 2.4 s on that
before reaching the writing stage; ``tests/test_bad_input.py`` runs the command as
``python -m cnfs_geo.cli`` in fresh interpreters). An exception escaping ``cli.main`` in a
child is printed with its traceback and exits with status 1, as the interpreter would.
The first and the last run, whose point is the folder they leave, run in-process.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import time
import traceback
from pathlib import Path

import pytest

from cnfs_geo import catalog
from cnfs_geo.outputs import TMP_PREFIX

pytestmark = pytest.mark.slow

NAMES = ("plan.gpkg", "carte_couverture.html", "rapport.html")


def _args(out: Path, posts: int = 2) -> list[str]:
    # the writing stage is what is interrupted: the analyses that only add a section
    # (robustness, the comparison with commune points) or a file (the PDF) are left out
    # to keep each run short
    return ["plan", "--posts", str(posts), "--data-dir", str(catalog.bundle_dir()), "--out",
            str(out), "--sans-robustesse", "--sans-pdf", "--demand-unit", "commune"]  # fmt: skip


def _hold_at(moment: str) -> None:
    """In a child: make the writing stage wait (up to 5 s) at ``moment`` for the signal
    the test sends, so that it arrives there whatever the load of the machine: before the
    first file is written into the new temporary folder (``"tmp"``), or once the
    GeoPackage, written last, is in it, before anything is moved (``"gpkg"``). A SIGINT
    interrupts the wait as it would interrupt the writing; a SIGKILL ends the process."""
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
    """``cnfs-geo plan`` (:func:`_args`) in a process forked from the test process, its
    writing stage held at ``moment`` (:func:`_hold_at`), standard error in ``err_path``,
    standard output discarded."""

    def __init__(self, out: Path, posts: int, err_path: Path, moment: str) -> None:
        self.err_path = err_path
        self.returncode: int | None = None
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
                # terminal (a test session started in the background of a shell inherits
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

    def send_signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait(self) -> tuple[int, str]:
        """Exit status (``-signal`` when killed by a signal) and standard error."""
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode, self.err_path.read_text(encoding="utf-8")


def _run_in_process(out: Path, capsys) -> tuple[int, str]:
    from cnfs_geo import cli

    rc = cli.main(_args(out))
    return rc, capsys.readouterr().err


def _digests(out: Path) -> dict[str, str]:
    return {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in NAMES}


def _temps(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f"{TMP_PREFIX}{out.name}-*"))


def _stop_when(proc: _Child, out: Path, moment: str, sig: int, old: list) -> None:
    """Send ``sig`` once the writing stage reaches ``moment`` (a new temporary folder, or
    the GeoPackage in it); polls, no timed assertion."""
    while proc.poll() is None:
        temps = [t for t in _temps(out) if t not in old]
        if temps and (moment == "tmp" or (temps[-1] / "plan.gpkg").exists()):
            proc.send_signal(sig)
            return
        time.sleep(0.01)


@pytest.mark.parametrize(
    "moments", [[("tmp", signal.SIGKILL), ("gpkg", signal.SIGINT), ("gpkg", signal.SIGKILL),
                 ("tmp", signal.SIGINT)]],
)  # fmt: skip
def test_interrupts_leave_previous_outputs_intact(tmp_path, moments, capsys):
    import pyogrio

    out = tmp_path / "49"
    rc, err = _run_in_process(out, capsys)
    assert rc == 0, err
    before = _digests(out)
    stale_seen = []
    for i, (moment, sig) in enumerate(moments):
        old = _temps(out)
        proc = _Child(out, 3, tmp_path / f"stderr-{i}.txt", moment)
        stale_seen.append(len(old))
        _stop_when(proc, out, moment, sig, old)
        _, err = proc.wait()
        assert _digests(out) == before, (moment, sig)
        assert len(pyogrio.list_layers(out / "plan.gpkg")) >= 6
        assert "Traceback" not in err
        if sig == signal.SIGINT and proc.returncode != 0:
            assert proc.returncode == 130 and len(err.strip().splitlines()) == 1, err
            assert not _temps(out)  # an interrupted run cleans after itself
        if sig == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL
            assert _temps(out)  # a kill leaves its temporary folder…
    # … which the next run removed before writing: at most one stale folder at any start
    assert max(stale_seen) <= 1
    rc, err = _run_in_process(out, capsys)
    assert rc == 0 and not _temps(out), err
