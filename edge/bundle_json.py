"""The bundle as JSON: a training run's bundle.json, and the metadata entry inside a `.tflite`.

edge-ser stores its bundle (labels, feature params, corpora, metrics, ...) as the `.tflite` metadata entry
named `edge_ser_bundle` (edge/tflite_metadata.py reads the entries). The bundle's first entry is the
file's digest: SHA-256 of the whole `.tflite` (network, weights, header and the bundle itself) as written
with the digest's own 64 hex digits set to zeros, so that writing it changes nothing it covers. Loading
checks it, and a file that does not match is refused as damaged; a file written before edge-ser recorded a
digest has none and loads unchecked (docs/reliability.md "A damaged model is refused").
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from edge.bundle import DIGEST_KEY, Bundle, ModelBundleError
from edge.files import write_bytes_whole
from edge.tflite_metadata import read_metadata

METADATA_NAME = "edge_ser_bundle"
DIGEST_PREFIX = "sha256:"
UNSTAMPED_DIGEST = DIGEST_PREFIX + "0" * 64  # what a writer embeds; stamp_digest fills it in
DIGEST_VALUE = re.compile(DIGEST_PREFIX + "[0-9a-f]{64}")
# A bundle whose first entry holds a digest under a name that is not DIGEST_KEY: that name was damaged.
DIGEST_UNDER_OTHER_NAME = re.compile(rb'\{"[^"]*": "' + DIGEST_PREFIX.encode() + rb'[0-9a-f]{64}"')


def read_bundle_json(path: Path) -> Bundle:
    """A training run's bundle.json (the host side) as a Bundle."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ModelBundleError(f"cannot read {path}: {error}") from None
    return Bundle.from_dict(raw, str(path))


def write_bundle_json(path: Path, bundle: Bundle) -> None:
    """bundle.json written whole or not at all."""
    write_bytes_whole(path, json.dumps(bundle.to_dict(), indent=2).encode())


def read_bundle(model_path: str | Path) -> Bundle:
    """The bundle of a `.tflite`, once its digest (if it has one) matches the file."""
    path = Path(model_path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelBundleError(f"cannot read model {path}: {error.strerror or error}") from None
    entries = read_metadata(data, str(path))
    if METADATA_NAME not in entries:
        raise ModelBundleError(f"{path} has no edge-ser bundle (was it made by `edge-ser quantize`?)")
    try:
        raw = json.loads(entries[METADATA_NAME])
    except ValueError as error:
        raise ModelBundleError(f"{path} is damaged: its bundle is not valid JSON ({error})") from None
    if isinstance(raw, dict):
        check_digest(data, entries[METADATA_NAME], raw.get(DIGEST_KEY), path)
    return Bundle.from_dict(raw, str(path))


def bundle_metadata(record: dict[str, Any]) -> bytes:
    """What a writer embeds as the `edge_ser_bundle` metadata: the record as JSON, its digest entry first and
    still zeros. Once the whole `.tflite` is built, `stamp_digest` fills the digest in."""
    return json.dumps({DIGEST_KEY: UNSTAMPED_DIGEST, **{k: v for k, v in record.items() if k != DIGEST_KEY}}).encode()


def stamp_digest(model: bytes) -> bytes:
    """A finished `.tflite` whose bundle came from `bundle_metadata`, with its digest filled in."""
    unstamped = _digest_entry(UNSTAMPED_DIGEST)
    if model.count(unstamped) != 1:
        raise ModelBundleError("the model holds no unstamped bundle digest (its bundle was not made by bundle_metadata)")
    return model.replace(unstamped, _digest_entry(model_digest(model)))


def model_digest(unstamped_model: bytes) -> str:
    return DIGEST_PREFIX + hashlib.sha256(unstamped_model).hexdigest()


def check_digest(model: bytes, bundle_json: bytes, digest: Any, path: Path) -> None:
    """Refuse a file whose digest does not match it (ModelBundleError: "... is damaged: ...")."""
    if digest is None:
        if DIGEST_UNDER_OTHER_NAME.match(bundle_json):
            raise ModelBundleError(f"{path} is damaged: the name of its digest entry was changed")
        return  # written before edge-ser recorded a digest: nothing to check against
    if not isinstance(digest, str) or not DIGEST_VALUE.fullmatch(digest):
        raise ModelBundleError(f"{path} is damaged: its digest is not a SHA-256 ({str(digest)[:80]!r})")
    stamped = _digest_entry(digest)
    if model.count(stamped) != 1 or model_digest(model.replace(stamped, _digest_entry(UNSTAMPED_DIGEST))) != digest:
        raise ModelBundleError(f"{path} is damaged: its bytes do not match the digest it was written with "
                               "(a copy cut short or altered); copy it again or re-export it")


def _digest_entry(digest: str) -> bytes:
    return json.dumps({DIGEST_KEY: digest})[1:-1].encode()
