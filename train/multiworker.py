"""Training on several machines: TensorFlow's MultiWorkerMirroredStrategy, configured by TF_CONFIG
(docs/gpu.md "Training on several machines"). Keras 3's `fit` does not support this strategy (its maintainers say so:
keras-team/keras#20585), so this is a plain training loop over the same model, loss, learning
schedule and draws as `train.fit`: each step is one global batch of `batch_size` clips from
`epoch_order`, every worker augmenting its own slice; gradients are summed across workers."""
from __future__ import annotations

import sys
import time

import keras
import numpy as np
import tensorflow as tf

from edge.features import FeatureParams
from train.batches import LOADER_THREADS, AugmentedWindows
from train.config import TrainConfig
from train.losses import accuracy, loss_function
from train.model import build_model
from train.optimizer import learning_schedule, make_optimizer
from train.records import FitResult


def fit_multi_worker(data: AugmentedWindows, labels: list[str], params: FeatureParams, config: TrainConfig,
                     strategy: tf.distribute.Strategy, device: str) -> FitResult:
    steps_per_epoch = len(data.order) // config.batch_size  # whole global batches only: no worker gets none
    with strategy.scope():
        model = build_model(keras, config.model, params.frames_per_window, params.n_features, len(labels))
        optimizer = make_optimizer(learning_schedule(steps_per_epoch, config), config)
    batches = strategy.distribute_datasets_from_function(
        lambda context: worker_batches(data, steps_per_epoch, context, params, data.y_columns))
    train_step = make_train_step(model, optimizer, strategy, config)
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_ua": [], "val_accuracy": []}
    started = time.monotonic()
    for epoch in range(config.epochs):
        totals = np.zeros(2)
        for batch in batches:
            totals += [float(value) for value in train_step(batch)]
        data.on_epoch_end()
        history["loss"].append(totals[0] / steps_per_epoch)
        history["accuracy"].append(totals[1] / (steps_per_epoch * config.batch_size))
        print(f"epoch {epoch + 1:3d}/{config.epochs}  loss {history['loss'][-1]:.3f}  acc {history['accuracy'][-1]:.3f}"
              f"  {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
    average_moving_statistics(model, strategy)
    return FitResult(model, history, config.epochs, time.monotonic() - started, device)


def worker_batches(data: AugmentedWindows, steps: int, context: tf.distribute.InputContext, params: FeatureParams,
                   y_columns: int) -> tf.data.Dataset:
    """This worker's slice of every global batch, as a tf.data pipeline (re-read each epoch), augmented
    by LOADER_THREADS threads like `fit`'s loader, in order."""
    def load(index):
        return data.batch(int(index), context.input_pipeline_id, context.num_input_pipelines)

    def with_shapes(inputs, y, weights):
        return (tf.ensure_shape(inputs, (None, params.frames_per_window, params.n_features)),
                tf.ensure_shape(y, (None, y_columns)), tf.ensure_shape(weights, (None,)))

    batches = tf.data.Dataset.range(steps).map(
        lambda index: tf.numpy_function(load, [index], (tf.float32, tf.float32, tf.float32)),
        num_parallel_calls=LOADER_THREADS, deterministic=True)
    return batches.map(with_shapes).prefetch(2)


def make_train_step(model: keras.Model, optimizer, strategy: tf.distribute.Strategy, config: TrainConfig):
    loss_of = loss_function(config)

    def replica_step(inputs, y, weights):
        with tf.GradientTape() as tape:
            probabilities = model(inputs, training=True)
            # the global batch's mean, as fit() computes it: each worker sums its part
            loss = tf.reduce_sum(loss_of(y, probabilities) * weights) / config.batch_size
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss, tf.reduce_sum(accuracy(y, probabilities))

    @tf.function
    def train_step(batch):
        loss, hits = strategy.run(replica_step, args=batch)
        return strategy.reduce("SUM", loss, axis=None), strategy.reduce("SUM", hits, axis=None)

    return train_step


def average_moving_statistics(model: keras.Model, strategy: tf.distribute.Strategy) -> None:
    """Batch norm's moving mean and variance follow each worker's own batches; their mean across
    workers (what one machine would have seen, to within the spread of the workers' means) makes every
    worker hold the same model."""
    statistics = [v for v in model.non_trainable_variables if "float" in str(v.dtype)]

    @tf.function
    def averaged():
        def replica():
            context = tf.distribute.get_replica_context()
            return [context.all_reduce("MEAN", tf.identity(variable.value)) for variable in statistics]
        return strategy.run(replica)

    for variable, mean in zip(statistics, averaged()):
        variable.assign(strategy.experimental_local_results(mean)[0])
