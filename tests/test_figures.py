"""Static figures (figures.py): PNG bytes, deterministic, on the real Maine-et-Loire plans."""

from __future__ import annotations

import io

import pytest

from cnfs_geo import figures

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def plan(plan49_mixed):
    return plan49_mixed


def _size(png: bytes) -> tuple[int, int]:
    from matplotlib.image import imread

    h, w = imread(io.BytesIO(png), format="png").shape[:2]
    return w, h


@pytest.mark.parametrize(
    "draw, size",
    [
        (figures.static_map_png, (1100, 616)),
        (figures.priority_map_png, (880, 704)),
        (figures.circuits_map_png, (880, 660)),
    ],
)
def test_figures_are_deterministic_pngs(plan, draw, size):
    png = draw(plan)
    assert png[:8] == PNG
    assert draw(plan) == png
    assert b"Software" not in png and b"matplotlib" not in png.lower()
    assert _size(png) == size


def test_dpi_scales_the_figure(plan):
    assert _size(figures.priority_map_png(plan, dpi=55)) == (440, 352)


def test_epci_polygons_are_the_dissolved_communes(plan49):
    """The figures take the EPCI polygons of plan.epci: the same geometries as the
    communes dissolved by EPCI (byte for byte, the coverage union of the figures' own
    dissolve), and the same polygons as geopandas' general union (rings normalized)."""
    import shapely

    from cnfs_geo import territory

    got = figures._epci_polygons(plan49)
    want = territory.dissolve(plan49.communes[["epci", "geometry"]], "epci")
    assert list(got.index) == list(want.index)
    assert [shapely.to_wkb(g) for g in got.geometry] == [shapely.to_wkb(g) for g in want.geometry]
    unary = plan49.communes[["epci", "geometry"]].dissolve(by="epci")
    assert shapely.equals_exact(
        shapely.normalize(got.geometry.to_numpy()), shapely.normalize(unary.geometry.to_numpy()), 0
    ).all()


@pytest.mark.parametrize(
    "draw", [figures.static_map_png, figures.priority_map_png, figures.circuits_map_png]
)
def test_commune_fills_are_what_geopandas_draws(plan, draw, monkeypatch):
    """The communes filled from the paths built once per plan give the same PNG bytes as
    geopandas' own ``GeoDataFrame.plot`` (forced by making the paths unavailable), and
    the paths are built once per plan, not per figure."""
    fast = draw(plan)
    assert plan._figures_paths[0] is plan.communes and len(plan._figures_paths[1]) == len(
        plan.communes
    )
    monkeypatch.setattr(figures, "_commune_paths", lambda plan: None)
    assert draw(plan) == fast
