"""A real microphone without hardware: a private PulseAudio daemon with a pipe source fed from a FIFO.

Recipe from docs/design.md: `module-pipe-source` creates the FIFO (it must not exist beforehand); PyAudio
reads what is written into it bit-exact on the `default` and `pulse` ALSA devices. Each instance
has its own XDG_RUNTIME_DIR, so tests can kill their daemon without touching anyone else's.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np


def pulseaudio_available() -> bool:
    return shutil.which("pulseaudio") is not None and shutil.which("pactl") is not None


class VirtualMic:
    def __init__(self, directory: Path, rate: int = 16000) -> None:
        self.rate = rate
        self.runtime_dir = directory / "xdg"
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        self.fifo = directory / f"mic-{rate}.fifo"
        self.env = dict(os.environ, XDG_RUNTIME_DIR=str(self.runtime_dir))
        self.env.pop("PULSE_SERVER", None)
        source = f"module-pipe-source source_name=vmic file={self.fifo} format=s16le rate={rate} channels=1"
        subprocess.run(["pulseaudio", "-D", "-n", "--exit-idle-time=-1", "--load=module-native-protocol-unix",
                        "--load=module-null-sink sink_name=vspk", f"--load={source}"],
                       env=self.env, check=True, capture_output=True, timeout=30)
        subprocess.run(["pactl", "set-default-source", "vmic"], env=self.env, check=True, capture_output=True, timeout=30)
        self._writer = None
        self._stop = threading.Event()

    @property
    def pid(self) -> int | None:
        try:
            return int((self.runtime_dir / "pulse" / "pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def open_writer(self):
        if self._writer is None:
            self._writer = open(self.fifo, "wb", buffering=0)
        return self._writer

    def write(self, pcm16: np.ndarray) -> None:
        """Write int16 samples as fast as the daemon takes them (faster than real time)."""
        self.open_writer().write(np.asarray(pcm16, dtype="<i2").tobytes())

    def feed_silence(self, seconds_per_write: float = 0.05) -> threading.Thread:
        """Keep the microphone delivering zeros at real time in the background (like a quiet room)."""
        def run() -> None:
            zeros = np.zeros(int(self.rate * seconds_per_write), dtype="<i2").tobytes()
            while not self._stop.is_set():
                try:
                    self.open_writer().write(zeros)
                except (BrokenPipeError, OSError):
                    return
                time.sleep(seconds_per_write)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def _signal_daemon(self, number: int) -> None:
        pid = self.pid
        if pid:
            try:
                os.kill(pid, number)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """Kill the daemon the hard way, as a crash would."""
        self._signal_daemon(signal.SIGKILL)

    def stop(self) -> None:
        self._stop.set()
        self._signal_daemon(signal.SIGTERM)
        if self._writer is not None:
            try:
                self._writer.close()
            except OSError:
                pass

    def __enter__(self) -> "VirtualMic":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
