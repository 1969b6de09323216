"""All of France: one plan per département, with a national budget of posts, serial or on Dask.

The national work is three steps (README, "All of France on Dask"): a first pass per
département (uncovered need), the allocation of the national budget, then one placement per
département. The national files are read once (:func:`read_inputs`) and shared with the
tasks (scattered to the Dask workers); a département that fails is reported with its reason
while the others complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from . import _dask, _progress, catalog, need, offer, territory
from ._errors import DataFileError, PlacementError
from ._runtime import python_strings, task_mode
from .outputs import staged, write_outputs
from .plan import Plan, Prepared, Scenario, prepare, run
from .settings import GEOGRAPHIC_CRS
from .sources import cog as cog_source
from .sources import datasfun as datasfun_source
from .sources import epci as epci_source
from .sources import polygons as polygons_source
from .sources.arcep import read_fibre
from .sources.ifn import read_ifn

log = logging.getLogger(__name__)

__all__ = [
    "ROAD_BUFFER_M",
    "NationalInputs",
    "NationalResult",
    "allocate_posts",
    "national",
    "osm_for_departement",
    "read_inputs",
    "write_national",
]

#: Buffer around a département within which its road graph is kept (metres): a route to a
#: place or post just across the border, or a detour through the next département, stays
#: possible; 20 km is more than a 30-minute threshold needs off the main roads, and keeps
#: a road run per département (never a national graph in one process).
ROAD_BUFFER_M = 20_000.0

#: Columns of the national GeoParquet (one row per commune of France), besides geometry.
COMMUNE_COLUMNS = (
    "insee",
    "nom",
    "departement",
    "epci",
    "population",
    "need_index",
    "need",
    "minutes_before",
    "minutes_after",
    "pct_covered_before",
    "pct_covered_after",
    "covered_before",
    "covered_after",
    "priority_score",
    "priority_rank",
    "priority_gap",
    "new_posts",
)


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


# --------------------------------------------------------------------------------------
# National inputs, read once
# --------------------------------------------------------------------------------------
@dataclass
class NationalInputs:
    """The national files of a data directory, read once and shared by every département.

    Attributes are the frames of the readers of :mod:`cnfs_geo.sources` (COG communes and
    records, code table and map, EPCI identities and members, datas.fun chefs-lieux or
    None, offer frames by source key with their file names and reasons of absence, ARCEP
    fibre, IFN, and the offer frames' selection keys parsed once,
    :func:`cnfs_geo.offer.index_frames`); commune polygons stay per département (read
    inside its task).
    """

    data_dir: str
    cog: pd.DataFrame
    cog_records: list
    code_table: pd.DataFrame
    code_map: dict
    epci_members: pd.DataFrame
    epci_table: pd.DataFrame
    datasfun: pd.DataFrame | None
    offer_frames: dict
    offer_file_names: dict
    offer_reasons: dict
    fibre: pd.DataFrame
    ifn: pd.DataFrame
    departements: list = field(default_factory=list)
    offer_index: offer.FrameIndex | None = None


def read_inputs(data_dir: str | os.PathLike | None = None) -> NationalInputs:
    """Read the national files of ``data_dir`` once (see :class:`NationalInputs`); their
    string columns backed by Python objects, as in the tasks
    (:func:`cnfs_geo._runtime.python_strings`)."""
    with python_strings():
        return _read_inputs(data_dir)


def _read_inputs(data_dir: str | os.PathLike | None) -> NationalInputs:
    d = catalog.resolve_data_dir(data_dir)
    cog = territory.cog_communes(d)
    table = territory.code_table(d)
    path = d.file("datasfun_communes", required=False)
    frames, names, reasons = offer.read_sources(d)  # every source (the CD49 files for 49)
    records = cog_source.read_cog_records(d.file("cog_communes"))
    code_map = territory.code_map_from_table(table, cog)
    return NationalInputs(
        data_dir=str(d.path),
        cog=cog,
        cog_records=records,
        code_table=table,
        code_map=code_map,
        epci_members=epci_source.read_epci_members(d.file("cog_epci")),
        epci_table=epci_source.read_epci(d.file("cog_epci")),
        datasfun=None if path is None else datasfun_source.read_datasfun_communes(path),
        offer_frames=frames,
        offer_file_names=names,
        offer_reasons=reasons,
        fibre=read_fibre(d.file("fibre")),
        ifn=read_ifn(d.file("ifn_communes")),
        departements=territory.departement_codes(d),
        offer_index=offer.index_frames(frames, cog_records=records, code_map=code_map),
    )


def _base(inputs: NationalInputs, dep: str, scenario: Scenario) -> tuple:
    """What :func:`cnfs_geo.plan.prepare` reads from files, built from the national frames
    (same transforms as the single-département path: ``*_from_frames``)."""
    d = catalog.resolve_data_dir(inputs.data_dir)
    s = scenario.settings
    cog = inputs.cog
    territory.check_populations(cog, dep, str(d.file("cog_communes")))
    polygons = polygons_source.departement_polygons(dep, d)
    chef_lieux = (
        territory.chef_lieu_points(dep, d, inputs.code_map)
        if inputs.datasfun is None
        else territory.chef_lieu_from_frame(inputs.datasfun, dep, inputs.code_map)
    )
    communes, _ = territory.communes_from_frames(
        cog,
        polygons,
        inputs.epci_members,
        departement=dep,
        codes=inputs.code_table,
        chef_lieux=chef_lieux,
    )
    epci = territory.epci_from_frames(communes, inputs.epci_table)
    outline = territory.departement_outline(communes)
    frames = {
        k: v
        for k, v in inputs.offer_frames.items()
        if k not in offer.LOCAL_SOURCES or offer.LOCAL_SOURCES[k] == dep
    }
    reasons = {
        k: v
        for k, v in inputs.offer_reasons.items()
        if k not in offer.LOCAL_SOURCES or offer.LOCAL_SOURCES[k] == dep
    }
    if not frames:
        raise DataFileError(
            f"no source of the existing offer is available for département {dep}.\n"
            + catalog.missing_files_message(
                [k for k in offer.SOURCE_ORDER if k not in offer.LOCAL_SOURCES], d
            )
        )
    if inputs.offer_index is None:  # inputs built by hand: parse the national keys once
        inputs.offer_index = offer.index_frames(
            inputs.offer_frames, cog_records=inputs.cog_records, code_map=inputs.code_map
        )
    places, offer_report = offer.places_from_frames(
        communes,
        offer.departement_frames(frames, inputs.offer_index, communes, settings=s),
        cog_records=inputs.cog_records,
        code_map=inputs.code_map,
        missing_reasons=reasons,
        file_names={k: v for k, v in inputs.offer_file_names.items() if k in frames},
        settings=s,
        in_file={k: len(v) for k, v in frames.items()},
        outline=outline.geometry.iloc[0],  # the same union of the same polygons, done once
    )
    need.need_weights(scenario.need_weights)
    communes, need_report = need.need_from_frames(
        communes, inputs.ifn, inputs.fibre, inputs.code_table, weights=scenario.need_weights
    )
    return communes, epci, outline, places, offer_report, need_report


# --------------------------------------------------------------------------------------
# Road extracts per département
# --------------------------------------------------------------------------------------
def osm_for_departement(osm: str | os.PathLike, dep: str) -> str:
    """The OSM extract of département ``dep``.

    ``osm`` is one extract for every département (a regional ``.osm.pbf``), a template
    with ``{dep}`` (``extracts/{dep}.osm.pbf``), or a folder holding one extract per
    département whose name starts with its code (``49.osm.pbf``, ``49-maine-et-loire.osm``).
    """
    text = str(osm)
    if "{dep}" in text:
        return text.format(dep=dep)
    path = Path(text)
    if not path.is_dir():
        return text
    found = sorted(
        p
        for p in path.iterdir()
        if re.match(rf"{re.escape(dep)}(?![0-9AB])", p.name)
        and (p.name.endswith(".osm.pbf") or p.name.endswith(".osm"))
    )
    if not found:
        raise DataFileError(
            f"{path}: no OSM extract for département {dep} (expected {dep}.osm.pbf or "
            f"{dep}-<nom>.osm in that folder); add it, or give one regional extract"
        )
    return str(found[0])


# --------------------------------------------------------------------------------------
# Tasks (one département each); module-level so that Dask pickles them by reference
# --------------------------------------------------------------------------------------
def _scenario_for(scenario: Scenario, dep: str, posts: int) -> Scenario:
    osm = scenario.osm_file
    return dataclasses.replace(
        scenario,
        departement=dep,
        posts=posts,
        osm_file=None if osm is None else osm_for_departement(osm, dep),
    )


def first_pass(dep: str, scenario: Scenario, inputs: NationalInputs) -> Prepared:
    """Everything of département ``dep`` that does not depend on its posts (task 1)."""
    sc = _scenario_for(scenario, dep, 0)
    area = ROAD_BUFFER_M if sc.travel == "road" else None
    with task_mode():
        return prepare(sc, base=_base(inputs, dep, sc), road_buffer_m=area)


def room(prepared: Prepared) -> tuple[float, int]:
    """Uncovered need of a département, and the most posts it can use."""
    u = prepared.units
    uncovered = float(u.loc[~u["covered_before"], "need"].sum())
    # more posts than uncovered units cannot cover more (and candidates bound it too)
    return uncovered, min(int((~u["covered_before"]).sum()), len(prepared.candidates))


def place(
    dep: str,
    posts: int,
    uncovered: float,
    prepared: Prepared,
    out_dir: str | None,
    with_pdf: bool = False,
) -> tuple[dict, gpd.GeoDataFrame]:
    """Plan département ``dep`` with ``posts`` posts (task 3), write its outputs into
    ``out_dir/<dep>/`` when given (``rapport.pdf`` only ``with_pdf``: WeasyPrint takes
    longer than the rest of the task); its row of the national table and its communes."""
    sc = dataclasses.replace(prepared.scenario, posts=int(posts))
    with task_mode():
        plan = run(sc, prepared=prepared)
        if out_dir is not None:
            write_outputs(plan, Path(out_dir) / dep, with_pdf=with_pdf)
        return _row(plan, uncovered), _communes(plan)


def _row(plan: Plan, uncovered: float) -> dict:
    sm = plan.summary()
    return {
        "departement": plan.scenario.departement,
        "communes": sm["communes"],
        "population": sm["population"],
        "places": sm["places"],
        "uncovered_need": round(uncovered, 1),
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


def _communes(plan: Plan) -> gpd.GeoDataFrame:
    c = plan.communes
    out = pd.DataFrame(index=c.index)
    for col in COMMUNE_COLUMNS[1:-1]:
        out[col] = c[col].to_numpy() if col in c.columns else np.nan
    out["departement"] = plan.scenario.departement
    out["new_posts"] = (
        plan.posts["insee"].value_counts().reindex(c.index).fillna(0).astype(int).to_numpy()
    )
    out["priority_rank"] = pd.to_numeric(out["priority_rank"]).astype(float)
    out = out.reset_index(names="insee")
    geo = gpd.GeoSeries(c.geometry.to_numpy(), crs=c.crs).to_crs(GEOGRAPHIC_CRS)
    return gpd.GeoDataFrame(out, geometry=geo.to_numpy(), crs=GEOGRAPHIC_CRS)


# --------------------------------------------------------------------------------------
# The national run
# --------------------------------------------------------------------------------------
@dataclass
class NationalResult:
    """Result of :func:`national`.

    Attributes
    ----------
    table : DataFrame
        One row per département planned (sorted by code): ``departement``, ``communes``,
        ``population``, ``places``, ``uncovered_need``, ``posts``, ``cost_eur``,
        ``pct_population_covered_before`` / ``_after``, ``pct_need_covered_before`` /
        ``_after``, ``priority_communes``, ``epci_without_project``, ``objective``, ``gap``.
    communes : GeoDataFrame
        Every commune of the départements planned (:data:`COMMUNE_COLUMNS`, EPSG:4326),
        sorted by ``insee``.
    failures : dict
        Département code → reason (exception type and message), for those that failed.
    workers : int
        Processes used (1 = in-process, without Dask).
    """

    table: pd.DataFrame
    communes: gpd.GeoDataFrame
    failures: dict[str, str] = field(default_factory=dict)
    workers: int = 1


def national(
    scenario: Scenario,
    *,
    total_posts: int,
    out_dir: str | os.PathLike | None = None,
    departements: list[str] | None = None,
    workers: int | None = 1,
    scheduler: str | None = None,
    inputs: NationalInputs | None = None,
    with_pdf: bool = False,
) -> NationalResult:
    """Plans for every département (decomposition), with a national budget of posts.

    Pass 1 measures, per département, the need-weighted population left uncovered at the
    threshold; ``total_posts`` are shared in proportion to it (:func:`allocate_posts`);
    pass 2 plans each département with its share and, when ``out_dir`` is given, writes
    its outputs into ``out_dir/<code>/``: into a temporary folder beside ``out_dir`` first,
    moved in together when every département is done (:func:`cnfs_geo.outputs.staged`;
    an interrupted run leaves the previous outputs as they were). Coverage is measured
    within each département (offer across a border is not counted).

    Parameters
    ----------
    scenario : Scenario
        Options of every département (its ``departement`` and ``posts`` are ignored). With
        ``travel="road"``, ``osm_file`` is one extract, a ``{dep}`` template or a folder
        (:func:`osm_for_departement`); each département's graph is built in its task and
        kept within :data:`ROAD_BUFFER_M` of it.
    total_posts : int
    out_dir : path, optional
    departements : list of str, optional
        Default: every département of the COG.
    workers : int or None
        1 (default): in this process, without Dask. N > 1: a local Dask cluster of N
        processes; None: as many as cores (1 → without Dask).
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``): its workers run the
        tasks and must see the data directory and the folder holding ``out_dir`` at the
        same paths.
    inputs : NationalInputs, optional
        Already read national files (default: :func:`read_inputs` of the scenario's data).
    with_pdf : bool
        Also write each département's ``rapport.pdf`` (default False: the PDF takes
        about as long as the rest of a département's task; the HTML report is always
        written).

    Returns
    -------
    NationalResult
        A département that fails is in ``failures`` (the others complete).
    """
    n = _dask.default_workers() if workers is None else int(workers)
    if workers is None and scheduler is None and n > 1 and not _dask.available():
        log.warning("national: Dask is not installed (pip install 'cnfs_geo[dask]'): serial run")
        n = 1
    on_dask = scheduler is not None or n > 1
    if on_dask:
        _dask.distributed()  # a clear message before any reading when Dask is missing
    connect = (
        _dask.open_client(workers=n, scheduler=scheduler)
        if on_dask
        else contextlib.nullcontext(None)
    )
    with connect as client:
        # the workers import the package while the national files are read here, rather
        # than when the scattered files reach them (the futures are held until the run
        # returns: a released future may be cancelled before it runs)
        _warming = [] if client is None else _dask.warm_up(client, __name__)
        if inputs is None:
            with _progress.stage("Lecture des fichiers nationaux"):
                inputs = read_inputs(scenario.data_dir)
        deps = list(departements or inputs.departements)
        # every département's files are written into one temporary folder beside out_dir
        # and moved in together at the end: an interrupted run leaves the previous
        # outputs intact
        staging = (
            contextlib.nullcontext(None) if out_dir is None else staged(Path(out_dir).resolve())
        )
        with staging as tmp:
            out = None if tmp is None else str(tmp)
            if client is None:
                return _serial(scenario, inputs, deps, total_posts, out, with_pdf)
            result = _on_dask(client, scenario, inputs, deps, total_posts, out, with_pdf)
            result.workers = len(client.scheduler_info().get("workers", {})) or n
            return result


def _share(
    deps: list[str], figures: Mapping[str, tuple[float, int]], total: int
) -> tuple[pd.Series, pd.Series]:
    uncovered = pd.Series({d: figures[d][0] for d in deps}, dtype=float)
    rooms = pd.Series({d: figures[d][1] for d in deps}, dtype=int)
    shares = allocate_posts(uncovered, total, cap=rooms)
    if int(shares.sum()) < total:
        log.warning(
            "national: only %d of %d posts are useful (every uncovered unit gets "
            "one); the rest is not allocated",
            int(shares.sum()),
            total,
        )
    return shares, uncovered


def _serial(
    scenario: Scenario,
    inputs: NationalInputs,
    deps: list[str],
    total: int,
    out: str | None,
    with_pdf: bool,
) -> NationalResult:
    failures: dict[str, str] = {}
    prepared: dict[str, Prepared] = {}
    figures: dict[str, tuple[float, int]] = {}
    for dep in _progress.bar(deps, desc="Départements (1re passe)", unit="dép."):
        try:
            prepared[dep] = first_pass(dep, scenario, inputs)
            figures[dep] = room(prepared[dep])
        except Exception as exc:  # one département failing must not stop the others
            failures[dep] = _failed(dep, exc)
    ok = [d for d in deps if d in figures]
    shares, uncovered = _share(ok, figures, total)
    results = {}
    for dep in _progress.bar(ok, desc="Départements (placement)", unit="dép."):
        try:
            results[dep] = place(
                dep, int(shares[dep]), float(uncovered[dep]), prepared.pop(dep), out, with_pdf
            )
        except Exception as exc:
            failures[dep] = _failed(dep, exc)
    return _result(results, failures, 1)


def _failed(dep: str, exc: BaseException) -> str:
    reason = _dask.TaskFailure(dep, exc).reason
    log.warning("national: département %s failed: %s", dep, reason)
    return reason


def _on_dask(
    client: Any,
    scenario: Scenario,
    inputs: NationalInputs,
    deps: list[str],
    total: int,
    out: str | None,
    with_pdf: bool,
) -> NationalResult:
    shared = client.scatter(inputs, broadcast=True, hash=False)
    # the largest départements first (most communes): the last tasks to finish are short
    # ones, so the workers end together (results do not depend on the order)
    size = inputs.cog.loc[inputs.cog["type"] == "commune-actuelle", "departement"].value_counts()
    largest_first = sorted(deps, key=lambda d: (-int(size.get(d, 0)), d))
    prepared, failed = _dask.run_tasks(
        client,
        first_pass,
        largest_first,
        scenario,
        shared,
        desc="Départements (1re passe)",
        prefix="pass1",
    )
    ok = [d for d in deps if d in prepared]
    room_futures = [client.submit(room, prepared[d], key=f"room-{d}", pure=False) for d in ok]
    figures = dict(zip(ok, client.gather(room_futures), strict=True))
    del room_futures
    alloc = client.submit(_share, ok, figures, total, key="allocation", pure=False)
    shares, uncovered = alloc.result()
    placed, failed2 = _dask.run_tasks(
        client,
        place,
        [d for d in largest_first if d in prepared],
        desc="Départements (placement)",
        prefix="place",
        extra={
            d: {
                "posts": int(shares[d]),
                "uncovered": float(uncovered[d]),
                "prepared": prepared[d],
                "out_dir": out,
                "with_pdf": with_pdf,
            }
            for d in ok
        },
    )
    del prepared
    results = dict(zip(placed, client.gather(list(placed.values())), strict=True))
    failures = {d: f.reason for d, f in {**failed, **failed2}.items()}
    for dep, reason in failures.items():
        log.warning("national: département %s failed: %s", dep, reason)
    return _result(results, failures, 0)


def _result(results: dict, failures: dict[str, str], workers: int) -> NationalResult:
    deps = sorted(results)
    rows = [results[d][0] for d in deps]
    table = pd.DataFrame(rows, columns=None if rows else ["departement"])
    table = table.sort_values("departement", kind="stable").reset_index(drop=True)
    frames = [results[d][1] for d in deps]
    communes = (
        gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=GEOGRAPHIC_CRS)
        .sort_values("insee", kind="stable")
        .reset_index(drop=True)
        if frames
        else gpd.GeoDataFrame(columns=list(COMMUNE_COLUMNS), geometry=[], crs=GEOGRAPHIC_CRS)
    )
    return NationalResult(
        table=table, communes=communes, failures=dict(sorted(failures.items())), workers=workers
    )


def write_national(result: NationalResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``synthese_nationale.csv`` and ``communes_france.parquet`` (GeoParquet, one row
    per commune, EPSG:4326) into ``out_dir``, atomically; their paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"table": out / "synthese_nationale.csv", "geoparquet": out / "communes_france.parquet"}
    _atomic(paths["table"], lambda p: result.table.to_csv(p, index=False, lineterminator="\n"))
    communes = _plain_strings(result.communes)
    _atomic(paths["geoparquet"], lambda p: communes.to_parquet(p, index=False))
    return paths


def _plain_strings(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` with its text columns written as Arrow ``string`` whatever pandas' string
    storage (Arrow-backed columns would be written ``large_string``): the same GeoParquet
    from the same plans."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.StringDtype):
            out[col] = out[col].astype(pd.StringDtype("python", na_value=np.nan))
    return out


def _atomic(path: Path, write: Callable[[str], None]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
