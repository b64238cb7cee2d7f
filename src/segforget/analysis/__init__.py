"""What the learning dynamics say: forgetting at class boundaries, margins, timing, regions.

Each analysis is an accumulator over chunks of whole sections (``update`` then ``result``,
plain data out) plus a function over whole numpy arrays; :func:`analyze_run` runs them all on a
run directory, section-chunk by section-chunk, and writes ``RUN/analysis``.
"""

from segforget.analysis.active_learning import (
    STRATEGIES,
    fit_gaussian_mixture,
    gaussian_switch_sampling,
    rank_sections,
    select_from_run,
    simulate_active_learning,
)
from segforget.analysis.boundary import (
    NEAR_BOUNDARY_PX,
    BoundaryAccumulator,
    boundary_analysis,
    boundary_distance,
    boundary_mask,
)
from segforget.analysis.data_map import DataMapAccumulator, data_map
from segforget.analysis.label_issues import (
    ISSUE_METHODS,
    average_precision,
    display_issues,
    label_issue_scores,
    label_issues_from_run,
    section_issue_scores,
)
from segforget.analysis.margin import MarginSampler, binned_curve, margin_analysis, spearman
from segforget.analysis.overview import (
    OverviewAccumulator,
    choose_frequent_threshold,
    forgetting_overview,
)
from segforget.analysis.regions import REGION_FIELDS, RegionAccumulator, find_regions
from segforget.analysis.run import RunReader, analyze_run
from segforget.analysis.test_dynamics import (
    SwitchErrorAccumulator,
    auroc,
    auroc_from_histograms,
)
from segforget.analysis.thickness import ThicknessAccumulator, body_thickness, thickness_findings
from segforget.analysis.timing import TIMING_CATEGORIES, TimingAccumulator, classify_timing
from segforget.analysis.volume import VolumeAccumulator, views_to_volume

__all__ = [
    "ThicknessAccumulator",
    "body_thickness",
    "thickness_findings",
    "ISSUE_METHODS",
    "STRATEGIES",
    "average_precision",
    "display_issues",
    "fit_gaussian_mixture",
    "gaussian_switch_sampling",
    "label_issue_scores",
    "label_issues_from_run",
    "rank_sections",
    "section_issue_scores",
    "select_from_run",
    "simulate_active_learning",
    "NEAR_BOUNDARY_PX",
    "REGION_FIELDS",
    "TIMING_CATEGORIES",
    "BoundaryAccumulator",
    "DataMapAccumulator",
    "MarginSampler",
    "OverviewAccumulator",
    "RegionAccumulator",
    "SwitchErrorAccumulator",
    "TimingAccumulator",
    "VolumeAccumulator",
    "RunReader",
    "analyze_run",
    "auroc",
    "auroc_from_histograms",
    "binned_curve",
    "boundary_analysis",
    "boundary_distance",
    "boundary_mask",
    "choose_frequent_threshold",
    "classify_timing",
    "data_map",
    "find_regions",
    "forgetting_overview",
    "margin_analysis",
    "spearman",
    "views_to_volume",
]
