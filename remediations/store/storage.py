"""Where the function app's storage account is and how to reach it: one `StorageTarget` gives the ledger, the work
queue, the notice outbox and `cryptward serve` their SDK clients, and a storage failure becomes an AzureAccessError.
The SDKs themselves load lazily, when a client is made.

    storage = target(settings.storage.values)   # from the app settings the Functions host reads
    storage.table_client("cwaudit"); storage.queue_client("cryptward-work"); storage.table_service()

Two ways, as the host has them: `AzureWebJobsStorage` holds a connection string (`UseDevelopmentStorage=true` is
Azurite), or, when it is absent, the identity-based settings infra/ deploys: `AzureWebJobsStorage__accountName`
(the public cloud's `https://<account>.queue.core.windows.net` and `.table.core.windows.net`) or explicit
`AzureWebJobsStorage__queueServiceUri` / `__tableServiceUri`, with `__credential=managedidentity` and `__clientId`
(remediations/azure/'s `storage_credential` builds the credential).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from remediations.errors import AzureAccessError, SettingsError, redact

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableServiceClient
    from azure.storage.queue import QueueClient

CONNECTION_SETTING = "AzureWebJobsStorage"
ACCOUNT_SETTING = f"{CONNECTION_SETTING}__accountName"
QUEUE_URI_SETTING = f"{CONNECTION_SETTING}__queueServiceUri"
TABLE_URI_SETTING = f"{CONNECTION_SETTING}__tableServiceUri"
CREDENTIAL_SETTING = f"{CONNECTION_SETTING}__credential"
CLIENT_ID_SETTING = f"{CONNECTION_SETTING}__clientId"
IDENTITY_SETTINGS = (ACCOUNT_SETTING, QUEUE_URI_SETTING, TABLE_URI_SETTING, CREDENTIAL_SETTING, CLIENT_ID_SETTING)


def connection_string(env: Mapping[str, str]) -> str:
    """The storage connection string the Functions host uses (`UseDevelopmentStorage=true` means Azurite)."""
    value = (env.get(CONNECTION_SETTING) or "").strip()
    if not value:
        raise SettingsError(
            f"{CONNECTION_SETTING} is not set; expected a storage connection string "
            "(`UseDevelopmentStorage=true` for Azurite)"
        )
    return value


@dataclass(frozen=True)
class StorageTarget:
    """One storage account: a connection string, or service URLs and a credential. The repr never shows a key."""

    connection: str | None = field(default=None, repr=False)  # may hold the account key
    queue_url: str | None = None
    table_url: str | None = None
    credential: Callable[[], Any] | None = field(default=None, repr=False, compare=False)  # -> a credential object
    identity: str = ""  # how the credential is chosen, for messages: managedidentity(<client id>) | default

    def table_service(self) -> TableServiceClient:
        from azure.data.tables import TableServiceClient

        if self.connection:
            return TableServiceClient.from_connection_string(self.connection)
        return TableServiceClient(self._url(self.table_url, "table"), credential=self._credential())

    def table_client(self, name: str) -> TableClient:
        from azure.data.tables import TableClient

        if self.connection:
            return TableClient.from_connection_string(self.connection, name)
        return TableClient(self._url(self.table_url, "table"), name, credential=self._credential())

    def queue_client(self, name: str, **kwargs: Any) -> QueueClient:
        from azure.storage.queue import QueueClient

        if self.connection:
            return QueueClient.from_connection_string(self.connection, name, **kwargs)
        return QueueClient(self._url(self.queue_url, "queue"), name, credential=self._credential(), **kwargs)

    def _url(self, url: str | None, service: str) -> str:
        if not url:
            raise SettingsError(
                f"no {service} endpoint: set {ACCOUNT_SETTING} or {CONNECTION_SETTING}__{service}ServiceUri "
                f"(or {CONNECTION_SETTING}, a connection string)"
            )
        return url

    def _credential(self) -> Any:
        if self.credential is None:
            from remediations.azure import storage_credential

            return storage_credential()
        return self.credential()


def create_queue(client: QueueClient) -> None:
    """Create the client's queue unless it exists (idempotent)."""
    from azure.core.exceptions import ResourceExistsError

    with suppress(ResourceExistsError):
        client.create_queue()


def as_target(value: str | StorageTarget) -> StorageTarget:
    """A connection string (what the tests and Azurite hand over) or a target, as a target."""
    return value if isinstance(value, StorageTarget) else StorageTarget(connection=value)


def target(env: Mapping[str, str], credential: Callable[[], Any] | None = None) -> StorageTarget:
    """The storage account the app settings name: `AzureWebJobsStorage`, else its identity-based settings.
    `credential` replaces the one the settings choose (tests: a shared-key credential for Azurite)."""
    if (env.get(CONNECTION_SETTING) or "").strip():
        return StorageTarget(connection=connection_string(env))
    account = (env.get(ACCOUNT_SETTING) or "").strip()
    queue_url = (env.get(QUEUE_URI_SETTING) or "").strip() or (
        f"https://{account}.queue.core.windows.net" if account else ""
    )
    table_url = (env.get(TABLE_URI_SETTING) or "").strip() or (
        f"https://{account}.table.core.windows.net" if account else ""
    )
    if not (queue_url or table_url):
        raise SettingsError(
            f"{CONNECTION_SETTING} is not set; expected a storage connection string (`UseDevelopmentStorage=true` "
            f"for Azurite) or the identity-based {ACCOUNT_SETTING} (or {QUEUE_URI_SETTING} / {TABLE_URI_SETTING})"
        )
    kind = (env.get(CREDENTIAL_SETTING) or "").strip().lower()
    if kind and kind != "managedidentity":
        raise SettingsError(f"{CREDENTIAL_SETTING} is {kind!r}; valid: managedidentity (or unset)")
    client_id = (env.get(CLIENT_ID_SETTING) or "").strip() or None
    if credential is None:
        from remediations.azure import storage_credential

        settings = dict(env)

        def credential() -> Any:
            return storage_credential(settings)

    identity = f"managedidentity({client_id or 'system-assigned'})" if kind else "default"
    return StorageTarget(None, queue_url or None, table_url or None, credential, identity)


@contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """Turn the storage SDK's failures (answers and unreachable endpoints) into AzureAccessError."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    try:
        yield
    except HttpResponseError as e:
        code = getattr(e, "error_code", None) or (e.reason or "HttpResponseError")
        raise AzureAccessError(e.status_code or 0, str(code), redact(f"{what}: {e.message}")) from e
    except (ServiceRequestError, ServiceResponseError) as e:
        raise AzureAccessError(0, type(e).__name__, redact(f"{what}: {e}")) from e
