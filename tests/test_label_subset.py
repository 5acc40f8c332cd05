"""`--labels`: classify and listen answer among the labels a user names, with the shipped model's real
interpreter; the others' probability is left out and the rest renormalised, after calibration."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from edge.calibration import label_indices, restricted
from edge.cli import app
from edge.corpora import SHARED_LABELS
from edge.stream import NOT_CLASSIFIED, UNCERTAIN
from tests.support.data import ANGRY

runner = CliRunner()
SHARED_SIX = ",".join(SHARED_LABELS)
MODEL_LABELS = ("neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise")


def test_restricted_keeps_the_named_labels_shares_renormalised():
    probabilities = np.array([[0.1, 0.5, 0.2, 0.2], [0.4, 0.0, 0.0, 0.6]], dtype=np.float32)
    out = restricted(probabilities, np.array([0, 2, 3]))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(out[0], [0.2, 0.4, 0.4], atol=1e-6)  # 0.1 : 0.2 : 0.2 kept, 0.5 dropped
    assert out[1].argmax() == 2 and out[1][1] < 1e-9  # a zero stays (almost) zero, no division by zero


def test_label_indices_follow_the_models_order_and_name_what_is_wrong():
    assert label_indices(MODEL_LABELS, ("sad", "neutral")).tolist() == [0, 3]
    with pytest.raises(ValueError, match="no label 'angri'.*its labels: neutral, calm"):
        label_indices(MODEL_LABELS, ("angri", "sad"))
    with pytest.raises(ValueError, match="at least two different labels"):
        label_indices(MODEL_LABELS, ("sad", "sad"))


def classify_json(*args: str) -> dict:
    result = runner.invoke(app, ["classify", str(ANGRY), "--json", "--vad", "none", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_classify_answers_among_the_named_labels_only():
    every = classify_json()["probabilities"]
    six = classify_json("--labels", SHARED_SIX)
    assert set(six["probabilities"]) == set(SHARED_SIX.split(","))
    assert sum(six["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    kept_total = sum(every[label] for label in SHARED_SIX.split(","))
    for label in SHARED_SIX.split(","):  # the calibrated all-label shares, renormalised over the six
        assert six["probabilities"][label] == pytest.approx(every[label] / kept_total, abs=1e-4)
    assert six["label"] == max(six["probabilities"], key=six["probabilities"].get)
    assert six["confidence"] >= max(every[label] for label in SHARED_SIX.split(","))


def test_listen_answers_among_the_named_labels_only():
    result = runner.invoke(app, ["listen", "--source", str(ANGRY), "--json", "--vad", "none", "--labels", "angry,sad"])
    assert result.exit_code == 0, result.output
    windows = [json.loads(line) for line in result.stdout.splitlines()]
    classified = [w for w in windows if w["label"] not in NOT_CLASSIFIED]
    assert classified, windows
    for window in classified:
        assert window["label"] in ("angry", "sad", UNCERTAIN)
        assert set(window["probabilities"]) == {"angry", "sad"}
        assert sum(window["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("verb", ["classify", "listen"])
@pytest.mark.parametrize("labels, message", [("angri,sad", "no label 'angri'"), ("sad", "at least two different labels"),
                                             (" , ", "names no label")])
def test_labels_the_model_does_not_have_are_a_usage_error(verb: str, labels: str, message: str):
    target = [str(ANGRY)] if verb == "classify" else ["--source", str(ANGRY)]
    result = runner.invoke(app, [verb, *target, "--labels", labels])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_listen_refuses_target_accuracy_with_labels():
    result = runner.invoke(app, ["listen", "--source", str(ANGRY), "--labels", "angry,sad", "--target-accuracy", "0.7"])
    assert result.exit_code == 2 and "give --threshold instead" in result.stderr
