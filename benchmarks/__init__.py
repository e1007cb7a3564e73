"""Scripts that measure fitserve rather than test it: the benchmark, the soak, accuracy on NIST's sets.

Run them from the repository's top folder (loopback only, each bounded in time)::

    python benchmarks/benchmark.py --help
    python -m benchmarks.soak --seconds 60
    python -m benchmarks.accuracy

pytest does not collect them; ``tests/system/test_reliability.py`` runs the soak for a few
seconds, and ``tests/system/test_accuracy.py`` checks that docs/accuracy.md shows what
``benchmarks.accuracy`` prints. ``benchmarks.processes`` reads a running server's
processes from ``/proc``, for these scripts and for the tests.
"""
