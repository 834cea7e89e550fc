"""Request throttling: ARM's token buckets and the Key Vault data plane's per-vault limits.

ARM (Microsoft Learn, "Understand how Azure Resource Manager throttles requests",
https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling, "Regional
throttling and token bucket algorithm": the model every subscription has been migrated to since 2024): a token
bucket per subscription, per principal and per operation type (reads 250 tokens refilled 25/s, writes 200 refilled
10/s, deletes 200 refilled 10/s), plus a *global* bucket per subscription and operation type shared by all
principals, 15 times the principal's. Requests without a subscription
(`GET /subscriptions`, `/providers/...`) use the tenant's per-principal buckets of the same sizes. Over budget ARM
answers 429 `SubscriptionRequestsThrottled` with `Retry-After` (seconds); every answer carries what remains in the
headers `x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}` and `...-subscription-global-{...}` (real
answers show e.g. reads 249 / global-reads 3749). A throttled request takes no token.

Key Vault (learn.microsoft.com, "Azure Key Vault service limits" and "throttling guidance"): per vault and region,
transactions per 10 seconds weighted by key type and summed (what a request costs is the Key Vault provider's
`vault_cost`, sandbox/providers/keyvault_limits.py, registered with its data plane). A subscription's vaults
together get 5 times one vault's limit. Here a bucket of `kv_budget` (4000) units is refilled over
`kv_window_seconds` (10). Over budget: 429 `Throttled`, "Request was not processed because too many requests were
received. Reason: VaultRequestTypeLimitReached", without Retry-After (as observed from the real service; the SDKs
back off exponentially).

Bucket time is the monotonic clock plus the sandbox clock's offset, so `POST /_sandbox/clock` refills buckets too.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sandbox import arm

if TYPE_CHECKING:
    from sandbox.state import State


@dataclass(eq=False)
class Bucket:
    """A token bucket refilled continuously: `capacity` tokens at most, `refill` tokens per second."""

    capacity: float
    refill: float
    tokens: float
    stamp: float

    def level(self, now: float, capacity: float, refill: float) -> float:
        if capacity != self.capacity or refill != self.refill:  # the settings changed: start full
            self.capacity, self.refill, self.tokens = capacity, refill, capacity
        elif now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.refill)
        self.stamp = now
        return self.tokens

    def wait(self, cost: float = 1.0) -> float:
        """Seconds until `cost` tokens are there."""
        missing = cost - self.tokens
        return missing / self.refill if missing > 0 and self.refill > 0 else 0.0


class Throttler:
    """All buckets of one sandbox, keyed by (scope, principal or '*', operation type)."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.buckets: dict[tuple[str, str, str], Bucket] = {}

    def clear(self) -> None:
        self.buckets.clear()

    def now(self) -> float:
        return time.monotonic() + self.state.clock.offset.total_seconds()

    def _bucket(self, key: tuple[str, str, str], capacity: float, refill: float, now: float) -> Bucket:
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Bucket(capacity, refill, capacity, now)
        bucket.level(now, capacity, refill)
        return bucket

    # -- ARM ---------------------------------------------------------------------------------------------------
    def arm(self, principal: Any, method: str, subscription: str | None) -> dict[str, str]:
        """Take one token for this request; the ratelimit headers, or ArmError 429 when over budget."""
        s = self.state.settings
        if method in ("GET", "HEAD"):
            kind, op, capacity, refill = "reads", "read", s.read_budget, s.read_refill
        elif method == "DELETE":
            kind, op, capacity, refill = "deletes", "delete", s.delete_budget, s.delete_refill
        else:  # PUT, PATCH and POST (actions such as listKeys are writes to ARM)
            kind, op, capacity, refill = "writes", "write", s.write_budget, s.write_refill
        now = self.now()
        oid = principal.object_id
        scope = f"subscription:{subscription.lower()}" if subscription else "tenant"
        mine = self._bucket((scope, oid, kind), capacity, refill, now)
        over = [mine] if mine.tokens < 1 else []
        shared = None
        if subscription:
            factor = s.global_factor
            shared = self._bucket((scope, "*", kind), capacity * factor, refill * factor, now)
            if shared.tokens < 1:
                over.append(shared)
        if not over or not s.throttle:
            for bucket in (mine, shared):
                if bucket is not None and bucket.tokens >= 1:
                    bucket.tokens -= 1
        where = "subscription" if subscription else "tenant"
        headers = {f"x-ms-ratelimit-remaining-{where}-{kind}": str(int(mine.tokens))}
        if shared is not None:
            headers[f"x-ms-ratelimit-remaining-subscription-global-{kind}"] = str(int(shared.tokens))
        if over and s.throttle:
            wait = max(b.wait() for b in over)
            retry_after = s.retry_after if s.retry_after is not None else max(1, math.ceil(wait))
            headers["Retry-After"] = str(retry_after)
            actor = "" if mine not in over else f" actor '{oid}'"  # the global bucket is everyone's
            target = f"subscription '{subscription}'" if subscription else f"tenant '{self.state.tenant_id}'"
            raise arm.ArmError(
                429,
                "SubscriptionRequestsThrottled" if subscription else "TenantRequestsThrottled",
                f"Number of '{op}' requests for {target}{actor} exceeded. Please try again after '{retry_after}' "
                "seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling for additional "
                "information.",
                headers,
            )
        return headers

    # -- Key Vault data plane ------------------------------------------------------------------------------------
    def vault(self, vault: dict[str, Any], cost: float) -> None:
        """Take `cost` units from the vault's bucket and its subscription's; ArmError 429 `Throttled` if over."""
        s = self.state.settings
        if cost <= 0:
            return
        now = self.now()
        refill = s.kv_budget / s.kv_window_seconds
        vault_id = vault["id"].lower()
        subscription = vault_id.split("/")[2]
        factor = s.kv_subscription_factor
        one = self._bucket((f"vault:{vault_id}", "*", "kv"), s.kv_budget, refill, now)
        every = self._bucket((f"kv-subscription:{subscription}", "*", "kv"), s.kv_budget * factor, refill * factor, now)
        if one.tokens >= cost and every.tokens >= cost:
            one.tokens -= cost
            every.tokens -= cost
            return
        if not s.throttle:
            return
        reason = "VaultRequestTypeLimitReached" if one.tokens < cost else "SubscriptionRequestTypeLimitReached"
        raise arm.ArmError(
            429,
            "Throttled",
            f"Request was not processed because too many requests were received. Reason: {reason}",
        )
