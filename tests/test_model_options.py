"""The network's options (front-end, pooling): each builds in Keras 3 and tf_keras with the same weights and
converts to TFLite as one fused LSTM that gives the Keras model's outputs in the real interpreter."""
import numpy as np
import pytest

from train.config import AUTO_EPOCHS, EPOCHS, LONG_SCHEDULE_CLIPS, LONG_SCHEDULE_EPOCHS, ModelConfig, TrainConfig

pytestmark = pytest.mark.host  # needs the host side (train/convert, TensorFlow)

FRAMES, BANDS, LABELS = 198, 40, 5
SMALL = {"lstm_units": (16,), "dense_units": 8, "conv_filters": 8}


@pytest.mark.parametrize("config", [
    ModelConfig(front_end="conv2d", conv2d_channels=(4, 8), **SMALL),
    ModelConfig(front_end="conv2d", pooling="mean_max", **SMALL),
    ModelConfig(front_end="conv2d", pooling="attention", conv2d_channels=(4, 8), **SMALL),
], ids=["conv2d", "mean_max", "attention"])
def test_option_converts_to_one_fused_lstm_with_keras_outputs(config):
    import keras
    import tf_keras
    from ai_edge_litert.interpreter import Interpreter

    from convert.tflite import check_ops, convert
    from train.model import build_model

    trained = build_model(keras, config, FRAMES, BANDS, LABELS)
    twin = build_model(tf_keras, config, FRAMES, BANDS, LABELS, batch_size=1)
    twin.set_weights(trained.get_weights())  # how `quantize` moves the weights (convert.tflite.keras2_twin)
    ops = check_ops(convert(twin, "float32"))
    assert ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 1

    window = np.random.default_rng(0).standard_normal((1, FRAMES, BANDS)).astype(np.float32)
    interpreter = Interpreter(model_content=convert(twin, "float32"))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], window)
    interpreter.invoke()
    on_device = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(on_device, trained(window, training=False).numpy(), atol=1e-5)


def test_conv2d_front_end_gives_the_lstm_49_steps_of_5_bands():
    import keras

    from train.model import build_model

    model = build_model(keras, ModelConfig(front_end="conv2d", conv2d_channels=(8, 16)), FRAMES, BANDS, LABELS)
    assert tuple(model.get_layer("steps").output.shape) == (None, 49, 5 * 16)


def test_unknown_model_options_are_refused_by_name():
    from edge.errors import UsageError

    with pytest.raises(UsageError, match="--front-end must be one of auto, conv1d, conv2d"):
        ModelConfig(front_end="transformer")
    with pytest.raises(UsageError, match="--pooling must be one of mean, mean_max, attention"):
        ModelConfig(pooling="max")
    for channels in ((), (8, 16, 32), (8, 0)):
        with pytest.raises(UsageError, match="--conv2d-channels takes 1 to 2 positive channel counts"):
            ModelConfig(conv2d_channels=channels)


def test_the_front_end_left_to_auto_is_conv1d_for_one_corpus_and_conv2d_for_several():
    from train.model import build_model

    assert ModelConfig().front_end == "auto"
    assert ModelConfig().for_corpora(1).front_end == "conv1d"
    assert [ModelConfig().for_corpora(n).front_end for n in (2, 3)] == ["conv2d", "conv2d"]
    assert ModelConfig(front_end="conv2d").for_corpora(1).front_end == "conv2d"  # chosen by the user: kept
    assert TrainConfig().for_corpora(1).model.front_end == "conv1d"
    with pytest.raises(ValueError, match="auto"):
        build_model(None, ModelConfig(), FRAMES, BANDS, LABELS)  # never built unresolved


def test_epochs_follow_the_data_unless_given():
    assert TrainConfig().epochs == AUTO_EPOCHS
    assert TrainConfig().for_corpora(1, LONG_SCHEDULE_CLIPS).epochs == LONG_SCHEDULE_EPOCHS  # one large corpus
    assert TrainConfig().for_corpora(1, LONG_SCHEDULE_CLIPS - 1).epochs == EPOCHS  # one small corpus
    assert TrainConfig().for_corpora(3, 10 * LONG_SCHEDULE_CLIPS).epochs == EPOCHS  # several corpora
    assert TrainConfig(epochs=7).for_corpora(1, LONG_SCHEDULE_CLIPS).epochs == 7  # chosen by the user: kept
    resolved = TrainConfig().for_corpora(1, LONG_SCHEDULE_CLIPS)
    assert resolved.for_corpora(1, 0) == resolved  # a recorded recipe replays as it ran


def test_runs_from_before_the_options_read_as_the_network_they_trained():
    old = {k: v for k, v in ModelConfig().to_dict().items() if k not in ("front_end", "pooling", "conv2d_channels")}
    assert ModelConfig.from_dict(old) == ModelConfig(front_end="conv1d", pooling="mean")
    assert ModelConfig.from_dict(ModelConfig(conv2d_channels=(4, 8)).to_dict()).conv2d_channels == (4, 8)
