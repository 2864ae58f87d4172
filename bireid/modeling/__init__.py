"""Models: backbones, the re-ID head, losses; the full re-ID model is built by ``bireid.factory.create_model``."""

from .registry import create_backbone, list_backbones, register_backbone

__all__ = ["create_backbone", "list_backbones", "register_backbone"]
