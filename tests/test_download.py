"""`edge-ser download`: files served by a real HTTP server on 127.0.0.1, never the internet.
Checked: verified files kept, a tampered file rejected, an interrupted download resumed with a Range
request, a 404 a clear error, the licence acknowledged first, and the result readable by `train`."""
from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from edge.cli import app
from train.download import SOURCES, Expected, download, load_checksums, part_path

pytestmark = pytest.mark.host  # needs the host side (train/convert, TensorFlow)


class CorpusServer:
    """Serves `files` (URL path without the leading slash -> bytes) with HTTP Range support. A path in
    `cut_once` is cut off half-way the first time it is asked for; `requests` logs (path, Range)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_once: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path, wanted = self.path.lstrip("/"), self.headers.get("Range")
                server.requests.append((path, wanted))
                if path not in server.files:
                    self.send_error(404, "Not Found")
                    return
                body, start = server.files[path], int(wanted[6:].rstrip("-")) if wanted else 0
                if start >= len(body):
                    self.send_error(416, "Range Not Satisfiable")
                    return
                self.send_response(206 if wanted else 200)
                if wanted:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if path in server.cut_once:
                    server.cut_once.discard(path)
                    self.wfile.write(body[start:start + (len(body) - start) // 2])
                    return  # HTTP/1.0: the connection closes short of Content-Length
                self.wfile.write(body[start:])

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def fetched(self, path: str) -> list[str | None]:
        return [wanted for asked, wanted in self.requests if asked == path]


@pytest.fixture
def server():
    corpus_server = CorpusServer()
    yield corpus_server
    corpus_server.httpd.shutdown()
    corpus_server.httpd.server_close()


def wav_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    tone = np.sin(np.arange(8000) * (0.05 + 0.01 * seed)).astype(np.float32) * 0.3
    soundfile.write(buffer, tone, 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def release(names: list[str]) -> tuple[dict[str, bytes], dict[str, Expected]]:
    """Generated files under `names` and their checksums, as a corpus release would publish them."""
    contents = {name: wav_bytes(i) for i, name in enumerate(names)}
    return contents, {name: Expected(hashlib.sha256(data).hexdigest(), len(data)) for name, data in contents.items()}


CREMA_NAMES = [f"10{actor:02d}_DFA_{emotion}_XX.wav" for actor in range(1, 6) for emotion in ("ANG", "HAP", "SAD")]


def crema_release(server: CorpusServer):
    contents, checksums = release(CREMA_NAMES)
    server.files.update({f"AudioWAV/{name}": data for name, data in contents.items()})
    return replace(SOURCES["cremad"], base_url=server.url), contents, checksums


def no_progress(_: int) -> None:
    pass


def test_every_file_is_verified_and_kept_and_a_second_run_fetches_nothing(server, tmp_path):
    source, contents, checksums = crema_release(server)
    report = download(source, tmp_path, checksums, no_progress)
    assert sorted(report.kept) == sorted(CREMA_NAMES) and not report.failed
    for name, data in contents.items():
        assert (tmp_path / "AudioWAV" / name).read_bytes() == data
    assert not list(tmp_path.rglob("*.part"))
    asked = len(server.requests)
    again = download(source, tmp_path, checksums, no_progress)
    assert sorted(again.present) == sorted(CREMA_NAMES) and not again.kept and len(server.requests) == asked


def test_a_tampered_file_is_rejected_and_the_others_kept(server, tmp_path):
    source, contents, checksums = crema_release(server)
    tampered = CREMA_NAMES[3]
    data = bytearray(contents[tampered])
    data[100] ^= 0xFF  # same size, one byte changed
    server.files[f"AudioWAV/{tampered}"] = bytes(data)
    report = download(source, tmp_path, checksums, no_progress)
    assert list(report.failed) == [tampered] and "SHA-256 differs" in report.failed[tampered]
    assert not (tmp_path / "AudioWAV" / tampered).exists() and not part_path(tmp_path / "AudioWAV" / tampered).exists()
    assert len(report.kept) == len(CREMA_NAMES) - 1


def test_an_interrupted_download_resumes_where_it_stopped(server, tmp_path):
    source, contents, checksums = crema_release(server)
    cut = CREMA_NAMES[0]
    server.cut_once.add(f"AudioWAV/{cut}")
    first = download(source, tmp_path, checksums, no_progress)
    assert "connection lost" in first.failed[cut] and not (tmp_path / "AudioWAV" / cut).exists()
    arrived = part_path(tmp_path / "AudioWAV" / cut).stat().st_size
    assert 0 < arrived < len(contents[cut])
    second = download(source, tmp_path, checksums, no_progress)
    assert second.kept == [cut] and (tmp_path / "AudioWAV" / cut).read_bytes() == contents[cut]
    assert server.fetched(f"AudioWAV/{cut}") == [None, f"bytes={arrived}-"]  # only the rest was asked for


def test_a_zip_release_is_checked_member_by_member(server, tmp_path):
    names = [f"Actor_0{a}/03-01-0{e}-01-01-01-0{a}.wav" for a in (1, 2) for e in (1, 3, 5)]
    contents, checksums = release(names)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        for name, data in contents.items():
            bundle.writestr(name, b"tampered" + data[8:] if name == names[1] else data)
    source = replace(SOURCES["ravdess"], base_url=server.url)
    server.files[source.remote] = archive.getvalue()
    checksums["Actor_03/03-01-01-01-01-01-03.wav"] = Expected("0" * 64, 10)  # listed, not in the archive
    report = download(source, tmp_path, checksums, no_progress)
    assert list(report.failed) == [names[1]] and report.not_published == ["Actor_03/03-01-01-01-01-01-03.wav"]
    assert sorted(report.kept) == sorted(set(names) - {names[1]})
    assert not (tmp_path / names[1]).exists() and not list(tmp_path.rglob("*.part"))  # archive removed too


def test_a_dataverse_release_is_found_through_its_listing(server, tmp_path):
    names = ["OAF_angry/OAF_back_angry.wav", "OAF_angry/OAF_bar_angry.wav", "YAF_sad/YAF_beg_sad.wav"]
    contents, checksums = release(names)
    source = replace(SOURCES["tess"], base_url=server.url)
    listing = [{"label": Path(n).name, "dataFile": {"id": 100 + i, "filename": Path(n).name}} for i, n in enumerate(names[:2])]
    server.files[source.remote] = json.dumps({"status": "OK", "data": listing}).encode()
    server.files.update({f"api/access/datafile/{100 + i}": contents[n] for i, n in enumerate(names[:2])})
    report = download(source, tmp_path, checksums, no_progress)
    assert sorted(report.kept) == names[:2] and report.not_published == [names[2]] and not report.failed
    assert (tmp_path / names[0]).read_bytes() == contents[names[0]]


def test_downloaded_crema_d_is_what_train_reads(server, tmp_path):
    from edge.discovery import discover

    source, _, checksums = crema_release(server)
    download(source, tmp_path, checksums, no_progress)
    dataset = discover(tmp_path)
    assert {u.corpus for u in dataset.utterances} == {"cremad"} and len(dataset.utterances) == len(CREMA_NAMES)
    assert len({u.speaker for u in dataset.utterances}) == 5 and not dataset.skipped


# ------------------------------------------------------------------ the command, with the shipped checksums
def run_download(*args: str):
    return CliRunner().invoke(app, ["download", *args])


def test_the_licence_is_shown_and_must_be_accepted_first(server, tmp_path):
    dest = tmp_path / "crema"
    result = run_download("cremad", str(dest), "--mirror", server.url, "--limit", "1")
    assert result.exit_code == 2 and "Open Database License" in result.output and "--accept-licence" in result.output
    assert not dest.exists() and not server.requests


def test_a_tampered_file_fails_the_command_and_leaves_nothing(server, tmp_path):
    first = next(iter(load_checksums(SOURCES["cremad"], 1)))
    server.files[f"AudioWAV/{first}"] = b"RIFF not the release's file"
    dest = tmp_path / "crema"
    result = run_download("crema-d", str(dest), "--mirror", server.url, "--limit", "1", "--accept-licence")
    assert result.exit_code == 1 and "rejected" in result.output and "0 files downloaded" in result.output
    assert not [p for p in dest.rglob("*") if p.is_file() and not p.name.startswith(".edge-ser-licence")]


def test_a_missing_file_is_a_clear_error_and_acceptance_is_remembered(server, tmp_path):
    dest = tmp_path / "crema"
    assert run_download("cremad", str(dest), "--mirror", server.url, "--limit", "1", "--accept-licence").exit_code == 1
    result = run_download("cremad", str(dest), "--mirror", server.url, "--limit", "1")  # no flag: accepted before
    assert result.exit_code == 1 and "HTTP 404" in result.output and "Traceback" not in result.output


def test_an_unknown_corpus_or_unreachable_mirror_is_one_line(tmp_path):
    result = run_download("emodb", str(tmp_path), "--accept-licence")
    assert result.exit_code == 2 and "no download for 'emodb'" in result.output  # a usage error
    result = run_download("tess", str(tmp_path), "--accept-licence", "--mirror", "http://127.0.0.1:9/")
    assert result.exit_code == 1 and result.output.count("error:") == 1


def test_the_shipped_checksums_cover_each_release():
    counts = {name: len(load_checksums(source)) for name, source in SOURCES.items()}
    assert counts == {"cremad": 7442, "ravdess": 1440, "tess": 2800}  # ../shared/checksums/README.md
