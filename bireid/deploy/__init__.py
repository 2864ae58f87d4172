"""Deployment: torch -> ``.bnn`` export, ONNX export, feature extraction and gallery search.

``export_bnn`` / ``export_onnx`` need torch (import them from ``bireid.deploy.export`` /
``bireid.deploy.onnx_export``); ``FeatureExtractor`` and the gallery tools use the torch-free runtime only.
"""

from .extractor import FeatureExtractor, ImageError, list_images, load_rgb
from .gallery import GalleryIndex, draw_ranking, market_pid

__all__ = ["FeatureExtractor", "GalleryIndex", "ImageError", "draw_ranking", "list_images", "load_rgb",
           "market_pid"]
