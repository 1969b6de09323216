import pytest

from cnfs_geo._errors import SettingsError
from cnfs_geo.settings import Settings, working_crs


def test_defaults_and_reasoned_values():
    s = Settings()
    assert s.threshold_minutes == 10.0
    assert s.report_thresholds == (5.0, 10.0, 15.0, 20.0)
    # 35 h less 10 % coordination
    assert s.advisor_hours_per_post == pytest.approx(31.5)
    assert s.speed_m_per_min == pytest.approx(50_000 / 60)


def test_unknown_key_is_rejected_with_suggestion():
    with pytest.raises(SettingsError) as exc:
        Settings().replace(treshold_minutes=15)
    assert "treshold_minutes" in str(exc.value)
    assert "threshold_minutes" in str(exc.value)


@pytest.mark.parametrize(
    "key,value",
    [("detour_factor", 0.8), ("speed_kmh", 0), ("coordination_share", 0.5 + 0.6), ("posts", -1)],
)
def test_invalid_values(key, value):
    with pytest.raises(SettingsError, match=key):
        Settings().replace(**{key: value})


def test_default_advisors_unknown_kind():
    with pytest.raises(SettingsError, match="unknown kinds"):
        Settings(default_advisors={"bus": 3})


@pytest.mark.parametrize(
    "dep,crs",
    [
        ("49", "EPSG:2154"),
        ("2A", "EPSG:2154"),
        ("974", "EPSG:2975"),
        ("973", "EPSG:2972"),
        ("976", "EPSG:4471"),
        ("971", "EPSG:5490"),
    ],
)
def test_working_crs(dep, crs):
    assert working_crs(dep) == crs
