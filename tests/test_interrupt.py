"""An interrupted or killed ``cnfs-geo plan`` leaves the previous outputs untouched.

A first run writes a plan into a folder; then runs into the same folder are stopped by
SIGKILL and SIGINT at several moments of the writing stage (when the temporary folder
appears, when the new GeoPackage has been written in it, before anything is moved: the
child waits there for the signal, so that it arrives at that moment whatever the load).
After each, the previous files are byte-identical and the GeoPackage opens; Ctrl-C exits
with status 130 and one line; the temporary folder of a killed run is removed by the next
run.

The runs are real processes (real signals, exit status, standard error), made by
``tests/_interrupt_sequence.py``, which the session runs in the background with the other
shared commands (``interrupt49``, ``DEMO_COMMANDS`` in ``tests/conftest.py``) and which
reports what it saw after each run; this module asserts on that report.
"""

from __future__ import annotations

import json

import pytest
from _interrupt_sequence import MOMENTS, NAMES

pytestmark = pytest.mark.slow  # alone, it waits for its run in the background


@pytest.fixture(scope="module")
def seen(interrupt49):
    assert interrupt49.rc == 0, interrupt49.stderr
    return json.loads(interrupt49.stdout)


def test_interrupts_leave_previous_outputs_intact(seen):
    assert seen["first"]["rc"] == 0, seen["first"]["err"]
    before = seen["before"]
    assert sorted(before) == sorted(NAMES)
    steps = seen["steps"]
    assert [(s["moment"], s["signal"]) for s in steps] == [(m, sig.name) for m, sig in MOMENTS]
    for step in steps:
        moment, sig, rc, err = step["moment"], step["signal"], step["rc"], step["err"]
        assert step["digests"] == before, (moment, sig)
        assert step["layers"] >= 6
        assert "Traceback" not in err
        if sig == "SIGINT" and rc != 0:
            assert rc == 130 and len(err.strip().splitlines()) == 1, err
            assert step["temps_after"] == 0  # an interrupted run cleans after itself
        if sig == "SIGKILL":
            assert rc == -9
            assert step["temps_after"] > 0  # a kill leaves its temporary folder…
    # … which the next run removed before writing: at most one stale folder at any start
    assert max(s["stale_at_start"] for s in steps) <= 1
    assert seen["last"]["rc"] == 0 and seen["last"]["temps_after"] == 0, seen["last"]["err"]
