import argparse

import pytest

from bireid.config import Config, ConfigError, add_config_arguments, config_from_args, from_dict, load_yaml, set_key


def parse(argv):
    p = argparse.ArgumentParser()
    add_config_arguments(p)
    return config_from_args(p.parse_args(argv))


def test_defaults_round_trip_through_yaml(tmp_path):
    cfg = Config()
    cfg.optim.lr = 1e-3
    cfg.gal.fr_stages = [2, 3]
    path = tmp_path / "c.yaml"
    cfg.save(path)
    back = load_yaml(path)
    assert back == cfg


def test_cli_overrides_yaml_and_set_overrides_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 7\nmodel:\n  method: xnor\n")
    cfg = parse(["--config", str(path), "--epochs", "9", "--set", "model.method=bireal", "--height", "256",
                 "--width", "128", "--no-loss.triplet"])
    assert cfg.train.epochs == 9
    assert cfg.model.method == "bireal"
    assert (cfg.data.height, cfg.data.width) == (256, 128)
    assert cfg.loss.triplet is False


def test_list_and_bool_coercion():
    cfg = parse(["--optim.milestones", "10,20", "--kr-gal"])
    assert cfg.optim.milestones == [10, 20]
    cfg = parse(["--set", "optim.milestones=[5, 6]", "--no-kr-gal"])
    assert cfg.optim.milestones == [5, 6] and cfg.gal.kr_gal is False


@pytest.mark.parametrize("argv, needle", [
    (["--method", "magic"], "model.method"),
    (["--epochs", "-1"], "train.epochs"),
    (["--set", "data.num_identities=-4"], "data.num_identities"),
    (["--height", "100"], "divisible"),
    (["--set", "train.nope=1"], "train.nope"),
    (["--set", "bogus"], "KEY=VALUE"),
    (["--epochs", "two"], "train.epochs"),
])
def test_bad_values_name_the_key(argv, needle):
    with pytest.raises(ConfigError, match=needle):
        parse(argv)


def test_bad_yaml_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad)
    bad.write_text("- a list")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(bad)
    bad.write_text("data:\n  height: tall\n")
    with pytest.raises(ConfigError, match="data.height"):
        load_yaml(bad)


def test_set_key_and_from_dict():
    cfg = from_dict({"model": {"arch": "resnet34"}})
    assert cfg.model.arch == "resnet34"
    set_key(cfg, "eval.rerank", "yes")
    assert cfg.eval.rerank is True
    with pytest.raises(ConfigError):
        set_key(cfg, "model.arch", "vgg")
