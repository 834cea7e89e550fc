"""How remediations/azure/ paces ARM requests and reads long-running answers: the pipeline policy that spends a copy of
ARM's read or write bucket before each request (remediations/pacing.py), CRYPTWARD_WRITE_CONCURRENCY, an LRO answer's
Retry-After, and whether a resource's body holds what a write sent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from remediations import pacing
from remediations.errors import SettingsError


def write_concurrency(env: Mapping[str, str]) -> int:
    """CRYPTWARD_WRITE_CONCURRENCY: how many independent changes the applier writes at once (default 8)."""
    raw = (env.get("CRYPTWARD_WRITE_CONCURRENCY") or "").strip()
    if raw and not (raw.isdigit() and int(raw) >= 1):
        raise SettingsError(f"CRYPTWARD_WRITE_CONCURRENCY must be a whole number of at least 1, not {raw!r}")
    return int(raw) if raw else pacing.DEFAULT_WRITE_WORKERS


def pacer_class(reads: pacing.ReadBudget, writes: pacing.ReadBudget, host: str) -> Any:
    from azure.core.pipeline.policies import HTTPPolicy

    paced = {"GET": (reads, pacing.REMAINING_READS), "HEAD": (reads, pacing.REMAINING_READS)}
    paced.update(dict.fromkeys(("PUT", "PATCH", "POST"), (writes, pacing.REMAINING_WRITES)))
    host = host.lower()

    class Pacer(HTTPPolicy):
        def send(self, request: Any) -> Any:
            http = request.http_request
            url = urlsplit(http.url)
            bucket = paced.get(http.method.upper())
            if bucket is None or url.netloc.lower() != host:
                return self.next.send(request)
            budget, names = bucket
            scope = pacing.scope_of(url.path)
            budget.take(scope)
            remaining = None
            try:
                response = self.next.send(request)
                headers = response.http_response.headers
                remaining = next((headers[h] for h in names if h in headers), None)
            finally:
                budget.done(scope, remaining)
            return response

    return Pacer


def holds(actual: Any, sent: Any) -> bool:
    """Whether a resource's body holds what a write sent: every key sent, recursively; each list item sent somewhere in
    the list; strings without case (ARM ids and enum values)."""
    if isinstance(sent, Mapping):
        return isinstance(actual, Mapping) and all(
            holds(next((v for k, v in actual.items() if k.lower() == key.lower()), None), value)
            for key, value in sent.items()
        )
    if isinstance(sent, list):
        return isinstance(actual, list) and all(any(holds(a, s) for a in actual) for s in sent)
    if isinstance(sent, str) and isinstance(actual, str):
        return actual.lower() == sent.lower()
    return bool(actual == sent)


def retry_after(headers: Mapping[str, str], default: float) -> float:
    """Seconds an LRO answer asks to wait before polling (`retry-after-ms`, `x-ms-retry-after-ms`, `Retry-After` in
    seconds, as azure-core's `get_retry_after` reads them); `default` when none says more than 0 (azure-core's
    LROBasePolling likewise treats 0 as absent)."""
    for name, scale in (("retry-after-ms", 1000.0), ("x-ms-retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            value = float(headers.get(name) or 0) / scale
        except ValueError:
            continue
        if value > 0:
            return value
    return default


__all__ = ["holds", "pacer_class", "retry_after", "write_concurrency"]
