"""COG EPCI reader (cnfs_geo.sources.epci)."""

from pathlib import Path

import pytest

from cnfs_geo._errors import ValidationError
from cnfs_geo.sources import epci

INVALID = Path(__file__).parent / "data" / "sources"


def test_epci_identity_and_members(bundle):
    ident = epci.read_epci(bundle.file("cog_epci"))
    assert ident.index.name == "epci" and ident.index.is_unique
    assert list(ident.columns) == ["nom", "type", "population_municipale_epci", "n_membres"]
    members = epci.read_epci_members(bundle.file("cog_epci"))
    assert members.index.name == "insee" and members.index.is_unique
    assert list(members.columns) == ["epci", "epci_nom"]
    assert set(members["epci"]) <= set(ident.index)
    assert members["epci"].value_counts().to_dict() == {
        k: v for k, v in ident["n_membres"].items() if v
    }


def test_commune_in_two_epci():
    with pytest.raises(ValidationError, match="commune 49301 belongs to several EPCI"):
        epci.read_epci_members(INVALID / "epci_commune_in_two_epci.json")
