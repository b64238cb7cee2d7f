"""segforget: explain and improve segmentation networks through per-pixel learning dynamics.

The top-level namespace is small on purpose; the subpackages hold the API:

- :mod:`segforget.dynamics`  the per-pixel forgetting tracker and its statistics store
- :mod:`segforget.data`      synthetic F3-like surveys, loaders and datasets with pixel identity
- :mod:`segforget.metrics`   the F3 benchmark's confusion-matrix metrics
- :mod:`segforget.train`     training with tracking
- :mod:`segforget.analysis`  what the dynamics say; :mod:`segforget.viz` figures and report
- :mod:`segforget.augment`   forgetting-aware training
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
