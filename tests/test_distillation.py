"""`--teacher-weight` / `--teacher-temperature`: the student's loss against the teacher head's soft labels, the
rows the training batches carry them in, and the options' checks (docs/teacher.md)."""
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


def test_teacher_options_are_checked_before_anything_loads(tmp_path):
    def run(*args: str):
        return CliRunner().invoke(app, ["train", str(tmp_path), *args])

    over = run("--teacher-weight", "1.5")
    assert over.exit_code == 2 and "--teacher-weight" in over.output and "Traceback" not in over.output
    assert run("--teacher-temperature", "0").exit_code == 2
    softmax = run("--teacher-weight", "0.5", "--loss", "softmax")
    assert softmax.exit_code == 2 and "needs --loss masked" in softmax.output


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
