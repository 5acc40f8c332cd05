"""What a training run is asked to do: the model, the augmentation and the fit, one frozen dataclass each.

Imports neither TensorFlow nor numpy, so `edge-ser train` checks its options (and `--help` shows their
defaults, read from here) before TensorFlow loads. Every training default is defined here once.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from edge.errors import UsageError

# mean_max: the mean and the maximum over time, side by side; attention: a weighted mean whose weights a
# one-unit layer scores from each step (softmax over time), so the steps that carry the emotion count most
# (Mirsamadi et al. 2017, "local attention" pooling for speech emotion recognition)
POOLINGS = ("mean", "mean_max", "attention")
FRONT_ENDS = ("conv1d", "conv2d")  # conv1d: mel bands as channels; conv2d: kernels slide along the bands too
# --front-end's default: chosen by the data (ModelConfig.for_corpora). conv2d won on three corpora; trained on one
# corpus alone, conv1d generalised better to its held-out speakers (docs/models.md "One corpus").
AUTO_FRONT_END = "auto"
# conv2d's max-pooling after each layer, (time, bands): two layers take 198 frames x 40 bands to the LSTM's
# 49 steps (as conv1d's pool 4) x 5 bands
CONV2D_POOLS = ((2, 2), (2, 4))


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    front_end: str = AUTO_FRONT_END  # one of FRONT_ENDS, or auto (docs/models.md "The 2-D front-end", "One corpus")
    conv_filters: int = 64  # conv1d front-end's filters; 0 = no convolutional front-end
    conv_kernel: int = 5
    # 198 frames -> 49 LSTM steps: half the inference time of pool 2 (docs/performance.md "Network choices and their cost")
    pool: int = 4
    lstm_units: tuple[int, ...] = (96,)
    pooling: str = "mean"  # one of POOLINGS: how the LSTM's outputs over time become one vector
    # conv2d front-end: one 3x3 Conv2D + BN + ReLU + max-pooling (CONV2D_POOLS) per entry, these many channels
    # (16, 32): above (8, 16) in every paired speaker fold (docs/models.md "The 2-D front-end"), for a little
    # more time per window (docs/performance.md "Network choices and their cost")
    conv2d_channels: tuple[int, ...] = (16, 32)
    dense_units: int = 64  # 0 = straight to the softmax
    dropout: float = 0.3

    def __post_init__(self) -> None:
        for option, value, choices in (("--pooling", self.pooling, POOLINGS),
                                       ("--front-end", self.front_end, (AUTO_FRONT_END, *FRONT_ENDS))):
            if value not in choices:
                raise UsageError(f"{option} must be one of {', '.join(choices)}, got {value!r}")
        if not 1 <= len(self.conv2d_channels) <= len(CONV2D_POOLS) or min(self.conv2d_channels) < 1:
            raise UsageError(f"--conv2d-channels takes 1 to {len(CONV2D_POOLS)} positive channel counts, "
                             f"got {','.join(map(str, self.conv2d_channels))}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "lstm_units": list(self.lstm_units), "conv2d_channels": list(self.conv2d_channels)}

    def for_corpora(self, corpora: int) -> "ModelConfig":
        """The network for data of this many corpora: an auto front-end becomes conv1d for one, conv2d for more."""
        if self.front_end != AUTO_FRONT_END:
            return self
        return replace(self, front_end="conv1d" if corpora == 1 else "conv2d")

    def network(self) -> dict[str, Any]:
        """to_dict without the settings of the front-end not chosen: they build nothing, so two runs that
        differ only there (a conv1d run recorded under another --conv2d-channels default) trained the same net."""
        unused = {"conv1d": ("conv2d_channels",), "conv2d": ("conv_filters", "conv_kernel", "pool")}[self.front_end]
        return {k: v for k, v in self.to_dict().items() if k not in unused}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        tuples: dict[str, Any] = {name: tuple(data[name]) for name in ("lstm_units", "conv2d_channels") if name in data}
        fields: dict[str, Any] = {"front_end": "conv1d", **data, **tuples}
        return cls(**fields)  # runs from before the option had the Conv1D


@dataclass(frozen=True, kw_only=True)
class AugmentConfig:
    enabled: bool = True
    speed_range: tuple[float, float] = (0.9, 1.1)  # Ko et al. 2015 used 0.9 / 1.0 / 1.1
    speed_probability: float = 0.5
    gain_db: float = 6.0  # +-6 dB (docs/design.md experiment)
    snr_db: tuple[float, float] = (10.0, 35.0)
    noise_probability: float = 0.8
    time_masks: int = 2  # SpecAugment (Park et al. 2019), two of each as in docs/design.md
    time_mask_frames: int = 20
    feature_masks: int = 2
    feature_mask_width: int = 6
    # A simulated room and microphone in 30 % of the windows: harsh rooms in most draws cost accuracy on
    # clean speakers (docs/design.md "Measured decisions"), so they are mixed in gently; 0.3 against none
    # kept the clean accuracy on held-out speakers of the three corpora and lost less in simulated rooms
    # (docs/models.md "Loss, sampling, rooms"). Exponentially decaying noise as the impulse response, then a
    # band limit: not the evaluation's room simulator (train.rooms), on purpose.
    room_probability: float = 0.3
    rt60_seconds: tuple[float, float] = (0.15, 0.6)  # living rooms and offices (ISO 3382-2 typical range)
    highpass_hz: tuple[float, float] = (60.0, 300.0)  # small-microphone roll-off
    lowpass_hz: tuple[float, float] = (3400.0, 7600.0)  # telephone band edge .. just under Nyquist at 16 kHz
    # Vocal-tract length perturbation (Jaitly & Hinton 2013): the log-mel bands read from a frequency axis
    # stretched by a random factor, so the spectrum (formants, harmonics) moves as between a shorter and
    # a longer vocal tract while the tempo stays (speed perturbation moves both). 0 = off (docs/models.md "Frequency warping").
    warp_probability: float = 0.0
    warp_range: tuple[float, float] = (0.9, 1.1)  # the 0.9-1.1 range of Jaitly & Hinton
    # The wide acoustic world (train.augment.wide_world): this share of the windows goes through a chain of
    # independent stages instead of the room above: a synthetic exponentially decaying reverberation, a random
    # microphone response (peaking filters), a random band, and broadband noise of a random colour (white ..
    # brown) at a low SNR. 0 = off. Generators and families kept apart from the acoustic test suite's
    # (docs/acoustic-suite.md), so the suite measures conditions training never used.
    wide_probability: float = 0.0
    wide_stage_probability: float = 0.5  # each stage of the chain is applied with this probability
    wide_rt60_seconds: tuple[float, float] = (0.1, 1.5)  # a dead booth .. a reverberant hall
    wide_snr_db: tuple[float, float] = (0.0, 20.0)
    wide_noise_exponent: tuple[float, float] = (0.0, 2.0)  # power spectrum 1/f^a: 0 white, 1 pink, 2 brown
    wide_eq_filters: int = 3  # peaking filters of the microphone response
    wide_eq_gain_db: float = 10.0  # each filter's gain: uniform in +-this
    wide_highpass_hz: tuple[float, float] = (50.0, 500.0)
    wide_lowpass_hz: tuple[float, float] = (2500.0, 7800.0)


DEFAULT_SPLIT = "speaker"  # held-out speakers: the only honest estimate for a voice the model has never heard
SPLITS = (DEFAULT_SPLIT, "random", "none")  # speaker-independent, random clips, or none: a final fit on every file
RUNS_DIR = Path("runs")  # where train writes its run folders (and runs/latest)
LOSSES = ("masked", "softmax")  # masked: cross-entropy over the clip's own corpus's labels only
SAMPLINGS = ("balanced", "natural")  # balanced: every (corpus, label) cell drawn equally within its corpus
CORPUS_SHARES = ("clips", "sqrt", "equal")  # balanced sampling: each corpus's share of the draws, by its clip count,
# its square root (a small corpus is heard more, a big one still most) or equally


# --epochs' default (AUTO_EPOCHS): chosen by the data (TrainConfig.for_corpora). One corpus of at least
# LONG_SCHEDULE_CLIPS clips kept gaining on its held-out speakers with a longer schedule, where one of a few
# hundred clips per speaker did not (docs/models.md "One corpus").
AUTO_EPOCHS = 0
EPOCHS = 60
LONG_SCHEDULE_EPOCHS = 150
LONG_SCHEDULE_CLIPS = 4000


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    epochs: int = AUTO_EPOCHS  # AUTO_EPOCHS: EPOCHS, or LONG_SCHEDULE_EPOCHS for one corpus of LONG_SCHEDULE_CLIPS clips
    # An epoch draws one pass over the training clips, capped at this many: the budget (epochs x clips)
    # stays fixed as corpora grow: 60 x 4000 = 240 k clips at most (docs/models.md "Training budget"); a corpus
    # smaller than the cap, such as RAVDESS alone, is one pass per epoch.
    max_clips_per_epoch: int = 4000
    batch_size: int = 32
    learning_rate: float = 2e-3
    warmup_epochs: int = 3
    patience: int = 25  # epochs without a better validation UA before stopping
    seed: int = 0
    loss: str = "masked"
    sampling: str = "balanced"
    corpus_share: str = "sqrt"  # docs/models.md "Corpus shares": sqrt beat clips on the mean of the three corpora, 2 seeds;
    # equal, 5 speaker folds: RAVDESS and TESS up, CREMA-D (the most voices) down: a trade, not measured across corpora
    # mixup (Zhang et al. 2018) of two windows from the same corpus, weight Beta(a, a) folded to >= 0.5;
    # 0 = off. Within a corpus, so both windows' losses use the same label mask.
    mixup: float = 0.0
    # label smoothing (Szegedy et al. 2016): this share of the target spread evenly over the labels the
    # clip's corpus defines. Three corpora, held-out speakers, 2 seeds: 0.1 against 0 kept the accuracy, clean
    # and in rooms, and halved the network's own calibration error
    # (docs/models.md "Width, mixup, label smoothing, schedule").
    label_smoothing: float = 0.1
    # decoupled weight decay (AdamW, Loshchilov & Hutter 2019) on kernels, not on biases or batch-norm scales;
    # each step shrinks a weight by weight_decay x the learning rate. 0 = plain Adam, the default: 0.05 raised
    # CREMA-D and RAVDESS and lowered TESS in 3 paired speaker folds
    # (docs/models.md "Attention pooling, 24/48 channels, weight decay, weight averaging")
    weight_decay: float = 0.0
    # Distillation from the teacher (train.teacher, train.distill; docs/teacher.md): the target is (1 - teacher_weight)
    # x the clip's (smoothed) label + teacher_weight x the teacher head's probabilities over the labels of the clip's
    # corpus, softened by teacher_temperature, from a head fitted on other speakers (never on the clip's own). 0 = off.
    teacher_weight: float = 0.0
    teacher_temperature: float = 1.0
    # Feature distillation: this weight times the squared error between a linear map of the student's pooled
    # vector (a training-only layer, dropped from the saved model) and the teacher's clip embedding, reduced to
    # its main components (train.distill.embedding_targets), added to the loss. 0 = off.
    teacher_feature_weight: float = 0.0
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        for option, value, choices in (("--loss", self.loss, LOSSES), ("--sampling", self.sampling, SAMPLINGS),
                                       ("--corpus-share", self.corpus_share, CORPUS_SHARES)):
            if value not in choices:
                raise UsageError(f"{option} must be one of {', '.join(choices)}, got {value!r}")
        if not 0 <= self.teacher_weight <= 1 or self.teacher_temperature <= 0:
            raise UsageError(f"--teacher-weight takes 0 to 1 and --teacher-temperature a positive number, got "
                             f"{self.teacher_weight} and {self.teacher_temperature}")
        if self.teacher_feature_weight < 0:
            raise UsageError(f"--teacher-feature-weight takes 0 (off) or a positive number, got {self.teacher_feature_weight}")
        if self.teacher_weight and self.loss != "masked":
            raise UsageError("--teacher-weight distils within each corpus's labels: it needs --loss masked")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "model": self.model.to_dict()}

    def for_corpora(self, corpora: int, clips: int = 0) -> "TrainConfig":
        """This recipe with every data-dependent default chosen for this many corpora holding this many clips:
        the front-end (ModelConfig.for_corpora) and the epochs (AUTO_EPOCHS)."""
        long = corpora == 1 and clips >= LONG_SCHEDULE_CLIPS
        epochs = self.epochs or (LONG_SCHEDULE_EPOCHS if long else EPOCHS)
        return replace(self, epochs=epochs, model=self.model.for_corpora(corpora))

    def check_features(self, n_mfcc: int) -> None:
        """Settings that need log-mel features: the frequency warp stretches log-mel bands, not MFCCs."""
        if self.augment.warp_probability and n_mfcc:
            raise UsageError("--warp-probability stretches log-mel bands: it needs --n-mfcc 0")
