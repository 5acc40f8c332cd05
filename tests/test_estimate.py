"""The held-out estimate's recipe check, directly: what must match between a final fit and its runs."""
import pytest

from train.estimate import _different, _without_seed

pytestmark = pytest.mark.host


def recipe(**train_config) -> dict:
    return _without_seed({"labels": ["a", "b"], "feature_params": {"n_mels": 40}, "model_config": {"pool": 4},
                          "train_config": {"seed": 0, "epochs": 60, **train_config}})


def test_the_seed_never_counts_and_an_equal_recipe_matches():
    assert _different(recipe(), {**recipe(), "train_config": {**recipe()["train_config"]}}) == []
    assert "seed" not in recipe()["train_config"]


def test_a_different_setting_is_named():
    assert _different(recipe(epochs=30), recipe()) == ["train_config.epochs"]
    assert _different({**recipe(), "labels": ["a"]}, recipe()) == ["labels"]


def test_a_setting_an_older_run_does_not_record_is_not_compared():
    older, newer = recipe(), recipe(label_smoothing=0.0)
    assert _different(older, newer) == [] and _different(newer, older) == []
    assert _different(recipe(label_smoothing=0.1), newer) == ["train_config.label_smoothing"]


def test_a_nested_setting_an_older_run_does_not_record_is_not_compared_but_a_changed_one_is_named():
    older = recipe(augment={"room_probability": 0.3})
    newer = recipe(augment={"room_probability": 0.3, "warp_probability": 0.0})
    assert _different(older, newer) == [] and _different(newer, older) == []
    changed = recipe(augment={"room_probability": 0.5, "warp_probability": 0.0})
    assert _different(changed, newer) == ["train_config.augment.room_probability"]


def test_a_run_from_before_the_front_end_option_counts_as_the_conv1d_it_trained():
    from train.config import ModelConfig
    from train.estimate import _model_recipe

    before = {k: v for k, v in ModelConfig().to_dict().items() if k not in ("front_end", "pooling", "conv2d_channels")}
    conv1d, conv2d = recipe(), recipe()
    conv1d["model_config"] = ModelConfig(front_end="conv1d").to_dict()
    conv2d["model_config"] = ModelConfig(front_end="conv2d").to_dict()
    older = {**recipe(), "model_config": _model_recipe(before)}
    assert _different(older, conv1d) == []
    assert _different(older, conv2d) == ["model_config.front_end"]


def test_the_settings_of_the_front_end_not_chosen_are_not_compared():
    from train.config import ModelConfig
    from train.estimate import _comparable

    def network(**options) -> dict:
        model = ModelConfig(**options).to_dict()
        return _comparable({**recipe(), "model_config": model, "train_config": {"epochs": 60, "model": model}})

    assert _different(network(front_end="conv1d", conv2d_channels=(8, 16)), network(front_end="conv1d")) == []
    assert _different(network(front_end="conv2d", pool=2), network(front_end="conv2d")) == []
    assert _different(network(front_end="conv2d", conv2d_channels=(8, 16)), network(front_end="conv2d")) == [
        "model_config.conv2d_channels", "train_config.model.conv2d_channels"]
