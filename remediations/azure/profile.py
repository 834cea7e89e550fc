"""Where ARM is and who the bot is there: the cloud profile (public Azure, a sovereign cloud, or the sandbox) and the
credentials (DefaultAzureCredential, the Functions host's choice for its own storage, a managed identity). Part of
remediations/azure/, the one package that talks to Azure; the SDKs are imported inside the functions that use them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from remediations.azure.prices import PUBLIC_PRICES
from remediations.errors import SettingsError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

PUBLIC_ARM = "https://management.azure.com/"
ARM_SCOPE = "https://management.azure.com/.default"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# azure-core's own default when an LRO answer carries no Retry-After / retry-after-ms.
PUBLIC_POLLING_INTERVAL = 30.0


@dataclass(frozen=True)
class CloudProfile:
    """Where ARM is and how to trust and authenticate to it.

    Public Azure by default. `AZURE_RESOURCE_MANAGER_ENDPOINT` points everything at another ARM (a sovereign cloud,
    or the sandbox); `REQUESTS_CA_BUNDLE` is then the CA to trust. On a loopback endpoint (the sandbox), Key Vault's
    challenge resource cannot match `*.vault.azure.net`, so its verification is off, and LROs are polled without a
    pause when the answer gives no Retry-After: a local stand-in has finished by the time it answers. Elsewhere the
    pause is azure-core's 30 s default, used only when Azure gives no Retry-After. `CRYPTWARD_POLLING_INTERVAL`
    (seconds) overrides it; `CRYPTWARD_ARM_SCOPE` overrides the token scope (sovereign clouds).

    `retail_prices` is the Azure Retail Prices API a notice quotes prices from (remediations/azure/prices.py):
    `CRYPTWARD_RETAIL_PRICES_URL`, `off` for none; unset, public Azure's (https://prices.azure.com/api/retail/prices)
    on public Azure and none elsewhere: its prices are public Azure's, not a sovereign cloud's.
    """

    arm_endpoint: str = PUBLIC_ARM
    credential_scopes: tuple[str, ...] = (ARM_SCOPE,)
    ca_bundle: str | None = None
    verify_challenge_resource: bool = True
    polling_interval: float = PUBLIC_POLLING_INTERVAL
    retail_prices: str | None = PUBLIC_PRICES

    @property
    def is_public(self) -> bool:
        return self.arm_endpoint.rstrip("/") == PUBLIC_ARM.rstrip("/")

    @property
    def is_loopback(self) -> bool:
        return (urlsplit(self.arm_endpoint).hostname or "") in LOOPBACK

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CloudProfile:
        env = os.environ if env is None else env
        endpoint = (env.get("AZURE_RESOURCE_MANAGER_ENDPOINT") or "").strip() or PUBLIC_ARM
        if urlsplit(endpoint).scheme != "https":
            raise SettingsError(f"AZURE_RESOURCE_MANAGER_ENDPOINT must be an https URL, not {endpoint!r}")
        endpoint = endpoint.rstrip("/") + "/"
        public = endpoint == PUBLIC_ARM
        loopback = (urlsplit(endpoint).hostname or "") in LOOPBACK
        raw = (env.get("CRYPTWARD_POLLING_INTERVAL") or "").strip()
        try:
            interval = float(raw) if raw else (0.0 if loopback else PUBLIC_POLLING_INTERVAL)
        except ValueError:
            raise SettingsError(f"CRYPTWARD_POLLING_INTERVAL must be a number of seconds, not {raw!r}") from None
        prices = (env.get("CRYPTWARD_RETAIL_PRICES_URL") or "").strip()
        if prices and prices.lower() != "off" and urlsplit(prices).scheme != "https":
            raise SettingsError(f"CRYPTWARD_RETAIL_PRICES_URL must be an https URL or off, not {prices!r}")
        return cls(
            arm_endpoint=endpoint,
            credential_scopes=((env.get("CRYPTWARD_ARM_SCOPE") or ARM_SCOPE).strip(),),
            ca_bundle=None if public else (env.get("REQUESTS_CA_BUNDLE") or None),
            verify_challenge_resource=not loopback,
            polling_interval=max(0.0, interval),
            retail_prices=None if prices.lower() == "off" else (prices or (PUBLIC_PRICES if public else None)),
        )


def default_credential(client_id: str | None = None) -> TokenCredential:
    """DefaultAzureCredential without the interactive browser: environment, workload identity, managed identity
    (`client_id`, the AZURE_CLIENT_ID setting, selects a user-assigned one), then the developer tools (`az login`)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(exclude_interactive_browser_credential=True, managed_identity_client_id=client_id)


def storage_credential(env: Mapping[str, str] | None = None) -> TokenCredential:
    """The credential for the function app's own storage account, chosen as the Functions host chooses it:
    `AzureWebJobsStorage__credential=managedidentity` -> ManagedIdentityCredential (`__clientId` selects a
    user-assigned identity), else DefaultAzureCredential (`__clientId`, else AZURE_CLIENT_ID)."""
    from azure.identity import DefaultAzureCredential

    env = os.environ if env is None else env
    kind = (env.get("AzureWebJobsStorage__credential") or "").strip().lower()
    client_id = (env.get("AzureWebJobsStorage__clientId") or "").strip() or None
    if kind == "managedidentity":
        return managed_identity(client_id)
    client_id = client_id or (env.get("AZURE_CLIENT_ID") or "").strip() or None
    return DefaultAzureCredential(exclude_interactive_browser_credential=True, managed_identity_client_id=client_id)


def managed_identity(client_id: str | None = None) -> TokenCredential:
    """ManagedIdentityCredential: the system-assigned identity, or the user-assigned one `client_id` names."""
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()


__all__ = [
    "ARM_SCOPE",
    "LOOPBACK",
    "PUBLIC_ARM",
    "PUBLIC_POLLING_INTERVAL",
    "CloudProfile",
    "default_credential",
    "managed_identity",
    "storage_credential",
]
