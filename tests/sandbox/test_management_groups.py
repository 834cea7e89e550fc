"""Management groups in the sandbox: the hierarchy (GET, list, descendants), role assignments inherited from groups
and the root in lists and in RBAC checks (ARM and data planes), and role assignments that data planes honour only
once propagated."""

import uuid

import httpx
import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from sandbox import scenarios
from sandbox.providers import management_groups as mg
from sandbox.rbac import ROLES

API = "2021-04-01"
RG, LOC = "rg-mg", "westeurope"
CMK = "EncryptionAtRestWithCustomerKey"
CSEU = ROLES["Key Vault Crypto Service Encryption User"]


def _sb(sandbox):
    return sandbox.running.sandbox


def _get(sandbox, path, who="admin", **params):
    token = sandbox.credential(who).get_token("https://management.azure.com/.default").token
    params.setdefault("api-version", API)
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{sandbox.base_url}{path}", params=params, headers=headers, verify=sandbox.ssl)


@pytest.fixture
def tree(sandbox):
    """root -> corp -> (landing -> the subscription), and a sibling group `lab` with no subscription."""
    sb = _sb(sandbox)
    mg.add_group(sb.state, "corp", "Corp")
    mg.add_group(sb.state, "landing", "Landing zones", parent="corp")
    mg.add_group(sb.state, "lab", "Lab")
    mg.place(sb.state, sandbox.subscription_id, "landing")
    scenarios.assign(sb, "/", sb.directory.named("admin"), ROLES["Reader"])  # to read the hierarchy
    return sb


def test_groups_get_with_children_list_and_descendants_as_the_spec_examples(sandbox, tree):
    tenant = sandbox.tenant_id
    r = _get(sandbox, "/providers/Microsoft.Management/managementGroups/corp", **{"$expand": "children"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["id"], body["type"], body["name"]) == (mg.group_id("corp"), mg.GROUP_TYPE, "corp")
    assert body["properties"]["tenantId"] == tenant and body["properties"]["displayName"] == "Corp"
    assert body["properties"]["details"]["parent"]["id"] == mg.group_id(tenant)
    assert [c["name"] for c in body["properties"]["children"]] == ["landing"]
    r = _get(sandbox, "/providers/Microsoft.Management/managementGroups/landing", **{"$expand": "children"})
    (child,) = r.json()["properties"]["children"]
    assert (child["type"], child["name"]) == ("/subscriptions", sandbox.subscription_id)
    listed = _get(sandbox, "/providers/Microsoft.Management/managementGroups").json()["value"]
    assert {g["name"] for g in listed} == {tenant, "corp", "landing", "lab"}
    assert set(listed[0]) == {"id", "type", "name", "properties"}
    r = _get(sandbox, f"/providers/Microsoft.Management/managementGroups/{tenant}/descendants")
    found = {d["name"]: d["properties"]["parent"]["id"] for d in r.json()["value"]}
    assert found == {
        "corp": mg.group_id(tenant),
        "lab": mg.group_id(tenant),
        "landing": mg.group_id("corp"),
        sandbox.subscription_id: mg.group_id("landing"),
    }
    assert _get(sandbox, "/providers/Microsoft.Management/managementGroups/nope").status_code == 404


def _list(sandbox, scope, flt=None):
    params = {"api-version": "2022-04-01"} | ({"$filter": flt} if flt else {})
    r = _get(sandbox, f"{scope}/providers/Microsoft.Authorization/roleAssignments", **params)
    assert r.status_code == 200, r.text
    return {a["properties"]["scope"] for a in r.json()["value"]}


def test_subscription_lists_include_assignments_inherited_from_groups_and_root(sandbox, tree):
    sb, sub = tree, f"/subscriptions/{sandbox.subscription_id}"
    bot = sb.directory.named("bot")
    for scope in (mg.group_id("corp"), mg.group_id("landing"), mg.group_id("lab"), "/"):
        scenarios.assign(sb, scope, bot, ROLES["Reader"])
    inherited = {mg.group_id("corp"), mg.group_id("landing"), "/"}
    assert inherited <= _list(sandbox, sub)
    assert mg.group_id("lab") not in _list(sandbox, sub)  # a group not above the subscription
    assert inherited <= _list(sandbox, sub, "atScope()")
    sandbox.client(ResourceManagementClient).resource_groups.create_or_update(RG, {"location": LOC})
    assert inherited <= _list(sandbox, f"{sub}/resourceGroups/{RG}", "atScope()")
    assert inherited <= _list(sandbox, sub, f"assignedTo('{bot.object_id}')")
    assert _list(sandbox, mg.group_id("landing"), "atScope()") >= {mg.group_id("corp"), "/"}
    assert sub not in _list(sandbox, mg.group_id("landing"), "atScope()")
    assert sub in _list(sandbox, mg.group_id("corp"))  # below the group: its subscription's assignments


def test_a_role_at_a_group_grants_arm_access_below_it(sandbox, tree):
    sandbox.client(ResourceManagementClient).resource_groups.create_or_update(RG, {"location": LOC})
    bot = sandbox.client(ResourceManagementClient, "bot")
    with pytest.raises(HttpResponseError) as err:
        bot.resource_groups.get(RG)
    assert err.value.status_code == 403
    scenarios.assign(tree, mg.group_id("lab"), tree.directory.named("bot"), ROLES["Reader"])
    with pytest.raises(HttpResponseError):
        bot.resource_groups.get(RG)  # a sibling group grants nothing here
    scenarios.assign(tree, mg.group_id("corp"), tree.directory.named("bot"), ROLES["Reader"])
    assert bot.resource_groups.get(RG).name == RG


class Keys:
    """An RBAC vault with a key and a disk encryption set on it, made as `admin`."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        sandbox.client(ResourceManagementClient).resource_groups.create_or_update(RG, {"location": LOC})
        kvm, self.compute = sandbox.client(KeyVaultManagementClient), sandbox.client(ComputeManagementClient)
        props = {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}}
        props["enableRbacAuthorization"] = True
        self.vault = kvm.vaults.begin_create_or_update(RG, "kv-mg", {"location": LOC, "properties": props}).result()
        key = kvm.keys.create_if_not_exist(RG, "kv-mg", "k", {"properties": {"kty": "RSA", "keySize": 2048}})
        active = {"sourceVault": {"id": self.vault.id}, "keyUrl": key.properties.key_uri_with_version}
        body = {"location": LOC, "identity": {"type": "SystemAssigned"}, "properties": {"activeKey": active}}
        self.des = self.compute.disk_encryption_sets.begin_create_or_update(RG, "des-mg", body).result()
        self.key_scope = f"{self.vault.id}/keys/k"

    def disk(self, name):
        body = {
            "location": LOC,
            "sku": {"name": "Premium_LRS"},
            "properties": {
                "creationData": {"createOption": "Empty"},
                "diskSizeGB": 32,
                "encryption": {"type": CMK, "diskEncryptionSetId": self.des.id},
            },
        }
        return self.compute.disks.begin_create_or_update(RG, name, body).result()

    def refused(self, name):
        with pytest.raises(HttpResponseError) as err:
            self.disk(name)
        assert (err.value.status_code, err.value.error.code) == (400, "KeyVaultAccessForbidden"), err.value.message
        return err.value.error.message


def test_a_key_role_at_a_group_lets_diskrp_use_the_key(sandbox, tree):
    keys = Keys(sandbox)
    principal = tree.directory.by_object_id(keys.des.identity.principal_id)
    keys.refused("d1")
    scenarios.assign(tree, mg.group_id("lab"), principal, CSEU)
    keys.refused("d1")
    scenarios.assign(tree, mg.group_id("corp"), principal, CSEU)
    assert keys.disk("d1").encryption.type == CMK


def _grant(sandbox, scope, principal_id):
    auth = sandbox.client(AuthorizationManagementClient)
    params = RoleAssignmentCreateParameters(
        role_definition_id=f"/subscriptions/{sandbox.subscription_id}/providers/Microsoft.Authorization/"
        f"roleDefinitions/{CSEU}",
        principal_id=principal_id,
        principal_type="ServicePrincipal",
    )
    return auth.role_assignments.create(scope, str(uuid.uuid4()), params)


def test_a_new_key_role_is_listed_at_once_but_honoured_only_after_propagation(sandbox):
    assert sandbox.admin("GET", "/_sandbox/settings")["role_propagation_seconds"] == 600  # Microsoft: up to 10 min
    keys = Keys(sandbox)
    made = _grant(sandbox, keys.key_scope, keys.des.identity.principal_id)
    auth = sandbox.client(AuthorizationManagementClient)
    assert made.id in {a.id for a in auth.role_assignments.list_for_scope(keys.key_scope, filter="atScope()")}
    message = keys.refused("d1")
    assert "Please grant get, wrap and unwrap key permissions to disk encryption set 'des-mg'" in message
    sandbox.advance(599)
    keys.refused("d1")
    sandbox.advance(2)
    assert keys.disk("d1").encryption.type == CMK


def test_tests_may_shorten_the_propagation_delay(sandbox):
    sandbox.admin("PATCH", "/_sandbox/settings", {"role_propagation_seconds": 0})
    keys = Keys(sandbox)
    _grant(sandbox, keys.key_scope, keys.des.identity.principal_id)
    assert keys.disk("d1").encryption.type == CMK
