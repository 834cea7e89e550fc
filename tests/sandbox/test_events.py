"""sandbox/events.py, pure: generated events against Microsoft's examples field by field, claims, filters."""

import json
from pathlib import Path

import pytest

from sandbox import events
from sandbox.identity import Directory

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "azure-specs" / "examples" / "eventgrid"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def example(name):
    return json.loads((EXAMPLES / name).read_text())


def from_example(ex, claims):
    """An event for the example's own operation, with the example's placeholders for ids, times and addresses."""
    data = ex["data"]
    http = data.get("httpRequest") or {
        "method": "PUT",
        "url": "https://management.azure.com/x",
        "clientRequestId": "{ID}",
    }
    return events.resource_event(
        operation_name=data["operationName"],
        resource_id=data["resourceUri"],
        status=data["status"],
        http_method=http["method"],
        url=http["url"],
        claims=claims,
        correlation_id=data["correlationId"],
        time="2018-07-19T18:38:04.6117357Z",
        tenant_id=data["tenantId"],
        event_id=ex["id"],
        client_request_id=http["clientRequestId"],
        topic=ex["topic"],
        evidence={k: "{ID}" for k in ("roleAssignmentId", "roleDefinitionId", "principalId")}
        | {"role": "Contributor", "roleAssignmentScope": "/subscriptions/{subscription-id}", "principalType": "User"},
        client_ip="{IP-address}",
    )


def token_claims(kind):
    d = Directory(TENANT, b"k" * 32)
    return d.claims(d.named("admin" if kind == "user" else "bot"), now=1_700_000_000)


@pytest.mark.parametrize(
    ("name", "event_type", "kind"),
    [
        ("resource_write_success.json", "Microsoft.Resources.ResourceWriteSuccess", "user"),
        ("resource_delete_success.json", "Microsoft.Resources.ResourceDeleteSuccess", "user"),
        ("resource_action_success.json", "Microsoft.Resources.ResourceActionSuccess", "sp"),
    ],
)
def test_resource_events_have_the_examples_shape(name, event_type, kind):
    ex = example(name)
    ev = from_example(ex, token_claims(kind))
    assert ev["eventType"] == event_type
    assert list(ev) == list(ex)  # the same fields, in the same order
    assert {k: v for k, v in ev.items() if k not in ("data", "eventTime")} == {
        k: v for k, v in ex.items() if k not in ("data", "eventTime")
    }
    data, want = ev["data"], ex["data"]
    # The write example alone lacks httpRequest; Azure sends it on writes too (see sandbox/events.py).
    assert set(data) == set(want) | {"httpRequest"}
    for field in set(want) - {"claims", "authorization"}:
        assert data[field] == want[field], field
    assert data["authorization"]["scope"] == want["authorization"]["scope"]
    assert data["authorization"]["action"] == want["authorization"]["action"]
    # The RBAC form of the evidence (the action example's); write/delete show a classic "Subscription Admin".
    assert set(data["authorization"]["evidence"]) == set(
        example("resource_action_success.json")["data"]["authorization"]["evidence"]
    )
    if kind == "sp":
        assert (
            data["authorization"]["evidence"] | {"role": "Contributor", "principalType": "ServicePrincipal"}
            == (want["authorization"]["evidence"])
        )
    # Claims: the example's claim names (URIs for the WS-Fed ones), every value a string.
    ours, theirs = set(data["claims"]), set(want["claims"])
    assert ours - theirs <= {"idtyp", "xms_mirid"}
    missing = theirs - ours
    assert missing <= {  # what our tokens do not carry: session and device facts of a real sign-in
        "aio", "_claim_names", "_claim_sources", "http://schemas.microsoft.com/claims/authnclassreference",
        "http://schemas.microsoft.com/2012/01/devicecontext/claims/identifier", "e_exp", "ipaddr", "onprem_sid",
        "puid", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
        "http://schemas.microsoft.com/identity/claims/identityprovider",
    }  # fmt: skip
    assert all(isinstance(v, str) for v in data["claims"].values())


def test_claims_use_the_uris_and_string_values():
    d = Directory(TENANT, b"k" * 32)
    admin = d.named("admin")
    claims = events.event_claims(d.claims(admin, now=0), issued_at=1_700_000_000)
    assert claims["http://schemas.microsoft.com/identity/claims/objectidentifier"] == admin.object_id
    assert claims["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"] == admin.upn
    assert claims["http://schemas.microsoft.com/identity/claims/tenantid"] == TENANT
    assert claims["http://schemas.microsoft.com/claims/authnmethodsreferences"] == "pwd"
    assert (claims["iat"], claims["exp"]) == ("1700000000", str(1_700_000_000 + 86400))
    assert "oid" not in claims and "upn" not in claims


@pytest.mark.parametrize(
    ("method", "status", "expected"),
    [
        ("PUT", "Succeeded", "ResourceWriteSuccess"),
        ("PATCH", "Failed", "ResourceWriteFailure"),
        ("PUT", "Canceled", "ResourceWriteCancel"),
        ("DELETE", "Succeeded", "ResourceDeleteSuccess"),
        ("DELETE", "Failed", "ResourceDeleteFailure"),
        ("POST", "Succeeded", "ResourceActionSuccess"),
        ("POST", "Failed", "ResourceActionFailure"),
    ],
)
def test_event_type_by_method_and_status(method, status, expected):
    assert events.resource_event_type(method, status) == f"Microsoft.Resources.{expected}"


def test_evidence_from_a_role_assignment():
    assignment = {
        "id": "/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/0b1e2c3d-0000-4000-8000-00000000000a",
        "name": "0b1e2c3d-0000-4000-8000-00000000000a",
        "properties": {
            "roleDefinitionId": "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/"
            "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
            "principalId": "11111111-2222-4333-8444-555555555555",
            "principalType": "User",
            "scope": "/subscriptions/s",
        },
    }
    assert events.evidence(assignment, "Owner") == {
        "role": "Owner",
        "roleAssignmentScope": "/subscriptions/s",
        "roleAssignmentId": "0b1e2c3d00004000800000000000000a",
        "roleDefinitionId": "8e3af657a8ff443ca75c2fe8c4bcb635",
        "principalId": "11111111222243338444555555555555",
        "principalType": "User",
    }
    assert events.evidence(None, None) is None


def test_key_event_has_the_key_vault_examples_shape():
    spec = example("secret_new_version_created.json")
    docs = example("keyvault-secret-new-version-created.docs.json")[0]
    ev = events.key_event(
        "KeyNewVersionCreated",
        vault_id=spec["topic"],
        vault_name="sample-kv",
        key_id="https://sample-kv.vault.azure.net/keys/newkey/ee059b2bb5bc48398a53b168c6cdcb10",
        key_name="newkey",
        version="ee059b2bb5bc48398a53b168c6cdcb10",
        nbf=1559081980,
        exp=1559082102,
        time=spec["eventTime"],
        event_id=spec["id"],
    )
    assert list(ev) == list(spec)
    assert ev["eventType"] == "Microsoft.KeyVault.KeyNewVersionCreated"
    assert (ev["dataVersion"], ev["metadataVersion"], ev["topic"]) == ("1", "1", spec["topic"])
    assert list(ev["data"]) == list(spec["data"])  # PascalCase, as delivered (not the schema's camelCase)
    # The docs example carries two typos (a space after "ObjectName", one before the version): the same otherwise.
    docs_data = {k.strip(): v.strip() for k, v in docs["data"].items()}
    assert list(docs_data) == list(spec["data"])
    expected = dict(spec["data"], Id=ev["data"]["Id"], ObjectType="Key", ObjectName="newkey")
    assert ev["data"] == expected
    assert ev["subject"] == "newkey"


def test_validation_event_is_the_docs_example():
    ex = example("subscription-validation.json")[0]
    ev = events.validation_event(
        topic=ex["topic"],
        code=ex["data"]["validationCode"],
        validation_url=ex["data"]["validationUrl"],
        time=ex["eventTime"],
        event_id=ex["id"],
    )
    assert ev == ex and list(ev) == list(ex)


def test_cloud_event_form():
    ev = example("resource_delete_success.json")
    ce = events.to_cloud_event(ev)
    assert ce == {
        "id": ev["id"],
        "source": ev["topic"],
        "specversion": "1.0",
        "type": "Microsoft.Resources.ResourceDeleteSuccess",
        "subject": ev["subject"],
        "time": ev["eventTime"],
        "data": ev["data"],
    }


LOCK = example("resource_write_success.json") | {"subject": "/subscriptions/s/resourceGroups/rg/providers/Lk/locks/x"}
LOCK["data"] = dict(LOCK["data"], operationName="Microsoft.Authorization/locks/write")


@pytest.mark.parametrize(
    ("flt", "hit"),
    [
        (None, True),
        ({"includedEventTypes": ["microsoft.resources.resourcewritesuccess"]}, True),
        ({"includedEventTypes": ["Microsoft.Resources.ResourceDeleteSuccess"]}, False),
        ({"subjectBeginsWith": "/SUBSCRIPTIONS/s/"}, True),
        ({"subjectBeginsWith": "/SUBSCRIPTIONS/s/", "isSubjectCaseSensitive": True}, False),
        ({"subjectEndsWith": "/locks/x"}, True),
        ({"subjectEndsWith": "/locks/y"}, False),
        (
            {
                "advancedFilters": [
                    {
                        "operatorType": "StringIn",
                        "key": "data.operationName",
                        "values": ["x", "MICROSOFT.AUTHORIZATION/LOCKS/WRITE"],
                    }
                ]
            },
            True,
        ),
        (
            {
                "advancedFilters": [
                    {
                        "operatorType": "StringNotIn",
                        "key": "data.operationName",
                        "values": ["Microsoft.Authorization/locks/write"],
                    }
                ]
            },
            False,
        ),
        (
            {
                "advancedFilters": [
                    {
                        "operatorType": "StringBeginsWith",
                        "key": "data.operationName",
                        "values": ["Microsoft.Authorization/"],
                    }
                ]
            },
            True,
        ),
        ({"advancedFilters": [{"operatorType": "StringEndsWith", "key": "subject", "values": ["/x"]}]}, True),
        (
            {"advancedFilters": [{"operatorType": "StringContains", "key": "subject", "values": ["/providers/lk/"]}]},
            True,
        ),
        ({"advancedFilters": [{"operatorType": "StringContains", "key": "data.nothing", "values": ["a"]}]}, False),
        ({"advancedFilters": [{"operatorType": "StringNotContains", "key": "data.nothing", "values": ["a"]}]}, True),
        ({"advancedFilters": [{"operatorType": "IsNotNull", "key": "data.claims.appid"}]}, True),
        (
            {
                "advancedFilters": [
                    {
                        "operatorType": "StringBeginsWith",
                        "key": "data.operationName",
                        "values": ["Microsoft.Authorization/"],
                    },
                    {"operatorType": "StringEndsWith", "key": "subject", "values": ["/y"]},
                ]
            },
            False,  # filters are ANDed
        ),
    ],
)
def test_filters(flt, hit):
    assert events.matches(flt, LOCK) is hit


def test_batches_respect_count_and_size():
    evs = [{"n": i, "pad": "x" * 400} for i in range(5)]
    assert [len(b) for b in events.batches(evs, 2, 64)] == [2, 2, 1]
    assert [len(b) for b in events.batches(evs, 10, 1)] == [2, 2, 1]  # ~440 bytes each, 1 KB a batch
