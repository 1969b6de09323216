"""Static figures of a plan (matplotlib PNG, deterministic bytes) for the report."""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import _fr
from ._fr import KIND_LABELS
from ._map_style import (
    CLUSTER_COLOUR,
    EPCI_COLOUR,
    GAP_REMAINING_COLOUR,
    GAP_SOLVED_COLOUR,
    KIND_COLOURS,
    MINUTE_BREAKS,
    MINUTE_COLOURS,
    NO_PLACE_COLOUR,
    NO_PROJECT_COLOUR,
    POST_COLOUR,
    PRIORITY_COLOURS,
    circuit_colour,
    main_kind,
    minute_class_labels,
    priority_class_labels,
    priority_colour,
)
from ._plan_view import epci_without_project, stop_points
from .territory import all_polygons, dissolve

if TYPE_CHECKING:
    from matplotlib.artist import Artist


def _epci_polygons(plan: Any) -> Any:
    """EPCI polygons dissolved from ``plan.communes``, once per plan (each figure of the
    report draws them; kept on the plan while its ``communes`` frame is the same object).

    ``plan.epci`` already holds them (:func:`cnfs_geo.territory.epci_from_frames`
    dissolves the same communes, in the same order: same geometries, byte for byte): its
    polygons are taken when it lists exactly the communes' EPCI, else they are dissolved.
    """
    c = plan.communes
    memo = getattr(plan, "_figures_epci", None)
    if memo is not None and memo[0] is c:
        return memo[1]
    own = getattr(plan, "epci", None)
    codes = pd.Index(c["epci"].dropna().unique()).sort_values()
    if isinstance(own, gpd.GeoDataFrame) and own.index.equals(codes) and own.geometry.notna().all():
        epci = gpd.GeoDataFrame(
            geometry=own.geometry.to_numpy(), index=own.index.rename("epci"), crs=c.crs
        )
    else:
        epci = dissolve(c[["epci", "geometry"]], "epci")
    plan._figures_epci = (c, epci)
    return epci


def _commune_paths(plan: Any) -> list | None:
    """matplotlib paths of ``plan.communes``' polygons, built once per plan (each figure
    fills the communes, the static map twice) and with array operations: the paths
    geopandas draws (geometries normalized, one compound path per commune, each ring
    ``MOVETO``, ``LINETO``… ``CLOSEPOLY``), so the same pixels and PNG bytes, without
    one patch object and one ring conversion per polygon. None when a geometry is
    missing, empty or not a (multi)polygon (then geopandas draws them)."""
    c = plan.communes
    memo = getattr(plan, "_figures_paths", None)
    if memo is not None and memo[0] is c:
        return memo[1]
    from matplotlib.path import Path

    geoms = c.geometry.to_numpy()
    paths = None
    if len(geoms) and all_polygons(geoms):
        parts, part_of = shapely.get_parts(shapely.normalize(geoms), return_index=True)
        rings, ring_of = shapely.get_rings(parts, return_index=True)
        xy, vertex_of = shapely.get_coordinates(rings, return_index=True)
        codes = np.full(len(xy), Path.LINETO, dtype=Path.code_type)
        starts = np.searchsorted(vertex_of, np.arange(len(rings)))
        codes[starts] = Path.MOVETO
        codes[np.r_[starts[1:], len(xy)] - 1] = Path.CLOSEPOLY
        # where each commune's vertices end (rings in order of their polygon, parts in
        # order of their commune)
        commune_of_vertex = part_of[ring_of[vertex_of]]
        ends = np.searchsorted(commune_of_vertex, np.arange(1, len(geoms)))
        paths = [Path(v, k) for v, k in zip(np.split(xy, ends), np.split(codes, ends), strict=True)]
    plan._figures_paths = (c, paths)
    return paths


def _fill_communes(ax: Any, plan: Any, colours: Any, *, edgecolor: str, linewidth: float) -> None:
    """``plan.communes.plot(ax=ax, color=colours, edgecolor=..., linewidth=...)``, drawn
    from :func:`_commune_paths` (geopandas' own plot when they are None)."""
    paths = _commune_paths(plan)
    if paths is None:
        plan.communes.plot(ax=ax, color=colours, edgecolor=edgecolor, linewidth=linewidth)
        return
    from matplotlib.collections import PathCollection

    ax.set_aspect("equal")  # what geopandas sets for a projected CRS
    coll = PathCollection(paths, facecolor=colours, edgecolor=edgecolor, linewidth=linewidth)
    ax.add_collection(coll, autolim=True)
    ax.autoscale_view()


def static_map_png(plan: Any, *, dpi: int = 110) -> bytes:
    """Two-panel PNG (before / after): communes coloured by travel time, EPCI, places, posts.

    Drawn with matplotlib's object API (no pyplot global state); PNG metadata
    carries no software version, so identical plans give identical bytes.

    Parameters
    ----------
    plan : cnfs_geo.plan.Plan
        ``communes`` (``minutes_before``, ``minutes_after``, ``epci``, polygons),
        ``places`` (``service_level``, ``kinds``, points), ``posts`` (points), all in
        the working CRS.
    dpi : int

    Returns
    -------
    bytes
        PNG image.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    c = plan.communes
    epci = _epci_polygons(plan)
    places = plan.places
    acc = places["service_level"] == "accompaniment"
    fig = Figure(figsize=(10.0, 5.6))
    # no Agg canvas until savefig: geopandas calls draw_idle after each layer, which
    # would render the whole figure every time on an attached Agg canvas
    axes = fig.subplots(1, 2)

    def colours(minutes: pd.Series) -> list[str]:
        out = []
        for m in minutes.astype(float):
            if not math.isfinite(m):
                out.append(NO_PLACE_COLOUR)
                continue
            out.append(
                next(
                    (col for b, col in zip(MINUTE_BREAKS, MINUTE_COLOURS) if m <= b),
                    MINUTE_COLOURS[-1],
                )
            )
        return out

    t = _fr.number(plan.scenario.threshold)
    titles = ["Avant : offre existante", f"Après : avec les {len(plan.posts)} nouveaux postes"]
    for ax, col, title in zip(axes, ["minutes_before", "minutes_after"], titles):
        _fill_communes(ax, plan, colours(c[col]), edgecolor="#666666", linewidth=0.2)
        epci.boundary.plot(ax=ax, color=EPCI_COLOUR, linewidth=0.9)
        kind = places["kinds"].map(main_kind)
        pc = [KIND_COLOURS.get(k, "#333333") for k in kind]
        xs, ys = places.geometry.x.to_numpy(), places.geometry.y.to_numpy()
        a = acc.to_numpy()
        ax.scatter(
            xs[a],
            ys[a],
            s=11,
            c=[pc[i] for i in np.flatnonzero(a)],
            edgecolors="white",
            linewidths=0.5,
            zorder=3,
        )
        ax.scatter(
            xs[~a],
            ys[~a],
            s=11,
            facecolors="white",
            edgecolors=[pc[i] for i in np.flatnonzero(~a)],
            linewidths=0.9,
            zorder=3,
        )
        ax.set_title(title, fontsize=11)
        ax.set_axis_off()
        ax.set_aspect("equal")
    ax = axes[1]
    # one collection for every post (drawn in the same order as one scatter per post)
    ax.scatter(
        plan.posts.geometry.x.to_numpy(),
        plan.posts.geometry.y.to_numpy(),
        marker="s",
        s=80,
        c=POST_COLOUR,
        edgecolors="white",
        linewidths=0.8,
        zorder=4,
    )
    for i, g in enumerate(plan.posts.geometry):
        ax.annotate(
            str(i + 1),
            (g.x, g.y),
            color="white",
            fontsize=6.5,
            ha="center",
            va="center",
            fontweight="bold",
            zorder=5,
        )
    handles: list[Artist] = [
        Patch(facecolor=col, edgecolor="#666666", label=lab)
        for col, lab in zip(MINUTE_COLOURS, minute_class_labels())
    ]
    handles += [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markerfacecolor=KIND_COLOURS[k],
            markeredgecolor="white",
            label=lab,
        )
        for k, lab in KIND_LABELS.items()
    ]
    handles += [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markerfacecolor="white",
            markeredgecolor="#555555",
            label="accès seul",
        ),
        Line2D(
            [],
            [],
            marker="s",
            linestyle="",
            markerfacecolor=POST_COLOUR,
            markeredgecolor="white",
            markersize=8,
            label="nouveau poste",
        ),
        Line2D([], [], color=EPCI_COLOUR, label="limite d'EPCI"),
    ]
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=6,
        fontsize=7.5,
        frameon=False,
        title=f"Temps d'accès au lieu d'accompagnement le plus proche (seuil {t} min)",
        title_fontsize=8,
    )
    fig.subplots_adjust(left=0.01, right=0.99, top=0.94, bottom=0.17, wspace=0.02)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


#: Fill of the communes already within the threshold on the synthesis map.
COVERED_COLOUR = "#e5e5e5"


def synthesis_map_png(plan: Any, *, dpi: int = 130) -> bytes:
    """One-panel PNG for the elected officials' summary: who is left out, what the posts change.

    Communes within the threshold before the new posts in light grey, those the posts
    bring within it in orange, those still beyond it in red; EPCI boundaries; the new
    posts as numbered squares (numbers as in the report's table of posts).

    Parameters
    ----------
    plan : cnfs_geo.plan.Plan
        ``communes`` (``covered_before``, ``covered_after``, ``epci``, polygons) and
        ``posts`` (points), in the working CRS.
    dpi : int

    Returns
    -------
    bytes
        PNG image (no software version in its metadata: same plan, same bytes).
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    c = plan.communes
    before = c["covered_before"].astype(bool).to_numpy()
    after = c["covered_after"].astype(bool).to_numpy()
    fill = np.where(
        before, COVERED_COLOUR, np.where(after, GAP_SOLVED_COLOUR, GAP_REMAINING_COLOUR)
    )
    fig = Figure(figsize=(7.0, 5.4), dpi=dpi)
    ax = fig.subplots()
    _fill_communes(ax, plan, list(fill), edgecolor="#9a9a9a", linewidth=0.2)
    _epci_polygons(plan).boundary.plot(ax=ax, color=EPCI_COLOUR, linewidth=0.8)
    for i, g in enumerate(plan.posts.geometry):
        ax.scatter([g.x], [g.y], marker="s", s=110, c=POST_COLOUR, edgecolors="white", zorder=4)
        ax.annotate(
            str(i + 1),
            (g.x, g.y),
            color="white",
            fontsize=7,
            ha="center",
            va="center",
            fontweight="bold",
            zorder=5,
        )
    ax.set_axis_off()
    ax.set_aspect("equal")
    t = _fr.number(plan.scenario.threshold)
    handles: list[Artist] = [
        Patch(facecolor=COVERED_COLOUR, edgecolor="#9a9a9a", label=f"déjà à ≤ {t} min"),
        Patch(facecolor=GAP_SOLVED_COLOUR, edgecolor="#9a9a9a", label="couverte grâce aux postes"),
        Patch(facecolor=GAP_REMAINING_COLOUR, edgecolor="#9a9a9a", label="toujours à l'écart"),
        Line2D(
            [],
            [],
            marker="s",
            linestyle="",
            markerfacecolor=POST_COLOUR,
            markeredgecolor="white",
            markersize=9,
            label="nouveau poste (numéro)",
        ),
        Line2D([], [], color=EPCI_COLOUR, label="limite d'EPCI"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.subplots_adjust(left=0.0, right=1.0, top=1.0, bottom=0.12)
    return _png(fig)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, metadata={"Software": None})
    return buf.getvalue()


def priority_map_png(plan: Any, *, dpi: int = 110) -> bytes:
    """PNG map of the priority territories: communes coloured by ``priority_score``
    (classes of :data:`cnfs_geo._map_style.PRIORITY_BREAKS`), communes meeting the priority
    rule outlined in black, gap clusters outlined and labelled (``G01``…), EPCI
    without a digital project hatched, EPCI limits.

    Parameters
    ----------
    plan : cnfs_geo.plan.Plan
        ``communes`` (``priority_score``, ``priority_gap``, ``epci``, polygons),
        ``gap_clusters`` (``cluster_id``, polygons), ``epci`` (``has_project``), all in
        the working CRS.
    dpi : int

    Returns
    -------
    bytes
        PNG image (no software version in its metadata: identical plans give
        identical bytes).
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    c = plan.communes
    epci = _epci_polygons(plan)
    fig = Figure(figsize=(8.0, 6.4), dpi=dpi)
    # no Agg canvas until savefig: geopandas calls draw_idle after each layer, which
    # would render the whole figure every time on an attached Agg canvas
    ax = fig.add_axes((0.0, 0.16, 1.0, 0.84))
    _fill_communes(
        ax,
        plan,
        [priority_colour(v) for v in c["priority_score"]],
        edgecolor="#888888",
        linewidth=0.2,
    )
    gap = c[c["priority_gap"].astype(bool)]
    if len(gap):
        gap.boundary.plot(ax=ax, color="#000000", linewidth=0.7)
    nop = epci_without_project(plan)
    nop_geo = epci.loc[[e for e in nop.index if e in epci.index]]
    if len(nop_geo):
        nop_geo.plot(
            ax=ax, facecolor="none", edgecolor=NO_PROJECT_COLOUR, hatch="///", linewidth=0.0
        )
        nop_geo.boundary.plot(ax=ax, color=NO_PROJECT_COLOUR, linewidth=1.6, linestyle="--")
    epci.boundary.plot(ax=ax, color=EPCI_COLOUR, linewidth=0.8)
    cl = getattr(plan, "gap_clusters", None)
    if cl is not None and len(cl):
        cl = cl.sort_values("cluster_id")
        cl.boundary.plot(ax=ax, color=CLUSTER_COLOUR, linewidth=1.8)
        for r in cl.itertuples(index=False):
            pt = r.geometry.representative_point()
            ax.annotate(
                str(r.cluster_id),
                (pt.x, pt.y),
                color=CLUSTER_COLOUR,
                fontsize=7,
                ha="center",
                va="center",
                fontweight="bold",
                zorder=5,
                bbox={
                    "boxstyle": "round,pad=0.15",
                    "fc": "white",
                    "ec": CLUSTER_COLOUR,
                    "lw": 0.8,
                    "alpha": 0.9,
                },
            )
    ax.set_axis_off()
    ax.set_aspect("equal")
    handles: list[Artist] = [
        Patch(facecolor=col, edgecolor="#888888", label=lab)
        for col, lab in zip(PRIORITY_COLOURS, priority_class_labels())
    ]
    handles += [
        Patch(facecolor="white", edgecolor="#000000", label="commune prioritaire"),
        Line2D([], [], color=CLUSTER_COLOUR, linewidth=1.8, label="territoire prioritaire (zone)"),
    ]
    if len(nop_geo):
        handles.append(
            Patch(
                facecolor="white",
                edgecolor=NO_PROJECT_COLOUR,
                hatch="///",
                label="EPCI sans projet numérique",
            )
        )
    handles.append(Line2D([], [], color=EPCI_COLOUR, label="limite d'EPCI"))
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=5,
        fontsize=7.5,
        frameon=False,
        title="Score de priorité (0 à 100)",
        title_fontsize=8,
    )
    return _png(fig)


def circuits_map_png(plan: Any, *, dpi: int = 110) -> bytes:
    """PNG map of the itinerant circuits: tour lines (one colour per circuit), base
    (square) and stops numbered in tour order, over the communes coloured by travel
    time before the new posts, with EPCI limits.

    Parameters
    ----------
    plan : cnfs_geo.plan.Plan
        ``circuits`` (``circuit_id``, ``base_insee``, ``stops``, LineString
        ``geometry``) and ``communes`` (``chef_lieu_x``/``chef_lieu_y``,
        ``minutes_before``, polygons), working CRS.
    dpi : int

    Returns
    -------
    bytes
        PNG image.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    c = plan.communes
    circuits = plan.circuits.sort_values("circuit_id", kind="stable")
    sp = stop_points(plan)
    epci = _epci_polygons(plan)
    fig = Figure(figsize=(8.0, 6.0), dpi=dpi)
    # no Agg canvas until savefig: geopandas calls draw_idle after each layer, which
    # would render the whole figure every time on an attached Agg canvas
    ax = fig.add_axes((0.0, 0.1, 1.0, 0.9))
    _fill_communes(ax, plan, "#f0f0f0", edgecolor="#bbbbbb", linewidth=0.2)
    epci.boundary.plot(ax=ax, color=EPCI_COLOUR, linewidth=0.6)
    handles = []
    for i, r in enumerate(circuits.itertuples(index=False)):
        col = circuit_colour(i)
        if r.geometry is not None and not r.geometry.is_empty:
            x, y = r.geometry.xy
            ax.plot(x, y, color=col, linewidth=1.6, linestyle="--", zorder=3)
        stops = [s_ for s_ in str(r.stops).split(";") if s_]
        bx, by = c.at[str(r.base_insee), "chef_lieu_x"], c.at[str(r.base_insee), "chef_lieu_y"]
        ax.scatter([bx], [by], marker="s", s=70, c=col, edgecolors="white", zorder=5)
        for k, insee in enumerate(stops, start=1):
            sx, sy = sp.at[insee, "x"], sp.at[insee, "y"]
            ax.scatter(
                [sx], [sy], marker="o", s=75, c="white", edgecolors=col, linewidths=1.4, zorder=5
            )
            ax.annotate(
                str(k),
                (sx, sy),
                color=col,
                fontsize=6,
                ha="center",
                va="center",
                fontweight="bold",
                zorder=6,
            )
        handles.append(
            Line2D(
                [],
                [],
                color=col,
                linestyle="--",
                marker="s",
                label=f"{r.circuit_id} : base {r.base_nom}",
            )
        )
    # zoom on the circuits (15 km around their bases and stops), within the département
    ids = sorted({str(r.base_insee) for r in circuits.itertuples(index=False)})
    xs = pd.concat([c.loc[ids, "chef_lieu_x"].astype(float), sp["x"]])
    ys = pd.concat([c.loc[ids, "chef_lieu_y"].astype(float), sp["y"]])
    bx0, by0, bx1, by1 = c.total_bounds
    pad = 15_000.0
    x0, x1 = max(bx0, xs.min() - pad), min(bx1, xs.max() + pad)
    y0, y1 = max(by0, ys.min() - pad), min(by1, ys.max() + pad)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_axis_off()
    ax.set_aspect("equal")
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=min(4, max(1, len(handles))),
        fontsize=7.5,
        frameon=False,
        title="Circuits itinérants (carré : base ; cercles : arrêts numérotés dans "
        "l'ordre de la tournée)",
        title_fontsize=8,
    )
    return _png(fig)


def compare_chart(table: pd.DataFrame, path: Any, *, title: str = "") -> None:
    """PNG chart of a :func:`cnfs_geo.plan.compare_posts` table (French labels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ax.plot(
        table["posts"],
        table["pct_need_covered"],
        marker="o",
        color="#08519c",
        label="population pondérée par le besoin couverte (%)",
    )
    ax.plot(
        table["posts"],
        table["pct_population_covered"],
        marker="s",
        color="#6baed6",
        label="population couverte (%)",
    )
    ax.set_xlabel("nombre de nouveaux postes")
    ax.set_ylabel("part couverte (%)")
    ax2 = ax.twinx()
    ax2.bar(
        table["posts"],
        table["marginal_need"].fillna(0),
        alpha=0.25,
        color="#fd8d3c",
        label="gain par poste ajouté (besoin)",
    )
    ax2.set_ylabel("gain par poste ajouté")
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
    ax.legend(lines, labels, loc="center right", fontsize=8)
    ax.set_title(title or "Couverture selon le nombre de nouveaux postes")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)
