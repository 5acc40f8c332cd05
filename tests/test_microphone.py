"""`edge-ser listen` reading a real PulseAudio virtual microphone through PyAudio (no mocks).

Each test starts its own daemon (tests/virtual_mic.py) and runs `edge-ser listen` as a separate
process, as a user would. Skips when PulseAudio or PyAudio is missing (`make test` installs both).
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.support.checks import assert_same_windows, json_lines
from tests.support.data import ANGRY, PROJECT, write_audio
from tests.support.virtual_mic import VirtualMic, pulseaudio_available

pytest.importorskip("pyaudio")
pytestmark = [pytest.mark.mic,
              pytest.mark.skipif(not pulseaudio_available(), reason="PulseAudio is not installed (make sysdeps)")]

EDGE_SER = [sys.executable, "-c", "from edge.cli import main; main()"]


class Listener:
    """`edge-ser listen` in its own process, with its stdout and stderr collected line by line."""

    def __init__(self, mic: VirtualMic, *args: str, sigint_ignored: bool = False) -> None:
        import signal

        # a background job of a shell script starts with SIGINT ignored: `listen` must stop on it anyway
        ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
        self.process = subprocess.Popen(EDGE_SER + ["listen", *args], env=mic.env, cwd=PROJECT, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=ignore)
        self.stdout: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._collect, args=(self.process.stdout, self.stdout.put), daemon=True).start()
        threading.Thread(target=self._collect, args=(self.process.stderr, self.stderr.append), daemon=True).start()

    @staticmethod
    def _collect(stream, sink) -> None:
        for line in stream:
            sink(line)

    def wait_for_stderr(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.stderr:
                if text in line:
                    return line
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} on stderr: {''.join(self.stderr)}")

    def next_json(self, timeout: float = 30) -> dict:
        return json.loads(self.stdout.get(timeout=timeout))

    def stop_within(self, timeout: float) -> int:
        """The exit code; if it has not exited in time, its threads' stacks (SIGUSR1) go into the failure."""
        import signal

        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(1)
            self.process.kill()
            raise AssertionError(f"listen did not exit within {timeout} s:\n{''.join(self.stderr)}") from None

    def finish(self, timeout: float = 60) -> tuple[int, list[dict]]:
        code = self.process.wait(timeout)
        time.sleep(0.1)  # let the reader threads drain
        lines = []
        while not self.stdout.empty():
            lines.append(self.stdout.get())
        return code, json_lines("".join(lines))


def clip_pcm(rate: int, tmp_path: Path) -> tuple[np.ndarray, Path]:
    """The demo clip as int16 at `rate`, and a file holding exactly those samples."""
    from edge.resample import resample

    signal, clip_rate = soundfile.read(ANGRY, dtype="int16")
    if rate == clip_rate:
        return signal, ANGRY
    pcm = np.clip(np.round(resample(signal / 32768.0, clip_rate, rate) * 32768), -32768, 32767).astype(np.int16)
    return pcm, write_audio(tmp_path / f"clip-{rate}.wav", pcm / 32768.0, rate)


@pytest.mark.parametrize("rate", [16000, 48000])
def test_microphone_windows_match_classify(tmp_path: Path, rate: int):
    pcm, clip_file = clip_pcm(rate, tmp_path)
    seconds = pcm.size / rate
    with VirtualMic(tmp_path, rate) as mic:
        listener = Listener(mic, "--json", "--silence-db", "-100", "--rate", str(rate), "--duration", f"{seconds:.3f}")
        opened = listener.wait_for_stderr("listening:")
        assert f"at {rate} Hz" in opened
        assert ("resampled to 16000 Hz" in opened) == (rate != 16000)
        mic.write(pcm)
        mic.feed_silence()  # keeps audio flowing so the last chunk arrives
        code, windows = listener.finish()
    assert code == 0, "".join(listener.stderr)
    classified = subprocess.run(EDGE_SER + ["classify", "--json", "--windows", "--trim", "window", str(clip_file)],
                                capture_output=True, text=True, cwd=PROJECT, check=True)
    inside = [w for w in windows if w["end"] <= seconds + 1e-6]
    assert len(inside) >= 3
    assert_same_windows(inside, json_lines(classified.stdout)[0]["windows"])
    assert "input overflows 0, dropped chunks 0" in "".join(listener.stderr)


def test_microphone_silence_is_reported_as_silence(tmp_path: Path):
    with VirtualMic(tmp_path, 16000) as mic:
        listener = Listener(mic, "--json", "--duration", "4")
        listener.wait_for_stderr("listening:")
        mic.feed_silence()
        code, windows = listener.finish()
    assert code == 0, "".join(listener.stderr)
    assert len(windows) == 5  # a 2 s window every 0.5 s over 4 s of audio
    assert {w["label"] for w in windows} == {"silence"}


def test_sound_server_killed_mid_run_gives_a_clear_exit(tmp_path: Path):
    with VirtualMic(tmp_path, 16000) as mic:
        listener = Listener(mic, "--json", "--stall-timeout", "3")
        listener.wait_for_stderr("listening:")
        mic.feed_silence()
        assert listener.next_json()["label"] == "silence"  # it is really listening
        mic.kill()
        code = listener.stop_within(30)  # not a hang
    stderr = "".join(listener.stderr)
    assert code == 1, stderr
    assert "error:" in stderr and ("stream stopped" in stderr or "no audio from the microphone" in stderr)
    assert "listened to" in stderr  # the summary comes before the error
    assert "Traceback" not in stderr


def test_devices_lists_the_microphone_with_its_rates(tmp_path: Path):
    with VirtualMic(tmp_path, 16000) as mic:
        result = subprocess.run(EDGE_SER + ["devices", "--json"], env=mic.env, capture_output=True, text=True,
                                cwd=PROJECT, timeout=60)
    assert result.returncode == 0, result.stderr
    devices = json.loads(result.stdout)
    default = [d for d in devices if d["default"]]
    assert default and {16000, 48000} <= set(default[0]["rates"])


def test_no_device_is_exit_1_in_text_and_json_alike(tmp_path: Path):
    """One rule: no input device is a failure, whether the list is text or JSON."""
    env = {**os.environ, "PULSE_SERVER": f"unix:{tmp_path}/no-server"}
    text, as_json = (subprocess.run(EDGE_SER + ["devices", *extra], env=env, capture_output=True, text=True,
                                    cwd=PROJECT, timeout=60) for extra in ([], ["--json"]))
    if json.loads(as_json.stdout or "[]"):
        pytest.skip("this machine has a sound card of its own")
    assert (text.returncode, as_json.returncode) == (1, 1)
    assert "no audio input device found" in text.stderr and as_json.stdout.strip() == "[]"


@pytest.mark.parametrize("stop, said, inherited_ignored", [("SIGINT", "stopped by Ctrl-C", False),
                                                           ("SIGINT", "stopped by Ctrl-C", True),
                                                           ("SIGTERM", "stopped by SIGTERM", False)],
                         ids=["SIGINT", "SIGINT-inherited-ignored", "SIGTERM"])
def test_ctrl_c_or_sigterm_stops_cleanly_with_a_summary(tmp_path: Path, stop: str, said: str, inherited_ignored: bool):
    import signal

    with VirtualMic(tmp_path, 16000) as mic:
        listener = Listener(mic, "--json", sigint_ignored=inherited_ignored)
        listener.wait_for_stderr("listening:")
        mic.feed_silence()
        listener.next_json()
        listener.process.send_signal(getattr(signal, stop))
        code = listener.stop_within(30)
    stderr = "".join(listener.stderr)
    assert code == 0, stderr
    assert said in stderr and "input overflows 0" in stderr and "Traceback" not in stderr
