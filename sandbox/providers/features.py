"""Microsoft.Features (Azure Feature Exposure Control) and resource provider registration: what a subscription must
do before a VM may use encryption at host.

Microsoft Learn, "Use the Azure portal to enable end-to-end encryption using encryption at host"
(https://learn.microsoft.com/azure/virtual-machines/disks-enable-host-based-encryption-portal): "You must enable the
feature for your subscription before you can use encryption at host ... `az feature register --name EncryptionAtHost
--namespace Microsoft.Compute` ... Confirm that the registration state is Registered (registration may take a few
minutes)". The az CLI then says: "Once the feature 'EncryptionAtHost' is registered, invoking 'az provider register
-n Microsoft.Compute' is required to get the change propagated" (its output, quoted in many public write-ups).

Routes and shapes: azure-rest-api-specs specification/resources/resource-manager/Microsoft.Features/stable/2021-07-01/
features.json (Features_Get, _Register, _Unregister, _List, _ListAll; FeatureResult {name, properties.state, id,
type}); real answers (az feature register/show output) name the feature `Microsoft.Compute/EncryptionAtHost`, type
`Microsoft.Features/providers/features`, state `Registering` then `Registered`; a never registered feature is
`NotRegistered` (SubscriptionFeatureRegistrationState in the same spec folder). Provider registration:
resources.json Providers_Get / Providers_Register (`POST /subscriptions/{s}/providers/{ns}/register`, operation
`{ns}/register/action`).

The sandbox keeps, per subscription, each feature's state and when it started registering (Registering turns into
Registered `feature_registration_seconds` later on the sandbox's clock), and when each provider was last registered.
A feature is in effect once Registered (see `in_effect` for why provider re-registration is recorded, not required).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sandbox.arm import Answer, ArmError, Call, ResourceType, register
from sandbox.providers.resources import RESOURCES_API

if TYPE_CHECKING:
    from sandbox.state import State

FEATURE_API = ("2015-12-01", "2021-07-01", "2025-03-01")
FEATURE_TYPE = "Microsoft.Features/providers/features"
# The features the sandbox knows, per provider namespace.
KNOWN = {"Microsoft.Compute": ("EncryptionAtHost",)}
NAMESPACES = ("Microsoft.Compute", "Microsoft.KeyVault", "Microsoft.Insights", "Microsoft.EventGrid")
_TABLE = "features"
_NS = re.compile(r"/providers/Microsoft\.Features/providers/(?P<ns>[^/]+)/features", re.I)


def _entry(state: State, sub: str, ns: str, name: str) -> dict[str, Any]:
    return dict(state.table(_TABLE).get(f"{sub}|{ns}/{name}".lower()) or {})


def feature_state(state: State, sub: str, ns: str, name: str) -> str:
    entry = _entry(state, sub, ns, name)
    if entry.get("state") == "Registering" and state.clock.timestamp() >= entry["readyAt"]:
        return "Registered"
    return str(entry.get("state") or "NotRegistered")


def in_effect(state: State, sub: str, ns: str, name: str) -> bool:
    """Whether the feature is Registered. Whether the provider must also have been registered again since is not
    enforced: az says so for every feature ("... is required to get the change propagated"), Microsoft's
    encryption-at-host pages list only the feature's registration, and no answer to check it against was found
    (unverified either way); `provider_registered_since` tells what a test wants to know."""
    return feature_state(state, sub, ns, name) == "Registered"


def provider_registered_since(state: State, sub: str, ns: str, name: str) -> bool:
    registered_at = state.table(_TABLE).get(f"{sub}|provider|{ns}".lower())
    entry = _entry(state, sub, ns, name)
    return registered_at is not None and bool(entry) and registered_at >= entry["readyAt"]


def set_registered(state: State, sub: str, ns: str, name: str, since: float) -> None:
    """A feature registered (and propagated) at `since`: what a scenario's past looks like."""
    table = state.table(_TABLE)
    table[f"{sub}|{ns}/{name}".lower()] = {"state": "Registering", "readyAt": since}
    table[f"{sub}|provider|{ns}".lower()] = since


def _known(ns: str, name: str) -> tuple[str, str]:
    for known_ns, names in KNOWN.items():
        if known_ns.lower() == ns.lower():
            for known in names:
                if known.lower() == name.lower():
                    return known_ns, known
    # The message as az shows it ("The feature 'EncryptionAtHost' could not be found.", MicrosoftDocs/azure-docs
    # #59055); the status and code: unverified.
    raise ArmError(404, "FeatureNotFound", f"The feature '{name}' could not be found.")


def feature_body(state: State, sub: str, ns: str, name: str) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{sub}/providers/Microsoft.Features/providers/{ns}/features/{name}",
        "name": f"{ns}/{name}",
        "properties": {"state": feature_state(state, sub, ns, name)},
        "type": FEATURE_TYPE,
    }


def _where(call: Call) -> tuple[str, str, str]:
    """(subscription, namespace, feature name) of an item or action path."""
    parts = call.path.id.strip("/").split("/")
    return parts[1], parts[5], parts[7]


@register
class Features(ResourceType):
    """Not stored resources: a view over the subscription's feature table."""

    type = FEATURE_TYPE
    api_versions = FEATURE_API

    def parent_exists(self, call: Call) -> bool:
        return True

    def exists(self, state: State, resource_id: str) -> bool:
        return True

    def current(self, call: Call) -> dict[str, Any] | None:
        sub, ns, name = _where(call)
        ns, name = _known(ns, name)
        return feature_body(call.state, sub, ns, name)

    def read(self, call: Call) -> dict[str, Any]:
        body = self.current(call)
        assert body is not None
        return body

    def list(self, call: Call) -> list[dict[str, Any]]:
        m = _NS.search(call.url.split("?")[0])
        sub = call.path.subscription or ""
        wanted = m.group("ns").lower() if m else None
        return [
            feature_body(call.state, sub, ns, name)
            for ns, names in KNOWN.items()
            if wanted is None or ns.lower() == wanted
            for name in names
        ]

    def action(self, call: Call, name: str, existing: dict[str, Any]) -> Answer:
        sub, ns, feature = _where(call)
        ns, feature = _known(ns, feature)
        key = f"{sub}|{ns}/{feature}".lower()
        table, now = call.state.table(_TABLE), call.state.clock.timestamp()
        current = feature_state(call.state, sub, ns, feature)
        if name == "register":
            if current not in ("Registering", "Registered"):
                table[key] = {"state": "Registering", "readyAt": now + call.state.settings.feature_registration_seconds}
        elif name == "unregister":
            table[key] = {"state": "Unregistered", "readyAt": now}
        else:
            return super().action(call, name, existing)
        return Answer(200, feature_body(call.state, sub, ns, feature))


@register
class SubscriptionFeatures(ResourceType):
    """GET /subscriptions/{s}/providers/Microsoft.Features/features (Features_ListAll)."""

    type = "Microsoft.Features/features"
    api_versions = FEATURE_API

    def list(self, call: Call) -> list[dict[str, Any]]:
        sub = call.path.subscription or ""
        return [feature_body(call.state, sub, ns, name) for ns, names in KNOWN.items() for name in names]


class Provider(ResourceType):
    """A resource provider as a subscription sees it (Providers_Get, Providers_Register)."""

    api_versions = RESOURCES_API

    def parent_exists(self, call: Call) -> bool:
        return True

    def current(self, call: Call) -> dict[str, Any] | None:
        return self.read(call)

    def read(self, call: Call) -> dict[str, Any]:
        sub = call.path.subscription or ""
        return {
            "id": f"/subscriptions/{sub}/providers/{self.type}",
            "namespace": self.type,
            "registrationState": "Registered",
            "registrationPolicy": "RegistrationRequired",
            "resourceTypes": [],  # what the sandbox serves is not listed here (unverified shape beyond the keys)
        }

    def action(self, call: Call, name: str, existing: dict[str, Any]) -> Answer:
        if name != "register":
            return super().action(call, name, existing)
        sub = call.path.subscription or ""
        call.state.table(_TABLE)[f"{sub}|provider|{self.type}".lower()] = call.state.clock.timestamp()
        return Answer(200, self.read(call))


for _ns in NAMESPACES:
    register(type(f"Provider_{_ns.replace('.', '_')}", (Provider,), {"type": _ns}))
