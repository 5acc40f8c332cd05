"""`edge-ser download CORPUS DEST`: a public corpus fetched from its official host (or a mirror of
the same layout), resumably, every file verified against the SHA-256 of the official release
(`train/checksums/`) before it is kept under its own name.

A file is fetched into a hidden `.NAME.part` beside its final place; an interrupted fetch resumes
from there with an HTTP Range request. Only a file whose size and SHA-256 match is renamed into
place, so DEST never holds a half-written or tampered file under a corpus name. One failed file is
reported and the others go on. No TensorFlow here."""
from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from edge.errors import EXIT_USAGE, EdgeSerError
from train.datasets import CORPUS_LICENCES

CHECKSUMS_DIR = Path(__file__).parent / "checksums"  # copies of ../shared/checksums (the releases' SHA-256)
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60  # per connection attempt and per read
USER_AGENT = "edge-ser-download"

Progress = Callable[[int], None]  # called with each chunk's size in bytes


class DownloadError(EdgeSerError):
    """A file could not be fetched or verified: one line naming it."""


@dataclass(frozen=True)
class CorpusSource:
    """Where a corpus comes from and how it is laid out there. `layout`: `files` (one URL per file:
    base + remote + name), `zip` (one archive at base + remote, members checked one by one) or
    `dataverse` (a Dataverse dataset: the file listing at base + remote, each file by its id)."""
    corpus: str  # the project's corpus name (train.datasets.CORPUS_LICENCES)
    base_url: str  # the official host; `--mirror` replaces it
    layout: str
    remote: str
    checksums: str  # file in CHECKSUMS_DIR: {path relative to `local_dir`: [sha256, bytes]}
    local_dir: str = ""  # folder under DEST that the checksum paths are relative to
    terms_url: str = ""

    def url(self, remote_path: str) -> str:
        return self.base_url.rstrip("/") + "/" + remote_path


SOURCES = {
    # Git LFS content of the official repository, served by GitHub's media host.
    "cremad": CorpusSource("cremad", "https://media.githubusercontent.com/media/CheyneyComputerScience/CREMA-D/master/",
                           "files", "AudioWAV/", "crema-d.sha256.json.gz", local_dir="AudioWAV",
                           terms_url="https://github.com/CheyneyComputerScience/CREMA-D/blob/master/LICENSE.txt"),
    # Zenodo record 1188976: the speech part, one zip with Actor_01/ ... Actor_24/ at its root.
    "ravdess": CorpusSource("ravdess", "https://zenodo.org/", "zip", "records/1188976/files/Audio_Speech_Actors_01-24.zip",
                            "ravdess-speech.sha256.json.gz", terms_url="https://zenodo.org/records/1188976"),
    # University of Toronto Dataverse (now Borealis), doi:10.5683/SP2/E8H2MF.
    "tess": CorpusSource("tess", "https://borealisdata.ca/", "dataverse",
                         "api/datasets/:persistentId/versions/:latest-published/files?persistentId=doi:10.5683/SP2/E8H2MF",
                         "tess.sha256.json.gz", terms_url="https://doi.org/10.5683/SP2/E8H2MF"),
}
CORPUS_ALIASES = {"crema-d": "cremad"}
# EmoDB is not offered: no SHA-256 of its release was available to ship, and every file must be verified.


@dataclass(frozen=True)
class Expected:
    sha256: str
    size: int


@dataclass
class DownloadReport:
    kept: list[str] = field(default_factory=list)  # fetched and verified now
    present: list[str] = field(default_factory=list)  # already in DEST and verified
    failed: dict[str, str] = field(default_factory=dict)  # path -> why (not kept)
    not_published: list[str] = field(default_factory=list)  # in the checksums, absent from the source


def source_for(corpus: str, mirror: str | None = None) -> CorpusSource:
    name = CORPUS_ALIASES.get(corpus, corpus)
    if name not in SOURCES:
        raise DownloadError(f"no download for {corpus!r}: choose one of {', '.join(SOURCES)}", EXIT_USAGE)
    return replace(SOURCES[name], base_url=mirror) if mirror else SOURCES[name]


def licence_text(source: CorpusSource) -> str:
    return f"{source.corpus}: {CORPUS_LICENCES[source.corpus]}\nterms: {source.terms_url}"


def load_checksums(source: CorpusSource, limit: int = 0) -> dict[str, Expected]:
    """The release's files in name order (the first `limit` only, when given)."""
    with gzip.open(CHECKSUMS_DIR / source.checksums, "rt") as handle:
        table = json.load(handle)
    names = sorted(table)[:limit or None]
    return {name: Expected(*table[name]) for name in names}


def matches(path: Path, expected: Expected) -> bool:
    if not path.is_file() or path.stat().st_size != expected.size:
        return False
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest() == expected.sha256


def part_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


def open_url(url: str, offset: int = 0):
    """The response, or None when a resumed fetch is already complete (HTTP 416 past the end)."""
    headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={offset}-"} if offset else {})}
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            return None
        raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise DownloadError(f"{url}: {getattr(error, 'reason', error)}") from None


def fetch(url: str, part: Path, progress: Progress, size: int | None = None) -> None:
    """Fetch `url` into `part`, continuing from what `part` already holds (HTTP Range)."""
    offset = part.stat().st_size if part.is_file() else 0
    if size is not None and offset >= size:
        return  # complete (or too long: the check that follows rejects it)
    response = open_url(url, offset)
    if response is None:
        return
    with response:
        resumed = offset and response.status == 206
        if offset and not resumed:
            progress(-offset)  # the server sent the whole file again
        part.parent.mkdir(parents=True, exist_ok=True)
        with part.open("ab" if resumed else "wb") as out:
            try:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    progress(len(chunk))
            except (OSError, http.client.HTTPException) as error:  # reset, timeout, IncompleteRead
                raise DownloadError(f"{url}: connection lost ({error}); run again to resume") from None
        if response.length:  # read(amt) ends quietly when the server closes short of Content-Length
            raise DownloadError(f"{url}: connection lost {response.length} bytes short; run again to resume")


def keep_if_verified(part: Path, path: Path, expected: Expected) -> None:
    """Rename `part` to `path` if it is the release's file; otherwise delete it and say why."""
    if matches(part, expected):
        os.replace(part, path)
        return
    actual = part.stat().st_size if part.is_file() else 0
    part.unlink(missing_ok=True)
    why = "size" if actual != expected.size else "SHA-256"
    raise DownloadError(f"{path.name}: {why} differs from the official release ({actual} bytes, "
                        f"expected {expected.size}): rejected, not kept")


def download(source: CorpusSource, dest: Path, checksums: dict[str, Expected], progress: Progress) -> DownloadReport:
    """Every file of `checksums` into DEST/local_dir, verified; what is already there and right is kept."""
    root = dest / source.local_dir
    report = DownloadReport()
    wanted = {}
    for name, expected in checksums.items():
        if matches(root / name, expected):
            report.present.append(name)
        else:
            wanted[name] = expected
    if wanted:
        LAYOUTS[source.layout](source, root, wanted, progress, report)
    return report


def download_files(source: CorpusSource, root: Path, wanted: dict[str, Expected], progress: Progress,
                   report: DownloadReport, urls: dict[str, str] | None = None) -> None:
    """One URL per file (`urls`, or base + remote + name)."""
    for name, expected in wanted.items():
        path = root / name
        try:
            fetch(urls[name] if urls else source.url(source.remote + name), part_path(path), progress, expected.size)
            keep_if_verified(part_path(path), path, expected)
            report.kept.append(name)
        except DownloadError as error:
            report.failed[name] = str(error)


def download_dataverse(source: CorpusSource, root: Path, wanted: dict[str, Expected], progress: Progress,
                       report: DownloadReport) -> None:
    """A Dataverse dataset: its listing gives each file's id; files are matched by name (TESS's names
    are unique) and fetched from /api/access/datafile/ID."""
    with open_url(source.url(source.remote)) as response:
        try:
            listing = json.load(response)["data"]
        except (ValueError, KeyError, TypeError):
            raise DownloadError(f"{source.url(source.remote)}: not a Dataverse file listing") from None
    ids = {entry["dataFile"]["filename"]: entry["dataFile"]["id"] for entry in listing}
    urls = {name: source.url(f"api/access/datafile/{ids[Path(name).name]}") for name in wanted if Path(name).name in ids}
    report.not_published += [name for name in wanted if name not in urls]
    download_files(source, root, {name: wanted[name] for name in urls}, progress, report, urls)


def download_zip(source: CorpusSource, root: Path, wanted: dict[str, Expected], progress: Progress,
                 report: DownloadReport) -> None:
    """One archive (resumable), then each wanted member extracted beside its place and verified. The
    archive is deleted once read: kept when complete, or refetched whole when a member was wrong."""
    archive = root / f".{Path(source.remote).name}.part"
    fetch(source.url(source.remote), archive, progress)
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = set(bundle.namelist())
            report.not_published += [name for name in wanted if name not in members]
            for name in (n for n in wanted if n in members):
                extract_verified(bundle, name, root / name, wanted[name], report)
    except zipfile.BadZipFile:
        report.failed[source.remote] = f"{source.remote}: not a readable zip archive: deleted, run again"
    archive.unlink(missing_ok=True)


def extract_verified(bundle: zipfile.ZipFile, name: str, path: Path, expected: Expected, report: DownloadReport) -> None:
    part = part_path(path)
    part.parent.mkdir(parents=True, exist_ok=True)
    try:
        with bundle.open(name) as member, part.open("wb") as out:
            shutil.copyfileobj(member, out, CHUNK_BYTES)
        keep_if_verified(part, path, expected)
        report.kept.append(name)
    except (DownloadError, zipfile.BadZipFile, OSError) as error:
        part.unlink(missing_ok=True)
        report.failed[name] = str(error)


LAYOUTS = {"files": download_files, "zip": download_zip, "dataverse": download_dataverse}
