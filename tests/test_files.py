"""Files written whole: a reader finds the old file or the complete new one, never a part."""
from concurrent.futures import ThreadPoolExecutor

import pytest

from edge.files import write_bytes_whole, written_whole


def test_writers_side_by_side_each_leave_a_whole_file(tmp_path):
    target = tmp_path / "model.tflite"
    payloads = [bytes([value]) * 300_000 for value in range(8)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda data: write_bytes_whole(target, data), payloads))
    assert target.read_bytes() in payloads
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left behind


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "bundle.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), written_whole(target) as file:
        file.write(b"half of the new")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_the_file_gets_the_mode_open_would_give_it(tmp_path):
    write_bytes_whole(tmp_path / "default.tflite", b"model")
    (tmp_path / "by-open").write_bytes(b"peer")
    assert (tmp_path / "default.tflite").stat().st_mode & 0o777 == (tmp_path / "by-open").stat().st_mode & 0o777
