"""The command line: flags and environment into settings, without opening a socket."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from service import cli
from service.settings import Settings, SettingsError


def run(argv: list[str], environ: dict[str, str] | None = None) -> tuple[int, Settings | None]:
    seen: list[Settings] = []
    status = cli.main(argv, serve=seen.append, environ=environ or {})
    return status, seen[0] if seen else None


def test_defaults_are_the_contracts() -> None:
    status, settings = run([])
    assert status == 0 and settings is not None
    assert (settings.host, settings.port, settings.threads) == ("127.0.0.1", 8000, 4)
    assert settings.max_body_bytes == 100 * 2**20
    assert settings.token is None and settings.cors_origins == ()


def test_environment_sets_every_setting() -> None:
    environ = {
        "FITSERVE_HOST": "0.0.0.0",
        "FITSERVE_PORT": "9001",
        "FITSERVE_THREADS": "8",
        "FITSERVE_WORKERS": "3",
        "FITSERVE_MAX_BODY_MB": "2.5",
        "FITSERVE_TOKEN": "s3cret",
        "FITSERVE_CORS_ORIGINS": "https://a.example, https://b.example",
        "FITSERVE_MAX_FEATURES": "10",
        "FITSERVE_MAX_CELLS": "1000",
        "FITSERVE_MAX_PREDICTION_ROWS": "50",
        "FITSERVE_MAX_STATISTICS_TERMS": "77",
        "FITSERVE_LOG_FORMAT": "json",
        "FITSERVE_WORKER_TIMEOUT": "45",
    }
    _, settings = run([], environ)
    assert settings == Settings(
        host="0.0.0.0", port=9001, threads=8, workers=3, max_body_mb=2.5, token="s3cret",
        cors_origins=("https://a.example", "https://b.example"),
        max_features=10, max_cells=1000, max_prediction_rows=50, max_statistics_terms=77,
        log_format="json", worker_timeout=45.0,
    )  # fmt: skip
    assert settings.max_body_bytes == int(2.5 * 2**20)


def test_flags_win_over_the_environment() -> None:
    argv = ["--port", "9100", "--token", "flag", "--cors-origin", "https://x.example", "--cors-origin", "https://y.example"]
    _, settings = run(argv, {"FITSERVE_PORT": "9001", "FITSERVE_TOKEN": "env"})
    assert settings is not None
    assert (settings.port, settings.token) == (9100, "flag")
    assert settings.cors_origins == ("https://x.example", "https://y.example")


@pytest.mark.parametrize(
    "argv, environ",
    [
        pytest.param([], {"FITSERVE_PORT": "eighty"}, id="port-not-a-number"),
        pytest.param(["--port", "70000"], {}, id="port-out-of-range"),
        pytest.param(["--threads", "0"], {}, id="no-threads"),
        pytest.param(["--workers", "0"], {}, id="no-workers"),
        pytest.param([], {"FITSERVE_MAX_BODY_MB": "-1"}, id="negative-body-limit"),
    ],
)
def test_bad_settings_exit_2_without_serving(argv: list[str], environ: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    status, settings = run(argv, environ)
    assert status == 2 and settings is None
    assert "fitserve:" in capsys.readouterr().err


def test_settings_reject_bad_values_directly() -> None:
    with pytest.raises(SettingsError):
        Settings(max_cells=0)


def test_python_dash_m_service_answers_help() -> None:
    done = subprocess.run([sys.executable, "-m", "service", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for flag in ("--host", "--port", "--threads", "--max-body-mb", "--token", "--cors-origin"):
        assert flag in done.stdout


def test_importing_the_package_loads_nothing_heavy() -> None:
    code = "import sys, service; print(any(m in sys.modules for m in ('sklearn', 'falcon', 'waitress', 'scipy')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False"


def test_token_never_shows_in_the_settings_repr() -> None:
    assert "s3cret" not in repr(Settings(token="s3cret"))


MEMORY_AFTER_A_LARGE_REQUEST = """
import sys
from service import cli
if sys.argv[1] == "tuned":
    cli.tune_malloc()
import numpy as np

def resident():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

np.ones(30 * 2**20 // 8).sum()  # a large block, mapped and freed: glibc's default raises its thresholds
before = resident()
block = np.ones(20 * 2**20 // 8)  # then a block from the heap, used and freed
del block
print(resident() - before)
"""


def memory_kept(mode: str) -> int:
    """Bytes still resident after the script above frees its heap block, in this malloc mode."""
    command = [sys.executable, "-c", MEMORY_AFTER_A_LARGE_REQUEST, mode]
    return int(subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc and /proc are Linux's")
def test_tuned_malloc_gives_freed_memory_back() -> None:
    assert memory_kept("default") >= 16 * 2**20  # what the tuning is for: glibc keeps the freed block
    assert memory_kept("tuned") <= 2**20


MEMORY_AFTER_A_MEDIUM_REQUEST = """
import sys
from service import cli
cli.tune_malloc()
import numpy as np

def resident():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

before = resident()
block = np.ones(4 * 2**20 // 8)  # a medium request's array, from the heap, used and freed
del block
print(resident() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc and /proc are Linux's")
def test_tuned_malloc_keeps_a_medium_request_s_memory_for_the_next() -> None:
    command = [sys.executable, "-c", MEMORY_AFTER_A_MEDIUM_REQUEST]
    kept = int(subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout)
    assert kept >= 3 * 2**20  # glibc's 128 KiB trim threshold would give it back, to fault it in again


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_one_line_and_exit_1(workers: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "service", "--port", str(port), "--workers", workers]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"fitserve: cannot listen on 127.0.0.1 port {port}: Address already in use." in done.stderr
    assert "Traceback" not in done.stderr
