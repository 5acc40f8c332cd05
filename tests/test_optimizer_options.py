"""`--weight-decay` and `--ema-momentum`: what each does to the weights, in the real Keras optimizer."""
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


def test_without_either_option_the_optimizer_is_plain_adam():
    import keras

    from train.fit import make_optimizer

    optimizer = make_optimizer(LEARNING_RATE, TrainConfig())
    assert type(optimizer) is keras.optimizers.Adam and not optimizer.use_ema


def test_weight_decay_shrinks_kernels_and_leaves_biases_and_batch_norm_alone():
    from train.fit import make_optimizer

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


def test_ema_ends_with_the_moving_average_of_the_weights_not_the_last_step():
    from train.fit import make_optimizer

    momentum, steps = 0.5, 4
    model = small_model()
    optimizer = make_optimizer(LEARNING_RATE, TrainConfig(ema_momentum=momentum))
    trajectory = []
    for _ in range(steps):  # a constant gradient: Adam steps every weight down by the learning rate
        step(optimizer, model, 1.0)
        trajectory.append(model.trainable_variables[0].numpy().copy())
    average = trajectory[0]  # Keras starts the average at the first step's weights
    for weights in trajectory[1:]:
        average = momentum * average + (1 - momentum) * weights
    optimizer.finalize_variable_values(model.trainable_variables)  # what fit() does at its end
    np.testing.assert_allclose(model.trainable_variables[0].numpy(), average, rtol=1e-5)
    assert not np.allclose(average, trajectory[-1])
