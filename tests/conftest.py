"""Shared test fixtures.

Tests run on real data: the embedded Maine-et-Loire bundle (``data/49``) always,
and the national raw files when ``CNFS_GEO_DATA_DIR`` points at them (CI sets
it to ``../shared/data/raw``).

Markers (registered in pyproject.toml) are set here, so that ``pytest -m "not national and
not notebooks"`` is the fast offline run: ``national`` on every test that uses ``raw_dir``
(directly or through another fixture), ``notebooks`` on tests/test_notebooks.py, ``slow`` on
the tests listed in ``SLOW`` (over ~5 s on an idle machine, neither national nor notebooks).

The 49 plans and maps most modules share (``prepared49``, ``plan49``, ``map49_html``…,
:data:`_builds.BUILDS` in ``tests/_builds.py``) are built in a background process started
with the session, on the other core while the test process collects and runs the first
tests; a fixture loads its object from there, or builds it itself when that process did
not (no cloudpickle, a failure: the same object either way).

The demo commands the tests share (``cli49``, ``cli49_mixed``, ``cli49_again`` for
the determinism of the files, the interrupted runs of ``interrupt49``…) run in their own
processes, started with the session; the
modules using them run last (:data:`DEMO_COMMANDS`), so the commands run on the other core
meanwhile.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cnfs_geo import catalog


@pytest.fixture(scope="session")
def bundle():
    """The embedded 49 bundle as a DataDir."""
    return catalog.DataDir(path=catalog.bundle_dir(), is_bundle=True, origin="bundle")


@pytest.fixture(scope="session")
def raw_dir() -> Path:
    """National raw data directory from $CNFS_GEO_DATA_DIR; skips when not set."""
    value = os.environ.get(catalog.ENV_VAR)
    if not value or not Path(value).is_dir():
        pytest.skip(f"national data not available: set {catalog.ENV_VAR} to the raw data folder")
    return Path(value).resolve()


@pytest.fixture(scope="session")
def national(raw_dir):
    """The national raw data directory as a DataDir (skips when not set)."""
    return catalog.resolve_data_dir(raw_dir)


@pytest.fixture(scope="session")
def cog49(bundle):
    """The 176 communes of Maine-et-Loire from the embedded bundle
    (:func:`cnfs_geo.territory.communes_from_cog`), built once per session. Read-only:
    modules take a ``.copy()``."""
    from cnfs_geo import territory

    return territory.communes_from_cog("49", bundle)


@pytest.fixture(scope="session")
def offer49(request):
    """Places and offer report of the bundle (:func:`cnfs_geo.offer.places_from_sources` on
    :func:`cog49`), built once per session. Read-only."""
    return _built(request, "offer49")


@pytest.fixture(scope="session")
def prepared49(request):
    """Everything of the default Maine-et-Loire scenario that does not depend on the number
    of posts (:func:`cnfs_geo.plan.prepare`), built once per session. Read-only."""
    return _built(request, "prepared49")


@pytest.fixture(scope="session")
def prepared49_15(request):
    """:func:`prepared49` at 15 minutes instead of 10 (``threshold_minutes=15``), built
    once per session (test_plan and test_robustness). Read-only."""
    return _built(request, "prepared49_15")


@pytest.fixture(scope="session")
def plan49(request):
    """The default Maine-et-Loire plan (8 fixed posts, 10 min; the first demo) on the
    embedded bundle, built once per session. Read-only."""
    return _built(request, "plan49")


@pytest.fixture(scope="session")
def prepared49_commune(request):
    """:func:`cnfs_geo.plan.prepare` of :func:`plan49_commune`'s scenario, built once per
    session. Read-only."""
    return _built(request, "prepared49_commune")


@pytest.fixture(scope="session")
def plan49_commune(request):
    """The default Maine-et-Loire plan counted at one representative point per commune
    (``demand_unit="commune"``, the default before issue 9), built once per session from
    :func:`prepared49_commune`. Read-only."""
    return _built(request, "plan49_commune")


@pytest.fixture(scope="session")
def prepared49_commune2018(request):
    """:func:`cnfs_geo.plan.prepare` of Maine-et-Loire, 8 fixed posts, demand counted on the
    2018 communes (``demand_unit="commune2018"``), built once per session (test_plan and
    test_robustness). Read-only."""
    return _built(request, "prepared49_commune2018")


@pytest.fixture(scope="session")
def plan49_commune2018(request):
    """The plan of :func:`prepared49_commune2018`'s scenario, built once per session.
    Read-only."""
    return _built(request, "plan49_commune2018")


@pytest.fixture(scope="session")
def plan49_equity(request):
    """:func:`plan49`'s scenario with the equity placement model (``model="equity"``),
    built once per session from :func:`prepared49` (the model is chosen after
    ``prepare``; used by test_plan and test_consistency). Read-only."""
    return _built(request, "plan49_equity")


@pytest.fixture(scope="session")
def plan49_mixed(request):
    """Maine-et-Loire, 6 fixed + 2 itinerant posts (the second demo), built once per
    session. Read-only."""
    return _built(request, "plan49_mixed")


@pytest.fixture(scope="session")
def map49_html(request):
    """The coverage map of :func:`plan49` (``maps.coverage_map`` written to a file, read
    back), built once per session for test_maps and test_report."""
    return _built(request, "map49_html")


@pytest.fixture(scope="session")
def plan49_fresh(request):
    """:func:`plan49`'s scenario run again from scratch (``plan.run`` without
    ``prepared``), once per session: the second build that the determinism tests compare
    with :func:`plan49`'s outputs (test_maps, test_report). Read-only."""
    return _built(request, "plan49_fresh")


@pytest.fixture(scope="session")
def map49_fresh_bytes(request) -> bytes:
    """The coverage map of :func:`plan49_fresh` written into a folder (which gets
    ``carte_couverture.html``) and read back as bytes, once per session: a second build
    of :func:`map49_html` (test_maps, test_report)."""
    return _built(request, "map49_fresh_bytes")


@pytest.fixture(scope="session")
def outputs_of(tmp_path_factory):
    """``outputs_of(plan)``: the folder of ``write_outputs(plan, folder, with_pdf=False)``
    (map, report, GeoPackage), written once per session per plan (a session plan fixture:
    test_consistency checks them, test_report reads the map). Read-only: copy before
    changing a file."""
    from cnfs_geo.outputs import write_outputs

    written: dict[int, tuple[object, Path]] = {}

    def outputs(plan) -> Path:
        if id(plan) not in written:
            folder = tmp_path_factory.mktemp("outputs")
            write_outputs(plan, folder, with_pdf=False)
            written[id(plan)] = (plan, folder)  # the plan kept: its id is not reused
        return written[id(plan)][1]

    return outputs


@pytest.fixture(scope="session")
def plan49_iris(request):
    """Maine-et-Loire, 8 fixed posts, IRIS demand units, built once per session (used by
    test_plan, test_report and test_consistency). Read-only."""
    return _built(request, "plan49_iris")


#: Tests over ~5 s that are neither national nor notebooks, by module (every test of it) or
#: by node id without parameters (``module.py::test_name``). Measured with --durations.
SLOW: frozenset[str] = frozenset(
    {
        "test_placement_scalable.py::test_bound_is_above_the_exact_optimum_and_the_posts_below",
        "test_placement_scalable.py::test_scalable_is_deterministic_when_it_converges",
        "test_plan.py::test_compare_variants",
        "test_plan.py::test_settings_reach_the_gap_and_itinerant_stages",
        "test_plan.py::test_compare_posts_curve",
        "test_plan.py::test_equity_model_plan",
        "test_plan.py::test_other_threshold_changes_the_diagnosis",
        "test_plan.py::test_fixed_plus_itinerant_plan",
        "test_plan.py::test_fibre_what_if_scenario",
        "test_cli.py::test_plan_49_writes_every_output",
        "test_pdf.py",  # WeasyPrint lays out ~20 A4 pages per PDF
        "test_national.py::test_national_road_run_builds_the_graph_inside_the_task",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark national, notebooks and slow tests (see the module docstring); move the
    modules using a demo command (:data:`DEMO_COMMANDS`, computed by other processes
    started with the session) to the end, their order kept, to give those time."""
    late = set()
    for item in items:
        module = item.path.name
        if "raw_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.national)
        if module == "test_notebooks.py":
            item.add_marker(pytest.mark.notebooks)
        name = getattr(item, "originalname", item.name)
        if module in SLOW or f"{module}::{name}" in SLOW:
            item.add_marker(pytest.mark.slow)
        if set(DEMO_COMMANDS) & set(getattr(item, "fixturenames", ())):
            late.add(item.path)
    items.sort(key=lambda item: item.path in late)  # stable: the order is kept otherwise
    if _BACKGROUND:
        _BACKGROUND[0].want({n for item in items for n in getattr(item, "fixturenames", ())})


@pytest.fixture(scope="session")
def fs49(bundle, cog49):
    """The real 49 placement instance shared by the placement tests (embedded bundle).

    176 communes (COG 2026 population, representative points), candidates = every
    chef-lieu, existing sites = the 28 France Services of 49 (ANCT 2024-08-01),
    crow-fly OD at 10 min (``od``), 60 min (``od_wide``) and dense (``dense``).
    """
    import geopandas as gpd
    import pandas as pd

    from cnfs_geo import access

    T = 10.0
    data_dir = bundle
    communes = cog49.copy()
    fs = pd.read_csv(data_dir.file("france_services"), dtype={"id_fs": str, "insee_com": str})
    fs = fs[fs["insee_dep"].astype(str) == "49"]
    existing = (
        gpd.GeoDataFrame(
            {"place_id": "fs-" + fs["id_fs"], "insee": fs["insee_com"]},
            geometry=gpd.points_from_xy(fs["longitude"], fs["latitude"]),
            crs="EPSG:4326",
        )
        .to_crs(communes.crs)
        .set_index("place_id", drop=False)
    )
    cand = gpd.GeoDataFrame(
        {
            "insee": communes.index.to_numpy(),
            "host": "mairie",
            "epci": communes["epci"].to_numpy(),
            "x": communes["chef_lieu_x"].to_numpy(),
            "y": communes["chef_lieu_y"].to_numpy(),
        },
        geometry=gpd.points_from_xy(communes["chef_lieu_x"], communes["chef_lieu_y"]),
        index=pd.Index("commune:" + communes.index, name="candidate_id"),
        crs=communes.crs,
    )
    demand_xy = communes[["ref_x", "ref_y"]].set_axis(["x", "y"], axis=1)
    ex_xy = pd.DataFrame({"x": existing.geometry.x, "y": existing.geometry.y}, index=existing.index)
    sites_xy = pd.concat([cand[["x", "y"]], ex_xy])
    od = access.od_crowfly(demand_xy, sites_xy, max_minutes=T)
    od_wide = access.od_crowfly(demand_xy, sites_xy, max_minutes=60)
    od_all = access.od_crowfly(demand_xy, sites_xy, max_minutes=1e6)
    dense = od_all.pivot(index="origin_id", columns="destination_id", values="minutes").reindex(
        index=communes.index.astype(str), columns=sites_xy.index
    )
    assert not dense.isna().any().any()
    return {
        "communes": communes,
        "existing": existing,
        "cand": cand,
        "od": od,
        "od_wide": od_wide,
        "dense": dense,
        "n_cand": len(cand),
        "ex_ids": list(existing.index),
    }


#: The production date of the PDFs of the shared command-line runs: 30 November 2026, UTC.
CLI_PDF_EPOCH = int(datetime.datetime(2026, 11, 30, tzinfo=datetime.UTC).timestamp())


def _bundle(folder: Path) -> tuple[list[str], dict]:
    """The embedded bundle: no argument, nothing to return."""
    return [], {}


def _bundle_copy(folder: Path, edit: Any) -> Path:
    """A copy of the bundle in ``folder/data`` changed by ``edit(copy)``, its MANIFEST
    resealed (as for files already so at their source)."""
    import shutil

    from _bundle_copies import reseal

    copy = folder / "data"
    shutil.copytree(catalog.bundle_dir(), copy)
    edit(copy)
    reseal(copy)
    return copy


def _repaired_bundle(folder: Path) -> tuple[list[str], dict]:
    """A copy of the bundle carrying every repair of ``tests/_bundle_copies.py`` (each in
    its own file): ``--data-dir`` and the ids of the two France Services sites whose
    coordinates are repaired (``zero``, ``swapped``)."""
    from _bundle_copies import coordinate_repairs, repairs

    ids: list[str] = []

    def edit(copy: Path) -> None:
        repairs(copy)
        ids.extend(coordinate_repairs(copy))

    copy = _bundle_copy(folder, edit)
    return ["--data-dir", str(copy)], {"zero": ids[0], "swapped": ids[1]}


def _corrupted_bundle(key: str, corruption: str) -> Any:
    """A function making a copy of the bundle whose file ``key`` is corrupted by
    ``tests/_bundle_copies.CORRUPTIONS[corruption]``: ``--data-dir`` and ``file`` (the
    file's name)."""

    def data(folder: Path) -> tuple[list[str], dict]:
        from _bundle_copies import CORRUPTIONS, REL

        copy = _bundle_copy(folder, lambda c: CORRUPTIONS[corruption](c / REL[key]))
        return ["--data-dir", str(copy)], {"file": Path(REL[key]).name}

    return data


#: The commands the tests share, by fixture name, in the order they run (the order the
#: tests need them): ``python -m cnfs_geo.cli ARGS --out OUT`` (the PDF dated
#: :data:`CLI_PDF_EPOCH` through ``SOURCE_DATE_EPOCH``), or ``python tests/SCRIPT ARGS
#: --out OUT`` when ARGS starts with a script's name, the data its function prepares,
#: and the name of its output folder. Each fixture gives ``out``, ``rc``, ``stdout``,
#: ``stderr`` and what the data function returned (read-only: copy before changing a file).
DEMO_COMMANDS: dict[str, tuple[list[str], Any, str]] = {
    # test_bad_input: a copy carrying every repair (the repairs are said before the
    # robustness analysis and the PDF, left out), and two corrupt copies, whose error
    # must reach the real standard error without a traceback
    "repaired49": (["plan", "--posts", "2", "--sans-robustesse", "--sans-pdf"],
                   _repaired_bundle, "out"),
    "bad49_fibre_dup": (["plan"], _corrupted_bundle("fibre", "dup_row"), "o"),
    "bad49_cog_latin1": (["plan"], _corrupted_bundle("cog_communes", "latin1"), "o"),
    # the two demos (make demo, same scenarios as plan49 and plan49_mixed), progress
    # forced on (standard error is a file)
    "cli49": (["--progression", "plan", "--departement", "49", "--posts", "8",
               "--threshold", "10"], _bundle, "49"),
    "cli49_mixed": (["--progression", "plan", "--departement", "49", "--posts", "6",
                     "--itinerant", "2"], _bundle, "49_mutualise"),
    # test_cli: the comparison of numbers of posts
    "compare49": (["compare", "--posts", "0", "2", "--budget", "0"], _bundle, "comparaison"),
    # the first demo again, in another process: same inputs, same files (test_pdf, test_cli)
    "cli49_again": (["--progression", "plan", "--departement", "49", "--posts", "8",
                     "--threshold", "10"], _bundle, "49"),
    # test_robustness: a plan without the robustness analysis
    "cli49_sans_robustesse": (["plan", "--departement", "49", "--posts", "4",
                               "--sans-robustesse", "--sans-pdf", "--demand-unit", "commune"],
                              _bundle, "49"),
    # test_interrupt: runs stopped by signals while writing (a script of tests/, which
    # prints what it saw as JSON)
    "interrupt49": (["_interrupt_sequence.py"], _bundle, "49"),
}  # fmt: skip


class _Commands:
    """The commands of :data:`DEMO_COMMANDS` a session uses, run one after the other in
    other processes: :meth:`advance` starts the next one when none is running (called
    before each test, so no thread is needed); :meth:`wait_for` waits for one. ``first``:
    a process already running that goes before them (the background builds: the tests
    need them sooner)."""

    def __init__(
        self, started: dict[str, SimpleNamespace], env: dict[str, str], first: Any = None
    ) -> None:
        self.queue = list(started.values())
        self.env = env
        self.current = None if first is None else SimpleNamespace(proc=first)

    def advance(self) -> None:
        import subprocess

        if self.current is not None and self.current.proc.poll() is None:
            return  # still running
        self.current = self.queue.pop(0) if self.queue else None
        if self.current is not None:
            so, se = (p.open("w") for p in self.current.logs)
            with so, se:
                self.current.proc = subprocess.Popen(
                    self.current.cmd, stdout=so, stderr=se, env=self.env
                )

    def wait_for(self, command: SimpleNamespace) -> int:
        while command.proc is None:  # not started yet: the ones before it first
            assert self.current is not None
            self.current.proc.wait(timeout=900)
            self.advance()
        return command.proc.wait(timeout=900)

    def stop(self) -> None:
        self.queue.clear()
        if self.current is not None and self.current.proc.poll() is None:
            self.current.proc.kill()
            self.current.proc.wait()


_RUNNING: list[_Commands] = []


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Start the next shared command when the previous one has finished."""
    for commands in _RUNNING:
        commands.advance()


@pytest.fixture(scope="session", autouse=True)
def _demo_commands_started(request, tmp_path_factory):
    """Run the commands of :data:`DEMO_COMMANDS` the selected tests use, each as
    ``python -m cnfs_geo.cli`` in its own process, one after the other from the beginning
    of the session (:class:`_Commands`, no thread): they run on the other core while the
    first tests run (the modules using them run last, see
    :func:`pytest_collection_modifyitems`). One at a time, so the tests keep a core. The
    one running is killed at the end of the session, the next ones not started."""
    import sys

    used = {n for item in request.session.items for n in item.fixturenames}
    env = _commands_env()
    started: dict[str, SimpleNamespace] = {}
    for name, (args, data, folder) in DEMO_COMMANDS.items():
        if name in used:
            root = tmp_path_factory.mktemp(name)
            extra, found = data(root)
            out = root / folder
            program = ["-m", "cnfs_geo.cli"]
            if args and args[0].endswith(".py"):
                program, args = [str(Path(__file__).with_name(args[0]))], args[1:]
            cmd = [sys.executable, *program, *args, *extra, "--out", str(out)]
            started[name] = SimpleNamespace(
                cmd=cmd, out=out, logs=(root / "stdout.txt", root / "stderr.txt"), proc=None,
                **found,
            )  # fmt: skip
    commands = _Commands(started, env, _BACKGROUND[0].proc if _BACKGROUND else None)
    commands.advance()
    _RUNNING.append(commands)
    yield SimpleNamespace(commands=commands, started=started)
    _RUNNING.remove(commands)
    commands.stop()


def _command_fixture(name: str) -> Any:
    """The session fixture ``name``: what the command :data:`DEMO_COMMANDS` ``[name]``
    gave, once it has finished (``out``, ``rc``, ``stdout``, ``stderr``, and what its data
    function returned)."""

    @pytest.fixture(scope="session", name=name)
    def command(_demo_commands_started):
        started = _demo_commands_started.started[name]
        rc = _demo_commands_started.commands.wait_for(started)
        found = {k: v for k, v in vars(started).items() if k not in ("cmd", "proc", "logs")}
        return SimpleNamespace(
            **found,
            rc=rc,
            stdout=started.logs[0].read_text(encoding="utf-8"),
            stderr=started.logs[1].read_text(encoding="utf-8"),
        )

    command.__doc__ = f"What ``{' '.join(DEMO_COMMANDS[name][0])}`` gave (DEMO_COMMANDS)."
    return command


for _name in DEMO_COMMANDS:
    globals()[f"_command_{_name}"] = _command_fixture(_name)


# ---------------------------------------------------------------------------------------
# The 49 plans and maps of tests/_builds.py, built in a background process
# ---------------------------------------------------------------------------------------
class _Background:
    """``python tests/_builds.py --out DIR``, started with the session (before
    collection): it builds the objects of :data:`_builds.BUILDS` the session uses, in the
    order the tests first need them, on the other core, while the test process collects
    and runs the first tests."""

    def __init__(self, env: dict[str, str]) -> None:
        import subprocess
        import sys
        import tempfile

        self.out = Path(tempfile.mkdtemp(prefix="cnfs_geo_builds-"))
        self.log = (self.out / "stderr.txt").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("_builds.py")), "--out", str(self.out)],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            env=env,
        )

    def want(self, names: set[str]) -> None:
        """Tell the process which objects the collected tests use (the others are
        skipped)."""
        import json

        tmp = self.out / "wanted.json.tmp"
        tmp.write_text(json.dumps(sorted(names)), encoding="utf-8")
        os.replace(tmp, self.out / "wanted.json")

    def running(self) -> bool:
        return self.proc.poll() is None

    def load(self, name: str) -> Any:
        """The object ``name`` once the process has written it; :data:`_NOT_BUILT` when
        the process ended without it (skipped, or failed: its standard error is in
        ``stderr.txt``)."""
        import pickle
        import time

        path = self.out / f"{name}.pkl"
        while not path.exists():
            if not self.running() and not path.exists():
                return _NOT_BUILT
            time.sleep(0.005)
        return pickle.loads(path.read_bytes())

    def stop(self) -> None:
        import shutil

        if self.running():
            self.proc.kill()
        self.proc.wait()
        self.log.close()
        shutil.rmtree(self.out, ignore_errors=True)


_NOT_BUILT = object()
_BACKGROUND: list[_Background] = []


def _commands_env() -> dict[str, str]:
    """The environment of the background processes: the embedded bundle is their data
    (no ``CNFS_GEO_DATA_DIR``), the PDFs dated :data:`CLI_PDF_EPOCH`."""
    from cnfs_geo import pdf

    env = {k: v for k, v in os.environ.items() if k != catalog.ENV_VAR}
    env[pdf.DATE_ENV_VAR] = str(CLI_PDF_EPOCH)
    return env


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start the background builds (tests/_builds.py) when cloudpickle is there."""
    try:
        import cloudpickle  # noqa: F401  (the background process writes with it)
    except ImportError:
        return
    _BACKGROUND.append(_Background(_commands_env()))


def pytest_sessionfinish(session: pytest.Session) -> None:
    while _BACKGROUND:
        _BACKGROUND.pop().stop()


def _built(request: pytest.FixtureRequest, name: str) -> Any:
    """The object ``name`` of :data:`_builds.BUILDS`: from the background process when it
    built it, built here otherwise (from the session fixtures it is built from)."""
    from _builds import BUILDS, build

    obj = _BACKGROUND[0].load(name) if _BACKGROUND else _NOT_BUILT
    if obj is _NOT_BUILT:
        obj = build(name, {d: request.getfixturevalue(d) for d in BUILDS[name][0]})
    return obj


# ---------------------------------------------------------------------------------------
# Shared builds of the fast offline subset (one block, kept at the end of the file)
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def prepared49_fibre(request):
    """:func:`prepared49` with the fibre what-if (``fibre_target_pct=100.0``), built once per
    session (test_plan: the fibre scenario and the table of variants). Read-only."""
    return _built(request, "prepared49_fibre")
