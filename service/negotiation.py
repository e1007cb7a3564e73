"""The media type of an answer to ``/fit`` and ``/predict``, and its bytes in that type.

JSON is the default; ``text/csv`` gives the predictions as a table; ``image/svg+xml`` and
``image/png`` give a picture of the fit (``plots``). A picture needs the training data and
at most ``plots.MAX_TARGETS`` targets, so which types a request can have depends on the
request; the HTTP layer picks among ``offered(request)`` with the ``Accept`` header and
answers 406 with ``not_acceptable(...)`` when none of them is acceptable.

matplotlib is imported (through ``plots``) only when a picture is rendered.
"""

from __future__ import annotations

from service.errors import NotAcceptable, excerpt
from service.fitting import aligned
from service.rendering import render_csv, render_json
from service.request import FitRequest, FitResult

JSON = "application/json"
CSV = "text/csv"
SVG = "image/svg+xml"
PNG = "image/png"
#: Every type an answer can have, the default first (a tie in ``Accept`` goes to the earlier).
ANSWER_TYPES = (JSON, CSV, SVG, PNG)
TABLE_TYPES = (JSON, CSV)
# Kept here, not read from ``plots``, so that deciding does not import matplotlib.
MAX_PICTURE_TARGETS = 10


def picture_refusal(request: FitRequest) -> str | None:
    """Why this request can have no picture, as a sentence; ``None`` when it can."""
    if request.model is not None or request.X_train is None or request.y_train is None:
        return "A picture of a fit needs its training data, and this request predicts from a 'model'."
    targets = request.y_train.shape[1]
    if targets > MAX_PICTURE_TARGETS:
        return (
            f"A picture draws at most {MAX_PICTURE_TARGETS} targets (a row of panels each), "
            f"and this fit has {targets}."
        )
    return None


def offered(request: FitRequest) -> tuple[str, ...]:
    """The media types this request's answer can be given in, the default first."""
    return ANSWER_TYPES if picture_refusal(request) is None else TABLE_TYPES


def not_acceptable(path: str, accept: str, request: FitRequest | None = None) -> NotAcceptable:
    """The 406 for an ``Accept`` header that takes none of the types offered, saying which are."""
    types = ANSWER_TYPES if request is None else offered(request)
    reason = "" if request is None else (picture_refusal(request) or "")
    listed = ", ".join(types[:-1]) + " or " + types[-1]
    return NotAcceptable(
        f"{reason + ' ' if reason else ''}{path} answers {listed} here, "
        f"but the Accept header takes none of them (got {excerpt(accept, 80)!r})."
    )


def render_for(media: str, request: FitRequest, result: FitResult) -> bytes:
    """Render the answer to ``request`` in ``media``, one of ``offered(request)``."""
    if media == CSV:
        return render_csv(result)
    if media in (SVG, PNG):
        from service import plots  # matplotlib only when a picture is asked for

        assert request.X_train is not None and request.y_train is not None
        training = plots.Training(
            X=request.X_train,
            Y=request.y_train,
            weights=request.sample_weight,
            # Aligned with the predictions: a test row left out for a missing value is NaN in both.
            X_test=aligned(request.X_test, request.test_rows),
            fit_intercept=request.options.fit_intercept,
        )
        return plots.draw(training, result, "svg" if media == SVG else "png")
    return render_json(result)
