"""The peers fitserve is measured against, deployed as their users deploy them.

Their code is in ``benchmarks/peers/`` (the classic Flask example, and FastAPI with a pydantic
model of the body); they run from a virtual environment of their own,
``.venv`` in this folder, which ``environment()`` makes the first time (pip, from
``benchmarks/peers/requirements.txt``) and remakes when that file changes.

=================================  ==================================================
flask on gunicorn, N sync workers  ``gunicorn -w N flask_app:app`` (N: one per core)
flask on waitress, 1 process       ``waitress-serve flask_app:app`` (4 threads)
fastapi on uvicorn, N workers      ``uvicorn --workers N fastapi_app:app``
fastapi on uvicorn, 1 process      ``uvicorn fastapi_app:app``
=================================  ==================================================
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from servers import HOST

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
VENV = HERE / ".venv"  # git, and the repository checks, skip every .venv
REQUIREMENTS = PEERS / "requirements.txt"


@dataclass(frozen=True)
class Peer:
    """A peer: its name in the report and the command that serves it (``{port}`` filled in)."""

    name: str
    command: tuple[str, ...]


def peers(cpus: int) -> list[Peer]:
    """Every peer, with one worker per core (``cpus``) where its users run several."""
    bin_ = VENV / "bin"
    listen = f"{HOST}:{{port}}"
    uvicorn = (str(bin_ / "uvicorn"), "fastapi_app:app", "--host", HOST, "--port", "{port}")
    return [
        Peer(f"flask on gunicorn, {cpus} sync workers", (str(bin_ / "gunicorn"), "-w", str(cpus), "-b", listen, "flask_app:app")),
        Peer("flask on waitress, 1 process", (str(bin_ / "waitress-serve"), f"--listen={listen}", "flask_app:app")),
        Peer(f"fastapi on uvicorn, {cpus} workers", (*uvicorn, "--workers", str(cpus))),
        Peer("fastapi on uvicorn, 1 process", uvicorn),
    ]


def environment() -> Path:
    """The peers' virtual environment, made (or remade, when the requirements changed) if need be."""
    wanted = REQUIREMENTS.read_text()
    stamp = VENV / "requirements.txt"
    if (VENV / "bin" / "python").exists() and stamp.exists() and stamp.read_text() == wanted:
        return VENV
    print(f"Installing the peers into {VENV} (once) ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run(
        [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True
    )
    stamp.write_text(wanted)
    return VENV


def versions() -> dict[str, str]:
    """The versions of the peers' main packages, for the report."""
    script = (
        "import importlib.metadata as m\n"
        "for name in ('flask', 'gunicorn', 'waitress', 'fastapi', 'pydantic', 'uvicorn', 'scikit-learn', 'numpy'):\n"
        "    print(name, m.version(name))\n"
    )
    output = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split(" ", 1) for line in output.splitlines())
