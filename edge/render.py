"""Text a person reads on a terminal: confidence bars, the level meter, paths cut to a column's width.

Shared by `classify`'s table (edge/cli/classify.py) and `listen`'s live line (edge/listen.py); plain
strings in, plain strings out, so it imports nothing.
"""
from __future__ import annotations

from pathlib import Path

BAR_WIDTH = 20
METER_WIDTH = 10
METER_FLOOR_DB = -60.0  # the meter's empty end; 0 dBFS fills it


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    filled = int(round(max(0.0, min(1.0, fraction)) * width))
    return "█" * filled + "·" * (width - filled)


def meter(level_db: float, width: int = METER_WIDTH) -> str:
    return bar((level_db - METER_FLOOR_DB) / -METER_FLOOR_DB, width)


def short_path(path: Path, width: int) -> str:
    """The path, or its end after "…" when it is wider than `width`."""
    text = str(path)
    return text if len(text) <= width else "…" + text[-(width - 1):]
