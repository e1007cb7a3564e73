"""Settings of fitserve: every default in one place, read from flags or the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

MIB = 2**20
LOG_FORMATS = ("text", "json")


class SettingsError(ValueError):
    """A setting has a value it cannot take."""


@dataclass(frozen=True)
class Limits:
    """Size limits on one request, each named in the 422 it causes."""

    max_features: int = 2_000
    max_cells: int = 25_000_000
    max_prediction_rows: int = 1_000_000
    max_statistics_terms: int = 100_000
    max_formula_length: int = 10_000
    #: Fits per request with ``by``. A group costs about one ``LinearRegression().fit`` (see
    #: benchmarks/groups.py) and about 450 bytes of answer without statistics: 100,000 groups
    #: stay within the worker timeout and a few hundred MiB.
    max_groups: int = 100_000


@dataclass(frozen=True)
class Settings:
    """Everything the service can be told, with the defaults of the contract."""

    host: str = "127.0.0.1"
    port: int = 8000
    threads: int = 4
    workers: int | None = None  # None: one per CPU this process may use
    max_body_mb: float = 100.0
    token: str | None = field(default=None, repr=False)
    cors_origins: tuple[str, ...] = ()
    max_features: int = Limits.max_features
    max_cells: int = Limits.max_cells
    max_prediction_rows: int = Limits.max_prediction_rows
    max_statistics_terms: int = Limits.max_statistics_terms
    max_formula_length: int = Limits.max_formula_length
    max_groups: int = Limits.max_groups
    log_format: str = "text"  # or "json": one JSON object per log line
    # Past this many seconds on one request, a worker process is replaced (see service.watchdog).
    # The longest fit the default limits allow (5000 x 2000 with statistics, a 90 MiB body) took
    # 73-90 s on a loaded 2-core machine: over three times that, and five times the 60 s a request
    # may take to arrive, so that only a hung request ever reaches it.
    worker_timeout: float = 300.0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"port must be between 0 and 65535. Got {self.port} instead.")
        if self.workers is not None and self.workers < 1:
            raise SettingsError(f"workers must be at least 1. Got {self.workers} instead.")
        for name in ("threads", "max_features", "max_cells", "max_prediction_rows", "max_statistics_terms", "max_formula_length",
                     "max_groups"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1. Got {getattr(self, name)} instead.")
        if not self.max_body_mb > 0:
            raise SettingsError(f"max_body_mb must be positive. Got {self.max_body_mb} instead.")
        if self.log_format not in LOG_FORMATS:
            raise SettingsError(f"log_format must be one of {', '.join(LOG_FORMATS)}. Got {self.log_format!r} instead.")
        if not self.worker_timeout > 0:
            raise SettingsError(f"worker_timeout must be positive. Got {self.worker_timeout} instead.")
        if self.token == "":
            object.__setattr__(self, "token", None)

    @property
    def max_body_bytes(self) -> int:
        """The body limit in bytes (MiB are 2**20 bytes)."""
        return int(self.max_body_mb * MIB)

    @property
    def worker_count(self) -> int:
        """How many server processes the ``fitserve`` command runs: by default one per CPU, at most ``threads``."""
        return self.workers if self.workers is not None else min(available_cpus(), self.threads)

    @property
    def threads_per_worker(self) -> int:
        """Each worker's share of ``threads`` (rounded up: never fewer in all than asked)."""
        return -(-self.threads // self.worker_count)

    @property
    def limits(self) -> Limits:
        """The per-request size limits."""
        return Limits(
            self.max_features, self.max_cells, self.max_prediction_rows, self.max_statistics_terms, self.max_formula_length,
            self.max_groups,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``FITSERVE_*`` variables, then apply ``overrides``."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = environ.get(ENVIRONMENT[f.name])
            if raw is not None and raw.strip() != "":
                values[f.name] = convert(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return replace(cls(), **values)  # type: ignore[arg-type]
        except TypeError as exc:
            raise SettingsError(str(exc)) from None


ENVIRONMENT: dict[str, str] = {
    "host": "FITSERVE_HOST",
    "port": "FITSERVE_PORT",
    "threads": "FITSERVE_THREADS",
    "workers": "FITSERVE_WORKERS",
    "max_body_mb": "FITSERVE_MAX_BODY_MB",
    "token": "FITSERVE_TOKEN",
    "cors_origins": "FITSERVE_CORS_ORIGINS",
    "max_features": "FITSERVE_MAX_FEATURES",
    "max_cells": "FITSERVE_MAX_CELLS",
    "max_prediction_rows": "FITSERVE_MAX_PREDICTION_ROWS",
    "max_statistics_terms": "FITSERVE_MAX_STATISTICS_TERMS",
    "max_formula_length": "FITSERVE_MAX_FORMULA_LENGTH",
    "max_groups": "FITSERVE_MAX_GROUPS",
    "log_format": "FITSERVE_LOG_FORMAT",
    "worker_timeout": "FITSERVE_WORKER_TIMEOUT",
}


def convert(name: str, raw: str) -> object:
    """Turn the text of one setting into its value."""
    try:
        if name in (
            "port", "threads", "workers", "max_features", "max_cells", "max_prediction_rows",
            "max_statistics_terms", "max_formula_length", "max_groups",
        ):  # fmt: skip
            return int(raw.replace("_", ""))
        if name in ("max_body_mb", "worker_timeout"):
            return float(raw)
    except ValueError:
        raise SettingsError(f"{ENVIRONMENT[name]} must be a number. Got {raw!r} instead.") from None
    if name == "cors_origins":
        return tuple(origin.strip() for origin in raw.split(",") if origin.strip())
    if name == "log_format":
        return raw.strip().lower()
    return raw


def metrics_directory(environ: Mapping[str, str] | None = None) -> str | None:
    """The directory of the Prometheus client's multiprocess mode, when the service runs in it.

    ``prometheus_client`` picks its mode from ``PROMETHEUS_MULTIPROC_DIR`` when first imported
    (``service.workers`` sets it for the worker processes); the app reads it here to match.
    """
    environ = os.environ if environ is None else environ
    return environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
