"""Models: backbones (registered by family in ``BACKBONES``), the re-ID model, the classifier (image and point-cloud
tasks), losses.

Importing this package imports every backbone module, which registers itself; the full re-ID model of a
method is built by ``bireid.factory.create_model`` (also ``bireid.create_model``).
"""

from . import backbones, detector  # noqa: F401  (register the built-in backbones)
from .classifier import Classifier
from .registry import BACKBONES, create_backbone, list_backbones, register_backbone
from .reid_model import ReIDModel

__all__ = ["BACKBONES", "Classifier", "ReIDModel", "create_backbone", "list_backbones", "register_backbone"]
