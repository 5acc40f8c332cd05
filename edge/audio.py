"""Reading audio files for the edge and for training: any rate, any channel count -> mono float32."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from edge.features import float_to_pcm16, pcm16_to_float
from edge.resample import resample


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


class AudioReadError(Exception):
    """A file that is missing, not audio, or empty."""


def read_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode `path`, average the channels and resample to `sample_rate`: float32 in [-1, 1)."""
    mono, rate = read_mono(path)
    return resample(mono, rate, sample_rate) if rate != sample_rate else mono


def read_pcm16(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode `path` to mono int16 at its own rate: what a microphone would have delivered."""
    mono, rate = read_mono(path)
    return float_to_pcm16(mono), rate


def read_mono(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode `path` and average its channels: (float32 in [-1, 1), the file's sample rate)."""
    path = Path(path)
    try:
        info = soundfile.info(str(path))
        dtype = "int16" if info.subtype == "PCM_16" else "float32"
        data, rate = soundfile.read(str(path), dtype=dtype, always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, OSError) as error:
        raise AudioReadError(f"cannot read {path}: {_first_line(error).replace(str(path), path.name)}") from None
    if data.shape[0] == 0:
        raise AudioReadError(f"cannot read {path}: no samples")
    signal = pcm16_to_float(data) if dtype == "int16" else data.astype(np.float32)
    return signal.mean(axis=1, dtype=np.float32), int(rate)


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
