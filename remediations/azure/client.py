"""The ARM and Key Vault clients of remediations/azure/ (see its __init__): `Azure`, the SDK's errors translated into
Cryptward's, the retries of writes, SDK models as ARM bodies."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from remediations import __version__, pacing
from remediations.azure.profile import CloudProfile, default_credential
from remediations.errors import AzureAccessError, CredentialError, SettingsError

T = TypeVar("T")

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

USER_AGENT = f"cryptward/{__version__}"
_COUNT_LOCK = threading.Lock()
INVENTORY_MODES = ("auto", "resourcegraph", "arm")
GRAPH_PATH = "/providers/Microsoft.ResourceGraph/resources"


@dataclass
class Azure:
    """A profile, a credential and the clients made from them. `calls` counts the HTTP requests sent by method."""

    profile: CloudProfile = field(default_factory=CloudProfile)
    credential_factory: Callable[[], TokenCredential] = default_credential
    calls: Counter[str] = field(default_factory=Counter)
    _credential: Any = None
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    _arm: Any = None
    budget: pacing.ReadBudget = field(default_factory=pacing.ReadBudget)  # ARM reads, paced (remediations/pacing.py)
    workers: int = pacing.DEFAULT_WORKERS  # independent reads in flight at once (CRYPTWARD_READ_CONCURRENCY)
    # How sweeps list resources (CRYPTWARD_INVENTORY): "resourcegraph", "arm", or "auto" (Resource Graph when the
    # scope has more than CRYPTWARD_INVENTORY_THRESHOLD subscriptions); see remediations/engine/inventory.py.
    inventory: str = "auto"
    inventory_threshold: int = 10
    _pacer: Any = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Azure:
        """The profile and the identity (AZURE_CLIENT_ID) the settings name (the process environment unless given)."""
        env = os.environ if env is None else env
        client_id = (env.get("AZURE_CLIENT_ID") or "").strip() or None
        raw = (env.get("CRYPTWARD_READ_CONCURRENCY") or "").strip()
        if raw and not (raw.isdigit() and int(raw) >= 1):
            raise SettingsError(f"CRYPTWARD_READ_CONCURRENCY must be a whole number of at least 1, not {raw!r}")
        workers = int(raw) if raw else pacing.DEFAULT_WORKERS
        inventory = (env.get("CRYPTWARD_INVENTORY") or "auto").strip().lower()
        if inventory not in INVENTORY_MODES:
            raise SettingsError(f"CRYPTWARD_INVENTORY must be one of {', '.join(INVENTORY_MODES)}, not {inventory!r}")
        raw = (env.get("CRYPTWARD_INVENTORY_THRESHOLD") or "").strip()
        if raw and not raw.isdigit():
            raise SettingsError(f"CRYPTWARD_INVENTORY_THRESHOLD must be a whole number, not {raw!r}")
        return cls(
            CloudProfile.from_env(env),
            credential_factory=lambda: default_credential(client_id),
            workers=workers,
            inventory=inventory,
            inventory_threshold=int(raw) if raw else 10,
        )

    @property
    def credential(self) -> TokenCredential:
        if self._credential is None:
            self._credential = self.credential_factory()
        return self._credential

    def _count(self, request: Any) -> None:
        with _COUNT_LOCK:  # requests run on several threads (`each`); `+=` on a Counter is not atomic
            self.calls[str(request.http_request.method).upper()] += 1

    def _common(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "polling_interval": self.profile.polling_interval,
            "raw_request_hook": self._count,
            "user_agent": USER_AGENT,
            "retry_policy": write_retries(),
        }
        if self.profile.ca_bundle:
            kwargs["connection_verify"] = self.profile.ca_bundle
        return kwargs

    def _mgmt(self, kind: str, subscription_id: str, make: Callable[..., Any]) -> Any:
        key = (kind, subscription_id.lower())
        if key not in self._clients:
            self._clients[key] = make(
                self.credential,
                subscription_id,
                base_url=self.profile.arm_endpoint.rstrip("/"),
                credential_scopes=list(self.profile.credential_scopes),
                per_retry_policies=[self.pacer()],
                **self._common(),
            )
        return self._clients[key]

    def pacer(self) -> Any:
        """A pipeline policy (one per pipeline: a policy links to the next one) that paces ARM reads by `budget`:
        each GET takes a token before it is sent (each retry too), and each answer's remaining-reads header corrects
        the budget. Other requests pass untouched."""
        if self._pacer is None:
            from azure.core.pipeline.policies import HTTPPolicy

            budget, host = self.budget, urlsplit(self.profile.arm_endpoint).netloc.lower()

            class ReadPacer(HTTPPolicy):
                def send(self, request: Any) -> Any:
                    http = request.http_request
                    url = urlsplit(http.url)
                    if http.method.upper() not in ("GET", "HEAD") or url.netloc.lower() != host:
                        return self.next.send(request)
                    scope = pacing.scope_of(url.path)
                    budget.take(scope)
                    remaining = None
                    try:
                        response = self.next.send(request)
                        headers = response.http_response.headers
                        remaining = next((headers[h] for h in pacing.REMAINING_READS if h in headers), None)
                    finally:
                        budget.done(scope, remaining)
                    return response

            self._pacer = ReadPacer
        return self._pacer()

    def each(self, fetch: Callable[[T], Any], items: Iterable[T]) -> list[Any]:
        """`fetch(item)` for each item, up to `workers` at once (the clients are thread-safe; ARM reads are paced
        by `budget`), in order; an AzureAccessError raised by one is its result."""
        return pacing.gather(fetch, items, self.workers)

    # --- SDK clients, cached per (client type, subscription) ------------------------------------------------------

    def resources(self, subscription_id: str) -> Any:
        from azure.mgmt.resource.resources import ResourceManagementClient

        return self._mgmt("resources", subscription_id, ResourceManagementClient)

    def keyvault(self, subscription_id: str) -> Any:
        from azure.mgmt.keyvault import KeyVaultManagementClient

        return self._mgmt("keyvault", subscription_id, KeyVaultManagementClient)

    def compute(self, subscription_id: str) -> Any:
        from azure.mgmt.compute import ComputeManagementClient

        return self._mgmt("compute", subscription_id, ComputeManagementClient)

    def locks(self, subscription_id: str) -> Any:
        from azure.mgmt.resource.locks import ManagementLockClient

        return self._mgmt("locks", subscription_id, ManagementLockClient)

    def authorization(self, subscription_id: str) -> Any:
        from azure.mgmt.authorization import AuthorizationManagementClient

        return self._mgmt("authorization", subscription_id, AuthorizationManagementClient)

    def resource_graph(self) -> Any:
        """The Resource Graph client (tenant-level: one for every subscription). It does not retry by itself: the
        inventory paces its queries by the quota headers and falls back to ARM (remediations/engine/inventory.py)."""
        key = ("resourcegraph", "")
        if key not in self._clients:
            from azure.mgmt.resourcegraph import ResourceGraphClient

            kwargs = self._common()
            kwargs.pop("polling_interval")
            self._clients[key] = ResourceGraphClient(
                self.credential,
                base_url=self.profile.arm_endpoint.rstrip("/"),
                credential_scopes=list(self.profile.credential_scopes),
                retry_total=0,
                **kwargs,
            )
        return self._clients[key]

    def graph_query(
        self, subscriptions: Sequence[str], query: str, top: int, skip_token: str | None = None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """One page of a Resource Graph query over `subscriptions`: the answer's JSON (`data`, `$skipToken`,
        `totalRecords`...) as sent, without SDK models, and its headers (the quota: `x-ms-user-quota-remaining`,
        `x-ms-user-quota-resets-after`)."""
        from azure.core.rest import HttpRequest

        body = {
            "subscriptions": list(subscriptions),
            "query": query,
            "options": {
                "$top": top,
                "resultFormat": "objectArray",
                **({"$skipToken": skip_token} if skip_token else {}),
            },
        }
        client = self.resource_graph()
        # The client's own pipeline (credential, retries, hooks) and api-version, but the JSON as sent: building the
        # SDK's models of 1,000 rows a page doubles the bot's time and memory for nothing (QueryResponse.data is an
        # untyped object either way).
        request = HttpRequest("POST", f"{GRAPH_PATH}?api-version={client._config.api_version}", json=body)
        with translated():
            response = client._send_request(request)
        if response.status_code >= 400:
            raise error_of(response)
        return _json(response) or {}, {k.lower(): v for k, v in response.headers.items()}

    def key_client(self, vault_url: str) -> Any:
        """A KeyClient for one vault (its data plane is its own origin)."""
        key = ("keyclient", vault_url.rstrip("/").lower())
        if key not in self._clients:
            from azure.keyvault.keys import KeyClient

            kwargs = self._common()
            kwargs.pop("polling_interval")
            self._clients[key] = KeyClient(
                vault_url, self.credential, verify_challenge_resource=self.profile.verify_challenge_resource, **kwargs
            )
        return self._clients[key]

    # --- generic ARM requests: what no pinned SDK covers (diagnostic settings), and planner Operations ---------------

    def _pipeline(self) -> Any:
        if self._arm is None:
            from azure.core.pipeline import policies
            from azure.mgmt.core import ARMPipelineClient
            from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy, ARMHttpLoggingPolicy

            kwargs = self._common()
            self._arm = ARMPipelineClient(
                base_url=self.profile.arm_endpoint,
                policies=[
                    policies.RequestIdPolicy(),
                    policies.HeadersPolicy(),
                    policies.UserAgentPolicy(sdk_moniker=USER_AGENT),
                    policies.ContentDecodePolicy(),
                    policies.RedirectPolicy(),
                    kwargs["retry_policy"],
                    self.pacer(),
                    ARMChallengeAuthenticationPolicy(self.credential, *self.profile.credential_scopes),
                    policies.CustomHookPolicy(raw_request_hook=self._count),
                    policies.SensitiveHeaderCleanupPolicy(),
                    ARMHttpLoggingPolicy(),
                ],
                connection_verify=kwargs.get("connection_verify", True),
            )
        return self._arm

    def _url(self, path: str) -> str:
        return path if path.startswith("https://") else self.profile.arm_endpoint.rstrip("/") + "/" + path.lstrip("/")

    def _send(self, method: str, url: str, body: Any = None, params: Mapping[str, str] | None = None) -> Any:
        from azure.core.rest import HttpRequest

        request = HttpRequest(method, url, params=dict(params or {}), json=body)
        with translated():
            # `_pipeline.run` gives the PipelineResponse an LROPoller starts from, as generated SDK code does.
            response = self._pipeline()._pipeline.run(request)
        if response.http_response.status_code >= 400:
            raise error_of(response.http_response)
        return response

    def get(self, path: str, api_version: str, params: Mapping[str, str] | None = None) -> Any:
        """GET an ARM path; the JSON body."""
        response = self._send("GET", self._url(path), params={"api-version": api_version, **(params or {})})
        return _json(response.http_response)

    def list(self, path: str, api_version: str, params: Mapping[str, str] | None = None) -> Iterator[Any]:
        """Every item of an ARM collection, following nextLink."""
        page = self.get(path, api_version, params)
        while True:
            yield from page.get("value") or []
            link = page.get("nextLink")
            if not link:
                return
            page = _json(self._send("GET", link).http_response)

    def write(self, method: str, path: str, api_version: str, body: Any = None) -> Any:
        """PUT / PATCH / POST an ARM path; the final body (a 201/202 answer is polled until the operation ends)."""
        if method.upper() not in ("PUT", "PATCH", "POST"):
            raise ValueError(f"Cryptward never sends {method} requests")
        response = self._send(method.upper(), self._url(path), body, {"api-version": api_version})
        http = response.http_response
        polled = http.status_code == 202 or "azure-asyncoperation" in {k.lower() for k in http.headers}
        if not polled and not (http.status_code == 201 and "location" in {k.lower() for k in http.headers}):
            return _json(http)
        from azure.core.polling import LROPoller
        from azure.mgmt.core.polling.arm_polling import ARMPolling

        # ARMPolling's own order (Azure-AsyncOperation, then Location, then the body), as the SDK clients poll. Where
        # Location names the resource itself (DiskRP), its first 200 would end the poll while the resource still
        # says `provisioningState: Updating`: the status URL decides, and the state is checked after.
        poller = LROPoller(
            self._pipeline(),
            response,
            lambda final: _json(final.http_response),
            ARMPolling(self.profile.polling_interval),
        )
        with translated():
            body = poller.result()
        return self._settled(path, api_version, body) if method.upper() != "POST" else body

    def _settled(self, path: str, api_version: str, body: Any, polls: int = 60, within: float = 120.0) -> Any:
        """The resource once its `provisioningState` is terminal: re-read at the polling interval (`polls` times and
        `within` seconds at most: a function runs 5 minutes) while it says Updating, Creating ...; AzureAccessError
        when it ends Failed or Canceled, or does not end in time (the queue tries the work item again later)."""
        deadline = time.monotonic() + within
        for _ in range(polls + 1):
            state = str(((body or {}).get("properties") or {}).get("provisioningState") or "Succeeded")
            if state.lower() == "succeeded":
                return body
            if state.lower() in ("failed", "canceled", "cancelled"):
                raise AzureAccessError(200, f"Provisioning{state}", f"the resource ended provisioningState {state}")
            if time.monotonic() + self.profile.polling_interval > deadline:
                break
            time.sleep(self.profile.polling_interval)
            body = self.get(path, api_version)
        raise AzureAccessError(0, "ProvisioningTimeout", f"the resource still says provisioningState {state}")

    def keyvault_request(self, method: str, url: str, api_version: str, body: Any = None) -> Any:
        """A Key Vault data-plane request (the URL names the vault); the JSON body."""
        from azure.core.rest import HttpRequest

        parts = urlsplit(url)
        client = self.key_client(f"{parts.scheme}://{parts.netloc}{_vault_prefix(parts.path)}")
        request = HttpRequest(method.upper(), url, params={"api-version": api_version}, json=body)
        with translated():
            response = client.send_request(request)
        if response.status_code >= 400:
            raise error_of(response)
        return _json(response)

    def close(self) -> None:
        for client in self._clients.values():
            close = getattr(client, "close", None)
            if close:
                close()
        self._clients.clear()
        if self._arm is not None:
            self._arm.close()
            self._arm = None


def _vault_prefix(path: str) -> str:
    """The vault's own path prefix: '' on Azure (a vault is a host), '/kv/NAME' on the sandbox."""
    head, sep, _ = path.partition("/keys/")
    return head if sep else ""


def _json(response: Any) -> Any:
    text = response.text() if callable(getattr(response, "text", None)) else ""
    return json.loads(text, object_hook=_shared_strings) if text else None


# A short string value (a type, a location, a tenant, a SKU, a state, a principal) is the same in thousands of bodies;
# json makes a new one for each. Interned, each body points at one. Longer values (ids, URLs, sentences) are mostly
# unique, so they are left alone rather than kept in the interned table.
SHARED_STRING_LENGTH = 64


def _shared_strings(obj: dict[str, Any]) -> dict[str, Any]:
    for key, value in obj.items():
        if type(value) is str and len(value) <= SHARED_STRING_LENGTH:
            obj[key] = sys.intern(value)
    return obj


def error_of(response: Any) -> AzureAccessError:
    """ARM's or Key Vault's `{"error": {"code", "message"}}` answer as an AzureAccessError."""
    try:
        error = (_json(response) or {}).get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    status = int(response.status_code)
    code = str(error.get("code") or getattr(response, "reason", "") or "HttpError")
    return AzureAccessError(status, code, str(error.get("message") or ""))


@contextmanager
def translated() -> Iterator[None]:
    """Turn the SDK's exceptions into Cryptward's: a missing credential, an Azure error, an unreachable endpoint."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    try:
        yield
    except ClientAuthenticationError as e:
        if e.response is None:
            raise CredentialError(_first_line(str(e))) from None
        raise error_of(e.response) from None
    except HttpResponseError as e:
        if e.response is not None:
            raise error_of(e.response) from None
        code = getattr(getattr(e, "error", None), "code", None) or "HttpResponseError"
        raise AzureAccessError(int(e.status_code or 0), str(code), _first_line(str(e))) from None
    except ServiceRequestError as e:
        raise AzureAccessError(0, "ServiceRequestError", _first_line(str(e))) from None


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
    item later). ARM's `x-ms-ratelimit-remaining-*` headers count what is left and carry no wait: they are not read.
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


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def as_body(model: Any) -> dict[str, Any]:
    """An SDK model as the ARM JSON body it was read from (wire names: `properties.enablePurgeProtection`)."""
    if hasattr(model, "serialize"):  # msrest-style models (locks, authorization)
        return dict(model.serialize(keep_readonly=True))
    return dict(model.as_dict())  # typespec-style models (compute, keyvault) keep the wire JSON


__all__ = [
    "USER_AGENT",
    "WRITE_RETRIES",
    "WRITE_RETRY_WAIT",
    "Azure",
    "as_body",
    "error_of",
    "translated",
    "write_retries",
]
