"""Demo: the sequence a new user runs for a département, against a LOCAL server.

For each département (default 53 and 2A), on this machine and without network:

1. build the FIXTURES of the official sources (tests/official_fixtures.py: the real raw
   files reshaped to each documented format) and serve them on 127.0.0.1;
2. ``cnfs-geo data fetch --departement D --data-dir X`` with ``CNFS_GEO_FETCH_BASE_URL``
   pointing at that server;
3. ``cnfs-geo plan --departement D --data-dir X``;

printing both commands' output (figures and the list of sources with their vintages).
Run on demand (needs the raw data set)::

    CNFS_GEO_DATA_DIR=/path/to/raw .venv/bin/python benchmarks/demo_fetch_local.py [53 2A]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from official_fixtures import FixtureServer, build  # noqa: E402

from cnfs_geo import catalog  # noqa: E402


def main(deps: list[str]) -> int:
    raw = os.environ.get(catalog.ENV_VAR)
    if not raw:
        print(f"set {catalog.ENV_VAR} to the raw data folder", file=sys.stderr)
        return 2
    cli = str(Path(sys.executable).parent / "cnfs-geo")
    with tempfile.TemporaryDirectory(prefix="cnfs_geo_demo_") as tmp:
        for dep in deps:
            fixtures = build(Path(raw), [dep], Path(tmp) / f"officiel_{dep}")
            data = Path(tmp) / f"donnees_{dep}"
            with FixtureServer(fixtures) as srv:
                env = {**os.environ, catalog.FETCH_BASE_ENV: srv.url}
                env.pop(catalog.ENV_VAR)  # a new user: no raw data set
                for cmd in (
                    [cli, "data", "fetch", "--departement", dep, "--data-dir", str(data)],
                    [cli, "plan", "--departement", dep, "--data-dir", str(data), "--out",
                     str(Path(tmp) / f"sorties_{dep}")],
                ):  # fmt: skip
                    shown = " ".join(["cnfs-geo", *cmd[1:]]).replace(tmp, "$TMP")
                    print(f"$ {shown}")
                    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
                    print(res.stdout.replace(tmp, "$TMP"), end="")
                    if res.stderr:
                        print(res.stderr.replace(tmp, "$TMP"), end="", file=sys.stderr)
                    if res.returncode:
                        print(f"exit status {res.returncode}")
                        return res.returncode
                print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["53", "2A"]))
