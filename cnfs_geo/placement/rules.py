"""The rules a set of new posts must respect, shared by every placement model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import pandas as pd

__all__ = ["Rules"]

Sites: TypeAlias = pd.DataFrame | Sequence[str] | None


@dataclass(frozen=True, eq=False)
class Rules:
    """Existing sites, eligible hosts, budget, quotas and separation of new posts.

    One object replaces the keywords the models used to repeat; ``Rules()`` (or
    ``rules=None``) means no rule: every candidate is eligible, no site is open yet,
    and only the number of posts ``p`` of the model bounds the choice. Pass it as
    ``rules=`` to :func:`~cnfs_geo.placement.mclp_from_od`,
    :func:`~cnfs_geo.placement.lscp_from_od`, :func:`~cnfs_geo.placement.pmedian_from_od`,
    their ``*_from_geodataframes`` twins and
    :func:`~cnfs_geo.placement.mclp_scalable_from_od` (which takes ``existing`` and
    ``eligible`` only).

    Attributes
    ----------
    existing : list of ids, DataFrame or GeoDataFrame, optional
        Already-open sites (ids in ``od.destination_id``; a frame's ids come from
        ``place_id`` or its index). Units they cover within the threshold count for
        nothing; an existing site is never a candidate. With ``*_from_geodataframes``:
        a GeoDataFrame of points, or ids of rows of ``candidates_gdf``.
    eligible : Series of bool or list of ids, optional
        Eligible-host filter on the candidates (a mask indexed by candidate id, or the
        ids kept).
    max_posts : int, optional
        At most this many new posts (a budget in posts; the LSCP raises PlacementError if
        that is not enough; with an exact ``p`` it adds nothing).
    budget_eur : float, optional
        Budget in euros, at ``post_cost_eur`` per post.
    post_cost_eur : float or Series, optional
        Cost of one post (default ``settings.cost_per_post_eur``); a Series gives one
        cost per candidate id.
    groups : Series or str, optional
        Group label per candidate id (e.g. EPCI SIREN), or the name of a column of the
        candidates (``candidates_gdf`` with ``*_from_geodataframes``).
    min_per_group, max_per_group : int or mapping, optional
        Quotas of new posts per group: one number for every group, or one per label.
    min_separation_min : float, optional
        Two new posts must be at least this many minutes apart.
    separation : DataFrame, optional
        Long OD table between candidates (``origin_id``, ``destination_id``,
        ``minutes``) for ``min_separation_min``; computed by crow-fly from the
        candidates' ``x``/``y`` or point geometry when omitted.

    Examples
    --------
    >>> from cnfs_geo.placement import Rules
    >>> r = Rules(existing=["fs-1"], groups="epci", max_per_group=2)
    >>> r.max_per_group, r.budget_eur
    (2, None)
    """

    existing: Sites = None
    eligible: pd.Series | Sequence[str] | None = None
    max_posts: int | None = None
    budget_eur: float | None = None
    post_cost_eur: pd.Series | float | None = None
    groups: pd.Series | str | None = None
    min_per_group: int | Mapping[str, int] | None = None
    max_per_group: int | Mapping[str, int] | None = None
    min_separation_min: float | None = None
    separation: pd.DataFrame | None = None
