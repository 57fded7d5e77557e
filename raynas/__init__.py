"""raynas: neural architecture search for medical image segmentation on Ray Tune.

The layers import only downwards (see DESIGN.md): ``cli -> pipeline -> tune/tracking -> engine ->
spaces/nets -> data -> config``. ``spaces``, ``nets``, ``engine`` and ``data`` import neither ray
nor mlflow.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
