"""How remediations/azure/ paces and retries ARM requests and reads long-running answers: the pipeline policy that
spends a copy of ARM's read or write bucket before each request (remediations/pacing.py), the retries of throttled
writes, CRYPTWARD_WRITE_CONCURRENCY, an LRO answer's Retry-After, and whether a resource's body holds what a write
sent."""

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


INVENTORY_MODES = ("auto", "resourcegraph", "arm")


def client_options(env: Mapping[str, str]) -> dict[str, Any]:
    """What the settings say of how the bot reads and writes, as `Azure`'s fields: CRYPTWARD_READ_CONCURRENCY
    (`workers`), CRYPTWARD_WRITE_CONCURRENCY (`write_workers`), CRYPTWARD_INVENTORY and
    CRYPTWARD_INVENTORY_THRESHOLD. One reading for the CLI (`Azure.from_env`) and the function app's runtime."""
    raw = (env.get("CRYPTWARD_READ_CONCURRENCY") or "").strip()
    if raw and not (raw.isdigit() and int(raw) >= 1):
        raise SettingsError(f"CRYPTWARD_READ_CONCURRENCY must be a whole number of at least 1, not {raw!r}")
    workers = int(raw) if raw else pacing.DEFAULT_WORKERS
    inventory = (env.get("CRYPTWARD_INVENTORY") or "auto").strip().lower()
    if inventory not in INVENTORY_MODES:
        raise SettingsError(f"CRYPTWARD_INVENTORY must be one of {', '.join(INVENTORY_MODES)}, not {inventory!r}")
    threshold = (env.get("CRYPTWARD_INVENTORY_THRESHOLD") or "").strip()
    if threshold and not threshold.isdigit():
        raise SettingsError(f"CRYPTWARD_INVENTORY_THRESHOLD must be a whole number, not {threshold!r}")
    return {
        "workers": workers,
        "write_workers": write_concurrency(env),
        "inventory": inventory,
        "inventory_threshold": int(threshold) if threshold else 10,
    }


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


# Throttled writes: a bounded budget of retries and seconds waited for one request (a function runs 5 minutes at most).
WRITE_RETRIES, WRITE_RETRY_WAIT = 6, 60.0


def write_retries(total: int = WRITE_RETRIES, max_wait: float = WRITE_RETRY_WAIT) -> Any:
    """azure-core's RetryPolicy, and a throttled PUT, PATCH or POST retried too.

    azure-core 1.41 (`RetryPolicyBase.is_retry`) retries any method whose error answer carries `Retry-After`, but
    without one it retries POST and PATCH only on 500, 503 and 504 (and neither after a connection reset), so a 429
    without `Retry-After` (a resource
    provider's own throttling, Key Vault's data plane) failed at once. A 429 means the request was not processed
    ("Understand how Azure Resource Manager throttles requests", learn.microsoft.com/azure/azure-resource-manager/
    management/request-limits-and-throttling; Key Vault "throttling guidance"), and the bot's writes are desired-state
    writes, so one is sent again: after `Retry-After` (or `retry-after-ms` / `x-ms-retry-after-ms`, azure-core's
    `get_retry_after`), else exponential backoff. Within a budget: `total` retries and `max_wait` seconds of waiting
    for one request; a 429 asking for longer than what remains is given back at once (the queue retries the work
    item later). ARM's `x-ms-ratelimit-remaining-*` headers count what is left and carry no wait: the pacer reads them
    before a request is sent (`Azure.pacer`), so that a 429 stays rare.
    """
    from azure.core.pipeline.policies import RetryPolicy

    class WriteRetries(RetryPolicy):
        def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
            throttled = response.http_response.status_code == 429 and settings["total"] > 0
            if not (super().is_retry(settings, response) or throttled):
                return False
            wait = self.get_retry_after(response)
            if wait is None:
                wait = min(self.backoff_max, self.backoff_factor * 2 ** len(settings["history"]))
            if settings.setdefault("waited", 0.0) + wait > max_wait:
                return False
            settings["waited"] += wait
            return True

    # PATCH joins azure-core's idempotent methods (HEAD, GET, PUT, DELETE, ...): the bot's PATCHes are desired-state
    # merges, safe to send again after a connection reset too; POST (rotate) is not, and keeps azure-core's rules.
    methods = frozenset({"HEAD", "GET", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
    policy = WriteRetries(retry_total=total, retry_backoff_max=int(max_wait))
    policy._method_whitelist = methods  # what `retry_on_methods` defaults to per request (RetryPolicyBase)
    return policy


__all__ = [
    "WRITE_RETRIES",
    "WRITE_RETRY_WAIT",
    "holds",
    "pacer_class",
    "retry_after",
    "write_concurrency",
    "write_retries",
]
