"""Notice delivery out of Azure's control plane: webhook POSTs through an azure-core pipeline (retries, no logged
URLs: a Teams Workflows URL carries its signature) and CloudEvents to an Event Grid custom topic. Part of
remediations/azure/; the SDKs are imported inside the functions that use them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from remediations.azure.client import USER_AGENT, translated
from remediations.errors import AzureAccessError


@dataclass(frozen=True)
class Retries:
    """azure-core RetryPolicy settings for notice delivery: `total` retries after the first try, exponential backoff
    (`backoff` * 2^n, the first retry immediate) capped at `backoff_max`; a Retry-After header wins. `timeout`
    bounds the whole delivery, waits included."""

    total: int = 3
    backoff: float = 0.8
    backoff_max: float = 30.0
    timeout: float = 120.0

    def policy(self) -> Any:
        from azure.core.pipeline.policies import RetryPolicy

        return RetryPolicy(
            retry_total=self.total,
            retry_backoff_factor=self.backoff,
            retry_backoff_max=self.backoff_max,
            timeout=self.timeout,
        )


class _QueryRedaction(logging.Filter):
    """Cuts query strings out of urllib3's DEBUG request lines: a Teams Workflows URL carries its `sig` there."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                a.split("?", 1)[0] + "?<redacted>" if isinstance(a, str) and "?" in a else a for a in record.args
            )
        return True


def webhook_client(retries: Retries, verify: bool | str = True) -> Any:
    """An azure-core PipelineClient for webhook POSTs. No HTTP logging policy: the URL of a Teams Workflows webhook
    carries its signature in the query string, and a webhook's headers carry our HMAC."""
    from azure.core import PipelineClient
    from azure.core.pipeline.policies import HeadersPolicy, UserAgentPolicy

    urllib3_log = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _QueryRedaction) for f in urllib3_log.filters):
        urllib3_log.addFilter(_QueryRedaction())

    return PipelineClient(
        base_url="",
        policies=[HeadersPolicy(), UserAgentPolicy(sdk_moniker=USER_AGENT), retries.policy()],
        connection_verify=verify,
    )


def post(client: Any, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, str]:
    """POST `body` through a `webhook_client`; the final status and a short reason (retries already spent).
    Raises AzureAccessError (status 0) when the endpoint cannot be reached; the message never quotes the URL."""
    from azure.core.exceptions import AzureError
    from azure.core.rest import HttpRequest

    request = HttpRequest("POST", url, content=body, headers={"Content-Type": "application/json", **headers})
    try:
        response = client.send_request(request)
    except AzureError as e:
        raise AzureAccessError(0, type(e).__name__, "the endpoint could not be reached") from None
    reason = ""
    if response.status_code >= 400:
        reason = f"{response.reason or ''} {response.text()[:200]}".strip()
    response.close()
    return response.status_code, reason


def eventgrid_publisher(endpoint: str, key: str, retries: Retries, verify: bool | str = True) -> Any:
    """azure-eventgrid's EventGridPublisherClient for a custom topic, authenticated with its access key."""
    from azure.core.credentials import AzureKeyCredential
    from azure.eventgrid import EventGridPublisherClient

    return EventGridPublisherClient(
        endpoint, AzureKeyCredential(key), retry_policy=retries.policy(), connection_verify=verify
    )


def publish_cloudevents(client: Any, events: Sequence[Mapping[str, Any]]) -> None:
    """Send CloudEvents 1.0 (`{id, source, type, subject, time, data}` mappings) in one batch.
    Raises AzureAccessError with Event Grid's status and code."""
    from azure.core.messaging import CloudEvent

    batch = [
        CloudEvent(
            source=e["source"], type=e["type"], subject=e.get("subject"), id=e["id"], time=e.get("time"), data=e["data"]
        )
        for e in events
    ]
    with translated():
        client.send(batch)


__all__ = ["Retries", "eventgrid_publisher", "post", "publish_cloudevents", "webhook_client"]
