"""Models: backbones, the re-ID head, losses, and the ``create_model`` entry point."""

from .registry import create_backbone, create_model, list_backbones, register_backbone

__all__ = ["create_backbone", "create_model", "list_backbones", "register_backbone"]
