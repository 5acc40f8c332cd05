"""Where `listen` gets audio: a PyAudio microphone or a file, both delivering int16 chunks to a queue.

The PyAudio callback only enqueues (docs/design.md, "Examples followed"): a consumer thread does all the work. An
input overflow or a full queue is counted, never raised (PortAudio's `Input overflowed` is the most
reported crash of edge-audio tools). A file source feeds the same queue from its own thread, so
`listen --source FILE` runs exactly the consumer path the microphone does.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import EdgeSerError
from edge.logs import quiet_stderr
from edge.plural import counted

CHUNK_SECONDS = 0.064  # 1024 samples at 16 kHz per callback: 16 wake-ups a second
QUEUE_SECONDS = 10.0  # audio the queue holds before chunks are dropped (consumer too slow)
CANDIDATE_RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000)
PA_INPUT_OVERFLOW = 0x2  # paInputOverflow in PortAudio's callback status flags
POLL_PUT_SECONDS = 0.1  # a file source re-checks for close() this often while the queue is full


class AudioSourceError(EdgeSerError):
    """No such device, no PyAudio, an unsupported rate, or a stream that stopped delivering audio."""


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    host_api: str
    max_channels: int
    default_rate: int
    rates: tuple[int, ...]  # of CANDIDATE_RATES, those PortAudio accepts for 16-bit mono (or stereo) input

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "host_api": self.host_api,
                "max_channels": self.max_channels, "default_rate": self.default_rate, "rates": list(self.rates)}


def open_pyaudio() -> tuple[Any, Any]:
    try:
        import pyaudio
    except ImportError:
        raise AudioSourceError("PyAudio is not installed: pip install 'edge-ser[edge]' "
                               "(it builds against PortAudio: apt-get install portaudio19-dev)") from None
    with quiet_stderr():
        return pyaudio, pyaudio.PyAudio()


def _channels_for(pa: Any, index: int, max_channels: int, rate: int) -> int | None:
    """1 when the device records mono at `rate`, else 2 (downmixed here), else None."""
    import pyaudio

    for channels in (1, 2):
        if channels > max_channels:
            break
        try:
            with quiet_stderr():
                if pa.is_format_supported(rate, input_device=index, input_channels=channels, input_format=pyaudio.paInt16):
                    return channels
        except ValueError:
            continue
    return None


def input_devices(pa: Any) -> list[InputDevice]:
    devices = []
    for index in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(index)
        channels = int(info["maxInputChannels"])
        if channels < 1:
            continue
        rates = tuple(r for r in CANDIDATE_RATES if _channels_for(pa, index, channels, r))
        devices.append(InputDevice(index, str(info["name"]), pa.get_host_api_info_by_index(info["hostApi"])["name"],
                                   channels, int(info["defaultSampleRate"]), rates))
    return devices


def default_input_index(pa: Any) -> int | None:
    try:
        return int(pa.get_default_input_device_info()["index"])
    except (IOError, OSError):
        return None


def list_input_devices() -> tuple[list[InputDevice], int | None]:
    """Every input device and the index of the default one (None when there is none)."""
    _, pa = open_pyaudio()
    try:
        return input_devices(pa), default_input_index(pa)
    finally:
        pa.terminate()


def find_device(devices: list[InputDevice], default: int | None, spec: str | None) -> InputDevice:
    """`spec`: None (the default input), an index, or part of a name (case-insensitive)."""
    if not devices:
        raise AudioSourceError("no audio input device found (is a microphone connected, or PulseAudio running?)")
    if spec is None:
        return next((d for d in devices if d.index == default), devices[0])
    if spec.strip().isdigit():
        found = [d for d in devices if d.index == int(spec)]
    else:
        exact = [d for d in devices if d.name.lower() == spec.lower()]
        found = exact or [d for d in devices if spec.lower() in d.name.lower()]
    if len(found) == 1:
        return found[0]
    listing = "; ".join(f"{d.index}: {d.name}" for d in (found or devices))
    problem = "matches several" if found else "matches no"
    raise AudioSourceError(f"--device {spec!r} {problem} input device ({listing}); see `edge-ser devices`")


def choose_rate(device: InputDevice, model_rate: int, requested: int | None) -> int:
    """The requested rate, else the model's rate when the device has it, else the device's default."""
    if requested:
        if requested not in device.rates and requested != device.default_rate:
            raise AudioSourceError(f"{device.name} does not record at {requested} Hz (it does: "
                                   f"{', '.join(map(str, device.rates)) or device.default_rate})")
        return requested
    if model_rate in device.rates:
        return model_rate
    return device.default_rate


class ChunkQueue:
    """A bounded queue of int16 chunks with the counts `listen` reports."""

    def __init__(self, rate: int) -> None:
        self.chunk_samples = max(1, int(round(rate * CHUNK_SECONDS)))
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=max(2, int(QUEUE_SECONDS / CHUNK_SECONDS)))
        self.overflows = 0  # PortAudio said input was lost before we saw it
        self.dropped = 0  # chunks thrown away because the consumer fell behind
        self.last_chunk_at = time.monotonic()

    def offer(self, chunk: bytes) -> None:
        try:
            self.queue.put_nowait(chunk)
        except queue.Full:
            self.dropped += 1

    def read(self, timeout: float) -> bytes | None:
        try:
            chunk = self.queue.get(timeout=timeout)
        except queue.Empty:
            return None
        self.last_chunk_at = time.monotonic()
        return chunk


def downmix_pcm16(data: bytes, channels: int) -> bytes:
    if channels == 1:
        return data
    frames = np.frombuffer(data, dtype=np.int16).reshape(-1, channels)
    return bytes(frames.mean(axis=1).round().astype(np.int16).tobytes())


class MicrophoneSource:
    """PyAudio input in callback mode; the callback enqueues and returns at once."""

    def __init__(self, device: str | None, model_rate: int, rate: int | None = None) -> None:
        self.pyaudio, self.pa = open_pyaudio()
        try:
            self.device = find_device(input_devices(self.pa), default_input_index(self.pa), device)
            self.rate = choose_rate(self.device, model_rate, rate)
            self.channels = _channels_for(self.pa, self.device.index, self.device.max_channels, self.rate) or 1
            self.chunks = ChunkQueue(self.rate)
            self.finished = False  # a microphone never runs out
            self.error: str | None = None
            with quiet_stderr():
                self.stream = self.pa.open(format=self.pyaudio.paInt16, channels=self.channels, rate=self.rate,
                                           input=True, input_device_index=self.device.index,
                                           frames_per_buffer=self.chunks.chunk_samples, stream_callback=self._callback)
        except OSError as error:
            self.pa.terminate()
            raise AudioSourceError(f"cannot open the microphone: {error}") from None
        except AudioSourceError:
            self.pa.terminate()
            raise

    def describe(self) -> str:
        return f"{self.device.index}: {self.device.name} at {self.rate} Hz, {counted(self.channels, 'channel')}"

    def _callback(self, data: bytes, frame_count: int, time_info: Any, status: int) -> tuple[None, int]:
        if status & PA_INPUT_OVERFLOW:
            self.chunks.overflows += 1
        self.chunks.offer(downmix_pcm16(data, self.channels))
        return None, self.pyaudio.paContinue

    def read(self, timeout: float) -> bytes | None:
        return self.chunks.read(timeout)

    def alive(self) -> bool:
        return bool(self.stream.is_active())

    def close(self, timeout: float = 2.0) -> bool:
        """Stop the stream; False when PortAudio did not return in time (a dead sound server)."""
        def stop() -> None:
            try:
                self.stream.stop_stream()
                self.stream.close()
                self.pa.terminate()
            except OSError:
                pass

        closer = threading.Thread(target=stop, daemon=True)
        closer.start()
        closer.join(timeout)
        return not closer.is_alive()


class FileSource:
    """A file played into the same chunk queue as the microphone, paced in real time or as fast as
    possible. Decoded a block at a time, so an hour-long file needs no more memory than a short one."""

    def __init__(self, path: str | Path, realtime: bool = False) -> None:
        from edge.audio import AudioReadError, mono_blocks

        self.path = Path(path)
        try:
            info, self._blocks = mono_blocks(self.path)
        except AudioReadError as error:
            raise AudioSourceError(str(error)) from None
        self.rate = info.rate
        self.realtime = realtime
        self.chunks = ChunkQueue(self.rate)
        self.finished = False
        self.error: str | None = None  # a decoding error part-way through the file
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, daemon=True)
        self._thread.start()

    def describe(self) -> str:
        return f"file {self.path} at {self.rate} Hz"

    def _play(self) -> None:
        from edge.audio import AudioReadError
        from edge.features import float_to_pcm16

        step, played, started = self.chunks.chunk_samples, 0, time.monotonic()
        try:
            for block in self._blocks:
                pcm = float_to_pcm16(block)
                for offset in range(0, pcm.size, step):
                    if self.realtime:
                        time.sleep(max(0.0, started + played / self.rate - time.monotonic()))
                    if not self._put(pcm[offset: offset + step].tobytes()):
                        return
                    played += min(step, pcm.size - offset)
        except AudioReadError as error:
            self.error = str(error)
        self.finished = True

    def _put(self, chunk: bytes) -> bool:
        """Wait for room in the queue (a file loses nothing); False once the source is closed."""
        while not self._stop.is_set():
            try:
                self.chunks.queue.put(chunk, timeout=POLL_PUT_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def read(self, timeout: float) -> bytes | None:
        return self.chunks.read(timeout)

    def alive(self) -> bool:
        return True

    def close(self, timeout: float = 2.0) -> bool:
        self._stop.set()
        return True
