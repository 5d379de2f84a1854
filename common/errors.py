"""The one error type that the command line turns into a clear message and exit status 2."""
from __future__ import annotations


class InputError(Exception):
    """Input the toolkit cannot use: names the file, and where known the row and column.

    ``row`` is the 1-based data row (the header is not counted).
    """

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | None = None):
        self.file, self.row, self.column, self.reason = file, row, column, message
        where = [str(file)] if file is not None else []
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
