"""Comments explain; the docs measure. No comment, docstring or message in the code names an issue
(the tracker's numbers mean nothing to a reader of the code) or a README section (the README is for
users and its sections move: results live in docs/ pages), and every docs page a comment names, with
the heading it quotes, exists."""
from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

from tests.support.data import PROJECT

CODE_FOLDERS = ("edge", "train", "convert", "benchmarks", "tests")
OTHER_FILES = ("Makefile", "pyproject.toml", ".ci/run")  # '#' comments
ISSUE = re.compile(r"\bissues?\s+#?\d+|(?<![\w/.-])#\d+\b", re.I)  # "issue 9", "#13"; not "keras-team/keras#20585"
README_SECTION = re.compile(r"README\s*\\?[\"“]")  # README "Some section"
DOCS_REFERENCE = re.compile(r"docs/([\w-]+\.md)(?: \\?\"([^\"\\\n]+)\\?\")?")  # docs/page.md ["Heading"]


def python_texts(path: Path) -> list[tuple[int, str]]:
    """Every comment and string literal (docstrings and messages included) of a Python file, with its line."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    return [(t.start[0], t.string) for t in tokens if t.type in (tokenize.COMMENT, tokenize.STRING)]


def hash_comments(path: Path) -> list[tuple[int, str]]:
    """The '#' comments of a Makefile, TOML file or shell script (a '#' at a line's start or after a space)."""
    found = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = re.search(r"(^|\s)(#.*)", line)
        if match:
            found.append((number, match.group(2)))
    return found


def project_texts() -> list[tuple[str, str]]:
    texts = []
    for folder in CODE_FOLDERS:
        for path in sorted((PROJECT / folder).rglob("*.py")):
            if path != Path(__file__).resolve():  # this file spells out the patterns
                texts += [(f"{path.relative_to(PROJECT)}:{line}", text) for line, text in python_texts(path)]
    for name in OTHER_FILES:
        texts += [(f"{name}:{line}", text) for line, text in hash_comments(PROJECT / name)]
    return texts


def headings(page: Path) -> set[str]:
    return {line.lstrip("#").strip().replace("`", "") for line in page.read_text().splitlines() if line.startswith("#")}


def test_no_issue_numbers_in_the_code():
    found = [f"{where}: {ISSUE.search(text).group(0)!r}" for where, text in project_texts() if ISSUE.search(text)]
    assert not found, "\n".join(found)


def test_no_readme_sections_named_in_the_code():
    found = [f"{where}: {text.strip()[:100]}" for where, text in project_texts() if README_SECTION.search(text)]
    assert not found, "\n".join(found)


def test_every_docs_page_and_heading_the_code_names_exists():
    missing = []
    for where, text in project_texts():
        for page, heading in DOCS_REFERENCE.findall(text):
            path = PROJECT / "docs" / page
            if not path.is_file():
                missing.append(f"{where}: docs/{page}")
            elif heading and heading.replace("`", "") not in headings(path):
                missing.append(f'{where}: docs/{page} "{heading}"')
    assert not missing, "\n".join(missing)


def test_the_patterns_catch_what_they_should_and_nothing_else():
    assert ISSUE.search("one bad file never stops a batch (issue 9)") and ISSUE.search("see #13")
    assert not ISSUE.search("keras-team/keras#20585") and not ISSUE.search("# 3: the drift gate failed")
    assert README_SECTION.search('README "Shipped models"') and README_SECTION.search('README \\"Features\\"')
    assert not README_SECTION.search("readme = \"README.md\"") and not README_SECTION.search("the README's test command")
    assert DOCS_REFERENCE.findall('(docs/models.md "Fewer labels"; docs/gpu.md)') == [("models.md", "Fewer labels"),
                                                                                     ("gpu.md", "")]
