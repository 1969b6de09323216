"""La MedNum 2020 IRIS file (indice de fragilité numérique per IRIS, INSEE 2016 geography):
one ``;``-separated file per département without header row, plus the header file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import shape

from .. import catalog
from .._errors import DataFileError, MissingColumnError, ValidationError
from ..settings import GEOGRAPHIC_CRS
from ._io import read_csv_text

log = logging.getLogger(__name__)

# Columns of the MedNum IRIS file that cnfs_geo reads (header file name → our name).
# The embedded bundle keeps only these (the other columns are left empty).
IRIS_COLUMNS = {
    "Code Iris": "iris",
    "COM": "com",
    "Libiris": "nom",
    "Libcom": "commune_nom",
    "Type Iris": "type_iris",
    "P16 Pop": "p16_pop",
    "SCORE GLOBAL departement 1": "score_mednum",
    "Part des personnes âgées de 65 ans / +": "part_65_plus",
    "Part des non ou peu diplômés dans la population non scolarisée de 15 ans ou plus": (
        "part_peu_diplomes"
    ),
    "Geo Shape": "geometry",
}
# Identification columns also kept in the bundle (read by people, not by the code).
IRIS_KEPT_EXTRA = ["Iris", "Insee Com", "Nom Com", "Nom Iris", "Insee Dep"]

IRIS_RELPATH = "socio/mednum_indice-fragilite-numerique_iris_dep{dep}_2020.csv"
IRIS_UPSTREAM = (
    "https://raw.githubusercontent.com/team-48/inr-indice-fragilite/"
    "4d86e8dedee8d0f07461d484f2240addc4431afd/infrastructure/cities/data/"
    "dept_list/{dep}.csv"
)


def iris_path(departement: str, data_dir: catalog.DataDir) -> Path:
    """Path of the IRIS file of a département in ``data_dir``; DataFileError (naming the
    upstream address) when it is missing."""
    if departement == catalog.BUNDLE_DEPARTEMENT:
        return data_dir.file("mednum_iris_49")
    path = data_dir.path / IRIS_RELPATH.format(dep=departement)
    if not path.is_file():
        raise DataFileError(
            f"missing IRIS file for département {departement}: {path}\n"
            f"  La MedNum 2020 IRIS file, one per département; download "
            f"{IRIS_UPSTREAM.format(dep=departement)} and save it as {path} (with "
            f"{catalog.SOURCES['mednum_iris_headers'].relpath} beside it), or use "
            'unit="commune".'
        )
    return path


def read_iris_headers(path: Path) -> list[str]:
    """Column names of the IRIS files (the ``;``-separated header file, 152 names).

    Raises :class:`~cnfs_geo._errors.MissingColumnError` naming every column of
    :data:`IRIS_COLUMNS` it lacks.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(
            f"{path}: cannot be read ({exc}); restore it from its source (data/README.md)"
        ) from exc
    names = text.rstrip("\r\n").split(";")
    missing = [c for c in IRIS_COLUMNS if c not in names]
    if missing:
        raise MissingColumnError(
            str(path),
            [f"nom de colonne {c!r} absent" for c in missing]
            + [
                "attendu : la ligne d'en-tête des fichiers IRIS de La MedNum (152 noms "
                "séparés par « ; ») ; est-ce le bon fichier ?"
            ],
        )
    return names


def read_iris(path: Path, names: list[str]) -> gpd.GeoDataFrame:
    """IRIS of one MedNum 2020 file.

    Parameters
    ----------
    path : path
        ``socio/mednum_indice-fragilite-numerique_iris_dep<code>_2020.csv`` (no header
        row, ``;``-separated).
    names : list of str
        Its column names (:func:`read_iris_headers`).

    Returns
    -------
    GeoDataFrame
        Index ``iris`` (9-character IRIS code, sorted). Columns ``com`` (commune code of
        the file's vintage), ``nom`` (IRIS name), ``commune_nom``, ``type_iris``,
        ``p16_pop`` (float, population 2016), ``score_mednum`` (MedNum global score
        relative to the département, 100 = mean, NaN when blank), ``part_65_plus``,
        ``part_peu_diplomes`` (rates 0–1), ``geometry`` (IRIS polygon from ``Geo Shape``
        as read, not repaired), CRS EPSG:4326. ``attrs["source"]`` is the path.

    Raises
    ------
    ValidationError
        Wrong number of columns, duplicate IRIS code, code not starting with its
        commune code, population not a number ≥ 0, unreadable ``Geo Shape``
        (every problem listed, naming the IRIS code).
    """
    path = Path(path)
    df = read_csv_text(path, sep=";", header=None, n_fields=len(names))
    if df.shape[1] != len(names):
        raise ValidationError(
            str(path),
            [
                f"{df.shape[1]} columns but the header file names {len(names)}; the IRIS file has "
                "no header row and must have exactly the columns of the header file"
            ],
        )
    df.columns = names
    df = df[list(IRIS_COLUMNS)].rename(columns=IRIS_COLUMNS)
    df["iris"] = df["iris"].str.strip()
    df["com"] = df["com"].str.strip()
    problems: list[str] = []
    dup = sorted(set(df.loc[df["iris"].duplicated(), "iris"]))
    problems += [f"IRIS {c}: appears more than once" for c in dup]
    bad_code = df[(df["iris"].str.len() != 9) | (df["iris"].str[:5] != df["com"])]
    problems += [
        f"IRIS {r.iris!r}: not a 9-character code starting with its commune code COM={r.com!r}"
        for r in bad_code.itertuples()
    ]
    pop = pd.to_numeric(df["p16_pop"], errors="coerce")
    problems += [
        f"IRIS {c}: P16 Pop {v!r} is not a number ≥ 0"
        for c, v in zip(df.loc[~(pop >= 0), "iris"], df.loc[~(pop >= 0), "p16_pop"])
    ]
    geoms = []
    for code, text in zip(df["iris"], df["geometry"]):
        try:
            g = shape(json.loads(text))
            if g.geom_type not in ("Polygon", "MultiPolygon") or g.is_empty:
                raise ValueError(f"geometry type {g.geom_type}")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            problems.append(f"IRIS {code}: Geo Shape is not a GeoJSON polygon ({exc})")
            g = None
        geoms.append(g)
    if problems:
        raise ValidationError(
            str(path),
            problems + ["fix these rows or restore the file from its source (data/README.md)"],
        )
    df["p16_pop"] = pop
    for col in ("score_mednum", "part_65_plus", "part_peu_diplomes"):
        df[col] = pd.to_numeric(df[col].replace("", np.nan), errors="coerce")
    if df["score_mednum"].isna().any():
        log.info(
            "%s: %d IRIS without MedNum score (their commune's mean is used)",
            path.name,
            int(df["score_mednum"].isna().sum()),
        )
    out = gpd.GeoDataFrame(df.drop(columns="geometry"), geometry=geoms, crs=GEOGRAPHIC_CRS)
    out = out.set_index("iris").sort_index()
    out.attrs["source"] = str(path)
    return out
