"""The one feature definition of edge-ser, in numpy alone.

Training, calibration, evaluation and the live runtime all call this module, so the model sees
the same numbers on the workstation and on the device.

Conventions (pinned down because libraries differ):
- int16 PCM becomes float by dividing by 32768 (`pcm16_to_float`), nowhere else.
- Pre-emphasis y[n] = x[n] - a*x[n-1] with x[-1] = 0, applied to the whole signal.
- Frames are *not* centred: frame i covers samples [i*hop, i*hop + win_length), like Kaldi and
  python_speech_features, so a stream can be cut anywhere without padding. A frame exists only when
  all its samples exist.
- Window: periodic Hann of `win_length` samples; the frame is zero-padded at the end to `n_fft`.
- Power spectrum |X|^2, HTK mel scale (2595 log10(1 + f/700)), triangular filters with peak 1
  (librosa ``htk=True, norm=None``), natural log with an additive floor.
- MFCC = orthonormal DCT-II of the log-mel frame, c0 kept (no energy replacement, no liftering).
  With ``n_mfcc == n_mels`` it is an orthogonal transform of the log-mel frame; ``n_mfcc = 0``
  returns the log-mel frame itself.
- Window level (what the model consumes): an optional floor `dynamic_range_db` under the window's
  loudest log-mel value, optional PCEN in place of the log (`pcen_time_constant`), optional deltas
  (regression over +-2 frames, edges repeated), then
  per-window mean/variance normalisation of every coefficient. Per-window
  normalisation beat global normalisation on RAVDESS (docs/design.md "Measured decisions").
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from edge.errors import EdgeSerError

FEATURE_VERSION = 1
SUPPORTED_WINDOWS = ("hann",)
# "window": per-window mean/variance of every coefficient; "window_mean": per-window mean only, so each
# band keeps its dynamic range (how far its energy swings within the window); "none"
SUPPORTED_NORMALISATIONS = ("window", "window_mean", "none")
LEFT_OUT_WHEN_OFF = ("dynamic_range_db", "pcen_time_constant")  # FeatureParams fields added after the first shipped bundles
LN_POWER_PER_DB = float(np.log(10.0) / 10.0)  # ln of a power ratio per decibel (the log-mel is ln power)
# Per-channel energy normalisation's fixed constants: the values of Wang et al., "Trainable frontend for robust
# and far-field keyword spotting" (ICASSP 2017), which are also librosa.pcen's defaults.
PCEN_GAIN = 0.98  # alpha: how much of the smoothed energy divides each band (1 = all of it)
PCEN_BIAS = 2.0  # delta
PCEN_POWER = 0.5  # r: root compression instead of the log
PCEN_EPS = 1e-6


class FeatureParamsError(EdgeSerError, ValueError):
    """Feature parameters that this version of edge-ser cannot reproduce."""


@dataclass(frozen=True)
class FeatureParams:
    """Everything that defines the model's input. Travels inside every model bundle."""

    sample_rate: int = 16000
    win_length: int = 400  # 25 ms at 16 kHz, the usual ASR frame
    hop_length: int = 160  # 10 ms at 16 kHz
    n_fft: int = 512  # next power of two above win_length
    n_mels: int = 40
    # 0 = log-mel bands (the default: above MFCC-40 on held-out speakers, docs/models.md "Features"); 13-40 = MFCC
    n_mfcc: int = 0
    fmin: float = 20.0
    fmax: float = 8000.0  # Nyquist at 16 kHz
    preemphasis: float = 0.97  # the classic value (Young et al., HTK book)
    window: str = "hann"
    deltas: int = 0  # 0: none, 1: + delta, 2: + delta and delta-delta
    normalisation: str = "window"  # one of SUPPORTED_NORMALISATIONS
    window_seconds: float = 2.0  # model input length; 2 s was best on RAVDESS (docs/design.md)
    log_floor: float = 1e-6
    # Log-mel only: every value more than this many dB below the window's loudest band-frame is raised to
    # that floor, so a studio's near-silent pauses look like a room's noise floor (0 = off). A device
    # microphone rarely sees more: MEMS microphones' self-noise is 60-65 dB below 94 dB SPL, speech at 1 m
    # about 60 dB SPL, so its loudest bands lie some 40-50 dB above the noise (docs/models.md "Features").
    dynamic_range_db: float = 0.0
    # Log-mel only: per-channel energy normalisation (PCEN) instead of the log, with this smoothing time
    # constant in seconds (0 = off). Each band is divided by its own energy smoothed over the window, an
    # automatic gain control meant for far-field audio, stationary noise and riding levels (docs/models.md
    # "Features"); librosa.pcen's default time constant is 0.4 s.
    pcen_time_constant: float = 0.0
    version: int = FEATURE_VERSION

    def __post_init__(self) -> None:
        problems = _param_problems(self)
        if problems:
            raise FeatureParamsError("unsupported feature params: " + "; ".join(problems))

    @property
    def n_coefficients(self) -> int:
        """Per-frame values before deltas."""
        return self.n_mfcc if self.n_mfcc else self.n_mels

    @property
    def n_features(self) -> int:
        """Per-frame values the model sees."""
        return self.n_coefficients * (1 + self.deltas)

    @property
    def window_samples(self) -> int:
        return int(round(self.window_seconds * self.sample_rate))

    @property
    def frames_per_window(self) -> int:
        return n_frames(self.window_samples, self)

    def to_dict(self) -> dict[str, Any]:
        """Every field, but those in LEFT_OUT_WHEN_OFF at 0: a bundle without them writes as before, and
        an edge-ser from before the option still reads it."""
        return {k: v for k, v in asdict(self).items() if v or k not in LEFT_OUT_WHEN_OFF}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeatureParams":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FeatureParamsError(
                f"unsupported feature params: unknown {'field' if len(unknown) == 1 else 'fields'} {', '.join(unknown)} "
                "(made by a newer edge-ser?)"
            )
        return cls(**data)


def _param_problems(p: FeatureParams) -> list[str]:
    checks = [
        (p.version == FEATURE_VERSION, f"feature version {p.version} (this edge-ser reads {FEATURE_VERSION})"),
        (p.sample_rate > 0, "sample_rate must be positive"),
        (0 < p.hop_length <= p.win_length <= p.n_fft, "need 0 < hop_length <= win_length <= n_fft"),
        (p.n_mels > 0, "n_mels must be positive"),
        (0 <= p.n_mfcc <= p.n_mels, "n_mfcc must be between 0 and n_mels"),
        (0 <= p.fmin < p.fmax <= p.sample_rate / 2, "need 0 <= fmin < fmax <= sample_rate/2"),
        (0 <= p.preemphasis < 1, "preemphasis must be in [0, 1)"),
        (p.window in SUPPORTED_WINDOWS, f"window {p.window!r} (supported: {', '.join(SUPPORTED_WINDOWS)})"),
        (p.deltas in (0, 1, 2), "deltas must be 0, 1 or 2"),
        (p.normalisation in SUPPORTED_NORMALISATIONS,
         f"normalisation {p.normalisation!r} (supported: {', '.join(SUPPORTED_NORMALISATIONS)})"),
        (p.window_seconds * p.sample_rate >= p.win_length, "window_seconds shorter than one frame"),
        (p.log_floor > 0, "log_floor must be positive"),
        (p.dynamic_range_db >= 0, "dynamic_range_db must be 0 (off) or positive"),
        (not (p.dynamic_range_db and p.n_mfcc), "dynamic_range_db floors log-mel bands: it needs n_mfcc 0"),
        (p.pcen_time_constant >= 0, "pcen_time_constant must be 0 (off) or positive"),
        (not (p.pcen_time_constant and p.n_mfcc), "pcen_time_constant replaces the log of mel bands: it needs n_mfcc 0"),
    ]
    return [message for ok, message in checks if not ok]


def pcm16_to_float(pcm: np.ndarray) -> np.ndarray:
    """int16 PCM -> float32 in [-1, 1). The only int16 -> float conversion in edge-ser."""
    return np.asarray(pcm, dtype=np.int16).astype(np.float32) / np.float32(32768.0)


def float_to_pcm16(signal: np.ndarray) -> np.ndarray:
    """float in [-1, 1] -> int16 PCM (clipped), the inverse of `pcm16_to_float`."""
    scaled = np.round(np.asarray(signal, dtype=np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def n_frames(n_samples: int, params: FeatureParams) -> int:
    """Frames in a signal of `n_samples` (uncentred framing: only complete frames)."""
    if n_samples < params.win_length:
        return 0
    return 1 + (n_samples - params.win_length) // params.hop_length


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale (O'Shaughnessy 1987 as used by HTK): 2595 * log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_band_edges_hz(params: FeatureParams) -> np.ndarray:
    """The n_mels + 2 edges of the mel bands, equally spaced in mel: band k spans edges k..k+2 and peaks at k+1."""
    return mel_to_hz(np.linspace(hz_to_mel(params.fmin), hz_to_mel(params.fmax), params.n_mels + 2))


@functools.lru_cache(maxsize=16)
def mel_filterbank(params: FeatureParams) -> np.ndarray:
    """(n_fft//2 + 1, n_mels) triangular filters, peak 1, HTK mel centres (librosa htk, norm=None)."""
    fft_hz = np.linspace(0.0, params.sample_rate / 2, params.n_fft // 2 + 1)
    edges_hz = mel_band_edges_hz(params)
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.ascontiguousarray(weights.T, dtype=np.float32)


@functools.lru_cache(maxsize=16)
def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_in, n_out) orthonormal DCT-II, the same as scipy.fft.dct(type=2, norm='ortho')."""
    n = np.arange(n_in)[:, None]
    k = np.arange(n_out)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    basis[:, 0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


@functools.lru_cache(maxsize=16)
def analysis_window(params: FeatureParams) -> np.ndarray:
    """Periodic Hann of win_length samples (scipy.signal.get_window('hann', N, fftbins=True))."""
    n = np.arange(params.win_length)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / params.win_length)).astype(np.float32)


def preemphasize(signal: np.ndarray, coefficient: float, previous: float = 0.0) -> np.ndarray:
    """y[n] = x[n] - a * x[n-1]; `previous` is x[-1] (the last sample of the preceding chunk)."""
    x = np.asarray(signal, dtype=np.float32)
    if coefficient == 0 or x.size == 0:
        return x.copy()
    shifted = np.concatenate(([np.float32(previous)], x[:-1]))
    return x - np.float32(coefficient) * shifted


FFT_BLOCK_FRAMES = 64  # frames per FFT call: ~260 KB work buffers stay in cache (one call for a whole window is slower)


def frames_from_emphasized(emphasized: np.ndarray, params: FeatureParams) -> np.ndarray:
    """Per-frame MFCC (or log-mel) of an already pre-emphasized signal: (n_frames, n_coefficients)."""
    count = n_frames(emphasized.shape[0], params)
    if count == 0:
        return np.zeros((0, params.n_coefficients), dtype=np.float32)
    emphasized = np.ascontiguousarray(emphasized)
    step = emphasized.strides[0]  # frames as a strided view (sliding_window_view's Python checks would run every hop)
    framed = np.lib.stride_tricks.as_strided(emphasized, shape=(count, params.win_length),
                                             strides=(params.hop_length * step, step), writeable=False)
    log_mel = np.empty((count, params.n_mels), dtype=np.float32)
    for start in range(0, count, FFT_BLOCK_FRAMES):
        log_mel[start: start + FFT_BLOCK_FRAMES] = _log_mel(framed[start: start + FFT_BLOCK_FRAMES], params)
    if params.n_mfcc == 0:
        return log_mel
    return (log_mel @ dct_matrix(params.n_mels, params.n_mfcc)).astype(np.float32)


def _log_mel(framed: np.ndarray, params: FeatureParams) -> np.ndarray:
    # Zero-padded to n_fft in float64: numpy's float64 FFT is faster than its float32 one (numpy 2.x).
    padded = np.zeros((framed.shape[0], params.n_fft), dtype=np.float64)
    np.multiply(framed, analysis_window(params), out=padded[:, : params.win_length])
    spectrum = np.fft.rfft(padded, axis=1)
    power = np.square(spectrum.real, dtype=np.float32)
    power += np.square(spectrum.imag, dtype=np.float32)
    return np.log(power @ mel_filterbank(params) + np.float32(params.log_floor))


def frame_features(signal: np.ndarray, params: FeatureParams) -> np.ndarray:
    """Batch extraction: float signal at params.sample_rate -> (n_frames, n_coefficients)."""
    return frames_from_emphasized(preemphasize(signal, params.preemphasis), params)


def deltas(frames: np.ndarray, width: int = 2) -> np.ndarray:
    """Regression deltas over +-width frames, edge frames repeated (HTK / python_speech_features)."""
    if frames.shape[0] == 0:
        return frames.copy()
    padded = np.pad(frames, ((width, width), (0, 0)), mode="edge")
    n = frames.shape[0]
    numerator = sum(k * (padded[width + k : width + k + n] - padded[width - k : width - k + n]) for k in range(1, width + 1))
    return (numerator / (2 * sum(k * k for k in range(1, width + 1)))).astype(np.float32)


@functools.lru_cache(maxsize=8)
def pcen_smoother(n_frames_in_window: int, time_constant_frames: float) -> np.ndarray:
    """The matrix S with S @ energy = each band's energy smoothed by the one-pole filter
    M[t] = (1 - b) M[t-1] + b E[t], started in the steady state of E[0] (as if the window's first frame had
    always been there: librosa.pcen's default start assumes an energy of 1, which depends on the level),
    with librosa's b for this time constant. A matrix product is one call per window instead of a Python
    step per frame."""
    b = (np.sqrt(1 + 4 * time_constant_frames**2) - 1) / (2 * time_constant_frames**2)
    lag = np.subtract.outer(np.arange(n_frames_in_window), np.arange(n_frames_in_window))
    smoother = np.where(lag >= 0, b * (1 - b) ** np.maximum(lag, 0), 0.0)
    smoother[:, 0] += (1 - b) ** (np.arange(n_frames_in_window) + 1)
    return smoother.astype(np.float32)


def pcen(log_mel: np.ndarray, params: FeatureParams) -> np.ndarray:
    """PCEN of a window's mel energies, from their log: (E / (eps + M)^alpha + delta)^r - delta^r,
    M the energy smoothed over time per band (Wang et al. 2017; librosa.pcen's arithmetic)."""
    energy = np.exp(log_mel)
    time_constant_frames = params.pcen_time_constant * params.sample_rate / params.hop_length
    smoothed = pcen_smoother(energy.shape[0], time_constant_frames) @ energy
    gained = energy * np.power(np.float32(PCEN_EPS) + smoothed, -PCEN_GAIN)
    return (np.power(gained + np.float32(PCEN_BIAS), PCEN_POWER) - PCEN_BIAS**PCEN_POWER).astype(np.float32)


def window_features(frames: np.ndarray, params: FeatureParams) -> np.ndarray:
    """Frames of one window -> the model's input matrix (dynamic-range floor, PCEN, deltas, per-window
    normalisation)."""
    if params.dynamic_range_db and frames.size:
        frames = np.maximum(frames, frames.max() - np.float32(params.dynamic_range_db * LN_POWER_PER_DB))
    if params.pcen_time_constant and frames.size:
        frames = pcen(frames, params)
    stacked = [frames]
    if params.deltas >= 1:
        stacked.append(deltas(frames))
    if params.deltas == 2:
        stacked.append(deltas(stacked[1]))
    matrix = np.concatenate(stacked, axis=1) if len(stacked) > 1 else frames
    if params.normalisation == "window":
        centred = matrix - matrix.mean(axis=0)  # = (x - mean) / (std + 1e-5), np.std's arithmetic, faster
        matrix = centred / (np.sqrt(np.mean(np.square(centred), axis=0)) + np.float32(1e-5))
    elif params.normalisation == "window_mean":
        matrix = matrix - matrix.mean(axis=0)
    return np.ascontiguousarray(matrix, dtype=np.float32)


def features_for_window(signal: np.ndarray, params: FeatureParams) -> np.ndarray:
    """One window of float audio -> model input (frames_per_window, n_features)."""
    return window_features(frame_features(signal, params), params)


class StreamingFeatures:
    """Push audio chunks of any size, get the same frames as `frame_features` on the whole signal.

    Keeps the pre-emphasis state and fewer than `win_length` leftover samples (plus the part of
    the next frame already seen), rolling forward one hop at a time.
    """

    def __init__(self, params: FeatureParams) -> None:
        self.params = params
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)  # emphasized samples not yet fully consumed
        self._previous_sample = 0.0

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Float samples in, zero or more new frames out: (k, n_coefficients)."""
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.size == 0:
            return np.zeros((0, self.params.n_coefficients), dtype=np.float32)
        emphasized = preemphasize(chunk, self.params.preemphasis, self._previous_sample)
        self._previous_sample = float(chunk[-1])
        self._pending = np.concatenate((self._pending, emphasized))
        frames = frames_from_emphasized(self._pending, self.params)
        self._pending = self._pending[frames.shape[0] * self.params.hop_length :]
        return frames
