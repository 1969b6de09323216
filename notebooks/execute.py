"""Execute the notebooks in place and store them with their outputs (``make notebooks``).

Deterministic: every notebook runs top to bottom in a fresh kernel on the embedded 49 data
(``CNFS_GEO_DATA_DIR`` unset), then the volatile metadata is stripped (execution timestamps,
kernel and Python versions) and consecutive stream outputs are merged, so that running it
again gives the same files.

    python notebooks/execute.py [NOTEBOOK ...]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop what changes from one run to the next and is not the notebook's content."""
    nb.metadata.pop("widgets", None)
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    count = 0
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count
        for out in cell.get("outputs", []):
            if "execution_count" in out:
                out["execution_count"] = count
            out.get("metadata", {}).pop("transient", None)
    return nb


def execute(path: Path) -> None:
    """Run one notebook and write it back with its outputs (atomically)."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        # one output per run of stdout/stderr: the kernel flushes on a timer, so a print
        # may otherwise be split into several stream outputs differently at every run
        coalesce_streams=True,
    ).execute()
    tmp = path.with_name(path.name + ".tmp")
    nbformat.write(clean(nb), tmp)
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    os.environ.pop("CNFS_GEO_DATA_DIR", None)  # the narrative is about the embedded bundle
    os.environ["PYTHONHASHSEED"] = "0"
    os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend stores the figures
    paths = [Path(a) for a in argv] or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        print(f"exécution de {path.name}…", flush=True)
        execute(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
