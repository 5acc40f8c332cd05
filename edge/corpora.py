"""Canonical emotion labels and the file-name conventions of the public corpora.

Pure Python (no audio): used by training to label files and by the demo to show the true label.

Label choices (docs/design.md contract 3):
- One name per emotion: RAVDESS "fearful", TESS "fear", CREMA-D "FEA", EmoDB "A" (Angst) -> "fear".
- "surprise" covers RAVDESS "surprised" and TESS "pleasant surprise" (`ps`): TESS has no other
  surprise, and both are acted, positive-valence surprise.
- "calm" (RAVDESS) and "boredom" (EmoDB "L", Langeweile) stay classes of their own: merging them
  into neutral would silently change the RAVDESS 8-class protocol that papers report on.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

CANONICAL_LABELS = ("neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise", "boredom")

# The six emotions RAVDESS, TESS and CREMA-D all define: cross-corpus scores use these.
SHARED_LABELS = ("neutral", "happy", "sad", "angry", "fear", "disgust")

# Per-corpus code -> canonical label, from each corpus's documentation.
RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad",
                    "05": "angry", "06": "fear", "07": "disgust", "08": "surprise"}
TESS_EMOTIONS = {"angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy",
                 "neutral": "neutral", "ps": "surprise", "sad": "sad"}
CREMAD_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
SAVEE_EMOTIONS = {"a": "angry", "d": "disgust", "f": "fear", "h": "happy", "n": "neutral", "sa": "sad", "su": "surprise"}
EMODB_EMOTIONS = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fear", "F": "happy", "T": "sad", "N": "neutral"}
# Folder names a generic `label/...` layout may use.
LABEL_SYNONYMS = {
    **{label: label for label in CANONICAL_LABELS},
    "fearful": "fear", "surprised": "surprise", "ps": "surprise", "pleasant_surprise": "surprise",
    "pleasant surprise": "surprise", "anger": "angry", "happiness": "happy", "sadness": "sad",
    "disgusted": "disgust", "bored": "boredom", "joy": "happy",
}



def canonical_label(name: str) -> str:
    """A label as a user or a folder may write it (`fearful`, `Anger`) in the canonical vocabulary; a name
    that is no known label comes back as written, for the caller to refuse with the labels it has."""
    return LABEL_SYNONYMS.get(name.strip().lower(), name)


SAVEE_SPEAKERS = ("DC", "JE", "JK", "KL")
TESS_SPEAKERS = ("OAF", "YAF")

_RAVDESS = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_TESS = re.compile(r"^([A-Za-z]+)_([A-Za-z]+)_([A-Za-z]+)$")
_CREMAD = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
_SAVEE = re.compile(r"^(?:([A-Z]{2})_)?(sa|su|a|d|f|h|n)(\d\d)$")
_EMODB = re.compile(r"^(\d\d)([ab]\d\d)([WLEAFTN])([a-z])$")


@dataclass(frozen=True)
class ParsedName:
    label: str
    speaker: str | None  # corpus-qualified ("ravdess:17"); None when the convention has none


def parse_ravdess(path: Path) -> ParsedName | None:
    """MM-VV-EE-II-SS-RR-AA: modality, channel, emotion, intensity, statement, repetition, actor."""
    match = _RAVDESS.match(path.stem)
    if not match or match.group(3) not in RAVDESS_EMOTIONS:
        return None
    return ParsedName(RAVDESS_EMOTIONS[match.group(3)], f"ravdess:{match.group(7)}")


def parse_tess(path: Path) -> ParsedName | None:
    """<SPK>_<word>_<emotion>; the speaker comes from the folder (one file says OA for OAF)."""
    match = _TESS.match(path.stem)
    if not match or match.group(3).lower() not in TESS_EMOTIONS:
        return None
    folder_speaker = path.parent.name.split("_")[0].upper()
    speaker = folder_speaker if folder_speaker in TESS_SPEAKERS else match.group(1).upper()
    if speaker not in TESS_SPEAKERS:
        return None
    return ParsedName(TESS_EMOTIONS[match.group(3).lower()], f"tess:{speaker}")


def parse_cremad(path: Path) -> ParsedName | None:
    """<actor>_<sentence>_<emotion>_<level>, e.g. 1001_DFA_ANG_XX."""
    match = _CREMAD.match(path.stem)
    if not match or match.group(3) not in CREMAD_EMOTIONS:
        return None
    return ParsedName(CREMAD_EMOTIONS[match.group(3)], f"cremad:{match.group(1)}")


def parse_savee(path: Path) -> ParsedName | None:
    """DC_a01 (flattened download) or DC/a01 (original AudioData/<speaker>/ layout)."""
    match = _SAVEE.match(path.stem)
    if not match:
        return None
    speaker = match.group(1) or path.parent.name
    if speaker not in SAVEE_SPEAKERS:
        return None
    return ParsedName(SAVEE_EMOTIONS[match.group(2)], f"savee:{speaker}")


def parse_emodb(path: Path) -> ParsedName | None:
    """<speaker><text><emotion><version>, e.g. 03a01Fa: speaker 03, text a01, F = Freude (happy)."""
    match = _EMODB.match(path.stem)
    if not match:
        return None
    return ParsedName(EMODB_EMOTIONS[match.group(3)], f"emodb:{match.group(1)}")


def parse_label_folder(path: Path) -> ParsedName | None:
    """Generic layout: <root>/<label>/<file>; no speaker information."""
    label = LABEL_SYNONYMS.get(path.parent.name.lower())
    return ParsedName(label, None) if label else None


NAME_PARSERS = {
    "ravdess": parse_ravdess,
    "tess": parse_tess,
    "cremad": parse_cremad,
    "savee": parse_savee,
    "emodb": parse_emodb,
    "folder": parse_label_folder,
}

AUTO_CORPUS = "auto"  # the default of --corpus: each folder has its naming convention detected from its files
CORPUS_CHOICES = (AUTO_CORPUS, *NAME_PARSERS, "csv")  # --corpus: detect, a naming convention, or a CSV manifest


def parse_any(path: Path) -> tuple[str, ParsedName] | None:
    """Try every named corpus convention (not the generic folder one): (corpus, parsed) or None."""
    for corpus, parser in NAME_PARSERS.items():
        parsed = parser(path) if corpus != "folder" else None
        if parsed:
            return corpus, parsed
    return None
