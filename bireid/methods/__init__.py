"""Binarization methods: how each builds a backbone and its auxiliary losses.

``get_method(name)`` returns a :class:`Method` with ``build_backbone(arch, last_stride, **kw)`` and
``build_aux(model, cfg, num_classes) -> list[AuxLoss]``; ``list_methods()`` names them all. See
``bireid.methods.builtin`` for what distinguishes real, xnor, bireal, reactnet and bireid.
"""

from ..nn.state import InitReport, init_from_state
from . import builtin  # noqa: F401  (registers the built-in methods)
from .base import BINARY_ONLY_OPTIONS, Method, get_method, list_methods, register_method
from .distill import DistillationLoss

__all__ = ["BINARY_ONLY_OPTIONS", "DistillationLoss", "InitReport", "Method", "get_method", "init_from_state",
           "list_methods", "register_method"]
