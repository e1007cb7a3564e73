"""Tests of ``service.client`` and of ``service.serve_in_background``, against real waitress servers."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest

import service
from service import client
from service.client import ServiceError

# Exact data: y = 0.5 + 2 a - 1 b, so every fit must give back these coefficients.
X = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 5.0], [4.0, 2.0], [5.0, 3.0], [6.0, 8.0]])
COEF = [2.0, -1.0]
INTERCEPT = 0.5
Y = X @ COEF + INTERCEPT
X_TEST = np.array([[10.0, 1.0], [0.0, 0.0]])
EXPECTED = [19.5, 0.5]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """A live server for the module's tests."""
    with service.serve_in_background(port=0) as server:
        yield server.url


def port_of(url: str) -> int:
    """The port of a server's URL."""
    port = urlsplit(url).port
    assert port is not None
    return port


def refused(url: str) -> bool:
    """Whether a TCP connection to the server's port is refused."""
    try:
        socket.create_connection(("127.0.0.1", port_of(url)), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


# --- conversion, without a server --------------------------------------------------------------


def test_importing_the_client_does_not_import_pandas() -> None:
    code = "import sys, service.client; print('pandas' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(np.array([[1, 2], [3, 4]]), [[1.0, 2.0], [3.0, 4.0]], id="numpy-2d-as-rows"),
        pytest.param(np.array([1, 2, 3]), [1.0, 2.0, 3.0], id="numpy-1d-flat"),
        pytest.param(np.array([True, False]), [1.0, 0.0], id="numpy-bool-as-floats"),
        pytest.param([[1, 2], [3, 4]], [[1, 2], [3, 4]], id="list-as-is"),
        pytest.param(
            pd.DataFrame({"a": [1, 2], 3: [4, 5]}),
            {"a": [1.0, 2.0], "3": [4.0, 5.0]},
            id="frame-named-columns",
        ),
        pytest.param(pd.Series([1, 2], name="y"), {"y": [1.0, 2.0]}, id="named-series-one-column"),
        pytest.param(pd.Series([1, 2], index=[7, 3]), [1.0, 2.0], id="unnamed-series-flat-index-ignored"),
        pytest.param(pd.Series(pd.array([1, None], dtype="Int64")), [1.0, None], id="pandas-na-as-null"),
        pytest.param(pd.DataFrame({"d": [True, False]}), {"d": [1.0, 0.0]}, id="frame-bool-as-floats"),
        pytest.param({"a": np.array([1, 2])}, {"a": [1.0, 2.0]}, id="dict-of-arrays"),
        pytest.param(pd.Series(["x", "y"]), ["x", "y"], id="strings-left-for-the-service"),
    ],
)
def test_matrix_converts_to_the_json_of_the_contract(value: Any, expected: Any) -> None:
    import orjson

    sent = orjson.dumps(client.matrix(value), option=orjson.OPT_SERIALIZE_NUMPY, default=client.plain)
    assert orjson.loads(sent) == expected


def test_column_names_equal_as_strings_are_refused() -> None:
    with pytest.raises(ValueError, match="'1' twice"):
        client.matrix(pd.DataFrame([[1.0, 2.0]], columns=[1, "1"]))


def test_only_options_that_differ_from_the_defaults_are_sent() -> None:
    assert client.options(True, False, False, "none", 0.95) == {}
    assert client.options(False, True, True, "prediction", 0.9) == {
        "fit_intercept": False,
        "positive": True,
        "statistics": True,
        "interval": "prediction",
        "level": 0.9,
    }


def test_an_answer_that_is_not_problem_json_still_gives_a_service_error() -> None:
    error = client.problem(502, b"<html>Bad gateway</html>")
    assert (error.status, error.title, error.field) == (502, "Error", None)
    assert "Bad gateway" in error.detail


# --- a live server ------------------------------------------------------------------------------


@pytest.mark.live
def test_health(url: str) -> None:
    assert client.health(url) == {"status": "ok", "version": service.__version__}


@pytest.mark.live
@pytest.mark.parametrize(
    ("X_train", "y_train", "X_test"),
    [
        pytest.param(X, Y, X_TEST, id="numpy"),
        pytest.param(X.tolist(), Y.tolist(), X_TEST.tolist(), id="lists"),
        pytest.param(X.astype(np.int32), Y, X_TEST.astype(np.int64), id="numpy-integers"),
        pytest.param(np.asfortranarray(X), Y, X_TEST, id="numpy-not-contiguous"),
        pytest.param(pd.DataFrame(X), pd.Series(Y), pd.DataFrame(X_TEST), id="pandas-names-0-1"),
    ],
)
def test_fit_takes_numpy_lists_and_pandas(url: str, X_train: Any, y_train: Any, X_test: Any) -> None:
    answer = client.fit(url, X_train, y_train, X_test)
    assert answer["coef"] == pytest.approx(COEF)
    assert answer["intercept"] == pytest.approx(INTERCEPT)
    assert answer["predictions"] == pytest.approx(EXPECTED)
    assert answer["n_samples"] == len(X)


@pytest.mark.live
def test_dataframe_columns_become_feature_names_and_test_rows_match_by_name(url: str) -> None:
    frame = pd.DataFrame(X, columns=["age", "height"], index=range(100, 106))
    query = pd.DataFrame(X_TEST[:, ::-1], columns=["height", "age"])  # other order: matched by name
    answer = client.fit(url, frame, pd.Series(Y, name="price"), query)
    assert answer["feature_names"] == ["age", "height"]
    assert answer["target_names"] == ["price"]
    assert answer["coef"] == pytest.approx(COEF)
    assert answer["predictions"] == pytest.approx(EXPECTED)


@pytest.mark.live
def test_a_dataframe_of_targets_gives_named_targets(url: str) -> None:
    targets = pd.DataFrame({"low": Y, "high": 2 * Y})
    answer = client.fit(url, X, targets, X_TEST)
    assert answer["target_names"] == ["low", "high"]
    assert np.allclose(answer["coef"], [COEF, [4.0, -2.0]])
    assert np.allclose(answer["predictions"], np.column_stack([EXPECTED, np.multiply(EXPECTED, 2)]))


@pytest.mark.live
def test_statistics_intervals_and_options_reach_the_service(url: str) -> None:
    noisy = Y + np.array([0.1, -0.2, 0.05, 0.15, -0.1, 0.0])
    answer = client.fit(url, X, noisy, X_TEST, statistics=True, interval="prediction", level=0.9)
    terms = [row["term"] for row in answer["statistics"]["coefficients"]]
    assert terms == ["(Intercept)", "x0", "x1"]
    assert answer["intervals"]["kind"] == "prediction"
    assert answer["intervals"]["level"] == 0.9
    lower, upper = answer["intervals"]["lower"], answer["intervals"]["upper"]
    assert all(lo < mid < up for lo, mid, up in zip(lower, answer["predictions"], upper, strict=True))
    through_origin = client.fit(url, X, Y, fit_intercept=False)
    assert through_origin["intercept"] == 0.0
    weighted = client.fit(url, X, noisy, sample_weight=pd.Series([1, 1, 1, 1, 1, 0]))
    unweighted_first_five = client.fit(url, X[:5], noisy[:5])
    assert weighted["coef"] == pytest.approx(unweighted_first_five["coef"])


@pytest.mark.live
def test_predict_from_training_data(url: str) -> None:
    answer = client.predict(url, X_TEST, X_train=X, y_train=Y)
    assert answer["predictions"] == pytest.approx(EXPECTED)


@pytest.mark.live
def test_predict_reuses_an_earlier_answer_as_the_model(url: str) -> None:
    frame = pd.DataFrame(X, columns=["age", "height"])
    fitted = client.fit(url, frame, pd.Series(Y, name="price"), statistics=True)
    query = pd.DataFrame({"height": X_TEST[:, 1], "age": X_TEST[:, 0]})
    reused = client.predict(url, query, model=fitted)
    assert reused["predictions"] == pytest.approx(EXPECTED)
    assert reused["feature_names"] == ["age", "height"]
    assert reused["n_samples"] is None


@pytest.mark.live
def test_the_client_takes_the_server_handle_as_its_url() -> None:
    with service.serve_in_background(port=0) as server:
        assert client.fit(server, X, Y)["coef"] == pytest.approx(COEF)


BAD_CALLS: list[Any] = [
    pytest.param(lambda url: client.fit(url, X, Y[:3]), 422, "y_train", id="y-length"),
    pytest.param(lambda url: client.fit(url, X, Y, [[1.0, 2.0, 3.0]]), 422, "X_test", id="x-test-width"),
    pytest.param(
        lambda url: client.fit(url, X, Y, level=1.5, interval="confidence", X_test=X),
        422,
        "level",
        id="level",
    ),
    pytest.param(
        lambda url: client.fit(url, X, Y, interval="prediction"), 422, "interval", id="interval-without-test"
    ),
    pytest.param(
        lambda url: client.fit(url, pd.DataFrame({"a": [1.0, np.nan, 3.0]}), [1.0, 2.0, 3.0]),
        422,
        "X_train",
        id="nan-in-frame",
    ),
    pytest.param(
        lambda url: client.predict(url, X_TEST, model={"coef": COEF, "intercept": 0.5}, statistics=True),
        422,
        "model",
        id="model-with-statistics",
    ),
    pytest.param(
        lambda url: client.fit(url, pd.DataFrame(X, columns=["a", "b"]), Y, pd.DataFrame({"a": [1.0]})),
        422,
        "X_test",
        id="missing-feature",
    ),
]


@pytest.mark.live
@pytest.mark.parametrize(("call", "status", "field"), BAD_CALLS)
def test_error_answers_raise_service_error(
    url: str, call: Callable[[str], Any], status: int, field: str
) -> None:
    with pytest.raises(ServiceError) as caught:
        call(url)
    error = caught.value
    assert (error.status, error.field, error.title) == (status, field, "Invalid input")
    assert repr(field) in error.detail
    assert str(error).startswith(f"{status} Invalid input: ")


@pytest.mark.live
def test_a_token_is_sent_as_a_bearer_header() -> None:
    with service.serve_in_background(port=0, token="s3cret") as server:
        assert client.health(server.url)["status"] == "ok"  # health never needs the token
        for token in (None, "wrong"):
            with pytest.raises(ServiceError) as caught:
                client.fit(server.url, X, Y, token=token)
            assert caught.value.status == 401
        assert client.fit(server.url, X, Y, token="s3cret")["coef"] == pytest.approx(COEF)
        predicted = client.predict(server.url, X_TEST, X_train=X, y_train=Y, token="s3cret")
        assert predicted["predictions"] == pytest.approx(EXPECTED)


# --- serve_in_background -------------------------------------------------------------------------


@pytest.mark.live
def test_the_context_manager_stops_the_server() -> None:
    before = set(threading.enumerate())
    with service.serve_in_background(port=0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert client.fit(server.url, X, Y)["coef"] == pytest.approx(COEF)
    assert refused(server.url)
    assert set(threading.enumerate()) - before == set()  # the loop and its workers have ended
    with pytest.raises(OSError):
        client.health(server.url)


@pytest.mark.live
def test_stop_is_clean_and_a_server_starts_again(caplog: pytest.LogCaptureFixture) -> None:
    # Repeated, because closing while a worker thread finishes an answer is a race.
    before = set(threading.enumerate())
    with caplog.at_level(logging.INFO):
        server = service.serve_in_background(port=0)
        port = port_of(server.url)
        for _ in range(10):
            assert client.fit(server.url, X, Y)["coef"] == pytest.approx(COEF)
            server.stop()
            assert refused(server.url)
            server = service.serve_in_background(port=port)  # the same port, at once
            assert port_of(server.url) == port
        assert client.health(server.url)["status"] == "ok"
        server.stop()
        server.stop()  # a second stop does nothing
    assert set(threading.enumerate()) - before == set()
    # waitress.queue warns when a request comes before the new workers wait: a start, not a stop.
    complaints = [
        f"{record.name}: {record.getMessage()}"
        for record in caplog.records
        if record.levelno >= logging.WARNING and record.name != "waitress.queue"
    ]
    assert complaints == []


@pytest.mark.live
def test_two_servers_at_once_on_different_ports() -> None:
    with (
        service.serve_in_background(port=0) as open_server,
        service.serve_in_background(port=0, token="s3cret") as closed_server,
    ):
        assert port_of(open_server.url) != port_of(closed_server.url)
        assert client.fit(open_server.url, X, Y)["coef"] == pytest.approx(COEF)
        with pytest.raises(ServiceError):
            client.fit(closed_server.url, X, Y)
        open_server.stop()
        assert refused(open_server.url)
        assert client.fit(closed_server.url, X, Y, token="s3cret")["coef"] == pytest.approx(COEF)
    assert refused(closed_server.url)


@pytest.mark.parametrize("kind", ["svg", "png"])
def test_fit_returns_the_bytes_of_a_picture_when_asked(url: str, kind: str) -> None:
    content = client.fit(url, X[:, 0], Y, X_TEST[:, :1], interval="prediction", picture=kind)  # type: ignore[arg-type]
    assert isinstance(content, bytes)
    if kind == "svg":
        assert content.lstrip().startswith(b"<?xml") and b"<svg" in content
    else:
        assert content.startswith(b"\x89PNG\r\n\x1a\n")


def test_a_picture_that_cannot_be_given_raises_service_error(url: str) -> None:
    many = np.tile(Y[:, None], (1, 11)) + np.arange(11)
    with pytest.raises(ServiceError) as raised:
        client.fit(url, X, many, picture="svg")
    assert raised.value.status == 406 and "at most 10 targets" in raised.value.detail
    with pytest.raises(ValueError, match="picture must be 'svg' or 'png'"):
        client.fit(url, X, Y, picture="gif")  # type: ignore[call-overload]


def test_a_dataframe_with_text_and_gaps_fits_from_a_formula(url: str) -> None:
    import pandas as pd
    import statsmodels.formula.api as smf

    frame = pd.DataFrame({
        "sqft": [70.0, 85, 60, 120, 95, 80, np.nan, 110, 72, 101],
        "hood": ["a", "b", "a", "c", "b", "c", "a", None, "b", "a"],
        "price": [200.0, 260, 181, 390, 300, 280, 210, 350, 240, 330],
    })  # fmt: skip
    new = pd.DataFrame({"sqft": [90.0, np.nan], "hood": ["b", "c"]})
    answer = client.fit(url, frame, formula="price ~ sqft + hood", X_test=new, missing="drop", statistics=True)
    reference = smf.ols("price ~ sqft + hood", frame.dropna()).fit()
    fitted = dict(zip(answer["feature_names"], answer["coef"], strict=True))
    for name, value in fitted.items():
        assert value == pytest.approx(reference.params[name], rel=1e-9)
    assert answer["n_dropped"] == 2 and answer["predictions"][1] is None
    again = client.predict(url, new, model=answer, missing="drop")
    assert again["predictions"] == answer["predictions"]
    with pytest.raises(client.ServiceError) as refused:
        client.fit(url, frame, formula="price ~ sqft + hood")
    assert refused.value.field == "train" and "drop" in refused.value.detail
