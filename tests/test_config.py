"""Config: YAML + key=value overrides; unknown keys, wrong types, bad ranges rejected."""

from __future__ import annotations

import pytest

from bmxlib.config import Config, ConfigError, from_dict, load_config, parse_override


def test_defaults_are_valid_and_match_the_paper_optimiser():
    config = load_config()
    assert isinstance(config, Config)
    assert (config.momentum, config.weight_decay, config.lr) == (0.9, 1e-4, 0.01)
    assert config.mix_alpha == 4.0 and config.relabel_epsilon == 0.975


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("method: balancemix\nepochs: 7\nnoise: mislabel\nnoise_rate: 0.2\n")
    config = load_config(path, ["epochs=3", "noise_rate=0.4", "name=abc", "relabel=false"])
    assert (config.method, config.epochs, config.noise_rate) == ("balancemix", 3, 0.4)
    assert config.relabel is False and config.name == "abc"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["epochz=3"], "unknown config key 'epochz'"),
        (["epochs=three"], "'epochs' expects int"),
        (["epochs=0"], "'epochs'"),
        (["lr=-1"], "'lr'"),
        (["noise_rate=1.5"], "'noise_rate'"),
        (["method=magic"], "'method'"),
        (["relabel=maybe"], "'relabel' expects bool"),
        (["noise=mislabel"], "'noise_rate' must be > 0"),
        (["epochs"], "key=value"),
        (["relabel_epsilon=0.3"], "'relabel_epsilon'"),
        (["dataset=coco"], "'data_root'"),
        (["name=a/b"], "'name'"),
        (["lr=.nan"], "'lr'"),
        (["voc_year=2010"], "'voc_year': 2010 is not one of 2007, 2012"),
        (["out_dir="], "'out_dir' is empty"),
        (["name=a\tb"], "'name'"),
    ],
    ids=["unknown", "type", "zero-epochs", "negative-lr", "rate>1", "bad-choice", "bad-bool",
         "mislabel-without-rate", "no-equals", "epsilon<0.5", "coco-no-root",
         "slash-name", "nan", "int-choice", "empty-out-dir",
         "tab-in-name"],
)
def test_bad_overrides_are_one_line_errors_naming_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(None, overrides)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text, message",
    [("epochs: [1, 2\n", "not valid YAML"), ("- 1\n- 2\n", "mapping"),
     ("lr: 0.1\nbogus: 1\n", "unknown config key 'bogus'")],
    ids=["syntax", "not-a-mapping", "unknown-key"],
)
def test_bad_files_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("nowhere.yaml")


def test_a_later_override_of_a_key_wins():
    # scripts and the benchmarks compose override lists: `--config x $COMMON epochs=5`
    assert load_config(None, ["epochs=1", "lr=0.1", "epochs=2"]).epochs == 2


def test_parse_override_reads_yaml_scalars():
    assert load_config(None, ["lr=1e-3"]).lr == 1e-3  # YAML 1.1 reads 1e-3 as a string
    assert parse_override("hflip=true") == ("hflip", True)
    assert parse_override("name=2024") == ("name", "2024")


def test_ints_are_accepted_for_floats_but_not_bools():
    assert from_dict({"lr": 1}).lr == 1.0
    with pytest.raises(ConfigError):
        from_dict({"lr": True})


@pytest.mark.parametrize(
    "overrides, resolved",
    [([], "digits"), (["arch=resnet50"], "imagenet"),
     (["dataset=manifest", "data_root=x"], "none"), (["pretrained=none"], "none")],
    ids=["digits-lt", "resnet", "small-cnn-on-photos", "explicit"],
)
def test_pretrained_auto_resolves_to_what_runs(overrides, resolved):
    assert load_config(None, overrides).pretrained == resolved
