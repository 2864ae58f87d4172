"""Detection data: the Pascal VOC and COCO parsers (flags, class filter, errors naming file and field) and the
synthetic pedestrian scenes (deterministic, read back through the COCO parser)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from detection_fixtures import coco_doc, voc_xml, write_coco, write_voc

from bireid.data.datasets.base import DatasetError
from bireid.data.detection import DETECTION_DATASETS, parse_coco, parse_voc_xml


def build_scenes_for_tests(root, seed=0):
    return DETECTION_DATASETS.get("synthetic").build(root, num_train=3, num_test=2, seed=seed, height=64, width=64)


def test_voc_parser_keeps_people_marks_difficult_and_converts_to_continuous_pixels(tmp_path):
    data = DETECTION_DATASETS.get("voc").build(write_voc(tmp_path / "voc"))
    assert [len(s.boxes) for s in data.train] == [1, 2] and len(data.test) == 1
    a, b = data.train
    np.testing.assert_array_equal(a.boxes, [[10, 5, 30, 40]])  # xmin 11 (1-based) -> 10; the dog is dropped
    assert b.ignore.tolist() == [True, False]  # "Person" matches case-insensitively; difficult -> ignored
    assert a.path.endswith("JPEGImages/a.jpg") and (a.width, a.height) == (64, 48)
    assert len(data.test[0].boxes) == 0  # an image without people stays, as a negative


@pytest.mark.parametrize("xml,field", [
    (voc_xml("a.jpg", 64, 48, [("person", 0, ("x", 1, 2, 3))]), "object[0]/bndbox/xmin"),
    (voc_xml("a.jpg", 64, 48, [("person", 2, (1, 1, 2, 3))]), "object[0]/difficult"),
    (voc_xml("a.jpg", 64, 48, [("person", 0, (5, 1, 2, 3))]), "object[0]/bndbox"),
    ("<annotation><filename>a.jpg</filename></annotation>", "size"),
    ("<annotation><size><width>3</width><height>3</height></size></annotation>", "filename"),
    ("<annotation>", "not a readable XML file"),
])
def test_voc_errors_name_the_file_and_the_field(tmp_path, xml, field):
    p = tmp_path / "bad.xml"
    p.write_text(xml)
    with pytest.raises(DatasetError) as e:
        parse_voc_xml(p, tmp_path)
    assert str(p) in str(e.value) and field in str(e.value) and "\n" not in str(e.value)


def test_voc_missing_split_list_is_named(tmp_path):
    root = write_voc(tmp_path / "voc")
    (root / "ImageSets" / "Main" / "test.txt").unlink()
    with pytest.raises(DatasetError, match="ImageSets/Main"):
        DETECTION_DATASETS.get("voc").build(root)


def test_coco_parser_filters_person_and_ignores_crowd(tmp_path):
    data = DETECTION_DATASETS.get("coco").build(write_coco(tmp_path / "c"))
    x, y = data.test
    np.testing.assert_array_equal(x.boxes, [[10, 5, 30, 35], [40, 0, 50, 10]])  # [x, y, w, h] -> xyxy
    assert x.ignore.tolist() == [False, True] and x.image_id == 7
    assert len(y.boxes) == 0  # the car is not a person
    assert x.path == str(tmp_path / "c" / "images" / "x.jpg")


@pytest.mark.parametrize("edit,field", [
    (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), "annotations[0].bbox"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, -3, 4]), "annotations[0].bbox"),
    (lambda d: d["annotations"][0].update(iscrowd=2), "annotations[0].iscrowd"),
    (lambda d: d["annotations"][0].update(image_id=99), "annotations[0].image_id"),
    (lambda d: d["images"][1].update(width=0), "images[1].width"),
    (lambda d: d["images"][1].pop("file_name"), "images[1].file_name"),
    (lambda d: d["categories"].pop(0), "categories"),
    (lambda d: d.pop("annotations"), "annotations"),
])
def test_coco_errors_name_the_file_and_the_field(tmp_path, edit, field):
    doc = coco_doc()
    edit(doc)
    p = tmp_path / "ann.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(DatasetError) as e:
        parse_coco(p)
    assert str(e.value).startswith(f"{p}: {field}") and "\n" not in str(e.value)


def test_synthetic_scenes_are_deterministic_and_go_through_the_coco_parser(tmp_path):
    a = build_scenes_for_tests(tmp_path / "a")
    b = build_scenes_for_tests(tmp_path / "b")
    assert len(a.train) == 3 and len(a.test) == 2
    for sa, sb in zip(a.train + a.test, b.train + b.test):
        np.testing.assert_array_equal(sa.boxes, sb.boxes)
        assert open(sa.path, "rb").read() == open(sb.path, "rb").read()
    doc = json.loads((tmp_path / "a" / "train.json").read_text())
    assert doc["categories"] == [{"id": 1, "name": "person"}]
    boxes = np.concatenate([s.boxes for s in a.train + a.test])
    assert len(boxes) >= 5  # several people per scene
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 64).all() and (boxes[:, 3] <= 64).all()
    heights = boxes[:, 3] - boxes[:, 1]
    assert heights.max() > 1.8 * heights.min()  # varied scales
    c = build_scenes_for_tests(tmp_path / "c", seed=1)
    assert any(not np.array_equal(x.boxes, y.boxes) for x, y in zip(a.train, c.train))


def test_synthetic_scenes_occlude_and_mark_hidden_people(tmp_path):
    from bireid.data.detection import render_scene
    from bireid.data.synth import resolve_knobs

    k = resolve_knobs(difficulty=1.0)
    flags = np.concatenate([render_scene(0, 0, i, 64, 64, 8, k)[2] for i in range(12)])
    assert flags.any() and not flags.all()  # some people are mostly hidden (ignored), most are not
