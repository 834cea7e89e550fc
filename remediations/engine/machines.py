"""What the reader learns about VMs besides their bodies: power states, as ComputeRP offers them in bulk.

A VM list may not expand the instance view without a `$filter` (ComputeRP virtualMachine.json, VirtualMachines_List
and _ListAll, `$expand`: "this can only be specified if a valid $filter option is specified"; Azure answers 400
BadRequest otherwise). The documented bulk read of power states is `statusOnly=true` on the subscription's list
(VirtualMachines_ListAll). It has no resource-group form, so a group's VMs are read one instance view each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from remediations.azure import Azure, as_body, translated
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


__all__ = ["power_code", "power_states"]
