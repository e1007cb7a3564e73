"""Untrusted bytes into a ``FitRequest``: float64 arrays, names and options.

Every rule of the contract is checked here, in the order of its table of fields, and
the first failure raises ``InvalidInput(detail, field)``; a body that cannot be parsed
raises ``MalformedBody``. JSON bodies take a fast road (simdjson, whole arrays exported
as buffers of doubles) when they are well formed, and the exact road of ``matrices``
otherwise, so an answer or an error never depends on which road was taken.
"""

from __future__ import annotations

import difflib
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Literal

import numpy as np
import orjson
import simdjson

from service.errors import InvalidInput, MalformedBody, describe, excerpt
from service.matrices import Matrix, plural, read_matrix, read_vector, within_range
from service.settings import Limits

Endpoint = Literal["fit", "predict"]
INTERVALS = ("none", "confidence", "prediction")
FIELDS = (
    "X_train", "y_train", "X_test", "sample_weight", "fit_intercept",
    "positive", "statistics", "interval", "level", "model",
)  # fmt: skip
TRAINING_ONLY = ("X_train", "y_train", "sample_weight", "statistics", "interval")


@dataclass(frozen=True)
class Options:
    """How to fit, and what to add to the answer."""

    fit_intercept: bool = True
    positive: bool = False
    statistics: bool = False
    interval: str = "none"
    level: float = 0.95


@dataclass(frozen=True)
class Model:
    """An earlier fit sent back to predict again: coefficients and names."""

    coef: np.ndarray  # (k, p)
    intercept: np.ndarray  # (k,)
    feature_names: tuple[str, ...] | None = None
    target_names: tuple[str, ...] | None = None
    single_target: bool = True


@dataclass(frozen=True)
class FitRequest:
    """One request, checked: what to fit (or the model to use) and what to predict."""

    X_train: np.ndarray | None = None  # (n, p)
    y_train: np.ndarray | None = None  # (n, k), always 2-D
    X_test: np.ndarray | None = None  # (m, p), columns in the order of the fit
    sample_weight: np.ndarray | None = None  # (n,)
    feature_names: tuple[str, ...] | None = None
    target_names: tuple[str, ...] | None = None
    single_target: bool = True
    options: Options = dataclass_field(default_factory=Options)
    model: Model | None = None


class Fields:
    """Read access to the decoded fields of a body, by name."""

    def names(self) -> list[str]:
        """The field names, in the body's order."""
        raise NotImplementedError

    def matrix(self, name: str) -> Matrix:
        """The field as a matrix."""
        raise NotImplementedError

    def vector(self, name: str) -> np.ndarray:
        """The field as a flat vector of numbers."""
        raise NotImplementedError

    def value(self, name: str) -> object:
        """The field as plain Python data (for options and small objects)."""
        raise NotImplementedError


class PlainFields(Fields):
    """Fields of a body decoded into Python objects: checked element by element."""

    def __init__(self, document: Mapping[str, object]) -> None:
        self.document = document

    def names(self) -> list[str]:
        return list(self.document)

    def matrix(self, name: str) -> Matrix:
        return read_matrix(self.document[name], name)

    def vector(self, name: str) -> np.ndarray:
        return read_vector(self.document[name], name)

    def value(self, name: str) -> object:
        return self.document[name]


class Uncertain(Exception):
    """The fast road cannot vouch for this body: take the exact one."""


class FastFields(Fields):
    """Fields of a body parsed by simdjson: whole arrays exported as float64 buffers.

    It never raises ``InvalidInput`` itself: anything unusual raises ``Uncertain``. Rows
    are checked one by one, and nesting inside them is ruled out by counting brackets:
    ``arrays`` counts the arrays this reader has seen, and the body must hold no more.
    """

    def __init__(self, document: simdjson.Object) -> None:
        self.document = document
        self.arrays = 0
        self.brackets_in_values = 0

    def names(self) -> list[str]:
        names = list(self.document.keys())
        if len(set(names)) != len(names):
            raise Uncertain
        for name in names:
            self.brackets_in_values += name.count("[")
        return names

    def matrix(self, name: str) -> Matrix:
        value = self.document[name]
        if isinstance(value, simdjson.Array):
            rows = len(value)
            if rows == 0:
                raise Uncertain
            first = value[0]
            if isinstance(first, simdjson.Array):
                width = len(first)
                if width == 0:
                    raise Uncertain
                for row in value:
                    if type(row) is not simdjson.Array or len(row) != width:
                        raise Uncertain
                self.arrays += 1 + rows
                return Matrix(self.export(value, rows * width).reshape(rows, width))
            if type(first) is float or type(first) is int:
                self.arrays += 1
                return Matrix(self.export(value, rows).reshape(rows, 1), flat=True)
        elif isinstance(value, simdjson.Object):
            names = tuple(value.keys())
            if not names or len(set(names)) != len(names):
                raise Uncertain
            columns = []
            for column in names:
                self.brackets_in_values += column.count("[")
                array = value[column]
                if not isinstance(array, simdjson.Array):
                    raise Uncertain
                columns.append(self.export(array, len(array)))
                self.arrays += 1
            if len({len(c) for c in columns}) != 1 or len(columns[0]) == 0:
                raise Uncertain
            return Matrix(np.column_stack(columns), names)
        raise Uncertain

    def vector(self, name: str) -> np.ndarray:
        value = self.document[name]
        if not isinstance(value, simdjson.Array) or len(value) == 0:
            raise Uncertain
        self.arrays += 1
        return self.export(value, len(value))

    def value(self, name: str) -> object:
        value = self.document[name]
        if isinstance(value, (simdjson.Array, simdjson.Object)):
            plain = value.as_list() if isinstance(value, simdjson.Array) else value.as_dict()
            self.brackets_in_values += count_brackets(plain)
            return plain
        if isinstance(value, str):
            self.brackets_in_values += value.count("[")
        return value

    @staticmethod
    def export(array: simdjson.Array, size: int) -> np.ndarray:
        try:
            values = np.frombuffer(array.as_buffer(of_type="d"), dtype=np.float64)
        except (TypeError, ValueError):
            raise Uncertain from None
        if values.size != size or not within_range(values):
            raise Uncertain
        return values


def count_brackets(value: object) -> int:
    """Count the ``[`` a decoded value needs in JSON text: its lists and those in its strings.

    Iterative, so that a deeply nested value cannot exhaust the stack.
    """
    count = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            count += 1
            pending.extend(item)
        elif isinstance(item, dict):
            count += sum(key.count("[") for key in item)
            pending.extend(item.values())
        elif isinstance(item, str):
            count += item.count("[")
    return count


class Body:
    """A request body handed over to a parser, which may let go of it once it holds its own copy.

    Large bodies are then not kept twice while they are parsed: the caller keeps only this
    holder, and ``take()`` leaves it empty.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data

    def take(self) -> bytes:
        """Return the bytes, keeping no reference to them."""
        data, self.data = self.data, b""
        return data


class SharedParser:
    """One simdjson parser for the process, used by one request at a time.

    A parser keeps its buffers between documents; a fresh one per request spends about
    half of the parse allocating and touching new memory. Parsing holds the GIL anyway,
    so taking turns costs no concurrency. A body over ``REUSE_LIMIT`` gets a parser of its
    own, freed after it: its buffers (about twice the body) would otherwise stay resident
    and add to the peak memory of the fit that follows.
    """

    REUSE_LIMIT = 16 * 2**20

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.parser = simdjson.Parser()

    @contextmanager
    def parse(self, data: bytes) -> Iterator[object]:
        """Parse ``data``: the document, or the error if simdjson refuses it.

        The document must not outlive the ``with`` block.
        """
        if len(data) > self.REUSE_LIMIT:
            try:
                own: object = simdjson.Parser().parse(data)
            except (ValueError, RuntimeError, UnicodeDecodeError) as exc:
                yield exc
                return
            del data  # this frame lives on while the caller reads: let the body go with its last holder
            yield own
            return
        with self.lock:
            try:
                document = self.parse_once(data)
            except (ValueError, RuntimeError, UnicodeDecodeError) as exc:
                yield exc
                return
            del data
            yield document

    def parse_once(self, data: bytes) -> object:
        """Parse with the shared parser, replacing it if a stale document still holds it."""
        try:
            return self.parser.parse(data)
        except RuntimeError as exc:
            if "re-use a parser" not in str(exc):
                raise
            # A document of an earlier request is still referenced (by an exception's
            # traceback, say): start a new parser rather than fail this request.
            self.parser = simdjson.Parser()
            return self.parser.parse(data)


PARSER = SharedParser()


def parse_json(body: Body | bytes, endpoint: Endpoint, limits: Limits) -> FitRequest:
    """Parse and check a JSON body."""
    data = body.take() if isinstance(body, Body) else body
    if len(data) == 0:
        raise MalformedBody("The body is empty; send a JSON object with 'X_train' and 'y_train'.")
    brackets = data.count(b"[")
    with PARSER.parse(data) as document:
        if isinstance(document, Exception):
            refused: Exception | None = document
        else:
            refused = None
            del data  # simdjson holds its own copy
            outcome = read_fast(document, brackets, endpoint, limits)
        del document
    if refused is not None:
        return build_request(PlainFields(decode_exactly(data, refused)), endpoint, limits)
    if isinstance(outcome, FitRequest):
        return outcome
    return build_request(PlainFields(outcome), endpoint, limits)


def read_fast(document: object, brackets: int, endpoint: Endpoint, limits: Limits) -> FitRequest | dict[str, object]:
    """Build the request on the fast road, or return the document decoded for the exact one."""
    if not isinstance(document, simdjson.Object):
        raise InvalidInput(f"The body must be a JSON object. Got {json_kind(document)} instead.")
    fast = FastFields(document)
    try:
        request = build_request(fast, endpoint, limits)
        if brackets != fast.arrays + fast.brackets_in_values:
            raise Uncertain
        return request
    except (Uncertain, InvalidInput, KeyError):
        # KeyError: simdjson cannot look up keys with a NUL character (but as_dict reads them).
        plain: dict[str, object] = dict(document.as_dict())
        return plain


def decode_exactly(body: bytes, simdjson_error: Exception | None) -> dict[str, object]:
    """Decode a body into Python objects, as exactly as JSON allows, or raise ``MalformedBody``."""
    message = str(simdjson_error or "")
    if simdjson_error is not None and not ("NUMBER_ERROR" in message or "BIGINT_ERROR" in message):
        raise MalformedBody(malformed_detail(body, simdjson_error))
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "number is infinity" not in str(exc):
            raise MalformedBody(malformed_detail(body, exc)) from None
        document = decode_with_infinities(body)
    if not isinstance(document, dict):
        raise InvalidInput(f"The body must be a JSON object. Got {json_kind(document)} instead.")
    return document


def decode_with_infinities(body: bytes) -> object:
    """Decode JSON whose numbers overflow a float64 (they become infinities, refused later)."""

    def refuse(constant: str) -> object:
        raise MalformedBody(f"The body is not valid JSON: {constant} is not a JSON value.")

    try:
        document = json.loads(bytes(body).decode("utf-8"), parse_constant=refuse, parse_int=read_integer)
        orjson.dumps(document)  # refuses strings with unpaired surrogates, as orjson.loads does
    except (ValueError, TypeError, RecursionError) as exc:
        raise MalformedBody(f"The body is not valid JSON: {exc}.") from None
    return document


def read_integer(text: str) -> int | float:
    """Read a JSON integer as orjson does: exact within 64 bits, else the nearest float (or inf)."""
    return int(text) if len(text.lstrip("-")) <= 18 else float(text)


def malformed_detail(body: bytes, error: Exception) -> str:
    """Say why a body is not JSON, without echoing it."""
    text = str(error)
    if isinstance(error, UnicodeDecodeError) or "UTF8" in text or "utf-8" in text:
        return "The body is not valid UTF-8; send JSON text encoded as UTF-8."
    if "surrogate" in text or "STRING_ERROR" in text:
        return "The body is not valid JSON: a string has an invalid escape or an unpaired surrogate."
    if isinstance(error, orjson.JSONDecodeError):
        return f"The body is not valid JSON: {error.msg} at character {error.pos}."
    reason = " ".join(text.split(":", 1)[-1].split()).rstrip(".")
    return "The body is not valid JSON: " + (reason or "it cannot be parsed") + "."


def json_kind(value: object) -> str:
    """Name the kind of a JSON value."""
    if isinstance(value, simdjson.Array):
        return "a list"
    return describe(value)


def build_request(fields: Fields, endpoint: Endpoint, limits: Limits) -> FitRequest:
    """Check the fields in the order of the contract's table and build the request."""
    names = fields.names()
    for name in names:
        if name not in FIELDS:
            raise InvalidInput(unknown_field_detail(name), excerpt(name))
    present = set(names)
    if "model" in present:
        return build_model_request(fields, endpoint, present, limits)
    if "X_train" not in present:
        alternative = " (or 'model', to predict from an earlier fit)" if endpoint == "predict" else ""
        raise InvalidInput(f"'X_train' is required{alternative}. Got a body without it.", "X_train")
    X = fields.matrix("X_train")
    check_size("X_train", X, limits)
    if "y_train" not in present:
        raise InvalidInput("'y_train' is required with 'X_train'. Got a body without it.", "y_train")
    y = fields.matrix("y_train")
    if y.rows != X.rows:
        raise InvalidInput(
            f"'y_train' has {plural(y.rows, 'row')}, but 'X_train' has {X.rows}; "
            "every training row needs its target.",
            "y_train",
        )
    if y.columns > limits.max_features:
        raise InvalidInput(
            f"'y_train' has {y.columns} targets, but at most {limits.max_features} are allowed "
            "(setting max_features, FITSERVE_MAX_FEATURES).",
            "y_train",
        )
    X_test = read_test(fields, endpoint, present, X.names, X.columns, "X_train", limits)
    weights = None
    if "sample_weight" in present:
        weights = fields.vector("sample_weight")
        check_weights(weights, X.rows)
    options = read_options(fields, present, has_test=X_test is not None)
    check_statistics_size(options, X.columns, y.columns, limits)
    single = y.flat or y.columns == 1
    return FitRequest(
        X_train=X.values,
        y_train=y.values,
        X_test=X_test,
        sample_weight=weights,
        feature_names=X.names,
        target_names=y.names,
        single_target=single,
        options=options,
    )


def unknown_field_detail(name: str) -> str:
    """Say that a field is unknown, suggesting the closest known one."""
    close = difflib.get_close_matches(name, FIELDS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"{excerpt(name)!r} is not a field of this API.{hint} The fields are: {', '.join(FIELDS)}."


def check_size(field: str, matrix: Matrix, limits: Limits) -> None:
    """Refuse a training matrix past the size limits."""
    if matrix.columns > limits.max_features:
        raise InvalidInput(
            f"'{field}' has {matrix.columns} features, but at most {limits.max_features} are allowed "
            "(setting max_features, FITSERVE_MAX_FEATURES).",
            field,
        )
    if matrix.rows * matrix.columns > limits.max_cells:
        raise InvalidInput(
            f"'{field}' has {matrix.rows * matrix.columns} values, but at most {limits.max_cells} are "
            "allowed (setting max_cells, FITSERVE_MAX_CELLS).",
            field,
        )


def read_test(
    fields: Fields,
    endpoint: Endpoint,
    present: set[str],
    names: tuple[str, ...] | None,
    width: int,
    source: str,
    limits: Limits,
) -> np.ndarray | None:
    """Read ``X_test`` and line its columns up with the fit's features."""
    if "X_test" not in present:
        if endpoint == "predict":
            raise InvalidInput(
                "'X_test' is required on /predict (use /fit to fit without predicting). "
                "Got a body without it.",
                "X_test",
            )
        return None
    test = fields.matrix("X_test")
    if test.rows > limits.max_prediction_rows:
        raise InvalidInput(
            f"'X_test' has {test.rows} rows, but at most {limits.max_prediction_rows} are allowed "
            "(setting max_prediction_rows, FITSERVE_MAX_PREDICTION_ROWS).",
            "X_test",
        )
    if test.names is None:
        if test.columns != width:
            raise InvalidInput(
                f"'X_test' has {plural(test.columns, 'column')}, but {source} has {width}.", "X_test"
            )
        return test.values
    if names is None:
        raise InvalidInput(
            f"'X_test' has named columns, but {source} has none; send 'X_test' as a list of rows.",
            "X_test",
        )
    missing = [n for n in names if n not in test.names]
    if missing:
        raise InvalidInput(f"'X_test' lacks the feature {missing[0]!r}, which {source} has.", "X_test")
    extra = [n for n in test.names if n not in names]
    if extra:
        raise InvalidInput(f"'X_test' has the column {extra[0]!r}, which {source} does not have.", "X_test")
    if test.names == names:
        return test.values
    order = [test.names.index(n) for n in names]
    return np.ascontiguousarray(test.values[:, order])


def check_weights(weights: np.ndarray, rows: int) -> None:
    """Refuse weights of the wrong length, negative, or all zero."""
    if weights.size != rows:
        raise InvalidInput(
            f"'sample_weight' has {plural(weights.size, 'value')}, but 'X_train' has "
            f"{plural(rows, 'row')}; give one weight per training row.",
            "sample_weight",
        )
    if weights.min() < 0:
        i = int(np.argmax(weights < 0))
        raise InvalidInput(
            f"'sample_weight' has {weights[i]:.6g} at row {i} (counting from 0); weights must be >= 0.",
            "sample_weight",
        )
    if not weights.any():
        raise InvalidInput("'sample_weight' is all zeros; at least one weight must be positive.", "sample_weight")


def read_options(fields: Fields, present: set[str], has_test: bool) -> Options:
    """Read the options, each with its default when absent."""
    flags = {}
    for name in ("fit_intercept", "positive", "statistics"):
        if name in present:
            value = fields.value(name)
            if value is not True and value is not False:
                raise InvalidInput(f"'{name}' must be true or false. Got {describe(value)} instead.", name)
            flags[name] = value
    interval = "none"
    if "interval" in present:
        value = fields.value("interval")
        if value not in INTERVALS or not isinstance(value, str):
            raise InvalidInput(
                f"'interval' must be one of \"none\", \"confidence\", \"prediction\". Got {describe(value)} instead.",
                "interval",
            )
        interval = value
        if interval != "none" and not has_test:
            raise InvalidInput(
                f"'interval' is {interval!r}, but there is no 'X_test' to give intervals for.", "interval"
            )
    level = 0.95
    if "level" in present:
        value = fields.value("level")
        if type(value) not in (int, float) or not 0 < value < 1:  # type: ignore[operator]
            raise InvalidInput(f"'level' must be a number between 0 and 1 (exclusive). Got {describe(value)} instead.", "level")
        level = float(value)  # type: ignore[arg-type]
    return Options(interval=interval, level=level, **flags)


def check_statistics_size(options: Options, features: int, targets: int, limits: Limits) -> None:
    """Refuse statistics (or intervals) past the size limit: their cost grows with targets x terms."""
    if not options.statistics and options.interval == "none":
        return
    terms = targets * (features + int(options.fit_intercept))
    if terms > limits.max_statistics_terms:
        field = "statistics" if options.statistics else "interval"
        raise InvalidInput(
            f"'{field}' asks for {terms} coefficient statistics ({targets} targets x "
            f"{features + int(options.fit_intercept)} terms), but at most {limits.max_statistics_terms} "
            "are allowed (setting max_statistics_terms, FITSERVE_MAX_STATISTICS_TERMS).",
            field,
        )


def build_model_request(fields: Fields, endpoint: Endpoint, present: set[str], limits: Limits) -> FitRequest:
    """Check a request that predicts from an earlier model."""
    if endpoint != "predict":
        raise InvalidInput("'model' is only taken by /predict; /fit always fits training data.", "model")
    for name in TRAINING_ONLY:
        if name in present:
            raise InvalidInput(
                f"'model' cannot come with {name!r}: a model predicts without training data "
                "(statistics and intervals need the training data, so fit again for them).",
                "model",
            )
    model = read_model(fields.value("model"))
    width = model.coef.shape[1]
    X_test = read_test(fields, endpoint, present, model.feature_names, width, "'model'", limits)
    options = read_options(fields, present, has_test=True)
    return FitRequest(
        X_test=X_test,
        feature_names=model.feature_names,
        target_names=model.target_names,
        single_target=model.single_target,
        options=options,
        model=model,
    )


def read_model(value: object) -> Model:
    """Read a model: ``coef``, ``intercept``, optional ``feature_names`` and ``target_names``."""
    if not isinstance(value, dict):
        raise InvalidInput(f"'model' must be an object with 'coef' and 'intercept'. Got {describe(value)} instead.", "model")
    for key in ("coef", "intercept"):
        if key not in value:
            raise InvalidInput(f"'model' must have {key!r} (an earlier answer has it). Got an object without it.", "model")
    coef = value["coef"]
    single = isinstance(coef, list) and bool(coef) and not isinstance(coef[0], (list, dict))
    with model_errors("coef"):
        matrix = read_matrix(coef, "coef")
    if matrix.names is not None:
        raise InvalidInput(
            "'model.coef' must be a list of numbers, or a list of lists with several targets. "
            "Got an object instead.",
            "model",
        )
    coefs = matrix.values.T if single else matrix.values  # (k, p)
    intercept = value["intercept"]
    with model_errors("intercept"):
        if single and isinstance(intercept, list):
            raise InvalidInput("'intercept' must be a number with one target. Got a list instead.", "intercept")
        intercepts = read_vector([intercept] if single else intercept, "intercept")
    if intercepts.size != coefs.shape[0]:
        raise InvalidInput(
            f"'model.intercept' has {plural(intercepts.size, 'value')}, but 'model.coef' has "
            f"{plural(coefs.shape[0], 'target')}.",
            "model",
        )
    feature_names = read_names(value, "feature_names", coefs.shape[1])
    target_names = read_names(value, "target_names", coefs.shape[0])
    return Model(coefs, intercepts, feature_names, target_names, single)


@contextmanager
def model_errors(key: str) -> Iterator[None]:
    """Let errors in part of a model name the field ``model`` (and the part, in the detail)."""
    try:
        yield
    except InvalidInput as exc:
        raise InvalidInput(exc.detail.replace(f"'{key}'", f"'model.{key}'", 1), "model") from None


def read_names(model: dict[str, object], key: str, count: int) -> tuple[str, ...] | None:
    """Read optional names of a model: unique strings, one per coefficient or target."""
    names = model.get(key)
    if names is None:
        return None
    if (
        not isinstance(names, list)
        or len(names) != count
        or not all(isinstance(n, str) for n in names)
        or len(set(names)) != len(names)
    ):
        raise InvalidInput(
            f"'model.{key}' must be a list of {count} distinct strings, one per "
            f"{'coefficient' if key == 'feature_names' else 'target'}. Got {describe(names)} instead.",
            "model",
        )
    return tuple(names)
