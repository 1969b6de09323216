"""Every default of cnfs_geo, each with its reason.

Settings are an immutable :class:`Settings` dataclass. Change values with
:meth:`Settings.replace`, which rejects unknown keys and invalid values::

    >>> from cnfs_geo.settings import Settings
    >>> s = Settings().replace(threshold_minutes=15)
    >>> s.threshold_minutes
    15.0

Unknown keys raise :class:`cnfs_geo._errors.SettingsError` naming the key and the
closest known ones.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._errors import SettingsError

# --------------------------------------------------------------------------------------
# Working CRS per territory (metres, for distances and areas).
# Lambert-93 is the legal projection of metropolitan France, Corsica included.
# Overseas départements use their legal UTM zone (arrêté du 5 mars 2019).
# --------------------------------------------------------------------------------------
METROPOLE_CRS = "EPSG:2154"  # RGF93 v1 / Lambert-93
OVERSEAS_CRS: Mapping[str, str] = MappingProxyType(
    {
        "971": "EPSG:5490",  # Guadeloupe: RGAF09 / UTM zone 20N
        "972": "EPSG:5490",  # Martinique: RGAF09 / UTM zone 20N
        "973": "EPSG:2972",  # Guyane: RGFG95 / UTM zone 22N
        "974": "EPSG:2975",  # La Réunion: RGR92 / UTM zone 40S
        "976": "EPSG:4471",  # Mayotte: RGM04 / UTM zone 38S
    }
)
GEOGRAPHIC_CRS = "EPSG:4326"  # WGS84 lon/lat: input files and web maps


def working_crs(departement: str) -> str:
    """Projected CRS (metres) for a département code ("49", "2A", "974")."""
    return OVERSEAS_CRS.get(str(departement), METROPOLE_CRS)


# Number of advisors per place when the source does not say.
# CNFS permanences give `nb_aidants`, Aidants Connect structures their « Nombre
# d'aidants » (`advisors_basis = "source"`); other sources do not. A France Services
# must employ at least two trained agents (charte France Services): 2 is the floor the
# label guarantees, a documented rule
# (`advisors_basis = "rule"`), not a guess. A lieu de médiation or Aidants Connect
# structure is counted as one person helping: a default (`advisors_basis = "default"`,
# `advisors_assumed = True`), whose weight on the priority list the report measures
# with `default_advisors_factors`.
_DEFAULT_ADVISORS = {
    "cnfs": 1.0,
    "france_services": 2.0,
    "aidants_connect": 1.0,
    "lieu_mediation": 1.0,
}


#: Demand units (:func:`cnfs_geo.demand.demand_units`); the first is the default.
DEMAND_UNITS = ("finest", "commune", "iris", "commune2018")


@dataclass(frozen=True)
class Settings:
    """Tunable parameters of an analysis.

    Attributes
    ----------
    detour_factor : float
        Road distance / crow-fly distance. 1.3 is the usual ratio measured on French
        rural and peri-urban road networks (road distances are 20–40 % longer than
        straight lines between communes; 1.3 is the middle of that range).
    speed_kmh : float
        Average door-to-door car speed on that road distance. 50 km/h mixes
        departmental roads (70–80 km/h) with village crossings and urban streets.
    threshold_minutes : float
        Default coverage threshold. 10 min: in Maine-et-Loire the accompaniment
        offer is dense, every commune has a place within 20 min, so only a short
        threshold reveals gaps.
    report_thresholds : tuple of float
        Thresholds also reported (minutes).
    posts : int
        Default number of new posts to place (8: the Anjou programme).
    cost_per_post_eur : float
        State funding per CNFS post (50 000 €).
    programme_years : float
        Years over which :attr:`cost_per_post_eur` is paid (2: the CNFS programme
        funded each post 50 000 € for two years), for the yearly cost in the report.
    weekly_hours : float
        Full-time CNFS post (35 h/week).
    coordination_share : float
        Share of time spent on coordination (10–15 % allowed; 0.10 by default).
    default_advisors : mapping
        Advisors assumed per place kind when a source gives none.
    dedup_distance_m : float
        Two records from different sources with the same normalised name are
        one place when closer than this (150 m: the same building geocoded from
        two address strings lands within a block; two distinct structures with
        the same name in one commune are rarer than such geocoding spread).
    coordinate_tolerance_m : float
        How far outside the département polygon a place may lie and still be kept
        (1 000 m: the embedded polygons are simplified to ~1 m, but geocoding of
        addresses on the border can fall a few hundred metres out).
    milp_time_limit_s : float
        Time limit given to HiGHS for exact placement.
    access_catchment_minutes : float
        2SFCA catchment (20 min, the longest reported threshold: a trip beyond it is no
        longer "near" for a weekly help session).
    access_weights : str
        2SFCA distance weights: ``"stepped"`` = E2SFCA of Luo & Qi (1, 0.68, 0.22, 0.03
        over four 5-min zones), so a place 18 min away counts far less than one next
        door; ``"none"`` (classic 2SFCA) or ``"gaussian"``.
    thin_share : float
        A commune's help is *thin* when its accessibility is below this share of the
        département's need-weighted mean (0.5); also the default target of the equity
        placement model.
    high_need_quantile : float
        Fragility is *high* at or above this quantile of the département's IFN scores
        (0.5 = the median commune).
    low_fibre_pct : float
        Fibre share under which connectivity is an aggravating reason (80 %: the
        national FTTH rollout passed 80 % of premises in 2023–2024).
    itinerant_density_max : float
        Sparse rural communes, candidates for itinerant stops: density below 60
        inhabitants/km² (half the metropolitan mean of 120.5).
    itinerant_max_stop_minutes : float
        Longest drive from an itinerant advisor's base to a stop (25 min each way keeps
        a half-day's return trip under an hour).
    itinerant_min_stop_hours : float
        Least time on site of one half-day permanence (2.5 h): a half-day slot is
        3.5 h (35 h / 10), less its share of coordination (0.35 h) and of a typical
        30–40 min drive; with 3.5 h the 31.5 h budget could never fill the tenth
        half-day and Friday stayed empty.
    itinerant_serve_covered : bool
        Let itinerant circuits also stop in units already within the threshold when
        their fragility is in the top quarter (False: circuits serve only the units
        the fixed offer leaves beyond the threshold, or priority territories; the
        report says so when True).
    itinerant_days_per_week : int
        Working days of a full-time post (5, lundi … vendredi).
    itinerant_min_stops : int
        Least number of stops of an itinerant circuit (2): an advisor who holds every
        permanence of the week in one place is a fixed post, not a shared one. A base
        that cannot gather that many stops within reach is not opened, and the units
        it alone could serve are reported as dropped (``too_few_stops``). 1 allows
        single-stop circuits (the behaviour before this setting); at most
        ``itinerant_days_per_week`` × 2 half-days.
    demand_unit : {"finest", "commune", "iris", "commune2018"}
        Where people are counted (:func:`cnfs_geo.demand.demand_units`). ``"finest"``:
        the finest unit the data gives for each commune (IRIS, else its communes
        déléguées as 2018 communes, else the whole commune), a village-level unit
        travelling from its chef-lieu. One point per commune nouvelle (up to 320 km² in
        Maine-et-Loire) counts a whole population at an arbitrary point inside it.
    default_advisors_factors : tuple of float
        Low and high multipliers of the defaulted advisor counts for the sensitivity of
        the priority list (0.5 and 2: half a person — a volunteer or part-time helper —
        and a team of two).
    """

    detour_factor: float = 1.3
    speed_kmh: float = 50.0
    threshold_minutes: float = 10.0
    report_thresholds: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0)
    posts: int = 8
    cost_per_post_eur: float = 50_000.0
    programme_years: float = 2.0
    weekly_hours: float = 35.0
    coordination_share: float = 0.10
    default_advisors: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType(dict(_DEFAULT_ADVISORS))
    )
    dedup_distance_m: float = 150.0
    coordinate_tolerance_m: float = 1_000.0
    milp_time_limit_s: float = 120.0
    access_catchment_minutes: float = 20.0
    access_weights: str = "stepped"
    thin_share: float = 0.5
    high_need_quantile: float = 0.5
    low_fibre_pct: float = 80.0
    itinerant_density_max: float = 60.0
    itinerant_max_stop_minutes: float = 25.0
    itinerant_min_stop_hours: float = 2.5
    itinerant_serve_covered: bool = False
    itinerant_days_per_week: int = 5
    itinerant_min_stops: int = 2
    demand_unit: str = "finest"
    default_advisors_factors: tuple[float, ...] = (0.5, 2.0)

    def __post_init__(self) -> None:
        problems = []
        for name in (
            "detour_factor",
            "speed_kmh",
            "threshold_minutes",
            "weekly_hours",
            "programme_years",
            "dedup_distance_m",
            "milp_time_limit_s",
            "access_catchment_minutes",
            "thin_share",
            "itinerant_density_max",
            "itinerant_max_stop_minutes",
            "itinerant_min_stop_hours",
            "itinerant_days_per_week",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                problems.append(f"{name}={value!r}: must be a positive number")
        if self.detour_factor < 1:
            problems.append(
                f"detour_factor={self.detour_factor!r}: a road is never shorter "
                "than the straight line; use a value >= 1 (default 1.3)"
            )
        if not 0 <= self.coordination_share < 1:
            problems.append(
                f"coordination_share={self.coordination_share!r}: must be in [0, 1) "
                "(the CNFS programme allows 0.10–0.15)"
            )
        days = self.itinerant_days_per_week
        slots = 2 * int(days) if isinstance(days, (int, float)) and days > 0 else 10
        k = self.itinerant_min_stops
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= slots:
            problems.append(
                f"itinerant_min_stops={k!r}: must be an integer from 1 to {slots} (the "
                "half-days of the week); default 2: a circuit with one stop is a fixed post, "
                "1 allows it"
            )
        if self.access_weights not in ("none", "stepped", "gaussian"):
            problems.append(
                f"access_weights={self.access_weights!r}: use 'none', 'stepped' or 'gaussian'"
            )
        if not 0 <= self.high_need_quantile <= 1:
            problems.append(
                f"high_need_quantile={self.high_need_quantile!r}: a quantile in "
                "[0, 1] (0.5 = median)"
            )
        if not 0 <= self.low_fibre_pct <= 100:
            problems.append(f"low_fibre_pct={self.low_fibre_pct!r}: a share in [0, 100]")
        if not isinstance(self.posts, int) or self.posts < 0:
            problems.append(f"posts={self.posts!r}: must be a non-negative integer")
        if self.cost_per_post_eur <= 0:
            problems.append(f"cost_per_post_eur={self.cost_per_post_eur!r}: must be positive")
        if self.demand_unit not in DEMAND_UNITS:
            problems.append(f"demand_unit={self.demand_unit!r}: use one of {list(DEMAND_UNITS)}")
        factors = tuple(self.default_advisors_factors)
        if len(factors) != 2 or not all(isinstance(f, (int, float)) and f > 0 for f in factors):
            problems.append(
                f"default_advisors_factors={self.default_advisors_factors!r}: give two "
                "positive multipliers (low, high), e.g. (0.5, 2.0)"
            )
        unknown_kinds = set(self.default_advisors) - set(_DEFAULT_ADVISORS)
        if unknown_kinds:
            problems.append(
                f"default_advisors has unknown kinds {sorted(unknown_kinds)}; "
                f"known kinds: {sorted(_DEFAULT_ADVISORS)}"
            )
        if problems:
            raise SettingsError("settings", problems)
        # normalise numeric types so equal settings compare and hash equal
        object.__setattr__(self, "threshold_minutes", float(self.threshold_minutes))
        object.__setattr__(self, "default_advisors_factors", tuple(float(f) for f in factors))
        object.__setattr__(
            self, "report_thresholds", tuple(float(t) for t in self.report_thresholds)
        )
        object.__setattr__(
            self,
            "default_advisors",
            MappingProxyType({**_DEFAULT_ADVISORS, **dict(self.default_advisors)}),
        )

    @property
    def speed_m_per_min(self) -> float:
        """Average speed in metres per minute."""
        return self.speed_kmh * 1000.0 / 60.0

    @property
    def advisor_hours_per_post(self) -> float:
        """Weekly hours of one post available for the public (35 h less coordination)."""
        return self.weekly_hours * (1.0 - self.coordination_share)

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with ``changes`` applied; unknown keys raise SettingsError."""
        known = [f.name for f in dataclasses.fields(self)]
        unknown = [k for k in changes if k not in known]
        if unknown:
            problems = []
            for key in unknown:
                close = difflib.get_close_matches(key, known, n=3)
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                problems.append(
                    f"unknown setting {key!r}.{hint} Known settings: {', '.join(known)}"
                )
            raise SettingsError("settings", problems)
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict view (for reports and scenario records)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = dict(v) if isinstance(v, Mapping) else v
        return out


DEFAULT = Settings()
