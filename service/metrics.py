"""The service's Prometheus metrics, in one process or summed over worker processes.

One process (``--workers 1``, ``serve_in_background``): the metrics live in a registry
of their own, one per app. Several worker processes: the Prometheus client's
multiprocess mode. The parent makes a fresh directory and names it in
``PROMETHEUS_MULTIPROC_DIR`` before it forks (``service.workers.MetricsDirectory``);
each worker's values live in memory-mapped files there, and ``/metrics``, whichever
worker answers it, reads and sums all of them. The files hold counts, sums and bucket
counts of numbers the service computed (statuses, durations, sizes), never a value
of a payload. The gauge of requests in progress sums only live workers ("livesum"):
the parent deletes a dead worker's file of it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

#: The content type of ``GET /metrics``: Prometheus' text format, version 0.0.4.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
ROW_BUCKETS = (10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000)
FEATURE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000)


class Metrics:
    """The metrics of one app, and their text exposition.

    With ``directory`` (multiprocess mode) the metric objects write to its files and the
    exposition reads all the files there; without, they live in a registry of this object.
    """

    def __init__(self, directory: str | None = None) -> None:
        self.registry = CollectorRegistry()
        own: CollectorRegistry | None = self.registry
        if directory is not None:
            if values.ValueClass is values.MutexValue:
                # Its mode is chosen when prometheus_client is first imported: too late to change now.
                raise RuntimeError(
                    "prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set; "
                    "its values would not be shared between the worker processes."
                )
            MultiProcessCollector(self.registry, path=directory)  # type: ignore[no-untyped-call]
            own = None  # the collector above reads them from the files
        self.requests = Counter(
            "fitserve_requests", "Requests answered, by endpoint, method and status.",
            ["endpoint", "method", "status"], registry=own,
        )  # fmt: skip
        self.duration = Histogram(
            "fitserve_request_duration_seconds", "Time from a request's arrival in the app to its answer.",
            ["endpoint"], buckets=DURATION_BUCKETS, registry=own,
        )  # fmt: skip
        self.training_rows = Histogram(
            "fitserve_training_rows", "Training rows (n_samples) of each fit.",
            ["endpoint"], buckets=ROW_BUCKETS, registry=own,
        )  # fmt: skip
        self.training_features = Histogram(
            "fitserve_training_features", "Features (n_features) of each fit.",
            ["endpoint"], buckets=FEATURE_BUCKETS, registry=own,
        )  # fmt: skip
        self.in_progress = Gauge(
            "fitserve_requests_in_progress", "Requests being served now, summed over live workers.",
            registry=own, multiprocess_mode="livesum",
        )  # fmt: skip

    def expose(self) -> bytes:
        """The metrics in Prometheus' text format 0.0.4."""
        return bytes(generate_latest(self.registry))

