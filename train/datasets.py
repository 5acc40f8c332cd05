"""Finding, labelling, loading and caching the utterances of one or more corpora."""
from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.audio import AudioReadError, is_audio_file, read_audio
from edge.corpora import LABEL_SYNONYMS, NAME_PARSERS, ParsedName
from edge.errors import EdgeSerError
from edge.features import float_to_pcm16, pcm16_to_float
from edge.files import written_whole
from edge.windowing import TRIM_TOP_DB, trim_silence

CORPUS_CHOICES = ("auto", *NAME_PARSERS, "csv")
CORPUS_LICENCES = {
    "ravdess": "CC BY-NC-SA 4.0 (Livingstone & Russo 2018, doi:10.1371/journal.pone.0196391)",
    "tess": "CC BY-NC-ND 4.0 (Dupuis & Pichora-Fuller 2010, doi:10.5683/SP2/E8H2MF)",
    "cremad": "Open Database License / Database Contents License (Cao et al. 2014)",
    "savee": "research use on registration with the University of Surrey (Haq & Jackson 2009)",
    "emodb": "see the distributor's terms (Burkhardt et al. 2005)",
    "folder": "unknown (user-supplied folder)",
    "csv": "unknown (user-supplied manifest)",
}
COMMERCIAL_USE_CORPORA = ("cremad",)  # the only licence here that allows commercial use (data README)


def model_licence(corpora: list[str]) -> str:
    """What a model trained on `corpora` inherits: their terms, and whether commercial use is allowed."""
    terms = "; ".join(f"{name}: {CORPUS_LICENCES.get(name, 'unknown')}" for name in corpora)
    if all(name in COMMERCIAL_USE_CORPORA for name in corpora):
        return f"commercial use allowed, with attribution ({terms})"
    return f"NON-COMMERCIAL: the training data's terms carry over ({terms})"


CACHE_VERSION = 3  # 2: silent and non-finite clips are skipped; 3: over-range float samples clipped
SHOW_SKIPPED = 5  # names listed in a warning; the rest are counted


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


def discover(root: Path, corpus: str = "auto") -> Dataset:
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
    name = detect_corpus(files) if corpus == "auto" else corpus
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


def combine(datasets: list[Dataset]) -> Dataset:
    combined = Dataset([])
    for dataset in datasets:
        combined.utterances += dataset.utterances
        combined.skipped += dataset.skipped
        combined.audio += dataset.audio
    return combined


def load_audio(dataset: Dataset, sample_rate: int, cache_dir: Path | None = None) -> Dataset:
    """Decode, downmix, resample and trim every utterance; unreadable files move to `skipped`."""
    key = _cache_key(dataset.utterances, sample_rate)
    cache_file = cache_dir / f"audio-{key}.npz" if cache_dir else None
    if cache_file and cache_file.exists():
        return _read_cache(cache_file, dataset)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(pool.map(lambda u: _load_one(u, sample_rate), dataset.utterances))
    loaded = Dataset([], list(dataset.skipped))
    for utterance, result in zip(dataset.utterances, results):
        if isinstance(result, str):
            loaded.skipped.append((utterance.path, result))
        else:
            loaded.utterances.append(utterance)
            loaded.audio.append(result)
    if not loaded.utterances:
        raise DatasetError("none of the listed audio files could be read")
    if cache_file:
        _write_cache(cache_file, loaded)
    return loaded


SILENCE_PEAK = 1 / 32768  # below one 16-bit step: no sound at all (CREMA-D 1076_MTI_SAD_XX is all zeros)


def _load_one(utterance: Utterance, sample_rate: int) -> np.ndarray | str:
    try:
        audio = read_audio(utterance.path, sample_rate)
    except AudioReadError as error:
        return str(error).split(": ", 1)[-1]
    except Exception as error:  # noqa: BLE001 - one bad file never stops a training run (issue 9)
        return f"cannot read: {type(error).__name__}: {error}"
    if float(np.max(np.abs(audio))) < SILENCE_PEAK:
        return "silent (no sample above one 16-bit step)"
    return trim_silence(audio)


def drop_conflicting_duplicates(dataset: Dataset) -> Dataset:
    """Identical recordings: keep the first of each group when they agree on the label, drop the whole
    group when they do not (CREMA-D ships three such pairs, e.g. 1006_TIE_HAP_XX = 1006_TIE_NEU_XX):
    a clip with two labels teaches nothing but noise. Compared by decoded audio, not file bytes: a
    re-encoded copy (Ogg streams carry a random serial number) differs in bytes, not in sound."""
    groups: dict[str, list[int]] = {}
    for i, audio in enumerate(dataset.audio):
        groups.setdefault(hashlib.sha256(np.ascontiguousarray(audio).tobytes()).hexdigest(), []).append(i)
    dropped: dict[int, str] = {}
    for members in (m for m in groups.values() if len(m) > 1):
        first = dataset.utterances[members[0]]
        conflict = len({dataset.utterances[i].label for i in members}) > 1
        for i in members if conflict else members[1:]:
            other = dataset.utterances[members[1] if i == members[0] else members[0]]
            dropped[i] = (f"same audio as {other.path.name} ({other.label}): ambiguous label" if conflict
                          else f"same audio as {first.path.name}")
    keep = [i for i in range(len(dataset.utterances)) if i not in dropped]
    skipped = dataset.skipped + [(dataset.utterances[i].path, why) for i, why in sorted(dropped.items())]
    return Dataset([dataset.utterances[i] for i in keep], skipped, [dataset.audio[i] for i in keep])


def _cache_key(utterances: list[Utterance], sample_rate: int) -> str:
    digest = hashlib.sha256(f"{CACHE_VERSION}|{sample_rate}|{TRIM_TOP_DB}".encode())
    for u in utterances:
        stat = u.path.stat() if u.path.exists() else None
        digest.update(f"{u.path}|{stat.st_size if stat else -1}|{stat.st_mtime_ns if stat else -1}\n".encode())
    return digest.hexdigest()[:20]


def _write_cache(cache_file: Path, dataset: Dataset) -> None:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    lengths = np.array([a.size for a in dataset.audio], dtype=np.int64)
    meta = {"paths": [str(u.path) for u in dataset.utterances], "skipped": [[str(p), why] for p, why in dataset.skipped]}
    save_npz_whole(cache_file, pcm=float_to_pcm16(np.concatenate(dataset.audio)), lengths=lengths, meta=json.dumps(meta))


def save_npz_whole(path: Path, **arrays: Any) -> None:
    """np.savez to `path` whole or not at all (runs side by side may write the same cache file)."""
    with written_whole(path) as file:
        np.savez(file, **arrays)


def _read_cache(cache_file: Path, dataset: Dataset) -> Dataset:
    with np.load(cache_file) as cached:
        meta = json.loads(str(cached["meta"]))
        audio = np.split(pcm16_to_float(cached["pcm"]), np.cumsum(cached["lengths"])[:-1])
    kept = set(meta["paths"])
    utterances = [u for u in dataset.utterances if str(u.path) in kept]
    return Dataset(utterances, [(Path(p), why) for p, why in meta["skipped"]], list(audio))


def load_corpora(roots: tuple[Path, ...], corpus: str, limit_per_corpus: int, sample_rate: int,
                 cache_dir: Path | None) -> Dataset:
    """Discover every root, keep an even slice of at most `limit_per_corpus` files of each, decode, combine,
    and warn once about the files that were skipped."""
    loaded = []
    for root in roots:
        found = discover(root, corpus)
        if limit_per_corpus and len(found.utterances) > limit_per_corpus:
            step = len(found.utterances) / limit_per_corpus
            found.utterances = [found.utterances[int(i * step)] for i in range(limit_per_corpus)]
        loaded.append(drop_conflicting_duplicates(load_audio(found, sample_rate, cache_dir)))
    dataset = combine(loaded)
    warn_skipped(dataset)
    return dataset


def warn_skipped(dataset: Dataset, stream=None) -> None:
    """One warning naming the first few skipped files and counting the rest."""
    if not dataset.skipped:
        return
    shown = "; ".join(f"{p.name} ({why})" for p, why in dataset.skipped[:SHOW_SKIPPED])
    more = len(dataset.skipped) - SHOW_SKIPPED
    tail = f"; and {more} more" if more > 0 else ""
    print(f"warning: skipped {len(dataset.skipped)} file(s): {shown}{tail}", file=stream or sys.stderr)


def default_cache_dir() -> Path:
    return Path(os.environ.get("EDGE_SER_CACHE", Path.home() / ".cache" / "edge-ser"))
