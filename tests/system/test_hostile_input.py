"""Hostile input: never a 5xx, never another exception, the service alive after.

The JSONTestSuite-style corpus in ``fixtures/json`` (``y_`` valid JSON, ``n_`` not JSON,
``i_`` left to the implementation, ``*_fitserve_*`` the tricky part inside a request)
replayed through a live server, and hypothesis-made bodies through every endpoint and
straight into the parse, fit and render functions.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import service
from service.app import create_app
from service.errors import InvalidInput, MalformedBody
from service.fitting import fit
from service.parse.forms import parse_csv, parse_form
from service.parse.json import parse_json
from service.rendering import render_csv, render_json
from service.request import FitRequest
from service.server import BackgroundServer
from service.settings import Limits, Settings
from service.tabular import design_request

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "json"
CASES = sorted(CORPUS.glob("*.json")) or [CORPUS / "missing.json"]  # no corpus must fail, not skip
JSON = {"Content-Type": "application/json"}
PROBLEM = "application/problem+json"
# Fixed examples (derandomize) keep the suite reproducible; FITSERVE_FUZZ_EXAMPLES=20000 fuzzes afresh.
FUZZ_EXAMPLES = int(os.environ.get("FITSERVE_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES or 300,
    derandomize=not FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# What the contract asks of each kind of document, sent as the whole body. Unpaired
# surrogate escapes and text that is not UTF-8 are 400 by the contract (the README's errors table).
NOT_UTF8_OR_SURROGATE = ("i_string_", "i_object_key_lone", "i_fitserve_lone_surrogate")

# The fitserve cases, posted to /fit: (status, field) exactly.
FIT_EXPECTED: dict[str, tuple[int, str | None]] = {
    "y_fitserve_valid": (200, None),
    "y_fitserve_escaped_field_name": (200, None),
    "y_fitserve_escaped_bracket_in_field_name": (422, "["),
    "y_fitserve_bracket_in_string_value": (422, "interval"),
    "y_fitserve_minus_zero_and_underflow": (200, None),
    "y_fitserve_whitespace_everywhere": (200, None),
    "y_fitserve_huge_number_in_X": (422, "X_train"),
    "y_fitserve_huge_integer_in_X": (422, "X_train"),
    "y_fitserve_too_large_to_square": (422, "X_train"),
    "y_fitserve_nested_in_X": (422, "X_train"),
    "y_fitserve_deep_nesting_in_X": (422, "X_train"),
    "y_fitserve_nul_in_field_name": (422, "X_train\u0000"),
    "y_fitserve_long_unknown_field": (422, None),  # the field is named, but in a short excerpt
    "y_fitserve_string_numbers": (422, "X_train"),
    "y_fitserve_null_in_y": (422, "y_train"),
    "y_fitserve_ragged_rows": (422, "X_train"),
    "y_fitserve_empty_rows": (422, "X_train"),
    "y_fitserve_records_with_odd_keys": (200, None),
    "y_fitserve_model_with_huge_coef": (422, "model"),
    "y_fitserve_level_as_bool": (422, "level"),
    "y_fitserve_many_targets_one_row": (200, None),
}

# Each document also goes inside a request, where a value belongs.
SLOTS = {
    "X_train": ("/fit", b'{"X_train": %s, "y_train": [1, 2, 3]}'),
    "y_train": ("/fit", b'{"X_train": [[1], [2], [3]], "y_train": %s}'),
    "named column": (
        "/fit",
        b'{"X_train": {"a": [1, 2, 3]}, "y_train": {"b": [1, 2, 3]}, "X_test": {"a": %s}}',
    ),
    "level": ("/fit", b'{"X_train": [[1], [2], [3]], "y_train": [1, 2, 3], "level": %s}'),
    "model": ("/predict", b'{"model": %s, "X_test": [[1]]}'),
}


def allowed(name: str) -> set[int]:
    """The statuses the contract allows for a corpus document, wherever it is sent."""
    if name.startswith("n_"):
        return {400}
    if name.startswith(NOT_UTF8_OR_SURROGATE):
        return {400}
    if name.startswith("y_"):
        return {200, 422}
    return {200, 400, 422}


@pytest.fixture(scope="module")
def live() -> Iterator[BackgroundServer]:
    """One live server for the module's replays."""
    with service.serve_in_background(port=0) as server:
        yield server


def check_answer(response: requests.Response | Any, statuses: set[int]) -> None:
    """An answer of an allowed status; errors as problem+json; numbers finite in a 200."""
    status = response.status_code if hasattr(response, "status_code") else response.status
    assert status in statuses, (status, response.text[:300])
    content_type = response.headers.get("Content-Type", "")
    if status >= 400:
        assert content_type == PROBLEM
        problem = json.loads(response.text)
        assert problem["status"] == status and problem["detail"]
    elif status == 200 and content_type == "application/json":
        assert_finite(json.loads(response.text))


def assert_finite(value: object) -> None:
    """Every number in a decoded answer is finite."""
    if isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, list):
        for each in value:
            assert_finite(each)
    elif isinstance(value, dict):
        for each in value.values():
            assert_finite(each)


# --- the corpus ------------------------------------------------------------------------


@pytest.mark.live
@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_corpus_document_as_the_body(live: BackgroundServer, path: Path) -> None:
    """Each document as the whole body of every endpoint: its 4xx, never a 5xx."""
    body = path.read_bytes()
    with requests.Session() as session:
        for endpoint in ("/fit", "/predict"):
            response = session.post(live.url + endpoint, data=body, headers=JSON, timeout=30)
            expected = FIT_EXPECTED.get(path.stem)
            if expected is not None and endpoint == "/fit":
                assert response.status_code == expected[0], response.text[:300]
                if expected[1] is not None:
                    assert response.json()["field"] == expected[1]
            check_answer(response, allowed(path.stem))
        for endpoint in ("/health", "/openapi.json"):
            assert session.post(live.url + endpoint, data=body, headers=JSON, timeout=30).status_code == 405
            assert session.get(live.url + endpoint, data=body, headers=JSON, timeout=30).status_code == 200


@pytest.mark.live
@pytest.mark.parametrize("slot", SLOTS)
@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_corpus_document_inside_a_request(live: BackgroundServer, path: Path, slot: str) -> None:
    """Each document where a value of a request belongs: its 4xx (or a fit), never a 5xx."""
    endpoint, template = SLOTS[slot]
    body = template.replace(b"%s", path.read_bytes())
    response = requests.post(live.url + endpoint, data=body, headers=JSON, timeout=30)
    check_answer(response, allowed(path.stem))


@pytest.mark.live
def test_service_alive_after_the_corpus(live: BackgroundServer) -> None:
    """After every document (here: all of them again, in one connection), /health answers."""
    with requests.Session() as session:
        for path in CASES:
            session.post(live.url + "/fit", data=path.read_bytes(), headers=JSON, timeout=30)
        health = session.get(live.url + "/health", timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert len(CASES) > 250


# --- hypothesis: bodies through every endpoint, and into the functions ----------------

numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -0.0, 1e308, -1e308, 1.5e155, 1.3e154, 5e-324, 2**63, -(2**63) - 1, 2**64]),
)
texts = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["", "[", "]", "X_train", "\u0000", "\ud800", "\udfff", "\ufeff", "1.5", "NaN"]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=25,
)
cells = st.one_of(numbers, numbers, numbers, scalars, st.lists(numbers, max_size=2))
rows_form = st.integers(1, 4).flatmap(
    lambda p: st.lists(st.lists(cells, min_size=p, max_size=p), min_size=1, max_size=7)
)
flat_form = st.lists(cells, min_size=0, max_size=7)
names = st.sampled_from(["a", "b", "c", "", "a\u0000", "[", "x0"])
columns_form = st.dictionaries(names, st.lists(cells, min_size=1, max_size=6), max_size=3)
records_form = st.lists(st.dictionaries(names, cells, max_size=3), min_size=1, max_size=5)
matrices = st.one_of(rows_form, flat_form, columns_form, records_form)
models = st.fixed_dictionaries(
    {"coef": st.one_of(flat_form, rows_form), "intercept": st.one_of(numbers, flat_form)},
    optional={"feature_names": st.lists(names, max_size=3), "target_names": st.lists(names, max_size=3)},
)
field_values = {
    "X_train": matrices, "y_train": matrices, "X_test": matrices, "sample_weight": flat_form,
    "fit_intercept": scalars, "positive": scalars, "statistics": scalars,
    "interval": st.one_of(st.sampled_from(["none", "confidence", "prediction"]), scalars),
    "level": st.one_of(st.floats(0, 1), scalars), "model": st.one_of(models, values),
}  # fmt: skip
fit_like = st.fixed_dictionaries(
    {},
    optional={**field_values, "X_tset": values, "": values},
)


def encode(document: object, compact: bool) -> bytes:
    """JSON text of a document; NaN and infinities come out as JS literals (not JSON)."""
    separators = (",", ":") if compact else (", ", ": ")
    return json.dumps(document, separators=separators).encode()


extreme = st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-300, 5e-324, 1e150, -1e150, 1.3e154, 1e8, 2**53 + 1])
element = st.one_of(st.integers(-5, 5), st.floats(-1e6, 1e6), extreme)


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, object]:
    """A request of consistent shapes, in any matrix form, with extreme values and options."""
    n, p, k = draw(st.integers(1, 8)), draw(st.integers(1, 4)), draw(st.sampled_from([0, 1, 2, 3]))
    names = [f"f{j}" for j in range(p)]
    form = draw(st.sampled_from(["rows", "columns", "records"]))

    def matrix(rows: int) -> object:
        m = [[draw(element) for _ in range(p)] for _ in range(rows)]
        if form == "columns":
            return {name: [r[j] for r in m] for j, name in enumerate(names)}
        return [dict(zip(names, r, strict=True)) for r in m] if form == "records" else m

    doc: dict[str, object] = {"X_train": matrix(n)}
    Y = [[draw(element) for _ in range(max(k, 1))] for _ in range(n)]
    doc["y_train"] = [r[0] for r in Y] if k == 0 else Y
    if draw(st.booleans()):
        doc["X_test"] = matrix(draw(st.integers(1, 4)))
        doc["interval"] = draw(st.sampled_from(["none", "confidence", "prediction"]))
    if draw(st.booleans()):
        doc["sample_weight"] = [draw(st.sampled_from([0, 0.5, 1, 2, 1e-300, 1e10])) for _ in range(n)]
    for option in ("fit_intercept", "positive", "statistics"):
        if draw(st.booleans()):
            doc[option] = draw(st.booleans())
    return doc


bodies = st.one_of(
    st.builds(encode, fit_like, st.booleans()),
    st.builds(encode, near_valid(), st.booleans()),
    st.builds(encode, values, st.booleans()),
    st.binary(max_size=300),
)
CONTENT_TYPES = [
    "application/json",
    "application/problem+json; charset=utf-8",
    "text/csv",
    "multipart/form-data; boundary=x",
    "",
]
# Bugs found by fuzzing, kept as examples (see the corpus's y_fitserve_* cases too)
KNOWN = [
    b'{"X_train": {"a\\u0000": [1]}, "y_train": [1]}',  # simdjson cannot look up a key with NUL: KeyError
    b'{"X_train": [[1], [2]], "y_train": [1, 2], "level": '
    + b"[" * 600
    + b"]" * 600
    + b"}",  # RecursionError
    b'{"X_train": [[9007199254740993, 2], [-1, 5]], "y_train": [1, 2], "sample_weight": [1, 1e10]}',  # refine
    (CORPUS / "y_fitserve_overflow_in_statistics.json").read_bytes(),  # a RuntimeWarning escapes
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid-looking body with a few bytes changed, removed or inserted."""
    body = bytearray(encode(draw(fit_like), draw(st.booleans())))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(body)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.sampled_from([*b'[]{},:"\\-.0e1 \x00\xff', draw(st.integers(0, 255))]))
        if action == "insert" or at == len(body):
            body[at:at] = bytes([byte])
        elif action == "delete":
            del body[at]
        else:
            body[at] = byte
    return bytes(body)


CLIENT = falcon.testing.TestClient(create_app(Settings()))


def with_known(test: Any) -> Any:
    """Add the known bugs as explicit examples of a fuzz test taking ``body``."""
    for body in KNOWN:
        test = example(body=body)(test)
    return test


@FUZZ
@with_known
@given(body=st.one_of(bodies, mutated()))
def test_hypothesis_bodies_through_every_endpoint(body: bytes) -> None:
    """Any body, on any endpoint, as any content type: a status below 500, errors as problem+json."""
    for content_type in CONTENT_TYPES:
        for method, path in (
            ("POST", "/fit"),
            ("POST", "/predict"),
            ("GET", "/health"),
            ("POST", "/openapi.json"),
        ):
            result = CLIENT.simulate_request(method, path, body=body, headers={"Content-Type": content_type})
            check_answer(result, {200, 400, 405, 413, 415, 422})
    assert CLIENT.simulate_get("/health").status_code == 200


@FUZZ
@with_known
@given(body=st.one_of(bodies, mutated()))
def test_fuzz_parse_fit_render(body: bytes) -> None:
    """parse_json, fit and render raise nothing but the contract's errors."""
    for endpoint in ("fit", "predict"):
        parse_fit_render(body, endpoint)


def parse_fit_render(body: bytes, endpoint: Any) -> None:
    """Parse, fit and render one body, as the resource does."""
    try:
        request = parse_json(body, endpoint, Limits(max_features=50, max_cells=10_000))
    except (MalformedBody, InvalidInput) as exc:
        assert exc.detail and len(exc.detail) < 400
        return
    fit_render(request)


def fit_render(request: FitRequest) -> None:
    """Fit and render a checked request: only a 422 may come of it."""
    try:
        result = fit(request)
    except InvalidInput as exc:
        assert exc.detail
        return
    assert_finite(json.loads(render_json(result)))
    assert isinstance(render_csv(result), bytes)


csv_cells = st.one_of(
    st.integers(-9, 9).map(str),
    st.floats(-1e6, 1e6).map(repr),
    st.sampled_from(
        ["1e150", "-1e150", "1.3e154", "5e-324", "-0", ".5", "5.", "+1", "1E3", '"2"', "9007199254740993"]
    ),
)
bad_cells = st.sampled_from(
    ["", " 1", "1e400", "nan", "inf", "x", "1_0", "0x1", '"1,2"', "\u00a01", '"', "1e-400"]
)


@st.composite
def csv_request(draw: st.DrawFn) -> tuple[bytes, dict[str, str], list[tuple[str | None, bytes]]]:
    """A training table as CSV, query parameters, and the parts of the same request as a form.

    Mostly well formed, with the odd bad cell, ragged row, duplicate or odd column name,
    BOM, CR line ends, blank lines, and options valid or not.
    """
    w, n = draw(st.integers(2, 5)), draw(st.integers(1, 8))
    names = [f"c{j}" for j in range(w)]
    if draw(st.integers(0, 9)) == 0:
        names[draw(st.integers(0, w - 1))] = draw(
            st.sampled_from(["c0", "", '"a,b"', "a\u0000", "\ufeffc", "target"])
        )
    cell = st.one_of(csv_cells, csv_cells, csv_cells, csv_cells, csv_cells, csv_cells, csv_cells, bad_cells)
    rows = [
        [draw(cell) for _ in range(w if draw(st.integers(0, 30)) else w + draw(st.sampled_from([-1, 1])))]
        for _ in range(n)
    ]
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    lines = [",".join(names), *(",".join(row) for row in rows)]
    text = draw(st.sampled_from(["", "\ufeff"])) + end.join(lines) + draw(st.sampled_from(["", end, end * 3]))
    params: dict[str, str] = {}
    if draw(st.booleans()):
        params["target"] = ",".join(
            draw(st.lists(st.sampled_from([*names, "nope", ""]), min_size=1, max_size=3))
        )
    if draw(st.booleans()):
        params["weight"] = draw(st.sampled_from([*names, "nope"]))
    for option, choices in (
        ("fit_intercept", ["true", "false", "1", "0", "yes"]),
        ("statistics", ["true", "false"]),
        ("positive", ["true", "false"]),
        ("interval", ["none", "confidence", "prediction", "bogus"]),
        ("level", ["0.9", "0.5", "1", "x"]),
    ):
        if draw(st.integers(0, 3)) == 0:
            params[option] = draw(st.sampled_from(choices))
    test = end.join(
        [",".join(names[:-1]), *(",".join(draw(csv_cells) for _ in names[:-1]) for _ in range(2))]
    )
    parts: list[tuple[str | None, bytes]] = [("train", text.encode())]
    if draw(st.booleans()):
        parts.append(("test", test.encode()))
    parts += [(name, value.encode()) for name, value in params.items() if draw(st.booleans())]
    if draw(st.integers(0, 9)) == 0:
        parts.append(draw(st.sampled_from([(None, b"1"), ("bogus", b"1"), ("train", b"a\n1")])))
    params = {k: v for k, v in params.items() if k not in {name for name, _ in parts}}
    return text.encode("utf-8", "surrogatepass"), params, parts


def encode_form(parts: list[tuple[str | None, bytes]], boundary: str = "fitserve-fuzz") -> bytes:
    """A multipart/form-data body of these parts."""
    out = b""
    for name, data in parts:
        disposition = "form-data" + (f'; name="{name}"' if name is not None else "") + '; filename="t.csv"'
        out += (
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: text/csv\r\n\r\n".encode()
        )
        out += data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


@FUZZ
@given(case=csv_request(), cut=st.integers(0, 20), endpoint=st.sampled_from(["fit", "predict"]))
def test_fuzz_tables(
    case: tuple[bytes, dict[str, str], list[tuple[str | None, bytes]]], cut: int, endpoint: Any
) -> None:
    """CSV and multipart requests, whole and cut short, parsed directly and over every endpoint: no 5xx."""
    body, params, parts = case
    for read in (
        lambda: design_request(parse_csv(body, params, endpoint, Limits()), Limits()),
        lambda: design_request(parse_form(parts, params, endpoint, Limits()), Limits()),
    ):
        try:
            request = read()
        except (MalformedBody, InvalidInput) as exc:
            assert exc.detail
            continue
        fit_render(request)
    form = encode_form(parts)
    form = form[: len(form) * cut // 20] if cut < 20 else form
    for content_type, data in (
        ("text/csv", body),
        ("multipart/form-data; boundary=fitserve-fuzz", form),
        ("multipart/form-data", form),
        ("multipart/form-data; boundary=other", form),
    ):
        result = CLIENT.simulate_post(
            f"/{endpoint}", body=data, params=params, headers={"Content-Type": content_type}
        )
        check_answer(result, {200, 400, 422})


@pytest.mark.live
def test_hypothesis_bodies_through_a_live_server() -> None:
    """The same bodies over HTTP, through waitress: below 500, the server alive after."""
    with service.serve_in_background(port=0) as server, requests.Session() as session:

        @settings(
            max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
        )
        @given(body=st.one_of(bodies, mutated()))
        def replay(body: bytes) -> None:
            check_answer(
                session.post(server.url + "/fit", data=body, headers=JSON, timeout=30), {200, 400, 422}
            )

        replay()
        assert session.get(server.url + "/health", timeout=30).status_code == 200
