"""Shared input checks, as every stage that takes an OD table or per-id values uses them."""

import pandas as pd
import pytest

from cnfs_geo import coverage, placement
from cnfs_geo._errors import PlacementError, ValidationError


def test_every_od_consumer_names_the_missing_column():
    od = pd.DataFrame({"origin_id": ["a"], "destination_id": ["p"]})  # no minutes
    w = pd.Series({"a": 1.0})
    with pytest.raises(PlacementError) as e:
        placement.mclp_from_od(od, w, p=1, threshold=10)
    assert e.value.source == "od" and "'minutes'" in str(e.value)
    with pytest.raises(PlacementError, match="'minutes'"):
        placement.equity_from_od(od, w, pd.Series(dtype=float), p=1, target=1.0)
    with pytest.raises(ValidationError, match="'minutes'"):
        coverage.two_step_fca(od, w, pd.Series({"p": 1.0}), catchment=20)
    with pytest.raises(PlacementError, match="long OD DataFrame.*got list"):
        placement.mclp_from_od([], w, p=1, threshold=10)
