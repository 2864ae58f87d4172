"""Data-set parsers: layouts, community rules (junk, distractors, cameras, relabelling) and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from bireid.data import DatasetError, ReIDDataset, Sample, build_dataset, list_datasets, register_dataset
from bireid.data.datasets import base

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "reid"


def make_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(names):
        (folder / n).parent.mkdir(parents=True, exist_ok=True)
        fmt = "PNG" if n.lower().endswith(".png") else "JPEG"
        Image.new("RGB", (8, 16), (i * 20 % 256, 50, 100)).save(folder / n, fmt)


MARKET_TRAIN = ["0007_c3s1_000100_01.jpg", "0007_c4s1_000200_01.jpg", "0002_c1s1_000451_03.jpg",
                "0002_c2s1_000500_01.jpeg", "0005_c6s2_000300_02.png", "-1_c1s1_000001_00.jpg",
                "0000_c1s1_000002_00.jpg"]
MARKET_QUERY = ["0004_c1s1_000010_00.jpg", "0009_c5s1_000011_00.jpg", "0000_c2s1_000012_00.jpg",
                "-1_c3s1_000013_00.jpg"]
MARKET_GALLERY = ["0004_c2s1_000020_01.jpg", "0009_c6s1_000021_01.jpg", "0000_c3s1_000022_01.jpg",
                  "-1_c4s1_000023_01.jpg", "0004_c1s1_000024_02.JPG"]


def make_market(root: Path, train=MARKET_TRAIN, query=MARKET_QUERY, gallery=MARKET_GALLERY) -> Path:
    make_images(root / "bounding_box_train", train)
    make_images(root / "query", query)
    make_images(root / "bounding_box_test", gallery)
    (root / "bounding_box_train" / "Thumbs.db").write_text("not an image")  # ignored: not an image suffix
    return root


def by_name(samples: list[Sample]) -> dict[str, Sample]:
    return {Path(s.path).name: s for s in samples}


# ------------------------------------------------------------------------------------------------- market1501
def test_market_rules(tmp_path):
    ds = build_dataset("market1501", make_market(tmp_path / "m"))
    assert isinstance(ds, ReIDDataset) and ds.name == "market1501"
    train = by_name(ds.train)
    # junk (-1) and distractors (0) leave the training set; original pids 2, 5, 7 -> 0, 1, 2 (sorted order)
    assert sorted(train) == sorted(MARKET_TRAIN[:5])
    assert train["0002_c1s1_000451_03.jpg"] == Sample(str(tmp_path / "m/bounding_box_train/0002_c1s1_000451_03.jpg"),
                                                      0, 0)
    assert train["0005_c6s2_000300_02.png"].pid == 1 and train["0005_c6s2_000300_02.png"].camid == 5
    assert {train[n].pid for n in MARKET_TRAIN[:2]} == {2}
    assert train["0002_c2s1_000500_01.jpeg"].camid == 1
    assert ds.num_train_pids == 3 and ds.num_train_cams == 5
    # query keeps original pids; distractors and junk are dropped
    assert sorted((s.pid, s.camid) for s in ds.query) == [(4, 0), (9, 4)]
    # gallery keeps distractors (pid 0) but not junk; upper-case suffix accepted
    assert sorted((s.pid, s.camid) for s in ds.gallery) == [(0, 2), (4, 0), (4, 1), (9, 5)]


def test_market_release_parent_folder(tmp_path):
    make_market(tmp_path / "Market-1501-v15.09.15")
    ds = build_dataset("market1501", tmp_path)
    assert len(ds.train) == 5 and len(ds.gallery) == 4
    assert all("Market-1501-v15.09.15" in s.path for s in ds.train)


def test_market_missing_folder_is_named(tmp_path):
    root = make_market(tmp_path / "m")
    for p in (root / "query").iterdir():
        p.unlink()
    (root / "query").rmdir()
    with pytest.raises(DatasetError, match="missing folder") as e:
        build_dataset("market1501", root)
    assert str((root / "query").resolve()) in str(e.value)


def test_market_unparsable_name_is_named(tmp_path):
    root = make_market(tmp_path / "m", gallery=MARKET_GALLERY + ["holiday_photo.jpg"])
    with pytest.raises(DatasetError, match="holiday_photo.jpg") as e:
        build_dataset("market1501", root)
    assert str((root / "bounding_box_test" / "holiday_photo.jpg").resolve()) in str(e.value)


def test_market_empty_folder(tmp_path):
    root = make_market(tmp_path / "m", query=[])
    with pytest.raises(DatasetError, match="has no images") as e:
        build_dataset("market1501", root)
    assert str((root / "query").resolve()) in str(e.value)


def test_root_is_file_or_missing(tmp_path):
    f = tmp_path / "market.zip"
    f.write_bytes(b"PK")
    for name in ("market1501", "dukemtmc", "cuhk03", "msmt17", "mars"):
        with pytest.raises(DatasetError, match="is a file, expected a folder") as e:
            build_dataset(name, f)
        assert str(f.resolve()) in str(e.value)
    with pytest.raises(DatasetError, match="does not exist"):
        build_dataset("market1501", tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="no data set folder"):
        build_dataset("market1501", "")


def test_camera_out_of_range(tmp_path):
    root = make_market(tmp_path / "m", train=MARKET_TRAIN + ["0003_c7s1_000001_01.jpg"])
    with pytest.raises(DatasetError, match=r"camera 7 out of range 1\.\.6.*0003_c7s1_000001_01\.jpg"):
        build_dataset("market1501", root)
    root = make_market(tmp_path / "m0", train=MARKET_TRAIN + ["0003_c0s1_000001_01.jpg"])
    with pytest.raises(DatasetError, match="camera 0 out of range"):
        build_dataset("market1501", root)


def test_market_all_training_images_junk(tmp_path):
    root = make_market(tmp_path / "m", train=["-1_c1s1_000001_00.jpg", "0000_c1s1_000002_00.jpg"])
    with pytest.raises(DatasetError, match="no usable training images"):
        build_dataset("market1501", root)


# ------------------------------------------------------------------------------------------------ dukemtmc
def test_dukemtmc_eight_cameras(tmp_path):
    root = tmp_path / "DukeMTMC-reID"
    make_market(root, train=["0001_c8_f0046182.jpg", "0001_c1_f0046183.jpg", "0010_c5_f0000001.jpg"],
                query=["0005_c8_f0000002.jpg"], gallery=["0005_c2_f0000003.jpg", "0000_c7_f0000004.jpg"])
    ds = build_dataset("dukemtmc", tmp_path)  # parent holding the release folder
    assert sorted((s.pid, s.camid) for s in ds.train) == [(0, 0), (0, 7), (1, 4)]
    assert ds.query == [Sample(str(root / "query" / "0005_c8_f0000002.jpg"), 5, 7)]
    assert sorted(s.pid for s in ds.gallery) == [0, 5]
    make_images(root / "query", ["0006_c9_f0000005.jpg"])
    with pytest.raises(DatasetError, match=r"camera 9 out of range 1\.\.8"):
        build_dataset("dukemtmc", root)


# --------------------------------------------------------------------------------------------------- cuhk03
def make_cuhk03(root: Path, split: str, offset: int) -> None:
    base_ = root / split
    make_images(base_ / "bounding_box_train", [f"{offset + 3:04d}_c1_1.png", f"{offset + 3:04d}_c2_2.png",
                                               f"{offset + 1:04d}_c2_1.png"])
    make_images(base_ / "query", ["0100_c1_1.png"])
    make_images(base_ / "bounding_box_test", ["0100_c2_1.png", "0100_c2_2.png"])


def test_cuhk03_splits(tmp_path):
    make_cuhk03(tmp_path, "detected", 0)
    make_cuhk03(tmp_path, "labeled", 10)
    det = build_dataset("cuhk03", tmp_path)
    lab = build_dataset("cuhk03", tmp_path, split="labeled")
    assert all("/detected/" in s.path for s in det.train + det.query + det.gallery)
    assert all("/labeled/" in s.path for s in lab.train + lab.query + lab.gallery)
    assert sorted((s.pid, s.camid) for s in det.train) == [(0, 1), (1, 0), (1, 1)]
    assert det.query[0].pid == 100 and det.query[0].camid == 0
    with pytest.raises(DatasetError, match="split must be one of"):
        build_dataset("cuhk03", tmp_path, split="both")
    make_images(tmp_path / "labeled" / "query", ["0100_c3_1.png"])
    with pytest.raises(DatasetError, match=r"camera 3 out of range 1\.\.2"):
        build_dataset("cuhk03", tmp_path, split="labeled")


def test_cuhk03_missing_split_folder(tmp_path):
    make_cuhk03(tmp_path, "detected", 0)
    with pytest.raises(DatasetError, match="missing folder") as e:
        build_dataset("cuhk03", tmp_path, split="labeled")
    assert str((tmp_path / "labeled").resolve()) in str(e.value)


def test_cuhk03_np_parent(tmp_path):
    make_cuhk03(tmp_path / "cuhk03-np", "detected", 0)
    assert len(build_dataset("cuhk03", tmp_path).train) == 3


# --------------------------------------------------------------------------------------------------- msmt17
def make_msmt17(root: Path) -> Path:
    train = ["0000/0000_000_01_0303morning_0015_0.jpg", "0000/0000_001_05_0303morning_0016_0.jpg",
             "0003/0003_000_15_0303noon_0001_0.jpg"]
    val = ["0002/0002_000_02_0303morning_0020_0.jpg"]
    query = ["0010/0010_000_03_0303afternoon_0001_0.jpg"]
    gallery = ["0010/0010_001_04_0303afternoon_0002_0.jpg", "0011/0011_000_03_0303afternoon_0003_0.jpg"]
    make_images(root / "train", train + val)
    make_images(root / "test", query + gallery)
    (root / "list_train.txt").write_text("".join(f"{p} {int(p[:4])}\n" for p in train))
    (root / "list_val.txt").write_text("".join(f"{p} {int(p[:4])}\n" for p in val))
    (root / "list_query.txt").write_text("".join(f"{p} {int(p[:4])}\n" for p in query))
    (root / "list_gallery.txt").write_text("".join(f"{p} {int(p[:4])}\n" for p in gallery) + "\n")
    return root


def test_msmt17(tmp_path):
    root = make_msmt17(tmp_path / "MSMT17_V1")
    ds = build_dataset("msmt17", tmp_path)
    # train + val merged; pids 0, 2, 3 relabelled to 0, 1, 2; camera = third name field, 0-based
    assert sorted((Path(s.path).name[:4], s.pid, s.camid) for s in ds.train) == [
        ("0000", 0, 0), ("0000", 0, 4), ("0002", 1, 1), ("0003", 2, 14)]
    assert [(s.pid, s.camid) for s in ds.query] == [(10, 2)]
    assert sorted((s.pid, s.camid) for s in ds.gallery) == [(10, 3), (11, 2)]
    assert ds.query[0].path == str(root / "test" / "0010" / "0010_000_03_0303afternoon_0001_0.jpg")


def test_msmt17_errors(tmp_path):
    root = make_msmt17(tmp_path / "ms")
    (root / "list_val.txt").unlink()
    with pytest.raises(DatasetError, match="missing list file") as e:
        build_dataset("msmt17", root)
    assert str((root / "list_val.txt").resolve()) in str(e.value)

    root = make_msmt17(tmp_path / "ms2")
    (root / "list_query.txt").write_text("0010/0010_000_03_0303afternoon_0001_0.jpg\n")
    with pytest.raises(DatasetError, match="line 1 of"):
        build_dataset("msmt17", root)
    (root / "list_query.txt").write_text("0010/0010_000_99_x_0001_0.jpg 10\n")
    with pytest.raises(DatasetError, match=r"camera 99 out of range 1\.\.15.*0010_000_99_x_0001_0\.jpg"):
        build_dataset("msmt17", root)
    (root / "list_query.txt").write_text("0010/badname.jpg 10\n")
    with pytest.raises(DatasetError, match="badname.jpg"):
        build_dataset("msmt17", root)
    (root / "list_query.txt").write_text("0010/0010_000_03_0303afternoon_0099_0.jpg 10\n")
    with pytest.raises(DatasetError, match="does not exist"):
        build_dataset("msmt17", root)

    with pytest.raises(DatasetError, match="missing folder") as e:
        build_dataset("msmt17", tmp_path / "ms2" / "train")
    assert str((tmp_path / "ms2" / "train" / "train").resolve()) in str(e.value)


# ----------------------------------------------------------------------------------------------------- mars
def test_mars_train_only(tmp_path):
    make_images(tmp_path / "bbox_train", ["0004/0004C1T0001F001.jpg", "0004/0004C1T0001F002.jpg",
                                          "0004/0004C2T0002F001.jpg", "0002/0002C6T0003F001.jpg",
                                          "00-1/00-1C3T0009F001.jpg", "0000/0000C1T0009F001.jpg"])
    ds = build_dataset("mars", tmp_path)
    assert sorted((s.pid, s.camid) for s in ds.train) == [(0, 5), (1, 0), (1, 0), (1, 1)]
    assert ds.query == [] and ds.gallery == []
    strided = build_dataset("mars", tmp_path, frame_stride=2)
    assert len(strided.train) == 3  # tracklet 1 keeps F001 only
    with pytest.raises(DatasetError, match="frame_stride"):
        build_dataset("mars", tmp_path, frame_stride=0)


def test_mars_with_test(tmp_path):
    make_images(tmp_path / "bbox_train", ["0004/0004C1T0001F001.jpg"])
    make_images(tmp_path / "bbox_test", ["0010/0010C1T0005F002.jpg", "0010/0010C1T0005F001.jpg",
                                         "0010/0010C1T0006F001.jpg", "0010/0010C3T0007F001.jpg",
                                         "0011/0011C2T0008F001.jpg",  # one camera only: no query
                                         "0000/0000C1T0001F001.jpg", "0000/0000C2T0001F001.jpg",
                                         "00-1/00-1C4T0001F001.jpg"])
    ds = build_dataset("mars", tmp_path)
    assert sorted(Path(s.path).name for s in ds.query) == ["0010C1T0005F001.jpg", "0010C3T0007F001.jpg"]
    assert sorted(Path(s.path).name for s in ds.gallery) == [
        "0000C1T0001F001.jpg", "0000C2T0001F001.jpg", "0010C1T0005F002.jpg", "0010C1T0006F001.jpg",
        "0011C2T0008F001.jpg"]
    assert {s.pid for s in ds.gallery} == {0, 10, 11}


def test_mars_errors(tmp_path):
    with pytest.raises(DatasetError, match="missing folder") as e:
        build_dataset("mars", tmp_path)
    assert str((tmp_path / "bbox_train").resolve()) in str(e.value)
    make_images(tmp_path / "bbox_train", ["0004/0004_C1T0001F001.jpg"])
    with pytest.raises(DatasetError, match="0004_C1T0001F001.jpg"):
        build_dataset("mars", tmp_path)


# --------------------------------------------------------------------------------------------------- custom
def write_csv(path: Path, rows: list[str], header: str = "path,pid,camid,split") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header] + rows) + "\n")
    return path


def test_custom_csv(tmp_path):
    make_images(tmp_path / "d" / "imgs", ["a.jpg", "b.jpg", "c.png", "q.jpg", "g.jpg", "junk.jpg"])
    make_images(tmp_path / "elsewhere", ["x.jpg"])
    absolute = tmp_path / "elsewhere" / "x.jpg"
    csv_path = write_csv(tmp_path / "d" / "list.csv", [
        "imgs/a.jpg,7,0,train", "imgs/b.jpg,7,2,train", "imgs/c.png,0,1,train", "imgs/junk.jpg,-1,0,train",
        "imgs/q.jpg,12,0,query", f"{absolute},12,1,gallery", " imgs/g.jpg , 3 , 4 , Gallery ", ""])
    for root in (csv_path, tmp_path / "d"):
        ds = build_dataset("custom", root)
        # pid 0 is an ordinary identity here; 0 and 7 -> 0 and 1; camids are taken as 0-based
        assert sorted((Path(s.path).name, s.pid, s.camid) for s in ds.train) == [
            ("a.jpg", 1, 0), ("b.jpg", 1, 2), ("c.png", 0, 1)]
        assert ds.query == [Sample(str(tmp_path / "d" / "imgs" / "q.jpg"), 12, 0)]
        assert [(s.path, s.pid, s.camid) for s in ds.gallery] == [
            (str(absolute), 12, 1), (str(tmp_path / "d" / "imgs" / "g.jpg"), 3, 4)]


@pytest.mark.parametrize("rows,header,message", [
    (["imgs/a.jpg,1,0,train"], "file,id,cam,split", "must start with the header"),
    (["imgs/a.jpg,1,0,valid"], "path,pid,camid,split", "split must be train, query or gallery at line 2"),
    (["imgs/a.jpg,one,0,train"], "path,pid,camid,split", "pid 'one' is not an integer at line 2"),
    (["imgs/a.jpg,1,-2,train"], "path,pid,camid,split", "camid must be >= 0"),
    (["imgs/a.jpg,-3,0,train"], "path,pid,camid,split", "pid must be >= 0"),
    (["imgs/a.jpg,1,0"], "path,pid,camid,split", "expected 4 fields"),
    (["imgs/a.jpg,1,0,train", "imgs/missing.jpg,1,0,train"], "path,pid,camid,split", "missing.jpg listed at line 3"),
    ([], "path,pid,camid,split", "has no images"),
])
def test_custom_errors(tmp_path, rows, header, message):
    make_images(tmp_path / "imgs", ["a.jpg"])
    csv_path = write_csv(tmp_path / "list.csv", rows, header)
    with pytest.raises(DatasetError, match=message) as e:
        build_dataset("custom", csv_path)
    assert str(csv_path.resolve()) in str(e.value) or str((tmp_path / "imgs").resolve()) in str(e.value)


def test_custom_missing_files(tmp_path):
    with pytest.raises(DatasetError, match="missing list file") as e:
        build_dataset("custom", tmp_path)
    assert str((tmp_path / "list.csv").resolve()) in str(e.value)
    with pytest.raises(DatasetError, match="does not exist"):
        build_dataset("custom", tmp_path / "none.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DatasetError, match="is empty"):
        build_dataset("custom", tmp_path / "empty.csv")


# ------------------------------------------------------------------------------------- registry and dataclass
def test_registry(monkeypatch, tmp_path):
    assert {"market1501", "dukemtmc", "cuhk03", "msmt17", "mars", "custom"} <= set(list_datasets())
    with pytest.raises(DatasetError, match="unknown data set 'nope'; known: .*market1501"):
        build_dataset("nope", tmp_path)
    monkeypatch.setattr(base.DATASETS, "_entries", dict(base.DATASETS._entries))

    @register_dataset("Toy")
    def toy(root, n=1):
        return ReIDDataset("toy", [Sample(f"{root}/{i}.jpg", i, 0) for i in range(n)])

    assert build_dataset("toy", "r", n=3).num_train_pids == 3
    assert "toy" in list_datasets()
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("toy")(lambda root: None)
    assert build_dataset("MARKET1501", make_market(tmp_path / "m")).name == "market1501"


def test_dataset_validation_and_summary():
    with pytest.raises(DatasetError, match="relabelled 0..1, found pid 2"):
        ReIDDataset("x", [Sample("a", 0, 0), Sample("b", 2, 0)])
    with pytest.raises(DatasetError, match="negative camera id"):
        ReIDDataset("x", [Sample("a", 0, -1)])
    with pytest.raises(DatasetError, match="negative pid"):
        ReIDDataset("x", [Sample("a", 0, 0)], gallery=[Sample("g", -1, 0)])
    ds = ReIDDataset("x", [Sample("a", 0, 0), Sample("b", 1, 1), Sample("c", 1, 1)],
                     [Sample("q", 5, 0)], [Sample("g", 5, 1), Sample("h", 0, 2)])
    lines = ds.summary().splitlines()
    assert lines[0] == "data set 'x'"
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[2:] if not ln.strip().startswith("-")}
    assert rows == {"train": ["2", "3", "2"], "query": ["1", "1", "1"], "gallery": ["2", "2", "2"]}


# ------------------------------------------------------------------------------------ optional real mini sets
@pytest.mark.skipif(not (SHARED / "market1501-mini").is_dir(), reason="../shared/data/reid/market1501-mini absent")
def test_real_market1501_mini():
    ds = build_dataset("market1501", SHARED / "market1501-mini")
    assert (len(ds.train), ds.num_train_pids, len(ds.query), len(ds.gallery)) == (32, 16, 32, 32)
    assert sorted({s.pid for s in ds.train}) == list(range(16))
    assert all(0 <= s.camid < 6 for s in ds.train + ds.query + ds.gallery)


@pytest.mark.skipif(not (SHARED / "mars-mini").is_dir(), reason="../shared/data/reid/mars-mini absent")
def test_real_mars_mini():
    ds = build_dataset("mars", SHARED / "mars-mini")
    assert ds.num_train_pids == 16 and len(ds.train) > 16
    assert ds.query == [] and ds.gallery == []
    assert all(0 <= s.camid < 6 for s in ds.train)
