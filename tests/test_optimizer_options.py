"""`--weight-decay`: what it does to the weights, in the real Keras optimizer."""
import numpy as np
import pytest

from train.config import TrainConfig

pytestmark = pytest.mark.host  # needs the host side (TensorFlow)

LEARNING_RATE = 0.01


def small_model():
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()])
    for weight in model.trainable_variables:  # every weight away from 0, so a shrink would show
        weight.assign(np.full(weight.shape, 0.5, dtype="float32"))
    return model


def step(optimizer, model, gradient: float) -> None:
    import keras

    optimizer.apply_gradients([(keras.ops.full(v.shape, gradient), v) for v in model.trainable_variables])


def test_without_weight_decay_the_optimizer_is_plain_adam():
    import keras

    from train.optimizer import make_optimizer

    optimizer = make_optimizer(LEARNING_RATE, TrainConfig())
    assert type(optimizer) is keras.optimizers.Adam


def test_weight_decay_shrinks_kernels_and_leaves_biases_and_batch_norm_alone():
    from train.optimizer import make_optimizer

    model = small_model()
    optimizer = make_optimizer(LEARNING_RATE, TrainConfig(weight_decay=0.5))
    step(optimizer, model, 0.0)  # no gradient: Adam moves nothing, only the decay acts
    after = {v.path: v.numpy() for v in model.trainable_variables}
    kernel = next(value for path, value in after.items() if path.endswith("kernel"))
    np.testing.assert_allclose(kernel, 0.5 * (1 - 0.5 * LEARNING_RATE), rtol=1e-6)
    left_alone = {path: value for path, value in after.items() if not path.endswith("kernel")}
    assert sorted(path.rsplit("/", 1)[-1] for path in left_alone) == ["beta", "bias", "gamma"]
    for value in left_alone.values():
        np.testing.assert_array_equal(value, 0.5)
