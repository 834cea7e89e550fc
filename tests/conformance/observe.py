"""How test_shapes.py replays a recording into the sandbox and observes its answer (`observe`): the recorded
resources made through ARM as the admin from the recorded bodies (read-only fields dropped, the recorded subscription
and tenant replaced by the sandbox's), the recorded request sent at the RECORDED api-version, the two bodies' shapes
compared (shapes.py)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import httpx

from sandbox.arm import ArmError
from tests.conformance.shapes import differences

ROOT = Path(__file__).parent / "recordings"
RECORDINGS = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("*/*.json"))

# Creation api-versions (the sandbox's defaults): the write is only how the resource comes to exist.
WRITE_API = {
    "Microsoft.KeyVault/vaults": "2026-05-15",
    "Microsoft.Compute/disks": "2026-03-02",
    "Microsoft.Compute/diskEncryptionSets": "2026-03-02",
    "Microsoft.Compute/virtualMachines": "2026-04-01",
    "Microsoft.Compute/snapshots": "2026-03-02",
    "Microsoft.Compute/virtualMachines/extensions": "2026-04-01",
    "Microsoft.Compute/virtualMachineScaleSets": "2026-04-01",
    "Microsoft.Insights/diagnosticSettings": "2021-05-01-preview",
}
EXT, VM = "Microsoft.Compute/virtualMachines/extensions", "Microsoft.Compute/virtualMachines"
ANY_EXTENSION = {
    "properties": {"publisher": "Microsoft.Azure.Extensions", "type": "CustomScript", "typeHandlerVersion": "2.1"}
}
TOP_READ_ONLY = {"id", "name", "type", "etag"}
READ_ONLY = {
    "systemData",
    "managedBy",
    "managedByExtended",
    "resources",
    "vaultUri",
    "provisioningState",
    "hsmPoolResourceId",
    "timeCreated",
    "uniqueId",
    "diskState",
    "diskSizeBytes",
    "vmId",
    "instanceView",
    "principalId",
    "clientId",
    "lastKeyRotationTimestamp",
    "autoKeyRotationError",
    "previousKeys",
    "timeCreatedByUser",
    "LastOwnershipUpdateTime",
    "supportedCapabilities",
    "propertyUpdatesInProgress",
}
# Top-level keys that depend on the data, not on the contract (a list's paging link).
IGNORE = ("$.nextLink",)
_SUB = re.compile(r"(?i)(/subscriptions/)([0-9a-f-]{36})")


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((ROOT / name).read_text()))


# -- replaying a recording ----------------------------------------------------------------------------------------


class NotServed(Exception):
    """The sandbox does not model this resource type (yet)."""


class Replayer:
    def __init__(self, sandbox: Any, rec: dict[str, Any]) -> None:
        self.sandbox, self.rec = sandbox, rec
        self.sb = sandbox.running.sandbox
        self.sub = sandbox.subscription_id
        m = _SUB.search(rec["request"]["path"])
        self.recorded_sub = m.group(2) if m else None
        self.key_urls: dict[str, str] = {}
        self.principals: dict[str, str] = {}

    # substitution
    def fix(self, obj: Any, key: str | None = None) -> Any:
        if isinstance(obj, dict):
            return {k: self.fix(v, k) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.fix(v, key) for v in obj]
        if isinstance(obj, str):
            if key == "tenantId":
                return self.sandbox.tenant_id
            if self.recorded_sub:
                obj = re.sub(rf"(?i){self.recorded_sub}", self.sub, obj)
            for old, new in self.key_urls.items():
                obj = obj.replace(old, new)
        return obj

    def arm(self, method: str, path: str, body: Any = None, *, api: str) -> Any:
        from sandbox import scenarios

        return scenarios.arm(self.sb, method, path, body, api_version=api)

    def group(self, rid: str, location: str) -> None:
        m = re.match(r"(?i)(/subscriptions/[^/]+/resourceGroups/[^/]+)", rid)
        assert m, rid
        if self.sb.state.get(m.group(1)) is None:
            self.arm("PUT", m.group(1), {"location": location}, api="2025-04-01")

    @staticmethod
    def writable(body: dict[str, Any]) -> dict[str, Any]:
        def strip(obj: Any, depth: int) -> Any:
            if isinstance(obj, dict):
                return {k: strip(v, depth + 1) for k, v in obj.items() if not (k in READ_ONLY and depth <= 2)}
            if isinstance(obj, list):
                return [strip(v, depth) for v in obj]
            return obj

        out = {k: v for k, v in body.items() if k not in READ_ONLY | TOP_READ_ONLY and v is not None}
        if isinstance(out.get("properties"), dict):
            out["properties"] = strip(out["properties"], 1)
        if isinstance(out.get("identity"), dict):
            ident = {k: v for k, v in out["identity"].items() if k not in READ_ONLY}
            if "userAssignedIdentities" in ident:
                ident["userAssignedIdentities"] = {k: {} for k in ident["userAssignedIdentities"]}
            out["identity"] = ident
        return out

    # making one recorded resource
    def make(self, item: dict[str, Any]) -> None:
        rid = self.fix(item["id"])
        if not rid.startswith("/"):
            rid = "/" + rid
        rtype = str(item.get("type") or "")
        if not rtype and "/providers/microsoft.insights/diagnosticsettings/" in rid.lower():
            rtype = "Microsoft.Insights/diagnosticSettings"  # 2017-05-01-preview answers "type": null
        body = self.fix(self.writable(copy.deepcopy(item)))
        lower = rtype.lower()
        if lower == "microsoft.insights/diagnosticsettings":
            parent = rid.lower().rsplit("/providers/microsoft.insights/", 1)[0]
            if "/resourcegroups/" in parent:
                self.group(parent, "westus")
                ptype = re.search(r"/providers/([^/]+/[^/]+)/[^/]+$", rid[: len(parent)])
                assert ptype, rid
                self.sb.state.put(
                    {"id": rid[: len(parent)], "name": parent.rsplit("/", 1)[1], "type": ptype.group(1)}
                    | {"location": "westus"}
                )
            workspace = (body.get("properties") or {}).get("workspaceId")
            if workspace:  # the recorded setting's workspace exists (the sandbox checks the linked resource)
                self.group(workspace, "westus")
                name = workspace.rsplit("/", 1)[1]
                self.sb.state.put(
                    {"id": workspace, "name": name, "type": "Microsoft.OperationalInsights/workspaces"}
                    | {"location": "westus"}
                )
            body.pop("location", None)
        elif lower in ("microsoft.keyvault/vaults", "microsoft.compute/disks", "microsoft.compute/virtualmachines"):
            self.group(rid, item.get("location", "westus"))
            des_id = ((body.get("properties") or {}).get("encryption") or {}).get("diskEncryptionSetId")
            if lower == "microsoft.compute/disks" and des_id:  # a disk's set exists before it
                self.des(des_id, item.get("location", "westus"))
        elif lower == "microsoft.compute/diskencryptionsets":
            self.group(rid, item.get("location", "westus"))
            self.des_key(item)
            body = self.fix(self.writable(copy.deepcopy(item)))
        elif lower == "microsoft.compute/snapshots":
            self.group(rid, item.get("location", "westus"))
            self.snapshot_source(item)
        elif lower == "microsoft.authorization/roleassignments":
            return  # see make_role_assignments
        elif lower == "microsoft.compute/virtualmachinescalesets":
            self.group(rid, item.get("location", "westus"))
            storage = (body.get("properties", {}).get("virtualMachineProfile") or {}).get("storageProfile") or {}
            for disk in [storage.get("osDisk") or {}, *storage.get("dataDisks", [])]:
                des_id = ((disk.get("managedDisk") or {}).get("diskEncryptionSet") or {}).get("id")
                if des_id:  # the model's disk encryption sets exist before it (DiskRP refuses a set it cannot find)
                    self.des(des_id, item.get("location", "westus"))
            if "encryptionAtHost" in (
                (body.get("properties", {}).get("virtualMachineProfile") or {}).get("securityProfile") or {}
            ):
                from sandbox.providers import features

                features.set_registered(self.sb.state, self.sub, "Microsoft.Compute", "EncryptionAtHost", 0.0)
        elif lower == "microsoft.compute/virtualmachines/extensions":
            self.extension_vm(rid.rsplit("/extensions/", 1)[0], item.get("location", "westus"))
        elif lower == "microsoft.compute/virtualmachinescalesets/virtualmachines":
            return  # see scale_set_of
        else:
            raise NotServed(rtype)
        api = WRITE_API.get(next((k for k in WRITE_API if k.lower() == lower), ""), "")
        if lower == "microsoft.keyvault/vaults":  # made at the recorded api-version: defaults depend on it
            api = self.rec["request"]["apiVersion"]
        if lower == "microsoft.compute/virtualmachines":
            self.vm_prerequisites(body)
        self.arm("PUT", rid, body, api=api)
        for ext in item.get("resources") or [] if lower == "microsoft.compute/virtualmachines" else []:
            # a VM's extensions, as recorded (a list gives only their ids: any extension will do)
            ext_body = self.fix(self.writable(copy.deepcopy(ext))) if ext.get("properties") else ANY_EXTENSION
            self.arm("PUT", self.fix(ext["id"]), ext_body, api=WRITE_API[EXT])

    def extension_vm(self, vm_id: str, location: str) -> None:
        """The VM a recorded extension belongs to, made for it when the recording has none."""
        if self.sb.state.get(vm_id) is not None:
            return
        self.group(vm_id, location)
        os_disk = {"createOption": "FromImage", "osType": "Linux", "managedDisk": {}}
        props = {"hardwareProfile": {"vmSize": "Standard_D2s_v5"}, "storageProfile": {"osDisk": os_disk}}
        self.arm("PUT", vm_id, {"location": location, "properties": props}, api=WRITE_API[VM])

    def des_key(self, item: dict[str, Any]) -> None:
        """The DES's vault and key, made in the sandbox; the recorded versioned key URL maps to the sandbox's."""
        active = item["properties"]["activeKey"]
        vault_id = self.fix(active["sourceVault"]["id"])
        key_name = active["keyUrl"].split("/keys/", 1)[1].split("/")[0]
        self.group(vault_id, item.get("location", "westus"))
        self.arm(
            "PUT",
            vault_id,
            {
                "location": item.get("location", "westus"),
                "properties": {
                    "tenantId": self.sandbox.tenant_id,
                    "sku": {"family": "A", "name": "standard"},
                    "enablePurgeProtection": True,
                    "enabledForDiskEncryption": True,
                },
            },
            api=WRITE_API["Microsoft.KeyVault/vaults"],
        )
        key = self.arm("PUT", f"{vault_id}/keys/{key_name}", {"properties": {"kty": "RSA"}}, api="2026-05-15")
        self.key_urls[active["keyUrl"]] = key["properties"]["keyUriWithVersion"]

    def snapshot_source(self, item: dict[str, Any]) -> None:
        """A recorded snapshot's source disk, with the snapshot's encryption (and its set, vault and key, the set's
        identity allowed to use the key), made first."""
        props, location = item["properties"], item.get("location", "westus")
        encryption = self.fix(props.get("encryption") or {})
        des_id = encryption.get("diskEncryptionSetId")
        if des_id:
            self.des(des_id, location)
        source = self.fix(props["creationData"].get("sourceResourceId") or "")
        if source and self.sb.state.get(source) is None:
            self.group(source, location)
            disk = {"creationData": {"createOption": "Empty"}, "diskSizeGB": props.get("diskSizeGB", 32)}
            self.arm(
                "PUT",
                source,
                {"location": location, "properties": disk | ({"encryption": encryption} if encryption else {})},
                api=WRITE_API["Microsoft.Compute/disks"],
            )

    def des(self, des_id: str, location: str) -> None:
        """A disk encryption set a recorded resource names (unless made already): its vault and key first, its
        system identity allowed to use the key (Key Vault Crypto Service Encryption User on the vault)."""
        des_id = self.fix(des_id)
        if self.sb.state.get(des_id) is not None:
            return
        self.group(des_id, location)
        vault_id = des_id.split("/providers/")[0] + "/providers/Microsoft.KeyVault/vaults/kv-recorded"
        url = "https://recorded.vault.azure.net/keys/recorded/0"
        if url not in self.key_urls or self.sb.state.get(self.fix(vault_id)) is None:
            self.des_key(
                {"location": location, "properties": {"activeKey": {"sourceVault": {"id": vault_id}, "keyUrl": url}}}
            )
        active = {"sourceVault": {"id": vault_id}, "keyUrl": self.key_urls[url]}
        des = self.arm(
            "PUT",
            des_id,
            {"location": location, "identity": {"type": "SystemAssigned"}, "properties": {"activeKey": active}},
            api=WRITE_API["Microsoft.Compute/diskEncryptionSets"],
        )
        from sandbox import rbac, scenarios

        principal = self.sb.directory.by_object_id(des["identity"]["principalId"])
        scenarios.assign(self.sb, vault_id, principal, rbac.ROLES["Key Vault Crypto Service Encryption User"])

    def scale_set_of(self, instances: list[dict[str, Any]]) -> None:
        """A recorded instance list's scale set, made from its instances: as many as were listed, their size, image
        and disks as the model (names and ids dropped: Azure makes those per instance), upgrade policy Automatic
        (every listed instance runs the latest model)."""
        first = instances[0]
        vmss_id = self.fix(first["id"]).rsplit("/virtualMachines/", 1)[0]
        location = first.get("location", "westus")
        self.group(vmss_id, location)
        props = first["properties"]

        def model_disk(disk: dict[str, Any]) -> dict[str, Any]:
            out = {k: v for k, v in disk.items() if k not in ("name", "toBeDetached")}
            out["managedDisk"] = {k: v for k, v in (disk.get("managedDisk") or {}).items() if k != "id"}
            return out

        storage = props["storageProfile"]
        image = {k: v for k, v in storage["imageReference"].items() if k != "exactVersion"}
        model = {
            "storageProfile": {
                "imageReference": image,
                "osDisk": model_disk(storage["osDisk"]),
                "dataDisks": [model_disk(d) for d in storage.get("dataDisks", [])],
            },
            "osProfile": {"computerNamePrefix": "vmss"}
            | {k: v for k, v in props["osProfile"].items() if k not in ("computerName", "requireGuestProvisionSignal")},
            "networkProfile": props.get("networkProfileConfiguration") or {},
        }
        body = {
            "location": location,
            "tags": first.get("tags") or {},
            "sku": {**first["sku"], "capacity": len(instances)},
            "properties": {"upgradePolicy": {"mode": "Automatic"}, "virtualMachineProfile": model},
        }
        self.arm("PUT", vmss_id, self.fix(body), api=WRITE_API["Microsoft.Compute/virtualMachineScaleSets"])

    def vm_prerequisites(self, body: dict[str, Any]) -> None:
        """A recorded VM's managed disks are created with it (FromImage); attached ones are made first."""
        storage = body.get("properties", {}).get("storageProfile", {})
        location = body.get("location", "westus")
        if "encryptionAtHost" in (body.get("properties", {}).get("securityProfile") or {}):
            from sandbox.providers import features

            # Microsoft Learn's prerequisite for naming encryptionAtHost: the subscription registered the feature
            features.set_registered(self.sb.state, self.sub, "Microsoft.Compute", "EncryptionAtHost", 0.0)
        for disk in [storage.get("osDisk") or {}, *storage.get("dataDisks", [])]:
            md = disk.get("managedDisk") or {}
            if (md.get("diskEncryptionSet") or {}).get("id"):  # the disks' sets exist before the VM
                self.des(md["diskEncryptionSet"]["id"], location)
            if md.get("id") and disk.get("createOption") in ("FromImage", "Empty"):
                md.pop("id")  # made with the VM, as Azure does
            if md.get("id") and disk.get("createOption") == "Attach":
                self.group(md["id"], location)
                self.arm(
                    "PUT",
                    md["id"],
                    {"location": location, "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 32}},
                    api=WRITE_API["Microsoft.Compute/disks"],
                )

    def make_role_assignment(self) -> None:
        """One assignment at the subscription made through ARM (the empty scenario already has two)."""
        import uuid

        from sandbox import rbac

        sub = f"/subscriptions/{self.sub}"
        p = self.sandbox.principal("reader")
        self.arm(
            "PUT",
            f"{sub}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
            {
                "properties": {
                    "roleDefinitionId": f"{sub}/providers/Microsoft.Authorization/roleDefinitions/"
                    f"{rbac.ROLES['Key Vault Reader']}",
                    "principalId": p.object_id,
                    "principalType": "User",
                }
            },
            api="2022-04-01",
        )
        # and, as in the recording, assignments inherited from a management group above the subscription and the root
        from sandbox import scenarios
        from sandbox.providers import management_groups as mg

        sb = self.sandbox.running.sandbox
        mg.add_group(sb.state, "conformance-group")
        mg.place(sb.state, self.sub, "conformance-group")
        scenarios.assign(sb, mg.group_id("conformance-group"), p, rbac.ROLES["Reader"])
        scenarios.assign(sb, "/", p, rbac.ROLES["Reader"])

    def role_assignment_scope(self) -> None:
        """A recorded role-assignment PUT at a vault's scope: the vault (bare) is made first, and the recorded
        principal is replaced by a sandbox one (the PUT checks that it exists)."""
        scope = self.fix(self.rec["request"]["path"]).split("/providers/Microsoft.Authorization/", 1)[0]
        self.group(scope, "westus")
        if "/providers/" in scope:
            self.arm(
                "PUT",
                scope,
                {
                    "location": "westus",
                    "properties": {"tenantId": self.sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}},
                },
                api=WRITE_API["Microsoft.KeyVault/vaults"],
            )
        recorded = self.rec["body"]["properties"]
        kind = "reader" if recorded["principalType"] == "User" else "bot"  # a sandbox principal of the recorded type
        self.principals[recorded["principalId"]] = self.sandbox.principal(kind).object_id

    # the request under test: a GET, or a recorded PUT sent again with the recorded body's writable part
    def get(self) -> tuple[int, Any]:
        req = self.rec["request"]
        path = self.fix(req["path"])
        body = None
        if req["method"] == "PUT":
            body = self.fix(self.writable(copy.deepcopy(self.rec["body"])))
            if "/roleassignments/" in path.lower():  # what `az role assignment create` sends (recorded beside it)
                recorded = self.rec["body"]["properties"]
                sent = (
                    "roleDefinitionId",
                    "principalId",
                    "principalType",
                    "condition",
                    "conditionVersion",
                    "description",
                )
                body = self.fix({"properties": {k: recorded[k] for k in sent if recorded.get(k) is not None}})
            for old, new in self.principals.items():
                body = json.loads(json.dumps(body).replace(old, new))
        token = self.sandbox.credential("admin").get_token("https://management.azure.com/.default").token
        with httpx.Client(verify=self.sandbox.ssl, timeout=30) as client:
            r = client.request(
                req["method"],
                f"{self.sandbox.base_url}{path}",
                params={**req.get("query", {}), "api-version": req["apiVersion"]},
                headers={"Authorization": f"Bearer {token}"},
                json=body,
            )
        return r.status_code, (r.json() if r.content else None)


def data_plane(sandbox: Any, rec: dict[str, Any]) -> tuple[int, Any]:
    """A recorded Key Vault data-plane request (`/keys/{name}/...`) sent to a sandbox vault's own origin: the vault
    (access policies, the admin allowed every key operation) and the key are made first; a rotation policy GET, or
    a rotate, follows a PUT of the rotation policy recorded in the same cassette (as it did there)."""
    from sandbox.providers.keyvault import vault_uri

    r = Replayer(sandbox, rec)
    group = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-shapes"
    vault = f"{group}/providers/Microsoft.KeyVault/vaults/kvshapes"
    r.group(vault, "westus")
    admin = sandbox.principal("admin").object_id
    r.arm(
        "PUT",
        vault,
        {
            "location": "westus",
            "properties": {
                "tenantId": sandbox.tenant_id,
                "sku": {"family": "A", "name": "standard"},
                "enableRbacAuthorization": False,
                "accessPolicies": [
                    {"tenantId": sandbox.tenant_id, "objectId": admin, "permissions": {"keys": ["all"]}}
                ],
            },
        },
        api=WRITE_API["Microsoft.KeyVault/vaults"],
    )
    req = rec["request"]
    key = req["path"].split("/")[2]
    origin = vault_uri(r.sb, "kvshapes").rstrip("/")
    token = sandbox.credential("admin").get_token("https://vault.azure.net/.default").token
    params = {"api-version": req["apiVersion"]}
    policy = next(
        (
            load(n)["body"]
            for n in RECORDINGS
            if n.startswith("keyvault/")
            and load(n)["source"]["path"] == rec["source"]["path"]
            and load(n)["request"]["path"].endswith("/rotationpolicy")
        ),
        None,
    )
    with httpx.Client(verify=sandbox.ssl, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        made = client.post(f"{origin}/keys/{key}/create", params=params, json={"kty": "RSA"})
        if made.status_code != 200:
            return made.status_code, made.json()
        if policy is not None:
            writable = {
                "lifetimeActions": policy["lifetimeActions"],
                "attributes": {"expiryTime": policy["attributes"]["expiryTime"]},
            }
            client.put(f"{origin}/keys/{key}/rotationpolicy", params=params, json=writable)
        answer = client.request(req["method"], f"{origin}{req['path']}", params=params)
    return answer.status_code, (answer.json() if answer.content else None)


def observe(sandbox: Any, name: str) -> list[str]:
    """The shape differences between the recording and the sandbox's answer to the same request."""
    rec = load(name)
    body = rec["body"]
    if rec["request"]["path"].startswith("/keys/"):
        status, answer = data_plane(sandbox, rec)
        if status != rec["status"]:
            code = (answer or {}).get("error", {}).get("code") if isinstance(answer, dict) else None
            return [f"status {rec['status']} -> {status} {code}"]
        return differences(body, answer, ignore=IGNORE)
    items = body["value"] if isinstance(body, dict) and isinstance(body.get("value"), list) else [body]
    r = Replayer(sandbox, rec)
    try:
        if "/roleassignments" in rec["request"]["path"].lower() and rec["request"]["method"] == "PUT":
            r.role_assignment_scope()
        elif "/roleassignments" in rec["request"]["path"].lower():
            r.make_role_assignment()
        if str(items[0].get("type", "")).lower() == "microsoft.compute/virtualmachinescalesets/virtualmachines":
            r.scale_set_of(items)
        for item in items:
            r.make(item)
    except ArmError as e:
        return [f"creating the recorded resource -> {e.status} {e.code}"]
    status, answer = r.get()
    if status != rec["status"]:
        code = (answer or {}).get("error", {}).get("code") if isinstance(answer, dict) else None
        return [f"status {rec['status']} -> {status} {code}"]
    return differences(body, answer, ignore=IGNORE)
