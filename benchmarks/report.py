"""The benchmark's reports as markdown: the table of every server, fitserve's ratios, the repeat runs."""

from __future__ import annotations

from typing import Any


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
