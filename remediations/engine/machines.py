"""What the reader learns about VMs besides their bodies: power states, as ComputeRP offers them in bulk, and their
sizes' capabilities from the Resource SKUs API, and whether their subscription may use encryption at host.

A VM list may not expand the instance view without a `$filter` (ComputeRP virtualMachine.json, VirtualMachines_List
and _ListAll, `$expand`: "this can only be specified if a valid $filter option is specified"; Azure answers 400
BadRequest otherwise). The documented bulk read of power states is `statusOnly=true` on the subscription's list
(VirtualMachines_ListAll). It has no resource-group form, so a group's VMs are read one instance view each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from remediations.azure import Azure, as_body, translated
from remediations.errors import AzureAccessError
from remediations.policy import aliases
from remediations.resources import get


def power_code(statuses: Iterable[Mapping[str, Any]] | None) -> str | None:
    """`PowerState/running` ... from a list of instance view statuses; None when there is none."""
    return next((str(s["code"]) for s in statuses or [] if str(s.get("code", "")).startswith("PowerState/")), None)


def power_states(azure: Azure, subscription: str, group: str | None, vm_ids: Iterable[str]) -> dict[str, str]:
    """Lower-cased VM id -> power state code: one `statusOnly=true` list for a subscription, one instance view GET per
    VM for a resource group (the scope is never read beyond)."""
    out: dict[str, str] = {}
    if group is None:
        with translated():
            for item in azure.compute(subscription).virtual_machines.list_all(status_only="true"):
                body = as_body(item)
                code = power_code(get(body, "properties.instanceView.statuses"))
                if code:
                    out[str(body["id"]).lower()] = code
        return out
    for vm_id in vm_ids:
        view = azure.get(f"{vm_id}/instanceView", aliases.API_VERSIONS[aliases.VM])
        code = power_code(view.get("statuses"))
        if code:
            out[vm_id.lower()] = code
    return out


# --- VM sizes' capabilities --------------------------------------------------------------------------------------

Capabilities = dict[str, dict[str, str]]  # size (lower-cased) -> {capability name: value}


def region_skus(azure: Azure, subscription: str, region: str) -> Capabilities:
    """The VM sizes a subscription may use in a region, with their capabilities: one Resource SKUs list
    (`$filter=location eq '...'`, the only filter Azure supports)."""
    out: Capabilities = {}
    with translated():
        for item in azure.compute(subscription).resource_skus.list(filter=f"location eq '{region}'"):
            body = as_body(item)
            if str(body.get("resourceType", "")).lower() != "virtualmachines":
                continue
            caps = {str(c.get("name")): str(c.get("value")) for c in body.get("capabilities") or []}
            out[str(body.get("name", "")).lower()] = caps
    return out


def sku_block(azure: Azure, vm: Mapping[str, Any], cache: dict[tuple[str, str], Capabilities | str]) -> dict[str, Any]:
    """A VM's `skuCapabilities` (its size's capabilities as Azure lists them), or `skuUnreadable` (why the list could
    not be read); nothing when Azure does not list the size there. `cache`: per subscription and region, per run."""
    region = str(vm.get("location", "")).replace(" ", "").lower()
    key = (str(vm["id"]).split("/")[2].lower(), region)
    if key not in cache:
        try:
            cache[key] = region_skus(azure, key[0], region)
        except AzureAccessError as e:
            cache[key] = f"{e.code}: {e.message}"
    found = cache[key]
    if isinstance(found, str):
        return {"skuUnreadable": found}
    caps = found.get(str(get(vm, "properties.hardwareProfile.vmSize") or "").lower())
    return {"skuCapabilities": caps} if caps is not None else {}


# --- the subscription's EncryptionAtHost feature -------------------------------------------------------------------

FEATURES_API = "2021-07-01"  # Microsoft.Features, features.json stable/2021-07-01 (Features_Get)


def feature_path(subscription: str) -> str:
    return (
        f"/subscriptions/{subscription}/providers/Microsoft.Features/providers/Microsoft.Compute/features/"
        "EncryptionAtHost"
    )


def feature_block(
    azure: Azure, vm: Mapping[str, Any], cache: dict[str, dict[str, str] | AzureAccessError]
) -> dict[str, str] | AzureAccessError:
    """The VM's subscription's EncryptionAtHost feature, `{id, state}` (one GET per subscription per run), or why it
    could not be read."""
    sub = str(vm["id"]).split("/")[2].lower()
    if sub not in cache:
        path = feature_path(str(vm["id"]).split("/")[2])
        try:
            body = azure.get(path, FEATURES_API)
            cache[sub] = {"id": str(body.get("id") or path), "state": str(get(body, "properties.state") or "")}
        except AzureAccessError as e:
            cache[sub] = e
    return cache[sub]


__all__ = ["feature_block", "feature_path", "power_code", "power_states", "region_skus", "sku_block"]
