"""The benchmark's reports as markdown: the table of every server, fitserve's ratios, the repeat runs."""

from __future__ import annotations

from typing import Any

from payloads import PAYLOADS, RELATIVE_TOLERANCE

FITSERVE = "fitserve"
#: The other targets of fitserve: against the best peer, and its large request's peak memory.
PEER_RATE_TARGET = 2.0
PEER_P99_TARGET = 2.0
RSS_TARGET = 3.0


def milliseconds(seconds: float) -> str:
    """Format seconds as milliseconds (or seconds, from 10 s)."""
    return f"{seconds * 1e3:,.1f} ms" if seconds < 10 else f"{seconds:,.2f} s"


def table(report: dict[str, Any]) -> str:
    """The run as markdown: each server's figures (medians of the rounds), then fitserve's ratios."""
    payloads = report["payloads"]
    small, medium, large = (payloads.get(name) for name in ("small", "medium", "large"))
    lines = [
        "| server | small req/s (8 connections) | small p50 | small p99 | small CPU/request | medium | large "
        "| large peak RSS growth |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in report["servers"]:
        cells = [name]
        if small:
            figures = small["servers"][name]
            errors = f" ({figures['errors']} errors)" if figures["errors"] else ""
            cells += [
                f"{figures['rate']['median']:,.0f}{errors}",
                milliseconds(figures["p50"]["median"]),
                milliseconds(figures["p99"]["median"]),
                milliseconds(figures["cpu_per_request"]["median"]),
            ]
        else:
            cells += ["", "", "", ""]
        for entry in (medium, large):
            cells.append(milliseconds(entry["servers"][name]["seconds"]["median"]) if entry else "")
        if large:
            growth = large["rss_growth"][name]["growth"]
            cells.append(f"{growth / 1e6:,.0f} MB ({growth / large['body_bytes']:.2f}x body)")
        else:
            cells.append("")
        lines.append("| " + " | ".join(cells) + " |")
    floor_cells = ["in-process floor"]
    floor_cells += (
        [f"{1 / small['floor_seconds']['median']:,.0f}", "", "", milliseconds(small["floor_seconds"]["median"])]
        if small
        else ["", "", "", ""]
    )
    floor_cells += [milliseconds(e["floor_seconds"]["median"]) if e else "" for e in (medium, large)]
    floor_cells.append(f"body {large['body_bytes'] / 1e6:,.1f} MB" if large else "")
    lines.append("| " + " | ".join(floor_cells) + " |")

    lines += ["", "| fitserve | ratio | target | result |", "| --- | --- | --- | --- |"]
    for target in report["targets"]:
        lines.append(
            f"| {target['what']} | {target['ratio']:.2f} | {target['target']} | {'pass' if target['pass'] else 'FAIL'} |"
        )

    notes = []
    for name, entry in payloads.items():
        worst = max(answer["max_relative"] for answer in entry["answers"].values())
        ok = all(answer["ok"] for answer in entry["answers"].values())
        spread = ""
        if name == "small":
            ours = entry["servers"]["fitserve"]["rate"]
            spread = f"; fitserve {ours['min']:,.0f}-{ours['max']:,.0f} req/s"
        else:
            ours = entry["servers"]["fitserve"]["seconds"]
            spread = f"; fitserve {milliseconds(ours['min'])}-{milliseconds(ours['max'])}"
            cpu = entry["fitserve_cpu_seconds"]
            spread += f" (CPU {milliseconds(cpu['median'])})"
        notes.append(
            f"- {name} ({entry['shape']}, {entry['body_bytes']:,} bytes): {entry['rounds']} interleaved rounds{spread}; "
            f"floor {milliseconds(entry['floor_seconds']['min'])}-{milliseconds(entry['floor_seconds']['max'])}; "
            f"answers of every server vs the floor: max relative difference {worst:.1e} ({'ok' if ok else 'NOT EQUAL'})"
        )
    info = report["machine"]
    notes.append(
        f"- fitserve: {report['servers']['fitserve']['processes']} processes, "
        + (f"flags {report['fitserve_arguments']}" if report["fitserve_arguments"] else "default settings")
    )
    if "peer_versions" in report:
        notes.append("- peers: " + ", ".join(f"{k} {v}" for k, v in report["peer_versions"].items()))
    notes.append(
        f"- load generator: {report['load_generator']}; {info['cpus']} CPUs; Python {info['python']}; "
        f"floor BLAS threads {info['floor_blas_threads']}; load average {info['load_average_at_start']:.2f} "
        f"at start, {info.get('load_average_at_end', float('nan')):.2f} at end"
    )
    return "\n".join([*lines, "", *notes])


def repeat_table(result: dict[str, Any]) -> str:
    """The repeat runs as markdown: each run's req/s, p50 and p99 per server, and the spread."""
    runs = result["runs"]
    count = max((len(r) for r in runs.values()), default=0)
    lines = [
        "| server | " + " | ".join(f"run {i + 1}" for i in range(count)) + " | spread (max/min - 1) |",
        "| --- | " + " | ".join("---" for _ in range(count)) + " | --- |",
    ]
    for name, measured in runs.items():
        cells = [
            f"{r['rate']:,.0f} req/s, p50 {r['p50'] * 1e3:.1f} ms, p99 {r['p99'] * 1e3:.1f} ms" for r in measured
        ]
        rates = [r["rate"] for r in measured]
        spread = max(rates) / min(rates) - 1 if rates and min(rates) > 0 else float("inf")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {spread:.1%} |")
    loads = ", ".join(f"{r['load_average']:.2f}" for r in next(iter(runs.values()), []))
    lines += [
        "",
        f"- {count} runs {result['pause']:g} s apart; load generator {result['load_generator']}; "
        f"load average at each run: {loads}",
    ]
    return "\n".join(lines)


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """fitserve's ratios in this run, each with its target and whether it is met."""
    payloads = report["payloads"]
    found: list[dict[str, Any]] = []

    def add(what: str, ratio: float, target: float, at_least: bool) -> None:
        passed = ratio >= target if at_least else ratio <= target
        found.append({"what": what, "ratio": ratio, "target": f"{'>=' if at_least else '<='} {target:g}", "pass": passed})

    if "small" in payloads:
        small = payloads["small"]
        ours = small["servers"][FITSERVE]
        add("small req/s / floor rate", ours["rate"]["median"] * small["floor_seconds"]["median"], 1.0, True)
        peers = {n: s for n, s in small["servers"].items() if n != FITSERVE}
        if peers:
            best = max(peers.values(), key=lambda s: s["rate"]["median"])
            add("small req/s / best peer's", ours["rate"]["median"] / best["rate"]["median"], PEER_RATE_TARGET, True)
            lowest = min(s["p99"]["median"] for s in peers.values())
            add("small p99 / lowest peer p99", ours["p99"]["median"] / lowest, PEER_P99_TARGET, False)
    for name in ("medium", "large"):
        if name in payloads:
            entry = payloads[name]
            ratio = entry["servers"][FITSERVE]["seconds"]["median"] / entry["floor_seconds"]["median"]
            add(f"{name} latency / floor", ratio, PAYLOADS[name].target, False)
    if "large" in payloads:
        large = payloads["large"]
        add("large peak RSS growth / body", large["rss_growth"][FITSERVE]["growth"] / large["body_bytes"], RSS_TARGET, False)
    for name, entry in payloads.items():
        for server, answer in entry["answers"].items():
            if not answer["ok"]:
                found.append({"what": f"{name} answers of {server}", "ratio": answer["max_relative"],
                              "target": f"<= {RELATIVE_TOLERANCE:g}", "pass": False})  # fmt: skip
    return found
