"""The ``make bench`` table from its JSON result. Pure: a result dict in, text out."""

from __future__ import annotations

from typing import Any

TARGETS: dict[str, float] = {
    "worker_ratio": 0.25,
    "worker_ratio_stretch": 0.50,
    "rss_mb_at_1000_cohorts": 500,
    "cpu_growth_across_cohorts": 1.25,
}
"""The issue's targets; "flat" CPU per event is read as at most 25% apart (run-to-run noise
on a shared 2-core machine is about that)."""


def _n(value: Any, digits: int = 0) -> str:
    """A number with thousands separators, ``-`` when missing."""
    if value is None:
        return "-"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return str(value)


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else "met" if ok else "NOT met"


def _checker(tier: dict[str, Any]) -> str:
    """A note of the CPU the worker's drift checker process took, when it ran."""
    cpu = tier.get("children_cpu_s")
    return f"; the drift checker process took {cpu:.1f} CPU s of it" if cpu else ""


def _late(tier: dict[str, Any]) -> str:
    """A note of the events and partials left out of closed windows, when there were any."""
    late = {k: tier.get(k) for k in ("late_events", "late_partials")}
    if not any(late.values()):
        return ""
    return "; LATE: " + ", ".join(f"{_n(v)} {k.replace('_', ' ')}" for k, v in late.items())


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(item, figure, target, verdict) for every measurement present in ``result``."""
    out: list[tuple[str, str, str, str]] = []
    t = result.get("throughput")
    if t:
        out += [
            (
                "publisher (EventPublisher, 100-event batches)",
                f"{_n(t['publisher_events_per_s'])} ev/s",
                "",
                "",
            ),
            ("(a) raw aiokafka consume + JSON parse", f"{_n(t['raw_events_per_s'])} ev/s", "", ""),
            ("(b) driftnet worker, everything on", f"{_n(t['worker_events_per_s'])} ev/s", "", ""),
        ]
        ratio = t["worker_ratio_to_raw"]
        target = TARGETS["worker_ratio"]
        stretch = TARGETS["worker_ratio_stretch"]
        out.append(
            (
                "(c) b / a",
                f"{ratio:.3f}",
                f">= {target:.2f} (stretch {stretch:.2f})",
                _verdict(ratio >= target) + (" (stretch met)" if ratio >= stretch else ""),
            )
        )
        out.append(
            ("    worker CPU per 1,000 events", f"{t['worker_cpu_s_per_1000']:.3f} s", "", "")
        )
        if t.get("cpu_s_per_1000_all") is not None:  # run with --throughput-drain
            out.append(
                (
                    "    worker CPU per 1,000 events incl. judging all windows",
                    f"{t['cpu_s_per_1000_all']:.3f} s",
                    "",
                    f"{_n(t.get('windows_judged'))} windows judged, "
                    f"done {_n(t.get('tail_s'), 1)} s after the last event" + _late(t),
                )
            )
    d = result.get("detection_latency")
    if d:
        bound = d["bound_s"]
        found = d.get("to_finding_s")
        out.append(
            (
                f"(d) first regressed event -> finding ({d['window_s']} s windows, "
                f"{d['allowed_lateness_s']:g} s lateness, {_n(d['rate_events_per_s'])} ev/s)",
                f"{_n(found, 1)} s",
                f"<= {bound:g} s",
                _verdict(None if found is None else found <= bound),
            )
        )
        out.append(("    -> failing canary verdict", f"{_n(d.get('to_verdict_s'), 1)} s", "", ""))
        out.append(("    -> alert on the alerts topic", f"{_n(d.get('to_alert_s'), 1)} s", "", ""))
        out.append(
            ("    (earliest the window can close)", f"{_n(d.get('window_close_s'), 1)} s", "", "")
        )
    s = result.get("sink")
    if s:
        out.append(
            (
                f"(e) Parquet sink ({_n(s['records'])} records of {_n(s['record_bytes'])} B)",
                f"{_n(s['sink_rows_per_s'])} rows/s",
                "",
                f"b/a {s['sink_ratio_to_raw']:.3f} vs raw {_n(s['raw_consume_parse_per_s'])}/s",
            )
        )
    for tier in result.get("queries", ()):
        for name, q in tier["queries"].items():
            out.append(
                (
                    f"(f) {_n(tier['rows'])} rows: {name}",
                    f"{q['seconds']:.2f} s",
                    "",
                    f"{_n(q['result_rows'])} rows out",
                )
            )
    for c in result.get("cohorts", ()):
        rss = c["peak_rss_mb"]
        limit = TARGETS["rss_mb_at_1000_cohorts"] if c["cohorts"] == 1000 else None
        out.append(
            (
                f"(g) {_n(c['cohorts'])} cohorts: worker peak RSS",
                f"{_n(rss)} MB",
                "" if limit is None else f"<= {limit:g} MB",
                "" if limit is None else _verdict(rss <= limit),
            )
        )
        out.append(
            (
                f"    {_n(c['cohorts'])} cohorts: CPU per 1,000 events, rate",
                f"{c['cpu_s_per_1000']:.3f} s",
                "",
                f"{_n(c['events_per_s'])} ev/s",
            )
        )
        if c.get("cpu_s_per_1000_all") is not None:
            out.append(
                (
                    f"    {_n(c['cohorts'])} cohorts: CPU per 1,000 events incl. judging all "
                    "windows",
                    f"{c['cpu_s_per_1000_all']:.3f} s",
                    "",
                    f"{_n(c.get('windows_judged'))} windows judged "
                    f"({_n(c.get('windows_with_events'))} with events), "
                    f"done {_n(c.get('tail_s'), 1)} s after the last event"
                    + _checker(c)
                    + _late(c),
                )
            )
            out.append(
                (
                    f"    {_n(c['cohorts'])} cohorts: CPU per window closed after the last event",
                    f"{_n(c.get('tail_cpu_us_per_window'))} µs",
                    "",
                    f"{_n(c.get('tail_windows'))} windows; "
                    f"{_n(c.get('judge_wall_us_per_window'))} µs wall in the merge close per "
                    "window, whole run",
                )
            )
            out.append(
                (
                    f"    {_n(c['cohorts'])} cohorts: worker peak RSS incl. judging all windows",
                    f"{_n(c.get('peak_rss_mb_all'))} MB",
                    "",
                    "",
                )
            )
    limit = TARGETS["cpu_growth_across_cohorts"]
    for key, label in (
        ("cpu_s_per_1000", "    CPU per event, most / fewest cohorts"),
        ("cpu_s_per_1000_all", "    CPU per event incl. judging, most / fewest cohorts"),
    ):
        tiers = [c[key] for c in result.get("cohorts", ()) if c.get(key)]
        if len(tiers) > 1:
            growth = max(tiers) / min(tiers)
            out.append(
                (label, f"{growth:.2f}x", f"flat (<= {limit:g}x)", _verdict(growth <= limit))
            )
    w = result.get("two_workers")
    if w:
        out.append(
            (
                "(h) two workers, one group",
                f"{_n(w['events_per_s'])} ev/s",
                "",
                f"{w['ratio_to_one']:.2f}x one worker",
            )
        )
        out.append(("    CPU per 1,000 events (both)", f"{w['cpu_s_per_1000']:.3f} s", "", ""))
    return out


def render(result: dict[str, Any]) -> str:
    """The table ``make bench`` prints (and docs/benchmarks.md carries), as Markdown."""
    head = ("measurement", "figure", "target", "verdict / note")
    body = rows(result)
    lines = [
        f"driftnet bench: {result.get('machine', '?')}; {result.get('broker', '?')}; "
        f"{result.get('commit', '?')}; {result.get('seconds', 0):.0f} s",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)
