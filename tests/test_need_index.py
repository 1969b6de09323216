"""Need index (weights, fractures) and the fibre what-if, on the real 49 bundle.

Expected values are recomputed in the tests from the IFN and ARCEP files, never
copied from the output.
"""

import math

import numpy as np
import pandas as pd
import pytest

from cnfs_geo import catalog, need
from cnfs_geo._errors import ValidationError

DIMS = list(need.DIMENSIONS)
RAW_COLUMN = {
    "ifn_no_thd": "no_thd_coverage_rate",
    "ifn_no_4g": "no_4g_coverage_rate",
    "ifn_poverty": "poverty_rate",
    "ifn_older_65": "older_65_rate",
    "ifn_low_diploma": "nscol15p_rate",
}


@pytest.fixture(scope="module")
def communes(cog49):
    return cog49.copy()  # territory.communes_from_cog("49", bundle)


@pytest.fixture(scope="module")
def default(communes, bundle):
    return need.need_from_sources(communes, bundle)[0]


@pytest.fixture(scope="module")
def equal(communes, bundle):
    return need.need_from_sources(communes, bundle, weights="equal")[0]


@pytest.fixture(scope="module")
def ifn_rows(bundle):
    """IFN rows of communes whose code did not change (no old codes to average)."""
    df = pd.read_csv(bundle.file("ifn_communes"), dtype={"code": str})
    return df.set_index("code")


# --- index and fractures -----------------------------------------------------------


def test_default_keeps_official_total_and_adds_equal_weight_index(default, ifn_rows):
    c = default
    assert c.attrs["need_index"] == "ifn_total" and c.attrs["need_weights"] is None
    assert (c["need_index"] == c["ifn_total"]).all()
    for insee in ("49007", "49099", "49038"):  # Angers, Cholet, Bourg-l'Évêque
        row = ifn_rows.loc[insee]
        assert c.at[insee, "need_index_weighted"] == pytest.approx(
            np.mean([row[RAW_COLUMN[d]] for d in DIMS])
        )
        assert c.at[insee, "fracture_materiel"] == pytest.approx(row["poverty_rate"])
        assert c.at[insee, "fracture_connectivite"] == pytest.approx(
            (row["no_thd_coverage_rate"] + row["no_4g_coverage_rate"]) / 2
        )
        assert c.at[insee, "fracture_usages"] == pytest.approx(
            (row["older_65_rate"] + row["nscol15p_rate"] + row["poverty_rate"]) / 3
        )
    for col in (
        "fracture_materiel",
        "fracture_connectivite",
        "fracture_usages",
        "need_index_weighted",
    ):
        assert c[col].between(0, 10).all(), col


def test_equal_weights_switch_the_need_index(default, equal):
    assert equal.attrs["need_index"] == "weighted"
    assert equal.attrs["need_weights"] == {d: pytest.approx(0.2) for d in DIMS}
    assert (equal["need_index"] == equal["need_index_weighted"]).all()
    assert (equal["need"] == equal["population"] * equal["need_index"] / 10).all()
    # same weighted index either way; the two need totals differ (different indices)
    assert np.allclose(equal["need_index_weighted"], default["need_index_weighted"])
    assert not math.isclose(equal["need"].sum(), default["need"].sum(), rel_tol=1e-3)


def test_single_dimension_weight_gives_that_dimension(communes, bundle):
    only_poverty = {d: 0 for d in DIMS if d != "ifn_poverty"}
    c, rep = need.need_from_sources(communes, bundle, weights=only_poverty)
    assert rep.index == "weighted" and rep.weights["ifn_poverty"] == 1.0
    assert np.allclose(c["need_index"], c["ifn_poverty"])


def test_relative_weights_override_the_equal_default(default):
    w = need.need_weights({"ifn_no_thd": 2})
    assert w["ifn_no_thd"] == pytest.approx(2 / 6) and w["ifn_no_4g"] == pytest.approx(1 / 6)
    assert sum(w.values()) == pytest.approx(1)
    idx = need.weighted_need_index(default, {"ifn_no_thd": 2})
    manual = (2 * default["ifn_no_thd"] + default[DIMS[1:]].sum(axis=1)) / 6
    assert np.allclose(idx, manual)


@pytest.mark.parametrize(
    "weights, message",
    [
        ({"ifn_poverty": -1}, r"'ifn_poverty'.*-1.*≥ 0"),
        ({"poverty": 1}, r"unknown key 'poverty'.*ifn_poverty"),
        ({"ifn_no_4g": float("nan")}, r"'ifn_no_4g'.*finite"),
        ({"ifn_no_4g": "2"}, r"'ifn_no_4g'.*'2'"),
        ({"ifn_no_4g": True}, r"'ifn_no_4g'.*True"),
        (dict.fromkeys(DIMS, 0), r"every weight is 0"),
        ("uniform", r"not a mapping"),
    ],
)
def test_bad_weights_are_rejected(weights, message):
    with pytest.raises(ValidationError, match=message):
        need.need_weights(weights)


def test_bad_weights_are_all_listed_and_checked_before_reading(communes, tmp_path):
    nowhere = catalog.DataDir(path=tmp_path, is_bundle=False, origin="argument")
    with pytest.raises(ValidationError) as info:
        need.need_from_sources(communes, nowhere, weights={"ifn_poverty": -1, "wifi": 1})
    assert len(info.value.problems) == 2


def test_ifn_total_is_a_mean_of_14_scores(bundle, raw_dir):
    """Evidence for the 1/14 rule of the what-if (docs/methods_need.md § 1)."""
    for d in (bundle.path, raw_dir):
        path = catalog.DataDir(path=d, is_bundle=False, origin="argument").file("ifn_communes")
        df = pd.read_csv(path).dropna(subset=list(RAW_COLUMN.values()))
        whole = (df[list(RAW_COLUMN.values())] % 1 == 0).all(axis=1)
        t14 = df.loc[whole, "total"] * need.IFN_TOTAL_INDICATORS
        share = (np.abs(t14 - t14.round()) < 1e-6).mean()
        assert whole.sum() > 100 and share > 0.99, (d, share)
        rest = t14 - df.loc[whole, list(RAW_COLUMN.values())].sum(axis=1)
        assert rest.between(-1e-6, 90 + 1e-6).all()  # 9 other indicators of 0–10


# --- fibre what-if --------------------------------------------------------------


def test_fibre_to_100_percent(default):
    before = default.copy()
    w = need.fibre_what_if(default)
    pd.testing.assert_frame_equal(
        default.drop(columns="geometry"), before.drop(columns="geometry")
    )  # input untouched
    below = default["pct_fibre"] < 100
    assert below.sum() > 100 and (~below).sum() >= 1
    assert (w["pct_fibre"] == 100).all()
    assert (w.loc[below, "ifn_no_thd"] == 0).all()
    assert (w["fibre_raised"] == below).all()
    assert np.allclose(w.loc[below, "nb_locaux_fibre"], w.loc[below, "nb_locaux"])
    lowered = below & (default["ifn_no_thd"] > 0)
    assert (w.loc[lowered, "need"] < default.loc[lowered, "need"]).all()
    for col in ("need", "need_index", "ifn_no_thd", "pct_fibre", "ifn_total"):
        assert (w.loc[~below, col] == default.loc[~below, col]).all(), col
    # the official total moves by Δ no-THD / 14
    delta = (w["ifn_no_thd"] - default["ifn_no_thd"]) / 14
    assert np.allclose(w["ifn_total"], (default["ifn_total"] + delta).clip(0, 10))
    assert (w["need_before"] == default["need"]).all()
    assert "fibre" in w.attrs["what_if"]


def test_partial_target_scales_the_no_thd_score(default):
    w = need.fibre_what_if(default, target_pct=90)
    below = default["pct_fibre"] < 90
    assert 0 < below.sum() < len(default)
    old = default.loc[below]
    expected = old["ifn_no_thd"] * 10 / (100 - old["pct_fibre"])
    assert np.allclose(w.loc[below, "ifn_no_thd"], expected)
    assert (w.loc[below, "ifn_no_thd"] <= old["ifn_no_thd"]).all()
    assert (w.loc[below, "pct_fibre"] == 90).all()
    assert (
        (
            w.loc[~below, ["need", "pct_fibre", "ifn_no_thd"]]
            == default.loc[~below, ["need", "pct_fibre", "ifn_no_thd"]]
        )
        .all()
        .all()
    )
    # monotone in the target
    w100 = need.fibre_what_if(default, target_pct=100)
    assert (w100["need"] <= w["need"] + 1e-9).all() and (w["need"] <= default["need"] + 1e-9).all()


def test_what_if_uses_the_weights_the_communes_were_built_with(equal):
    w = need.fibre_what_if(equal)
    assert w.attrs["need_index"] == "weighted"
    recomputed = need.weighted_need_index(w, "equal")
    assert np.allclose(w["need_index"], recomputed)
    assert np.allclose(w["fracture_connectivite"], (w["ifn_no_thd"] + w["ifn_no_4g"]) / 2)
    below = equal["pct_fibre"] < 100
    assert np.allclose(
        equal.loc[below, "need_index"] - w.loc[below, "need_index"],
        equal.loc[below, "ifn_no_thd"] / 5,
    )
    lost = equal.copy()
    lost.attrs = {}
    with pytest.raises(ValidationError, match="pass the same weights="):
        need.fibre_what_if(lost)
    assert np.allclose(need.fibre_what_if(lost, weights="equal")["need"], w["need"])


@pytest.mark.parametrize("target", [-1, 100.5, float("nan"), "all", None, True])
def test_bad_target_is_rejected(default, target):
    with pytest.raises(ValidationError, match="target_pct"):
        need.fibre_what_if(default, target_pct=target)


def test_what_if_needs_need_columns(communes):
    with pytest.raises(ValidationError, match="missing column 'pct_fibre'") as info:
        need.fibre_what_if(communes)
    assert "need_from_sources" in str(info.value)
