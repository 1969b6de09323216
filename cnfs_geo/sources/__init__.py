"""Readers: one module per dataset and file format.

Each reader takes a path (or a :class:`cnfs_geo.catalog.DataDir`), checks the file's
structure, and returns a frame that meets the column contract documented in its
docstring. Readers do not transform (no joins with other datasets, no coverage
logic): the stages (:mod:`cnfs_geo.territory`, :mod:`cnfs_geo.offer`,
:mod:`cnfs_geo.need`, :mod:`cnfs_geo.demand`) take frames.
"""
