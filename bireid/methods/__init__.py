"""Binarization methods: how each builds a backbone and its auxiliary losses.

``get_method(name)`` returns a :class:`Method` record (``binary``, ``uses_teacher``, ``build_backbone(arch,
last_stride, **kw)``, ``options_from_config(cfg)``, ``build_aux(model, cfg, num_classes, teacher)``) from the
registry ``METHODS``; ``list_methods()`` names them all. Importing this package registers the built-in
methods (``bireid.methods.builtin``: real, xnor, bireal, reactnet, bireid).
"""

from ..nn.state import InitReport, init_from_state
from . import builtin  # noqa: F401  (registers the built-in methods)
from .base import BINARY_ONLY_OPTIONS, METHODS, Method, get_method, list_methods, register_method, teacher_methods
from .distill import DistillationLoss

__all__ = ["BINARY_ONLY_OPTIONS", "METHODS", "DistillationLoss", "InitReport", "Method", "get_method",
           "init_from_state", "list_methods", "register_method", "teacher_methods"]
