"""Column contracts of the offer readers: reading a table, dropping contacts, checking columns.

Every offer reader (France Services, lieux de médiation, CNFS, Aidants Connect, CONUMM,
data·inclusion) describes its file with one :class:`Contract` and checks its frame with
:meth:`Contract.check`, the one place where required columns are enforced; the offer stage
calls the same check on frames given by a caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import _fr, _journal, catalog
from .._errors import DataFileError, FileFormatError, MissingColumnError, ValidationError
from ._io import RESTORE, load_json, read_csv_text

# Contact fields dropped at ingest (published institutional contacts or advisors' names,
# e-mails and phones: the tool needs none of them).
CONTACT_FIELDS = frozenset(
    {
        "Téléphone",
        "Courriel",
        "NUM_TEL",
        "MAIL_STRUC",
        "TELEPHONE",
        "MAIL",
        "mail",
        "telephone",
        "courriel",
        "aidants",
    }
)


@dataclass(frozen=True)
class Contract:
    """Structure of one offer source file and of the raw frame its reader returns.

    Attributes
    ----------
    key : str
        Source key of :data:`cnfs_geo.catalog.SOURCES` (``"france_services"``…).
    required : tuple of str
        Columns the frame must have (the file may have more; they are kept).
    expected_format : str
        One-line description of the file, quoted in error messages.
    """

    key: str
    required: tuple[str, ...]
    expected_format: str

    def check(self, df: pd.DataFrame, source: str) -> pd.DataFrame:
        """Check ``df`` against the contract; return it without contact fields.

        Parameters
        ----------
        df : DataFrame
            Raw frame of the source (one row per record).
        source : str
            What is checked, for the error (a file path, ``"frames['cnfs_permanences']"``).

        Raises
        ------
        ValidationError
            ``df`` is not a DataFrame or lacks required columns; the message names
            ``source``, the missing columns and the expected format.
        """
        if not isinstance(df, pd.DataFrame):
            raise ValidationError(
                source,
                [
                    f"expected a pandas DataFrame (source {self.key!r}), got {type(df).__name__}; "
                    f"expected format: {self.expected_format}"
                ],
            )
        df = drop_contacts(df)
        missing = [c for c in self.required if c not in df.columns]
        if missing:
            raise MissingColumnError(
                source,
                [
                    f"{_fr.plural(len(missing), 'colonne absente', 'colonnes absentes')} : "
                    f"{missing} (source {self.key!r}) ; format attendu : "
                    f"{self.expected_format}, avec au moins les colonnes {list(self.required)}",
                    "correction : vérifier que c'est le bon fichier et le nom de ses colonnes "
                    "(ou le restaurer depuis sa source)",
                ],
            )
        return df

    def unreadable(self, path: Path, exc: Exception) -> DataFileError:
        """The error for a file of this source that cannot be parsed."""
        src = catalog.SOURCES[self.key]
        return DataFileError(
            f"{path}: cannot be read ({exc}). Expected format: "
            f"{self.expected_format}. Fix: restore the file from "
            f"{src.url or src.producer}"
        )


def drop_contacts(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` without the columns of :data:`CONTACT_FIELDS` (unchanged if it has none)."""
    contacts = [c for c in df.columns if c in CONTACT_FIELDS]
    return df.drop(columns=contacts) if contacts else df


def read_csv_strings(path: Path, contract: Contract) -> pd.DataFrame:
    """A CSV file (comma, UTF-8) as strings (blank cells ``""``), contacts dropped, checked.

    Returns a frame with a RangeIndex, one row per line of the file, in file order.
    """
    path = Path(path)
    df = read_csv_text(path)
    _journal.read_count(contract.key, path, len(df))
    return contract.check(df, str(path)).reset_index(drop=True)


def read_json_records(path: Path, contract: Contract) -> pd.DataFrame:
    """A JSON list of objects as a frame (values as parsed), contacts dropped, checked.

    Returns a frame with a RangeIndex, one row per object of the list, in file order;
    a key absent from an object gives NaN in its column.
    """
    path = Path(path)
    data = load_json(path)
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise FileFormatError(
            str(path),
            [
                f"une liste JSON d'objets (enregistrements) est attendue, trouvé : "
                f"{type(data).__name__} ; format attendu : {contract.expected_format} ; "
                f"correction : {RESTORE}"
            ],
        )
    _journal.read_count(contract.key, path, len(data))
    df = pd.DataFrame.from_records(data)
    return contract.check(df, str(path)).reset_index(drop=True)
