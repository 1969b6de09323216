"""Notebooks run top to bottom on the embedded data (nbclient)."""

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, monkeypatch):
    monkeypatch.delenv("CNFS_GEO_DATA_DIR", raising=False)  # the narrative is about the bundle
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
    assert NOTEBOOKS, "no notebook found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_with_outputs_and_parameters(path):
    """As `make notebooks` stores it: a `parameters` cell first, figures and tables kept,
    no volatile metadata (so that running it again gives the same file)."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    for name in ("DEPARTEMENT", "POSTS", "THRESHOLD"):
        assert f"{name} = " in code[0].source, name
    kinds = {k for c in code for o in c.get("outputs", []) for k in o.get("data", {})}
    assert {"image/png", "text/html"} <= kinds, kinds  # a figure and a table at least
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert not any("execution" in c.metadata for c in nb.cells)
    assert set(nb.metadata.get("language_info", {})) <= {"name"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_outputs_do_not_depend_on_the_checkout(path):
    """No stored output names the checkout's directory or the virtualenv (a data-directory
    repr or a library warning printing a path would make `make notebooks` give different
    files from one clone or worktree to another)."""
    root = str(Path(__file__).resolve().parent.parent)
    nb = nbformat.read(path, as_version=4)
    outputs = [
        json.dumps(o, ensure_ascii=False)
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    ]
    assert outputs
    leaks = [o[:200] for o in outputs if root in o or "site-packages" in o]
    assert not leaks, leaks
