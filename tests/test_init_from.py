"""`edge-ser train --init-from`: a run starts from a trained network (a run folder, a .tflite, a shipped model),
its weights read back exactly, and the run records its parent."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from edge.bundle import Bundle  # noqa: E402
from edge.cli import app  # noqa: E402
from edge.features import FeatureParams  # noqa: E402
from edge.windowing import clip_features  # noqa: E402
from tests.support.data import emotional_tone  # noqa: E402
from train.config import ModelConfig, TrainConfig  # noqa: E402
from train.model import build_model  # noqa: E402
from train.parent import Parent, initialise, layer_weights, read_parent, tflite_weights  # noqa: E402

LABELS = ("neutral", "happy", "sad", "angry")
PARAMS = FeatureParams()


def random_network(config: ModelConfig, labels=LABELS, seed: int = 0):
    """A network with random weights and batch normalisations that do something (not the identity)."""
    keras.utils.set_random_seed(seed)
    network = build_model(keras, config, PARAMS.frames_per_window, PARAMS.n_features, len(labels))
    rng = np.random.default_rng(seed)
    for layer in network.layers:
        if type(layer).__name__ == "BatchNormalization":
            size = layer.get_weights()[0].shape
            layer.set_weights([rng.uniform(0.5, 2, size), rng.normal(0, 0.3, size), rng.normal(0, 0.3, size),
                               rng.uniform(0.5, 2, size)])
    return network


def speech_like_windows() -> np.ndarray:
    return np.concatenate([clip_features(emotional_tone(e, seconds=2.5, seed=e), PARAMS) for e in range(4)])


@pytest.mark.parametrize("front_end", ["conv2d", "conv1d"])
def test_weights_read_back_from_a_float_tflite_are_the_network(front_end):
    """Through the converter (batch normalisation folded into the convolutions) and back: the same outputs."""
    from convert.tflite import convert, keras2_twin

    config = ModelConfig(front_end=front_end, lstm_units=(24,), conv2d_channels=(4, 8), conv_filters=8, dense_units=16)
    network = random_network(config)
    bundle = Bundle(labels=LABELS, params=PARAMS, model_config=config.to_dict())
    flatbuffer = convert(keras2_twin(network, bundle), "float32")
    rebuilt = build_model(keras, config, PARAMS.frames_per_window, PARAMS.n_features, len(LABELS))
    for name, weights in tflite_weights(flatbuffer, bundle).items():
        rebuilt.get_layer(name).set_weights(weights)
    windows = speech_like_windows()
    np.testing.assert_allclose(rebuilt(windows, training=False).numpy(), network(windows, training=False).numpy(),
                               atol=2e-5)


@pytest.mark.parametrize("shipped", ["default", "open"])
def test_shipped_models_read_back_answer_as_their_tflite(shipped):
    """The shipped models are dynamic-range: int8 weights (read back with their scales) and activations
    quantised on the fly by the runtime, so the float network and the file agree closely, not exactly."""
    from edge.runtime import EdgeModel, model_or_default

    parent = read_parent(shipped)
    network = build_model(keras, parent.model, parent.params.frames_per_window, parent.params.n_features,
                          len(parent.labels))
    for name, weights in parent.weights.items():
        network.get_layer(name).set_weights(weights)
    model = EdgeModel(model_or_default(Path(shipped), "ai-edge-litert"), threads=1)
    windows = np.concatenate([clip_features(emotional_tone(e, seconds=2.5, seed=e), parent.params) for e in range(4)])
    from_file = np.stack([model.network_outputs(w)[0] for w in windows])
    from_keras = network(windows, training=False).numpy()
    assert np.abs(from_file - from_keras).mean() < 0.02
    assert (from_file.argmax(1) == from_keras.argmax(1)).mean() >= 0.9
    assert parent.labels == model.bundle.labels and len(parent.sha256) == 64


def test_initialise_copies_the_labels_the_parent_knows_and_freezes_batch_norm():
    config = ModelConfig(front_end="conv2d", lstm_units=(16,), conv2d_channels=(4, 8), dense_units=8)
    source = random_network(config, seed=1)
    parent = Parent("test", "0" * 64, LABELS, PARAMS, config, layer_weights(source))
    labels = ["calm", "sad", "neutral"]  # calm is new; sad and neutral come from the parent, in another order
    network = build_model(keras, config, PARAMS.frames_per_window, PARAMS.n_features, len(labels))
    fresh_calm = network.get_layer("probabilities").get_weights()[0][:, 0].copy()
    initialise(network, parent, labels)
    kernel, bias = network.get_layer("probabilities").get_weights()
    parent_kernel, parent_bias = parent.weights["probabilities"]
    np.testing.assert_array_equal(kernel[:, 1:], parent_kernel[:, [2, 0]])
    np.testing.assert_array_equal(bias[1:], parent_bias[[2, 0]])
    np.testing.assert_array_equal(kernel[:, 0], fresh_calm)
    np.testing.assert_array_equal(network.get_layer("lstm_0").get_weights()[0], parent.weights["lstm_0"][0])
    assert all(not layer.trainable for layer in network.layers if type(layer).__name__ == "BatchNormalization")


def test_train_init_from_a_run_records_its_parent(tiny_run, ravdess_like, tmp_path):
    _, runs = tiny_run
    parent_file = runs / "tiny" / "model.keras"
    result = CliRunner().invoke(app, ["train", str(ravdess_like), "--runs-dir", str(tmp_path), "--name", "child",
                                      "--init-from", str(runs / "tiny"), "--epochs", "1", "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    bundle = json.loads((tmp_path / "child" / "bundle.json").read_text())
    parent = json.loads((runs / "tiny" / "bundle.json").read_text())
    assert bundle["training_data"]["init_from"] == {"model": str(runs / "tiny"),
                                                    "sha256": hashlib.sha256(parent_file.read_bytes()).hexdigest(),
                                                    "labels": parent["labels"]}
    assert bundle["model_config"] == parent["model_config"]  # the parent's network, not train's default
    assert bundle["train_config"]["epochs"] == 1  # the options given
    assert bundle["train_config"]["learning_rate"] == TrainConfig().learning_rate  # the recipe's own schedule


def test_fine_tuning_keeps_the_parents_network_and_refuses_options_that_change_it(tmp_path, ravdess_like):
    from dataclasses import replace

    from edge.errors import UsageError
    from train.parent import fine_tuning

    parent = Parent("p", "0" * 64, LABELS, PARAMS, ModelConfig(lstm_units=(16,)), {})
    config, params = fine_tuning(TrainConfig(), FeatureParams(), parent)
    assert (config.epochs, config.learning_rate, config.model, params) == (TrainConfig().epochs, TrainConfig().learning_rate,
                                                                           parent.model, PARAMS)
    with pytest.raises(UsageError, match="--init-from takes the network"):
        fine_tuning(replace(TrainConfig(), model=ModelConfig(lstm_units=(32,))), FeatureParams(), parent)
    runner = CliRunner()
    missing = runner.invoke(app, ["train", str(ravdess_like), "--init-from", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "neither a run folder nor a model file" in missing.output
    changed = runner.invoke(app, ["train", str(ravdess_like), "--init-from", "open", "--n-mfcc", "13"])
    assert changed.exit_code == 2 and "--init-from takes the network" in changed.output
