"""Crow-fly travel cost and the OD-table contract (cnfs_geo.access)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cnfs_geo import access
from cnfs_geo._errors import ValidationError
from cnfs_geo.settings import Settings


@pytest.fixture
def points():
    o = pd.DataFrame({"x": [0.0, 1000.0, 50_000.0], "y": [0.0, 0.0, 0.0]}, index=["a", "b", "c"])
    d = pd.DataFrame({"x": [0.0, 6000.0], "y": [0.0, 0.0]}, index=["p", "q"])
    return o, d


def test_od_crowfly_contract_cutoff_and_coincident_pairs(points):
    o, d = points
    od = access.od_crowfly(o, d, max_minutes=10)
    assert list(od.columns) == list(access.OD_TABLE_COLUMNS)
    # a-p coincide (zero distance, kept); c is beyond 10 min of everything
    assert list(zip(od["origin_id"], od["destination_id"], strict=True)) == [
        ("a", "p"),
        ("a", "q"),
        ("b", "p"),
        ("b", "q"),
    ]
    s = Settings()
    minutes_per_m = s.detour_factor / s.speed_m_per_min
    np.testing.assert_allclose(
        od["minutes"], [0.0, 6000 * minutes_per_m, 1000 * minutes_per_m, 5000 * minutes_per_m]
    )
    np.testing.assert_allclose(od["km"], od["minutes"] / minutes_per_m * s.detour_factor / 1000)
    assert od.attrs["travel_model"] == access.CROWFLY
    assert od.attrs["travel_model_label"] == access.travel_model_label()


def test_settings_none_means_the_defaults(points):
    o, d = points
    pd.testing.assert_frame_equal(
        access.od_crowfly(o, d, max_minutes=30),
        access.od_crowfly(o, d, max_minutes=30, settings=Settings()),
    )
    slow = access.od_crowfly(o, d, max_minutes=30, settings=Settings(speed_kmh=25))
    assert slow["minutes"].max() > access.od_crowfly(o, d, max_minutes=30)["minutes"].max()
    assert "25 km/h" in access.travel_model_label(Settings(speed_kmh=25))


def test_empty_od_has_the_contract(points):
    o, d = points
    od = access.od_crowfly(o, d.iloc[:0], max_minutes=10)
    pd.testing.assert_frame_equal(od, access.empty_od(), check_index_type=False)
    assert od["minutes"].dtype == float


def test_nearest_crowfly(points):
    o, d = points
    near = access.nearest_crowfly(o, d)
    assert near["nearest_id"].tolist() == ["p", "p", "q"]
    none = access.nearest_crowfly(o, d.iloc[:0])
    assert none["nearest_id"].isna().all() and np.isinf(none["minutes"]).all()


def test_bad_coordinates_are_named(points):
    o, d = points
    with pytest.raises(ValidationError, match="missing column 'lon'"):
        access.od_crowfly(o, d, max_minutes=10, origin_xy=("lon", "y"))
    bad = o.copy()
    bad.loc["b", "x"] = np.nan
    with pytest.raises(ValidationError, match="missing or infinite"):
        access.nearest_crowfly(bad, d)


def test_road_routing_lives_in_roads_not_access():
    """access is the crow-fly model and the OD contract; road routing is cnfs_geo.roads."""
    pytest.importorskip("osmnx")
    from cnfs_geo import roads

    assert callable(roads.od_road) and callable(roads.road_network)
    for name in ("od_road", "road_network", "nearest_road", "RoadNetwork"):
        assert not hasattr(access, name), name
