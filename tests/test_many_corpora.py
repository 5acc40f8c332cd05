"""Several corpora in one model: every audio format, CREMA-D names and quirks, the masked loss,
balanced sampling, scores per label space, the simulated rooms and the cross-corpus matrix."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from edge.audio import AUDIO_SUFFIXES, is_audio_file
from edge.cli import app
from tests.conftest import emotional_tone, write_audio

pytestmark = pytest.mark.host  # needs the host side (train/convert, TensorFlow)

CREMAD_CODES = ["NEU", "HAP", "SAD", "ANG"]  # the same four emotions as conftest.RAVDESS_CODES


def write_cremad_like(root: Path, actors=range(1001, 1006), sentences=("DFA", "IEO")) -> Path:
    """CREMA-D names (actor_sentence_emotion_level) as Ogg Opus, as in ../shared/data/crema-d."""
    for actor in actors:
        for e, code in enumerate(CREMAD_CODES):
            for s, sentence in enumerate(sentences):
                signal = emotional_tone(e, seed=actor * 7 + s)
                path = root / "AudioWAV" / f"{actor}_{sentence}_{code}_XX.ogg"
                path.parent.mkdir(parents=True, exist_ok=True)
                soundfile.write(str(path), signal, 16000, format="OGG", subtype="OPUS")
    return root


# ------------------------------------------------------------------ formats and names (no TensorFlow)
@pytest.mark.parametrize("suffix,options", [
    (".wav", {}), (".flac", {}), (".ogg", {"format": "OGG", "subtype": "OPUS"}),
    (".opus", {"format": "OGG", "subtype": "OPUS"}), (".oga", {"format": "OGG", "subtype": "VORBIS"}),
    (".mp3", {"format": "MP3"}), (".aiff", {}), (".au", {}), (".caf", {}), (".w64", {}), (".rf64", {}),
])
def test_every_format_soundfile_reads_is_picked_and_classified(tmp_path, suffix, options):
    from edge.classify import expand_audio_paths

    path = tmp_path / f"clip{suffix.upper() if suffix == '.wav' else suffix}"
    soundfile.write(str(path), emotional_tone(0), 16000, **options)
    assert path.suffix.lower() in AUDIO_SUFFIXES and is_audio_file(path)
    assert expand_audio_paths([tmp_path]) == [path]


def test_non_audio_hidden_and_folders_are_not_audio(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "data.mat").write_bytes(b"x")
    (tmp_path / "folder.wav").mkdir()
    write_audio(tmp_path / ".hidden.wav", emotional_tone(0))
    assert not any(is_audio_file(p) for p in tmp_path.iterdir())


def test_cremad_names_are_detected_and_parsed(tmp_path):
    from edge.discovery import discover

    root = write_cremad_like(tmp_path / "crema", actors=(1001, 1091))
    found = discover(root)
    assert {u.corpus for u in found.utterances} == {"cremad"}
    assert {u.speaker for u in found.utterances} == {"cremad:1001", "cremad:1091"}
    assert {u.label for u in found.utterances} == {"neutral", "happy", "sad", "angry"}


def test_silent_clip_and_conflicting_duplicates_are_skipped_with_reasons(tmp_path):
    """CREMA-D's quirks: an all-zero clip, and the same recording under two emotions (dropped, both);
    a duplicate under the same emotion keeps one copy."""
    from train.datasets import load_corpora

    root = write_cremad_like(tmp_path / "crema", actors=(1001, 1002))
    audio_dir = root / "AudioWAV"
    soundfile.write(str(audio_dir / "1076_MTI_SAD_XX.ogg"), np.zeros(16000), 16000, format="OGG", subtype="OPUS")
    same = emotional_tone(1, seed=99)
    for name in ("1006_TIE_HAP_XX", "1006_TIE_NEU_XX", "1007_TIE_HAP_XX", "1007_TIE_HAP_LO"):
        soundfile.write(str(audio_dir / f"{name}.ogg"), same if name.startswith("1006") else same[::-1].copy(),
                        16000, format="OGG", subtype="OPUS")
    dataset = load_corpora((root,), "auto", 0, 16000, None)
    reasons = {p.name: why for p, why in dataset.skipped}
    assert reasons["1076_MTI_SAD_XX.ogg"].startswith("silent")
    assert "ambiguous label" in reasons["1006_TIE_HAP_XX.ogg"] and "ambiguous label" in reasons["1006_TIE_NEU_XX.ogg"]
    assert reasons["1007_TIE_HAP_XX.ogg"] == "same audio as 1007_TIE_HAP_LO.ogg"  # the first in name order stays
    kept = {u.path.name for u in dataset.utterances}
    assert "1007_TIE_HAP_LO.ogg" in kept and len(kept) == 16 + 1
    assert len(dataset.audio) == len(dataset.utterances)


# ------------------------------------------------------------------ training parts (TensorFlow)
def test_balanced_sampling_draws_labels_equally_within_each_corpus():
    from train.batches import epoch_order
    from train.config import TrainConfig

    corpora = np.array(["a"] * 900 + ["b"] * 100)
    targets = np.array([0] * 800 + [1] * 100 + [0] * 50 + [2] * 50)  # corpus a: 8:1; corpus b: 1:1
    by_clips = TrainConfig(max_clips_per_epoch=0, corpus_share="clips")
    order = np.concatenate([epoch_order(corpora, targets, by_clips, e) for e in range(20)])
    in_a = corpora[order] == "a"
    assert in_a.mean() == pytest.approx(0.9, abs=0.01)  # each corpus keeps its share
    assert np.mean(targets[order][in_a] == 1) == pytest.approx(0.5, abs=0.02)  # labels equal within it
    by_sqrt = np.concatenate([epoch_order(corpora, targets, TrainConfig(max_clips_per_epoch=0), e) for e in range(20)])
    assert np.mean(corpora[by_sqrt] == "a") == pytest.approx(30 / 40, abs=0.01)  # the default: sqrt(900) : sqrt(100)
    natural = epoch_order(corpora, targets, TrainConfig(sampling="natural"), 0)
    assert sorted(natural) == list(range(1000))  # one shuffled pass


def test_an_epoch_is_capped_in_clips():
    from train.batches import epoch_order
    from train.config import TrainConfig

    corpora, targets = np.array(["a"] * 10000), np.arange(10000) % 4
    assert len(epoch_order(corpora, targets, TrainConfig(max_clips_per_epoch=4000), 0)) == 4000
    assert len(epoch_order(corpora[:300], targets[:300], TrainConfig(max_clips_per_epoch=4000), 0)) == 300


def test_masked_loss_ignores_labels_the_corpus_does_not_define():
    from train.config import TrainConfig
    from train.losses import loss_function

    probabilities = np.array([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]], dtype=np.float32)
    # [target, partner, weight, mask]: target 0, not mixed; the first clip's corpus lacks label 2
    y = np.array([[0, 0, 1, 1, 1, 0], [0, 0, 1, 1, 1, 1]], dtype=np.float32)
    masked = np.asarray(loss_function(TrainConfig(loss="masked", label_smoothing=0))(y, probabilities))
    assert masked[0] == pytest.approx(-np.log(0.2 / 0.5), rel=1e-5)  # renormalised over labels 0 and 1
    assert masked[1] == pytest.approx(-np.log(0.2), rel=1e-5)  # every label defined: plain cross-entropy
    softmax = loss_function(TrainConfig(loss="softmax", label_smoothing=0))
    assert np.asarray(softmax(y, probabilities)) == pytest.approx([-np.log(0.2)] * 2, rel=1e-5)


def test_label_smoothing_spreads_the_target_over_the_corpus_labels_only():
    from train.config import TrainConfig
    from train.losses import loss_function

    probabilities = np.array([[0.2, 0.3, 0.5]], dtype=np.float32)
    y = np.array([[0, 0, 1, 1, 1, 0]], dtype=np.float32)  # target 0; the corpus defines labels 0 and 1
    smoothed = np.asarray(loss_function(TrainConfig(label_smoothing=0.1))(y, probabilities))[0]
    q = np.array([0.2, 0.3]) / 0.5  # renormalised over the two defined labels
    assert smoothed == pytest.approx(0.9 * -np.log(q[0]) + 0.1 * -np.log(q).mean(), rel=1e-5)
    plain = np.asarray(loss_function(TrainConfig(loss="softmax", label_smoothing=0.1))(y, probabilities))[0]
    assert plain == pytest.approx(0.9 * -np.log(0.2) + 0.1 * -np.log([0.2, 0.3, 0.5]).mean(), rel=1e-5)


def test_mixup_loss_weighs_both_targets():
    from train.config import TrainConfig
    from train.losses import loss_function

    probabilities = np.array([[0.2, 0.3, 0.5]], dtype=np.float32)
    y = np.array([[0, 1, 0.7, 1, 1, 0]], dtype=np.float32)  # 70 % label 0, 30 % label 1, over labels 0-1
    expected = 0.7 * -np.log(0.2 / 0.5) + 0.3 * -np.log(0.3 / 0.5)
    assert np.asarray(loss_function(TrainConfig(label_smoothing=0))(y, probabilities))[0] == pytest.approx(expected, rel=1e-5)


def test_mixup_pairs_windows_within_their_corpus():
    from train.batches import mixup_partners

    corpora = np.array(["a", "b", "a", "b", "a", "c"])
    partners, weights = mixup_partners(corpora, 0.4, np.random.default_rng(0))
    assert np.array_equal(corpora[partners], corpora)  # never across corpora (label masks differ)
    assert partners[5] == 5 and np.all((weights >= 0.5) & (weights <= 1))  # a lone corpus mixes with itself
    off, unmixed = mixup_partners(corpora, 0.0, np.random.default_rng(0))
    assert np.array_equal(off, np.arange(6)) and np.all(unmixed == 1)


def test_restricted_metrics_score_within_a_label_subset():
    from train.evaluate import restricted_metrics

    labels = ["neutral", "calm", "happy"]
    probabilities = np.array([[0.4, 0.5, 0.1], [0.1, 0.2, 0.7], [0.3, 0.6, 0.1]])
    scores = restricted_metrics(np.array([0, 2, 1]), probabilities, labels, ["neutral", "happy"])
    assert scores is not None and scores.labels == ["neutral", "happy"] and scores.n == 2  # the calm clip is left out
    assert scores.accuracy == 1.0  # calm's 0.5 no longer wins the first clip
    assert restricted_metrics(np.array([1]), probabilities[:1], labels, ["neutral"]) is None


def test_rooms_are_reproducible_band_limited_and_reverberant():
    from scipy.signal import welch

    from train.rooms import RoomCondition, rerecord_all, room_impulse_responses

    condition = RoomCondition()
    responses = room_impulse_responses(condition, 16000, count=2)
    assert all(r.size > 0.1 * 16000 for r in responses)  # RT60 >= 0.3 s leaves a tail
    rng = np.random.default_rng(0)
    signal = (0.1 * rng.standard_normal(32000)).astype(np.float32)
    first = rerecord_all([signal], 16000, responses, condition)[0]
    assert np.array_equal(first, rerecord_all([signal], 16000, responses, condition)[0])
    frequencies, power = welch(first, 16000)
    assert power[frequencies > 6000].mean() < 0.05 * power[(frequencies > 500) & (frequencies < 3000)].mean()


def test_room_augmentation_changes_the_window_and_keeps_its_length():
    from edge.features import FeatureParams
    from train.augment import simulated_room
    from train.config import AugmentConfig

    rng = np.random.default_rng(1)
    signal = emotional_tone(0, seconds=2.0)
    wet = simulated_room(signal, 16000, AugmentConfig(room_probability=1.0), rng)
    assert wet.shape == signal.shape and wet.dtype == np.float32 and not np.allclose(wet, signal)
    assert np.max(np.abs(wet)) == pytest.approx(np.max(np.abs(signal)), rel=1e-4)
    assert FeatureParams().sample_rate == 16000


@pytest.fixture(scope="module")
def two_corpus_run(tmp_path_factory):
    """A real `edge-ser train` on a RAVDESS-named and a CREMA-D-named generated corpus (.wav + .ogg)."""
    from tests.conftest import RAVDESS_CODES

    root = tmp_path_factory.mktemp("corpora")
    for actor in range(1, 6):
        for e, code in enumerate(RAVDESS_CODES + ["02"]):  # + calm, which CREMA-D lacks
            for statement in (1, 2):
                write_audio(root / "ravdess" / f"Actor_{actor:02d}" / f"03-01-{code}-01-0{statement}-01-{actor:02d}.wav",
                            emotional_tone(e % 4, seed=actor * 10 + statement + 100 * e))
    write_cremad_like(root / "crema", actors=range(1001, 1006))
    runs = tmp_path_factory.mktemp("runs")
    args = ["train", str(root / "ravdess"), str(root / "crema"), "--runs-dir", str(runs), "--name", "both",
            "--epochs", "3", "--lstm-units", "8", "--conv-filters", "8", "--batch-size", "8",
            "--room-probability", "0.5", "--mixup", "0.4", "--label-smoothing", "0.1", "--dynamic-range-db", "50"]
    result = CliRunner().invoke(app, args)
    return result, root, runs / "both"


def test_two_corpora_train_one_model_scored_per_label_space(two_corpus_run):
    result, _, run = two_corpus_run
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["per_corpus"]["ravdess"]["labels"] == ["neutral", "calm", "happy", "sad", "angry"]
    assert metrics["per_corpus"]["cremad"]["labels"] == ["neutral", "happy", "sad", "angry"]
    assert metrics["shared_labels"]["ravdess"]["labels"] == ["neutral", "happy", "sad", "angry"]
    bundle = json.loads((run / "bundle.json").read_text())
    assert bundle["label_sources"]["calm"] == ["ravdess"]
    assert bundle["label_sources"]["angry"] == ["cremad", "ravdess"]
    assert bundle["licence"].startswith("NON-COMMERCIAL")
    assert bundle["train_config"]["loss"] == "masked" and bundle["train_config"]["augment"]["room_probability"] == 0.5
    assert bundle["train_config"]["mixup"] == 0.4 and bundle["train_config"]["corpus_share"] == "sqrt"
    assert bundle["train_config"]["label_smoothing"] == 0.1
    assert bundle["feature_params"]["dynamic_range_db"] == 50  # the device floors its windows as training did
    assert "cremad: accuracy" in result.output and "six shared labels" in result.output


def test_cross_corpus_matrix_names_its_test_speakers(two_corpus_run, tmp_path):
    from train.crosscorpus import CrossCorpusRequest, cross_corpus

    _, root, run = two_corpus_run  # trained with --dynamic-range-db 50: scored with its own features
    request = CrossCorpusRequest(runs=(run,), data=(root / "ravdess", root / "crema"), out_dir=tmp_path, room_count=2)
    report = cross_corpus(request)
    assert report["tests"]["cremad"]["speakers"] == ["cremad:1005"]
    assert report["tests"]["ravdess"]["speakers"] == ["ravdess:05"]
    cell = report["rows"][0]["cells"]["cremad"]
    assert cell["seen_corpus"] and not cell["seen_speakers"] and cell["room"]["n"] == 8
    assert 0 <= cell["clean"]["unweighted_accuracy"] <= 1
    # a device picks among all the network's labels: never better than the choice among the six alone
    assert 0 <= cell["clean"]["device_unweighted_accuracy"] <= cell["clean"]["unweighted_accuracy"]
    for name in ("crosscorpus.json", "crosscorpus.md", "crosscorpus.png"):
        assert (tmp_path / name).is_file()
    report_md = (tmp_path / "crosscorpus.md").read_text()
    assert "cremad: 1 speakers, 8 clips (1005)" in report_md
    assert "## As a device reports it" in report_md and report_md.count("| both | cremad + ravdess |") == 2


def test_a_run_that_heard_the_test_speakers_is_marked():
    from edge.bundle import Bundle, CorpusInfo, SplitRecord
    from edge.features import FeatureParams
    from train.crosscorpus import CorpusTest, heard_speakers

    def bundle(corpus: str, kind: str, *test_speakers: str) -> Bundle:
        return Bundle(labels=("a", "b"), params=FeatureParams(), corpora={corpus: CorpusInfo(files=1, speakers=1, licence="x")},
                      split=SplitRecord(kind=kind, description=kind, test_speakers=test_speakers))

    test = CorpusTest("ravdess", (0, 1), ("ravdess:17", "ravdess:18"))
    held_out = bundle("ravdess", "speaker", "ravdess:17", "ravdess:18")
    other_fold = bundle("ravdess", "speaker", "ravdess:01")
    final_fit = bundle("ravdess", "none")
    other_corpus = bundle("cremad", "none")
    assert [heard_speakers(b, test) for b in (held_out, other_fold, final_fit, other_corpus)] == [False, True, True, False]


def test_open_licence_only_for_commercial_corpora():
    from train.datasets import model_licence

    assert model_licence(["cremad"]).startswith("commercial use allowed")
    assert model_licence(["cremad", "ravdess"]).startswith("NON-COMMERCIAL")


def test_crosscorpus_refuses_a_folder_that_is_not_a_run(tmp_path):
    result = CliRunner().invoke(app, ["crosscorpus", str(tmp_path), "--data", str(tmp_path)])
    assert result.exit_code == 1 and "not a training run folder" in result.output


def test_device_ua_counts_a_label_outside_the_six_shared_as_wrong():
    from train.crosscorpus import device_ua

    labels = ["neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise"]
    y = np.array([0, 0, 2, 2])  # two neutral clips, two happy ones
    probabilities = np.eye(8)[[1, 0, 2, 7]] * 0.6 + 0.05  # called calm, neutral, happy, surprise
    assert device_ua(y, probabilities, labels) == 0.5  # each label's recall: 1 of 2
