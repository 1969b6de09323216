"""Posts that survive a change of assumptions: re-solve a plan under documented perturbations.

Method, perturbations and cut-off: ``docs/methods_robustness.md``.

Examples
--------
>>> from cnfs_geo import plan, robustness
>>> sc = plan.Scenario(departement="49")
>>> prepared = plan.prepare(sc)
>>> p = plan.run(sc, prepared=prepared)
>>> r = robustness.robustness(p, prepared)
>>> len(r.perturbations) >= 6, set(r.posts["robust"]) <= {True, False}
(True, True)
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from . import _fr, access, coverage, demand, placement
from ._errors import ValidationError
from .plan import Plan, Prepared

log = logging.getLogger(__name__)

#: Share of the perturbed solves in which a post must be chosen again to be robust.
ROBUST_SHARE = 2 / 3
#: A post is chosen again when a perturbed post lies within this many minutes of it (the
#: plan's own travel model): the same site give or take the neighbouring bourg.
NEAR_MINUTES = 5.0
#: Speeds (km/h) and detour factors tried around the settings' values.
SPEEDS_KMH = (40.0, 60.0)
DETOURS = (1.2, 1.5)
#: Threshold changes (minutes, added to the scenario's threshold).
THRESHOLD_STEPS = (-2.0, 2.0)

POST_COLUMNS = [
    "post_id",
    "insee",
    "commune",
    "same_commune",
    "chosen_again",
    "runs",
    "share",
    "robust",
    "label",
]
PERTURBATION_COLUMNS = ["key", "label", "hosts", "kept", "seconds"]


@dataclass(frozen=True)
class Robustness:
    """Outcome of :func:`robustness`.

    Attributes
    ----------
    posts : DataFrame
        One row per fixed post of the plan (plan order): ``post_id``, ``insee``,
        ``commune``, ``same_commune`` (perturbed solves with a new post in the same
        commune), ``chosen_again`` (… with a new post within :data:`NEAR_MINUTES` of
        it, same commune included), ``runs`` (perturbed solves), ``share`` (0–1),
        ``robust`` (share ≥ :data:`ROBUST_SHARE`), ``label`` ("poste robuste" |
        "poste fragile").
    perturbations : DataFrame
        One row per perturbed solve: ``key`` (e.g. ``speed_kmh=40``), ``label``
        (French), ``hosts`` (";"-joined INSEE codes of its posts), ``kept`` (how many
        of the plan's posts it chose again), ``seconds``.
    seconds : float
        Wall time of the whole analysis.
    skipped : list of str
        Perturbations not run, with the reason (English, for the log).
    near_minutes, robust_share : float
        :data:`NEAR_MINUTES` and :data:`ROBUST_SHARE` as used.
    """

    posts: pd.DataFrame
    perturbations: pd.DataFrame
    seconds: float
    skipped: list[str] = field(default_factory=list)
    near_minutes: float = NEAR_MINUTES
    robust_share: float = ROBUST_SHARE


def _perturbations(plan: Plan) -> tuple[list[tuple[str, str, dict[str, Any]]], list[str]]:
    """(key, French label, changes) of every perturbation of the plan's scenario."""
    sc, s = plan.scenario, plan.settings
    out: list[tuple[str, str, dict[str, Any]]] = []
    skipped: list[str] = []
    if sc.travel == "crow-fly":
        for v in SPEEDS_KMH:
            if v != s.speed_kmh:
                out.append(
                    (f"speed_kmh={v:g}", f"vitesse {_fr.number(v, trim=True)} km/h", {"speed": v})
                )
        for d in DETOURS:
            if d != s.detour_factor:
                out.append(
                    (
                        f"detour_factor={d:g}",
                        f"facteur de détour {_fr.number(d, trim=True)}",
                        {"detour": d},
                    )
                )
    else:
        skipped.append("speed and detour: road travel times are not scaled (travel='road')")
    for step in THRESHOLD_STEPS:
        t = sc.threshold + step
        if t > 0:
            out.append(
                (
                    f"threshold_minutes={t:g}",
                    f"seuil {_fr.number(t, trim=True)} min",
                    {"threshold": t},
                )
            )
    if sc.demand_unit != "commune":
        out.append(("demand_unit=commune", "unité : point de la commune", {"unit": "commune"}))
    else:
        skipped.append(
            "demand unit: the plan already counts people at the commune point (no coarser unit)"
        )
    return out, skipped


def _solve(plan: Plan, prepared: Prepared, changes: dict[str, Any]) -> list[str]:
    """Candidate ids of the fixed posts chosen under ``changes`` (prepared frames reused)."""
    sc, s = plan.scenario, plan.settings
    t = float(changes.get("threshold", sc.threshold))
    ps = s.replace(
        speed_kmh=float(changes.get("speed", s.speed_kmh)),
        detour_factor=float(changes.get("detour", s.detour_factor)),
    )
    if "unit" in changes:
        units = demand.demand_units_from_frames(prepared.communes, unit=changes["unit"])
    else:
        units = prepared.units
    origins = units[["x", "y"]]
    acc = prepared.places[prepared.places["service_level"] == "accompaniment"]
    acc_xy = pd.DataFrame(
        {"x": acc.geometry.x.to_numpy(), "y": acc.geometry.y.to_numpy()},
        index=pd.Index(acc["place_id"].astype(str), name="place_id"),
    )
    if sc.travel == "crow-fly":
        minutes_before = access.nearest_crowfly(origins, acc_xy, settings=ps)["minutes"]
        od = access.od_crowfly(origins, prepared.candidates, max_minutes=t, settings=ps)
    else:  # road: same network, only the threshold or the unit change
        minutes_before = prepared.travel.nearest(origins, acc_xy)["minutes"]
        od = prepared.travel.od(origins, prepared.candidates, t)
    result = placement.mclp_from_od(
        od,
        units["need"],
        p=sc.p,
        threshold=t,
        already_covered=coverage.covered_flags(minutes_before, t),
        demand=units,
        settings=s,
    )
    return [str(x) for x in result.posts["candidate_id"]]


def robustness(plan: Plan, prepared: Prepared) -> Robustness:
    """How often each fixed post of ``plan`` is chosen again under changed assumptions.

    Re-solves the plan's placement (the exact MCLP of :func:`cnfs_geo.plan.run`, same
    number of posts and candidates) once per perturbation of
    ``docs/methods_robustness.md`` — speed 40 and 60 km/h, detour factor 1.2 and 1.5,
    threshold − 2 and + 2 min, the commune-point demand unit — reusing the prepared
    frames of ``prepared`` (territory, offer, need, units, candidates: no file is
    read again). A post is *chosen again* when the perturbed plan has a post in the
    same commune or within :data:`NEAR_MINUTES` minutes of it.

    Parameters
    ----------
    plan : Plan
        From :func:`cnfs_geo.plan.run` with the maximal-covering model.
    prepared : Prepared
        From :func:`cnfs_geo.plan.prepare` on the same scenario.

    Returns
    -------
    Robustness

    Raises
    ------
    ValidationError
        ``prepared`` built for another scenario, or a model other than ``mclp``.
    """
    if prepared.scenario.key != plan.scenario.key:
        raise ValidationError(
            "prepared", ["built for another scenario; fix: plan.prepare(plan.scenario)"]
        )
    if plan.scenario.model != "mclp":
        raise ValidationError(
            "plan",
            [
                f"model={plan.scenario.model!r}: the robustness analysis re-solves the "
                "maximal covering model only; fix: model='mclp'"
            ],
        )
    t0 = time.perf_counter()
    fixed = plan.posts[plan.posts["kind"].astype(str) == "fixed"]
    todo, skipped = _perturbations(plan)
    rows = []
    hits = np.zeros(len(fixed), dtype=int)
    same = np.zeros(len(fixed), dtype=int)
    insee = fixed["insee"].astype(str).to_numpy()
    cand = prepared.candidates
    post_xy = cand.loc[fixed["candidate_id"].astype(str), ["x", "y"]].set_axis(
        pd.Index(fixed["post_id"].astype(str))
    )
    for key, label, changes in todo:
        t1 = time.perf_counter()
        chosen = _solve(plan, prepared, changes)
        hosts = cand.loc[chosen, "insee"].astype(str).tolist()
        near = prepared.travel.nearest(
            post_xy, cand.loc[chosen, ["x", "y"]].set_axis(pd.Index(chosen))
        )["minutes"].reindex(post_xy.index)
        in_commune = np.isin(insee, hosts)
        again = in_commune | (near.to_numpy(float) <= NEAR_MINUTES)
        same += in_commune
        hits += again
        rows.append(
            {
                "key": key,
                "label": label,
                "hosts": ";".join(sorted(hosts)),
                "kept": int(again.sum()),
                "seconds": round(time.perf_counter() - t1, 3),
            }
        )
    runs = len(todo)
    share = hits / runs if runs else np.full(len(fixed), np.nan)
    robust = share >= ROBUST_SHARE - 1e-12
    posts = pd.DataFrame(
        {
            "post_id": fixed["post_id"].astype(str).to_numpy(),
            "insee": insee,
            "commune": fixed["commune"].astype(str).to_numpy(),
            "same_commune": same,
            "chosen_again": hits,
            "runs": runs,
            "share": share,
            "robust": robust,
            "label": np.where(robust, _fr.ROBUST_POST, _fr.FRAGILE_POST),
        },
        columns=POST_COLUMNS,
    )
    seconds = round(time.perf_counter() - t0, 3)
    for msg in skipped:
        log.info("robustness: skipped %s", msg)
    log.info(
        "robustness: %d perturbed solves in %.1f s; %d of %d posts robust",
        runs,
        seconds,
        int(robust.sum()),
        len(fixed),
    )
    return Robustness(
        posts=posts,
        perturbations=pd.DataFrame(rows, columns=PERTURBATION_COLUMNS),
        seconds=seconds,
        skipped=skipped,
    )


def with_robustness(plan: Plan, prepared: Prepared) -> Plan:
    """``plan`` with the analysis attached: ``plan.robustness`` (:class:`Robustness`) and
    ``posts`` columns ``robustness_share`` (0–1) and ``robustness`` (label; empty for
    itinerant posts). Returns a new :class:`~cnfs_geo.plan.Plan` (the input is unchanged)."""
    r = robustness(plan, prepared)
    posts = gpd.GeoDataFrame(plan.posts.copy())
    by = r.posts.set_index("post_id")
    posts["robustness_share"] = posts["post_id"].map(by["share"]).astype(float)
    posts["robustness"] = posts["post_id"].map(by["label"]).fillna("").astype(str)
    timings = {**plan.timings, "robustness": r.seconds}
    return dataclasses.replace(plan, posts=posts, robustness=r, timings=timings)
