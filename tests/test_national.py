"""All of France: national budget shared by uncovered need, one plan per département."""

import numpy as np
import pandas as pd

from cnfs_geo.national import allocate_posts, national
from cnfs_geo.plan import Scenario


def test_allocate_posts_by_need():
    need = pd.Series({"01": 50.0, "02": 30.0, "2A": 20.0, "974": 0.0})
    a = allocate_posts(need, 10)
    assert a.to_dict() == {"01": 5, "02": 3, "2A": 2, "974": 0}
    # largest remainders: 7 × (0.5, 0.3, 0.2) = 3.5, 2.1, 1.4 → 3+1, 2, 1
    assert allocate_posts(need, 7).to_dict() == {"01": 4, "02": 2, "2A": 1, "974": 0}
    capped = allocate_posts(need, 10, cap=pd.Series({"01": 2, "02": 10, "2A": 10, "974": 0}))
    assert capped.sum() == 10 and capped["01"] == 2 and capped["974"] == 0
    assert capped["02"] > capped["2A"]
    assert allocate_posts(need, 50, cap=pd.Series({"01": 1, "02": 1, "2A": 1, "974": 1})).sum() == 4


def test_national_decomposition(raw_dir, tmp_path):
    table = national(
        Scenario(data_dir=str(raw_dir)),
        total_posts=20,
        departements=["2A", "2B", "48"],
        out_dir=tmp_path,
    )
    assert list(table["departement"]) == ["2A", "2B", "48"]
    assert table["posts"].sum() == 20
    assert (table["pct_population_covered_after"] >= table["pct_population_covered_before"]).all()
    # posts follow uncovered need
    order = table.sort_values("uncovered_need")["posts"].to_numpy()
    assert (np.diff(order) >= 0).all()
    assert (tmp_path / "48" / "rapport.html").exists()
