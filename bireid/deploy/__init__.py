"""Deployment: torch -> ``.bnn`` export, ONNX export, feature extraction and gallery search.

``export_bnn`` / ``export_onnx`` need torch (import them from ``bireid.deploy.export`` /
``bireid.deploy.onnx_export``); ``FeatureExtractor`` and the gallery tools use the torch-free runtime only.
Images are read by :mod:`bireid.images` (shared with training and evaluation).
"""

from ..images import ImageError, list_images, load_image
from .extractor import BadImagesError, FeatureExtractor
from .gallery import GalleryIndex, default_cache_dir, draw_ranking, market_pid

__all__ = ["BadImagesError", "FeatureExtractor", "GalleryIndex", "ImageError", "default_cache_dir", "draw_ranking",
           "list_images", "load_image", "market_pid"]
