"""The console's dashboard (``GET /ui/dashboard``): requests, latency percentiles, tokens,
cost, cache hits and what they saved (by tier) over a window, as charts; the same by model,
team or key; and, for the master key, every budget with what its period has used so far."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from stackyard.server.http import Request
from stackyard.server.routing import Reply, Routes
from stackyard.ui import charts, forms

if TYPE_CHECKING:
    from stackyard.ui.pages import Console, Viewer

WINDOWS = {"1h": ("1h", "minute"), "24h": ("24h", "hour"), "7d": ("7d", "day")}
GROUPS = ("model", "team", "key")


class DashboardPage:
    def __init__(self, console: Console) -> None:
        self.console = console

    def register(self, routes: Routes) -> None:
        routes.add("GET", ["/ui/dashboard"], self.console.page(self.dashboard))

    async def dashboard(self, request: Request, key: str, viewer: Viewer) -> Reply:
        call = self.console.call
        window = request.query.get("window", "24h")
        window = window if window in WINDOWS else "24h"
        group = request.query.get("by", "model")
        group = group if group in GROUPS else "model"
        since, bucket = WINDOWS[window]
        _, over_time = await call(key, "GET", "/api/stats", {"since": since, "bucket": bucket})
        _, grouped = await call(key, "GET", "/api/stats", {"since": since, "group_by": group})
        times = forms.rows(over_time)
        groups = forms.rows(grouped)
        names: dict[str, str] = {}
        teams: list[dict[str, Any]] = []
        keys: list[dict[str, Any]] = []
        if viewer.master:
            _, found_teams = await call(key, "GET", "/admin/teams")
            _, found_keys = await call(key, "GET", "/admin/keys")
            teams, keys = forms.rows(found_teams), forms.rows(found_keys)
            names = {t["id"]: t["name"] for t in teams}
            names |= {k["id"]: k.get("name") or k.get("prefix") or k["id"] for k in keys}
        for row in groups:
            row["label"] = names.get(row["group"], row["group"]) if row["group"] else "-"
        return self.console.render(
            "dashboard.html",
            viewer=viewer,
            active="dashboard",
            window=window,
            windows=list(WINDOWS),
            group=group,
            groups=GROUPS,
            figures=_figures(times),
            bars=_bars(groups, group),
            totals=_totals(times),
            rows=groups,
            budgets=await self._budgets(key, teams, keys) if viewer.master else [],
        )

    async def _budgets(
        self, key: str, teams: list[dict[str, Any]], keys: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Each team's and key's budget, with the spend of its current period."""
        spent: dict[tuple[str, str], dict[str, float]] = {}
        found = []
        for kind, owners in (("team", teams), ("key", keys)):
            for owner in owners:
                if owner.get("budget_usd") is None:
                    continue
                period = owner.get("budget_period") or "month"
                if (kind, period) not in spent:
                    _, answer = await self.console.call(
                        key, "GET", "/admin/spend", {"by": kind, "since": _period_start(period)}
                    )
                    spent[(kind, period)] = {
                        str(r.get(kind)): float(r["cost_usd"]) for r in forms.rows(answer)
                    }
                # Spend is reported by team name, and by key id.
                used = spent[(kind, period)].get(owner["name"] if kind == "team" else owner["id"])
                budget = float(owner["budget_usd"])
                found.append(
                    {
                        "kind": kind,
                        "name": owner.get("name") or owner.get("prefix") or owner["id"],
                        "budget": budget,
                        "period": period,
                        "used": used or 0.0,
                        "share": (used or 0.0) / budget if budget else 1.0,
                        "soft": bool(owner.get("budget_soft")),
                    }
                )
        return sorted(found, key=lambda b: -b["share"])


def _period_start(period: str) -> str:
    today = dt.datetime.now(dt.UTC).date()
    if period == "day":
        return today.isoformat()
    if period == "month":
        return today.replace(day=1).isoformat()
    return "2000-01-01"


def _figures(times: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    def line(title: str, fields: list[tuple[str, str]], unit: str = "") -> tuple[str, Any]:
        series = [
            charts.Series(name, [(_label(r["bucket"]), float(r[f] or 0)) for r in times])
            for f, name in fields
        ]
        return title, charts.line_chart(title, series, unit)

    return [
        line("Requests", [("requests", "requests"), ("errors", "errors")]),
        line(
            "Latency (ms)",
            [("latency_p50_ms", "p50"), ("latency_p90_ms", "p90"), ("latency_p99_ms", "p99")],
            " ms",
        ),
        line("Tokens", [("input_tokens", "input"), ("output_tokens", "output")]),
        line("Cost", [("cost_usd", "cost")], "$"),
        line("Cache hits", [("exact_hits", "exact"), ("semantic_hits", "semantic")]),
        line(
            "Saved by the cache",
            [("exact_saved_usd", "exact"), ("semantic_saved_usd", "semantic")],
            "$",
        ),
        line("Tokens saved by the cache", [("saved_tokens", "tokens")]),
    ]


def _bars(groups: list[dict[str, Any]], group: str) -> list[tuple[str, Any]]:
    requests = [(r["label"], float(r["requests"])) for r in groups]
    costs = [(r["label"], float(r["cost_usd"])) for r in groups]
    saved = [(r["label"], float(r["saved_usd"])) for r in groups]
    return [
        (f"Requests by {group}", charts.bar_chart(f"Requests by {group}", requests)),
        (f"Cost by {group}", charts.bar_chart(f"Cost by {group}", costs, "$")),
        (f"Saved by the cache, by {group}", charts.bar_chart(f"Saved by {group}", saved, "$")),
    ]


def _totals(times: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "requests": sum(r["requests"] for r in times),
        "errors": sum(r["errors"] for r in times),
        "tokens": sum(r["input_tokens"] + r["output_tokens"] for r in times),
        "cost_usd": sum(r["cost_usd"] for r in times),
        "cache_hits": sum(r["cache_hits"] for r in times),
        "saved_usd": sum(r["saved_usd"] for r in times),
        "saved_tokens": sum(r["saved_tokens"] for r in times),
    }


def _label(bucket: Any) -> str:
    text = str(bucket or "")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return text
    return moment.strftime("%m-%d %H:%M")
