"""Person-detection data: the data-set record, the registry ``DETECTION_DATASETS`` and its parsers (Pascal VOC
XML folders, COCO JSON, the built-in synthetic pedestrian scenes); importing this package registers them."""

from . import coco, scenes, voc  # noqa: F401  (registration side effects)
from .base import DETECTION_DATASETS, PERSON, DetectionData, DetSample, register_detection_dataset
from .coco import parse_coco
from .scenes import ensure_scenes, generate_scenes, render_scene
from .voc import parse_voc_xml

__all__ = ["DETECTION_DATASETS", "PERSON", "DetSample", "DetectionData", "ensure_scenes", "generate_scenes",
           "parse_coco", "parse_voc_xml", "register_detection_dataset", "render_scene"]
