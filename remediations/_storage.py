"""What the ledger and the work queue share about the function app's storage account: the connection string and
how a storage failure becomes an AzureAccessError. The SDKs themselves load lazily, in the modules that use them."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from remediations.errors import AzureAccessError, SettingsError
from remediations.events import redact

CONNECTION_SETTING = "AzureWebJobsStorage"


def connection_string(env: Mapping[str, str] | None = None) -> str:
    """The storage connection string the Functions host uses (`UseDevelopmentStorage=true` means Azurite)."""
    env = os.environ if env is None else env
    value = (env.get(CONNECTION_SETTING) or "").strip()
    if not value:
        raise SettingsError(
            f"{CONNECTION_SETTING} is not set; expected a storage connection string "
            "(`UseDevelopmentStorage=true` for Azurite)"
        )
    return value


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
