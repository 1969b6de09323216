"""Writing a plan (cnfs_geo.outputs): the GeoPackage, deterministic, with every layer."""

import hashlib
import os
import signal

import geopandas as gpd
import pyogrio
import pytest

from cnfs_geo._errors import InterruptedAfterWriting
from cnfs_geo.outputs import write_geopackage


def test_geopackage_layers_and_determinism(plan49, tmp_path):
    plan = plan49
    a, b = tmp_path / "a.gpkg", tmp_path / "b.gpkg"
    write_geopackage(plan, a)
    write_geopackage(plan, b)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    layers = {name for name, _ in pyogrio.list_layers(a)}
    assert {"communes", "places", "posts", "epci", "departement"} <= layers
    communes = gpd.read_file(a, layer="communes")
    assert len(communes) == 176 and int(communes["population"].sum()) == 833_776
    for col in (
        "insee",
        "nom",
        "epci",
        "population",
        "need_index",
        "pct_fibre",
        "minutes_before",
        "covered_before",
        "minutes_after",
        "covered_after",
        "gap",
    ):
        assert col in communes.columns, col
    assert communes["insee"].str.len().eq(5).all()
    assert len(gpd.read_file(a, layer="posts")) == 8
    assert len(gpd.read_file(a, layer="epci")) == 10
    meta = gpd.read_file(a, layer="scenario").set_index("key")["value"]
    assert meta["travel_model"] == plan.travel_model and meta["demand_unit"] == plan.demand_unit
    assert meta["settings.detour_factor"] == "1.3"
    gc = gpd.read_file(a, layer="gap_communes")
    assert set(gc.loc[gc["threshold_min"] == 10, "insee"]) == set(
        plan.communes.index[plan.communes["minutes_before"] > 10]
    )


def test_write_files_moves_all_or_nothing(tmp_path):
    """The comparison's files are written together (outputs.write_files): a run stopped
    while writing (Ctrl-C in the second file) leaves the previous files as they were, and
    no temporary folder; a complete run replaces them all."""
    from cnfs_geo.outputs import TMP_PREFIX, write_files

    out = tmp_path / "comparaison"
    write_files(
        out, {"a.csv": lambda p: p.write_text("old a"), "b.png": lambda p: p.write_bytes(b"old b")}
    )

    def stopped(p):
        p.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_files(out, {"a.csv": lambda p: p.write_text("new a"), "b.png": stopped})
    assert (out / "a.csv").read_text() == "old a" and (out / "b.png").read_bytes() == b"old b"
    assert not list(tmp_path.glob(f"{TMP_PREFIX}*"))
    paths = write_files(
        out, {"a.csv": lambda p: p.write_text("new a"), "b.png": lambda p: p.write_bytes(b"new b")}
    )
    assert [p.name for p in paths] == ["a.csv", "b.png"]
    assert (out / "a.csv").read_text() == "new a" and (out / "b.png").read_bytes() == b"new b"


@pytest.fixture
def ctrl_c_raises():
    """SIGINT raises KeyboardInterrupt during the test, as in an interpreter started from a
    terminal (a test session started in the background of a shell inherits it ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_while_moving_is_held_until_every_file_is_moved(
    tmp_path, monkeypatch, ctrl_c_raises
):
    """A Ctrl-C (SIGINT) that arrives while the finished files are moved into place is
    delivered once all of them are moved: the folder never mixes new and previous files."""
    from cnfs_geo import outputs

    out = tmp_path / "sorties"
    names = ["a.csv", "b.png", "c.csv"]
    outputs.write_files(out, {n: (lambda p: p.write_text("old")) for n in names})
    real = os.replace
    calls = []

    def replace_then_interrupt(src, dst):
        calls.append(dst)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C during the first move
        real(src, dst)

    monkeypatch.setattr(outputs.os, "replace", replace_then_interrupt)
    with pytest.raises(KeyboardInterrupt) as e:
        outputs.write_files(out, {n: (lambda p: p.write_text("new")) for n in names})
    assert len(calls) == 3
    assert [(out / n).read_text() for n in names] == ["new"] * 3
    # the interrupt says that the new files are all in place, and the command says so
    assert isinstance(e.value, InterruptedAfterWriting) and e.value.folder == str(out)


def test_cli_says_the_new_outputs_are_complete_after_a_held_ctrl_c(monkeypatch, capsys):
    from cnfs_geo import catalog, cli

    def held(*a, **k):
        raise InterruptedAfterWriting("maps/49")

    monkeypatch.setattr(catalog, "verify", held)
    assert cli.main(["data", "check"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "les nouvelles sorties sont complètes dans maps/49" in err
