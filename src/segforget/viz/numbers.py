"""How the report and the figures write numbers."""

from __future__ import annotations

__all__ = ["format_percent", "format_share"]


def format_percent(share: float) -> str:
    """A share (0..1) as a percentage that never rounds a share to 0 % or 100 % it is not.

    One decimal, two within 0.1 % of either end, ``< 0.01%`` / ``> 99.99%`` closer than that
    (0 and 1 exactly as ``0.0%`` and ``100.0%``).

    Example:
        >>> format_percent(0.9653), format_percent(0.00042), format_percent(1e-7)
        ('96.5%', '0.04%', '< 0.01%')
        >>> format_percent(0.9996), format_percent(0.9999999)
        ('99.96%', '> 99.99%')
    """
    percent = 100 * share
    if percent in (0, 100) or 0.1 <= abs(percent) <= 99.9:
        return f"{percent:.1f}%"
    if 0.01 <= abs(percent) <= 99.99:
        return f"{percent:.2f}%"
    return "< 0.01%" if abs(percent) < 50 else "> 99.99%"


def format_share(share: float | None, total: int | None) -> str:
    """A share of ``total`` items with its count, e.g. ``0.04% (447)``; ``–`` when unknown.

    The count is ``round(share * total)``, exact when ``share`` was computed as count / total.
    """
    if share is None:
        return "–"
    if not total:
        return format_percent(share)
    return f"{format_percent(share)} ({round(share * total):,})"
