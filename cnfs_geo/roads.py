"""Road travel times on the OpenStreetMap road graph.

Load a drivable graph (OSM XML, PBF through osmium-tool, or Overpass), convert it once
to sparse arrays (:class:`RoadNetwork`) and route with scipy's Dijkstra into the long
OD table of :mod:`cnfs_geo.access`. Method and speeds: ``docs/methods_access.md``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as _sp
from scipy.sparse.csgraph import dijkstra as _dijkstra
from scipy.spatial import cKDTree

from . import _fr, _progress
from ._errors import DataFileError, ValidationError
from .access import empty_od, point_xy
from .settings import DEFAULT, Settings

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx
    from shapely.geometry.base import BaseGeometry

_log = logging.getLogger(__name__)

ROAD = "road (OSM)"

#: Speed (km/h) of the off-network legs, point to snapped node: a *zone de rencontre*
#: (code de la route R110-2). Reasons in docs/methods_access.md.
OFF_NETWORK_SPEED_KMH = 20.0

#: Speed (km/h) by OSM ``highway`` type where a way has no usable ``maxspeed`` (French
#: rules); other highway types are not drivable. Sources in docs/methods_access.md.
ROAD_SPEEDS_KMH: Mapping[str, float] = MappingProxyType(
    {
        "motorway": 130.0,
        "motorway_link": 70.0,
        "trunk": 110.0,
        "trunk_link": 70.0,
        "primary": 80.0,
        "primary_link": 50.0,
        "secondary": 80.0,
        "secondary_link": 50.0,
        "tertiary": 70.0,
        "tertiary_link": 50.0,
        "unclassified": 50.0,
        "residential": 30.0,
        "living_street": 20.0,
        "road": 50.0,
    }
)

#: Nodes reached only by these highway types are never used as snapping targets:
#: a commune or place next to a motorway is not on it (you enter it at an
#: interchange, whose node is shared with an ordinary road and stays eligible).
SNAP_EXCLUDED_HIGHWAYS: tuple[str, ...] = ("motorway", "motorway_link")

#: Access values that make a way non-public (dropped on load).
_NO_ACCESS = frozenset({"private", "no"})

#: Snapping distances above this are logged as a warning (likely CRS or extent error).
_SNAP_WARN_M = 2_000.0

#: Number of (source × node) cells per Dijkstra chunk (bounds memory: about
#: 20 bytes per cell, so ~400 MB).
_CHUNK_CELLS = 20_000_000

_ROAD_CACHE_VERSION = "od_road-v1"

#: Minutes added per metre of edge in the second Dijkstra that measures road km
#: (see :func:`_od_core`): small enough that only paths within ~0.2 s of the fastest
#: (30 km × 1e-7 min) can be preferred for being shorter, large enough that float
#: rounding of the time sums (~1e-12 min) costs under a millimetre.
_KM_EPS = 1e-7


def _import_osmnx() -> Any:
    try:
        import osmnx
    except ImportError as exc:  # pragma: no cover - osmnx is installed in dev and CI
        raise ImportError(
            "road travel times need osmnx >= 2.0: pip install cnfs_geo[road]"
        ) from exc
    return osmnx


def road_travel_model_label(
    settings: Settings | None = None, *, off_network_kmh: float = OFF_NETWORK_SPEED_KMH
) -> str:
    """Human-readable description of the road travel model (French, for outputs).

    ``settings`` (``detour_factor`` of the off-network legs): ``None`` means the defaults.
    """
    settings = DEFAULT if settings is None else settings
    return _fr.road_model(settings.detour_factor, off_network_kmh)


def _drivable(data: Mapping[str, Any], speeds: Mapping[str, float]) -> bool:
    hwy = data.get("highway")
    hwys = hwy if isinstance(hwy, list) else [hwy]
    if not any(h in speeds for h in hwys):
        return False
    access = data.get("access")
    accesses = access if isinstance(access, list) else [access]
    if any(a in _NO_ACCESS for a in accesses):
        return False
    return data.get("area") != "yes"


def _filter_drivable(G: nx.MultiDiGraph, speeds: Mapping[str, float]) -> nx.MultiDiGraph:
    drop = [(u, v, k) for u, v, k, d in G.edges(keys=True, data=True) if not _drivable(d, speeds)]
    G.remove_edges_from(drop)
    isolated = [n for n in G.nodes if G.degree(n) == 0]
    G.remove_nodes_from(isolated)
    _log.info(
        "road graph: dropped %d non-drivable or non-public edge(s) and %d node(s) left "
        "without edge",
        len(drop),
        len(isolated),
    )
    return G


def add_road_travel_times(
    G: nx.MultiDiGraph, *, speeds: Mapping[str, float] | None = None
) -> nx.MultiDiGraph:
    """Add ``speed_kph`` and ``travel_time`` (seconds) to every edge, with osmnx.

    Uses :func:`osmnx.routing.add_edge_speeds` (an edge's ``maxspeed`` tag when it
    has a usable one, else the speed of its highway type in ``speeds``) then
    :func:`osmnx.routing.add_edge_travel_times` (``length / speed``).

    Parameters
    ----------
    G : networkx.MultiDiGraph
        osmnx graph with ``length`` (metres) and ``highway`` on every edge.
    speeds : mapping, optional
        Speeds (km/h) by highway type, merged over :data:`ROAD_SPEEDS_KMH`.

    Returns
    -------
    networkx.MultiDiGraph
        The same graph, modified in place.
    """
    ox = _import_osmnx()
    table = {**ROAD_SPEEDS_KMH, **dict(speeds or {})}
    bad = [
        f"speed for {k!r} = {v!r}: must be a positive number of km/h"
        for k, v in table.items()
        if not (isinstance(v, (int, float)) and v > 0)
    ]
    if bad:
        raise ValidationError("speeds", bad)
    # fallback: highway types absent from the table (only when the caller kept them)
    ox.routing.add_edge_speeds(G, hwy_speeds=dict(table), fallback=table["road"])
    ox.routing.add_edge_travel_times(G)
    return G


def _finish_graph(
    G: nx.MultiDiGraph,
    *,
    crs: str,
    simplify: bool,
    retain_all: bool,
    speeds: Mapping[str, float] | None,
    source: str,
) -> nx.MultiDiGraph:
    ox = _import_osmnx()
    table = {**ROAD_SPEEDS_KMH, **dict(speeds or {})}
    G = _filter_drivable(G, table)
    if G.number_of_edges() == 0:
        raise ValidationError(
            source,
            [
                "no drivable public road in this data: it needs ways tagged highway=<one of "
                f"{', '.join(table)}> without access=private/no; check the file or its extent"
            ],
        )
    if not retain_all:
        G = ox.truncate.largest_component(G, strongly=False)
    if simplify:
        G = ox.simplification.simplify_graph(G)
    add_road_travel_times(G, speeds=table)
    G = ox.projection.project_graph(G, to_crs=crs)
    G.graph["cnfs_geo_source"] = source
    _log.info(
        "road graph from %s: %d nodes, %d edges, CRS %s", source, len(G), G.number_of_edges(), crs
    )
    return G


def road_graph_from_xml(
    path: str | os.PathLike,
    *,
    crs: str,
    simplify: bool = False,
    retain_all: bool = False,
    speeds: Mapping[str, float] | None = None,
) -> nx.MultiDiGraph:
    """Drivable road graph from an OSM XML file (``.osm``), ready for :func:`od_road`.

    The file is read by :func:`osmnx.graph_from_xml` (which keeps every way); ways
    that are not drivable public roads (highway type not in :data:`ROAD_SPEEDS_KMH`,
    ``access=private|no``, ``area=yes``) are dropped, speeds and travel times added
    (:func:`add_road_travel_times`) and the graph projected to ``crs``.

    Parameters
    ----------
    path : path-like
        OSM XML file.
    crs : str
        Working CRS (metres), e.g. ``settings.working_crs("49")`` = ``"EPSG:2154"``.
    simplify : bool
        Merge interstitial nodes (:func:`osmnx.simplify_graph`). Off by default:
        points are snapped to nodes, and keeping every OSM vertex keeps the
        snapping gap short (a simplified rural edge can be kilometres long).
    retain_all : bool
        Keep every connected piece. By default only the largest weakly connected
        component is kept, so that no point snaps onto an island it cannot leave.
    speeds : mapping, optional
        Fallback speeds by highway type, merged over :data:`ROAD_SPEEDS_KMH`.

    Returns
    -------
    networkx.MultiDiGraph
        Node attributes ``x``, ``y`` in ``crs``; edge attributes ``length`` (m),
        ``speed_kph``, ``travel_time`` (s), ``highway``, ``oneway``…;
        ``graph["crs"] = crs``, ``graph["cnfs_geo_source"]`` = file name and sha256.
    """
    ox = _import_osmnx()
    path = Path(path)
    if not path.is_file():
        raise DataFileError(
            f"OSM XML file not found: {path}; export one from a .osm.pbf with "
            "road_graph_from_pbf or `osmium cat in.osm.pbf -o out.osm`"
        )
    from .catalog import file_sha256

    source = f"{path.name} (sha256 {file_sha256(path)[:16]})"
    try:
        G = ox.graph_from_xml(path, simplify=False, retain_all=True)
    except Exception as exc:  # osmnx raises xml, KeyError… on broken files
        raise DataFileError(f"cannot read OSM XML {path}: {exc}") from exc
    return _finish_graph(
        G, crs=crs, simplify=simplify, retain_all=retain_all, speeds=speeds, source=source
    )


def road_graph_from_pbf(
    path: str | os.PathLike,
    *,
    crs: str,
    simplify: bool = False,
    retain_all: bool = False,
    speeds: Mapping[str, float] | None = None,
    work_dir: str | os.PathLike | None = None,
) -> nx.MultiDiGraph:
    """Drivable road graph from an OSM PBF extract (``.osm.pbf``, e.g. Geofabrik's).

    The extract is cut down to the drivable highway ways (and their nodes) and
    written as OSM XML by the ``osmium`` command of osmium-tool::

        osmium tags-filter in.osm.pbf w/highway=motorway,trunk,… -f osm -o roads.osm

    then read by :func:`road_graph_from_xml`. Filtering first keeps the XML small
    (a regional extract is mostly buildings and land use; ``osmium cat`` of the
    whole file to XML would be tens of times larger).

    Why osmium-tool rather than pyrosm: see docs/methods_access.md.

    Parameters
    ----------
    path : path-like
        ``.osm.pbf`` file.
    crs, simplify, retain_all, speeds
        As in :func:`road_graph_from_xml`.
    work_dir : path-like, optional
        Where to write the intermediate XML (deleted afterwards); a temporary
        folder by default.

    Returns
    -------
    networkx.MultiDiGraph
        As :func:`road_graph_from_xml`.

    Raises
    ------
    DataFileError
        The file is missing, the ``osmium`` command is not installed (the message
        names the package ``osmium-tool``), or osmium fails (its message is quoted).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(
            f"OSM PBF file not found: {path}; download a regional extract "
            "(e.g. pays-de-la-loire-latest.osm.pbf) and pass its path"
        )
    osmium = shutil.which("osmium")
    if osmium is None:
        raise DataFileError(
            f"reading {path} needs the `osmium` command, which is not installed: install "
            "the package osmium-tool (Debian/Ubuntu: apt-get install osmium-tool; macOS: "
            "brew install osmium-tool; conda: conda install -c conda-forge osmium-tool), "
            "or convert the file yourself with `osmium cat in.osm.pbf -o out.osm` and call "
            "road_graph_from_xml"
        )
    table = {**ROAD_SPEEDS_KMH, **dict(speeds or {})}
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="cnfs_geo_osm_") as tmp:
        xml = Path(tmp) / (path.name.removesuffix(".pbf").removesuffix(".osm") + ".roads.osm")
        cmd = [
            osmium,
            "tags-filter",
            str(path),
            "w/highway=" + ",".join(table),
            "--overwrite",
            "-f",
            "osm",
            "-o",
            str(xml),
        ]
        _log.info("running %s", " ".join(cmd))
        run = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            raise DataFileError(
                f"osmium could not convert {path} (exit {run.returncode}): "
                f"{run.stderr.strip() or run.stdout.strip()}"
            )
        G = road_graph_from_xml(
            xml, crs=crs, simplify=simplify, retain_all=retain_all, speeds=speeds
        )
    from .catalog import file_sha256

    G.graph["cnfs_geo_source"] = f"{path.name} (sha256 {file_sha256(path)[:16]})"
    return G


def road_graph_from_polygon(
    polygon: BaseGeometry,
    *,
    polygon_crs: str,
    crs: str,
    buffer_m: float = 10_000.0,
    cache_folder: str | os.PathLike | None = None,
    simplify: bool = False,
    speeds: Mapping[str, float] | None = None,
) -> nx.MultiDiGraph:
    """Download the drivable road graph around a polygon (online, Overpass via osmnx).

    Needs network access; never called by the tests. The polygon is buffered by
    ``buffer_m`` (in ``polygon_crs``, which must be projected) so that routes which
    leave the territory and come back, and roads just across the border, are kept.
    osmnx caches every Overpass answer in ``cache_folder``: a second call for the
    same polygon does not download again.

    Parameters
    ----------
    polygon : shapely geometry
        Territory (e.g. the département outline), in ``polygon_crs``.
    polygon_crs : str
        CRS of ``polygon`` (projected, metres).
    crs : str
        CRS of the returned graph (working CRS).
    buffer_m : float
        Buffer around the polygon. 10 km: a 20-minute trip rarely detours further
        outside the territory than that.
    cache_folder : path-like, optional
        osmnx HTTP cache; default ``<cnfs_geo cache>/overpass``
        (:func:`cnfs_geo.catalog.default_cache_dir`).
    simplify, speeds
        As in :func:`road_graph_from_xml`.

    Returns
    -------
    networkx.MultiDiGraph
        As :func:`road_graph_from_xml`.
    """
    ox = _import_osmnx()
    import geopandas as gpd
    from pyproj import CRS

    if not CRS(polygon_crs).is_projected:
        raise ValidationError(
            "polygon_crs",
            [
                f"{polygon_crs!r} is geographic; the buffer is in "
                "metres: pass the polygon in a projected CRS "
                "(the working CRS, e.g. EPSG:2154)"
            ],
        )
    from .catalog import default_cache_dir

    folder = Path(cache_folder) if cache_folder is not None else default_cache_dir() / "overpass"
    area = gpd.GeoSeries([polygon], crs=polygon_crs).buffer(buffer_m).to_crs("EPSG:4326")
    old = (ox.settings.use_cache, ox.settings.cache_folder)
    ox.settings.use_cache, ox.settings.cache_folder = True, str(folder)
    try:
        G = ox.graph_from_polygon(
            area.iloc[0], network_type="drive", simplify=False, retain_all=True
        )
    finally:
        ox.settings.use_cache, ox.settings.cache_folder = old
    return _finish_graph(
        G,
        crs=crs,
        simplify=simplify,
        retain_all=False,
        speeds=speeds,
        source=f"Overpass (osmnx drive network, polygon + {buffer_m:g} m)",
    )


def road_graph_for_departement(
    departement: str,
    *,
    data_dir: str | os.PathLike | None = None,
    buffer_m: float = 10_000.0,
    cache_folder: str | os.PathLike | None = None,
    simplify: bool = False,
    speeds: Mapping[str, float] | None = None,
) -> nx.MultiDiGraph:
    """Download the drivable road graph of a département plus a buffer (online).

    The outline is dissolved from the département's communes
    (:func:`cnfs_geo.territory.communes_from_cog`); the graph is in the
    département's working CRS (:func:`cnfs_geo.settings.working_crs`). See
    :func:`road_graph_from_polygon`. Needs network access; never called by the tests.
    """
    from . import catalog, territory
    from .settings import working_crs

    dd = catalog.resolve_data_dir(data_dir)
    communes = territory.communes_from_cog(str(departement), dd)
    outline = territory.departement_outline(communes)
    crs = working_crs(str(departement))
    return road_graph_from_polygon(
        outline.geometry.iloc[0],
        polygon_crs=str(communes.crs),
        crs=crs,
        buffer_m=buffer_m,
        cache_folder=cache_folder,
        simplify=simplify,
        speeds=speeds,
    )


def clip_road_graph(G: nx.MultiDiGraph, area: BaseGeometry) -> nx.MultiDiGraph:
    """The part of a projected road graph within ``area`` (its largest weakly connected piece).

    Used by the national run to build each département's graph from a regional extract
    within a buffer of the département (:data:`cnfs_geo.national.ROAD_BUFFER_M`).

    Parameters
    ----------
    G : networkx.MultiDiGraph
        From :func:`road_graph_from_xml` / :func:`road_graph_from_pbf` (nodes ``x``,
        ``y`` in the graph's projected CRS).
    area : shapely geometry
        Polygon in the same CRS (e.g. the département outline buffered by 20 km).

    Returns
    -------
    networkx.MultiDiGraph
        A copy; ``graph["cnfs_geo_source"]`` notes the clip.

    Raises
    ------
    ValidationError
        No road node lies within ``area`` (the extract does not cover the département).
    """
    import networkx as nx
    import shapely

    nodes = list(G.nodes)
    x = np.fromiter((d["x"] for _, d in G.nodes(data=True)), dtype=float, count=len(nodes))
    y = np.fromiter((d["y"] for _, d in G.nodes(data=True)), dtype=float, count=len(nodes))
    inside = shapely.contains_xy(area, x, y)
    source = str(G.graph.get("cnfs_geo_source", "road graph"))
    if not inside.any():
        raise ValidationError(
            source,
            [
                "no road of the extract lies within the département and its buffer: give "
                "the extract of this département (or of its region)"
            ],
        )
    out = G.copy()
    out.remove_nodes_from(n for n, ok in zip(nodes, inside, strict=True) if not ok)
    parts = list(nx.weakly_connected_components(out))
    if len(parts) > 1:
        largest = max(parts, key=len)
        out.remove_nodes_from([n for part in parts if part is not largest for n in part])
    out.graph["cnfs_geo_source"] = f"{source}, clipped to the area ({len(out)} of {len(G)} nodes)"
    return out


# --------------------------------------------------------------------------------------
# graph → sparse matrix
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RoadNetwork:
    """A road graph as sparse arrays, ready for routing (see :func:`road_network`).

    A plain record, built once per graph and passed to :func:`od_road`,
    :func:`nearest_road` and :func:`road_snap` in place of the graph to skip the
    conversion, which costs more than routing on large graphs.

    Attributes
    ----------
    nodes : ndarray
        Graph node ids, sorted; array positions index everything below.
    xy : ndarray (n, 2)
        Node coordinates in ``crs``.
    csr : scipy.sparse.csr_matrix (n, n)
        Edge travel time in minutes (fastest of parallel edges, ties to the shortest;
        self-loops dropped; zero times kept as explicit entries).
    csr_km : scipy.sparse.csr_matrix (n, n)
        Same edges, minutes + ``_KM_EPS`` × metres (for road km).
    vmax : float
        Largest edge speed in metres per minute (bounds km per minute).
    snap : ndarray of bool
        Nodes usable as snapping targets (touched by an edge not in
        :data:`SNAP_EXCLUDED_HIGHWAYS`).
    tree : scipy.spatial.cKDTree
        On the coordinates of the snapping targets, whose positions are ``eligible``.
    eligible : ndarray of int
    crs : str
        Projected CRS of the graph.
    source : str
        ``graph["cnfs_geo_source"]`` when set.
    fingerprint : str
        sha256 of node ids, coordinates, edge times and lengths and snapping
        targets (part of the OD cache key).
    """

    nodes: np.ndarray
    xy: np.ndarray
    csr: Any
    csr_km: Any
    vmax: float
    snap: np.ndarray
    tree: Any
    eligible: np.ndarray
    crs: str
    source: str
    fingerprint: str

    @property
    def n(self) -> int:
        """Number of nodes."""
        return len(self.nodes)


def road_network(graph: nx.MultiDiGraph | RoadNetwork) -> RoadNetwork:
    """Convert a projected osmnx road graph to the arrays :func:`od_road` routes on.

    Reads every edge's ``travel_time`` (s), ``length`` (m) and ``highway`` once.
    On a 1M-node graph this takes seconds, more than routing 200 origins; convert
    once and pass the result to several :func:`od_road` / :func:`nearest_road`
    calls. A :class:`RoadNetwork` is returned as is.

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        From :func:`road_graph_from_xml` (or another loader): ``graph["crs"]``
        projected, node ``x``/``y``, edge ``travel_time`` and ``length``.

    Returns
    -------
    RoadNetwork

    Raises
    ------
    ValidationError
        Unprojected or CRS-less graph, empty graph, edges without a valid
        ``travel_time`` or ``length`` (the message names one and the fix).
    """
    if isinstance(graph, RoadNetwork):
        return graph
    from pyproj import CRS

    G = graph
    crs = G.graph.get("crs")
    problems = []
    if crs is None:
        problems.append(
            "graph has no graph['crs']; build it with road_graph_from_xml / "
            "road_graph_from_pbf / road_graph_from_polygon"
        )
    elif not CRS(crs).is_projected:
        problems.append(
            f"graph CRS {crs!r} is geographic (degrees); project it to the working "
            "CRS: osmnx.projection.project_graph(G, to_crs='EPSG:2154') or pass "
            "crs= to the road_graph_from_* loader"
        )
    if G.number_of_nodes() == 0:
        problems.append("graph has no node")
    if problems:
        raise ValidationError("graph", problems)
    nodes = np.array(sorted(G.nodes))
    n = len(nodes)
    xy = np.array(
        [(G.nodes[node]["x"], G.nodes[node]["y"]) for node in nodes.tolist()], dtype=float
    )
    # one pass over the adjacency (much faster than G.edges(data=...) views)
    ua, va, ta, la, ha = [], [], [], [], []
    for a, nbrs in G.succ.items():
        for b, keyed in nbrs.items():
            for d in keyed.values():
                ua.append(a)
                va.append(b)
                ta.append(d.get("travel_time"))
                la.append(d.get("length"))
                ha.append(d.get("highway"))
    if np.issubdtype(nodes.dtype, np.integer):
        u = np.searchsorted(nodes, np.array(ua, dtype=nodes.dtype))
        v = np.searchsorted(nodes, np.array(va, dtype=nodes.dtype))
    else:
        pos = {node: i for i, node in enumerate(nodes.tolist())}
        u = np.array([pos[x] for x in ua], dtype=np.int64)
        v = np.array([pos[x] for x in va], dtype=np.int64)
    del ua, va
    t = pd.to_numeric(pd.Series(ta, dtype=object), errors="coerce").to_numpy(dtype=float)
    ln = pd.to_numeric(pd.Series(la, dtype=object), errors="coerce").to_numpy(dtype=float)
    del ta, la
    bad = ~np.isfinite(t) | (t < 0) | ~np.isfinite(ln) | (ln < 0)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValidationError(
            "graph",
            [
                f"{int(bad.sum())} edge(s) without a valid travel_time (s) or length (m), e.g. "
                f"edge {nodes[u[k]]!r} -> {nodes[v[k]]!r}; add them with "
                "cnfs_geo.roads.add_road_travel_times(G) (osmnx add_edge_speeds + "
                "add_edge_travel_times)"
            ],
        )
    hw = pd.Series(ha, dtype=object)
    del ha
    excluded = set(SNAP_EXCLUDED_HIGHWAYS)
    lists = hw.map(lambda h: isinstance(h, list)).to_numpy(dtype=bool)
    ordinary = ~hw.isin(SNAP_EXCLUDED_HIGHWAYS).to_numpy(dtype=bool)
    if lists.any():  # simplified graphs merge ways: eligible if any part is ordinary
        ordinary[lists] = [any(h not in excluded for h in x) for x in hw[lists]]
    snap = np.zeros(n, dtype=bool)
    snap[u[ordinary]] = True
    snap[v[ordinary]] = True
    if not snap.any():
        snap[np.unique(np.concatenate([u, v]))] = True  # motorways only: snap anywhere
    keep = u != v  # self-loops never shorten a path
    u, v, t, ln = u[keep], v[keep], t[keep] / 60.0, ln[keep]
    order = np.lexsort((ln, t, v, u))  # fastest parallel edge first, then shortest
    u, v, t, ln = u[order], v[order], t[order], ln[order]
    first = np.ones(len(u), dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
    u, v, t, ln = u[first], v[first], t[first], ln[first]
    csr = _sp.csr_matrix((t, (u, v)), shape=(n, n))  # explicit zeros are kept as edges
    csr_km = _sp.csr_matrix((t + _KM_EPS * ln, (u, v)), shape=(n, n))
    moving = t > 0
    vmax = float((ln[moving] / t[moving]).max()) if moving.any() else 0.0
    if np.any(~moving & (ln > 0)):
        vmax = np.inf  # an edge with length but no time: no bound on km per minute
    h = hashlib.sha256()
    h.update(str(crs).encode())
    h.update(
        nodes.astype(np.int64).tobytes()
        if np.issubdtype(nodes.dtype, np.integer)
        else "\x1f".join(map(str, nodes.tolist())).encode()
    )
    for arr in (xy, u, v, t, ln, snap):
        h.update(np.ascontiguousarray(arr).tobytes())
    eligible = np.flatnonzero(snap)
    return RoadNetwork(
        nodes=nodes,
        xy=xy,
        csr=csr,
        csr_km=csr_km,
        vmax=vmax,
        snap=snap,
        tree=cKDTree(xy[eligible]),
        eligible=eligible,
        crs=str(crs),
        source=str(G.graph.get("cnfs_geo_source", "")),
        fingerprint=h.hexdigest(),
    )


# --------------------------------------------------------------------------------------
# snapping and routing
# --------------------------------------------------------------------------------------


def _check_points_crs(points: pd.DataFrame, crs: str | None, graph_crs: str, name: str) -> None:
    from pyproj import CRS

    pcrs = crs if crs is not None else getattr(points, "crs", None)
    if pcrs is not None and CRS(pcrs) != CRS(graph_crs):
        raise ValidationError(
            name,
            [
                f"coordinates are in {pcrs} but the road graph is in {graph_crs}: reproject the "
                f"points (GeoDataFrame.to_crs({graph_crs!r}), then recompute the x/y columns) or "
                "build the graph with crs= the points' CRS"
            ],
        )


def _ids(points: pd.DataFrame, name: str) -> np.ndarray:
    ids = np.asarray(points.index.astype(str), dtype=object)
    dup = pd.Index(ids)[pd.Index(ids).duplicated()].unique()
    if len(dup):
        raise ValidationError(
            name,
            [
                f"{len(dup)} duplicated identifier(s) in the index, e.g. "
                f"{list(dup[:10])}; each origin/destination needs a unique "
                "id (drop or rename the duplicates)"
            ],
        )
    return ids


def _snap(net: RoadNetwork, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index (into net arrays) of the nearest eligible node of each point, and distance (m)."""
    if len(xy) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    dist, k = net.tree.query(xy, k=1)
    return net.eligible[k], dist


def _legs(
    net: RoadNetwork,
    points: pd.DataFrame,
    xy_cols: tuple[str, str],
    name: str,
    crs: str | None,
    minutes_per_m: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ids, snapped node index, off-network minutes, off-network straight metres."""
    ids = _ids(points, name)
    xy = point_xy(points, *xy_cols, name=name)
    _check_points_crs(points, crs, net.crs, name)
    node, dist = _snap(net, xy)
    far = dist > _SNAP_WARN_M
    if far.any():
        _log.warning(
            "%s: %d point(s) lie more than %.0f m from the road graph (e.g. %s, "
            "%.0f m): check the CRS and the graph's extent",
            name,
            int(far.sum()),
            _SNAP_WARN_M,
            list(ids[far][:5]),
            float(dist[far].max()),
        )
    return ids, node, dist * minutes_per_m, dist


def road_snap(
    points: pd.DataFrame,
    graph: nx.MultiDiGraph | RoadNetwork,
    *,
    xy: tuple[str, str] = ("x", "y"),
    crs: str | None = None,
) -> pd.DataFrame:
    """Graph node each point is snapped to, and the straight distance to it.

    Snapping targets are the graph nodes touched by at least one edge that is not
    in :data:`SNAP_EXCLUDED_HIGHWAYS` (no snapping onto a motorway).

    Parameters
    ----------
    points : DataFrame or GeoDataFrame
        Indexed by identifier, with projected coordinates in columns ``xy``, in the
        graph's CRS.
    graph : networkx.MultiDiGraph or RoadNetwork
        From :func:`road_graph_from_xml` (or another loader), or its
        :func:`road_network` conversion.
    crs : str, optional
        CRS of the coordinates; when given (or when ``points`` is a GeoDataFrame with
        a CRS) it must be the graph's.

    Returns
    -------
    DataFrame
        Index = ``points.index``; columns ``node`` (graph node id) and ``snap_m``
        (straight distance in metres).
    """
    net = road_network(graph)
    _ids(points, "points")
    pxy = point_xy(points, *xy, name="points")
    _check_points_crs(points, crs, net.crs, "points")
    node, dist = _snap(net, pxy)
    return pd.DataFrame({"node": net.nodes[node], "snap_m": dist}, index=points.index)


def _check_road_options(max_minutes: float, off_network_kmh: float) -> None:
    problems = []
    if not (isinstance(max_minutes, Real) and max_minutes >= 0):
        problems.append(
            f"max_minutes={max_minutes!r}: must be a number >= 0 (np.inf for no cutoff)"
        )
    if not (isinstance(off_network_kmh, Real) and 0 < off_network_kmh < np.inf):
        problems.append(
            f"off_network_kmh={off_network_kmh!r}: must be a positive speed in km/h "
            f"(default {OFF_NETWORK_SPEED_KMH:g})"
        )
    if problems:
        raise ValidationError("od_road options", problems)


def _od_core(
    net: RoadNetwork,
    o_node: np.ndarray,
    o_leg: np.ndarray,
    d_node: np.ndarray,
    d_leg: np.ndarray,
    max_minutes: float,
    *,
    with_km: bool = True,
    chunk_cells: int = _CHUNK_CELLS,
) -> tuple[np.ndarray, ...]:
    """All (origin, destination) pairs within ``max_minutes`` on a road network.

    Parameters are per-point arrays: snapped node index and off-network minutes.
    Returns ``(i, j, minutes, km_network)`` with ``i``, ``j`` positions in the
    origin and destination arrays (``km_network`` is NaN when ``with_km`` is False).

    Times: one multi-source ``scipy.sparse.csgraph.dijkstra`` call per chunk of
    distinct origin nodes on the minutes matrix, with ``limit`` = the largest time
    budget left in the chunk. Road km: a second call on minutes + ``_KM_EPS`` ×
    metres; the difference of the two distances divided by ``_KM_EPS`` is the
    length of the fastest path (see :func:`od_road`). This costs one more
    Dijkstra, where following the predecessor trees costs several times more.
    """
    n = net.n
    empty = (np.zeros(0, dtype=np.int64),) * 2 + (np.zeros(0),) * 2
    if len(o_node) == 0 or len(d_node) == 0:
        return empty
    src, src_inv = np.unique(o_node, return_inverse=True)
    dst, dst_inv = np.unique(d_node, return_inverse=True)
    chunk = max(1, int(chunk_cells // max(n, 1)))
    min_dleg = float(d_leg.min())
    out_i, out_j, out_t, out_km = [], [], [], []
    chunks = range(0, len(src), chunk)
    for start in _progress.bar(chunks, desc=_fr.PROGRESS_ROAD_OD, total=len(chunks), unit="lot"):
        stop = min(start + chunk, len(src))
        o_in = np.flatnonzero((src_inv >= start) & (src_inv < stop))
        budget = max_minutes - float(o_leg[o_in].min()) - min_dleg
        if budget < 0:
            continue
        limit = budget * (1 + 1e-9) + 1e-9 if np.isfinite(budget) else np.inf
        dist = _dijkstra(net.csr, directed=True, indices=src[start:stop], limit=limit)
        rows = src_inv[o_in] - start
        net_t = dist[:, dst]
        del dist
        total = (o_leg[o_in, None] + net_t[rows][:, dst_inv]) + d_leg[None, :]
        ii, jj = np.nonzero(np.isfinite(total) & (total <= max_minutes))  # inf: unreached
        out_i.append(o_in[ii])
        out_j.append(jj)
        out_t.append(total[ii, jj])
        if with_km and len(ii):
            # a path of t minutes is at most t × vmax metres long
            limit_km = limit * (1 + _KM_EPS * net.vmax) + 1e-9
            dist_km = _dijkstra(net.csr_km, directed=True, indices=src[start:stop], limit=limit_km)
            r, c = rows[ii], dst_inv[jj]
            km = (dist_km[:, dst][r, c] - net_t[r, c]) / _KM_EPS / 1000.0
            out_km.append(np.maximum(km, 0.0))
            del dist_km
        else:
            out_km.append(np.full(len(ii), np.nan))
        del net_t, total
    if not out_i:
        return empty
    return (
        np.concatenate(out_i),
        np.concatenate(out_j),
        np.concatenate(out_t),
        np.concatenate(out_km),
    )


def _od_cache_key(net: RoadNetwork, parts: list[Any]) -> str:
    h = hashlib.sha256()
    h.update(_ROAD_CACHE_VERSION.encode())
    h.update(net.fingerprint.encode())
    for part in parts:
        if isinstance(part, np.ndarray) and part.dtype != object:
            h.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, np.ndarray):
            h.update("\x1f".join(part.tolist()).encode())
        else:
            h.update(repr(part).encode())
        h.update(b"\x1e")
    return h.hexdigest()


def od_road(
    origins: pd.DataFrame,
    destinations: pd.DataFrame,
    graph: nx.MultiDiGraph | RoadNetwork,
    *,
    max_minutes: float,
    settings: Settings | None = None,
    origin_xy: tuple[str, str] = ("x", "y"),
    destination_xy: tuple[str, str] = ("x", "y"),
    crs: str | None = None,
    off_network_kmh: float = OFF_NETWORK_SPEED_KMH,
    cache_dir: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Long-form OD table of car travel times on an OSM road graph.

    Same contract as :func:`od_crowfly`. Each point is snapped to its nearest
    graph node (:func:`road_snap`); a pair's time is

        off-network leg of the origin + fastest network time + leg of the destination

    where a leg is the straight distance to the snapped node × ``detour_factor``
    at ``off_network_kmh`` (:data:`OFF_NETWORK_SPEED_KMH`). Network times come from
    one multi-source ``scipy.sparse.csgraph.dijkstra`` per chunk of origins, on the
    CSR matrix of edge ``travel_time`` (fastest of parallel edges), bounded by
    ``max_minutes``. Pairs that the network does not connect are absent, like
    pairs beyond the cutoff.

    Parameters
    ----------
    origins, destinations : DataFrame or GeoDataFrame
        Indexed by unique identifier (str), with projected coordinates in metres in
        the columns named by ``origin_xy`` / ``destination_xy``, in the graph's CRS
        (e.g. communes with ``ref_x``/``ref_y``, places with ``x``/``y``).
    graph : networkx.MultiDiGraph or RoadNetwork
        Projected osmnx graph with ``travel_time`` and ``length`` on every edge
        (:func:`road_graph_from_xml`, :func:`road_graph_from_pbf`,
        :func:`road_graph_for_departement`), or its :func:`road_network`
        conversion (convert once when calling several times on one graph).
    max_minutes : float
        Only pairs with ``minutes <= max_minutes`` are returned (``np.inf``: all
        connected pairs).
    settings : Settings, optional
        ``detour_factor`` of the off-network legs; ``None`` means the default settings.
    crs : str, optional
        CRS of the point coordinates, checked against the graph's (also checked
        from a GeoDataFrame's ``.crs``).
    off_network_kmh : float
        Speed of the off-network legs.
    cache_dir : path-like, optional
        When given, the table is stored there as Parquet
        (``od_road_<hash>.parquet``, needs pyarrow) under a hash of the graph's
        arrays (nodes, coordinates, travel times, lengths), the ids and
        coordinates of the points, ``max_minutes``, ``off_network_kmh`` and the
        detour factor; a later call with the same inputs reads it instead of
        routing. The hash needs the graph's arrays: pass a :class:`RoadNetwork`
        to avoid converting the graph again.

    Returns
    -------
    DataFrame
        Columns ``origin_id``, ``destination_id`` (str), ``minutes`` and ``km``
        (road km along the fastest path plus the two off-network legs' straight ×
        detour km), sorted by origin then destination. The road km come from a
        second Dijkstra on minutes + 1e-7 min per metre (``_KM_EPS``), minus the
        minutes: the length of the fastest path, or, when other paths are within
        1e-7 min per metre of length difference (0.2 s for 30 km), a value between
        the fastest path's length and the shortest of those near-ties';
        ``attrs["travel_model"] = "road (OSM)"`` and ``attrs["travel_model_label"]``
        (French description).

    Examples
    --------
    >>> import pandas as pd
    >>> from pathlib import Path
    >>> from cnfs_geo.roads import road_graph_from_xml, od_road
    >>> G = road_graph_from_xml(Path("tests/data/osm/mini_network.osm"),
    ...                         crs="EPSG:2154")  # doctest: +SKIP
    >>> pts = pd.DataFrame({"x": [G.nodes[101]["x"]], "y": [G.nodes[101]["y"]]},
    ...                    index=["a"])  # doctest: +SKIP
    >>> od_road(pts, pts, G, max_minutes=10)["minutes"].tolist()  # doctest: +SKIP
    [0.0]
    """
    settings = DEFAULT if settings is None else settings
    _check_road_options(max_minutes, off_network_kmh)
    net = road_network(graph)
    minutes_per_m = settings.detour_factor / (off_network_kmh * 1000.0 / 60.0)
    o_ids, o_node, o_leg, o_m = _legs(net, origins, origin_xy, "origins", crs, minutes_per_m)
    d_ids, d_node, d_leg, d_m = _legs(
        net, destinations, destination_xy, "destinations", crs, minutes_per_m
    )
    cache_path = None
    if cache_dir is not None:
        key = _od_cache_key(
            net,
            [
                o_ids,
                point_xy(origins, *origin_xy, name="origins"),
                d_ids,
                point_xy(destinations, *destination_xy, name="destinations"),
                float(max_minutes),
                float(off_network_kmh),
                float(settings.detour_factor),
            ],
        )
        cache_path = Path(cache_dir) / f"od_road_{key[:32]}.parquet"
        if cache_path.is_file():
            try:
                out = pd.read_parquet(cache_path)
            except ImportError as exc:
                raise ImportError("the OD cache is Parquet: pip install pyarrow") from exc
            _log.info("od_road: %d pairs read from cache %s", len(out), cache_path)
            return _with_road_attrs(out, settings, off_network_kmh)
    i, j, minutes, km_net = _od_core(net, o_node, o_leg, d_node, d_leg, float(max_minutes))
    if len(i) == 0:
        out = empty_od()
    else:
        out = pd.DataFrame(
            {
                "origin_id": pd.array(o_ids[i], dtype=str),
                "destination_id": pd.array(d_ids[j], dtype=str),
                "minutes": minutes,
                "km": km_net + (o_m[i] + d_m[j]) * settings.detour_factor / 1000.0,
            }
        )
        out = out.sort_values(["origin_id", "destination_id"], kind="stable")
        out = out.reset_index(drop=True)
    _log.info(
        "od_road: %d origins × %d destinations → %d pairs within %g min (graph %d nodes, %d edges)",
        len(o_ids),
        len(d_ids),
        len(out),
        max_minutes,
        net.n,
        net.csr.nnz,
    )
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(f".tmp{os.getpid()}")
        try:
            out.to_parquet(tmp, index=False)
        except ImportError as exc:
            raise ImportError(
                "the OD cache is Parquet: pip install pyarrow (or call od_road without cache_dir)"
            ) from exc
        os.replace(tmp, cache_path)
        _log.info("od_road: cached in %s", cache_path)
    return _with_road_attrs(out, settings, off_network_kmh)


def _with_road_attrs(out: pd.DataFrame, settings: Settings, off_network_kmh: float) -> pd.DataFrame:
    out.attrs["travel_model"] = ROAD
    out.attrs["travel_model_label"] = road_travel_model_label(
        settings, off_network_kmh=off_network_kmh
    )
    return out


def nearest_road(
    origins: pd.DataFrame,
    destinations: pd.DataFrame,
    graph: nx.MultiDiGraph | RoadNetwork,
    *,
    settings: Settings | None = None,
    origin_xy: tuple[str, str] = ("x", "y"),
    destination_xy: tuple[str, str] = ("x", "y"),
    crs: str | None = None,
    off_network_kmh: float = OFF_NETWORK_SPEED_KMH,
    max_minutes: float = np.inf,
) -> pd.DataFrame:
    """Nearest destination of every origin by road (analogue of :func:`nearest_crowfly`).

    One Dijkstra in all: on the reversed graph, from one virtual node per
    destination joined to its snapped node by the destination's off-network leg,
    keeping only the nearest source of each node (``min_only=True``). Its cost does
    not grow with the number of destinations. Times are those of :func:`od_road`.

    Parameters
    ----------
    origins, destinations, graph, settings, origin_xy, destination_xy, crs, off_network_kmh
        As in :func:`od_road`.
    max_minutes : float
        Search bound (default none); origins with nothing within it get no nearest.

    Returns
    -------
    DataFrame
        Index = origins' index; columns ``nearest_id`` (str, None when no
        destination is reachable) and ``minutes`` (inf then). Exact ties go to the
        first destination in index order (each destination's time is raised by
        position × 1e-9 min during the search, then restored).
    """
    settings = DEFAULT if settings is None else settings
    _check_road_options(max_minutes, off_network_kmh)
    net = road_network(graph)
    minutes_per_m = settings.detour_factor / (off_network_kmh * 1000.0 / 60.0)
    _, o_node, o_leg, _ = _legs(net, origins, origin_xy, "origins", crs, minutes_per_m)
    out = pd.DataFrame(index=origins.index)
    out.attrs["travel_model"] = ROAD
    out.attrs["travel_model_label"] = road_travel_model_label(
        settings, off_network_kmh=off_network_kmh
    )
    if len(destinations) == 0 or len(origins) == 0:
        out["nearest_id"] = pd.Series([None] * len(out), index=out.index, dtype=object)
        out["minutes"] = np.inf
        return out
    d_ids, d_node, d_leg, _ = _legs(
        net, destinations, destination_xy, "destinations", crs, minutes_per_m
    )
    n, nd = net.n, len(d_ids)
    tie = np.arange(nd) * 1e-9
    rev = net.csr.T.tocoo()
    aug = _sp.csr_matrix(
        (
            np.concatenate([rev.data, d_leg + tie]),
            (np.concatenate([rev.row, n + np.arange(nd)]), np.concatenate([rev.col, d_node])),
        ),
        shape=(n + nd, n + nd),
    )
    limit = max_minutes * (1 + 1e-9) + 1e-9 if np.isfinite(max_minutes) else np.inf
    dist, _, source = _dijkstra(
        aug,
        directed=True,
        indices=n + np.arange(nd),
        limit=limit,
        min_only=True,
        return_predecessors=True,
    )
    reached = source[o_node] >= 0
    which = np.where(reached, source[o_node] - n, 0)
    minutes = np.where(reached, o_leg + dist[o_node] - tie[which], np.inf)
    ok = reached & (minutes <= max_minutes)
    nearest = np.where(ok, d_ids[which], None)  # type: ignore[call-overload]  # object array
    out["nearest_id"] = pd.Series(nearest, index=out.index, dtype=object)
    out["minutes"] = np.where(ok, minutes, np.inf)
    return out
