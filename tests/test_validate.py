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


# --- communes table -------------------------------------------------------------------


@pytest.fixture(scope="module")
def communes49(cog49):
    return cog49.copy()  # territory.communes_from_cog("49", bundle)


def test_communes_table_returns_the_departement(communes49):
    from cnfs_geo import _validate

    assert (
        _validate.communes_table(
            communes49, required=("nom", "population"), crs="projected", one_departement=True
        )
        == "49"
    )
    assert _validate.communes_table(communes49) is None


def test_communes_table_gathers_every_problem(communes49):
    from cnfs_geo import _validate
    from cnfs_geo._errors import CrsError, MissingColumnError

    bad = communes49.drop(columns=["nom", "epci"]).to_crs(4326)
    bad = pd.concat([bad, bad.iloc[:2]])
    with pytest.raises(MissingColumnError) as e:
        _validate.communes_table(
            bad,
            required=("nom", "epci", "population"),
            crs="projected",
            hint="cnfs_geo.need.need_from_sources",
        )
    text = str(e.value)
    assert e.value.source == "communes" and len(e.value.problems) == 5
    assert "missing column 'nom'" in text and "missing column 'epci'" in text
    assert "need_from_sources" in text and "not projected" in text and "duplicated" in text
    assert isinstance(e.value, ValueError)
    with pytest.raises(CrsError, match="to_crs"):
        _validate.communes_table(communes49.to_crs(4326), crs="projected")
    with pytest.raises(MissingColumnError, match="expected a GeoDataFrame, got DataFrame"):
        _validate.communes_table(pd.DataFrame(communes49.drop(columns="geometry")))


def test_communes_table_values_and_departements(communes49):
    from cnfs_geo import _validate

    c = communes49.copy()
    c.loc[c.index[:3], "population"] = -1
    c.loc[c.index[-1], "departement"] = "44"
    with pytest.raises(ValidationError) as e:
        _validate.communes_table(
            c,
            required=("population", "departement"),
            nonnegative=("population",),
            one_departement=True,
        )
    assert len(e.value.problems) == 2
    assert "3 missing, negative or non-numeric" in str(e.value) and "2 départements" in str(e.value)
