"""The acoustic test suite: held-out speakers heard through conditions that no training run uses.

Training hears (train.augment): the room (a synthetic exponentially decaying impulse response, a Butterworth
band, white noise) and, with --wide-probability, the wide world (the same kind of reverberation with RT60 up to
1.5 s, random peaking-filter microphone responses, random Butterworth bands, 1/f^0..2 broadband noise at
0-20 dB SNR). The cross-corpus evaluation (train.rooms) uses pyroomacoustics shoebox rooms with uniform
absorption, an omnidirectional microphone, a Butterworth band and pink noise.

This suite uses other generators and other families (docs/acoustic-suite.md): image-source halls and offices
with frequency-dependent named materials, air absorption and a directional microphone; mains hum, a fan, babble
of synthetic talkers (espeak-ng) and music as noise; a fixed cheap-microphone curve as a linear-phase FIR; a
telephone channel (elliptic band, 8 kHz, G.711 mu-law); MP3 at 16 kbit/s; clipping; a riding level. Every
condition is deterministic per clip: its random draws come from the suite's seed, the condition's name and
the clip's file name.
"""
from __future__ import annotations

import functools
import io
import shutil
import subprocess
import zlib
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from edge.errors import EdgeSerError
from train.augment import add_at_snr, with_peak_of

SAMPLE_RATE = 16000  # the features' rate: the corpora are read, and the conditions made, at it
SUITE_SEED = 3030


class SuiteError(EdgeSerError):
    """The suite cannot run as asked (a missing tool, an unknown condition, no held-out speakers)."""


class Condition(Protocol):
    # read-only properties, so that the frozen dataclasses below satisfy the protocol
    @property
    def name(self) -> str: ...

    @property
    def trained_family(self) -> str: ...  # the family a training run does use ("" = none): only the generator is new then

    def describe(self) -> str: ...

    def apply(self, signal: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...


def clip_rng(condition: Condition, clip_name: str) -> np.random.Generator:
    """The random draws of one condition on one clip: the same whatever other clips or conditions run."""
    return np.random.default_rng([SUITE_SEED, zlib.crc32(condition.name.encode()), zlib.crc32(clip_name.encode())])


# ---- rooms by the image-source method -------------------------------------------------------------------

@dataclass(frozen=True)
class ImageSourceRoom:
    """A shoebox room (pyroomacoustics, image-source method) whose walls, floor and ceiling are named materials
    with frequency-dependent absorption, air absorption on, heard by a directional microphone pointing in a
    random direction in the horizontal plane (a talker behind it is attenuated)."""
    name: str = "hall"
    size_m: tuple[tuple[float, float], ...] = ((12.0, 25.0), (9.0, 16.0), (5.0, 9.0))
    walls: tuple[str, ...] = ("brickwork", "plasterboard", "glass_window", "limestone_wall", "wooden_lining")
    floors: tuple[str, ...] = ("marble_floor", "concrete_floor", "stage_floor")
    ceilings: tuple[str, ...] = ("hard_surface", "ceiling_plasterboard", "rough_concrete")
    distance_m: tuple[float, float] = (3.0, 8.0)
    microphone: str = "hypercardioid"  # or "cardioid"
    rooms: int = 8  # distinct rooms; each clip is heard in one of them
    max_order: int = 20  # reflections the image-source method follows (the tail beyond is not modelled)
    trained_family: str = "reverberation (training: synthetic exponential decay)"

    def describe(self) -> str:
        size = " x ".join(f"{low:g}-{high:g}" for low, high in self.size_m)
        return (f"image-source rooms {size} m, walls of {', '.join(self.walls)}, floors of {', '.join(self.floors)}, "
                f"ceilings of {', '.join(self.ceilings)}; air absorption; a {self.microphone} microphone pointing "
                f"anywhere, the talker {self.distance_m[0]:g}-{self.distance_m[1]:g} m away")

    def apply(self, signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from scipy.signal import fftconvolve

        responses = room_responses(self)
        response = responses[int(rng.integers(len(responses)))]
        return with_peak_of(fftconvolve(signal.astype(np.float64), response)[: signal.size], signal)


@functools.lru_cache(maxsize=8)
def room_responses(room: ImageSourceRoom) -> tuple[np.ndarray, ...]:
    """The room's impulse responses, reproducible from its name."""
    rng = np.random.default_rng([SUITE_SEED, zlib.crc32(room.name.encode())])
    responses: list[np.ndarray] = []
    while len(responses) < room.rooms:
        size = np.array([rng.uniform(low, high) for low, high in room.size_m])
        talker, microphone = _positions(size, room.distance_m, rng)
        if talker is not None:
            responses.append(_response(room, size, talker, microphone, rng))
    return tuple(responses)


def _response(room: ImageSourceRoom, size: np.ndarray, talker: np.ndarray, microphone: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    import pyroomacoustics as pra
    from pyroomacoustics.directivities import Cardioid, DirectionVector, HyperCardioid

    walls = [str(rng.choice(room.walls)) for _ in range(4)]
    materials = pra.make_materials(east=walls[0], west=walls[1], north=walls[2], south=walls[3],
                                   floor=str(rng.choice(room.floors)), ceiling=str(rng.choice(room.ceilings)))
    shoebox = pra.ShoeBox(size, fs=SAMPLE_RATE, materials=materials, max_order=room.max_order, air_absorption=True)
    pattern = {"cardioid": Cardioid, "hypercardioid": HyperCardioid}[room.microphone]
    pointing = DirectionVector(azimuth=float(rng.uniform(0, 360)), colatitude=90, degrees=True)
    shoebox.add_source(talker)
    shoebox.add_microphone(microphone, directivity=pattern(orientation=pointing))
    shoebox.compute_rir()
    response = np.asarray(shoebox.rir[0][0], dtype=np.float64)
    return response / np.max(np.abs(response))


def _positions(size: np.ndarray, distance: tuple[float, float], rng: np.random.Generator):
    """A talker 1.4-1.8 m high and a microphone 0.7-1.2 m high (a desk), 0.5 m inside the walls, `distance` apart."""
    for _ in range(200):
        talker = rng.uniform([0.5, 0.5, 1.4], [size[0] - 0.5, size[1] - 0.5, 1.8])
        microphone = rng.uniform([0.5, 0.5, 0.7], [size[0] - 0.5, size[1] - 0.5, 1.2])
        if distance[0] <= np.linalg.norm(talker - microphone) <= distance[1]:
            return talker, microphone
    return None, None


OFFICE = ImageSourceRoom(name="office", size_m=((3.5, 7.0), (3.0, 5.0), (2.5, 3.0)),
                         walls=("plasterboard", "glass_window", "wooden_door", "curtains_cotton_0.5", "gypsum_board"),
                         floors=("carpet_cotton", "linoleum_on_concrete", "carpet_tufted_9.5mm"),
                         ceilings=("ceiling_fibre_absorber", "ceiling_fissured_tile", "ceiling_plasterboard"),
                         distance_m=(0.5, 1.5), microphone="cardioid", max_order=17)


# ---- noises of the world (added at a random SNR) --------------------------------------------------------

@dataclass(frozen=True)
class AddedNoise:
    """A noise of one kind added at an SNR drawn uniformly from `snr_db` (speech power over noise power)."""
    name: str
    snr_db: tuple[float, float] = (0.0, 20.0)
    trained_family: str = ""

    def describe(self) -> str:
        return f"{self.what()} at {self.snr_db[0]:g}-{self.snr_db[1]:g} dB SNR"

    def what(self) -> str:
        raise NotImplementedError

    def noise(self, count: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def apply(self, signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noisy = add_at_snr(signal.astype(np.float64), self.noise(signal.size, rng), float(rng.uniform(*self.snr_db)))
        return with_peak_of(noisy, signal)


@dataclass(frozen=True)
class Hum(AddedNoise):
    name: str = "hum"
    harmonics: int = 20

    def what(self) -> str:
        return f"mains hum (50 or 60 Hz and {self.harmonics - 1} harmonics, odd ones stronger, as a transformer buzzes)"

    def noise(self, count: int, rng: np.random.Generator) -> np.ndarray:
        mains = float(rng.choice([50.0, 60.0]))
        time = np.arange(count) / SAMPLE_RATE
        hum = np.zeros(count)
        for k in range(1, self.harmonics + 1):
            level = rng.uniform(0.3, 1.0) * k ** -rng.uniform(0.5, 1.2) * (2.0 if k % 2 else 1.0)
            hum += level * np.sin(2 * np.pi * k * mains * time + rng.uniform(0, 2 * np.pi))
        return hum


@dataclass(frozen=True)
class Fan(AddedNoise):
    name: str = "fan"

    def what(self) -> str:
        return ("a fan: noise through two resonances (150-600 Hz, 1-3 kHz) and a low-pass, a blade-pass tone "
                "(5-9 blades at 900-1800 rpm) with two overtones, the whole slowly swelling (0.1-0.5 Hz)")

    def noise(self, count: int, rng: np.random.Generator) -> np.ndarray:
        from scipy.signal import butter, sosfilt

        white = rng.standard_normal(count)
        air = sum(sosfilt(butter(2, (centre / 1.5, centre * 1.5), "bandpass", fs=SAMPLE_RATE, output="sos"), white)
                  for centre in (rng.uniform(150, 600), rng.uniform(1000, 3000)))
        air = sosfilt(butter(2, rng.uniform(2500, 5000), fs=SAMPLE_RATE, output="sos"), air)
        air /= np.std(air) or 1.0
        time = np.arange(count) / SAMPLE_RATE
        blade_hz = int(rng.integers(5, 10)) * rng.uniform(900, 1800) / 60
        tone = sum(np.sin(2 * np.pi * k * blade_hz * time + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
        swell = 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * time + rng.uniform(0, 2 * np.pi))
        return swell * (air + rng.uniform(0.3, 0.8) * tone)


@dataclass(frozen=True)
class Music(AddedNoise):
    name: str = "music"

    def what(self) -> str:
        return ("music: triads of a I-V-vi-IV progression in a random key (harmonic tones, plucked envelopes), a "
                "bass note on every beat, a hi-hat on the off-beats, 80-140 beats per minute")

    def noise(self, count: int, rng: np.random.Generator) -> np.ndarray:
        beat = int(SAMPLE_RATE * 60 / rng.uniform(80, 140))
        key = int(rng.integers(0, 12))
        music = np.zeros(count + beat)
        for n, start in enumerate(range(0, count, beat)):
            root = key + (0, 7, 9, 5)[(n // 4) % 4]  # the bar's chord: I, V, vi, IV
            third = 3 if (n // 4) % 4 == 2 else 4  # vi is minor
            for semitone in (root, root + third, root + 7):
                music[start:start + beat] += _note(60 + semitone, beat, 6.0)
            music[start:start + beat] += 1.5 * _note(36 + root, beat, 3.0)
            music[start + beat // 2:start + beat] += _hi_hat(beat - beat // 2, rng)
        return music[:count]


def _note(midi: int, length: int, decay: float) -> np.ndarray:
    """A plucked note: six harmonics falling as 1/k, decaying exponentially by `decay` per second."""
    time = np.arange(length) / SAMPLE_RATE
    hz = 440.0 * 2 ** ((midi - 69) / 12)
    tone = sum(np.sin(2 * np.pi * k * hz * time) / k for k in range(1, 7) if k * hz < SAMPLE_RATE / 2)
    return 0.3 * tone * np.exp(-decay * time)


def _hi_hat(length: int, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    burst = sosfilt(butter(4, 5000, "highpass", fs=SAMPLE_RATE, output="sos"), rng.standard_normal(length))
    return 0.4 * burst * np.exp(-60 * np.arange(length) / SAMPLE_RATE)


# Public-domain sentences (the IEEE 1969 "Harvard" lists) the synthetic talkers read.
SENTENCES = (
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.", "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.", "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.", "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.", "The girl at the booth sold fifty bonds.",
)
# espeak-ng voices: (voice+variant, pitch 0-99, words per minute)
TALKERS = (("en-us+f3", 70, 165), ("en-gb+m3", 40, 150), ("en-gb-scotland+f2", 60, 175),
           ("en-029+m1", 35, 140), ("en-us+f5", 80, 155), ("en-gb-x-rp+m5", 45, 170))


@dataclass(frozen=True)
class Babble(AddedNoise):
    name: str = "babble"
    talkers: int = 5

    def what(self) -> str:
        return f"babble: {self.talkers} synthetic talkers (espeak-ng, other voices and sentences) at once"

    def noise(self, count: int, rng: np.random.Generator) -> np.ndarray:
        streams = talker_streams()
        chosen = rng.choice(len(streams), size=min(self.talkers, len(streams)), replace=False)
        babble = np.zeros(count)
        for index in chosen:
            stream = streams[int(index)]
            start = int(rng.integers(stream.size))
            babble += np.resize(np.roll(stream, -start), count)  # looped from a random point
        return babble


@functools.lru_cache(maxsize=1)
def talker_streams() -> tuple[np.ndarray, ...]:
    """Each synthetic talker reading every sentence, at SAMPLE_RATE, unit power."""
    import soundfile as sf
    from scipy.signal import resample_poly

    if shutil.which("espeak-ng") is None:
        raise SuiteError("the babble condition needs espeak-ng (apt-get install espeak-ng, or `make sysdeps`)")
    streams = []
    for talker, (voice, pitch, speed) in enumerate(TALKERS):
        text = " ".join(SENTENCES[talker::2] + SENTENCES[1 - talker % 2::3])
        wav = subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "--stdout", text],
                             check=True, capture_output=True).stdout
        audio, rate = sf.read(io.BytesIO(wav), dtype="float64")
        audio = resample_poly(audio, SAMPLE_RATE, rate)
        streams.append(audio / (np.std(audio) or 1.0))
    return tuple(streams)


# ---- the microphone and the channel ---------------------------------------------------------------------

# A cheap electret or MEMS microphone in a laptop lid, as published frequency-response curves of such parts
# look: a steep bass roll-off, a presence peak at 4 kHz, little above 7 kHz. (Hz, dB)
CHEAP_MICROPHONE_DB = ((0, -40), (80, -24), (150, -10), (300, -2), (1000, 0), (2500, 2), (4000, 6), (5500, 3),
                       (7000, -8), (8000, -30))


@dataclass(frozen=True)
class CheapMicrophone:
    name: str = "cheap-mic"
    response_db: tuple[tuple[float, float], ...] = CHEAP_MICROPHONE_DB
    taps: int = 255
    trained_family: str = "microphone response (wide training: random peaking filters)"

    def describe(self) -> str:
        return ("a fixed cheap-microphone curve as a linear-phase FIR ("
                + ", ".join(f"{hz:g} Hz {db:+g} dB" for hz, db in self.response_db) + ")")

    def apply(self, signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from scipy.signal import fftconvolve, firwin2

        hz, db = zip(*self.response_db)
        fir = firwin2(self.taps, np.array(hz) / (SAMPLE_RATE / 2), 10 ** (np.array(db) / 20))
        delay = self.taps // 2
        return with_peak_of(fftconvolve(signal.astype(np.float64), fir)[delay:delay + signal.size], signal)


@dataclass(frozen=True)
class Telephone:
    """A narrowband call: an elliptic band-pass, 8 kHz, G.711 mu-law (8 bits a sample), back to 16 kHz."""
    name: str = "telephone"
    band_hz: tuple[float, float] = (300.0, 3400.0)
    level_dbfs: tuple[float, float] = (-30.0, -15.0)  # speech level into the codec (its steps are finer near 0)
    trained_family: str = "band limit (training: Butterworth bands); the codec is new"

    def describe(self) -> str:
        return (f"telephone: elliptic band-pass {self.band_hz[0]:g}-{self.band_hz[1]:g} Hz, 8 kHz, G.711 mu-law at "
                f"{self.level_dbfs[0]:g} to {self.level_dbfs[1]:g} dBFS")

    def apply(self, signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from scipy.signal import ellip, resample_poly, sosfilt

        band = sosfilt(ellip(6, 0.5, 50, self.band_hz, "bandpass", fs=SAMPLE_RATE, output="sos"), signal.astype(np.float64))
        narrow = resample_poly(band, 1, 2)
        narrow *= 10 ** (rng.uniform(*self.level_dbfs) / 20) / (np.sqrt(np.mean(narrow ** 2)) or 1.0)
        decoded = mu_law_decode(mu_law_encode(np.clip(narrow, -1.0, 1.0)))
        return with_peak_of(resample_poly(decoded, 2, 1)[: signal.size], signal)


def mu_law_encode(signal: np.ndarray, mu: int = 255) -> np.ndarray:
    """G.711 mu-law companding to 8-bit codes 0..255 (the continuous law, as most software codecs use)."""
    compressed = np.sign(signal) * np.log1p(mu * np.abs(signal)) / np.log1p(mu)
    return np.round((compressed + 1) / 2 * mu).astype(np.uint8)


def mu_law_decode(codes: np.ndarray, mu: int = 255) -> np.ndarray:
    compressed = codes.astype(np.float64) / mu * 2 - 1
    return np.sign(compressed) * np.expm1(np.abs(compressed) * np.log1p(mu)) / mu


@dataclass(frozen=True)
class Mp3:
    """MP3 at a low constant bit rate (libsndfile's LAME encoder, through soundfile), decoded again."""
    name: str = "mp3"
    compression_level: float = 0.95  # about 16 kbit/s at 16 kHz
    trained_family: str = ""

    def describe(self) -> str:
        return f"MP3, constant bit rate, soundfile compression level {self.compression_level:g} (about 16 kbit/s)"

    def apply(self, signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        import soundfile as sf

        if "MP3" not in sf.available_formats():
            raise SuiteError("the mp3 condition needs libsndfile 1.1 or later (MP3 support)")
        buffer = io.BytesIO()
        peak = float(np.max(np.abs(signal))) or 1.0
        sf.write(buffer, signal / peak * 0.9, SAMPLE_RATE, format="MP3", subtype="MPEG_LAYER_III",
                 compression_level=self.compression_level, bitrate_mode="CONSTANT")
        buffer.seek(0)
        decoded, _ = sf.read(buffer, dtype="float64")
        return with_peak_of(np.resize(decoded, signal.size), signal)


@dataclass(frozen=True)
class Clipping:
    """An overdriven input: the clip raised by a random drive above its peak, then cut at full scale."""
    name: str = "clipping"
    drive_db: tuple[float, float] = (6.0, 20.0)
    trained_family: str = ""

    def describe(self) -> str:
        return f"hard clipping, driven {self.drive_db[0]:g}-{self.drive_db[1]:g} dB above the clip's peak"

    def apply(self, signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        peak = float(np.max(np.abs(signal))) or 1.0
        driven = signal.astype(np.float64) / peak * 10 ** (rng.uniform(*self.drive_db) / 20)
        return (np.clip(driven, -1.0, 1.0) * peak).astype(np.float32)


@dataclass(frozen=True)
class LevelRide:
    """A level that rides up and down within the clip (an automatic gain control pumping, a talker turning)."""
    name: str = "level-ride"
    depth_db: tuple[float, float] = (6.0, 15.0)
    rate_hz: tuple[float, float] = (0.3, 2.0)
    trained_family: str = ""

    def describe(self) -> str:
        return (f"the level swinging +-{self.depth_db[0]:g}-{self.depth_db[1]:g} dB at "
                f"{self.rate_hz[0]:g}-{self.rate_hz[1]:g} Hz within the clip")

    def apply(self, signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        time = np.arange(signal.size) / SAMPLE_RATE
        swing = rng.uniform(*self.depth_db) * np.sin(2 * np.pi * rng.uniform(*self.rate_hz) * time + rng.uniform(0, 2 * np.pi))
        return (signal * 10 ** (swing / 20)).astype(np.float32)


@dataclass(frozen=True)
class Chain:
    """Several conditions in the order sound meets them."""
    name: str
    steps: tuple = field(default_factory=tuple)
    trained_family: str = "reverberation and microphone response (generators new); fan, codec new"

    def describe(self) -> str:
        return "; then ".join(f"{step.name}: {step.describe()}" for step in self.steps)

    def apply(self, signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for step in self.steps:
            signal = step.apply(signal, rng)
        return signal


CONDITIONS: tuple[Condition, ...] = (
    ImageSourceRoom(), Hum(), Fan(), Babble(), Music(), CheapMicrophone(), Telephone(), Mp3(), Clipping(), LevelRide(),
    Chain("laptop-office", (OFFICE, Fan(snr_db=(10.0, 20.0)), CheapMicrophone(), Mp3())),
)


def conditions_named(names: tuple[str, ...]) -> tuple[Condition, ...]:
    """The suite's conditions of these names, in the suite's order (all when `names` is empty)."""
    known = {condition.name for condition in CONDITIONS}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SuiteError(f"unknown condition(s) {', '.join(unknown)}; the suite has {', '.join(sorted(known))}")
    return tuple(c for c in CONDITIONS if not names or c.name in names)


def degrade(condition: Condition, signal: np.ndarray, clip_name: str) -> np.ndarray:
    """`signal` as `condition` makes it sound, float32, the same every time for the same clip."""
    heard = condition.apply(np.asarray(signal, dtype=np.float32), clip_rng(condition, clip_name))
    return np.asarray(heard, dtype=np.float32)
