"""Finding, labelling, loading and caching the utterances of one or more corpora."""
from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from edge.audio import AudioReadError, read_audio
from edge.discovery import (
    Dataset,
    DatasetError,
    Utterance,
    discover,
)
from edge.features import float_to_pcm16, pcm16_to_float
from edge.files import written_whole
from edge.plural import counted
from edge.windowing import TRIM_TOP_DB, trim_silence

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
    except Exception as error:  # noqa: BLE001 - one bad file never stops a training run
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
    print(f"warning: skipped {counted(len(dataset.skipped), 'file')}: {shown}{tail}", file=stream or sys.stderr)


def default_cache_dir() -> Path:
    return Path(os.environ.get("EDGE_SER_CACHE", Path.home() / ".cache" / "edge-ser"))
