"""Files written whole or not at all: what a reader finds is the old file or the complete new one."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it, so it is read once, at import, before
    os.umask(mask)  # any thread of ours could create a file in between
    return mask


UMASK = _read_umask()


@contextmanager
def written_whole(path: Path) -> Iterator[IO[bytes]]:
    """Yield a temporary file of this process's own beside `path`; when the block ends it replaces `path`, or,
    if the block fails, it is removed and `path` is untouched. Processes side by side may write the same
    path (two trainings share a cache): each replaces it with a complete file of its own."""
    path = Path(path)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as file:
        temporary = Path(file.name)
        try:
            yield file
        except BaseException:
            file.close()
            temporary.unlink()
            raise
    os.chmod(temporary, 0o666 & ~UMASK)  # as open() would make it: NamedTemporaryFile makes it 0600
    temporary.replace(path)


def write_bytes_whole(path: Path, data: bytes) -> None:
    with written_whole(path) as file:
        file.write(data)
