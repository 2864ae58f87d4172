import argparse

import pytest

from bireid.config import Config, ConfigError, add_config_arguments, config_from_args, from_dict, load_yaml, set_key
from bireid.data import check_data_config
from bireid.factory import check_model_config


def parse(argv):
    """The config as ``bireid train`` builds it: flags, then the name checks of the layers owning the registries."""
    p = argparse.ArgumentParser()
    add_config_arguments(p)
    cfg = config_from_args(p.parse_args(argv))
    check_model_config(cfg)
    check_data_config(cfg)
    return cfg


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
    set_key(cfg, "model.arch", "vgg")  # names are checked against the registries, by the layer owning them
    with pytest.raises(ConfigError, match="config key 'model.arch': unknown binary backbone 'vgg'"):
        cfg.model.method = "bireid"
        check_model_config(cfg)


@pytest.mark.parametrize("key, value, message", [
    # difflib ratios (2 * matches / total length): bireid 10/12, bireal 8/12, real 6/10 (the 0.6 cutoff)
    ("model.method", "bireld", "config key 'model.method': unknown method 'bireld' (did you mean 'bireid', "
                               "'bireal', 'real'?); known: bireal, bireid, reactnet, real, xnor"),
    ("model.arch", "resnet81", "config key 'model.arch': unknown real backbone 'resnet81' (did you mean "
                               "'resnet18',"),
    ("data.dataset", "Market1502", "config key 'data.dataset': unknown data set 'Market1502' (did you mean "
                                   "'market1501'"),
    ("data.eval_dataset", "duke", "config key 'data.eval_dataset': unknown data set 'duke'"),
])
def test_registry_names_are_checked_with_close_matches(key, value, message):
    cfg = Config()
    set_key(cfg, key, value)
    with pytest.raises(ConfigError) as e:
        check_model_config(cfg)
        check_data_config(cfg)
    assert str(e.value).startswith(message)


def test_a_teacher_for_a_method_without_one_is_refused():
    cfg = Config()
    cfg.model.teacher = "runs/real/model.safetensors"
    cfg.model.method = "reactnet"
    check_model_config(cfg)
    for method in ("real", "bireid"):
        cfg.model.method = method
        with pytest.raises(ConfigError, match="model.teacher is only used by --method reactnet"):
            check_model_config(cfg)


def test_help_lists_the_registered_names():
    p = argparse.ArgumentParser()
    add_config_arguments(p, registry_names={"method": ["a", "b"], "dataset": ["x"]})
    text = p.format_help()
    assert "--method {a,b}" in text and "--dataset {x}" in text and "--data.eval_dataset {x}" in text
