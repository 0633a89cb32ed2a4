"""CSV cells that a spreadsheet will not run as a formula (CSV injection, OWASP "CSV Injection").

Excel, LibreOffice and Google Sheets treat a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula,
and a leading tab or carriage return can hide such a character from a naive check. Those cells get a
leading apostrophe, which spreadsheets show as plain text. The one exception is a plain international phone
number (``+`` and digits only, as every phone column of Broadcaster holds), which no spreadsheet evaluates
to anything but the number itself and which people must be able to copy as is.
"""

from __future__ import annotations

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_PHONE = re.compile(r"\+[0-9]+")


def safe_cell(value: object) -> object:
    """`value` ready for `csv.writer`: formulas neutralised, datetimes in ISO 8601, None as empty."""
    if isinstance(value, str):
        if value.startswith(FORMULA_STARTS) and not PLAIN_PHONE.fullmatch(value):
            return "'" + value
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return "" if value is None else value
