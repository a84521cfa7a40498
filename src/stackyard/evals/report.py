"""Reports of a run: Markdown for a pull request, HTML with a chart of score distributions."""

from __future__ import annotations

import html
from collections.abc import Sequence

from stackyard.evals.gate import Check
from stackyard.evals.runner import Run

BINS = 10


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _verdict(check: Check) -> str:
    if check.failed_threshold:
        return "FAIL (below threshold)"
    if check.failed_drop:
        return "FAIL (significant drop)"
    return "pass"


def summary_rows(run: Run, checks: Sequence[Check]) -> list[list[str]]:
    rows = []
    for c in checks:
        delta = "-" if c.delta is None else f"{c.delta:+.3f}"
        p = "-" if c.p_value is None else f"{c.p_value:.3f}"
        rows.append(
            [c.scorer, _pct(c.mean), _pct(c.threshold), _pct(c.baseline), delta, p, _verdict(c)]
        )
    return rows


HEADERS = ["scorer", "mean", "threshold", "baseline", "delta", "p (drop)", "verdict"]


def _totals(run: Run) -> str:
    errors = sum(r.error is not None for r in run.results)
    cost = sum(r.cost_usd for r in run.results)
    tokens = sum(r.input_tokens + r.output_tokens for r in run.results)
    latencies = sorted(r.latency_ms for r in run.results if r.error is None)
    p50 = latencies[len(latencies) // 2] if latencies else 0.0
    return (
        f"{len(run.results)} items in {run.seconds:.1f} s, {errors} errors, {tokens} tokens, "
        f"${cost:.6f}, p50 latency {p50:.0f} ms"
    )


def markdown(run: Run, checks: Sequence[Check], baseline: Run | None) -> str:
    lines = [f"# Evaluation: {run.name}", "", f"Candidate: `{run.target}`: {_totals(run)}"]
    if baseline is not None:
        lines.append(f"Baseline: `{baseline.target}`: {_totals(baseline)}")
    lines += ["", "| " + " | ".join(HEADERS) + " |", "|" + " --- |" * len(HEADERS)]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(run, checks)]
    passed = all(c.passed for c in checks)
    lines += ["", f"**{'PASSED' if passed else 'FAILED'}**", ""]
    if baseline is not None and checks:
        lines += ["## Items that changed most", ""]
        first = checks[0].scorer
        ours, theirs = run.scores(first), baseline.scores(first)
        moved = sorted((i for i in ours if i in theirs), key=lambda i: ours[i] - theirs[i])[:10]
        lines += [f"| item | {first} baseline | {first} candidate |", "| --- | --- | --- |"]
        lines += [
            f"| {i} | {theirs[i]:.3f} | {ours[i]:.3f} |" for i in moved if ours[i] != theirs[i]
        ]
    failures = [r for r in run.results if r.error]
    if failures:
        lines += ["", "## Errors", ""]
        lines += [f"- {r.item_id}: {r.error}" for r in failures[:20]]
    return "\n".join(lines) + "\n"


def _histogram(values: list[float]) -> list[int]:
    counts = [0] * BINS
    for value in values:
        counts[min(BINS - 1, max(0, int(value * BINS)))] += 1
    return counts


def _svg(scorer: str, run: Run, baseline: Run | None) -> str:
    """Side-by-side bars: the share of items per score bin, candidate and baseline."""
    width, height, pad = 420, 160, 24
    series = [("candidate", "#2b6cb0", list(run.scores(scorer).values()))]
    if baseline is not None:
        series.append(("baseline", "#a0aec0", list(baseline.scores(scorer).values())))
    bar = (width - 2 * pad) / BINS / len(series)
    parts = [
        f'<svg role="img" aria-label="Distribution of {html.escape(scorer)} scores" '
        f'width="{width}" height="{height + 30}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for index, (label, colour, values) in enumerate(series):
        counts = _histogram(values)
        top = max(1, len(values))
        for b, count in enumerate(counts):
            h = (height - pad) * count / top
            x = pad + b * bar * len(series) + index * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{bar - 1:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{label}: {count} items in '
                f"[{b / BINS:.1f}, {(b + 1) / BINS:.1f})</title></rect>"
            )
        parts.append(
            f'<text x="{pad + index * 110}" y="{height + 24}" font-size="12" fill="{colour}">'
            f"■ {label}</text>"
        )
    parts.append(f'<text x="{pad}" y="{height + 12}" font-size="10">0</text>')
    parts.append(f'<text x="{width - pad}" y="{height + 12}" font-size="10">1</text>')
    parts.append("</svg>")
    return "".join(parts)


def html_report(run: Run, checks: Sequence[Check], baseline: Run | None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in summary_rows(run, checks)
    )
    charts = "".join(
        f"<figure><figcaption>{html.escape(c.scorer)}</figcaption>"
        f"{_svg(c.scorer, run, baseline)}</figure>"
        for c in checks
    )
    passed = all(c.passed for c in checks)
    base = ""
    if baseline is not None:
        described = f"<code>{html.escape(baseline.target)}</code>: {html.escape(_totals(baseline))}"
        base = f"<p>Baseline: {described}</p>"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Evaluation: {html.escape(run.name)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem}"
        "figure{display:inline-block;margin:1rem}</style></head><body>"
        f"<h1>Evaluation: {html.escape(run.name)}</h1>"
        f"<p>Candidate: <code>{html.escape(run.target)}</code>: {html.escape(_totals(run))}</p>"
        f"{base}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"<p><strong>{'PASSED' if passed else 'FAILED'}</strong></p>{charts}</body></html>"
    )
