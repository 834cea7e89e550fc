"""Notices for the card, delivery and README tests: fixed times, fixed links, real policy titles and reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from remediations.notices import approvals
from remediations.notices.compose import Line, Notice
from remediations.policy.loader import Policy, first_sentence, load_policies
from remediations.settings import DEFAULT_POLICIES

SUB = "00000000-0000-0000-0000-00000000c0de"
TENANT = "11111111-2222-3333-4444-555555555555"
RUN = "run-20260301T023000Z"
NOW = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)
EXPIRES = datetime(2026, 3, 8, 2, 30, tzinfo=UTC)
APPROVAL_KEY = "approval-key-for-tests-only-0123456789"
APPROVAL_URL = "https://cryptward-func.azurewebsites.net/api/approvals"
VAULT = f"/subscriptions/{SUB}/resourceGroups/rg-keys-weu/providers/Microsoft.KeyVault/vaults/kv-payments-weu"
DISK = f"/subscriptions/{SUB}/resourceGroups/rg-app-weu/providers/Microsoft.Compute/disks/vm-app-1_OsDisk_1"
VM = f"/subscriptions/{SUB}/resourceGroups/rg-app-weu/providers/Microsoft.Compute/virtualMachines/vm-app-1"
KEY = f"{VAULT}/keys/disk-key"


@cache
def policies() -> dict[str, Policy]:
    return {p.id: p for p in load_policies(DEFAULT_POLICIES)}


def line(kind, status, policy_id, summary, before=None, after=None, detail="", change_id=None, resource_id=DISK):
    policy = policies()[policy_id]
    links = {}
    if status == "pending-approval" and change_id:
        for decision in approvals.DECISIONS:
            links[f"{decision}_url"] = approvals.make_link(
                APPROVAL_URL,
                change_id,
                resource_id,
                decision,
                EXPIRES,
                APPROVAL_KEY,
                nonce=f"nonce-{decision}-{change_id}",
            )
    return Line(
        kind,
        status,
        (policy_id,),
        policy.title,
        first_sentence(policy.description),
        summary,
        before or {},
        after or {},
        detail,
        change_id,
        **links,
    )


def notice(resource_id: str, *lines: Line, owners=("alice@contoso.com",), source="tag") -> Notice:
    return Notice(resource_id, RUN, tuple(lines), NOW, tuple(owners), source, TENANT)


def applied() -> Notice:
    return notice(
        VAULT,
        line(
            "applied",
            "applied",
            "kv-purge-protection",
            "Turn on purge protection for key vault kv-payments-weu, so that nothing deleted from it can be purged "
            "before its retention period ends; this cannot be turned off again.",
            {"properties.enablePurgeProtection": None},
            {"properties.enablePurgeProtection": True},
            "written and verified",
            "a1b2c3d4e5f60718",
        ),
        line(
            "applied",
            "applied",
            "kv-delete-lock",
            "Add the CanNotDelete lock cryptward-cannot-delete to key vault kv-payments-weu, so that deleting the "
            "vault first needs someone to remove the lock.",
            {"properties.level": None},
            {"properties.level": "CanNotDelete"},
            "written and verified",
            "0f1e2d3c4b5a6978",
        ),
    )


def pending() -> Notice:
    return notice(
        DISK,
        line(
            "pending",
            "pending-approval",
            "disk-cmk",
            "Encrypt disk vm-app-1_OsDisk_1 with the customer-managed key of disk encryption set des-weu "
            "(EncryptionAtRestWithCustomerKey) once its VM is deallocated; this choice cannot be changed later.",
            {"properties.encryption.type": "EncryptionAtRestWithPlatformKey"},
            {"properties.encryption.type": "EncryptionAtRestWithCustomerKey"},
            "a person must approve this change first",
            "d15c0ffee0000001",
        ),
        owners=("bob@contoso.com",),
        source="caller",
    )


def skipped() -> Notice:
    return notice(
        VAULT,
        line(
            "skipped",
            "not-configured",
            "kv-diagnostic-setting",
            "No Log Analytics workspace is configured (CRYPTWARD_WORKSPACE_ID), so no diagnostic setting is added.",
        ),
        line(
            "skipped",
            "audit-only",
            "kv-rbac-authorization",
            "Key vaults use Azure RBAC: the policy runs in audit mode, so this is reported and nothing is changed.",
        ),
    )


def failed() -> Notice:
    return notice(
        KEY,
        line(
            "failed",
            "failed",
            "key-rotation-policy",
            "Give key disk-key a rotation policy: a new version every 365 days, expiring after 2 years.",
            {"attributes.expiryTime": None},
            {"attributes.expiryTime": "P2Y"},
            "The user, group or application does not have keys rotationpolicy/write permission on key vault "
            "kv-payments-weu.",
            "feedface00000002",
        ),
        owners=(),
        source="default",
    )


def escalated() -> Notice:
    return notice(
        VM,
        line(
            "escalated",
            "blocked",
            "vm-encryption-at-host",
            "Turn on encryption at host for VM vm-app-1 once it is deallocated.",
            {"properties.securityProfile.encryptionAtHost": None},
            {"properties.securityProfile.encryptionAtHost": True},
            "waits for: Register the EncryptionAtHost feature (failed)",
            "b10cced000000003",
        ),
        Line(
            "escalated",
            "escalated",
            (),
            "A person must look at this resource",
            "",
            "Someone turned encryption at host off again 3 times in the last hour; Cryptward stopped fixing it.",
        ),
    )


def many(count: int, resource_id: str = VAULT) -> Notice:
    """`count` key rotation changes on one vault's keys, a mix of kinds (a big first sweep)."""
    kinds = [
        ("applied", "applied"),
        ("pending", "pending-approval"),
        ("failed", "failed"),
        ("skipped", "not-configured"),
    ]
    lines = []
    for i in range(count):
        kind, status = kinds[i % 7 % 4]
        lines.append(
            line(
                kind,
                status,
                "key-rotation-policy",
                f"Give key key-{i:04d} a rotation policy: a new version every 365 days, expiring after 2 years.",
                {"attributes.expiryTime": None, "lifetimeActions[action.type=rotate]": None},
                {"attributes.expiryTime": "P2Y", "lifetimeActions[action.type=rotate]": {"timeAfterCreate": "P365D"}},
                "written and verified" if kind == "applied" else "see the run's audit record",
                f"{i:016x}",
                resource_id,
            )
        )
    return notice(resource_id, *lines)


SAMPLES = {
    "applied": applied,
    "pending-with-approval-buttons": pending,
    "skipped": skipped,
    "failed": failed,
    "escalated": escalated,
    "digest-200": lambda: many(200),
}


def timedelta_minutes(minutes: int):
    from datetime import timedelta

    return timedelta(minutes=minutes)


def example() -> Notice:
    """The README's example: a key vault with a change applied, one waiting for approval and one left alone."""
    lock, purge = applied().lines[1], applied().lines[0]
    waiting = line(
        "pending",
        "pending-approval",
        "kv-purge-protection",
        purge.summary,
        purge.before,
        purge.after,
        "a person must approve this change first",
        purge.change_id,
        VAULT,
    )
    return notice(VAULT, lock, waiting, skipped().lines[0])
