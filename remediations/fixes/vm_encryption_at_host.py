"""Turn on encryption at host for a VM: temporary disks and caches get encrypted too. Needs the VM deallocated.

Never on a VM with Azure Disk Encryption (the two are mutually exclusive) or of a size without support for it;
the advisor decides both: support from Azure's Resource SKUs capability `EncryptionAtHostSupported` (the seed's
comparison table when the SKU list could not be read).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.changes import APPROVAL, DEALLOCATED, Change, Operation, PlanContext, SkipReason
from remediations.engine.advisor import advise
from remediations.errors import FixDeclined
from remediations.fixes import register
from remediations.resources import VM_API, cryptward, get, name_of, vm_ade_trace

PROPERTY = "properties.securityProfile.encryptionAtHost"


@register("vm-encryption-at-host")
def plan(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    vm_id, name = str(resource["id"]), name_of(str(resource["id"]))
    ade = vm_ade_trace(resource)
    if ade:
        raise FixDeclined(SkipReason.ADE_HISTORY, f"{ade}; encryption at host and ADE cannot be combined")
    advice = advise(resource, cryptward(resource, "disks") or [], capabilities=cryptward(resource, "skuCapabilities"))
    if not advice.eah.available:
        raise FixDeclined(SkipReason.UNSUPPORTED, " ".join(advice.eah.reasons))
    body = {"properties": {"securityProfile": {"encryptionAtHost": True}}}
    return [
        Change(
            resource_id=vm_id,
            summary=(
                f"Turn on encryption at host for VM {name}, so that its temporary disk and disk caches are "
                "encrypted too; the VM must be deallocated for this, which stops it."
            ),
            operation=Operation("PATCH", vm_id, VM_API, body),
            before={PROPERTY: get(resource, PROPERTY)},
            after={PROPERTY: True},
            disruptive=True,
            requires=(APPROVAL, DEALLOCATED),
        )
    ]
