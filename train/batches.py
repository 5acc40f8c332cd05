"""The training clips as Keras batches: which clips each epoch draws, one augmented window of each, and the
targets as one array per batch (Keras hands a loss one `y`): `y = [target, partner's target, target's mixup
weight, label mask..., teacher's soft labels..., teacher's embedding targets...]`, columns from MASK_FROM on as
train.losses reads them."""
from __future__ import annotations

import os
from dataclasses import dataclass

import keras
import numpy as np

from edge.features import FeatureParams
from train.augment import augmented_window
from train.config import TrainConfig

# Threads that augment and extract features ahead of the model (numpy, scipy and the room simulation
# release the GIL): one per core, so a GPU workstation's cores feed its GPU; 2 on these 2-core machines.
LOADER_THREADS = max(2, min(16, os.cpu_count() or 2))
MASK_FROM = 3  # y's columns before the label mask: target, partner's target, target's weight


@dataclass
class TrainingSet:
    audio: list[np.ndarray]
    targets: np.ndarray
    masks: np.ndarray  # (clips, labels): 1 where the clip's corpus defines the label
    corpora: np.ndarray
    teacher: np.ndarray | None = None  # (clips, labels): the teacher head's soft labels when distilling
    teacher_features: np.ndarray | None = None  # (clips, components): embedding targets (feature distillation)


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


def class_weights(targets: np.ndarray, n_classes: int) -> dict[int, float]:
    """Balanced weights n / (k * count_c) (scikit-learn's 'balanced'); absent classes get 0."""
    counts = np.bincount(targets, minlength=n_classes)
    present = np.count_nonzero(counts)
    return {c: float(len(targets) / (present * counts[c])) if counts[c] else 0.0 for c in range(n_classes)}


class AugmentedWindows(keras.utils.PyDataset):
    """One augmented random window of every drawn clip (`epoch_order`), as (inputs, y, weight) with
    y = [target, partner's target, target's mixup weight, label mask..., teacher's soft labels...]: the mask
    marks the labels the clip's corpus defines (for the masked loss); without mixup the partner is the clip
    itself; the soft labels and embedding targets (only when distilling: `teacher`, `teacher_features`, one row
    per clip) are mixed as the windows are."""

    def __init__(self, audio: list[np.ndarray], targets: np.ndarray, masks: np.ndarray, corpora: np.ndarray,
                 params: FeatureParams, config: TrainConfig, teacher: np.ndarray | None = None,
                 teacher_features: np.ndarray | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.audio, self.targets, self.params, self.config, self.teacher = audio, targets, params, config, teacher
        self.teacher_features = teacher_features
        extra = [rows.shape[1] for rows in (teacher, teacher_features) if rows is not None]
        self.y_columns = MASK_FROM + masks.shape[1] + sum(extra)
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
        for per_clip in (self.teacher, self.teacher_features):
            if per_clip is not None:
                rows = per_clip[chosen]
                y = np.concatenate([y, weights[:, None] * rows + (1 - weights[:, None]) * rows[partners]], axis=1)
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
