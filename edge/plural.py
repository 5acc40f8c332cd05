"""Counts in what a user reads: `1 window`, `2 windows`, never `1 windows` or `window(s)`."""
from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and the noun in the number it takes (`plural` where adding an s is wrong)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
