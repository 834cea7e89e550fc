"""Sending a notice to one destination: a Teams Workflows webhook, a signed generic webhook, an Event Grid topic.

    sender = Sender(Destinations(settings.notices.destinations))
    sender.send(notice, "teams:ops")             # a Delivery; never raises

Destinations are app settings: `CRYPTWARD_DEST_<NAME>_URL` (webhook URL or topic endpoint), `_SECRET` (a generic
webhook's HMAC secret), `_KEY` (an Event Grid topic's access key); `<NAME>` is the name in `teams:<name>`
upper-cased, `-` as `_`. In Azure they are Key Vault references, which the Functions host resolves into plain
environment values before the code runs. HTTP goes through azure-core's pipeline (remediations/azure/): its
RetryPolicy retries 408, 429 and 5xx with exponential backoff and honours Retry-After. A Teams webhook takes 4
requests a second: the sender spaces its own requests per destination, so it rarely meets a 429 at all.

Nothing here logs a URL, a key, a secret or an approval link: logs name the destination (`teams:ops`) only.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from remediations import azure
from remediations.errors import AzureAccessError, SettingsError
from remediations.notices import cards, digest, signing
from remediations.notices.compose import DESTINATION_KINDS, EVENT_TYPES, Notice
from remediations.notices.digest import Digest

log = logging.getLogger("cryptward.notices")

TEAMS_PER_SECOND = 4


@dataclass(frozen=True)
class Destination:
    """One place notices go. `secret` signs generic webhooks; `key` authenticates to an Event Grid topic."""

    kind: str
    name: str
    url: str
    secret: str | None = None
    key: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.name}"

    def __repr__(self) -> str:  # never the URL, the secret or the key
        return f"Destination({self.ref!r})"


def setting_prefix(name: str) -> str:
    return "CRYPTWARD_DEST_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


@dataclass(frozen=True)
class Destinations:
    """The configured destinations by ref (`teams:ops`); `of(ref)` reads the settings of one on first use."""

    env: Mapping[str, str] = field(default_factory=dict)  # the CRYPTWARD_DEST_* settings (settings.notices)

    def of(self, ref: str) -> Destination:
        """The destination a route names; SettingsError naming the missing setting (never its value)."""
        kind, _, name = ref.partition(":")
        if kind not in DESTINATION_KINDS or not name:
            raise SettingsError(f"{ref!r} is not 'kind:name'; valid kinds: {', '.join(DESTINATION_KINDS)}")
        prefix = setting_prefix(name)

        def value(suffix: str) -> str | None:
            return (self.env.get(f"{prefix}_{suffix}") or "").strip() or None

        url = value("URL")
        if url is None or not url.lower().startswith("https://"):
            raise SettingsError(f"{prefix}_URL must be set to an https URL for destination {ref}")
        secret, key = value("SECRET"), value("KEY")
        if kind == "webhook" and secret is None:
            raise SettingsError(f"{prefix}_SECRET must be set: generic webhooks are signed (destination {ref})")
        if kind == "eventgrid" and key is None:
            raise SettingsError(f"{prefix}_KEY must be set to the topic's access key (destination {ref})")
        return Destination(kind, name, url, secret, key)


@dataclass(frozen=True)
class Delivery:
    """What sending one notice to one destination did. `status` is the final HTTP status (0: none)."""

    notice_id: str
    destination: str
    ok: bool
    status: int = 0
    detail: str = ""
    bytes: int = 0


class RateLimiter:
    """At most `per_second` starts in any window of `window` seconds (a little over one second: the receiver
    counts arrivals, which jitter after the starts)."""

    def __init__(
        self,
        per_second: int = TEAMS_PER_SECOND,
        window: float = 1.1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_second, self.window, self.clock, self.sleep = per_second, window, clock, sleep
        self.starts: deque[float] = deque()
        self.lock = threading.Lock()

    def wait(self) -> float:
        """Block until one more request may start; the seconds waited."""
        waited = 0.0
        with self.lock:
            while True:
                now = self.clock()
                while self.starts and self.starts[0] <= now - self.window:
                    self.starts.popleft()
                if len(self.starts) < self.per_second:
                    self.starts.append(now)
                    return waited
                pause = self.starts[0] + self.window - now
                self.sleep(pause)
                waited += pause


def cloudevents(notice: Notice | Digest) -> list[dict[str, Any]]:
    """One CloudEvent per line: type `Cryptward.Change.<Kind>`, source `/cryptward/<subscription>`, subject the
    resource id, id stable per notice and line (subscribers can drop duplicates). No approval links: a topic is
    broadcast to whoever subscribes. A digest's are its notices' events."""
    if isinstance(notice, Digest):
        return [event for one in notice.notices for event in cloudevents(one)]
    base = notice.to_dict(links=False)
    del base["lines"], base["counts"]
    return [
        {
            "id": f"{notice.id}-{i}",
            "source": f"/cryptward/{notice.subscription_id or 'tenant'}",
            "type": EVENT_TYPES[line.kind],
            "subject": notice.resource_id,
            "time": notice.created,
            "data": {**base, "noticeId": notice.id, "change": line.to_dict(links=False)},
        }
        for i, line in enumerate(notice.lines)
    ]


class Sender:
    """Sends notices; one HTTP client per kind and one rate limiter per Teams destination, reused across sends."""

    def __init__(
        self,
        destinations: Destinations,
        *,
        retries: azure.Retries | None = None,
        verify: bool | str | None = None,
        clock: Callable[[], float] = time.time,
        limiter: Callable[[], RateLimiter] = RateLimiter,
        max_card_bytes: int = cards.MAX_BYTES,
    ) -> None:
        self.destinations = destinations
        self.retries = retries or azure.Retries()
        # REQUESTS_CA_BUNDLE is honoured by `requests` when verify is True; an explicit CA bundle wins.
        self.verify: bool | str = True if verify is None else verify
        self.clock = clock
        self.make_limiter = limiter
        self.max_card_bytes = max_card_bytes
        self.limiters: dict[str, RateLimiter] = {}
        self.clients: dict[str, Any] = {}

    def send(self, notice: Notice | Digest, ref: str) -> Delivery:
        """Deliver `notice` (or an owner's digest) to the destination `ref`. Never raises: a failure is a Delivery
        with `ok=False`."""
        try:
            dest = self.destinations.of(ref)
            if dest.kind == "eventgrid":
                return self._eventgrid(notice, dest)
            if dest.kind == "teams":
                if isinstance(notice, Digest):
                    body = digest.fit(notice, self.max_card_bytes)
                else:
                    body = cards.fit(notice, self.max_card_bytes)
                self.limiters.setdefault(dest.ref, self.make_limiter()).wait()
                return self._post(notice, dest, body, {})
            # no approval links: a webhook is read by machines (an audit store, a SIEM), never by the approvers
            body = json.dumps(notice.to_dict(links=False), ensure_ascii=False, separators=(",", ":")).encode()
            assert dest.secret is not None
            headers = signing.webhook_headers(dest.secret, body, timestamp=int(self.clock()), idempotency_key=notice.id)
            return self._post(notice, dest, body, headers)
        except SettingsError as e:
            delivery = Delivery(notice.id, ref, False, 0, str(e))
        except AzureAccessError as e:
            delivery = Delivery(notice.id, ref, False, e.status, f"{e.code}: {e.message}")
        except Exception as e:  # a notice never stops the run that made it; the outbox keeps it for later
            delivery = Delivery(notice.id, ref, False, 0, f"unexpected {type(e).__name__}")
            log.exception("cryptward notice %s to %s: unexpected error", notice.id, ref)
        log.warning("cryptward notice %s to %s failed: %s", notice.id, ref, delivery.detail)
        return delivery

    def _client(self, kind: str, dest: Destination) -> Any:
        key = "webhook" if kind != "eventgrid" else f"eventgrid:{dest.name}"
        if key not in self.clients:
            if kind == "eventgrid":
                assert dest.key is not None
                self.clients[key] = azure.eventgrid_publisher(dest.url, dest.key, self.retries, self.verify)
            else:
                self.clients[key] = azure.webhook_client(self.retries, self.verify)
        return self.clients[key]

    def _post(self, notice: Notice | Digest, dest: Destination, body: bytes, headers: Mapping[str, str]) -> Delivery:
        status, reason = azure.post(self._client(dest.kind, dest), dest.url, body, headers)
        ok = 200 <= status < 300
        delivery = Delivery(notice.id, dest.ref, ok, status, "" if ok else reason, len(body))
        if ok:
            log.info("cryptward notice %s to %s: %s, %d bytes", notice.id, dest.ref, status, len(body))
        else:
            log.warning("cryptward notice %s to %s failed: %s %s", notice.id, dest.ref, status, reason)
        return delivery

    def _eventgrid(self, notice: Notice | Digest, dest: Destination) -> Delivery:
        events = cloudevents(notice)
        azure.publish_cloudevents(self._client("eventgrid", dest), events)
        log.info("cryptward notice %s to %s: %d event(s)", notice.id, dest.ref, len(events))
        return Delivery(notice.id, dest.ref, True, 200, f"{len(events)} event(s)")

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        self.clients.clear()

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Delivery", "Destination", "Destinations", "RateLimiter", "Sender", "cloudevents", "setting_prefix"]
