"""Fitting the compact LSTM in Keras 3: Adam with warm-up + cosine decay, class weights,
on-the-fly augmentation, best epoch by validation unweighted accuracy, early stopping."""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402  (Keras 3, shipped with tensorflow)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from edge.errors import UsageError  # noqa: E402
from edge.features import FeatureParams  # noqa: E402
from train.augment import augmented_window  # noqa: E402
from train.config import TrainConfig  # noqa: E402
from train.evaluate import predict_clips, unweighted_accuracy  # noqa: E402
from train.model import build_model  # noqa: E402


@dataclass
class FitResult:
    model: "keras.Model"
    history: dict[str, list[float]]
    best_epoch: int
    seconds: float
    device: str


def epoch_order(corpora: np.ndarray, targets: np.ndarray, config: TrainConfig, epoch: int) -> np.ndarray:
    """The training clips drawn in one epoch. `natural`: shuffled passes over every clip (class
    weights balance the labels). `balanced`: each corpus gets its share (`corpus_share`), and within a
    corpus every label is drawn equally often, so no corpus's label mix can stand in for the label."""
    rng = np.random.default_rng([config.seed, epoch])
    count = min(len(targets), config.max_clips_per_epoch or len(targets))
    if config.sampling == "natural":
        passes = -(-count // len(targets))
        return np.concatenate([rng.permutation(len(targets)) for _ in range(passes)])[:count]
    probability = np.zeros(len(targets))
    for corpus in np.unique(corpora):
        in_corpus = corpora == corpus
        share, present = corpus_share(in_corpus.sum(), config.corpus_share), np.unique(targets[in_corpus])
        for label in present:
            cell = in_corpus & (targets == label)
            probability[cell] = share / len(present) / cell.sum()
    return rng.choice(len(targets), size=count, p=probability / probability.sum())


def corpus_share(clips: int, rule: str) -> float:
    """A corpus's unnormalised share of the draws (epoch_order normalises)."""
    return {"clips": float(clips), "sqrt": float(np.sqrt(clips)), "equal": 1.0}[rule]


def sample_weights(targets: np.ndarray, n_classes: int, config: TrainConfig) -> np.ndarray:
    """Class weights under natural sampling; balanced sampling needs none."""
    if config.sampling == "balanced":
        return np.ones(len(targets), dtype=np.float32)
    weights = class_weights(targets, n_classes)
    return np.array([weights[t] for t in targets], dtype=np.float32)


class AugmentedWindows(keras.utils.PyDataset):
    """One augmented random window of every drawn clip (`epoch_order`), as (inputs, y, weight) with
    y = [target, partner's target, target's mixup weight, label mask..., teacher's soft labels...]: the mask
    marks the labels the clip's corpus defines (for the masked loss); without mixup the partner is the clip
    itself; the soft labels (only when distilling: `teacher`, one row per clip) are mixed as the windows are."""

    def __init__(self, audio: list[np.ndarray], targets: np.ndarray, masks: np.ndarray, corpora: np.ndarray,
                 params: FeatureParams, config: TrainConfig, teacher: np.ndarray | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.audio, self.targets, self.params, self.config, self.teacher = audio, targets, params, config, teacher
        self.y_columns = MASK_FROM + masks.shape[1] * (1 if teacher is None else 2)
        self.targets_and_masks = np.concatenate([targets[:, None], masks], axis=1).astype(np.float32)
        self.weights = sample_weights(targets, masks.shape[1], config)
        self.corpora = corpora
        self.epoch = 0
        self.order = epoch_order(corpora, targets, config, 0)

    def __len__(self) -> int:
        return int(np.ceil(len(self.order) / self.config.batch_size))

    def __getitem__(self, index: int):
        return self.batch(index)

    def batch(self, index: int, shard: int = 0, shards: int = 1):
        """Batch `index` of the epoch; with `shards` > 1 (several workers) the `shard`-th slice of it."""
        rng = np.random.default_rng([self.config.seed, self.epoch, index] + ([shard] if shards > 1 else []))
        chosen = self.order[index * self.config.batch_size:(index + 1) * self.config.batch_size]
        chosen = np.array_split(chosen, shards)[shard]
        inputs = np.stack([augmented_window(self.audio[i], self.params, self.config.augment, rng) for i in chosen])
        partners, weights = mixup_partners(self.corpora[chosen], self.config.mixup, rng)
        if self.config.mixup:
            inputs = weights[:, None, None] * inputs + (1 - weights[:, None, None]) * inputs[partners]
        rows = self.targets_and_masks[chosen]
        y = np.concatenate([rows[:, :1], rows[partners, :1], weights[:, None], rows[:, 1:]], axis=1)
        if self.teacher is not None:
            soft = self.teacher[chosen]
            y = np.concatenate([y, weights[:, None] * soft + (1 - weights[:, None]) * soft[partners]], axis=1)
        return inputs.astype(np.float32), y.astype(np.float32), self.weights[chosen]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = epoch_order(self.corpora, self.targets, self.config, self.epoch)


def mixup_partners(corpora: np.ndarray, alpha: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """For each example of a batch, a partner from the same corpus and the example's own weight in
    the mix (>= 0.5, so the example stays the main one). alpha 0: every example is its own partner."""
    partners, weights = np.arange(len(corpora)), np.ones(len(corpora))
    if alpha <= 0:
        return partners, weights
    for corpus in np.unique(corpora):
        slots = np.flatnonzero(corpora == corpus)
        partners[slots] = rng.permutation(slots)
    drawn = rng.beta(alpha, alpha, len(corpora))
    return partners, np.maximum(drawn, 1 - drawn)


# Threads that augment and extract features ahead of the model (numpy, scipy and the room simulation
# release the GIL): one per core, so a GPU workstation's cores feed its GPU; 2 on these 2-core machines.
LOADER_THREADS = max(2, min(16, os.cpu_count() or 2))
EPSILON = 1e-7  # keeps log() finite when a probability underflows
MASK_FROM = 3  # y = [target, partner's target, target's weight, mask..., soft labels...] (AugmentedWindows)


def mixed(loss_of_target, smoothing: float = 0.0):
    """The loss of a mixed example: its weight times the loss of its target, plus the partner's."""
    def loss(y, probabilities):
        weight, mask = y[:, 2], y[:, MASK_FROM:MASK_FROM + probabilities.shape[-1]]
        return (weight * loss_of_target(y[:, 0], mask, probabilities, smoothing)
                + (1 - weight) * loss_of_target(y[:, 1], mask, probabilities, smoothing))
    loss.__name__ = loss_of_target.__name__
    return loss


def masked_crossentropy(target, mask, probabilities, smoothing: float = 0.0):
    """-log p(target | the labels the clip's corpus defines): probabilities renormalised over the
    mask, so a CREMA-D clip never teaches "not surprise" (CREMA-D has no surprise). With smoothing s,
    (1 - s) of that plus s times the mean -log p over the mask's labels."""
    log_q = masked_log_probabilities(mask, probabilities)
    loss = -keras.ops.take_along_axis(log_q, keras.ops.cast(target, "int32")[:, None], axis=1)[:, 0]
    if not smoothing:
        return loss
    spread = -keras.ops.sum(log_q * mask, axis=1) / keras.ops.sum(mask, axis=1)
    return (1 - smoothing) * loss + smoothing * spread


def masked_log_probabilities(mask, probabilities):
    """log p(label | the labels of the mask): the probabilities renormalised over the mask."""
    masked = probabilities * mask
    return keras.ops.log(masked + EPSILON) - keras.ops.log(keras.ops.sum(masked, axis=1, keepdims=True) + EPSILON)


def distilled(hard_loss, teacher_weight: float):
    """(1 - w) x `hard_loss` (the clip's own, smoothed, label) + w x the cross-entropy against the teacher's
    soft labels (y's columns after the mask), both over the labels the clip's corpus defines."""
    def loss(y, probabilities):
        labels = probabilities.shape[-1]
        mask, soft = y[:, MASK_FROM:MASK_FROM + labels], y[:, MASK_FROM + labels:]
        soft_loss = -keras.ops.sum(soft * masked_log_probabilities(mask, probabilities), axis=1)
        return (1 - teacher_weight) * hard_loss(y, probabilities) + teacher_weight * soft_loss
    loss.__name__ = hard_loss.__name__
    return loss


def softmax_crossentropy(target, mask, probabilities, smoothing: float = 0.0):
    """Plain cross-entropy over every label (the mask is ignored); smoothing spreads over all labels."""
    log_p = keras.ops.log(probabilities + EPSILON)
    loss = -keras.ops.take_along_axis(log_p, keras.ops.cast(target, "int32")[:, None], axis=1)[:, 0]
    return loss if not smoothing else (1 - smoothing) * loss - smoothing * keras.ops.mean(log_p, axis=1)


def accuracy(y, probabilities):
    predicted = keras.ops.cast(keras.ops.argmax(probabilities, axis=1), "int32")
    return keras.ops.cast(predicted == keras.ops.cast(y[:, 0], "int32"), "float32")


LOSS_OF_TARGET = {"masked": masked_crossentropy, "softmax": softmax_crossentropy}


def loss_function(config: TrainConfig):
    """The training loss that `config` names (loss, label smoothing, distillation), over y = AugmentedWindows' rows."""
    hard = mixed(LOSS_OF_TARGET[config.loss], config.label_smoothing)
    return distilled(hard, config.teacher_weight) if config.teacher_weight else hard


class BestByValidationUA(keras.callbacks.Callback):
    """Scores the validation clips each epoch, keeps the best weights, stops after `patience`."""

    def __init__(self, val_clips: list[np.ndarray], val_targets: np.ndarray, patience: int, epochs: int) -> None:
        super().__init__()
        self.val_clips, self.val_targets = val_clips, val_targets
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
            probabilities = predict_clips(lambda x: self.model(x, training=False).numpy(), self.val_clips)
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


def class_weights(targets: np.ndarray, n_classes: int) -> dict[int, float]:
    """Balanced weights n / (k * count_c) (scikit-learn's 'balanced'); absent classes get 0."""
    counts = np.bincount(targets, minlength=n_classes)
    present = np.count_nonzero(counts)
    return {c: float(len(targets) / (present * counts[c])) if counts[c] else 0.0 for c in range(n_classes)}


def training_device() -> tuple[tf.distribute.Strategy, str]:
    """MultiWorkerMirroredStrategy when TF_CONFIG names several workers; else MirroredStrategy over
    several GPUs, the one GPU, or the CPU. The description names the device(s) for the reports."""
    gpus = tf.config.list_physical_devices("GPU")
    local = f"{len(gpus)} x {gpu_name(gpus[0])}" if gpus else "CPU"
    workers = len(cluster_config().get("cluster", {}).get("worker", []))
    if workers > 1:
        return tf.distribute.MultiWorkerMirroredStrategy(), f"{workers} workers (MultiWorkerMirroredStrategy), each {local}"
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy(), f"{local} (MirroredStrategy)"
    return tf.distribute.get_strategy(), local


def cluster_config() -> dict:
    """TF_CONFIG, the cluster and this process's task in it (docs/gpu.md "Training on several machines");
    {} when it is unset or empty."""
    try:
        return json.loads(os.environ.get("TF_CONFIG") or "{}")
    except ValueError as error:
        raise UsageError(f"TF_CONFIG is not JSON ({error})") from None


def is_chief() -> bool:
    """The process that writes the run: TF_CONFIG's chief, or worker 0 when the cluster has no chief
    (TensorFlow's own rule); a process without TF_CONFIG is its own chief."""
    config = cluster_config()
    task = config.get("task", {})
    if not task:
        return True
    return task.get("type") == "chief" or (task.get("type") == "worker" and task.get("index", 0) == 0
                                           and "chief" not in config.get("cluster", {}))


def gpu_name(gpu) -> str:
    return tf.config.experimental.get_device_details(gpu).get("device_name", "GPU")


@dataclass
class TrainingSet:
    audio: list[np.ndarray]
    targets: np.ndarray
    masks: np.ndarray  # (clips, labels): 1 where the clip's corpus defines the label
    corpora: np.ndarray
    teacher: np.ndarray | None = None  # (clips, labels): the teacher head's soft labels when distilling


def learning_schedule(steps_per_epoch: int, config: TrainConfig):
    """Warm-up from a tenth of the learning rate, then cosine decay to 0 over the remaining epochs."""
    steps, warmup = steps_per_epoch * config.epochs, steps_per_epoch * config.warmup_epochs
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10, decay_steps=max(1, steps - warmup),
        warmup_target=config.learning_rate, warmup_steps=warmup)


def make_optimizer(schedule, config: TrainConfig) -> "keras.optimizers.Optimizer":
    """Adam, or AdamW with --weight-decay (kernels only: biases and batch-norm scales and offsets are
    left alone, the usual practice)."""
    if not config.weight_decay:
        return keras.optimizers.Adam(schedule)
    adamw = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
    adamw.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return adamw


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
                            workers=LOADER_THREADS, use_multiprocessing=False)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        from train.datasets import DatasetError
        from train.multiworker import fit_multi_worker

        if val_clips or parent:
            raise DatasetError("several workers train for --epochs from random weights: drop --validate and --init-from")
        return fit_multi_worker(data, labels, params, config, strategy, device)
    with strategy.scope():
        model = build_model(keras, config.model, params.frames_per_window, params.n_features, len(labels))
        if parent:
            from train.parent import initialise

            initialise(model, parent, labels)
        model.compile(optimizer=make_optimizer(learning_schedule(len(data), config), config),
                      loss=loss_function(config), metrics=[accuracy])
    tracker = BestByValidationUA(val_clips, val_targets, config.patience, config.epochs)
    started = time.monotonic()
    model.fit(data, epochs=config.epochs, callbacks=[tracker], verbose=1 if sys.stderr.isatty() else 0)
    best_epoch = tracker.restore_best()
    return FitResult(model, tracker.history, best_epoch, time.monotonic() - started, device)
