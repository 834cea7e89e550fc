"""The one package that talks to Azure: SDK clients and generic ARM / Key Vault requests, built from a credential and
a cloud profile. Nothing else in Cryptward imports `azure.mgmt.*`, `azure.keyvault.*` or `azure.identity`, and this
package imports them only inside the functions that need them (importing it loads no SDK: cold start matters).
Its modules: profile.py (where ARM is, credentials), client.py (`Azure`, errors, retries), pacer.py (reads and
writes paced to ARM's buckets, CRYPTWARD_WRITE_CONCURRENCY, LRO answers), outbound.py (notice delivery: webhooks,
Event Grid).

    azure = Azure.from_env()                       # public Azure, or the endpoint AZURE_RESOURCE_MANAGER_ENDPOINT names
    azure.compute(subscription_id).disks.list()    # SDK clients, cached per (client type, subscription)
    azure.get(vault_id + "/providers/Microsoft.Insights/diagnosticSettings", "2021-05-01-preview")
    azure.write("PUT", path, api_version, body)    # a planner Operation; 201/202 answers are polled to the end
    azure.keyvault_request("GET", key_url, "2025-07-01")

Errors come out as `AzureAccessError` (status, ARM error code, message) or `CredentialError`; the SDK's own exceptions
never leave this package. Every client's retries are `WriteRetries` (azure-core's `RetryPolicy`, which also retries a
throttled PUT, PATCH or POST, within a bounded wait); long-running operations are polled by azure-core's `LROPoller`
with azure-mgmt-core's `ARMPolling` in its own order (unless one GET of a resource that DiskRP's `Location` names
already says it is done), and a write is done only once the resource says `provisioningState: Succeeded`. Reads and
writes are paced to ARM's buckets (pacer.py). prices.py reads Microsoft's retail prices (the Azure Retail Prices
API, no credential) for the notices that quote a cost: `azure.prices.quote(meter, region, today)`.
"""

from __future__ import annotations

from remediations.azure.client import (
    USER_AGENT,
    WRITE_RETRIES,
    WRITE_RETRY_WAIT,
    Azure,
    as_body,
    error_of,
    translated,
    write_retries,
)
from remediations.azure.outbound import Retries, eventgrid_publisher, post, publish_cloudevents, webhook_client
from remediations.azure.pacer import client_options, write_concurrency
from remediations.azure.prices import PUBLIC_PRICES, Quote, RetailPrices
from remediations.azure.profile import (
    ARM_SCOPE,
    LOOPBACK,
    PUBLIC_ARM,
    PUBLIC_POLLING_INTERVAL,
    CloudProfile,
    default_credential,
    managed_identity,
    storage_credential,
)

__all__ = [
    "ARM_SCOPE",
    "LOOPBACK",
    "PUBLIC_ARM",
    "PUBLIC_POLLING_INTERVAL",
    "PUBLIC_PRICES",
    "USER_AGENT",
    "WRITE_RETRIES",
    "WRITE_RETRY_WAIT",
    "Azure",
    "CloudProfile",
    "Quote",
    "RetailPrices",
    "Retries",
    "as_body",
    "client_options",
    "default_credential",
    "error_of",
    "eventgrid_publisher",
    "managed_identity",
    "post",
    "publish_cloudevents",
    "storage_credential",
    "translated",
    "webhook_client",
    "write_concurrency",
    "write_retries",
]
