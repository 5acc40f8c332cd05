"""Labels and speakers from the public corpora's file names; discovery, skipping and errors."""
from pathlib import Path

import numpy as np
import pytest

from edge.corpora import parse_cremad, parse_emodb, parse_label_folder, parse_ravdess, parse_savee, parse_tess
from edge.discovery import DatasetError, discover
from tests.support.data import emotional_tone, real_corpus, write_audio
from train.datasets import load_audio, save_npz_whole

pytestmark = pytest.mark.host  # needs the host side (train/convert, TensorFlow)


@pytest.mark.parametrize("parser, path, label, speaker", [
    (parse_ravdess, "Actor_17/03-01-06-02-01-02-17.flac", "fear", "ravdess:17"),
    (parse_ravdess, "03-01-02-01-01-01-04.wav", "calm", "ravdess:04"),
    (parse_tess, "OAF_Fear/OAF_food_fear.flac", "fear", "tess:OAF"),
    (parse_tess, "YAF_pleasant_surprised/YAF_back_ps.wav", "surprise", "tess:YAF"),
    (parse_tess, "OAF_neutral/OA_bite_neutral.flac", "neutral", "tess:OAF"),  # misspelt prefix
    (parse_cremad, "AudioWAV/1001_DFA_ANG_XX.wav", "angry", "cremad:1001"),
    (parse_cremad, "1091_WSI_FEA_HI.wav", "fear", "cremad:1091"),
    (parse_savee, "ALL/DC_sa03.wav", "sad", "savee:DC"),
    (parse_savee, "AudioData/KL/su12.wav", "surprise", "savee:KL"),
    (parse_savee, "JE_a01.wav", "angry", "savee:JE"),
    (parse_emodb, "wav/03a01Fa.wav", "happy", "emodb:03"),
    (parse_emodb, "16b10Lb.wav", "boredom", "emodb:16"),
    (parse_emodb, "11a02Ac.wav", "fear", "emodb:11"),
    (parse_label_folder, "data/Fearful/clip1.wav", "fear", None),
])
def test_names_parse_to_canonical_labels(parser, path, label, speaker):
    parsed = parser(Path(path))
    assert (parsed.label, parsed.speaker) == (label, speaker)


@pytest.mark.parametrize("parser, path", [
    (parse_ravdess, "03-01-09-01-01-01-01.wav"),  # no emotion 09
    (parse_ravdess, "my_recording.wav"),
    (parse_tess, "XYZ_word_happy.wav"),
    (parse_cremad, "1001_DFA_XXX_XX.wav"),
    (parse_savee, "ZZ_a01.wav"),
    (parse_emodb, "03a01Xa.wav"),
])
def test_foreign_names_are_not_parsed(parser, path):
    assert parser(Path(path)) is None


def make_corpus(root: Path, names: list[str]) -> Path:
    for i, name in enumerate(names):
        write_audio(root / name, emotional_tone(i % 4, seconds=0.5, seed=i))
    return root


@pytest.mark.parametrize("corpus, names", [
    ("cremad", ["1001_DFA_ANG_XX.wav", "1002_IEO_HAP_HI.wav", "1003_TIE_SAD_LO.wav"]),
    ("savee", ["DC_a01.wav", "JE_h02.wav", "KL_su03.wav"]),
    ("emodb", ["03a01Fa.wav", "08b02Wb.wav", "16a05Tc.wav"]),
    ("tess", ["OAF_angry/OAF_back_angry.wav", "YAF_sad/YAF_bean_sad.wav", "YAF_pleasant_surprised/YAF_dog_ps.wav"]),
])
def test_corpus_is_detected_from_names(tmp_path, corpus, names):
    found = discover(make_corpus(tmp_path / corpus, names))
    assert {u.corpus for u in found.utterances} == {corpus}
    assert len(found.utterances) == 3 and not found.skipped


def test_label_folders_and_flac_at_any_rate(tmp_path):
    write_audio(tmp_path / "happy" / "a.flac", emotional_tone(0, rate=48000), 48000, channels=2)
    write_audio(tmp_path / "sad" / "b.wav", emotional_tone(1, rate=8000), 8000)
    found = load_audio(discover(tmp_path), 16000)
    assert sorted(u.label for u in found.utterances) == ["happy", "sad"]
    assert all(u.speaker is None for u in found.utterances)
    assert all(a.dtype == np.float32 and 0.5 * 16000 < a.size <= 1.2 * 16000 for a in found.audio)


def test_bad_files_are_skipped_and_named(tmp_path, capsys):
    from train.datasets import warn_skipped

    root = make_corpus(tmp_path / "r", ["03-01-01-01-01-01-01.wav", "03-01-03-01-01-01-02.wav"])
    (root / "03-01-04-01-01-01-03.wav").write_bytes(b"RIFF but not really audio")
    write_audio(root / "holiday_recording.wav", emotional_tone(0))
    loaded = load_audio(discover(root), 16000)
    assert len(loaded.utterances) == 2
    warn_skipped(loaded)
    message = capsys.readouterr().err
    assert "skipped 2 files" in message
    assert "holiday_recording.wav (name does not follow the ravdess convention)" in message
    assert "03-01-04-01-01-01-03.wav (" in message


def test_manifest_csv(tmp_path):
    write_audio(tmp_path / "clips" / "x.wav", emotional_tone(0))
    write_audio(tmp_path / "clips" / "y.wav", emotional_tone(1))
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,speaker\nclips/x.wav,Fearful,s1\nclips/y.wav,joy,s2\nclips/z.wav,grumpy,s3\n")
    found = discover(manifest)
    assert [(u.label, u.speaker) for u in found.utterances] == [("fear", "csv:s1"), ("happy", "csv:s2")]
    assert "unknown label 'grumpy'" in found.skipped[0][1]


@pytest.mark.parametrize("setup, message", [
    (lambda root: None, "does not exist"),
    (lambda root: root.mkdir(), "no audio files"),
    (lambda root: write_audio(root / "random" / "thing.wav", emotional_tone(0)), "cannot tell which corpus"),
])
def test_unusable_folders_are_clear_errors(tmp_path, setup, message):
    root = tmp_path / "data"
    setup(root)
    with pytest.raises(DatasetError, match=message):
        discover(root)


def test_audio_cache_is_reused(tmp_path, ravdess_like):
    cache = tmp_path / "cache"
    first = load_audio(discover(ravdess_like), 16000, cache)
    assert len(list(cache.glob("audio-*.npz"))) == 1
    second = load_audio(discover(ravdess_like), 16000, cache)
    assert [u.path for u in second.utterances] == [u.path for u in first.utterances]
    for a, b in zip(first.audio, second.audio):
        np.testing.assert_allclose(a, b, atol=1 / 32768)


def test_runs_side_by_side_write_the_same_cache_file_whole(tmp_path):
    """Two trainings started together both write the audio cache: each through its own temporary file."""
    from concurrent.futures import ThreadPoolExecutor

    target = tmp_path / "audio-same.npz"
    payloads = [np.full(200_000, value, np.int16) for value in range(8)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda pcm: save_npz_whole(target, pcm=pcm), payloads))
    with np.load(target) as saved:
        assert saved["pcm"].size == 200_000 and np.unique(saved["pcm"]).size == 1
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left behind


def test_real_ravdess_names():
    found = discover(real_corpus("ravdess"))
    assert len(found.utterances) == 1200 and not found.skipped
    assert len({u.speaker for u in found.utterances}) == 20
    assert {u.label for u in found.utterances} == {"neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise"}


def test_real_tess_names():
    found = discover(real_corpus("tess"))
    assert len(found.utterances) == 2798 and not found.skipped
    assert {u.speaker for u in found.utterances} == {"tess:OAF", "tess:YAF"}
    assert {u.label for u in found.utterances} == {"neutral", "happy", "sad", "angry", "fear", "disgust", "surprise"}
