"""Speaker-independent splits by default; random only on request and labelled as such."""
from pathlib import Path

import pytest

from edge.corpora import RAVDESS_EMOTIONS
from edge.discovery import DatasetError, Utterance
from train.splits import random_split, speaker_split

pytestmark = pytest.mark.host  # needs the host side (train/convert, TensorFlow)


def ravdess_utterances(actors=range(1, 21)) -> list[Utterance]:
    return [Utterance(Path(f"{a}-{e}-{r}.wav"), label, f"ravdess:{a:02d}", "ravdess")
            for a in actors for e, label in enumerate(RAVDESS_EMOTIONS.values()) for r in range(3)]


def speakers(utterances, indices):
    return {utterances[i].speaker for i in indices}


def test_default_ravdess_split_is_actors_17_to_20():
    utterances = ravdess_utterances()
    split = speaker_split(utterances)
    assert speakers(utterances, split.test) == {f"ravdess:{a}" for a in (17, 18, 19, 20)}
    assert speakers(utterances, split.val) == {"ravdess:15", "ravdess:16"}
    assert len(speakers(utterances, split.train)) == 14
    assert split.kind == "speaker" and "speaker-independent" in split.description


def test_parts_never_share_a_speaker_and_cover_everything():
    utterances = ravdess_utterances() + [Utterance(Path(f"t{i}"), "sad", s, "tess") for i, s in
                                         enumerate(["tess:OAF", "tess:YAF"] * 10)]
    split = speaker_split(utterances)
    parts = [speakers(utterances, p) for p in (split.train, split.val, split.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sorted(split.train + split.val + split.test) == list(range(len(utterances)))
    assert "tess:YAF" in split.test_speakers


def test_named_speakers_and_folds():
    utterances = ravdess_utterances()
    named = speaker_split(utterances, test_speakers=["3", "ravdess:07"])
    assert speakers(utterances, named.test) == {"ravdess:03", "ravdess:07"}
    tested = set()
    for fold in range(5):
        split = speaker_split(utterances, folds=5, fold=fold)
        assert len(split.test_speakers) == 4
        tested |= set(split.test_speakers)
    assert len(tested) == 20


def test_random_split_is_stratified_and_says_so():
    utterances = ravdess_utterances()
    split = random_split(utterances, seed=1)
    assert split.kind == "random" and "RANDOM" in split.description and "optimistic" in split.description
    assert abs(len(split.test) - 0.2 * len(utterances)) <= 8
    test_labels = [utterances[i].label for i in split.test]
    assert all(abs(test_labels.count(label) - len(test_labels) / 8) <= 1 for label in set(test_labels))


def test_no_speakers_needs_an_explicit_random_split():
    utterances = [Utterance(Path(f"{i}.wav"), "sad", None, "folder") for i in range(10)]
    with pytest.raises(DatasetError, match="--split random"):
        speaker_split(utterances)


def test_without_validation_every_development_speaker_trains():
    utterances = ravdess_utterances()
    split = speaker_split(utterances, validate=False)
    assert not split.val and len(speakers(utterances, split.train)) == 16
    assert not random_split(utterances, validate=False).val
