"""The 49 plans and maps the test modules share, built once per session, most of them in
a background process while the first tests run (``tests/conftest.py``).

:data:`BUILDS` names each object, the objects it is built from and how. The session
fixture of the same name (``conftest.py``) loads it from the background process when
that built it, and builds it in the test process otherwise: the object is the same
either way (the determinism tests compare such objects with builds of their own).

Run as a script, this module is the background process::

    python tests/_builds.py --out DIR

It builds the objects of :data:`BUILDS` in order, skipping those absent from
``DIR/wanted.json`` once that file exists (the session writes it after collection), and
writes each as ``DIR/<name>.pkl`` (cloudpickle, written then renamed), so the session
can load one as soon as it is there.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnfs_geo import catalog


def _bundle() -> str:
    return str(catalog.bundle_dir())


def _prepare(**kw: Any) -> Any:
    from cnfs_geo.plan import Scenario, prepare

    return prepare(Scenario(departement="49", data_dir=_bundle(), **kw))


def _run(prepared: Any, **changes: Any) -> Any:
    from cnfs_geo.plan import run

    return run(dataclasses.replace(prepared.scenario, **changes), prepared=prepared)


def _map_text(plan: Any) -> str:
    from cnfs_geo import maps

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "carte_couverture.html"
        maps.coverage_map(plan, path=path)
        return path.read_text(encoding="utf-8")


def _map_bytes(plan: Any) -> bytes:
    from cnfs_geo import maps

    with tempfile.TemporaryDirectory() as folder:
        maps.coverage_map(plan, path=Path(folder))  # a folder gets the map's file name
        return (Path(folder) / maps.MAP_FILENAME).read_bytes()


def _offer49(got: dict[str, Any]) -> Any:
    from cnfs_geo import offer, territory

    bundle = catalog.DataDir(path=catalog.bundle_dir(), is_bundle=True, origin="bundle")
    return offer.places_from_sources(territory.communes_from_cog("49", bundle), bundle)


def _plan49_fresh(got: dict[str, Any]) -> Any:
    from cnfs_geo.plan import Scenario, run

    return run(Scenario(departement="49", posts=8, data_dir=_bundle()))


def _plan49_equity(got: dict[str, Any]) -> Any:
    from cnfs_geo.plan import run

    scenario = dataclasses.replace(got["plan49"].scenario, model="equity")
    return run(scenario, prepared=got["prepared49"])


def _plan49_iris(got: dict[str, Any]) -> Any:
    from cnfs_geo.plan import Scenario, run

    return run(Scenario(departement="49", posts=8, demand_unit="iris", data_dir=_bundle()))


#: name → (the objects it is built from, builder): in the order the test modules first
#: need them (``pytest --setup-plan``). See the fixtures of the same names in conftest.py.
BUILDS: dict[str, tuple[tuple[str, ...], Callable[[dict[str, Any]], Any]]] = {
    "prepared49_commune": ((), lambda g: _prepare(posts=8, demand_unit="commune")),
    "plan49_commune": (("prepared49_commune",), lambda g: _run(g["prepared49_commune"])),
    "prepared49": ((), lambda g: _prepare()),
    "plan49": (("prepared49",), lambda g: _run(g["prepared49"], posts=8, threshold_minutes=10)),
    "plan49_mixed": (
        ("prepared49",),
        lambda g: _run(g["prepared49"], posts=6, itinerant_posts=2),
    ),
    "map49_html": (("plan49",), lambda g: _map_text(g["plan49"])),
    "plan49_fresh": ((), _plan49_fresh),
    "map49_fresh_bytes": (("plan49_fresh",), lambda g: _map_bytes(g["plan49_fresh"])),
    "offer49": ((), _offer49),
    "prepared49_15": ((), lambda g: _prepare(threshold_minutes=15)),
    "prepared49_fibre": ((), lambda g: _prepare(fibre_target_pct=100.0)),
    "plan49_equity": (("plan49", "prepared49"), _plan49_equity),
    "plan49_iris": ((), _plan49_iris),
    "prepared49_commune2018": ((), lambda g: _prepare(posts=8, demand_unit="commune2018")),
    "plan49_commune2018": (
        ("prepared49_commune2018",),
        lambda g: _run(g["prepared49_commune2018"]),
    ),
}


def build(name: str, got: dict[str, Any]) -> Any:
    """Build ``name`` from the objects it needs (``got``, by name)."""
    deps, builder = BUILDS[name]
    return builder({d: got[d] for d in deps})


def closure(names: set[str]) -> set[str]:
    """``names`` and every object of :data:`BUILDS` they are built from."""
    out: set[str] = set()
    todo = [n for n in names if n in BUILDS]
    while todo:
        name = todo.pop()
        if name not in out:
            out.add(name)
            todo.extend(BUILDS[name][0])
    return out


def main() -> int:
    import cloudpickle

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    out = parser.parse_args().out
    wanted_file = out / "wanted.json"
    got: dict[str, Any] = {}
    for name in BUILDS:
        if wanted_file.exists() and name not in closure(
            set(json.loads(wanted_file.read_text(encoding="utf-8")))
        ):
            continue
        missing = [d for d in BUILDS[name][0] if d not in got]
        if missing:  # skipped before the list of wanted objects said otherwise
            continue
        got[name] = build(name, got)
        tmp = out / f"{name}.pkl.tmp"
        tmp.write_bytes(cloudpickle.dumps(got[name]))
        os.replace(tmp, out / f"{name}.pkl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
