"""`--teacher-weight` / `--teacher-temperature`: the student's loss against the teacher head's soft labels, the
rows the training batches carry them in, and the options' checks; `--teacher-feature-weight`: the student's
pooled vector mapped onto the teacher's embedding by a training-only layer (docs/teacher.md)."""
from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from edge.cli import app
from edge.features import FeatureParams
from train.config import TrainConfig

pytestmark = pytest.mark.host  # needs the host side (TensorFlow)

PROBABILITIES = np.array([[0.5, 0.2, 0.2, 0.1], [0.1, 0.6, 0.1, 0.2]], np.float32)
MASKS = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], np.float32)  # the first clip's corpus has no fourth label
SOFT = np.array([[0.2, 0.7, 0.1, 0.0], [0.25, 0.25, 0.25, 0.25]], np.float32)
TARGETS = np.array([0, 1])


def loss_of(config: TrainConfig, with_soft: bool) -> np.ndarray:
    from train.losses import loss_function

    y = np.concatenate([TARGETS[:, None], TARGETS[:, None], np.ones((2, 1)), MASKS] + ([SOFT] if with_soft else []), axis=1)
    return np.asarray(loss_function(config)(y.astype(np.float32), PROBABILITIES))


def test_the_target_is_the_hard_label_and_the_teachers_soft_labels_weighted():
    """(1 - w) x -log q(label) + w x -sum(soft x log q), q = the probabilities renormalised over the mask."""
    q = PROBABILITIES * MASKS / (PROBABILITIES * MASKS).sum(1, keepdims=True)
    hard = -np.log(q[np.arange(2), TARGETS])
    soft = -(SOFT * np.log(q + 1e-12)).sum(1)
    distilled = loss_of(TrainConfig(label_smoothing=0, teacher_weight=0.3), with_soft=True)
    assert np.allclose(distilled, 0.7 * hard + 0.3 * soft, atol=1e-4)
    assert np.allclose(loss_of(TrainConfig(label_smoothing=0), with_soft=False), hard, atol=1e-5)
    # a teacher that agrees with the student's own probabilities adds the least loss it can
    agreeing = loss_of(TrainConfig(label_smoothing=0, teacher_weight=1.0), with_soft=True)
    assert agreeing[1] > -(q[1] * np.log(q[1])).sum() - 1e-4


def test_training_rows_carry_the_soft_labels_mixed_as_the_windows_are():
    from train.batches import MASK_FROM, AugmentedWindows

    rng = np.random.default_rng(0)
    clips = 8
    audio = [(0.1 * rng.standard_normal(16000)).astype(np.float32) for _ in range(clips)]
    targets, corpora = np.arange(clips) % 3, np.array(["ravdess"] * clips)
    masks = np.ones((clips, 3), np.float32)
    teacher = rng.dirichlet(np.ones(3), clips).astype(np.float32)
    for mixup in (0.0, 0.4):
        config = TrainConfig(batch_size=4, mixup=mixup, teacher_weight=0.5, max_clips_per_epoch=8)
        windows = AugmentedWindows(audio, targets, masks, corpora, FeatureParams(), config, teacher)
        _, y, _ = windows.batch(0)
        assert y.shape == (4, windows.y_columns) == (4, MASK_FROM + 6)
        chosen, soft, weights = windows.order[:4], y[:, MASK_FROM + 3:], y[:, 2]
        for row, clip, weight in zip(soft, chosen, weights):
            if weight == 1:  # not mixed: the clip's own soft labels
                assert np.allclose(row, teacher[clip])
            else:  # the clip's share of its own plus the rest from a partner in the batch
                partner_row = (row - weight * teacher[clip]) / (1 - weight)
                assert min(np.abs(partner_row - teacher[other]).max() for other in chosen) < 1e-4
        assert mixup == 0 or (weights < 1).any()


def test_feature_distillation_adds_the_weighted_squared_error_of_the_projection():
    from train.losses import loss_function

    targets = np.array([[1.0, -1.0, 0.5], [0.0, 2.0, -0.5]], np.float32)
    projected = np.array([[0.5, -1.0, 0.0], [0.0, 1.0, 0.5]], np.float32)
    y = np.concatenate([TARGETS[:, None], TARGETS[:, None], np.ones((2, 1)), MASKS, SOFT, targets], axis=1)
    outputs = np.concatenate([PROBABILITIES, projected], axis=1)
    config = TrainConfig(label_smoothing=0, teacher_weight=0.3)
    labels_only = loss_of(config, with_soft=True)
    both = np.asarray(loss_function(TrainConfig(label_smoothing=0, teacher_weight=0.3, teacher_feature_weight=2.0),
                                    n_labels=4)(y.astype(np.float32), outputs))
    assert np.allclose(both, labels_only + 2.0 * np.mean((projected - targets) ** 2, axis=1), atol=1e-5)


def test_embedding_targets_are_leading_components_of_unit_variance():
    from train.distill import embedding_targets

    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((200, 3)) @ rng.standard_normal((3, 100)) + 0.01 * rng.standard_normal((200, 100))
    found = embedding_targets(embeddings * 50 + 7, components=8)
    assert found.shape == (200, 8) and np.isclose(np.mean(found**2), 1.0, atol=1e-4)
    assert np.allclose(found.mean(axis=0), 0, atol=1e-4)
    assert np.mean(found[:, :3] ** 2) > 100 * np.mean(found[:, 3:] ** 2)  # the three real directions come first


def test_training_rows_carry_embedding_targets_after_the_soft_labels():
    from train.batches import MASK_FROM, AugmentedWindows

    rng = np.random.default_rng(1)
    audio = [(0.1 * rng.standard_normal(16000)).astype(np.float32) for _ in range(4)]
    targets, corpora, masks = np.arange(4) % 2, np.array(["ravdess"] * 4), np.ones((4, 2), np.float32)
    soft, features = rng.dirichlet(np.ones(2), 4).astype(np.float32), rng.standard_normal((4, 5)).astype(np.float32)
    config = TrainConfig(batch_size=4, teacher_weight=0.5, teacher_feature_weight=1.0, max_clips_per_epoch=4)
    windows = AugmentedWindows(audio, targets, masks, corpora, FeatureParams(), config, soft, features)
    _, y, _ = windows.batch(0)
    assert y.shape == (4, windows.y_columns) == (4, MASK_FROM + 2 + 2 + 5)
    assert np.allclose(y[:, -5:], features[windows.order[:4]]) and np.allclose(y[:, -7:-5], soft[windows.order[:4]])


def test_a_feature_distilled_run_saves_the_student_alone(tmp_path, monkeypatch):
    """Trained end to end with a stand-in teacher: the projection onto the teacher's embedding is used in
    training and left out of the saved model and its bundle's network."""
    import json

    import keras

    from tests.support.data import emotional_tone, write_audio
    from tests.test_teacher import LinearEncoder
    from train import teacher

    monkeypatch.setenv("EDGE_SER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(teacher, "WhisperEncoder", lambda: LinearEncoder(dim=16))
    root = tmp_path / "ravdess"
    for actor in range(1, 5):
        for n, emotion in enumerate(("01", "03", "04") * 2):
            write_audio(root / f"Actor_{actor:02d}" / f"03-01-{emotion}-01-0{1 + n % 2}-0{1 + n // 3}-{actor:02d}.wav",
                        emotional_tone(n % 3, seconds=1.0, seed=actor * 100 + n))
    result = CliRunner().invoke(app, ["train", str(root), "--runs-dir", str(tmp_path / "runs"), "--name", "fd",
                                      "--teacher-feature-weight", "1", "--epochs", "1", "--lstm-units", "8",
                                      "--conv-filters", "8", "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    model = keras.saving.load_model(tmp_path / "runs" / "fd" / "model.keras", compile=False)
    assert model.output.shape[-1] == 3 and "teacher_projection" not in [layer.name for layer in model.layers]
    bundle = json.loads((tmp_path / "runs" / "fd" / "bundle.json").read_text())
    assert bundle["train_config"]["teacher_feature_weight"] == 1.0
    assert (tmp_path / "cache" / "teacher" / "embeddings").is_dir()  # the stand-in's embeddings were cached


def test_teacher_options_are_checked_before_anything_loads(tmp_path):
    def run(*args: str):
        return CliRunner().invoke(app, ["train", str(tmp_path), *args])

    over = run("--teacher-weight", "1.5")
    assert over.exit_code == 2 and "--teacher-weight" in over.output and "Traceback" not in over.output
    assert run("--teacher-temperature", "0").exit_code == 2
    softmax = run("--teacher-weight", "0.5", "--loss", "softmax")
    assert softmax.exit_code == 2 and "needs --loss masked" in softmax.output
    negative = run("--teacher-feature-weight", "-1")
    assert negative.exit_code == 2 and "--teacher-feature-weight" in negative.output


def test_distillation_is_off_by_default_and_recorded():
    config = TrainConfig()
    assert config.teacher_weight == 0 and config.to_dict()["teacher_temperature"] == 1.0


def test_train_options_set_the_recipe_fields_of_their_names():
    """edge-ser train's defaults give train.config's defaults, and each option reaches its field."""
    import inspect

    from edge.cli.host import recipe_from_options, train

    defaults = {name: getattr(p.default, "default", p.default) for name, p in inspect.signature(train).parameters.items()}
    assert recipe_from_options(defaults) == TrainConfig()
    chosen = recipe_from_options({**defaults, "teacher_weight": 0.5, "teacher_temperature": 2.0, "lstm_units": "64,32",
                                  "augment": False, "room_probability": 0.1, "epochs": 3})
    assert (chosen.teacher_weight, chosen.teacher_temperature, chosen.model.lstm_units) == (0.5, 2.0, (64, 32))
    assert (chosen.augment.enabled, chosen.augment.room_probability, chosen.epochs) == (False, 0.1, 3)
