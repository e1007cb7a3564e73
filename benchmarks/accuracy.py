"""Correct significant digits on the NIST StRD sets, through the HTTP API: the table of docs/accuracy.md.

Run from the repository's top folder (loopback only)::

    python -m benchmarks.accuracy

It serves the app from this process on a free loopback port
(``service.serve_in_background``), posts each set of ``tests/fixtures/strd`` as a client
would (the design columns x, x^2, ... built here in float64, ``statistics`` asked), and
prints a Markdown table: for each set, the smallest LRE over its parameters for the
coefficients (intercept included) and their standard errors, and the LRE of the residual
standard deviation and of R^2. LRE is ``-log10(|estimate - certified| / |certified|)``
(the absolute error where the certified value is 0), capped at 15.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import service
from service import client

ROOT = Path(__file__).resolve().parents[1]
STRD = ROOT / "tests" / "fixtures" / "strd"
ORDER = ("Norris", "Pontius", "NoInt1", "Longley", "Wampler1")  # NIST's order of difficulty
CAP = 15.0


def lre(estimate: float, certified: float) -> float:
    """Correct significant digits of ``estimate``, as NIST counts them, capped at 15."""
    error = abs(estimate - certified) / (abs(certified) if certified != 0 else 1.0)
    return CAP if error == 0 else min(CAP, -math.log10(error))


def design(reference: dict[str, Any]) -> np.ndarray:
    """The design columns a client builds: x, x^2, ... for polynomials; the x rows as given otherwise."""
    x = np.asarray(reference["x"], dtype=np.float64)
    if reference["model"] == "polynomial":
        return np.column_stack([x**k for k in range(1, int(reference["degree"]) + 1)])
    return x.reshape(int(reference["n"]), -1)


def digits(url: str, reference: dict[str, Any]) -> dict[str, float]:
    """Fit one set through the API; the LRE of each certified quantity."""
    intercept = bool(reference["intercept"])
    answer = client.fit(url, design(reference), np.asarray(reference["y"], dtype=np.float64),
                        fit_intercept=intercept, statistics=True)  # fmt: skip
    summary = answer["statistics"]
    certified = reference["certified"]
    estimates = ([answer["intercept"]] if intercept else []) + list(answer["coef"])
    errors = [term["std_error"] for term in summary["coefficients"]]
    return {
        "coefficients": min(lre(e, c) for e, c in zip(estimates, certified["params"], strict=True)),
        "standard errors": min(lre(e, c) for e, c in zip(errors, certified["param_sd"], strict=True)),
        "residual SD": lre(summary["residual_std_error"], certified["residual_sd"]),
        "R^2": lre(summary["r_squared"], certified["r_squared"]),
    }


def table(rows: dict[str, dict[str, float]]) -> str:
    """The rows as the Markdown table of docs/accuracy.md."""
    columns = list(next(iter(rows.values())))
    lines = ["| set | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    lines += [f"| {name} | " + " | ".join(f"{row[c]:.1f}" for c in columns) + " |" for name, row in rows.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the LRE table of the NIST sets."""
    argparse.ArgumentParser(prog="python -m benchmarks.accuracy", description=__doc__.split("\n\n")[0]).parse_args(argv)
    references = {path.stem: json.loads(path.read_text()) for path in STRD.glob("*.json")}
    names = [name for name in ORDER if name in references] + sorted(set(references) - set(ORDER))
    with service.serve_in_background(port=0) as server:
        print(table({name: digits(server.url, references[name]) for name in names}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
