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
from remediations.azure.pacer import (
    WRITE_RETRIES,
    WRITE_RETRY_WAIT,
    client_options,
    holds,
    pacer_class,
    retry_after,
    write_retries,
)
from remediations.azure.prices import RetailPrices
from remediations.azure.profile import CloudProfile, default_credential
from remediations.errors import AzureAccessError, CredentialError

T = TypeVar("T")

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

USER_AGENT = f"cryptward/{__version__}"
_COUNT_LOCK = threading.Lock()
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
    # ARM writes (PUT, PATCH, POST), paced by their own bucket; independent changes written at once by the applier
    write_budget: pacing.ReadBudget = field(
        default_factory=lambda: pacing.ReadBudget(pacing.WRITE_BUCKET, pacing.WRITE_REFILL)
    )
    write_workers: int = pacing.DEFAULT_WRITE_WORKERS  # CRYPTWARD_WRITE_CONCURRENCY
    # How sweeps list resources (CRYPTWARD_INVENTORY): "resourcegraph", "arm", or "auto" (Resource Graph when the
    # scope has more than CRYPTWARD_INVENTORY_THRESHOLD subscriptions); see remediations/engine/inventory.py.
    inventory: str = "auto"
    inventory_threshold: int = 10
    _pacer: Any = None
    _making: Any = field(default_factory=threading.RLock)  # clients are made once, whichever thread asks first
    _transport: Any = None
    _prices: Any = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Azure:
        """The profile and the identity (AZURE_CLIENT_ID) the settings name (the process environment unless given)."""
        env = os.environ if env is None else env
        client_id = (env.get("AZURE_CLIENT_ID") or "").strip() or None
        return cls(
            CloudProfile.from_env(env),
            credential_factory=lambda: default_credential(client_id),
            **client_options(env),
        )

    @property
    def credential(self) -> TokenCredential:
        if self._credential is None:
            self._credential = self.credential_factory()
        return self._credential

    @property
    def prices(self) -> RetailPrices:
        """The Retail Prices API of the profile (prices.py): what it answers is kept for the day, for this object."""
        with self._making:
            if self._prices is None:
                url, ca = self.profile.retail_prices, self.profile.ca_bundle
                self._prices = RetailPrices(url, ca_bundle=ca, user_agent=USER_AGENT)
            return self._prices

    def _count(self, request: Any) -> None:
        with _COUNT_LOCK:  # requests run on several threads (`each`); `+=` on a Counter is not atomic
            self.calls[str(request.http_request.method).upper()] += 1

    def _common(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "polling_interval": self.profile.polling_interval,
            "raw_request_hook": self._count,
            "user_agent": USER_AGENT,
            "retry_policy": write_retries(),
            "transport": self.transport(),
        }
        if self.profile.ca_bundle:
            kwargs["connection_verify"] = self.profile.ca_bundle
        return kwargs

    def transport(self) -> Any:
        """One HTTP transport, one pool of connections, for every client made here: the first call of a client made
        for another subscription (a management group's event, a sweep's next subscription) reuses a connection the
        others opened rather than paying a TLS handshake of its own (azure-core: a transport given a session it does
        not own leaves it open when a client closes; `close` closes it)."""
        with self._making:
            return self._transport or self._new_transport()

    def _new_transport(self) -> Any:
        import requests
        from azure.core.pipeline.transport import RequestsTransport
        from urllib3.util.retry import Retry

        from remediations.azure.session import Session

        session = Session()  # requests' session, the environment's proxies and CA bundle read once per origin
        # as azure-core's own sessions: no retries below the pipeline's retry policy
        adapter = requests.adapters.HTTPAdapter(
            max_retries=Retry(total=False, redirect=False, raise_on_status=False), pool_maxsize=64
        )
        for scheme in ("https://", "http://"):
            session.mount(scheme, adapter)
        verify = {"connection_verify": self.profile.ca_bundle} if self.profile.ca_bundle else {}
        self._transport = RequestsTransport(session=session, session_owner=False, **verify)
        return self._transport

    def _mgmt(self, kind: str, subscription_id: str, make: Callable[..., Any]) -> Any:
        key = (kind, subscription_id.lower())
        with self._making:
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
        """A pipeline policy (one per pipeline: a policy links to the next one) that paces ARM requests: each GET
        takes a token of `budget`, each PUT, PATCH or POST one of `write_budget`, before it is sent (each retry too),
        and each answer's remaining-reads (-writes) header corrects that budget. Other requests pass untouched."""
        with self._making:
            if self._pacer is None:
                self._pacer = pacer_class(self.budget, self.write_budget, urlsplit(self.profile.arm_endpoint).netloc)
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
        self,
        subscriptions: Sequence[str],
        query: str,
        top: int,
        skip_token: str | None = None,
        *,
        skip: int = 0,
        api_version: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """One page of a Resource Graph query over `subscriptions` (after `skip` rows, or at `skip_token`): the
        answer's JSON (`data`, `$skipToken`, `totalRecords`...) as sent, without SDK models, and its headers (the
        quota: `x-ms-user-quota-remaining`, `x-ms-user-quota-resets-after`). `api_version` and `options` (e.g.
        `authorizationScopeFilter`, 2022-10-01) for what the SDK's api-version lacks."""
        from azure.core.rest import HttpRequest

        body = {
            "subscriptions": list(subscriptions),
            "query": query,
            "options": {
                "$top": top,
                "resultFormat": "objectArray",
                **({"$skip": skip} if skip else {}),
                **({"$skipToken": skip_token} if skip_token else {}),
                **(options or {}),
            },
        }
        client = self.resource_graph()
        # The client's own pipeline (credential, retries, hooks) and api-version, but the JSON as sent: building the
        # SDK's models of 1,000 rows a page doubles the bot's time and memory for nothing (QueryResponse.data is an
        # untyped object either way).
        version = api_version or client._config.api_version
        request = HttpRequest("POST", f"{GRAPH_PATH}?api-version={version}", json=body)
        with translated():
            response = client._send_request(request)
        if response.status_code >= 400:
            raise error_of(response)
        return _json(response) or {}, {k.lower(): v for k, v in response.headers.items()}

    def key_client(self, vault_url: str) -> Any:
        """A KeyClient for one vault (its data plane is its own origin)."""
        key = ("keyclient", vault_url.rstrip("/").lower())
        with self._making:
            if key not in self._clients:
                from azure.keyvault.keys import KeyClient

                kwargs = self._common()
                kwargs.pop("polling_interval")
                self._clients[key] = KeyClient(
                    vault_url,
                    self.credential,
                    verify_challenge_resource=self.profile.verify_challenge_resource,
                    **kwargs,
                )
            return self._clients[key]

    # --- generic ARM requests: what no pinned SDK covers (diagnostic settings), and planner Operations ---------------

    def _pipeline(self) -> Any:
        if self._arm is None:
            with self._making:
                if self._arm is None:
                    self._arm = self._new_pipeline()
        return self._arm

    def _new_pipeline(self) -> Any:
        from azure.core.pipeline import policies
        from azure.mgmt.core import ARMPipelineClient
        from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy, ARMHttpLoggingPolicy

        kwargs = self._common()
        return ARMPipelineClient(
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
            transport=kwargs["transport"],
        )

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
        if method.upper() != "POST":
            done = self._resource_at_once(path, api_version, http, body)
            if done is not None:
                return done
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

    def _resource_at_once(self, path: str, api_version: str, http: Any, sent: Any) -> Any:
        """When a PUT/PATCH's `Location` names the resource itself (DiskRP: azure-rest-api-specs DiskRP/stable/
        2025-01-02/examples/diskEncryptionSetExamples/DiskEncryptionSet_Update.json, diskExamples/
        Disk_Update_ChangeTier.json), one GET of it after the answer's Retry-After: its body when it already says
        `provisioningState: Succeeded` and holds what was sent, which ends the write without the status poll and
        the final GET that ARMPolling would make (one call instead of two). None otherwise (Updating, Failed, not
        yet or no longer what was sent: a failed operation undone): the status URL then decides, in ARMPolling's
        order, and a failure is raised with its code."""
        headers = {k.lower(): v for k, v in http.headers.items()}
        location = headers.get("location") or ""
        target = urlsplit(self._url(path)).path.rstrip("/").lower()
        if not location or urlsplit(location).path.rstrip("/").lower() != target:
            return None
        time.sleep(retry_after(headers, self.profile.polling_interval))
        body = self.get(path, api_version)
        state = str(((body or {}).get("properties") or {}).get("provisioningState") or "")
        return body if state.lower() == "succeeded" and holds(body, sent) else None

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
        if self._transport is not None:
            self._transport.session.close()
            self._transport = None


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
