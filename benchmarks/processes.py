"""The processes of a running server, read from ``/proc`` (Linux): its own and its workers'."""

from __future__ import annotations

from pathlib import Path


def server_processes(pid: int) -> list[int]:
    """A server's process and its worker processes (its children), by id."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
        if parent == pid:
            children.append(int(entry.name))
    return [pid, *sorted(children)]


def status_figure(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` figure (``VmRSS``, ``VmHWM``, ``VmSize``), in bytes; 0 if the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0
