"""The OpenAPI 3.1 document of fitserve's HTTP contract.

`build_document(version)` returns the document served at `GET /openapi.json`. It is
written by hand from the HTTP contract rather than derived from the code, so that
tests can hold the two against each other. Pure data: no falcon, no I/O.
"""

from __future__ import annotations

import copy

Schema = dict[str, object]

_DESCRIPTION = (
    "Fits a fresh scikit-learn `LinearRegression` per request and answers its "
    "coefficients, predictions and, on request, R-style statistics and intervals. "
    "Stateless: a request carries all its data and the service keeps nothing. "
    "Every error, whatever the `Accept` header, is `application/problem+json` "
    "(RFC 9457); an unknown path answers 404 and a method a path does not take 405."
)

# status: (component name, description); the order is the one of the README's errors table.
_ERRORS: dict[str, tuple[str, str]] = {
    "400": ("BadRequest", "The body is not parseable: malformed JSON, CSV or "
            "multipart, an empty body, invalid UTF-8, or an unpaired surrogate "
            "escape."),
    "401": ("Unauthorized", "A token is configured and `Authorization: Bearer <token>` "
            "is missing or wrong."),
    "404": ("NotFound", "No such path."),
    "405": ("MethodNotAllowed", "The path does not take this method."),
    "406": ("NotAcceptable", "`Accept` lists only media types the endpoint cannot give "
            "(e.g. a picture of a fit from a `model`, with no training data); `detail` "
            "says which it gives."),
    "413": ("ContentTooLarge", "The body is larger than the configured limit "
            "(`--max-body-mb`)."),
    "415": ("UnsupportedMediaType", "A content type this endpoint does not take; "
            "`detail` says which it takes."),
    "422": ("UnprocessableContent", "Parseable but invalid: a missing or unknown "
            "field, a wrong type or shape, lengths that do not match, a size limit "
            "exceeded, or a non-finite result. `field` names the field at fault."),
    "503": ("ServiceUnavailable", "The server ran out of memory for this request; "
            "it keeps serving others."),
    "500": ("InternalError", "Never caused by input; generic text only."),
}
_KINDS = ["confidence", "prediction"]
_FLAGS = ["fit_intercept", "positive", "statistics"]
_POST_ERRORS = ["400", "401", "405", "406", "413", "415", "422", "503", "500"]

_CSV_ANSWER = (
    "The answer as CSV (with `Accept: text/csv`): a header row, then one row per test "
    "row, one column per target (named as the target; `y`, or `y0`, `y1`, ... without "
    "names), then `lower_<target>` and `upper_<target>` for each target when an "
    "interval was asked. Without `X_test`, the header row alone."
)

_PICTURE = (
    "A picture of the fit (with `Accept: {0}`). With one feature and one target: the "
    "training points, the fitted line, the test predictions and the interval band when "
    "`interval` is asked. Otherwise residuals against fitted values and a normal Q-Q plot "
    "of the standardized residuals, a row of panels per target (at most 10). Needs the "
    "training data: from a `model` it is a 406."
)
_DOCS_PAGE = (
    "This page: Swagger UI on `/openapi.json`, every file of it served by the service "
    "(no other site is contacted). With a token configured, it asks for it (Authorize)."
)


_TRAIN_CSV = "x1,x2,y\n1,2,1\n2,1,2\n3,5,3\n4,4,5\n"
_SEED = {"X_train": [[1, 2], [2, 1], [3, 5]], "y_train": [1, 2, 3], "X_test": [[4, 4]]}
_FORM = {"train": _TRAIN_CSV, "test": "x1,x2\n4,4\n5,1\n", "target": "y"}
# Each answers 200; the tests send every one of them.
_EXAMPLES: dict[str, dict[str, Schema]] = {
    "FitRequest": {
        "rows": {"summary": "Rows of features, one target, a query point", "value": _SEED},
        "named": {"summary": "Named columns, with statistics and intervals", "value": {
            "X_train": {"age": [30, 40, 50, 60]}, "y_train": [1.7, 1.8, 1.75, 1.9],
            "X_test": {"age": [45]}, "statistics": True, "interval": "prediction"}},
        "line": {"summary": "One feature and 90% prediction intervals: ask for a picture",
                 "value": {"X_train": {"area": [52, 61, 70, 74, 85, 90, 104, 118]},
                           "y_train": {"price": [189, 195, 241, 231, 283, 268, 329, 353]},
                           "X_test": {"area": [65, 95, 125]},
                           "interval": "prediction", "level": 0.9}},
    },
    "PredictRequest": {
        "seed": {"summary": "Training data and query points", "value": _SEED},
        "model": {"summary": "An earlier answer's model", "value": {
            "model": {"coef": [0.5, 0.25], "intercept": 1.0}, "X_test": [[4, 4]]}},
    },
    "FitTable": {"table": {"summary": "The last column is the target",
                           "value": _TRAIN_CSV}},
    "FitForm": {"form": {"summary": "A training table and query points", "value": _FORM}},
    "PredictForm": {"form": {"summary": "A training table and query points",
                             "value": _FORM}},
}


def _examples(name: str) -> dict[str, Schema]:
    """Copy the examples of one request body, so that no two documents share them."""
    return copy.deepcopy(_EXAMPLES[name])


def _ref(name: str, kind: str = "schemas") -> Schema:
    """Point at an entry of the components section."""
    return {"$ref": f"#/components/{kind}/{name}"}


def _nullable(type_: str, **keywords: object) -> Schema:
    """Make a schema of `type_` that also takes `null`."""
    return {"type": [type_, "null"], **keywords}


def _array(items: Schema, **keywords: object) -> Schema:
    """Make a schema of a non-empty array of `items`."""
    return {"type": "array", "items": items, "minItems": 1, **keywords}


def _object(properties: dict[str, Schema], required: list[str],
            **keywords: object) -> Schema:
    """Make a schema of an object with the given properties."""
    return {"type": "object", "properties": properties, "required": required,
            **keywords}


def _json(schema: Schema) -> dict[str, Schema]:
    """Wrap a schema as the content of a JSON body."""
    return {"application/json": {"schema": schema}}


def _options() -> dict[str, Schema]:
    """Describe the options shared by JSON fields, query parameters and form fields."""
    return {
        "fit_intercept": {"type": "boolean", "default": True,
                          "description": "As `LinearRegression(fit_intercept=...)`."},
        "positive": {"type": "boolean", "default": False,
                     "description": "As `LinearRegression(positive=...)`."},
        "statistics": {"type": "boolean", "default": False,
                       "description": "Add the `statistics` block to the answer."},
        "interval": {"type": "string", "enum": ["none", *_KINDS],
                     "default": "none",
                     "description": "Intervals for each prediction; needs `X_test`."},
        "level": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1,
                  "default": 0.95,
                  "description": "Coverage of coefficient and prediction intervals."},
        "missing": {"type": "string", "enum": ["fail", "drop"], "default": "fail",
                    "description": "What a missing value (JSON null; in CSV an empty cell "
                    "or NA) does: `fail` is a 422 naming it; `drop` leaves such training "
                    "rows out (`n_dropped`) and gives null predictions for such test rows, "
                    "as R's na.exclude."},
    }


def _table_fields() -> dict[str, Schema]:
    """Describe the fields of the table form that are strings: the formula and the columns' roles."""
    return {
        "formula": {"type": "string", "description": "A Wilkinson formula, as R's lm "
                    "reads it: `price ~ sqft + hood + log(age)`; terms may use C(), I() "
                    "arithmetic, log, log2, log10, exp, sqrt, abs, poly(x, degree), center "
                    "and scale. Nothing else is evaluated."},
        "target": {"type": "string", "description": "Shorthand for the formula "
                   "`<target> ~ .`; comma-separated for several targets; default (no "
                   "`formula`, no `target`) the last column that is not `weight`."},
        "weight": {"type": "string", "description": "The column of the training table "
                   "that holds the sample weights (>= 0, not all zero)."},
    }


def _table_options() -> dict[str, Schema]:
    """Describe the fields of a table body, sent as query parameters or form fields."""
    options = _options()
    for name in _FLAGS:
        options[name]["description"] = (f"{options[name]['description']} Written `true` "
                                        "or `false` (also `1` or `0`, in any case).")
    return {**_table_fields(), **options}


def _request(predict: bool) -> Schema:
    """Make the schema of the JSON body of `/predict` (or of `/fit`)."""
    properties: dict[str, Schema] = {
        "X_train": {**_ref("Matrix"), "description": "Training features."},
        "y_train": {**_ref("Matrix"), "description": "One target (a flat list, rows "
                    "of one value, or one named column) or several (rows of k >= 2 "
                    "values, or named columns)."},
        "X_test": {**_ref("Matrix"), "description": "Query points; matched by name "
                   "when the training features are named, else by position."},
        "sample_weight": _array(
            {"type": "number", "minimum": 0}, contains={"exclusiveMinimum": 0},
            description="One weight >= 0 per training row, not all zero."),
        **_options(),
    }
    if predict:
        properties["model"] = {**_ref("Model"),
                               "description": "Instead of the training data."}
    properties["missing"] = properties.pop("missing")
    properties.update({
        "train": {**_ref("Table"), "description": "The table form: the training table."},
        **{name: schema for name, schema in _table_fields().items() if name != "weight"},
        "test": {**_ref("Table"), "description": "The table form: rows to predict; "
                 "columns the formula does not use are ignored."},
        "weight": _table_fields()["weight"],
    })
    schema = _object(properties, [], additionalProperties=False,
                     description="Matrices (`X_train`, `y_train`, `X_test`) or a table and a "
                     "formula (`train`, `formula` or `target`, `test`), not both. Fields are "
                     "checked in this order; the first failure is the one reported. A field "
                     "not listed is a 422.")
    training = [{"required": ["X_train", "y_train"]}, {"required": ["train"]}]
    if predict:
        excluded = ["X_train", "y_train", "sample_weight", "train", "formula", "target",
                    "weight", "statistics", "interval"]
        schema["anyOf"] = [{"required": ["X_train", "y_train", "X_test"]},
                           {"required": ["train", "test"]},
                           {"required": ["model", "X_test"]},
                           {"required": ["model", "test"]}]
        schema["dependentSchemas"] = {
            "model": {"not": {"anyOf": [{"required": [name]} for name in excluded]}}}
    else:
        schema["anyOf"] = training
        # An interval needs rows to predict.
        schema["if"] = {"properties": {"interval": {"enum": _KINDS}},
                        "required": ["interval"]}
        schema["then"] = {"anyOf": [{"required": ["X_test"]}, {"required": ["test"]}]}
    return schema


def _form(predict: bool) -> Schema:
    """Make the schema of the multipart body of `/predict` (or of `/fit`)."""
    # A part is text read as UTF-8, sent as a file or not: OpenAPI 3.1 says so with
    # `contentMediaType`; 3.0's `format: binary` would mean any bytes (an image, say).
    csv_text: Schema = {"type": "string", "contentMediaType": "text/csv"}
    test = "The query points: a table of the feature columns, header row first, " \
           "matched to the training features by name (`curl -F test=@test.csv`)."
    properties: dict[str, Schema] = {
        "train": {**csv_text, "description": "The training table, header row first "
                  "(`curl -F train=@train.csv`): the features, the target(s) and, "
                  "with `weight`, a weight column."},
        "test": {**csv_text, "description": test if predict else f"{test} Optional."},
        **_table_options(),
    }
    return _object(properties, ["train", "test"] if predict else ["train"],
                   additionalProperties=False,
                   description="Each part at most once. A part not listed is a 422, "
                   "and so is a field given both as a part and as a query parameter.")


def _query_parameters() -> list[Schema]:
    """List the query parameters that carry the fields of a table body."""
    # No defaults here: a client sends these only with a table body (a JSON body with any
    # query parameter is a 422), so a tool that fills in defaults must not add them.
    return [{"name": name, "in": "query", "required": False,
             "description": f"{schema.pop('description')} For `text/csv` and "
             "`multipart/form-data` bodies only: a JSON body takes its options from the body, "
             "and any query parameter with it is a 422. An unknown query parameter, or one "
             "given twice, is a 422.",
             "schema": {key: value for key, value in schema.items() if key != "default"}}
            for name, schema in _table_options().items()]


def _statistics() -> Schema:
    """Make the schema of the statistics of one target, as R's `summary.lm`."""
    term = _object({
        "term": {"type": "string",
                 "description": "`(Intercept)`, a feature name, or `x0`, `x1`, ..."},
        "estimate": {"type": "number"},
        "std_error": _nullable("number", minimum=0),
        "t_value": _nullable("number"),
        "p_value": _nullable("number", minimum=0, maximum=1),
        "ci_lower": _nullable("number"),
        "ci_upper": _nullable("number"),
    }, ["term", "estimate", "std_error", "t_value", "p_value", "ci_lower", "ci_upper"])
    properties: dict[str, Schema] = {
        "r_squared": _nullable("number"),
        "adj_r_squared": _nullable("number"),
        "residual_std_error": _nullable("number", minimum=0),
        "df_residual": {"type": "integer", "minimum": 0},
        "f_statistic": _nullable("number", minimum=0),
        "f_p_value": _nullable("number", minimum=0, maximum=1),
        "condition_number": _nullable("number", minimum=0),
        "coefficients": _array(term, description="One entry per term, the intercept "
                               "first when fitted."),
    }
    return _object(properties, list(properties), description="A statistic that does "
                   "not exist is `null` and `warnings` says why.")


def _answer() -> Schema:
    """Make the schema of a successful JSON answer."""
    per_target: Schema = {"oneOf": [_ref("Vector"), _array(_ref("Vector"))]}
    # A test row left out for a missing value ("missing": "drop") is null.
    gappy: Schema = _array({"type": ["number", "null"]})
    per_row: Schema = {"oneOf": [gappy, _array({"oneOf": [_ref("Vector"), {"type": "null"}]})]}
    intervals = _object({"lower": per_row, "upper": per_row,
                         "level": _options()["level"],
                         "kind": {"type": "string", "enum": _KINDS}},
                        ["lower", "upper", "level", "kind"],
                        description="Aligned with `predictions`.")
    names = _array({"type": "string"})
    properties: dict[str, Schema] = {
        "coef": {**per_target, "description": "One number per feature; with k targets, "
                 "k lists."},
        "intercept": {"oneOf": [{"type": "number"}, _ref("Vector")],
                      "description": "With k targets a list; 0.0 without intercept."},
        "predictions": {**per_row, "description": "One number per query row; with k "
                        "targets, one list of k per row. When `X_test` (or `test`) is "
                        "given; null for a row left out for a missing value."},
        "feature_names": {**names, "description": "In the order of `coef`."},
        "target_names": {**names, "description": "In the order of the targets."},
        "n_samples": _nullable("integer", minimum=1, description="`null` when "
                               "predicting from a `model`."),
        "n_features": {"type": "integer", "minimum": 1},
        "n_targets": {"type": "integer", "minimum": 1},
        "rank": _nullable("integer", minimum=0, description="`LinearRegression.rank_`; "
                          "`null` when `positive` or predicting from a `model`."),
        "warnings": {"type": "array", "items": {"type": "string"}},
        "statistics": {"oneOf": [_ref("Statistics"), _array(_ref("Statistics"))],
                       "description": "With `statistics: true` or an interval; a list "
                       "with several targets."},
        "intervals": intervals,
        "n_dropped": {"type": "integer", "minimum": 0, "description": "With "
                      "`\"missing\": \"drop\"`: training rows left out for a missing value."},
        "formula": {"type": "string", "description": "A fit from a table: the formula "
                    "as the service read it."},
        "design": {"type": "object", "description": "A fit from a table: what rebuilds "
                   "the design for new rows (levels, the state of poly, center and scale)."},
    }
    required = ["coef", "intercept", "n_samples", "n_features", "n_targets", "rank",
                "warnings"]
    return _object(properties, required)


def _schemas() -> dict[str, Schema]:
    """Make the reusable schemas of the components section."""
    number: Schema = {"type": "number"}
    return {
        "Vector": _array(number),
        "Matrix": {"description": "At least one row and one column.", "oneOf": [
            _array(_array(number), description="A list of rows, all the same length."),
            _array(number, description="A flat list: one feature, one value per row."),
            {"type": "object", "minProperties": 1,
             "additionalProperties": _array(number),
             "description": "Named columns: the keys become `feature_names`."},
            _array({"type": "object", "minProperties": 1,
                    "additionalProperties": number},
                   description="A list of records, all with the same keys."),
        ]},
        "Table": {"description": "Named columns of numbers, or of text (categories); "
                  "null is a missing value.", "oneOf": [
            {"type": "object", "minProperties": 1,
             "additionalProperties": _array({"type": ["number", "string", "boolean", "null"]}),
             "description": "Named columns, all the same length."},
            _array({"type": "object", "minProperties": 1,
                    "additionalProperties": {"type": ["number", "string", "boolean", "null"]}},
                   description="A list of records, all with the same keys."),
        ]},
        "Model": _object({"coef": {"oneOf": [_ref("Vector"), _array(_ref("Vector"))]},
                          "intercept": {"oneOf": [number, _ref("Vector")]},
                          "feature_names": _array({"type": "string"})},
                         ["coef", "intercept"], additionalProperties=True,
                         description="An earlier answer, or its `coef`, `intercept` "
                         "and `feature_names`."),
        "FitRequest": _request(predict=False),
        "PredictRequest": _request(predict=True),
        "FitForm": _form(predict=False),
        "PredictForm": _form(predict=True),
        "FitAnswer": _answer(),
        "Statistics": _statistics(),
        "Problem": _object({"title": {"type": "string"},
                            "status": {"type": "integer", "minimum": 400,
                                       "maximum": 599},
                            "detail": {"type": "string"},
                            "field": {"type": "string"},
                            "request_id": {"type": "string"}},
                           ["title", "status", "detail"],
                           description="RFC 9457 problem details; `field` where one "
                           "field is at fault; `request_id` as in `X-Request-ID`."),
    }


def _responses() -> dict[str, Schema]:
    """Make the reusable error responses of the components section."""
    return {name: {"description": description,
                   "content": {"application/problem+json": {"schema": _ref("Problem")}}}
            for name, description in _ERRORS.values()}


def _error_responses(statuses: list[str]) -> dict[str, Schema]:
    """Point each status at its reusable error response."""
    return {status: _ref(_ERRORS[status][0], "responses") for status in statuses}


def _post(operation_id: str, summary: str, predict: bool) -> Schema:
    """Make the POST operation of `/fit` or `/predict`."""
    prefix = "Predict" if predict else "Fit"
    table: Schema = {"schema": {"type": "string", "description": "The training table, "
                                "header row first; `formula` (or `target`), `weight` and "
                                "the options are query parameters."},
                     "examples": _examples("FitTable")}
    if predict:
        table = {"schema": {"type": "string", "description": "Taken but never fitted: "
                            "a CSV body is the training table alone, without the "
                            "`test` that `/predict` needs, so it is a 422 naming "
                            "`test` (400 if empty or not UTF-8). Send multipart."}}
    content: dict[str, Schema] = {
        "application/json": {"schema": _ref(f"{prefix}Request"),
                             "examples": _examples(f"{prefix}Request")},
        "text/csv": table,
        "multipart/form-data": {"schema": _ref(f"{prefix}Form"),
                                "examples": _examples(f"{prefix}Form"),
                                "encoding": {"train": {"contentType": "text/csv"},
                                             "test": {"contentType": "text/csv"}}},
    }
    operation: Schema = {
        "operationId": operation_id,
        "summary": summary,
        "security": [{"bearerAuth": []}, {}],
        "parameters": _query_parameters(),
        "requestBody": {"required": True, "content": content},
        "responses": {
            "200": {"description": "The fit, and predictions when `X_test` is given.",
                    "content": {**_json(_ref("FitAnswer")),
                                "text/csv": {"schema": {"type": "string",
                                                        "description": _CSV_ANSWER}},
                                "image/svg+xml": {"schema": {
                                    "type": "string", "contentMediaType": "image/svg+xml",
                                    "description": _PICTURE.format("image/svg+xml")}},
                                "image/png": {"schema": {
                                    "type": "string", "contentMediaType": "image/png",
                                    "description": _PICTURE.format("image/png")}}}},
            **_error_responses(_POST_ERRORS),
        },
    }
    if predict:
        operation["description"] = ("A `text/csv` body carries no `X_test`, so it is a "
                                    "422 here: send multipart instead.")
    return operation


def _get(operation_id: str, summary: str, schema: Schema) -> Schema:
    """Make a GET operation that never needs the token."""
    return {"operationId": operation_id, "summary": summary, "security": [],
            "responses": {"200": {"description": summary, "content": _json(schema)},
                          **_error_responses(["405"])}}


def _docs_page() -> Schema:
    """Make the GET operation of the docs page, which answers HTML and never needs the token."""
    summary = "A page of this API, to read it and to try it."
    html: Schema = {"type": "string", "contentMediaType": "text/html"}
    return {"operationId": "docs", "summary": summary, "description": _DOCS_PAGE,
            "security": [],
            "responses": {"200": {"description": summary,
                                  "content": {"text/html": {"schema": html}}},
                          **_error_responses(["405"])}}


def _metrics() -> Schema:
    """Make the operation of `/metrics`, which needs the token when one is configured."""
    return {"operationId": "metrics", "summary": "The service's metrics.",
            "description": "Prometheus' text format, version 0.0.4, summed over all "
            "worker processes (see the README, \"Operating it\").",
            "security": [{"bearerAuth": []}, {}],
            "responses": {"200": {"description": "The metrics.", "content": {
                "text/plain": {"schema": {"type": "string"}}}},
                **_error_responses(["401", "405"])}}


def build_document(version: str) -> dict[str, object]:
    """Build the OpenAPI 3.1 document of the contract, for package `version`."""
    health = _object({"status": {"type": "string", "const": "ok"},
                      "version": {"type": "string"}}, ["status", "version"])
    return {
        "openapi": "3.1.0",
        "info": {"title": "fitserve", "version": version, "description": _DESCRIPTION},
        "paths": {
            "/fit": {"post": _post("fit", "Fit a linear regression.", predict=False)},
            "/predict": {"post": _post("predict", "Fit (or take a model) and predict "
                                       "`X_test`.", predict=True)},
            "/health": {"get": _get("health", "The service is up.", health)},
            "/openapi.json": {"get": _get("openapi", "This document.",
                                          {"type": "object"})},
            "/docs": {"get": _docs_page()},
            "/metrics": {"get": _metrics()},
        },
        "components": {
            "schemas": _schemas(),
            "responses": _responses(),
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "Applies only when a token is configured (`--token`, "
                "`FITSERVE_TOKEN`); without one, no authentication."}},
        },
    }
