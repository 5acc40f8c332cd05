"""Finding the labelled clips of a data folder or manifest: a corpus by its file-name convention, a
folder per label, or a CSV manifest `path,label[,speaker]`. Pure Python (no audio is read here):
training (train/datasets.py) and on-device adaptation (edge/adapt.py) take the same DATA."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.audio import is_audio_file
from edge.corpora import AUTO_CORPUS, CORPUS_CHOICES, LABEL_SYNONYMS, NAME_PARSERS, ParsedName
from edge.errors import EdgeSerError


class DatasetError(EdgeSerError):
    """A data folder that cannot be used at all (missing, empty, unrecognised)."""


@dataclass(frozen=True)
class Utterance:
    path: Path
    label: str
    speaker: str | None
    corpus: str


@dataclass
class Dataset:
    utterances: list[Utterance]
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (file, why)
    audio: list[np.ndarray] = field(default_factory=list)  # trimmed float32, aligned with utterances

    @property
    def corpora(self) -> list[str]:
        return sorted({u.corpus for u in self.utterances})

    @property
    def labels(self) -> list[str]:
        return sorted({u.label for u in self.utterances})


def discover(root: Path, corpus: str = AUTO_CORPUS) -> Dataset:
    """List the labelled utterances under `root` (a folder, or a CSV manifest)."""
    root = Path(root)
    if corpus not in CORPUS_CHOICES:
        raise DatasetError(f"unknown corpus {corpus!r}; choose one of {', '.join(CORPUS_CHOICES)}")
    if not root.exists():
        raise DatasetError(f"{root} does not exist")
    if root.is_file() or corpus == "csv":
        return discover_manifest(root)
    files = sorted(p for p in root.rglob("*") if is_audio_file(p))
    if not files:
        raise DatasetError(f"no audio files (.wav, .flac, ...) found under {root}")
    name = detect_corpus(files) if corpus == AUTO_CORPUS else corpus
    if name is None:
        raise DatasetError(
            f"cannot tell which corpus {root} holds: no file name follows the RAVDESS, TESS, CREMA-D, "
            "SAVEE or EmoDB convention and no folder is named after an emotion (or use a CSV manifest)"
        )
    return _label_files(files, name, root)


def detect_corpus(files: list[Path]) -> str | None:
    """The naming convention that most of the files follow (generic label folders last)."""
    sample = files[:: max(1, len(files) // 300)]
    counts = {name: sum(parser(f) is not None for f in sample) for name, parser in NAME_PARSERS.items()}
    best = max(counts, key=lambda name: (counts[name], name != "folder"))
    return best if counts[best] else None


def _label_files(files: list[Path], corpus: str, root: Path) -> Dataset:
    parser = NAME_PARSERS[corpus]
    dataset = Dataset([])
    for path in files:
        parsed: ParsedName | None = parser(path)
        if parsed is None:
            dataset.skipped.append((path, f"name does not follow the {corpus} convention"))
        else:
            dataset.utterances.append(Utterance(path, parsed.label, parsed.speaker, corpus))
    if not dataset.utterances:
        raise DatasetError(f"none of the {len(files)} audio files under {root} follows the {corpus} naming convention")
    return dataset


def discover_manifest(manifest: Path) -> Dataset:
    """CSV with columns `path,label[,speaker]`; relative paths are relative to the CSV's folder."""
    try:
        with open(manifest, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"cannot read manifest {manifest}: {error}") from None
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise DatasetError(f"manifest {manifest} needs a header with at least the columns path,label")
    dataset = Dataset([])
    corpus = "csv"
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        text = row["path"] or ""
        if "\x00" in text or not text.strip():
            dataset.skipped.append((manifest, f"line {number}: {'a NUL byte in' if text.strip() else 'no'} path"))
            continue
        path = (manifest.parent / text).resolve()
        label = LABEL_SYNONYMS.get((row["label"] or "").strip().lower())
        if label is None:
            dataset.skipped.append((path, f"unknown label {row['label']!r}"))
            continue
        speaker = (row.get("speaker") or "").strip() or None
        dataset.utterances.append(Utterance(path, label, f"{corpus}:{speaker}" if speaker else None, corpus))
    if not dataset.utterances:
        raise DatasetError(f"manifest {manifest} lists no usable file")
    return dataset
