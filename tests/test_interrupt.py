"""An interrupted or killed ``cnfs-geo plan`` leaves the previous outputs untouched.

A first run writes a plan into a folder; then runs into the same folder are stopped by
SIGKILL and SIGINT at several moments of the writing stage (when the temporary folder
appears, when the new GeoPackage is being written in it). After each, the previous files
are byte-identical and the GeoPackage opens; Ctrl-C exits with status 130 and one line;
the temporary folder of a killed run is removed by the next run. The interrupted runs are
real processes (signals, exit status, standard error); the first and the last run, whose
point is the folder they leave, run in-process (``cli.main``, the same command).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
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


def _cmd(out: Path, posts: int = 2) -> list[str]:
    return [sys.executable, "-m", "cnfs_geo.cli", *_args(out, posts)]


def _run_in_process(out: Path, capsys) -> tuple[int, str]:
    from cnfs_geo import cli

    rc = cli.main(_args(out))
    return rc, capsys.readouterr().err


def _digests(out: Path) -> dict[str, str]:
    return {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in NAMES}


def _temps(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f"{TMP_PREFIX}{out.name}-*"))


def _stop_when(proc: subprocess.Popen, out: Path, moment: str, sig: int, old: list) -> None:
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
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    rc, err = _run_in_process(out, capsys)
    assert rc == 0, err
    before = _digests(out)
    stale_seen = []
    for moment, sig in moments:
        old = _temps(out)
        proc = subprocess.Popen(
            _cmd(out, posts=3), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        stale_seen.append(len(old))
        _stop_when(proc, out, moment, sig, old)
        _, err = proc.communicate(timeout=600)
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
