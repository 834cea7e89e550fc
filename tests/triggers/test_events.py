"""events.py, pure: Microsoft's example events and alerts, claims, owner mapping, rejections, and property tests that
no payload, however broken, makes the parser raise anything but EventRejected or lose the good events beside it."""

import contextlib
import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remediations.changes import Caller
from remediations.errors import EventRejected, redact
from remediations.triggers.events import (
    MAX_BODY_BYTES,
    MAX_EVENTS,
    ValidationAnswer,
    is_own_identity,
    owner_of,
    parse_alert,
    parse_event,
    parse_eventgrid,
    work_item,
)
from remediations.work import WorkItem

SPECS = Path(__file__).resolve().parents[1] / "data" / "azure-specs" / "examples"
SUB = "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590"
VAULT = f"{SUB}/resourceGroups/rg-Sec/providers/Microsoft.KeyVault/vaults/kv-Payments"
DISK = f"{SUB}/resourceGroups/rg-Sec/providers/Microsoft.Compute/disks/disk-01"
VM = f"{SUB}/resourceGroups/rg-Sec/providers/Microsoft.Compute/virtualMachines/vm-01"
BOT_APPID = "7c1f0d2e-5a4b-4c3d-9e8f-0a1b2c3d4e5f"


def path(name: str) -> Path:
    return SPECS / ("monitor" if name.startswith("common-alert") else "eventgrid") / name


def example(name: str) -> Any:
    return json.loads(path(name).read_text())


def write_event(resource_id: str, operation: str = "Microsoft.KeyVault/vaults/write", **data: Any) -> dict[str, Any]:
    event = example("resource_write_success.json")
    event["subject"] = resource_id
    event["data"].update(resourceUri=resource_id, operationName=operation, **data)
    event["data"]["authorization"]["scope"] = resource_id
    return event


def key_event(event_type: str = "Microsoft.KeyVault.KeyNewVersionCreated", docs: bool = False) -> dict[str, Any]:
    event = (
        example("keyvault-secret-new-version-created.docs.json")[0]
        if docs
        else example("secret_new_version_created.json")
    )
    event["eventType"] = event_type
    event["topic"] = VAULT
    event["data"]["ObjectType"] = "Key"
    return event


def alert(targets: list[Any] | None = None, context: dict[str, Any] | None = None) -> dict[str, Any]:
    body = example("common-alert-schema-activity-log.json")
    if targets is not None:
        body["data"]["essentials"]["alertTargetIDs"] = targets
    if context is not None:
        body["data"]["alertContext"] = context
    return body


# -- Microsoft's examples ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("resource_write_success.json", "resource type microsoft.storage/storageaccounts is not watched"),
        (
            "resource_action_success.json",
            "resource type microsoft.eventhub/namespaces/authorizationrules is not watched",
        ),
        ("resource_delete_success.json", "event type Microsoft.Resources.ResourceDeleteSuccess is not watched"),
        ("secret_new_version_created.json", "event type Microsoft.KeyVault.SecretNewVersionCreated is not watched"),
        (
            "keyvault-secret-new-version-created.docs.json",
            "event type Microsoft.KeyVault.SecretNewVersionCreated is not watched",
        ),
    ],
)
def test_every_example_event_parses_and_the_unwatched_ones_say_why(name, reason):
    batch = parse_eventgrid(path(name).read_bytes())
    assert batch.rejected == () and batch.items == () and batch.validation is None
    (ignored,) = batch.ignored
    assert ignored.reason == reason
    assert ignored.event_id and ignored.event_time is not None and ignored.event_time.tzinfo is not None


def test_the_write_example_yields_its_caller_from_the_claim_uris():
    (item,) = parse_eventgrid([example("resource_write_success.json")]).ignored
    assert item.caller == Caller(upn="{user-name}", name="{full-name}", appid="{ID}", oid="{ID}")
    assert item.correlation_id == "{ID}"
    assert item.operation == "Microsoft.Storage/storageAccounts/write"
    assert item.event_time == datetime(2018, 7, 19, 18, 38, 4, 611735, tzinfo=UTC)


def test_a_vault_write_is_work_with_its_id_kept_and_its_key_lower_case():
    item = parse_event(write_event(VAULT))
    assert isinstance(item, WorkItem) and item.reason is None
    assert (item.source, item.resource_id, item.resource_type) == ("eventgrid", VAULT, "microsoft.keyvault/vaults")
    assert item.key == VAULT.lower()
    assert item.event_type == "Microsoft.Resources.ResourceWriteSuccess"


DES = f"{SUB}/resourceGroups/rg-Sec/providers/Microsoft.Compute/diskEncryptionSets/des-1"
VAULT_TYPE = "microsoft.keyvault/vaults"


@pytest.mark.parametrize(
    ("resource_id", "operation", "owner", "owner_type"),
    [
        (
            f"{VAULT}/providers/Microsoft.Authorization/locks/no-delete",
            "Microsoft.Authorization/locks/write",
            VAULT,
            VAULT_TYPE,
        ),
        (f"{VAULT}/providers/Microsoft.Resources/tags/default", "Microsoft.Resources/tags/write", VAULT, VAULT_TYPE),
        (
            f"{VAULT}/providers/microsoft.insights/diagnosticSettings/a",
            "microsoft.insights/diagnosticSettings/write",
            VAULT,
            VAULT_TYPE,
        ),
        (
            f"{DISK}/providers/Microsoft.Resources/tags/default",
            "Microsoft.Resources/tags/write",
            DISK,
            "microsoft.compute/disks",
        ),
        (
            f"{VM}/extensions/AzureDiskEncryption",
            "Microsoft.Compute/virtualMachines/extensions/write",
            VM,
            "microsoft.compute/virtualmachines",
        ),
        (
            f"{VAULT}/keys/cmk",
            "Microsoft.KeyVault/vaults/keys/write",
            f"{VAULT}/keys/cmk",
            "microsoft.keyvault/vaults/keys",
        ),
        (f"{DES}/", "Microsoft.Compute/diskEncryptionSets/write", DES, "microsoft.compute/diskencryptionsets"),
    ],
)
def test_writes_to_locks_tags_diagnostic_settings_and_extensions_map_to_the_resource(
    resource_id, operation, owner, owner_type
):
    item = parse_event(write_event(resource_id, operation))
    assert isinstance(item, WorkItem) and item.reason is None
    assert (item.resource_id, item.resource_type, item.operation) == (owner, owner_type, operation)


@pytest.mark.parametrize(
    ("resource_id", "reason"),
    [
        (f"{VAULT}/providers/Microsoft.Authorization/roleAssignments/1", "microsoft.authorization/roleassignments"),
        (f"{SUB}/providers/Microsoft.Authorization/locks/sub-lock", "microsoft.authorization/locks"),
        (f"{SUB}/resourceGroups/rg-Sec", "microsoft.resources/subscriptions/resourcegroups"),
        (f"{VAULT}/secrets/s1", "microsoft.keyvault/vaults/secrets"),
        ("not-an-id", "not a resource id"),
        (f"{SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults", "not a resource id"),
    ],
)
def test_other_resources_are_ignored_with_a_reason(resource_id, reason):
    item = parse_event(write_event(resource_id))
    assert isinstance(item, WorkItem) and item.reason is not None and reason in item.reason


def test_owner_of_rejects_malformed_ids():
    for bad in ("", "/", "/subscriptions/", "/subscriptions//resourceGroups/x", "/tenants/x"):
        with pytest.raises(ValueError):
            owner_of(bad)


def test_a_vm_deallocation_is_marked_and_other_actions_are_ignored():
    event = example("resource_action_success.json")
    event["subject"] = VM
    event["data"].update(resourceUri=VM, operationName="Microsoft.Compute/virtualMachines/deallocate/action")
    item = parse_event(event)
    assert isinstance(item, WorkItem) and item.reason is None and item.deallocated
    assert item.caller.appid == "{ID}" and item.caller.upn is None
    event["data"]["operationName"] = "Microsoft.Compute/virtualMachines/restart/action"
    ignored = parse_event(event)
    assert isinstance(ignored, WorkItem) and not ignored.deallocated
    assert ignored.reason == "action Microsoft.Compute/virtualMachines/restart/action is not watched"


@pytest.mark.parametrize(
    "event_type",
    ["Microsoft.KeyVault.KeyNewVersionCreated", "Microsoft.KeyVault.KeyNearExpiry", "Microsoft.KeyVault.KeyExpired"],
)
def test_key_events_name_the_key_under_its_vault(event_type):
    item = parse_event(key_event(event_type))
    assert isinstance(item, WorkItem) and item.reason is None
    assert item.resource_id == f"{VAULT}/keys/newsecret"
    assert item.resource_type == "microsoft.keyvault/vaults/keys"
    assert item.operation == event_type.rsplit(".", 1)[1]
    assert item.key_version == "ee059b2bb5bc48398a53b168c6cdcb10"
    assert item.key_expires == datetime.fromtimestamp(1559082102, UTC)


def test_key_events_accept_the_docs_typos_and_camel_case():
    docs = parse_event(key_event(docs=True))
    assert isinstance(docs, WorkItem) and docs.resource_id.endswith("/keys/newsecret")
    assert docs.key_version == "ee059b2bb5bc48398a53b168c6cdcb10"
    camel = key_event()
    camel["data"] = {k[0].lower() + k[1:]: v for k, v in camel["data"].items()}
    camel["data"]["exp"] = 1559082102  # a number, as the data-plane schema has it
    item = parse_event(camel)
    assert isinstance(item, WorkItem) and item.key_expires == datetime.fromtimestamp(1559082102, UTC)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ObjectType": "Secret"}, "event.data.ObjectType"),
        ({"ObjectName": None}, "event.data.ObjectName"),
        ({"EXP": "soon"}, "event.data.EXP"),
        ({"EXP": "9" * 30}, "event.data.EXP"),
    ],
)
def test_malformed_key_events_are_rejected_by_field(change, field):
    event = key_event()
    event["data"].update(change)
    with pytest.raises(EventRejected) as err:
        parse_event(event)
    assert err.value.field == field


def test_a_key_event_needs_a_vault_topic():
    event = key_event()
    event["topic"] = DISK
    with pytest.raises(EventRejected, match=r"event\.topic"):
        parse_event(event)


# -- validation and secrets -------------------------------------------------------------------------------------


def test_the_validation_event_yields_the_answer_with_the_url_redacted():
    batch = parse_eventgrid(path("subscription-validation.json").read_text())
    answer = batch.validation
    assert isinstance(answer, ValidationAnswer)
    assert answer.response == example("subscription-validation-response.json")
    assert batch.items == batch.ignored == batch.rejected == ()
    assert "token=" not in repr(answer) and "1A1A1A1A" not in repr(answer)
    assert (
        answer.redacted_url
        == "https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/myeventsub/validate?<redacted>"
    )


def test_secrets_in_urls_never_reach_reprs_or_reasons(caplog):
    url = "https://example.net/validate?id=1&code=S3CRET-CODE&sig=S3CRET-SIG"
    assert "S3CRET" not in redact(url) and "code=REDACTED" in redact(url)
    event = example("subscription-validation.json")[0]
    event["data"]["validationUrl"] = url
    assert "S3CRET" not in repr(parse_event(event))
    caplog.set_level("DEBUG", logger="remediations.triggers.events")
    weird = example("resource_delete_success.json")
    weird["eventType"] = f"Custom.Event?sig=S3CRET-SIG{'x' * 300}"
    (item,) = parse_eventgrid([weird]).ignored
    assert item.reason is not None and "S3CRET" not in item.reason and len(item.reason) < 200
    assert "S3CRET" not in caplog.text
    bad = write_event(VAULT)
    bad["data"]["claims"]["appid"] = {"token": "S3CRET-TOKEN"}
    with pytest.raises(EventRejected) as err:
        parse_event(bad)
    assert "S3CRET" not in str(err.value) and err.value.field == "event.data.claims.appid"


# -- alerts ---------------------------------------------------------------------------------------------------------


def test_the_alert_example_yields_its_target():
    batch = parse_alert(path("common-alert-schema-activity-log.json").read_bytes())
    (item,) = batch.items
    target = example("common-alert-schema-activity-log.json")["data"]["essentials"]["alertTargetIDs"][0]
    assert (item.source, item.resource_id, item.resource_type) == ("alert", target, "microsoft.compute/virtualmachines")
    assert item.correlation_id == "cccc2222-dd33-4444-55ee-666666ffffff"
    assert item.caller.upn == "user@contoso.com"  # claims are "{}": the caller field names the user
    assert item.operation == "Microsoft.Compute/virtualMachines/restart/action"
    assert item.event_time == datetime(2025, 4, 15, 11, 26, 21, 386000, tzinfo=UTC)


def test_alert_claims_are_a_json_string_inside_the_alert_context():
    context = example("common-alert-schema-activity-log-administrative-alertContext.json")["alertContext"]
    (item,) = parse_alert(alert(context=context)).items
    assert item.caller == Caller(
        appid="11112222-bbbb-3333-cccc-4444dddd5555", oid="22223333-cccc-4444-dddd-5555eeee6666"
    )
    assert is_own_identity(item, ["11112222-BBBB-3333-cccc-4444dddd5555"])
    context["claims"] = "{not json"
    with pytest.raises(EventRejected, match=r"data\.alertContext\.claims"):
        parse_alert(alert(context=context))


def test_an_alert_yields_one_item_per_target_and_rejects_only_the_bad_target():
    batch = parse_alert(alert(targets=[VAULT, 42, f"{VAULT}/providers/Microsoft.Authorization/locks/x", DISK, "junk"]))
    assert [i.resource_id for i in batch.items] == [VAULT, VAULT, DISK]
    assert [r.field for r in batch.rejected] == ["data.essentials.alertTargetIDs[1]"]
    assert [i.reason for i in batch.ignored] == ["not a resource id (expected an ARM id starting /subscriptions/{id})"]


def test_alerts_from_other_services_are_ignored_and_deallocations_marked():
    body = alert(targets=[VM])
    body["data"]["essentials"]["monitoringService"] = "Platform"
    (ignored,) = parse_alert(body).ignored
    assert ignored.reason == "monitoring service Platform is not watched"
    body = alert(targets=[VM])
    body["data"]["alertContext"]["operationName"] = "Microsoft.Compute/virtualMachines/deallocate/action"
    (item,) = parse_alert(body).items
    assert item.deallocated


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("schemaId"), "schemaId"),
        (lambda b: b.update(schemaId="Microsoft.Insights/activityLogs"), "schemaId"),
        (lambda b: b["data"].pop("essentials"), "data.essentials"),
        (lambda b: b["data"]["essentials"].update(alertTargetIDs="x"), "data.essentials.alertTargetIDs"),
        (lambda b: b["data"]["essentials"].pop("monitoringService"), "data.essentials.monitoringService"),
        (lambda b: b["data"].update(alertContext=[]), "data.alertContext"),
        (lambda b: b["data"]["alertContext"].update(eventTimestamp="yesterday"), "data.alertContext.eventTimestamp"),
    ],
)
def test_malformed_alerts_are_rejected_naming_the_field(mutate, field):
    body = alert()
    mutate(body)
    with pytest.raises(EventRejected) as err:
        parse_alert(json.dumps(body))
    assert err.value.field == field
    assert "expected" in err.value.reason or "missing" in err.value.reason


# -- batches, limits and the queue form -----------------------------------------------------------------------------


def test_one_bad_event_in_a_batch_loses_nothing_else():
    good = write_event(VAULT)
    bad = write_event(DISK)
    bad["eventTime"] = 1234
    batch = parse_eventgrid(json.dumps([good, bad, example("resource_delete_success.json"), "x", key_event()]))
    assert [i.resource_id for i in batch.items] == [VAULT, f"{VAULT}/keys/newsecret"]
    assert len(batch.ignored) == 1
    assert [(r.index, r.field) for r in batch.rejected] == [(1, "[1].eventTime"), (3, "[3]")]
    assert "expected a string, got a number" in str(batch.rejected[0])


def test_bodies_over_1_mb_and_batches_over_5000_events_are_refused():
    with pytest.raises(EventRejected, match="at most 1048576"):
        parse_eventgrid(b"[" + b" " * MAX_BODY_BYTES + b"]")
    with pytest.raises(EventRejected, match="at most 1048576"):
        parse_alert("x" * (MAX_BODY_BYTES + 1))
    with pytest.raises(EventRejected, match=f"{MAX_EVENTS + 1} events"):
        parse_eventgrid(json.dumps([{}] * (MAX_EVENTS + 1)))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "not valid JSON"),
        (b"\xff\xfe\xfa", "not valid JSON"),
        (b"[" * 100_000, "nested too deeply"),
        (b"[" + b"9" * 5000 + b"]", "not valid JSON"),
    ],
)
def test_unreadable_bodies_are_rejected(body, reason):
    with pytest.raises(EventRejected, match=reason):
        parse_eventgrid(body)


def test_cloud_events_are_rejected_with_the_schema_to_use():
    event = {"specversion": "1.0", "type": "Microsoft.Resources.ResourceWriteSuccess", "id": "1", "source": SUB}
    (rejected,) = parse_eventgrid([event]).rejected
    assert "Event Grid schema" in rejected.reason


def test_is_own_identity_matches_the_bots_client_or_object_id():
    item = parse_event(write_event(VAULT))
    assert isinstance(item, WorkItem)
    assert not is_own_identity(item, [BOT_APPID])
    ours = WorkItem("eventgrid", VAULT, caller=Caller(appid=BOT_APPID.upper()))
    assert is_own_identity(ours, [BOT_APPID, ""])
    assert is_own_identity(WorkItem("eventgrid", VAULT, caller=Caller(oid="o-1")), ["o-1"])
    assert not is_own_identity(WorkItem("eventgrid", VAULT), [BOT_APPID, ""])


def test_work_items_round_trip_through_their_queue_form():
    for item in (parse_event(write_event(VAULT)), parse_event(key_event()), work_item(DISK, "sweep")):
        assert isinstance(item, WorkItem)
        assert WorkItem.from_json(item.to_json()) == item
    assert work_item(DISK, "rotation").resource_type == "microsoft.compute/disks"
    with pytest.raises(ValueError, match="valid: eventgrid, alert, sweep, rotation"):
        work_item(DISK, "timer")
    for bad in ("[]", '{"source":"eventgrid"}', '{"source":"mail","resourceId":"x"}', "{", '{"source":"alert",'
                '"resourceId":"x","deallocated":"yes"}'):  # fmt: skip
        with pytest.raises(EventRejected):
            WorkItem.from_json(bad)


# -- property tests: nothing but EventRejected, and nothing good lost ------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
EVENT_EXAMPLES = [
    write_event(VAULT),
    write_event(f"{VAULT}/providers/Microsoft.Authorization/locks/x"),
    key_event(),
    key_event(docs=True),
    example("resource_action_success.json"),
    example("subscription-validation.json")[0],
]
ALERT_EXAMPLES = [
    alert(),
    alert(context=example("common-alert-schema-activity-log-administrative-alertContext.json")["alertContext"]),
]
# Field names the parser reads, so that mutations often hit a field it cares about.
KEYS = st.sampled_from(
    ["data", "eventType", "id", "eventTime", "subject", "topic", "resourceUri", "operationName", "claims", "appid",
     "ObjectName", "ObjectType", "EXP", "schemaId", "essentials", "alertTargetIDs", "alertContext", "monitoringService",
     "validationCode", "caller", "eventTimestamp"]
)  # fmt: skip


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: Any, data: st.DataObject) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 4))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        action = data.draw(st.sampled_from(["delete", "replace", "rename", "add"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = data.draw(JSON)
        elif action == "rename" and isinstance(parent, dict):
            parent[data.draw(KEYS)] = parent.pop(path[-1])
        elif isinstance(parent, dict):
            parent[data.draw(KEYS)] = data.draw(JSON)
    return doc


def _parse_both(body: Any) -> None:
    for parse in (parse_eventgrid, parse_alert):
        with contextlib.suppress(EventRejected):
            parse(body)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_arbitrary_json_is_parsed_or_rejected(value):
    _parse_both(json.dumps(value))
    _parse_both(value)
    with contextlib.suppress(EventRejected):
        parse_event(value)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_parsed_or_rejected(body):
    _parse_both(body)


@settings(max_examples=120, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_examples_are_parsed_or_rejected(data):
    doc = _mutate(data.draw(st.sampled_from(EVENT_EXAMPLES + ALERT_EXAMPLES)), data)
    body = json.dumps(doc).encode()
    _parse_both(body)
    _parse_both([doc])
    cut = data.draw(st.integers(0, len(body)))
    _parse_both(body[:cut])


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_good_event_survives_any_garbage_around_it(data):
    good = write_event(VAULT)
    good["id"] = "the-good-one"
    batch_list = [
        data.draw(JSON) if data.draw(st.booleans()) else _mutate(data.draw(st.sampled_from(EVENT_EXAMPLES)), data)
        for _ in range(data.draw(st.integers(0, 6)))
    ]
    garbage = list(batch_list)
    batch_list.insert(data.draw(st.integers(0, len(garbage))), good)
    batch = parse_eventgrid(json.dumps(batch_list))
    assert next(i for i in batch.items if i.event_id == "the-good-one").resource_id == VAULT
    validations = 1 if batch.validation else 0
    assert len(batch.items) + len(batch.ignored) + len(batch.rejected) + validations == len(batch_list)


@pytest.mark.parametrize(
    ("event_type", "object_type"),
    [
        ("Microsoft.KeyVault.SecretNearExpiry", "Secret"),
        ("Microsoft.KeyVault.SecretExpired", "Secret"),
        ("Microsoft.KeyVault.CertificateNearExpiry", "Certificate"),
        ("Microsoft.KeyVault.CertificateExpired", "Certificate"),
    ],
)
def test_secret_and_certificate_expiry_events_re_read_their_vault(event_type, object_type):
    event = key_event(event_type)  # Microsoft's SecretNewVersionCreated example, retyped (same data schema)
    event["data"]["ObjectType"] = object_type
    item = parse_event(event)
    assert isinstance(item, WorkItem) and item.reason is None
    assert item.resource_id == VAULT and item.resource_type == "microsoft.keyvault/vaults"
    assert item.operation == event_type.rsplit(".", 1)[1]
    event["data"]["ObjectType"] = "Key"
    with pytest.raises(EventRejected) as err:
        parse_event(event)
    assert err.value.field == "event.data.ObjectType"
