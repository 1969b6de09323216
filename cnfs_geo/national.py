"""All of France: one plan per département, with a national budget of posts."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from . import catalog, territory
from ._errors import PlacementError
from .outputs import write_outputs
from .plan import Scenario, prepare, run

log = logging.getLogger(__name__)

__all__ = ["allocate_posts", "national"]


def allocate_posts(need: pd.Series, total: int, *, cap: pd.Series | None = None) -> pd.Series:
    """Share ``total`` posts among départements in proportion to ``need`` (largest remainder).

    Ties of remainders go to the larger need, then to the smaller code (deterministic).
    With ``cap`` (most useful posts per département, e.g. its uncovered demand units),
    posts beyond a cap are shared again among the others. The result sums to ``total``
    (or to the sum of the caps when that is smaller).
    """
    if cap is not None:
        cap = cap.reindex(need.index).fillna(0).astype(int)
        total = min(int(total), int(cap.sum()))
        out = pd.Series(0, index=need.index, dtype=int)
        open_ = cap > 0
        left = total
        while left > 0 and open_.any():
            share = allocate_posts(need.where(open_, 0), left)
            take = np.minimum(share, cap - out)
            out += take
            left = total - int(out.sum())
            open_ = (cap - out) > 0
            if take.sum() == 0:  # needs are all zero where room is left: fill by code
                for code in out.index[open_][:left]:
                    out[code] += 1
                break
        return out
    need = need.astype(float).clip(lower=0)
    if total < 0:
        raise PlacementError("posts", [f"posts={total}: give a non-negative national budget"])
    if need.sum() <= 0:
        return pd.Series(0, index=need.index, dtype=int)
    quota = need / need.sum() * total
    base = np.floor(quota).astype(int)
    rest = total - int(base.sum())
    order = pd.DataFrame({"r": quota - base, "n": need, "code": need.index}).sort_values(
        ["r", "n", "code"], ascending=[False, False, True], kind="stable"
    )
    base.loc[order.index[:rest]] += 1
    return base


def national(
    scenario: Scenario, *, total_posts: int, out_dir=None, departements: list[str] | None = None
) -> pd.DataFrame:
    """Plans for every département (decomposition), with a national budget of posts.

    Pass 1 measures, per département, the need-weighted population left uncovered at the
    threshold; ``total_posts`` are shared in proportion to it (:func:`allocate_posts`);
    pass 2 plans each département with its share and, when ``out_dir`` is given, writes
    its outputs into ``out_dir/<code>/``. Coverage is measured within each département
    (offer across a border is not counted).

    Returns
    -------
    DataFrame
        One row per département (sorted by code): ``departement``, ``communes``,
        ``population``, ``places``, ``uncovered_need``, ``posts``, ``cost_eur``,
        ``pct_population_covered_before`` / ``_after``, ``pct_need_covered_before`` /
        ``_after``, ``priority_communes``, ``epci_without_project``, ``objective``, ``gap``.
    """
    data_dir = catalog.resolve_data_dir(scenario.data_dir)
    deps = departements or territory.departement_codes(data_dir)
    uncovered, room = {}, {}
    for dep in deps:
        prep = prepare(dataclasses.replace(scenario, departement=dep, posts=0))
        u = prep.units
        uncovered[dep] = float(u.loc[~u["covered_before"], "need"].sum())
        # more posts than uncovered units cannot cover more (and candidates bound it too)
        room[dep] = min(int((~u["covered_before"]).sum()), len(prep.candidates))
        log.info("national pass 1: %s uncovered need %.0f", dep, uncovered[dep])
    shares = allocate_posts(pd.Series(uncovered), total_posts, cap=pd.Series(room))
    if int(shares.sum()) < total_posts:
        log.warning(
            "national: only %d of %d posts are useful (every uncovered unit gets "
            "one); the rest is not allocated",
            int(shares.sum()),
            total_posts,
        )
    rows = []
    for dep in deps:
        plan = run(dataclasses.replace(scenario, departement=dep, posts=int(shares[dep])))
        if out_dir is not None:
            write_outputs(plan, Path(out_dir) / dep)
        sm = plan.summary()
        rows.append(
            {
                "departement": dep,
                "communes": sm["communes"],
                "population": sm["population"],
                "places": sm["places"],
                "uncovered_need": round(uncovered[dep], 1),
                "posts": sm["posts"],
                "cost_eur": sm["cost_eur"],
                "pct_population_covered_before": round(sm["pct_population_covered_before"], 3),
                "pct_population_covered_after": round(sm["pct_population_covered_after"], 3),
                "pct_need_covered_before": round(sm["pct_need_covered_before"], 3),
                "pct_need_covered_after": round(sm["pct_need_covered_after"], 3),
                "priority_communes": int(plan.communes["priority_gap"].sum()),
                "epci_without_project": len(plan.epci_without_project),
                "objective": plan.solution.get("objective"),
                "gap": plan.solution.get("gap"),
            }
        )
        log.info("national pass 2: %s %d posts", dep, sm["posts"])
    return pd.DataFrame(rows).sort_values("departement", kind="stable").reset_index(drop=True)
