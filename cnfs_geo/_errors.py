"""Exception types of cnfs_geo.

Every error raised for bad user input is a subclass of :class:`CnfsGeoError` and
says what is wrong, where (file, row, field or setting) and how to fix it. The
common cases have their own type, each also a :class:`ValueError` (as r5py's
``NoCrsError(ValueError, R5pyError)``) and a :class:`ValidationError`, so that
``except ValueError`` and ``except ValidationError`` keep catching them.
"""

from __future__ import annotations

from pathlib import Path


class CnfsGeoError(Exception):
    """Base class of every error cnfs_geo raises on purpose."""


class ValidationError(CnfsGeoError, ValueError):
    """One input has one or more problems; all of them are listed in the message.

    Parameters
    ----------
    source : str
        What was checked (a file path, a DataFrame name, a setting).
    problems : list of str
        One line per problem, each naming the row/field and the fix.
    """

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(f"{source} : {n} problème{'s' if n > 1 else ''}\n{lines}")


class MissingColumnError(ValidationError):
    """A frame or file lacks required columns (fields, properties); the message names them."""


class CrsError(ValidationError):
    """A frame has no CRS, or not the one expected (e.g. not projected in metres)."""


class UnknownCodeError(ValidationError):
    """An identifier (INSEE commune code, IRIS code…) is unknown to the reference table."""


class DataFileError(CnfsGeoError, FileNotFoundError):
    """A data file is missing or unreadable; the message says where it was looked for."""

    # Set only by ``catalog.fetch`` when downloads fail: the message of each failed
    # source key, and the files it did get (annotations only: no class attribute).
    failures: dict[str, str]
    fetched: dict[str, Path]


class UnknownDepartementError(UnknownCodeError):
    """A département code is not in the COG."""


class SettingsError(ValidationError):
    """An unknown setting key or an invalid setting value."""


class PlacementError(ValidationError):
    """A placement problem is ill-posed (p too large, no eligible host, infeasible quota…)."""


class FileFormatError(ValidationError):
    """A data file has the wrong structure: encoding, empty, truncated, wrong field count,
    duplicated key, value out of range, invalid geometry. ``source`` is the file path."""


class ArgumentError(ValidationError, TypeError):
    """A Python API argument of the wrong type (also a :class:`TypeError`)."""


class OutputDirError(CnfsGeoError, OSError):
    """The output folder cannot be used (a file, not creatable, not writable)."""


class InterruptedAfterWriting(KeyboardInterrupt):
    """Ctrl-C arrived while finished files were moved into place: the moves were completed
    first, so ``folder`` holds every new file, then the run stopped (a
    :class:`KeyboardInterrupt`)."""

    def __init__(self, folder: str) -> None:
        super().__init__(folder)
        self.folder = folder
