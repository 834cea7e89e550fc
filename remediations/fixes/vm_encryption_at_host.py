"""Turn on encryption at host for a VM: temporary disks and caches get encrypted too. Needs the VM deallocated.

Never on a VM with Azure Disk Encryption (the two are mutually exclusive) or of a size without support for it;
the advisor decides both: support from Azure's Resource SKUs capability `EncryptionAtHostSupported` (the seed's
comparison table when the SKU list could not be read).

Azure refuses `securityProfile.encryptionAtHost` until the subscription's `Microsoft.Compute/EncryptionAtHost` feature
is Registered (Microsoft Learn, "Use the Azure portal to enable end-to-end encryption using encryption at host":
"You must enable the feature for your subscription before you can use encryption at host"). So, by the feature's
state as the reader found it (`cryptward.encryptionAtHostFeature`):

- Registered: the VM's change;
- Registering or Pending: nothing yet, and the finding says what it waits for (a VM is never asked to stop for a
  change Azure would refuse);
- not registered: first the subscription's registration (a person approves it: it changes what every VM of the
  subscription may do), then the VM's change, which waits for it;
- not read: nothing (never act on what could not be read).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.changes import APPROVAL, DEALLOCATED, Change, Operation, PlanContext, Ref, SkipReason
from remediations.engine.advisor import advise
from remediations.errors import FixDeclined
from remediations.fixes import register
from remediations.resources import VM_API, cryptward, get, name_of, vm_ade_trace

PROPERTY = "properties.securityProfile.encryptionAtHost"
FEATURE_API = "2021-07-01"  # Microsoft.Features, features.json stable/2021-07-01
STATE = "properties.state"
WAITING = ("registering", "pending")


def feature_id(vm_id: str) -> str:
    sub = vm_id.split("/")[2]
    return f"/subscriptions/{sub}/providers/Microsoft.Features/providers/Microsoft.Compute/features/EncryptionAtHost"


def registration(vm_id: str, feature: Mapping[str, Any]) -> Change | None:
    """The subscription's feature registration the VM's change waits for; None when it is Registered. Raises
    FixDeclined when it is registering, or was not read."""
    sub = vm_id.split("/")[2]
    state = str(feature.get("state") or "")
    if not state:
        why = feature.get("unreadable") or "it was not read"
        raise FixDeclined(
            SkipReason.CANNOT_READ, f"the EncryptionAtHost feature's state of subscription {sub} is unknown: {why}"
        )
    if state.lower() == "registered":
        return None
    if state.lower() in WAITING:
        raise FixDeclined(
            SkipReason.BLOCKED,
            f"Encryption at host waits for the EncryptionAtHost feature of subscription {sub} to finish registering "
            f"(its state is {state}): Azure refuses encryption at host until it is Registered, so VM "
            f"{name_of(vm_id)} is not asked to stop before then.",
        )
    fid = feature_id(vm_id)
    return Change(
        resource_id=vm_id,
        summary=(
            f"Register the EncryptionAtHost feature (Microsoft.Compute) on subscription {sub}, which Azure requires "
            "before any VM there may use encryption at host; registering takes a few minutes."
        ),
        operation=Operation("POST", f"{fid}/register", FEATURE_API, {}, read_path=fid),
        before={STATE: state},
        after={STATE: "Registering"},
        requires=(APPROVAL,),
    )


@register("vm-encryption-at-host")
def plan(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    vm_id, name = str(resource["id"]), name_of(str(resource["id"]))
    ade = vm_ade_trace(resource)
    if ade:
        raise FixDeclined(SkipReason.ADE_HISTORY, f"{ade}; encryption at host and ADE cannot be combined")
    advice = advise(resource, cryptward(resource, "disks") or [], capabilities=cryptward(resource, "skuCapabilities"))
    if not advice.eah.available:
        raise FixDeclined(SkipReason.UNSUPPORTED, " ".join(advice.eah.reasons))
    first = registration(vm_id, cryptward(resource, "encryptionAtHostFeature") or {})
    body = {"properties": {"securityProfile": {"encryptionAtHost": True}}}
    change = Change(
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
        # the registration is this fix's other change on the same VM
        needs=(Ref(vm_id, "vm-encryption-at-host"),) if first else (),
    )
    return [change] if first is None else [first, change]
