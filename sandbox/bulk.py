"""Estates of many subscriptions, built fast: `POST /_sandbox/estate {"subscriptions": 100, "perSubscription": 1000}`.

One resource of each kind (a resource group, a vault, a key, a disk encryption set, a disk, a VM) is made through
ARM's own handler in a template subscription (validation, defaults and shapes exactly as a PUT leaves them); every
other resource is a copy of its template with the names and ids rewritten, put straight into the state. That is
what makes 100 subscriptions x 1,000 resources take seconds rather than the minutes 100,000 PUTs would: the copies
have no operations log entries and no vault data-plane listeners (a bulk estate is for inventory and evaluation,
not for events or key reads). Per subscription: 4 groups; of the resources 40 % disks, 30 % vaults, 20 % VMs (each
on one of the disks), 10 % disk encryption sets; every fourth vault has purge protection, every other disk a
customer-managed key set.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from sandbox.scenarios import COMPUTE_API, KV_API, RES_API, VM_API, Step, add_subscription, play

if TYPE_CHECKING:
    from sandbox.server import Sandbox

__all__ = ["estate"]

GROUPS = 4
MIX = (("disk", 4), ("vault", 3), ("vm", 2), ("des", 1))  # tenths of each subscription's resources


def subscription_id(n: int) -> str:
    return str(uuid.UUID(int=0xE57A7E << 96 | n))


def _templates(sb: Sandbox, sub: str) -> dict[str, dict[str, Any]]:
    group = f"/subscriptions/{sub}/resourceGroups/rg-bulk-0"
    vault = f"{group}/providers/Microsoft.KeyVault/vaults/kvbulktmpl"
    key = f"{vault}/keys/deskey"
    des = f"{group}/providers/Microsoft.Compute/diskEncryptionSets/desbulktmpl"
    disk = f"{group}/providers/Microsoft.Compute/disks/diskbulktmpl"
    vm = f"{group}/providers/Microsoft.Compute/virtualMachines/vmbulktmpl"
    tenant = sb.state.tenant_id
    sku = {"family": "A", "name": "standard"}
    vault_props = {"tenantId": tenant, "sku": sku, "accessPolicies": [], "enableRbacAuthorization": True}

    def des_body(answers: dict[str, Any]) -> dict[str, Any]:
        url = answers[key]["properties"]["keyUriWithVersion"]
        props = {
            "activeKey": {"sourceVault": {"id": vault}, "keyUrl": url},
            "encryptionType": "EncryptionAtRestWithCustomerKey",
        }
        return {"location": "westeurope", "identity": {"type": "SystemAssigned"}, "properties": props}

    disk_props = {"creationData": {"createOption": "Empty"}, "diskSizeGB": 32, "osType": "Linux"}
    storage = {"osDisk": {"osType": "Linux", "createOption": "Attach", "managedDisk": {"id": disk}}, "dataDisks": []}
    play(
        sb,
        [
            Step("PUT", group, RES_API, {"location": "westeurope"}),
            Step("PUT", vault, KV_API, {"location": "westeurope", "properties": vault_props}),
            Step("PUT", key, KV_API, {"properties": {"kty": "RSA", "keySize": 2048}}),
            Step("PUT", des, COMPUTE_API, des_body),
            Step(
                "PUT",
                disk,
                COMPUTE_API,
                {"location": "westeurope", "sku": {"name": "Premium_LRS"}, "properties": disk_props},
            ),
            Step(
                "PUT",
                vm,
                VM_API,
                {
                    "location": "westeurope",
                    "properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5"}, "storageProfile": storage},
                },
            ),
        ],
    )
    out = {}
    for kind, rid in (("group", group), ("vault", vault), ("des", des), ("disk", disk), ("vm", vm)):
        body = sb.state.get(rid)
        assert body is not None
        out[kind] = body
    for rid in (vault, des, disk, vm):
        sb.state.remove(rid)
    sb.state.remove(key)
    sb.state.remove(group)
    return out


def estate(sb: Sandbox, subscriptions: int, per_subscription: int) -> dict[str, Any]:
    """`subscriptions` new subscriptions (ids from subscription_id(n)) of `per_subscription` resources each; the
    administrator is Owner at each."""
    from sandbox.rbac import ROLES
    from sandbox.scenarios import assign

    admin = sb.directory.named("admin")
    subs = [subscription_id(n) for n in range(subscriptions)]
    for n, sub in enumerate(subs):
        add_subscription(sb, sub, f"Bulk {n:04}")
        assign(sb, f"/subscriptions/{sub}", admin, ROLES["Owner"])
    if not subs:
        return {"subscriptions": [], "resources": 0}
    templates = _templates(sb, subs[0])
    texts = {kind: json.dumps(body) for kind, body in templates.items()}
    tmpl_sub, names = (
        subs[0],
        {
            "vault": "kvbulktmpl",
            "des": "desbulktmpl",
            "disk": "diskbulktmpl",
            "vm": "vmbulktmpl",
        },
    )
    made = 0
    for n, sub in enumerate(subs):
        for g in range(GROUPS):
            _clone(sb, texts["group"], [(tmpl_sub, sub), ("rg-bulk-0", f"rg-bulk-{g}")])
        counts = {kind: per_subscription * tenths // 10 for kind, tenths in MIX}
        counts["disk"] += per_subscription - sum(counts.values())
        for kind, count in counts.items():
            for i in range(count):
                name = f"{names[kind][:-4]}{i:05}"
                pairs = [(tmpl_sub, sub), ("rg-bulk-0", f"rg-bulk-{i % GROUPS}"), (names[kind], name)]
                if kind == "vm":  # each VM on the disk of its number
                    pairs.append(("diskbulktmpl", f"diskbulk{i:05}"))
                if kind == "des":  # each set on the key of the vault of its number
                    pairs.append(("kvbulktmpl", f"kvbulk{i:05}"))
                body = _clone(sb, texts[kind], pairs)
                props = body["properties"]
                if kind == "vault":
                    props["vaultUri"] = f"https://{name}s{n:03}.vault.azure.net/"  # no data plane; unique as in Azure
                    props.pop("enablePurgeProtection", None)
                    if i % 4 == 0:
                        props["enablePurgeProtection"] = True
                if kind == "des":
                    version = props["activeKey"]["keyUrl"].rsplit("/", 1)[1]
                    props["activeKey"]["keyUrl"] = f"https://kvbulk{i:05}s{n:03}.vault.azure.net/keys/deskey/{version}"
                if kind == "disk":
                    body.pop("managedBy", None)
                    if i < counts["vm"]:
                        body["managedBy"] = f"/subscriptions/{sub}/resourceGroups/rg-bulk-{i % GROUPS}/providers/"
                        body["managedBy"] += f"Microsoft.Compute/virtualMachines/vmbulk{i:05}"
                if kind == "disk" and i % 2 == 0:
                    props["encryption"] = {
                        "type": "EncryptionAtRestWithCustomerKey",
                        "diskEncryptionSetId": f"/subscriptions/{sub}/resourceGroups/rg-bulk-0/providers/"
                        "Microsoft.Compute/diskEncryptionSets/desbulk00000",
                    }
                made += 1
    return {"subscriptions": subs, "resources": made}


def _clone(sb: Sandbox, text: str, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    for old, new in pairs:
        text = text.replace(old, new)
    return sb.state.put(json.loads(text))
