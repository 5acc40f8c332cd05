"""The teacher head: a logistic regression on the teacher's clip embeddings (train.teacher), and the soft labels
it gives the student (train.losses' distilled loss). Each training clip's soft labels come from a head fitted on
other speakers only (out of fold), over the labels of the clip's corpus, as the student's masked loss sees them:
the teacher's answers on its own training clips would be near-certain and teach nothing about new voices.

    python -m train.distill DATA... [--folds 5 --fold 0]   # the head's own scores on a run's test speakers

docs/teacher.md has the figures.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edge.discovery import Dataset
from edge.errors import EdgeSerError

# The logistic regression's inverse L2 strength on standardised embeddings: chosen by cross-validation over
# speaker groups of one speaker fold's training clips, where stronger regularisation scored higher (docs/teacher.md)
HEAD_C = 0.02
HEAD_FOLDS = 5  # speaker groups of the training clips: each clip's soft labels come from a head fitted on the others
MASKED_OUT = -1e9  # the logit of a label outside the clip's corpus (or unknown to the head): probability 0
# Feature distillation's targets: the standardised embedding's leading principal components. 1024 values of
# mean and spread of the teacher's states are far more than a 96-value pooled vector can be mapped onto; the
# leading components carry most of their variance and leave out the least stable directions.
FEATURE_COMPONENTS = 64


def fit_head(embeddings: np.ndarray, targets: np.ndarray, seed: int = 0) -> Any:
    """Standardised embeddings -> multinomial logistic regression over every label, classes weighted to balance."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    head = make_pipeline(StandardScaler(), LogisticRegression(C=HEAD_C, max_iter=2000, class_weight="balanced",
                                                              random_state=seed))
    return head.fit(embeddings, targets)


def head_logits(head: Any, embeddings: np.ndarray, n_labels: int) -> np.ndarray:
    """(clips, n_labels) logits; labels the head never saw get MASKED_OUT."""
    logits = np.full((len(embeddings), n_labels), MASKED_OUT)
    logits[:, head.classes_] = head.decision_function(embeddings)
    return logits


def masked_softmax(logits: np.ndarray, masks: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Probabilities over each row's mask (its corpus's labels), from logits divided by `temperature`."""
    scaled = np.where(masks > 0, logits / temperature, MASKED_OUT)
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    exponentials = np.exp(scaled) * (masks > 0)
    return (exponentials / exponentials.sum(axis=1, keepdims=True)).astype(np.float32)


def out_of_fold_probabilities(embeddings: np.ndarray, targets: np.ndarray, groups: Sequence[str], masks: np.ndarray,
                              temperature: float = 1.0, folds: int = HEAD_FOLDS, seed: int = 0) -> np.ndarray:
    """Each clip's masked probabilities from a head fitted on the clips of the other speaker groups."""
    from sklearn.model_selection import GroupKFold

    group_of = np.asarray(groups)
    splits = min(folds, len(np.unique(group_of)))
    if splits < 2:
        raise EdgeSerError("the teacher head needs the training clips of at least two speakers")
    probabilities = np.zeros(masks.shape, dtype=np.float32)
    for fitted_on, held_out in GroupKFold(n_splits=splits).split(embeddings, targets, group_of):
        head = fit_head(embeddings[fitted_on], targets[fitted_on], seed)
        probabilities[held_out] = masked_softmax(head_logits(head, embeddings[held_out], masks.shape[1]),
                                                 masks[held_out], temperature)
    return probabilities


def speaker_groups(dataset: Dataset, indices: Sequence[int]) -> list[str]:
    """Each clip's speaker; a clip without one is a group of its own."""
    return [dataset.utterances[i].speaker or str(dataset.utterances[i].path) for i in indices]


def embedding_targets(embeddings: np.ndarray, components: int = FEATURE_COMPONENTS) -> np.ndarray:
    """The training clips' embeddings as feature-distillation targets: standardised, projected on their leading
    principal components, scaled so that the components' variance is 1 on average (a zero guess costs 1)."""
    standardised = (embeddings - embeddings.mean(axis=0)) / (embeddings.std(axis=0) + 1e-6)
    _, singular, directions = np.linalg.svd(standardised, full_matrices=False)
    kept = min(components, len(singular))
    scores = standardised @ directions[:kept].T
    return (scores / np.sqrt(np.mean(np.square(scores)) + 1e-12)).astype(np.float32)


@dataclass
class TeacherTargets:
    """What the teacher gives each training clip, as far as the recipe asks: soft labels, embedding targets."""

    soft_labels: np.ndarray | None = None
    features: np.ndarray | None = None


def teacher_targets(dataset: Dataset, roots: Sequence[Path], train: Sequence[int], targets: np.ndarray,
                    masks: np.ndarray, config: Any, encoder: Any = None) -> TeacherTargets:
    """The training clips' soft labels (teacher_weight > 0) and embedding targets (teacher_feature_weight > 0)
    from the teacher's cached embeddings (computed where missing): the soft labels from the out-of-fold head at
    the temperature. `targets` and `masks` are the whole dataset's."""
    if not (config.teacher_weight or config.teacher_feature_weight):
        return TeacherTargets()
    from train.teacher import WhisperEncoder, teacher_embeddings

    embeddings = teacher_embeddings(dataset, train, roots, encoder or WhisperEncoder(),
                                    progress=lambda line: print(line, file=sys.stderr, flush=True))
    train = list(train)
    found = TeacherTargets(features=embedding_targets(embeddings) if config.teacher_feature_weight else None)
    if config.teacher_weight:
        found.soft_labels = out_of_fold_probabilities(embeddings, targets[train], speaker_groups(dataset, train),
                                                      masks[train], config.teacher_temperature, seed=config.seed)
        hits = found.soft_labels.argmax(axis=1) == targets[train]
        print(f"teacher head (out of fold, by speaker): {hits.mean():.3f} of the training clips' labels on top",
              file=sys.stderr)
    return found


def head_scores(data: Sequence[Path], folds: int, fold: int, seed: int = 0, encoder: Any = None) -> dict[str, Any]:
    """The teacher head fitted on a training run's training clips (`edge-ser train DATA --folds F --fold K`'s
    split), scored on its test speakers per corpus over each corpus's labels, as the student is."""
    from train.recipe import (
        TrainRequest,
        clip_arrays,
        label_spaces,
        load_datasets,
        make_split,
        ordered_labels,
        per_corpus_metrics,
    )
    from train.teacher import WhisperEncoder, teacher_embeddings

    request = TrainRequest(data=tuple(data), folds=folds, fold=fold)
    dataset = load_datasets(request)
    labels, split = ordered_labels(dataset), make_split(dataset, request, seed)
    spaces = label_spaces(dataset, labels)
    targets, masks, _ = clip_arrays(dataset, labels, spaces)
    encoder = encoder or WhisperEncoder()
    train, test = list(split.train) + list(split.val), list(split.test)
    head = fit_head(teacher_embeddings(dataset, train, data, encoder), targets[train], seed)
    probabilities = masked_softmax(head_logits(head, teacher_embeddings(dataset, test, data, encoder), len(labels)),
                                   masks[test])
    per_corpus = per_corpus_metrics(dataset, split, targets[test], probabilities, labels, spaces)
    return {"split": split.description, "head_c": HEAD_C,
            "per_corpus": {name: asdict(scores) if scores else None for name, scores in per_corpus.items()}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.distill", description="The teacher head's own scores on "
                                     "the test speakers of `edge-ser train DATA --folds F --fold K`.")
    parser.add_argument("data", nargs="+", type=Path)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the scores here (JSON)")
    args = parser.parse_args(argv)
    try:
        scores = head_scores(args.data, args.folds, args.fold)
    except EdgeSerError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    for name, corpus in scores["per_corpus"].items():
        print(f"{name}: teacher head UA {corpus['unweighted_accuracy']:.3f} (n {corpus['n']}, {len(corpus['labels'])} labels)")
    if args.out:
        args.out.write_text(json.dumps(scores, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
