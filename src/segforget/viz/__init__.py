"""Figures of the analysis (matplotlib, PNG) and the self-contained HTML report.

:mod:`segforget.viz.figures` draws; :mod:`segforget.viz.report` writes the report
(:func:`write_report`). matplotlib is imported only when a figure is drawn.
"""

from segforget.viz.report import write_report

__all__ = ["write_report"]
