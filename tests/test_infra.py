"""The deployment (infra/, azure.yaml) without Azure: the Bicep loads and assigns exactly infra/cryptward-role.json,
with its ABAC condition, its references hold together, checkov passes; and the role is least privilege, proven in the
sandbox: removing any one of its permissions makes an operation the bot performs fail (tests/role_coverage.py reports,
over the session, the permissions no test exercised), and the condition refuses the bot every role assignment but the
one its des-key-access fix makes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.keyvault import KeyVaultManagementClient

from remediations.engine import applier
from remediations.engine.reader import Scope
from remediations.engine.run import scan
from remediations.errors import AzureAccessError
from remediations.resources import get
from remediations.rotation.run import rotate
from sandbox import conditions
from sandbox.rbac import ROLES
from tests.engine.test_run import EVERYTHING, POLICIES, ids, settings_for
from tests.role_coverage import Coverage, define_role, role_permissions
from tests.waits import limit

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
ROLE = json.loads((INFRA / "cryptward-role.json").read_text())
DENIED = {"AuthorizationFailed", "LinkedAuthorizationFailed", "Forbidden"}


# --- the Bicep ---------------------------------------------------------------------------------------------------


def bicep(path: str) -> str:
    return (INFRA / path).read_text()


def test_the_bicep_loads_the_role_json_and_assigns_it():
    role = bicep("app/role.bicep")
    assert "loadJsonContent('../cryptward-role.json')" in role
    for part in ("actions", "notActions", "dataActions", "notDataActions"):
        assert re.search(rf"{part}: role\.{part}\b", role), f"role.bicep must take {part} from the JSON"
    assert "Microsoft.Authorization/roleDefinitions@" in role
    # assigned at the subscription, or in each resource group of the list
    main = bicep("main.bicep")
    assert "module role 'app/role.bicep'" in main
    assert "module roleInGroup 'app/role-assignment.bicep' = [for group in groupsInScope:" in main
    assignment = bicep("app/role-assignment.bicep")
    assert "Microsoft.Authorization/roleAssignments@" in assignment
    assert "roleDefinitionId: roleDefinitionId" in assignment
    assert "Microsoft.Authorization/roleAssignments@" in role  # the subscription-wide assignment
    # both assignments carry the JSON's condition, the text the sandbox tests grant and evaluate (grant_custom_role)
    assert "var role = loadJsonContent('../cryptward-role.json')" in assignment
    for text in (role, assignment):
        assert text.count("Microsoft.Authorization/roleAssignments@") == 1
        assert re.search(r"^    condition: role\.assignmentCondition$", text, flags=re.M)
        assert re.search(r"^    conditionVersion: '2\.0'$", text, flags=re.M)


def _module_paths(text: str) -> list[str]:
    return re.findall(r"^module \w+ '([^']+)'", text, flags=re.M)


def _declared_params(text: str) -> set[str]:
    return set(re.findall(r"^param (\w+) ", text, flags=re.M))


def test_bicep_references():
    """No compiler here: check what the compiler would, for the references between our files."""
    bicep_files = sorted(INFRA.rglob("*.bicep"))
    for f in bicep_files:
        for ref in _module_paths(f.read_text()):
            if ref.startswith("br/public:"):
                assert re.fullmatch(r"br/public:avm/(res|ptn|utl)/[a-z0-9/-]+:\d+\.\d+\.\d+", ref), ref
            else:
                assert (f.parent / ref).is_file(), f"{f.relative_to(ROOT)} references missing module {ref}"
        for loaded in re.findall(r"load(?:Json|Text)Content\('([^']+)'\)", f.read_text()):
            assert (f.parent / loaded).is_file(), f"{f.relative_to(ROOT)} loads missing {loaded}"

    main = bicep("main.bicep")
    params = json.loads(bicep("main.parameters.json"))["parameters"]
    assert set(params) <= _declared_params(main), set(params) - _declared_params(main)
    for name, entry in params.items():
        assert re.fullmatch(r"\$\{[A-Z_]+(=[^}]*)?\}", str(entry["value"])) or not isinstance(entry["value"], str), (
            f"{name} should come from an azd environment variable"
        )

    # every app setting the code reads (local.settings.json) is set on the function app; the three below have
    # Flex Consumption / identity equivalents (runtime in functionAppConfig, AzureWebJobsStorage__*, indexing is on)
    app = bicep("app/function.bicep")
    local = json.loads((ROOT / "local.settings.json").read_text())["Values"]
    equivalents = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage", "AzureWebJobsFeatureFlags"}
    for name in set(local) - equivalents:
        assert re.search(rf"^\s+{name}: ", app, flags=re.M), f"app setting {name} is not in infra/app/function.bicep"
    for name in (
        "AzureWebJobsStorage__accountName",
        "AzureWebJobsStorage__credential",
        "AzureWebJobsStorage__clientId",
    ):
        assert f"{name}:" in app
    assert "AZURE_CLIENT_ID:" in app

    # azure.yaml: one python function service at the project root, infra from infra/main.bicep
    azure_yaml = (ROOT / "azure.yaml").read_text()
    for line in ("  cryptward:", "    project: .", "    language: python", "    host: function"):
        assert line in azure_yaml.splitlines(), line


def test_the_event_subscription_filters_the_operations_the_bot_handles():
    grid = bicep("app/events.bicep")
    for op in (
        "Microsoft.KeyVault/vaults/write",
        "Microsoft.Compute/disks/write",
        "Microsoft.Compute/diskEncryptionSets/write",
        "Microsoft.Compute/virtualMachines/write",
        "Microsoft.Compute/virtualMachines/deallocate/action",
        "Microsoft.Compute/virtualMachineScaleSets/write",
        "Microsoft.Compute/snapshots/write",
        "Microsoft.Compute/images/write",
        "Microsoft.Resources/tags/write",
        "Microsoft.Authorization/locks/write",
        "Microsoft.Authorization/locks/delete",
        "Microsoft.Insights/diagnosticSettings/write",
        "Microsoft.Insights/diagnosticSettings/delete",
    ):
        assert f"'{op}'" in grid, op
    assert "endpointType: 'AzureFunction'" in grid and "deadLetterWithResourceIdentity" in grid


def _module_params(text: str, module: str) -> set[str]:
    """The parameter names a module statement passes (its `params: { ... }` block)."""
    block = re.search(rf"^module {module} [^\n]*\n(.*?)^}}", text, flags=re.M | re.S)
    assert block, module
    params = re.search(r"^  params: \{\n(.*?)^  \}", block.group(1), flags=re.M | re.S)
    return set(re.findall(r"^    (\w+): ", params.group(1), flags=re.M)) if params else set()


def _outputs(text: str) -> set[str]:
    return set(re.findall(r"^output (\w+) ", text, flags=re.M))


def test_the_management_group_deployment_holds_together():
    """infra/mg/main.bicep: the bot in its subscription with the group as its scope, its role once at the group with
    the ABAC condition, and the DeployIfNotExists enrolment; every parameter passed is declared and every output
    read exists (what the compiler would check)."""
    mg, main = bicep("mg/main.bicep"), bicep("main.bicep")
    assert re.search(r"^targetScope = 'managementGroup'$", mg, flags=re.M)
    assert "module bot '../main.bicep' = {" in mg and "scope: subscription(botSubscriptionId)" in mg
    assert _module_params(mg, "bot") <= _declared_params(main)
    assert "managementGroupId: managementGroup().name" in mg
    assert set(re.findall(r"bot\.outputs\.(\w+)", mg)) <= _outputs(main)
    for name, file in (("role", "mg/role.bicep"), ("enrolment", "mg/enrolment.bicep")):
        child = bicep(file)
        assert re.search(r"^targetScope = 'managementGroup'$", child, flags=re.M), file
        assert _module_params(mg, name) <= _declared_params(child), file
        assert set(re.findall(rf"{name}\.outputs\.(\w+)", mg)) <= _outputs(child), file
    # in group mode main.bicep neither makes this subscription's topic (enrolment does: one per source) nor assigns
    # the role at the subscription; CRYPTWARD_SCOPES is the group
    assert "module events 'app/events.bicep' = if (!atGroup) {" in main
    assert "assignAtSubscription: empty(groupsInScope) && !atGroup" in main
    assert "'/providers/Microsoft.Management/managementGroups/${managementGroupId}'" in main
    role = bicep("mg/role.bicep")
    assert "var role = loadJsonContent('../cryptward-role.json')" in role
    assert "assignableScopes: [managementGroup().id]" in role
    assert role.count("Microsoft.Authorization/roleAssignments@") == 1
    assert re.search(r"^    condition: role\.assignmentCondition$", role, flags=re.M)
    assert re.search(r"^    conditionVersion: '2\.0'$", role, flags=re.M)
    assert "'Microsoft.Management/managementGroups/descendants/read'" in role  # remediations/scopes.py reads it


def _enrolment_policy(tmp_path: Path) -> Any:
    """infra/mg/enrol-events.json through Cryptward's own loader, with the parameter values the Bicep assignment
    gives (as `az policy assignment show` would print them)."""
    from remediations.policy.loader import load_policies

    folder = tmp_path / "enrol-events"
    folder.mkdir()
    shutil.copy(INFRA / "mg" / "enrol-events.json", folder / "definition.json")
    enrolment = bicep("mg/enrolment.bicep")
    given = re.search(r"^    parameters: \{\n(.*?)^    \}", enrolment, flags=re.M | re.S)
    assert given
    names = re.findall(r"^      (\w+): \{ value: ", given.group(1), flags=re.M)
    values = {n: {"value": f"/subscriptions/x/resourceGroups/rg/providers/X/y/{n}"} for n in names}
    (folder / "assignment.json").write_text(json.dumps({"properties": {"parameters": values}}))
    return load_policies(tmp_path)


def test_the_enrolment_is_a_deploy_if_not_exists_definition_cryptwards_loader_accepts(tmp_path):
    loaded = _enrolment_policy(tmp_path)
    assert not loaded.refused
    (policy,) = loaded
    assert policy.effect == "DeployIfNotExists" and policy.resource_type == "Microsoft.Resources/subscriptions"
    assert policy.existence is not None and policy.existence.scope == "Subscription"
    assert policy.existence.related_type == "Microsoft.EventGrid/systemTopics"
    # a subscription without a topic is not enrolled: the deployment runs (Azure Policy evaluates the topic's
    # `topicType` alias; Cryptward reads no Event Grid type, so it loads the check without evaluating that alias)
    assert policy.noncompliant({"id": "/subscriptions/x", "type": "Microsoft.Resources/subscriptions"}, related=[])
    # the template's event subscription: the same filters, retry and dead-letter as app/events.bicep's
    doc = json.loads((INFRA / "mg" / "enrol-events.json").read_text())["properties"]
    inner = doc["policyRule"]["then"]["details"]["deployment"]["properties"]["template"]["resources"][1]
    topic, subscription = inner["properties"]["template"]["resources"]
    assert topic["properties"]["topicType"] == "Microsoft.Resources.Subscriptions"
    events = bicep("app/events.bicep")
    operations = re.findall(r"^            '([\w./]+)'$", events, flags=re.M)
    assert operations and doc["parameters"]["operations"]["defaultValue"] == operations
    props = subscription["properties"]
    wanted = re.findall(r"^        '(Microsoft\.Resources\.\w+)'$", events, flags=re.M)
    assert props["filter"]["includedEventTypes"] == wanted
    assert props["destination"]["endpointType"] == "AzureFunction" and "deadLetterWithResourceIdentity" in props
    for name in ("maxDeliveryAttempts", "eventTimeToLiveInMinutes"):
        default = re.search(rf"^param {name} int = (\d+)$", events, flags=re.M)
        assert default and doc["parameters"][name]["defaultValue"] == int(default.group(1)), name
    main = bicep("main.bicep")
    assert f"var deadLetterContainer = '{doc['parameters']['deadLetterContainer']['defaultValue']}'" in main
    # the assignment's identity gets the enrolment role, and a remediation task enrols the subscriptions already there
    enrolment = bicep("mg/enrolment.bicep")
    assert "loadJsonContent('enrol-events.json')" in enrolment and "identity: { type: 'SystemAssigned' }" in enrolment
    assert (
        "roleDefinitionIds: [enrolRole.id]" in enrolment and "principalId: assignment.identity.principalId" in enrolment
    )
    assert "Microsoft.PolicyInsights/remediations@" in enrolment


def test_every_vault_is_subscribed_to_key_vaults_expiry_events_by_a_deploy_if_not_exists_policy(tmp_path):
    """infra/vault-events.json through Cryptward's own loader: a key vault without Cryptward's system topic is not
    compliant and the deployment gives it one (topic type Microsoft.KeyVault.vaults, source the vault), with one event
    subscription letting through exactly the Key Vault events the bot handles, with events.bicep's retry and
    dead-letter; assigned at the subscription (main.bicep) and at the management group (mg/main.bicep) with the role
    the deployment needs."""
    from remediations.policy.loader import load_policies
    from remediations.triggers.events import ITEM_EVENTS, KEY_EVENTS

    folder = tmp_path / "vault-events"
    folder.mkdir()
    shutil.copy(INFRA / "vault-events.json", folder / "definition.json")
    sub = bicep("app/vault-events.bicep")
    given = re.search(r"^    parameters: \{\n(.*?)^    \}", sub, flags=re.M | re.S)
    assert given
    names = re.findall(r"^      (\w+): \{ value: ", given.group(1), flags=re.M)
    values = {n: {"value": f"/subscriptions/x/resourceGroups/rg/providers/X/y/{n}"} for n in names}
    (folder / "assignment.json").write_text(json.dumps({"properties": {"parameters": values}}))
    loaded = load_policies(tmp_path)
    assert not loaded.refused
    (policy,) = loaded
    assert policy.effect == "DeployIfNotExists" and policy.resource_type == "Microsoft.KeyVault/vaults"
    assert policy.existence is not None and policy.existence.related_type == "Microsoft.EventGrid/systemTopics"
    vault = {"id": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1", "name": "kv1"}
    assert policy.noncompliant({**vault, "type": "Microsoft.KeyVault/vaults", "location": "westeurope"}, related=[])

    doc = json.loads((INFRA / "vault-events.json").read_text())["properties"]
    details = doc["policyRule"]["then"]["details"]
    condition = {c["field"]: c for c in details["existenceCondition"]["allOf"]}
    assert condition["Microsoft.EventGrid/systemTopics/topicType"]["equals"] == "Microsoft.KeyVault.vaults"
    assert condition["Microsoft.EventGrid/systemTopics/source"]["equals"] == "[field('id')]"
    deployment = details["deployment"]["properties"]
    passed = {k: v["value"] for k, v in deployment["parameters"].items()}
    assert (passed["vaultId"], passed["vaultName"], passed["location"]) == (
        "[field('id')]",
        "[field('name')]",
        "[field('location')]",
    )
    topic, subscription = deployment["template"]["resources"]
    assert topic["properties"] == {"source": "[parameters('vaultId')]", "topicType": "Microsoft.KeyVault.vaults"}
    assert topic["location"] == "[parameters('location')]"  # a vault's topic is regional, not 'global'
    props = subscription["properties"]
    assert props["filter"] == {"includedEventTypes": "[parameters('eventTypes')]"}
    assert set(doc["parameters"]["eventTypes"]["defaultValue"]) == set(KEY_EVENTS) | set(ITEM_EVENTS)
    assert props["destination"]["endpointType"] == "AzureFunction" and "deadLetterWithResourceIdentity" in props
    events = bicep("app/events.bicep")
    for name in ("maxDeliveryAttempts", "eventTimeToLiveInMinutes"):
        default = re.search(rf"^param {name} int = (\d+)$", events, flags=re.M)
        assert default and doc["parameters"][name]["defaultValue"] == int(default.group(1)), name

    # assigned at the subscription and at the group, each with its own role for the assignment's identity
    main, mg = bicep("main.bicep"), bicep("mg/main.bicep")
    assert "module vaultEvents 'app/vault-events.bicep' = if (!atGroup) {" in main
    assert "assignAtSubscription: empty(groupsInScope)" in main
    # with resource-group scopes, the subscription's definition and role are assigned in each listed group
    assert (
        "module vaultEventsInGroup 'app/vault-events-group.bicep' = [for group in groupsInScope: if (!atGroup) {"
        in main
    )
    in_group = bicep("app/vault-events-group.bicep")
    assert re.search(r"^targetScope = 'resourceGroup'$", in_group, flags=re.M)
    assert _module_params(main, "vaultEventsInGroup") <= _declared_params(in_group)
    assert set(re.findall(r"vaultEvents\.outputs\.(\w+)", main)) <= _outputs(bicep("app/vault-events.bicep"))
    assert (
        "principalId: assignment.identity.principalId" in in_group
        and "Microsoft.PolicyInsights/remediations@" in in_group
    )
    assert "module vaultEvents 'vault-events.bicep' = {" in mg
    for text, file, scope in (
        (main, "app/vault-events.bicep", "subscription"),
        (mg, "mg/vault-events.bicep", "managementGroup"),
    ):
        child = bicep(file)
        assert re.search(rf"^targetScope = '{scope}'$", child, flags=re.M), file
        assert _module_params(text, "vaultEvents") <= _declared_params(child), file
        assert "loadJsonContent('../vault-events.json')" in child
        assert "roleDefinitionIds: [vaultEventRole.id]" in child
        assert (
            "principalId: assignment.identity.principalId" in child
            and "Microsoft.PolicyInsights/remediations@" in child
        )
        assert "'Microsoft.EventGrid/eventSubscriptions/write'" in child  # on the vault, the event source
    assert set(re.findall(r"bot\.outputs\.(\w+)", mg)) <= _outputs(main)
    assert "module eventsIdentity 'app/events-identity.bicep' = {" in main  # vault topics dead-letter with it too


def test_checkov_passes():
    """checkov (pinned in requirements-checkov.txt, installed by scripts/install-checkov.sh) finds nothing in infra/
    that is not suppressed with a reason."""
    exe = _checkov()
    started = time.perf_counter()
    run = subprocess.run(
        [exe, "-d", str(INFRA), "--framework", "bicep", "--compact", "--quiet", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=limit(240),  # within pytest's own per-test timeout (300 s), for checkov's message
        check=False,
    )
    elapsed = time.perf_counter() - started
    assert run.returncode in (0, 1), f"checkov crashed ({run.returncode}):\n{run.stderr[-3000:]}"
    doc = json.loads(run.stdout or "{}")
    reports = doc if isinstance(doc, list) else [doc]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert passed > 0, f"checkov scanned nothing in infra/ ({elapsed:.1f} s): {run.stdout[:500]}"
    assert not failed, "checkov failed checks:\n" + "\n".join(
        f"  {c['check_id']} {c['check_name']} - {c['file_path']} {c['resource']}" for c in failed
    )
    for r in reports:  # every suppression says why
        for c in r.get("results", {}).get("skipped_checks", []):
            why = (c.get("check_result") or {}).get("suppress_comment") or ""
            assert why.strip() not in ("", "No comment provided"), f"{c['check_id']} is suppressed without a reason"


def _checkov() -> str:
    from_script = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install-checkov.sh")], capture_output=True, text=True, check=False
    )
    lines = from_script.stdout.strip().splitlines()
    exe = lines[-1] if from_script.returncode == 0 and lines else shutil.which("checkov")
    if not exe or not Path(exe).exists():
        pytest.fail(
            "checkov is missing: `bash scripts/install-checkov.sh` (what `make test` runs) installs the pinned version"
            f" into its own venv.\n{from_script.stderr[-2000:]}"
        )
    return exe


# --- the role assignment condition ---------------------------------------------------------------------------------

CRYPTO_SERVICE_ENCRYPTION_USER = ROLES["Key Vault Crypto Service Encryption User"]
WRITE = "Microsoft.Authorization/roleAssignments/write"


def test_the_condition_lets_the_bot_assign_only_crypto_service_encryption_user_to_service_principals():
    """The condition as the sandbox evaluates it: of every role to every principal type, only Crypto Service Encryption
    User to a service principal; other actions of the role are not its business."""
    condition = ROLE["assignmentCondition"]
    actions = {a.lower() for a in ROLE["actions"]}
    assert WRITE.lower() in actions
    # a role with roleAssignments/delete would need the condition's delete half (@Resource attributes) too
    on_assignments = {a for a in actions if a.startswith("microsoft.authorization/roleassignments/")}
    assert on_assignments <= {WRITE.lower(), "microsoft.authorization/roleassignments/read"}, on_assignments
    sub = "/subscriptions/00000000-0000-0000-0000-000000000000"
    for guid in {*ROLES.values(), str(uuid.uuid4())}:
        for principal_type in ("ServicePrincipal", "servicePrincipal", "User", "Group", "ForeignGroup", None):
            props = {"roleDefinitionId": f"{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"}
            if principal_type:
                props["principalType"] = principal_type
            request = conditions.Request(WRITE, conditions.role_assignment_attributes("Request", props))
            expected = guid == CRYPTO_SERVICE_ENCRYPTION_USER and (principal_type or "").lower() == "serviceprincipal"
            assert conditions.holds(condition, request) is expected, (guid, principal_type)
    for action in ROLE["actions"]:
        if action != WRITE:
            assert conditions.holds(condition, conditions.Request(action))


def _assign(client: Any, scope: str, principal: Any, role: str) -> Any:
    """`role`: a built-in role's name or GUID, or a roleDefinitionId."""
    definition = role if role.startswith("/") else f"{scope}/providers/Microsoft.Authorization/roleDefinitions/"
    definition += "" if role.startswith("/") else ROLES.get(role, role)
    body = {"roleDefinitionId": definition, "principalId": principal.object_id, "principalType": principal.kind}
    return client.role_assignments.create(scope, str(uuid.uuid4()), {"properties": body})


# --- least privilege, in the sandbox -------------------------------------------------------------------------------

PERMISSIONS = [(a, False) for a in ROLE["actions"]] + [(a, True) for a in ROLE["dataActions"]]
# What exercises each permission; "sweep" otherwise (every fix planned, approved and applied in one run).
SCENARIOS = {
    # an approved change applied later (fresh=False): the applier re-reads the target and the VM's power state first
    ("Microsoft.Compute/virtualMachines/instanceView/read", False): "later",
    ("Microsoft.Resources/tags/read", False): "later",
    ("Microsoft.KeyVault/vaults/keyrotationpolicies/read", True): "later",
    # a disk encryption set whose key is in a vault on access policies: des-key-access adds an access policy
    ("Microsoft.KeyVault/vaults/accessPolicies/write", False): "legacy-des",
    # the rotation timer: list a vault's keys (ARM), re-read the key on the data plane, then rotate it. A sweep
    # refused the key listing records it in the reading but reports nothing: rotation names it.
    ("Microsoft.KeyVault/vaults/keys/read", False): "rotation",
    ("Microsoft.KeyVault/vaults/keys/read", True): "rotation",
    ("Microsoft.KeyVault/vaults/keys/rotate/action", True): "rotation",
    # a subscription without the EncryptionAtHost feature: vm-encryption-at-host registers it first
    ("Microsoft.Features/providers/features/register/action", False): "no-eah-feature",
    # an Azure Policy exemption over the estate: the bot reads the assignment it names
    ("Microsoft.Authorization/policyAssignments/read", False): "azure-exemption",
    # a disk encryption set holding a custom role over its key: the bot reads the role's definition
    ("Microsoft.Authorization/roleDefinitions/read", False): "custom-key-role",
}


def test_every_scenario_names_a_permission_of_the_role():
    assert set(SCENARIOS) <= set(PERMISSIONS)
    assert len(set(PERMISSIONS)) == len(PERMISSIONS), "a permission is listed twice in the role"


def _role_without(action: str, data: bool) -> dict[str, Any]:
    doc = json.loads(json.dumps(ROLE))
    doc["dataActions" if data else "actions"].remove(action)
    return doc


def _azure_exemption(sandbox: Any) -> None:
    """An assignment of Microsoft's 0b60c0b2 at the subscription and an exemption of it at rg-app-weu, by the admin."""
    import httpx

    sub = f"/subscriptions/{sandbox.subscription_id}"
    token = sandbox.credential("admin").get_token("https://management.azure.com/.default").token
    assignment = f"{sub}/providers/Microsoft.Authorization/policyAssignments/kv-deletion"
    definition = "/providers/Microsoft.Authorization/policyDefinitions/0b60c0b2-2dc2-4e1c-b5c9-abbed971de53"
    exemption = f"{sub}/resourceGroups/rg-app-weu/providers/Microsoft.Authorization/policyExemptions/waiver"
    with httpx.Client(verify=sandbox.ssl, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        for path, api, body in (
            (assignment, "2023-04-01", {"properties": {"policyDefinitionId": definition}}),
            (
                exemption,
                "2022-07-01-preview",
                {"properties": {"policyAssignmentId": assignment, "exemptionCategory": "Waiver"}},
            ),
        ):
            r = client.put(f"{sandbox.base_url}{path}", params={"api-version": api}, json=body)
            assert r.status_code in (200, 201), r.text


def _legacy_des(sandbox: Any) -> None:
    """A key in kv-neu-legacy (access policies) and a disk encryption set using it, made by the admin. On a vault
    using access policies the bot's role gives it no data access: the admin gives it an access policy for the key
    rotation policy, as an operator must (the switch to RBAC waits for the set's role to propagate)."""
    kv = sandbox.client(KeyVaultManagementClient)
    key = kv.keys.create_if_not_exist("rg-app-neu", "kv-neu-legacy", "des-key", {"properties": {"kty": "RSA"}})
    rotation = ["get", "getrotationpolicy", "setrotationpolicy"]
    bot = {
        "tenantId": sandbox.tenant_id,
        "objectId": sandbox.principal("bot").object_id,
        "permissions": {"keys": rotation},
    }
    kv.vaults.update_access_policy("rg-app-neu", "kv-neu-legacy", "add", {"properties": {"accessPolicies": [bot]}})
    compute = sandbox.client(ComputeManagementClient)
    vault = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-app-neu/providers/Microsoft.KeyVault/vaults"
    compute.disk_encryption_sets.begin_create_or_update(
        "rg-app-neu",
        "des-neu",
        {
            "location": "northeurope",
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "encryptionType": "EncryptionAtRestWithCustomerKey",
                "activeKey": {"sourceVault": {"id": f"{vault}/kv-neu-legacy"}, "keyUrl": key.key_uri_with_version},
            },
        },
    ).result()


def _custom_key_role(sandbox: Any) -> None:
    """des-weu's identity holds, over its key, a custom role granting the key's data actions (made by the admin)."""
    from azure.mgmt.authorization import AuthorizationManagementClient

    des = sandbox.client(ComputeManagementClient).disk_encryption_sets.get("rg-keys-weu", "des-weu")
    key = f"{des.active_key.source_vault.id}/keys/{des.active_key.key_url.split('/keys/')[1].split('/')[0]}"
    role = {"roleName": "Disk key user", "description": "", "dataActions": ["Microsoft.KeyVault/vaults/keys/*"]}
    made = define_role(sandbox, role)
    principal = sandbox.running.sandbox.directory.by_object_id(des.identity.principal_id)
    with sandbox.roles_at_once():
        _assign(sandbox.client(AuthorizationManagementClient, "admin"), key, principal, str(made.id))


def _unregister_eah_feature(sandbox: Any) -> None:
    """The admin unregisters the subscription's EncryptionAtHost feature (the estate registered it)."""
    import httpx

    feature = "providers/Microsoft.Features/providers/Microsoft.Compute/features/EncryptionAtHost"
    token = sandbox.credential("admin").get_token("https://management.azure.com/.default").token
    with httpx.Client(verify=sandbox.ssl, timeout=30) as client:
        client.post(
            f"{sandbox.base_url}/subscriptions/{sandbox.subscription_id}/{feature}/unregister",
            params={"api-version": "2021-07-01"},
            headers={"Authorization": f"Bearer {token}"},
        ).raise_for_status()


# What each scenario adds to the estate before the bot runs.
SETUP = {
    "legacy-des": _legacy_des,
    "no-eah-feature": _unregister_eah_feature,
    "azure-exemption": _azure_exemption,
    "custom-key-role": _custom_key_role,
}


def _outcome(sandbox: Any, azure: Any, scenario: str) -> list[str]:
    """Run the scenario as the bot; what it reports as refused or unreadable (empty when all went through)."""
    sub = sandbox.subscription_id
    scope = Scope((sub,), "rg-app-neu") if scenario == "legacy-des" else Scope((sub,))
    try:
        if scenario == "rotation":
            report = rotate(
                scope, azure=azure, settings=settings_for(sandbox), now=datetime.now(UTC), policies=POLICIES
            )
            return [f"{r.action}: {r.missing}" for r in report.results if r.status == "failed" and r.missing]
        settings = settings_for(sandbox, **EVERYTHING)
        history = [ids(sandbox)["ade"]]
        dry = scan(scope, POLICIES, settings=settings, azure=azure, ade_history=history)
        unreadable = [f"{f.policy.id}: {why}" for f in dry.findings if (why := f.unreadable or f.fix_unreadable)]
        # what only the planner could not read (Azure Policy exemptions): the finding stands, nothing is fixed
        unreadable += [f"{s.policy_id}: {s.detail}" for s in dry.plan.skipped if s.reason == "cannot-read"]
        # a VM size's capabilities unread: the seed's table decides, and the advice says so
        unreadable += [
            f"{rid}: {b['cryptward']['skuUnreadable']}"
            for rid, b in dry.bodies.items()
            if get(b, "cryptward.skuUnreadable")
        ]
        # a fix that declined for what it could not read (a key's rotation policy on the data plane)
        unreadable += [f"{s.policy_id}: {s.detail}" for s in dry.plan.skipped if s.reason == "cannot-read"]
        approved = [c.id for c in dry.plan.changes]
        if scenario == "later":
            results = applier.apply(dry.plan, azure, scope=scope, approved=approved, fresh=False)
        else:
            again = scan(
                scope, POLICIES, apply=True, settings=settings, azure=azure, ade_history=history, approved=approved
            )
            results = again.results
        failed = [f"{r.change.policy_id}: {r.code} {r.detail}" for r in results if r.code in DENIED]
        return unreadable + failed
    except AzureAccessError as e:  # the scope itself could not be listed
        return [f"scan: {e.code} {e.message}"]


def _refused(sandbox: Any, since: int) -> set[tuple[str, bool]]:
    bot = sandbox.principal("bot").object_id
    return {
        (check["action"], check["dataAction"])
        for call in sandbox.calls(since)
        if call["principal"] == bot and call["status"] == 403
        for check in call["actions"]
        if check["principal"] == bot and not check["allowed"]
    }


@pytest.mark.parametrize("scenario", sorted({"sweep", *SCENARIOS.values()}))
def test_with_the_whole_role_every_scenario_goes_through(sandbox, grant_custom_role, as_bot, scenario):
    sandbox.reset("estate")
    if scenario in SETUP:
        SETUP[scenario](sandbox)
    grant_custom_role("bot")
    since = len(sandbox.calls())
    outcome = _outcome(sandbox, as_bot(), scenario)
    # The role gives no data-plane right on an access-policy vault (README, Deploying): the legacy key's rotation
    # policy cannot be read there, and key-rotation-policy says so instead of writing over it.
    expected = [r for r in outcome if r.startswith("key-rotation-policy: key des-key:") and scenario == "legacy-des"]
    assert outcome == expected and len(expected) <= 1
    assert _refused(sandbox, since) == set()


@pytest.mark.parametrize(("action", "data"), PERMISSIONS, ids=[f"{'data:' if d else ''}{a}" for a, d in PERMISSIONS])
def test_removing_any_permission_of_the_role_makes_an_operation_of_the_bot_fail(
    sandbox, grant_custom_role, as_bot, action, data
):
    scenario = SCENARIOS.get((action, data), "sweep")
    sandbox.reset("estate")
    if scenario in SETUP:
        SETUP[scenario](sandbox)
    grant_custom_role("bot", role=_role_without(action, data))
    since = len(sandbox.calls())

    reported = _outcome(sandbox, as_bot(), scenario)

    refused = _refused(sandbox, since)
    assert (action, data) in refused, f"without {action} the {scenario} scenario was not refused anything: {refused}"
    assert reported, f"the bot was refused {action} but reported no failure nor unreadable resource"


WORKSPACE_ROLE = json.loads((INFRA / "cryptward-workspace-role.json").read_text())


def test_the_bicep_gives_the_bot_its_workspace_role_on_the_workspace_alone():
    access = bicep("app/workspace-access.bicep")
    assert "loadJsonContent('../cryptward-workspace-role.json')" in access
    assert re.search(r"^  scope: workspace$", access, flags=re.M)  # assigned on the workspace, not above it
    assert "module workspaceAccess 'app/workspace-access.bicep'" in bicep("main.bicep")
    assert "workspaceName: logAnalytics.outputs.name" in bicep("main.bicep")
    assert WORKSPACE_ROLE["actions"] == ["Microsoft.OperationalInsights/workspaces/sharedKeys/action"]
    assert WORKSPACE_ROLE["dataActions"] == [] and WORKSPACE_ROLE["notActions"] == []


def test_without_its_workspace_role_the_bot_cannot_name_the_workspace(sandbox, grant_custom_role, as_bot):
    # ARM's linked-scope check on a diagnostic setting's workspaceId (sandbox/providers/insights.py)
    action = WORKSPACE_ROLE["actions"][0]
    sandbox.reset("estate")
    grant_custom_role("bot", without=(action,))
    since = len(sandbox.calls())
    reported = _outcome(sandbox, as_bot(), "sweep")
    assert (action, False) in _refused(sandbox, since)
    assert any(r.startswith("kv-diagnostic-setting: LinkedAuthorizationFailed") for r in reported), reported


def test_role_coverage_counts_the_principal_own_checks_and_flags_refusals_outside_the_role():
    role = role_permissions({"actions": ["A/read", "A/write"], "dataActions": ["K/read"]})
    coverage = Coverage(role)
    me, other = str(uuid.uuid4()), str(uuid.uuid4())

    def check(action: str, allowed: bool, who: str = me, data: bool = False) -> dict[str, Any]:
        return {"principal": who, "action": action, "dataAction": data, "allowed": allowed, "scope": "/"}

    calls = [
        {"principal": me, "status": 200, "actions": [check("A/read", True), check("K/unwrap", False, other, True)]},
        {"principal": me, "status": 200, "actions": [check("K/read", True, data=True)]},
        {"principal": me, "status": 403, "actions": [check("A/write", False)]},  # removed on purpose: in the role
        {"principal": me, "status": 403, "actions": [check("B/delete", False)]},
        {"principal": other, "status": 403, "actions": [check("C/write", False, other)]},
        {"principal": me, "status": 200, "actions": [check("Microsoft.Resources/subscriptions/read", False)]},
    ]
    coverage.add(calls, me, "t::one")
    assert coverage.never_exercised == [("a/write", False)]
    assert coverage.missing == {("b/delete", False): "t::one"}
    text = "\n".join(coverage.report())
    assert "2 of the 3 permissions" in text and "MISSING" in text and "b/delete  (first in t::one)" in text
