"""Fitting the compact LSTM in Keras 3: Adam with warm-up + cosine decay, class weights,
on-the-fly augmentation, best epoch by validation unweighted accuracy, early stopping."""
from __future__ import annotations

import hashlib
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from edge.discovery import DatasetError
from edge.features import FeatureParams
from train.batches import LOADER_THREADS, AugmentedWindows, TrainingSet
from train.config import TrainConfig
from train.devices import training_device
from train.evaluate import predict_clips, unweighted_accuracy
from train.losses import accuracy, accuracy_of_first, loss_function
from train.model import build_model, with_teacher_projection
from train.multiworker import fit_multi_worker
from train.optimizer import learning_schedule, make_optimizer
from train.parent import initialise
from train.records import FitResult


class BestByValidationUA(keras.callbacks.Callback):
    """Scores the validation clips each epoch with `student` (the trained model, or the part of it that is
    saved), keeps the best weights, stops after `patience`."""

    def __init__(self, val_clips: list[np.ndarray], val_targets: np.ndarray, patience: int, epochs: int,
                 student: "keras.Model") -> None:
        super().__init__()
        self.val_clips, self.val_targets, self.student = val_clips, val_targets, student
        self.patience, self.epochs = patience, epochs
        self.best_ua, self.best_epoch, self.best_weights = -1.0, 0, None
        self.history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_ua": [], "val_accuracy": []}
        self.started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = logs or {}
        self.history["loss"].append(float(logs.get("loss", np.nan)))
        self.history["accuracy"].append(float(logs.get("accuracy", np.nan)))
        line = f"epoch {epoch + 1:3d}/{self.epochs}  loss {logs.get('loss', np.nan):.3f}  acc {logs.get('accuracy', np.nan):.3f}"
        if self.val_clips:
            probabilities = predict_clips(lambda x: self.student(x, training=False).numpy(), self.val_clips)
            ua = unweighted_accuracy(self.val_targets, probabilities)
            self.history["val_ua"].append(ua)
            self.history["val_accuracy"].append(float(np.mean(probabilities.argmax(1) == self.val_targets)))
            if ua > self.best_ua:
                self.best_ua, self.best_epoch, self.best_weights = ua, epoch + 1, self.model.get_weights()
            line += f"  val UA {ua:.3f}  (best {self.best_ua:.3f} @ {self.best_epoch})"
            if epoch + 1 - self.best_epoch >= self.patience:
                self.model.stop_training = True
                line += "  early stop"
        print(f"{line}  {time.monotonic() - self.started:.0f}s", file=sys.stderr, flush=True)

    def restore_best(self) -> int:
        if self.best_weights is None:
            return len(self.history["loss"])
        self.model.set_weights(self.best_weights)
        return self.best_epoch


def weights_digest(model: "keras.Model") -> str:
    """SHA-256 of every weight: equal digests, equal models (workers of one training compare them)."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:16]


def fit(train: TrainingSet, val_clips: list[np.ndarray], val_targets: np.ndarray, labels: list[str],
        params: FeatureParams, config: TrainConfig, parent=None) -> FitResult:
    """`parent` (train.parent.Parent): start from its weights, batch normalisations frozen."""
    keras.utils.set_random_seed(config.seed)
    strategy, device = training_device()
    data = AugmentedWindows(train.audio, train.targets, train.masks, train.corpora, params, config, train.teacher,
                            train.teacher_features, workers=LOADER_THREADS, use_multiprocessing=False)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        if val_clips or parent or config.teacher_feature_weight:
            raise DatasetError("several workers train for --epochs from random weights without feature distillation: "
                               "drop --validate, --init-from and --teacher-feature-weight")
        return fit_multi_worker(data, labels, params, config, strategy, device)
    with strategy.scope():
        model = build_model(keras, config.model, params.frames_per_window, params.n_features, len(labels))
        if parent:
            initialise(model, parent, labels)
        trained, metric = model, accuracy
        if train.teacher_features is not None:  # set exactly when config.teacher_feature_weight is (train.distill)
            trained = with_teacher_projection(keras, model, config.model.pooling, train.teacher_features.shape[1])
            metric = accuracy_of_first(len(labels))
        trained.compile(optimizer=make_optimizer(learning_schedule(len(data), config), config),
                        loss=loss_function(config, len(labels)), metrics=[metric])
    tracker = BestByValidationUA(val_clips, val_targets, config.patience, config.epochs, model)
    started = time.monotonic()
    trained.fit(data, epochs=config.epochs, callbacks=[tracker], verbose=1 if sys.stderr.isatty() else 0)
    best_epoch = tracker.restore_best()
    return FitResult(model, tracker.history, best_epoch, time.monotonic() - started, device)
