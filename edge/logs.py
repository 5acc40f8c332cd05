"""Native libraries' chatter on stdout/stderr, kept off the user's terminal and out of `--json` output."""
from __future__ import annotations

import os
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from typing import Iterator

STDOUT, STDERR = 1, 2


@contextmanager
def quiet_stderr() -> Iterator[list[str]]:
    """Silence C-level chatter on fd 2 (the runtime's 'Created XNNPACK delegate' line, PortAudio's ALSA/JACK
    probing) and hand back its lines once the block ends; failures still reach the user as exceptions."""
    with quiet_native_output((STDERR,)) as lines:
        yield lines


@contextmanager
def quiet_native_output(fds: tuple[int, ...] = (STDOUT, STDERR)) -> Iterator[list[str]]:
    """Capture what native code writes to these file descriptors (LiteRT's GPU accelerator logs to stdout
    as well, and explains a refusal only there, not in its exception); the lines come back at the end."""
    lines: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    with ExitStack() as stack:
        for fd in fds:
            stack.enter_context(_captured(fd, lines))
        yield lines


@contextmanager
def _captured(fd: int, lines: list[str]) -> Iterator[None]:
    saved = os.dup(fd)
    try:
        with tempfile.TemporaryFile(mode="w+", errors="replace") as log:
            os.dup2(log.fileno(), fd)
            try:
                yield
            finally:
                os.dup2(saved, fd)
                log.seek(0)
                lines.extend(log.read().splitlines())
    finally:
        os.close(saved)
