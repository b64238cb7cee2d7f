"""Per-pixel learning dynamics of segmentation networks: the tracker and its statistics.

- :class:`ForgettingTracker` records, per pixel of a pixel space, forgetting / learning / switch
  events (and optionally confidence, variability, AUM and the full correctness history).
- :class:`ForgettingStats` holds the derived per-pixel numpy arrays and saves/loads them as a
  zarr store; :class:`StoreChecksums` verifies a store while it is read range by range.
"""

from segforget.dynamics._kernel import MAX_OBSERVATIONS
from segforget.dynamics._stats import STORE_FORMAT_VERSION, ForgettingStats, StoreChecksums
from segforget.dynamics._tracker import STATE_VERSION, ForgettingTracker

__all__ = [
    "ForgettingTracker",
    "ForgettingStats",
    "StoreChecksums",
    "MAX_OBSERVATIONS",
    "STORE_FORMAT_VERSION",
    "STATE_VERSION",
]
