"""The systemd unit deploy/systemd/fitserve.service: valid for systemd, and consistent with the service."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.server import Timeouts
from service.settings import ENVIRONMENT, Settings

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "fitserve.service"

# README, Performance (as in tests/system/test_deploy_manifests.py)
PARENT_BYTES = 17e6
IDLE_WORKER_BYTES = 165e6
PEAK_PER_BODY = 3.3


def settings_of(unit: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of the unit, values in order (a key may be given more than once)."""
    found: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def environment() -> dict[str, str]:
    """The variables of the unit's Environment= lines."""
    pairs = (item.split("=", 1) for line in settings_of(UNIT.read_text())["Environment"] for item in line.split())
    return dict(pairs)


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is not installed (Debian: systemd)"
    # The unit names the venv of a real install; here, this checkout's command stands in.
    unit = tmp_path / "fitserve.service"
    fitserve = Path(sys.executable).with_name("fitserve")
    unit.write_text(UNIT.read_text().replace("ExecStart=/opt/fitserve/bin/fitserve", f"ExecStart={fitserve}"))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@pytest.mark.parametrize(
    "setting",
    ["DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
     "CapabilityBoundingSet=", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "SystemCallFilter=@system-service"],
)  # fmt: skip
def test_unit_is_hardened(setting: str) -> None:
    key, _, value = setting.partition("=")
    assert value in settings_of(UNIT.read_text()).get(key, []), setting


def test_unit_environment_is_settings_the_service_takes() -> None:
    variables = environment()
    assert {name for name in variables if name.startswith("FITSERVE_")} <= set(ENVIRONMENT.values())
    settings = Settings.from_env(variables)
    assert settings.host == "127.0.0.1", "behind nginx, the service listens on loopback only"


def test_unit_waits_for_the_drain_and_kills_only_what_is_left() -> None:
    unit = settings_of(UNIT.read_text())
    timeouts = Timeouts()
    assert int(unit["TimeoutStopSec"][0]) > timeouts.request + timeouts.drain
    # SIGTERM to the main process alone: it stops its workers itself, gracefully
    assert unit["KillMode"] == ["mixed"] and unit["KillSignal"] == ["SIGTERM"]


def test_unit_memory_limit_covers_every_thread_busy_with_a_body_at_the_limit() -> None:
    (limit,) = settings_of(UNIT.read_text())["MemoryMax"]
    assert limit.endswith("G")
    settings = Settings.from_env(environment())
    workers = 2  # the machines the README's figures come from
    needed = PARENT_BYTES + workers * IDLE_WORKER_BYTES + settings.threads * PEAK_PER_BODY * settings.max_body_bytes
    assert float(limit[:-1]) * 2**30 >= needed
