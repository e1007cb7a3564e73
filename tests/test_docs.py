"""``GET /docs`` and its files through the app: headers, what the page loads, the token, packaging."""

from __future__ import annotations

import configparser
import gzip
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from importlib import metadata
from pathlib import Path

import falcon.testing

import service
from service import docs
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


class Links(HTMLParser):
    """The scripts and style sheets a page loads, and the text of its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []
        self.inline_scripts: list[str] = []
        self.in_script = False
        self.body: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            self.in_script = True
            if attributes.get("src"):
                self.loaded.append(str(attributes["src"]))
        elif tag == "link" and attributes.get("href"):
            self.loaded.append(str(attributes["href"]))
        elif tag == "body":
            self.body = attributes
        for name in attributes:
            assert not name.startswith("on"), f"inline event handler {name}"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script and data.strip():
            self.inline_scripts.append(data)


def read_page(client: falcon.testing.TestClient) -> Links:
    answer = client.simulate_get("/docs")
    assert answer.status_code == 200
    links = Links()
    links.feed(answer.text)
    return links


def app_client(**settings: object) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(service.create_app(Settings(**settings)))  # type: ignore[arg-type]


def test_the_page_is_html_with_a_strict_content_security_policy(client: falcon.testing.TestClient) -> None:
    answer = client.simulate_get("/docs")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    policy = dict(
        [*directive.split(" ", 1), ""][:2] for directive in answer.headers["content-security-policy"].split("; ")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'" and policy["connect-src"] == "'self'"
    for sources in policy.values():
        assert "unsafe" not in sources and "http" not in sources and "*" not in sources
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_page_loads_only_files_of_the_service_and_runs_no_inline_script(client: falcon.testing.TestClient) -> None:
    page = read_page(client)
    assert page.inline_scripts == []
    # Links relative to /docs (written so, they are not paths of the repository).
    served = {f"docs/{name}" for name in ("swagger-ui-bundle.js", "docs.js", "swagger-ui.css", "docs.css")}
    assert served <= set(page.loaded)
    for link in page.loaded:
        assert ":" not in link and not link.startswith("/"), f"{link} is not a file of this service"
        answer = client.simulate_get(f"/{link}")
        assert answer.status_code == 200, link
        assert answer.headers["content-type"] == docs.ASSETS[link.removeprefix("docs/")][1]
        assert "content-security-policy" in answer.headers


def test_the_start_up_script_points_swagger_ui_at_the_document_and_at_no_validator() -> None:
    script = docs.package_file("docs.js").decode()
    assert 'new URL("openapi.json", document.baseURI)' in script
    assert "validatorUrl: null" in script


def test_swagger_ui_reads_openapi_3_1(client: falcon.testing.TestClient) -> None:
    bundle = client.simulate_get("/docs/swagger-ui-bundle.js").content
    assert b"SwaggerUIBundle" in bundle
    major = int(metadata.version(docs.SWAGGER_UI_DISTRIBUTION).split(".")[0])
    assert major >= 25  # Swagger UI 5: OpenAPI 3.1 (swagger-ui-py 25.x ships 5.24)


def test_large_files_go_gzip_compressed_to_clients_that_take_it(client: falcon.testing.TestClient) -> None:
    plain = client.simulate_get("/docs/swagger-ui-bundle.js")
    assert "content-encoding" not in plain.headers
    packed = client.simulate_get("/docs/swagger-ui-bundle.js", headers={"Accept-Encoding": "br, gzip;q=0.8"})
    assert packed.headers["content-encoding"] == "gzip" and packed.headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(packed.content) == plain.content
    assert len(packed.content) < len(plain.content) / 2
    refused = client.simulate_get("/docs/swagger-ui-bundle.js", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers
    small = client.simulate_get("/docs/docs.js", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers


def test_a_reload_costs_a_304(client: falcon.testing.TestClient) -> None:
    first = client.simulate_get("/docs/swagger-ui.css")
    again = client.simulate_get("/docs/swagger-ui.css", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert first.headers["cache-control"] == "no-cache"


def test_an_unknown_file_is_a_404_problem(client: falcon.testing.TestClient) -> None:
    for path in ("/docs/index.html", "/docs/..%2Fsetup.cfg", "/docs/swagger-ui-bundle.js.map"):
        answer = client.simulate_get(path)
        assert answer.status_code == 404 and answer.headers["content-type"] == "application/problem+json"


def test_with_a_token_the_page_and_its_files_are_open_and_the_page_asks_for_it() -> None:
    guarded = app_client(token="s3cret")
    page = read_page(guarded)
    assert page.body["data-token"] == "required"
    for link in page.loaded:
        assert guarded.simulate_get(f"/{link}").status_code == 200
    assert guarded.simulate_post("/fit", json={"X_train": [1, 2], "y_train": [1, 2]}).status_code == 401
    assert guarded.simulate_get("/docsx").status_code == 401  # open means /docs and /docs/..., not a prefix


def test_without_a_token_the_page_does_not_ask(client: falcon.testing.TestClient) -> None:
    assert read_page(client).body["data-token"] == "none"


def test_package_data_covers_every_file_of_the_page_and_the_openapi_document() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    patterns = [pattern.strip() for pattern in config["options.package_data"]["service"].split(",")]
    declared = {path.relative_to(ROOT / "service").as_posix() for pattern in patterns for path in (ROOT / "service").glob(pattern)}
    assert {"static/docs.html", "static/docs.js", "static/docs.css", "openapi.json"} <= declared


def test_the_build_carries_the_page(tmp_path: Path) -> None:
    """setuptools' ``build_py``, which fills the wheel, copies the page's files and the OpenAPI document into the build."""
    source = tmp_path / "source"  # a copy, so that the build writes nothing into the repository
    shutil.copytree(ROOT / "service", source / "service", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    build = tmp_path / "build"
    done = subprocess.run(
        [sys.executable, "-c", f"from setuptools import setup; setup(script_args=['-q', 'build_py', '--build-lib', {str(build)!r}])"],
        cwd=source, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    built = {path.name for path in (build / "service" / "static").iterdir()}
    assert {"docs.html", "docs.js", "docs.css"} <= built
    # The OpenAPI document is data the app reads at import: a wheel without it serves nothing.
    assert (build / "service" / "openapi.json").read_bytes() == (ROOT / "service" / "openapi.json").read_bytes()
    # Every module of the package, subpackages included, goes into the build (an installed
    # wheel without service/parse would fail where an editable install works).
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "service").rglob("*.py")}
    packed = {path.relative_to(build).as_posix() for path in (build / "service").rglob("*.py")}
    assert modules == packed, sorted(modules ^ packed)
