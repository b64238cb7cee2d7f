"""How the report and the figures write numbers."""

from __future__ import annotations

__all__ = ["format_percent", "format_share"]


def format_percent(share: float) -> str:
    """A share (0..1) as a percentage that never shows a non-zero share as zero.

    One decimal from 0.1 % up, two decimals below it, ``< 0.01%`` below that (and 0 as
    ``0.0%``).

    Example:
        >>> format_percent(0.9653), format_percent(0.00042), format_percent(1e-7)
        ('96.5%', '0.04%', '< 0.01%')
    """
    percent = 100 * share
    if percent == 0 or abs(percent) >= 0.1:
        return f"{percent:.1f}%"
    if abs(percent) >= 0.01:
        return f"{percent:.2f}%"
    return "< 0.01%"


def format_share(share: float | None, total: int | None) -> str:
    """A share of ``total`` items with its count, e.g. ``0.04% (447)``; ``–`` when unknown.

    The count is ``round(share * total)``, exact when ``share`` was computed as count / total.
    """
    if share is None:
        return "–"
    if not total:
        return format_percent(share)
    return f"{format_percent(share)} ({round(share * total):,})"
