"""Readers: one module per dataset and file format.

Each reader takes a path (or a :class:`cnfs_geo.catalog.DataDir`), checks the file's
structure, and returns a frame that meets the column contract documented in its
docstring (checked with :mod:`cnfs_geo._validate`). Readers do not transform (no joins
with other datasets, no coverage logic): the stages (:mod:`cnfs_geo.territory`,
:mod:`cnfs_geo.offer`, :mod:`cnfs_geo.need`, :mod:`cnfs_geo.demand`) take frames.

Territory, need and demand: :mod:`.cog` (COG communes, re-created communes),
:mod:`.epci`, :mod:`.polygons` (COG 2018 commune polygons: per-département files and the
national archive), :mod:`.datasfun` (chef-lieu points), :mod:`.ifn`, :mod:`.arcep`
(fibre), :mod:`.iris` (MedNum IRIS).
"""

from ._io import one_read_per_file

__all__ = ["one_read_per_file"]
