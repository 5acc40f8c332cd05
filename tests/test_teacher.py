"""The distillation teacher (train.teacher, train.distill): its install check, Whisper's log-mel features, the
per-corpus cache of clip embeddings (resumable, verified) with a tiny stand-in encoder, the out-of-fold head, and
the real Whisper encoder where `make teacher` installed it (skipped otherwise)."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.discovery import Dataset, Utterance
from train import teacher
from train.distill import masked_softmax, out_of_fold_probabilities
from train.teacher import (
    FEATURES,
    ModelFiles,
    TeacherError,
    clip_embedding,
    corpus_cache_file,
    join_parts,
    teacher_embeddings,
    whisper_log_mel,
)

pytestmark = pytest.mark.host


class LinearEncoder:
    """A stand-in teacher with the real one's interface: a fixed random linear map of the log-mel bands,
    every second frame (the encoder's stride 2). Counts its calls; can fail after a number of them."""

    def __init__(self, dim: int = 6, seed: int = 0, fail_after: int | None = None) -> None:
        self.weights = np.random.default_rng(seed).standard_normal((FEATURES.n_mels, dim)).astype(np.float32)
        self.identity = {"model": "linear stand-in", "seed": seed, "dim": dim}
        self.calls, self.fail_after = 0, fail_after

    def encode(self, log_mel: np.ndarray) -> np.ndarray:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt  # as when the user stops a long caching run
        self.calls += 1
        return log_mel[:, ::2].T @ self.weights


def tiny_corpus(root: Path, clips: int = 7, seed: int = 0) -> Dataset:
    """RAVDESS-named clips of noise bursts under `root` (two actors): the audio as training holds it."""
    rng = np.random.default_rng(seed)
    utterances, audio = [], []
    for n in range(clips):
        actor = 1 + n % 2
        path = root / f"Actor_{actor:02d}" / f"03-01-0{1 + n % 8}-01-01-0{1 + n // 8}-{actor:02d}.flac"
        utterances.append(Utterance(path, "neutral", f"ravdess:{actor:02d}", "ravdess"))
        audio.append((0.1 * rng.standard_normal(8000 + 800 * n)).astype(np.float32))
    return Dataset(utterances, [], audio)


def test_log_mel_is_whispers_front_end(tmp_path: Path):
    """80 Slaney mel bands of a centred 400-point STFT every 10 ms (librosa's own STFT as the reference),
    log10 floored 8 decades below the peak, (x + 4) / 4, an even number of frames."""
    import librosa

    audio = (0.1 * np.random.default_rng(1).standard_normal(16000 + 333)).astype(np.float32)
    ours = whisper_log_mel(audio)
    power = np.abs(librosa.stft(audio, n_fft=400, hop_length=160, window="hann", center=True, pad_mode="reflect")) ** 2
    mel = librosa.filters.mel(sr=16000, n_fft=400, n_mels=80, htk=False, norm="slaney") @ power[:, :-1]
    reference = np.log10(np.maximum(mel, 1e-10))
    reference = (np.maximum(reference, reference.max() - 8) + 4) / 4
    assert ours.shape == (80, 102)  # 16333 samples: 102 frames (the STFT's 103rd dropped), even
    assert np.abs(ours - reference[:, :102]).max() < 1e-4
    assert whisper_log_mel(np.zeros(10, np.float32)).shape[1] % 2 == 0  # a clip shorter than a frame still encodes
    assert whisper_log_mel(np.zeros(16000 * 31, np.float32)).shape[1] == FEATURES.max_frames  # the encoder's 30 s


def test_embedding_is_mean_and_std_of_the_states():
    encoder = LinearEncoder()
    audio = np.random.default_rng(2).standard_normal(12000).astype(np.float32)
    states = encoder.encode(whisper_log_mel(audio))
    assert np.allclose(clip_embedding(encoder, audio), np.concatenate([states.mean(0), states.std(0)]), atol=1e-5)


def test_cache_is_computed_once_and_read_back(tmp_path: Path):
    dataset = tiny_corpus(tmp_path / "ravdess")
    first = LinearEncoder()
    computed = teacher_embeddings(dataset, range(7), [tmp_path / "ravdess"], first, cache_root=tmp_path / "cache")
    assert first.calls == 7 and computed.shape == (7, 12)
    again = LinearEncoder()
    read = teacher_embeddings(dataset, [6, 0, 3], [tmp_path / "ravdess"], again, cache_root=tmp_path / "cache")
    assert again.calls == 0
    assert np.array_equal(read, computed[[6, 0, 3]])
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [corpus_cache_file(tmp_path / "ravdess", "ravdess").name]


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(teacher, "SAVE_EVERY", 2)
    dataset, roots, cache = tiny_corpus(tmp_path / "ravdess"), [tmp_path / "ravdess"], tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        teacher_embeddings(dataset, range(7), roots, LinearEncoder(fail_after=5), cache_root=cache)
    resumed = LinearEncoder()
    embeddings = teacher_embeddings(dataset, range(7), roots, resumed, cache_root=cache)
    assert resumed.calls == 3  # 4 were saved (every 2), the 5th was lost with the interruption
    assert np.allclose(embeddings, teacher_embeddings(dataset, range(7), roots, LinearEncoder(), cache_root=tmp_path / "b"))
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]  # no half-written file left


def test_other_settings_or_changed_audio_recompute(tmp_path: Path, capsys):
    dataset, roots, cache = tiny_corpus(tmp_path / "ravdess"), [tmp_path / "ravdess"], tmp_path / "cache"
    teacher_embeddings(dataset, range(7), roots, LinearEncoder(), cache_root=cache)
    other_teacher = LinearEncoder(seed=1)
    teacher_embeddings(dataset, range(7), roots, other_teacher, cache_root=cache)
    assert other_teacher.calls == 7 and "other settings" in capsys.readouterr().err
    dataset.audio[2] = dataset.audio[2] * 0.5  # the clip changed (re-encoded, re-trimmed): its entry is stale
    same_teacher = LinearEncoder(seed=1)
    teacher_embeddings(dataset, range(7), roots, same_teacher, cache_root=cache)
    assert same_teacher.calls == 1


def test_an_unreadable_cache_is_recomputed(tmp_path: Path, capsys):
    dataset, roots, cache = tiny_corpus(tmp_path / "ravdess"), [tmp_path / "ravdess"], tmp_path / "cache"
    cache.mkdir()
    corpus_cache_file(roots[0], "ravdess", cache).write_bytes(b"not an npz")
    encoder = LinearEncoder()
    teacher_embeddings(dataset, range(7), roots, encoder, cache_root=cache)
    assert encoder.calls == 7 and "unreadable teacher cache" in capsys.readouterr().err


def test_joined_parts_are_checked_and_a_mismatch_writes_nothing(tmp_path: Path):
    parts = [tmp_path / "model.bin.part1", tmp_path / "model.bin.part2"]
    parts[0].write_bytes(b"half one, ")
    parts[1].write_bytes(b"half two")
    whole = b"half one, half two"
    right = ModelFiles(("a", "b"), len(whole), hashlib.sha256(whole).hexdigest(), ())
    join_parts(parts, tmp_path / "model.bin", right)
    assert (tmp_path / "model.bin").read_bytes() == whole
    wrong = ModelFiles(("a", "b"), len(whole), "0" * 64, ())
    with pytest.raises(TeacherError, match="not the teacher's"):
        join_parts(parts, tmp_path / "other.bin", wrong)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin", "model.bin.part1", "model.bin.part2"]


def test_missing_packages_are_a_clear_error(tmp_path: Path):
    result = subprocess.run([sys.executable, "-c", "import sys; from train import teacher; "
                             "teacher.PUBLICATIONS = (teacher.ModelFiles(('no_such_a', 'no_such_b'), 1, '0', ()),); "
                             "sys.exit(teacher.main(['install']))"], capture_output=True, text=True,
                            env={"EDGE_SER_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}, cwd=Path(__file__).parents[1])
    assert result.returncode == 1
    assert result.stderr.startswith("error: the teacher's model parts are not installed: run `make teacher`")
    with pytest.raises(TeacherError, match="no intact teacher model"):
        teacher.WhisperEncoder(tmp_path)  # no model.bin there


def test_out_of_fold_soft_labels_never_see_their_own_speaker():
    """A clip's soft labels come from heads fitted without its speaker: relabelling speaker 0's clips changes
    nothing in speaker 0's soft labels (but does elsewhere)."""
    rng = np.random.default_rng(0)
    speakers = np.repeat([f"s{n}" for n in range(6)], 30)
    targets = np.tile(np.arange(3), 60)
    embeddings = rng.standard_normal((180, 8)) + np.eye(3, 8)[targets] * 2
    masks = np.ones((180, 4), np.float32)
    masks[:, 3] = 0  # a label this corpus does not define
    soft = out_of_fold_probabilities(embeddings, targets, speakers, masks)
    relabelled = targets.copy()
    relabelled[speakers == "s0"] = (relabelled[speakers == "s0"] + 1) % 3
    again = out_of_fold_probabilities(embeddings, relabelled, speakers, masks)
    assert np.allclose(soft[speakers == "s0"], again[speakers == "s0"])
    assert not np.allclose(soft[speakers != "s0"], again[speakers != "s0"])
    assert np.allclose(soft.sum(1), 1) and not soft[:, 3].any()
    assert (soft.argmax(1) == targets).mean() > 0.8  # the head has learnt the labels on other speakers


def test_masked_softmax_renormalises_over_the_mask_and_temperature_softens():
    logits = np.array([[2.0, 0.0, 5.0, -1.0]])
    mask = np.array([[1, 1, 0, 1]], np.float32)
    sharp, soft = masked_softmax(logits, mask, 1.0), masked_softmax(logits, mask, 3.0)
    assert sharp[0, 2] == 0 and np.isclose(sharp.sum(), 1)
    assert np.allclose(sharp[0, [0, 1, 3]], np.exp([2, 0, -1]) / np.exp([2, 0, -1]).sum())
    assert soft[0, 0] < sharp[0, 0] and soft[0, 3] > sharp[0, 3]


@pytest.fixture(scope="module")
def whisper():
    pytest.importorskip("ctranslate2")
    try:
        return teacher.WhisperEncoder()
    except TeacherError as error:
        pytest.skip(f"the teacher is not installed ({error})")


def test_the_real_teacher_hears_words_in_these_features(whisper, tmp_path: Path):
    """Whisper base, fed this module's features at the clip's own length, transcribes a synthetic sentence:
    the features are the ones it was trained on. The encoder gives 50 frames a second of 512 values."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (make sysdeps)")
    from edge.audio import read_audio

    subprocess.run(["espeak-ng", "-w", str(tmp_path / "s.wav"), "The quick brown fox jumps over the lazy dog."],
                   check=True, timeout=60)
    log_mel = whisper_log_mel(read_audio(tmp_path / "s.wav", 16000))
    states = whisper.encode(log_mel)
    assert states.shape == (log_mel.shape[1] // 2, 512)
    prompt = ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
    features = whisper.ctranslate2.StorageView.from_array(np.ascontiguousarray(log_mel[None]))
    text = "".join(whisper.model.generate(features, [prompt], beam_size=1)[0].sequences[0]).replace("\u0120", " ")
    assert "quick brown fox" in text.lower() and "lazy dog" in text.lower()


def test_head_scores_a_runs_test_speakers_per_corpus(tmp_path: Path, monkeypatch, capsys):
    """python -m train.distill: the head fitted on a split's training speakers, scored on its test speakers,
    over the corpus's own labels (here tones whose label the stand-in teacher can hear)."""
    from tests.support.data import emotional_tone, write_audio
    from train import distill

    monkeypatch.setenv("EDGE_SER_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "ravdess"
    for actor in range(1, 5):
        for n, emotion in enumerate(("01", "03", "04") * 4):
            label = ("01", "03", "04").index(emotion)
            write_audio(root / f"Actor_{actor:02d}" / f"03-01-{emotion}-01-0{1 + n % 2}-0{1 + n // 6}-{actor:02d}.wav",
                        emotional_tone(label, seconds=1.0, seed=actor * 100 + n))
    scores = distill.head_scores([root], folds=2, fold=0, encoder=LinearEncoder(dim=16))
    ravdess = scores["per_corpus"]["ravdess"]
    assert ravdess["n"] == 24 and ravdess["labels"] == ["neutral", "happy", "sad"]
    assert ravdess["unweighted_accuracy"] > 0.5  # chance is 1/3: the head hears the tones through the stand-in
    assert "fold 1/2" in scores["split"]
