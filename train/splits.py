"""Train / validation / test splits: speaker-independent by default (docs/design.md contract 4)."""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.bundle import SplitRecord
from edge.discovery import DatasetError, Utterance

TEST_FRACTION = 0.2  # "the last fifth of the speakers is the test set"
VAL_FRACTION_OF_DEV = 0.125  # RAVDESS: 2 of the 16 development actors validate (15-16)


@dataclass(frozen=True)
class Split:
    kind: str  # "speaker", "random" or "none" (final fit: everything trains)
    description: str  # one line every report prints
    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]
    test_speakers: tuple[str, ...] = ()
    val_speakers: tuple[str, ...] = ()

    def record(self) -> SplitRecord:
        """The record the bundle and metrics.json carry."""
        return SplitRecord(kind=self.kind, description=self.description, n_train=len(self.train), n_val=len(self.val),
                           n_test=len(self.test), test_speakers=self.test_speakers, val_speakers=self.val_speakers)

    def to_dict(self) -> dict[str, Any]:
        return self.record().to_dict()


def natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def speakers_by_corpus(utterances: list[Utterance]) -> dict[str, list[str]]:
    missing = sorted({u.corpus for u in utterances if u.speaker is None})
    if missing:
        raise DatasetError(
            f"{', '.join(missing)}: file names carry no speaker, so a speaker-independent split is "
            "impossible; add a speaker column to a CSV manifest, or pass --split random (its scores "
            "are optimistic: the same voices are in train and test)"
        )
    grouped: dict[str, set[str]] = defaultdict(set)
    for u in utterances:
        grouped[u.corpus].add(str(u.speaker))  # every speaker is known here (checked above)
    return {corpus: sorted(speakers, key=natural_key) for corpus, speakers in grouped.items()}


def _tail_count(n: int, fraction: float, minimum_left: int) -> int:
    """How many of n speakers go to the held-out tail: round(n*fraction), at least 1 when possible."""
    if n <= minimum_left:
        return 0
    return min(n - minimum_left, max(1, int(round(n * fraction))))


def speaker_split(utterances: list[Utterance], test_speakers: list[str] | None = None,
                  val_speakers: list[str] | None = None, folds: int = 0, fold: int = 0,
                  validate: bool = True) -> Split:
    """Per corpus, the last fifth of the speakers (natural order) test, the last eighth of the rest
    validate; or the named speakers; or fold `fold` of `folds` contiguous speaker folds tests."""
    by_corpus = speakers_by_corpus(utterances)
    chosen_test: list[str] = []
    chosen_val: list[str] = []
    for speakers in by_corpus.values():
        if test_speakers:
            test = [s for s in speakers if _matches(s, test_speakers)]
        elif folds:
            test = [s for s in np.array_split(np.array(speakers, dtype=object), folds)[fold]]
        else:
            test = speakers[len(speakers) - _tail_count(len(speakers), TEST_FRACTION, 1):]
        development = [s for s in speakers if s not in test]
        if not validate:
            val = []
        elif val_speakers:
            val = [s for s in development if _matches(s, val_speakers)]
        else:
            val = development[len(development) - _tail_count(len(development), VAL_FRACTION_OF_DEV, 2):]
        chosen_test += test
        chosen_val += val
    if not chosen_test:
        raise DatasetError("the split left no test speaker (a corpus needs at least 2 speakers)")
    indices: dict[str, list[int]] = {"test": [], "val": [], "train": []}
    for i, u in enumerate(utterances):
        part = "test" if u.speaker in chosen_test else "val" if u.speaker in chosen_val else "train"
        indices[part].append(i)
    how = f"fold {fold + 1}/{folds} by speaker" if folds else "named speakers" if test_speakers else "last fifth of speakers"
    description = (f"speaker-independent ({how}): test {_short(chosen_test)}; "
                   f"validation {_short(chosen_val) or 'none'}; no speaker in two parts")
    return Split("speaker", description, tuple(indices["train"]), tuple(indices["val"]), tuple(indices["test"]),
                 tuple(chosen_test), tuple(chosen_val))


def _matches(speaker: str, wanted: list[str]) -> bool:
    """'ravdess:17' matches '17', 'ravdess:17' and (for zero-padded ids) '017'."""
    plain = speaker.split(":", 1)[-1]
    return any(w in (speaker, plain) or (w.isdigit() and plain.isdigit() and int(w) == int(plain)) for w in wanted)


def _short(speakers: list[str]) -> str:
    return ", ".join(speakers)


def random_split(utterances: list[Utterance], seed: int = 0, test_fraction: float = TEST_FRACTION,
                 val_fraction: float = 0.1, validate: bool = True) -> Split:
    """Stratified by label; the same speakers appear in every part, so scores are optimistic."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, u in enumerate(utterances):
        by_label[u.label].append(i)
    for members in by_label.values():
        order = rng.permutation(members).tolist()
        n_test = int(round(len(order) * test_fraction))
        n_val = int(round((len(order) - n_test) * val_fraction)) if validate else 0
        parts["test"] += order[:n_test]
        parts["val"] += order[n_test:n_test + n_val]
        parts["train"] += order[n_test + n_val:]
    description = (f"RANDOM stratified {100 - 100 * test_fraction:.0f}/{100 * test_fraction:.0f} split "
                   "(speakers shared between train and test: optimistic, not speaker-independent)")
    return Split("random", description, train=tuple(sorted(parts["train"])), val=tuple(sorted(parts["val"])),
                 test=tuple(sorted(parts["test"])))


def no_split(utterances: list[Utterance]) -> Split:
    """Final fit: every utterance trains and nothing is held out, so the run has no test score of
    its own; its estimate comes from held-out runs of the same recipe (`--estimate-from`)."""
    description = ("FINAL FIT on every utterance: no test set (scores on these speakers are not an estimate; "
                   "see the held-out estimate)")
    return Split("none", description, tuple(range(len(utterances))), (), ())
