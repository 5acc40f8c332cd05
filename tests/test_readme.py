"""The README is for users: short, its first screen says what to expect and under which licence, its
commands exist, and every link into docs/ lands on a page and a heading that exist."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from edge.bundle_json import read_bundle
from edge.cli import app
from edge.runtime import MODELS_DIR, SHIPPED_MODELS

PROJECT = Path(__file__).resolve().parents[1]
README = PROJECT / "README.md"
DOCS = PROJECT / "docs"
MAX_README_LINES = 300
FIRST_SCREEN_LINES = 40
LINK = re.compile(r"\]\(([^)\s]+)\)")


def first_screen() -> str:
    return "\n".join(README.read_text().splitlines()[:FIRST_SCREEN_LINES])


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {github_anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def local_links(page: Path) -> list[tuple[Path, str]]:
    """(target file, anchor) of every link from `page` to a Markdown file of this repository."""
    links = []
    for target in LINK.findall(page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        if path.endswith(".md") or (not path and anchor):
            links.append(((page.parent / path).resolve() if path else page, anchor))
    return links


def test_readme_is_at_most_300_lines():
    assert len(README.read_text().splitlines()) <= MAX_README_LINES


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_every_link_to_a_page_and_heading_resolves(page: Path):
    for target, anchor in local_links(page):
        assert target.is_file(), f"{page.name} links to a missing page: {target}"
        if anchor:
            assert anchor in anchors(target), f"{page.name} links to a missing heading: {target.name}#{anchor}"


def test_readme_and_design_link_every_results_page():
    for name in ("models.md", "calibration.md", "reliability.md", "performance.md", "gpu.md"):
        assert (DOCS / name).is_file()
        assert f"docs/{name}" in README.read_text(), name
        assert f"]({name}" in (DOCS / "design.md").read_text(), name


def test_every_make_target_the_readme_names_exists():
    makefile = (PROJECT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.M))
    named = set(re.findall(r"\bmake ([a-z][\w-]*)", README.read_text()))
    assert {"demo", "test"} <= named
    assert named <= targets, f"README names make targets the Makefile lacks: {sorted(named - targets)}"


def test_every_verb_the_readme_names_exists():
    verbs = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    named = set(re.findall(r"\bedge-ser ([a-z]+)\b", README.read_text()))
    assert named <= verbs, f"README names verbs the CLI lacks: {sorted(named - verbs)}"


def test_first_screen_has_the_two_commands_and_the_install():
    screen = first_screen()
    assert "make demo" in screen and "make test" in screen
    assert "pip install '.[edge]'" in README.read_text()


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_first_screen_states_each_shipped_models_estimate_and_licence(name: str):
    """The figures and licence the shipped model's own bundle carries, not figures typed from memory."""
    bundle = read_bundle(MODELS_DIR / f"{name}.tflite")
    row = next((line for line in first_screen().splitlines() if line.startswith(f"| `{name}` |")), None)
    assert row is not None, f"no row for `{name}` on the README's first screen"
    assert bundle.licence is not None
    non_commercial = bundle.licence.upper().startswith("NON-COMMERCIAL")
    assert ("non-commercial" in row) == non_commercial, f"`{name}`'s licence: {bundle.licence}"
    assert non_commercial or "commercial use allowed" in row
    for corpus, scores in bundle.metrics_per_corpus.items():
        assert f"{scores.unweighted_accuracy:.3f}" in row, f"`{name}`'s estimate on {corpus}"
    if len(bundle.metrics_per_corpus) > 1:
        assert bundle.metrics is not None and f"{bundle.metrics.accuracy:.3f}" in row, f"`{name}`'s accuracy"
