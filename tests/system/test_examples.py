"""The README stays true: its commands are CI's, and its curl examples run as shown."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

import service

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def curl_examples() -> list[tuple[str, str | None]]:
    """Each README curl line, with the answer shown right after it (if complete)."""
    examples = []
    for match in re.finditer(r"```sh\n(curl [^\n]*)\n```(?:\n```(?:json|csv)\n(.*?)```)?", README, flags=re.S):
        shown = match.group(2)
        examples.append((match.group(1), shown if shown and "..." not in shown else None))
    return examples


def unquoted(command: str) -> str:
    return command.replace("'", "").replace('"', "")


def test_ci_runs_the_readme_test_command() -> None:
    test_command = next(b.strip() for b in code_blocks("sh") if "pytest" in b and "pip install" in b)
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_readme_starts_the_service_with_one_command() -> None:
    assert any(b.strip().endswith(".venv/bin/fitserve") and "pip install -e ." in b for b in code_blocks("sh"))


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with service.serve_in_background(port=0) as running:
        yield running.url


def run_shell(command: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["sh", "-c", command], cwd=ROOT, capture_output=True, timeout=60)


def test_curl_and_jq_are_here() -> None:
    assert shutil.which("curl") and shutil.which("jq"), "the examples need curl and jq (.ci/run installs jq)"


def test_every_curl_example_is_in_the_examples_script() -> None:
    script = (ROOT / "examples" / "curl.sh").read_text()
    for command, _ in curl_examples():
        if "@examples/" in command:
            assert unquoted(command.replace("localhost:8000", "$URL")) in unquoted(script)


@pytest.mark.live
@pytest.mark.parametrize("command, shown", curl_examples(), ids=[c for c, _ in curl_examples()])
def test_readme_curl_example_answers_as_shown(url: str, command: str, shown: str | None, tmp_path: Path) -> None:
    if " -o fit.svg " in command:  # the picture, saved where the test says rather than into the checkout
        saved = tmp_path / "fit.svg"
        done = run_shell(command.replace("localhost:8000", url).replace("-o fit.svg", f"-o {saved}") + " -s -w '%{http_code}'")
        assert done.returncode == 0 and done.stdout == b"200", done.stderr
        assert_is_the_picture_of_the_fit(saved)
        return
    done = run_shell(command.replace("localhost:8000", url) + " -s -w '\\n%{http_code}'")
    assert done.returncode == 0, done.stderr
    body, _, status = done.stdout.decode().rstrip().rpartition("\n")
    if "text/csv" in command and "Accept" in command:
        assert status == "200", body
        rows = [line.split(",") for line in body.strip().splitlines()]
        expected = [line.split(",") for line in (shown or "").strip().splitlines()]
        assert rows[0] == expected[0]
        assert [float(v) for row in rows[1:] for v in row] == pytest.approx(
            [float(v) for row in expected[1:] for v in row], rel=1e-9
        )
        return
    answer = orjson.loads(body)
    if "null" in command:  # the errors example
        assert status == "422" and answer["field"] == "X_train"
    else:
        assert status == "200", body
    if shown is not None:
        expected = orjson.loads(shown)
        assert set(answer) == set(expected)
        for key, value in expected.items():
            if key == "request_id":  # a new one for each request
                assert isinstance(answer[key], str) and answer[key]
                continue
            assert answer[key] == (pytest.approx(value, rel=1e-9, abs=1e-12) if key in ("coef", "intercept", "predictions") else value)


def assert_is_the_picture_of_the_fit(path: Path) -> None:
    """The SVG of examples/line.json: labelled with its feature and target, with its band."""
    root = ET.parse(path, parser=ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = {str(element.text).strip() for element in root.iter() if element.tag is ET.Comment}
    assert {"size", "price", "95% prediction interval"} <= texts


def test_the_readme_shows_the_picture_the_examples_script_makes() -> None:
    assert "](examples/fit.svg)" in README
    assert_is_the_picture_of_the_fit(ROOT / "examples" / "fit.svg")


@pytest.mark.live
def test_examples_script_runs(url: str, tmp_path: Path) -> None:
    environ = {**os.environ, "FITSERVE_PICTURES": str(tmp_path)}
    done = subprocess.run([str(ROOT / "examples" / "curl.sh"), url], capture_output=True, timeout=120, env=environ)
    assert done.returncode == 0, done.stderr
    assert_is_the_picture_of_the_fit(tmp_path / "fit.svg")
    assert not (ROOT / "fit.svg").exists()
    lines = done.stdout.decode().splitlines()
    answers = [orjson.loads(line) for line in lines if line.startswith("{")]
    assert len(answers) >= 7 and all("coef" in a or "groups" in a for a in answers)
    assert "price,lower_price,upper_price" in lines
