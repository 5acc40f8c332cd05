"""Reading audio files for the edge and for training: any rate, any channel count -> mono float32."""
from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile

from edge.errors import EdgeSerError
from edge.features import float_to_pcm16, pcm16_to_float
from edge.resample import Resampler

# File extensions of the containers libsndfile (soundfile) decodes, by soundfile format name. RAW is
# left out (it needs a rate and sample format from elsewhere), and so are MAT4/MAT5 (.mat is data).
SOUNDFILE_EXTENSIONS = {
    "WAV": (".wav",), "WAVEX": (".wav",), "RF64": (".rf64",), "W64": (".w64",), "FLAC": (".flac",),
    "OGG": (".ogg", ".oga", ".opus"), "MP3": (".mp3",), "AIFF": (".aiff", ".aif", ".aifc"),
    "AU": (".au", ".snd"), "CAF": (".caf",), "NIST": (".nist", ".sph"), "IRCAM": (".sf",),
    "VOC": (".voc",), "AVR": (".avr",), "PAF": (".paf",), "PVF": (".pvf",), "SD2": (".sd2",),
    "SDS": (".sds",), "SVX": (".8svx", ".iff"), "HTK": (".htk",), "WVE": (".wve",), "XI": (".xi",),
    "MPC2K": (".mpc",),
}
AUDIO_SUFFIXES = frozenset(suffix for name in soundfile.available_formats()
                           for suffix in SOUNDFILE_EXTENSIONS.get(name, ()))


def is_audio_file(path: Path) -> bool:
    """The one rule for picking audio files out of a folder: a regular, non-hidden file whose
    extension names a container this soundfile build decodes (.wav .flac .ogg .opus .mp3 .aiff ...)."""
    return path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".") and path.is_file()


class AudioReadError(EdgeSerError):
    """A file that is missing, not a regular file, not audio, empty, corrupt or absurd."""


# What a header may claim before we believe it. A WAV header can say 2,147,483,647 Hz; resampling
# that would allocate hundreds of GiB. 4 kHz is half the telephone rate (below it no speech band is
# left); 384 kHz is the highest rate audio interfaces record at. 64 channels covers microphone arrays.
MIN_RATE, MAX_RATE = 4000, 384_000
MAX_CHANNELS = 64
BLOCK_SAMPLES = 1 << 18  # samples (all channels) decoded per block: 1 MiB of float32, whatever the file's length


@dataclass(frozen=True)
class AudioInfo:
    rate: int
    channels: int
    frames: int  # as the header claims it
    subtype: str


def audio_info(path: str | Path) -> AudioInfo:
    """The header of `path`, checked: a regular, non-empty file with a believable rate and channel count.
    Never blocks: FIFOs, devices and folders are refused before anything opens them."""
    path = Path(path)
    _check_regular_file(path)
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError, OSError) as error:
        raise _read_error(path, error) from None
    if not MIN_RATE <= info.samplerate <= MAX_RATE:
        raise AudioReadError(f"cannot read {path}: its header claims {info.samplerate} Hz "
                             f"(edge-ser reads {MIN_RATE}-{MAX_RATE} Hz)")
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise AudioReadError(f"cannot read {path}: its header claims {info.channels} channels (at most {MAX_CHANNELS})")
    return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames), str(info.subtype))


def _check_regular_file(path: Path) -> None:
    try:
        mode = path.stat().st_mode  # follows symlinks; stat never opens, so a FIFO cannot block here
    except FileNotFoundError:
        raise AudioReadError(f"cannot read {path}: no such file") from None
    except OSError as error:
        raise _read_error(path, error) from None
    if stat.S_ISDIR(mode):
        raise AudioReadError(f"cannot read {path}: it is a folder, not an audio file")
    if not stat.S_ISREG(mode):
        raise AudioReadError(f"cannot read {path}: not a regular file (a pipe, socket or device)")
    if path.stat().st_size == 0:
        raise AudioReadError(f"cannot read {path}: empty file")


def mono_blocks(path: str | Path) -> tuple[AudioInfo, Iterator[np.ndarray]]:
    """The file's header and its audio as mono float32 blocks at the file's own rate, decoded a block at a
    time, so memory does not grow with the file's length. Channels are averaged; samples beyond full
    scale (float files) are clipped to [-1, 1], as a converter to PCM would; a non-finite sample is an error."""
    path = Path(path)
    info = audio_info(path)
    return info, _decode(path, info)


def _decode(path: Path, info: AudioInfo) -> Iterator[np.ndarray]:
    dtype = "int16" if info.subtype == "PCM_16" else "float32"
    block_frames = max(1, BLOCK_SAMPLES // info.channels)
    decoded = 0
    try:
        with soundfile.SoundFile(str(path)) as handle:
            while True:
                data = handle.read(block_frames, dtype=dtype, always_2d=True)
                if not len(data):
                    break
                yield _mono(data, dtype, path, decoded)
                decoded += len(data)
    except (RuntimeError, soundfile.LibsndfileError, OSError) as error:
        raise _read_error(path, error) from None
    if not decoded:
        raise AudioReadError(f"cannot read {path}: no samples")


def _mono(data: np.ndarray, dtype: str, path: Path, offset: int) -> np.ndarray:
    if dtype == "int16":
        return pcm16_to_float(data).mean(axis=1, dtype=np.float32)
    finite = np.isfinite(data)
    if not finite.all():
        bad = offset + int(np.argmin(finite.all(axis=1)))
        raise AudioReadError(f"cannot read {path}: sample {bad} is not a finite number (NaN or Inf)")
    return np.clip(data, -1.0, 1.0).mean(axis=1, dtype=np.float32)


def stream_audio(path: str | Path, sample_rate: int) -> Iterator[np.ndarray]:
    """`path` as mono float32 blocks at `sample_rate` (streaming resampler): the long-file path."""
    info, blocks = mono_blocks(path)
    if info.rate == sample_rate:
        yield from blocks
        return
    resampler = Resampler(info.rate, sample_rate)
    for block in blocks:
        yield resampler.process(block)
    yield resampler.flush()


def read_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode `path`, average the channels and resample to `sample_rate`: float32 in [-1, 1]."""
    return np.concatenate(list(stream_audio(path, sample_rate)))


def read_pcm16(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode `path` to mono int16 at its own rate: what a microphone would have delivered."""
    mono, rate = read_mono(path)
    return float_to_pcm16(mono), rate


def read_mono(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode `path` and average its channels: (float32 in [-1, 1], the file's sample rate)."""
    info, blocks = mono_blocks(path)
    return np.concatenate(list(blocks)), info.rate


def _read_error(path: Path, error: BaseException) -> AudioReadError:
    return AudioReadError(f"cannot read {path}: {_first_line(error).replace(str(path), path.name)}")


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
