"""Microsoft.KeyVault deleted vaults: the soft-deleted state a vault DELETE leaves, GET / list, purge (an LRO),
recover (used by keyvault.py's createMode=recover), and the clock ticker that purges vaults past their scheduled
purge date, as Key Vault does at the end of the retention period.

A deleted vault is stored as a resource of type Microsoft.KeyVault/deletedVaults at
/subscriptions/{s}/providers/Microsoft.KeyVault/locations/{location}/deletedVaults/{name}; the original vault body
is kept in the sandbox-only meta of that id. Its keys stay in the key store until the purge.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sandbox.arm import Answer, ArmError, Call, ResourceType, register
from sandbox.providers.keyvault_store import drop_keys_of
from sandbox.state import State, iso

if TYPE_CHECKING:
    from sandbox.server import Sandbox

# The api-versions Microsoft.KeyVault answers for vaults (stable and preview), oldest first.
API_VERSIONS = (
    "2015-06-01",
    "2016-10-01",
    "2018-02-14",
    "2019-09-01",
    "2021-04-01-preview",
    "2021-06-01-preview",
    "2021-10-01",
    "2021-11-01-preview",
    "2022-02-01-preview",
    "2022-07-01",
    "2022-11-01",
    "2023-02-01",
    "2023-07-01",
    "2023-08-01-preview",
    "2024-04-01-preview",
    "2024-11-01",
    "2024-12-01-preview",
    "2025-05-01",
    "2026-02-01",
    "2026-03-01-preview",
    "2026-04-01-preview",
    "2026-04-01",
    "2026-05-15",
)
DELETED_TYPE = "Microsoft.KeyVault/deletedVaults"


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(UTC)


def deleted_id(subscription: str, location: str, name: str) -> str:
    return f"/subscriptions/{subscription}/providers/Microsoft.KeyVault/locations/{location}/deletedVaults/{name}"


def deleted_by_name(state: State, name: str) -> dict[str, Any] | None:
    wanted = name.lower()
    return next((d for d in state.of_type(DELETED_TYPE) if d["name"].lower() == wanted), None)


def soft_delete(state: State, vault: dict[str, Any]) -> dict[str, Any] | None:
    """What a vault DELETE leaves: a deleted-vault entry (or nothing, and its keys gone, without soft delete)."""
    props = vault["properties"]
    if props.get("enableSoftDelete") is False:
        drop_keys_of(state, vault["id"])
        return None
    now = state.clock.now()
    days = int(props.get("softDeleteRetentionInDays") or 90)
    subscription = vault["id"].split("/")[2]
    body = {
        "id": deleted_id(subscription, vault["location"], vault["name"]),
        "name": vault["name"],
        "type": DELETED_TYPE,
        "properties": {
            "vaultId": vault["id"],
            "location": vault["location"],
            "deletionDate": iso(now),
            "scheduledPurgeDate": iso(now + timedelta(days=days)),
            "tags": copy.deepcopy(vault.get("tags") or {}),
            "purgeProtectionEnabled": bool(props.get("enablePurgeProtection")),
        },
    }
    state.put(body)
    state.meta_of(body["id"])["vault"] = copy.deepcopy(vault)
    return body


def restore(state: State, deleted: dict[str, Any]) -> dict[str, Any]:
    """Take a deleted vault out of the deleted state; returns the original vault body (not yet stored)."""
    vault = copy.deepcopy(state.meta_of(deleted["id"]).get("vault") or {})
    state.remove(deleted["id"])
    return vault


def purge(state: State, deleted: dict[str, Any]) -> None:
    drop_keys_of(state, deleted["properties"]["vaultId"])
    state.remove(deleted["id"])


def purge_expired(state: State) -> None:
    """The clock ticker: Key Vault purges a soft-deleted vault once its scheduled purge date has passed."""
    now = state.clock.now()
    for deleted in list(state.of_type(DELETED_TYPE)):
        if _parse(deleted["properties"]["scheduledPurgeDate"]) <= now:
            purge(state, deleted)


class _Deleted(ResourceType):
    api_versions = API_VERSIONS

    def parent_exists(self, call: Call) -> bool:
        return True  # lives under /locations/{location}, which is not a resource


@register
class DeletedVaults(_Deleted):
    """GET /subscriptions/{s}/providers/Microsoft.KeyVault/deletedVaults (list)."""

    type = DELETED_TYPE


@register
class DeletedManagedHsms(_Deleted):
    """GET /subscriptions/{s}/providers/Microsoft.KeyVault/deletedManagedHSMs (list): always empty, the sandbox has no
    managed HSMs. `az keyvault list-deleted` lists it after deletedVaults and fails as a whole if it is refused."""

    type = "Microsoft.KeyVault/deletedManagedHSMs"


@register
class LocationDeletedVaults(_Deleted):
    """GET and POST .../purge on /subscriptions/{s}/providers/Microsoft.KeyVault/locations/{l}/deletedVaults/{n}."""

    type = "Microsoft.KeyVault/locations/deletedVaults"
    lro = frozenset({"purge"})

    def read(self, call: Call) -> dict[str, Any]:
        body = call.state.get(call.path.id)
        if body is None:
            # Unverified wording for a name with no soft-deleted vault.
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.KeyVault/locations/deletedVaults/{call.path.name}' was not found.",
            )
        return copy.deepcopy(body)

    def list(self, call: Call) -> list[dict[str, Any]]:
        location = call.path.parent.rsplit("/", 1)[-1].lower()
        items = call.state.of_type(
            DELETED_TYPE, under=call.path.subscription and f"/subscriptions/{call.path.subscription}"
        )
        return [copy.deepcopy(b) for b in items if b["properties"]["location"] == location]

    def action(self, call: Call, name: str, existing: dict[str, Any]) -> Answer:
        if name.lower() != "purge":
            return super().action(call, name, existing)
        props = existing["properties"]
        if props.get("purgeProtectionEnabled") and _parse(props["scheduledPurgeDate"]) > call.state.clock.now():
            # Verified code and message (az CLI: "(MethodNotAllowed) Operation 'DeletedVaultPurge' is not allowed.");
            # the HTTP status (405) is not confirmed by a captured response.
            raise ArmError(405, "MethodNotAllowed", "Operation 'DeletedVaultPurge' is not allowed.")
        purge(call.state, existing)
        return Answer(200, None)


def install(sb: Sandbox) -> None:
    sb.state.clock.on_tick(lambda: purge_expired(sb.state))
