"""Whole numbers read from text on the wire (headers, query parameters, URLs, command-line
options): ASCII digits only, and bounded. Plain Python, for the protocol and the product."""

import re

__all__ = ["ascii_number"]

_ASCII_DIGITS = re.compile(r"[0-9]+")


def ascii_number(text: str, max_digits: int = 18) -> int | None:
    """`text` as a whole number when it is ASCII digits only (at most `max_digits`), else None.
    int() alone takes other scripts' digits ('١٠' is 10) and str.isdigit() is true of '¹',
    which int() refuses; the bound keeps the number within a database integer.

    >>> ascii_number("42"), ascii_number("\u0664\u0662"), ascii_number("1" * 19)
    (42, None, None)
    """
    if len(text) > max_digits or not _ASCII_DIGITS.fullmatch(text):
        return None
    return int(text)
