"""The repository stands on its own: a licence as setup.cfg declares, and no file that points outside it."""

from __future__ import annotations

import configparser
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIPPED = {".git", ".venv", "__pycache__", ".hypothesis", ".pytest_cache", ".mypy_cache", ".ruff_cache", "build", "dist"}
TEXT = {".py", ".md", ".cfg", ".toml", ".sh", ".ipynb", ".txt", ".yml", ".yaml"}
# A relative path that climbs to a parent folder, once or more, then names something.
CLIMB = re.compile(r"(?<![\w.])((?:\.\./)+[\w.-]+(?:/[\w.-]+)*)")
# Path(__file__), resolved or not, then any number of ".parent" and at most one ".parents[k]".
FILE_ANCESTOR = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?((?:\.parent\b)*)(?:\.parents\[(\d+)\])?")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
# A Markdown document named in prose or code ("README.md", "docs/accuracy.md").
DOCUMENT = re.compile(r"(?<![\w/.-])([\w./-]*\w\.md)\b")
# A path under one of the project's folders ("tests/fixtures/strd", "benchmarks/soak.py").
PROJECT_PATH = re.compile(r"(?<![\w/.-])((?:service|tests|benchmarks|docs|examples)/[\w./-]*\w)")
# A module of the project run with "python -m" ("benchmarks.soak").
PROJECT_MODULE = re.compile(r"-m ((?:service|tests|benchmarks)(?:\.\w+)+)")


def repository_files() -> Iterator[Path]:
    """The project's own text files: no virtual environment, caches or byte-exact fixtures."""
    for path in sorted(ROOT.rglob("*")):
        parts = path.relative_to(ROOT).parts
        if any(part in SKIPPED or part.endswith(".egg-info") for part in parts):
            continue
        if parts[:3] == ("tests", "fixtures", "json"):  # hostile bytes, not prose (its README is checked)
            if path.name != "README.md":
                continue
        if path.is_file() and (path.suffix in TEXT or path.parent.name == ".ci"):
            yield path


FILES = list(repository_files())


def inside(path: Path) -> bool:
    return path.resolve().is_relative_to(ROOT)


def test_the_files_are_found() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in FILES}
    assert {"README.md", "setup.cfg", "service/app.py", "tests/conftest.py", ".ci/run"} <= names


def test_license_is_the_one_setup_cfg_declares() -> None:
    metadata = configparser.ConfigParser()
    metadata.read(ROOT / "setup.cfg")
    assert metadata["metadata"]["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the fitserve authors" in text
    assert "Permission is hereby granted, free of charge, to any person obtaining a copy" in text


@pytest.mark.parametrize("path", FILES, ids=[p.relative_to(ROOT).as_posix() for p in FILES])
def test_no_relative_path_climbs_out_of_the_repository(path: Path) -> None:
    """A relative path that climbs to a parent folder names something in the repository, seen from its file's folder."""
    for target in CLIMB.findall(path.read_text(errors="replace")):
        resolved = path.parent / target
        assert inside(resolved) and resolved.exists(), f"{target} leads outside the repository"


@pytest.mark.parametrize(
    "path", [p for p in FILES if p.suffix == ".py"], ids=[p.relative_to(ROOT).as_posix() for p in FILES if p.suffix == ".py"]
)
def test_no_module_reads_above_the_repository(path: Path) -> None:
    """``Path(__file__)`` climbs at most to the repository's top folder."""
    depth = len(path.relative_to(ROOT).parts)  # levels from the file up to the top folder
    for parents, index in FILE_ANCESTOR.findall(path.read_text()):
        levels = parents.count(".parent") + (int(index) + 1 if index else 0)
        assert levels <= depth, f"Path(__file__) climbs {levels} levels; the top folder is {depth} up"


@pytest.mark.parametrize(
    "path", [p for p in FILES if p.suffix == ".md"], ids=[p.relative_to(ROOT).as_posix() for p in FILES if p.suffix == ".md"]
)
def test_markdown_links_lead_to_files_in_the_repository(path: Path) -> None:
    for target in MARKDOWN_LINK.findall(path.read_text()):
        if re.match(r"[a-z]+:|#", target):  # a web address or an anchor on the same page
            continue
        resolved = path.parent / target.split("#")[0]
        assert inside(resolved) and resolved.exists(), f"{target} is not a file of the repository"


@pytest.mark.parametrize("path", FILES, ids=[p.relative_to(ROOT).as_posix() for p in FILES])
def test_every_document_named_is_in_the_repository(path: Path) -> None:
    """A ``.md`` file named anywhere is one of the repository's, by path or by name."""
    names = {other.name for other in FILES}
    for named in DOCUMENT.findall(path.read_text(errors="replace")):
        found = (ROOT / named).exists() or (path.parent / named).exists() or ("/" not in named and named in names)
        assert found, f"{named} is not a document of the repository"


@pytest.mark.parametrize("path", FILES, ids=[p.relative_to(ROOT).as_posix() for p in FILES])
def test_every_project_path_named_exists(path: Path) -> None:
    """A path under service/, tests/, benchmarks/, docs/ or examples/, or a module run with ``-m``, is there."""
    text = path.read_text(errors="replace")
    for named in PROJECT_PATH.findall(text):
        assert (ROOT / named).exists(), f"{named} is not in the repository"
    for module in PROJECT_MODULE.findall(text):
        where = ROOT.joinpath(*module.split("."))
        assert where.with_suffix(".py").exists() or (where / "__init__.py").exists(), f"no module {module}"


def test_readme_links_each_document_in_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    documents = sorted((ROOT / "docs").glob("*.md"))
    assert documents
    for document in documents:
        assert f"](docs/{document.name})" in readme, document.name
