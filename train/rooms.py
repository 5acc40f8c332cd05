"""Held-out speakers re-recorded through simulated rooms and cheap microphones: the evaluation's room
condition. A different simulator from training's augmentation (train.augment.simulated_room), so a
model cannot score well merely by having learnt one simulator's fingerprint.

The recording chain, with its parameters (each clip gets one of ROOM_COUNT rooms, fixed seed):
1. A shoebox room by the image-source method (pyroomacoustics): length 3-8 m, width 3-6 m, height
   2.4-3.2 m, RT60 0.3-0.9 s (wall absorption from Sabine's formula), talker and microphone at least
   0.5 m from every wall, 1.0-1.8 m high, 1-3 m apart.
2. A cheap microphone: 4th-order Butterworth band-pass 150-4000 Hz, the band of many USB headsets and
   laptop microphones.
3. Background noise: pink noise at 10-25 dB SNR (a fan, traffic, an air conditioner).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from train.augment import band_pass, with_peak_of

ROOM_SEED = 2026
ROOM_COUNT = 24  # distinct rooms; clips are assigned to them at random


@dataclass(frozen=True)
class RoomCondition:
    length_m: tuple[float, float] = (3.0, 8.0)
    width_m: tuple[float, float] = (3.0, 6.0)
    height_m: tuple[float, float] = (2.4, 3.2)
    rt60_s: tuple[float, float] = (0.3, 0.9)
    distance_m: tuple[float, float] = (1.0, 3.0)
    band_hz: tuple[float, float] = (150.0, 4000.0)
    snr_db: tuple[float, float] = (10.0, 25.0)

    def describe(self) -> str:
        return (f"shoebox rooms {self.length_m[0]:g}-{self.length_m[1]:g} x {self.width_m[0]:g}-{self.width_m[1]:g} x "
                f"{self.height_m[0]:g}-{self.height_m[1]:g} m, RT60 {self.rt60_s[0]:g}-{self.rt60_s[1]:g} s, talker "
                f"{self.distance_m[0]:g}-{self.distance_m[1]:g} m away (image-source method); microphone band "
                f"{self.band_hz[0]:g}-{self.band_hz[1]:g} Hz; "
                f"pink noise at {self.snr_db[0]:g}-{self.snr_db[1]:g} dB SNR")


def room_impulse_responses(condition: RoomCondition, sample_rate: int, count: int = ROOM_COUNT,
                           seed: int = ROOM_SEED) -> list[np.ndarray]:
    """`count` room impulse responses by the image-source method, reproducible from `seed`."""
    import pyroomacoustics as pra

    rng = np.random.default_rng(seed)
    responses: list[np.ndarray] = []
    while len(responses) < count:
        size = np.array([rng.uniform(*condition.length_m), rng.uniform(*condition.width_m),
                         rng.uniform(*condition.height_m)])
        rt60 = float(rng.uniform(*condition.rt60_s))
        source, microphone = _positions(size, condition.distance_m, rng)
        if source is None:
            continue
        absorption, max_order = pra.inverse_sabine(rt60, size)
        room = pra.ShoeBox(size, fs=sample_rate, materials=pra.Material(absorption), max_order=max_order)
        room.add_source(source)
        room.add_microphone(microphone)
        room.compute_rir()
        response = np.asarray(room.rir[0][0], dtype=np.float64)
        responses.append(response / np.max(np.abs(response)))
    return responses


def _positions(size: np.ndarray, distance: tuple[float, float], rng: np.random.Generator):
    """A talker and a microphone 0.5 m inside the walls, 1.0-1.8 m high, `distance` apart (or None)."""
    for _ in range(100):
        low, high = np.array([0.5, 0.5, 1.0]), np.minimum(size - 0.5, [np.inf, np.inf, 1.8])
        source, microphone = rng.uniform(low, high), rng.uniform(low, high)
        if distance[0] <= np.linalg.norm(source - microphone) <= distance[1]:
            return source, microphone
    return None, None


def pink_noise(count: int, rng: np.random.Generator) -> np.ndarray:
    """1/f noise: white noise shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(count))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
    noise = np.fft.irfft(spectrum, count)
    return noise / (np.std(noise) or 1.0)


def rerecord(signal: np.ndarray, response: np.ndarray, condition: RoomCondition, sample_rate: int,
             rng: np.random.Generator) -> np.ndarray:
    """`signal` played in the room of `response`, picked up by the cheap microphone, with noise."""
    from scipy.signal import fftconvolve

    wet = fftconvolve(signal.astype(np.float64), response)[: signal.size]
    heard = band_pass(wet, condition.band_hz, sample_rate)
    power = float(np.mean(heard ** 2)) or 1e-10
    snr = float(rng.uniform(*condition.snr_db))
    heard = heard + pink_noise(heard.size, rng) * np.sqrt(power / 10 ** (snr / 10))
    return with_peak_of(heard, signal)


def rerecord_all(signals: list[np.ndarray], sample_rate: int, responses: list[np.ndarray],
                 condition: RoomCondition, seed: int = ROOM_SEED) -> list[np.ndarray]:
    """Every signal through one of the rooms, the same rooms and noise for the same inputs every time."""
    rng = np.random.default_rng([seed, 1])
    return [rerecord(s, responses[int(rng.integers(len(responses)))], condition, sample_rate, rng) for s in signals]
