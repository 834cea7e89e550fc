"""rotation.py against the sandbox's estate (keys 120 days old), acting as the bot with exactly the custom role of
infra/cryptward-role.json: due and not-due keys by the sandbox clock, disk encryption sets that follow (or fail to
follow) automatically and ones the bot moves, duplicate timer runs and events, concurrent workers, missing
permissions. Durations and due dates: tests/rotation/test_keyversions.py."""

import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from remediations.engine.reader import Scope
from remediations.errors import AzureAccessError
from remediations.policy.loader import load_policies
from remediations.rotation.keyversions import (
    ESCALATED,
    FAILED,
    ROTATED,
    UPDATED,
    VERIFIED,
    WAITING,
    KeyCheck,
    KeyVersion,
    version_of,
)
from remediations.rotation.run import held_back, on_key_event, proofs, rotate, rotation
from remediations.settings import Settings
from remediations.store.ledger import Ledger, Tables
from tests.waits import limit

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
KV_API, DES_API, ROLE_API = "2026-05-15", "2026-03-02", "2022-04-01"
ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
CRYPTO_OFFICER = "14b46e9e-c2b7-41b4-b07b-48a6ebf60603"
DAY = 86400


# --- against the sandbox -----------------------------------------------------------------------------------------


def names(sandbox):
    group = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-keys-weu"
    vault = f"{group}/providers/Microsoft.KeyVault/vaults/kv-weu-disks"
    return {
        "group": group,
        "vault": vault,
        "key": f"{vault}/keys/des-key",
        "des": f"{group}/providers/Microsoft.Compute/diskEncryptionSets/des-weu",
    }


def clock(sandbox) -> datetime:
    return datetime.fromisoformat(sandbox.admin("GET", "/_sandbox/clock")["now"].replace("Z", "+00:00"))


def assign(admin, scope, principal_id, role):
    sub = scope.split("/")[2]
    body = {
        "properties": {
            "roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}",
            "principalId": principal_id,
        }
    }
    admin.write("PUT", f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}", ROLE_API, body)


def versions(admin, key_id):
    return [v["name"] for v in admin.list(f"{key_id}/versions", KV_API)]


def des_version(admin, des_id):
    return version_of(admin.get(des_id, DES_API)["properties"]["activeKey"]["keyUrl"])


def writes_by(sandbox, name, since):
    oid = sandbox.principal(name).object_id
    return [c for c in sandbox.calls(since) if c["principal"] == oid and c["method"] != "GET"]


@pytest.fixture
def estate(sandbox, azure_as, grant_custom_role):
    """The estate, the bot with its role, and the set's identity able to use its key (as the des-key-access fix
    leaves it). `auto=True` gives the vault purge protection and the set automatic rotation, as an admin would."""
    sandbox.reset("estate")
    grant_custom_role("bot")
    admin = azure_as("admin")
    n = names(sandbox)
    des = admin.get(n["des"], DES_API)
    with sandbox.roles_at_once():  # granted long before (the sandbox's role propagation delay is past)
        assign(admin, n["vault"], des["identity"]["principalId"], ENCRYPTION_USER)

    def make(*, auto: bool = False, purge_protection: bool | None = None):
        if auto or purge_protection:
            admin.write("PATCH", n["vault"], KV_API, {"properties": {"enablePurgeProtection": True}})
        if auto:
            active = {"sourceVault": {"id": n["vault"]}, "keyUrl": des["properties"]["activeKey"]["keyUrl"]}
            body = {"properties": {"rotationToLatestKeyVersionEnabled": True, "activeKey": active}}
            admin.write("PATCH", n["des"], DES_API, body)
        return admin

    return make


def run(sandbox, azure, rotate_vaults=(), **modes):
    return rotate(
        Scope((sandbox.subscription_id,)),
        azure=azure,
        settings=Settings(modes=modes, rotate_vaults=tuple(rotate_vaults)),
        now=clock(sandbox),
        policies=POLICIES,
    )


def test_a_due_key_is_rotated_and_a_fixed_version_set_moved_to_it_and_a_second_run_does_nothing(
    sandbox, estate, azure_as
):
    admin, n = estate(), names(sandbox)
    old = versions(admin, n["key"])
    report = run(sandbox, azure_as("bot"), **{"des-auto-rotation": "audit"})

    (rotated,) = report.rotated
    assert rotated.resource_id.lower() == n["key"].lower() and rotated.before_version == old[-1]
    assert "older than 90 days" in rotated.reason
    assert versions(admin, n["key"]) == [*old, rotated.after_version]
    (moved,) = report.of("update-des")
    assert (moved.status, moved.before_version, moved.after_version) == (UPDATED, old[-1], rotated.after_version)
    assert des_version(admin, n["des"]) == rotated.after_version
    # key-rotation-policy (remediate) gave the key a rotation policy first, through the planner and the applier.
    assert [(r.action, r.status) for r in report.of("rotation-policy")] == [("rotation-policy", "applied")]
    assert [c.key_id.rsplit("/", 1)[-1] for c in report.checked] == ["des-key"]  # short-key: no set uses it

    since = len(sandbox.calls())
    again = run(sandbox, azure_as("bot"), **{"des-auto-rotation": "audit"})
    assert writes_by(sandbox, "bot", since) == []
    assert again.rotated == [] and versions(admin, n["key"]) == [*old, rotated.after_version]
    assert [(r.action, r.status) for r in again.results] == [("follow-through", VERIFIED)]


def test_a_key_is_not_due_before_its_maximum_age_and_due_after_it(sandbox, estate, azure_as):
    admin, n = estate(), names(sandbox)
    first = run(sandbox, azure_as("bot"))
    assert len(first.rotated) == 1
    sandbox.advance(80 * DAY)
    assert run(sandbox, azure_as("bot")).rotated == []
    # The key has a rotation policy now: Key Vault gets a day's grace to rotate it itself (90 + 1 days).
    sandbox.advance(10.5 * DAY)
    assert run(sandbox, azure_as("bot")).rotated == []
    sandbox.advance(DAY)
    assert len(run(sandbox, azure_as("bot")).rotated) == 1
    assert len(versions(admin, n["key"])) == 3


def test_an_opted_in_vault_has_its_keys_rotated_and_a_tag_shortens_their_age_to_the_floor_only(
    sandbox, estate, azure_as
):
    admin, n = estate(), names(sandbox)
    admin.write("PATCH", n["vault"], KV_API, {"tags": {"cryptward-max-key-age": "P180D"}})
    fresh = f"{n['vault']}/keys/fresh-key"
    admin.write("PUT", fresh, KV_API, {"tags": {"cryptward-max-key-age": "P2D"}, "properties": {"kty": "RSA"}})

    report = run(sandbox, azure_as("bot"), rotate_vaults=[n["vault"]])
    assert report.rotated == []  # 120 days < 180 days; the fresh key is 0 days old
    ages = {c.key_id.rsplit("/", 1)[-1]: c.max_age for c in report.checked}
    assert ages == {"des-key": "P180D", "fresh-key": "P30D", "short-key": "P180D"}  # P2D: below the tags' floor
    assert any("shorter than a tag may set" in note for note in report.notes)

    sandbox.advance(3 * DAY)
    assert run(sandbox, azure_as("bot"), rotate_vaults=[n["vault"]]).rotated == []
    sandbox.advance(28 * DAY)
    assert [r.key_id.rsplit("/", 1)[-1] for r in run(sandbox, azure_as("bot"), rotate_vaults=[n["vault"]]).rotated] == [
        "fresh-key"
    ]


def test_audit_mode_reports_a_due_key_without_rotating_it(sandbox, estate, azure_as):
    admin, n = estate(), names(sandbox)
    old = versions(admin, n["key"])
    report = run(sandbox, azure_as("bot"), **{"key-rotation-policy": "audit"})
    assert [(r.action, r.status) for r in report.results] == [("rotate", "due")]
    assert versions(admin, n["key"]) == old


def test_a_set_with_automatic_rotation_follows_within_the_hour_and_a_later_run_verifies_it(sandbox, estate, azure_as):
    admin, n = estate(auto=True), names(sandbox)
    report = run(sandbox, azure_as("bot"))
    (rotated,) = report.rotated
    (follow,) = report.of("follow-through")
    assert follow.status == WAITING and follow.after_version == rotated.after_version
    assert "within an hour" in follow.reason and follow.disks == ()

    sandbox.advance(3600)
    later = run(sandbox, azure_as("bot"))
    assert later.rotated == []
    (verified,) = later.of("follow-through")
    assert verified.status == VERIFIED and verified.before_version == rotated.after_version
    assert des_version(admin, n["des"]) == rotated.after_version


def test_a_set_that_does_not_follow_is_escalated_with_how_long_it_has_been(sandbox, estate, azure_as):
    admin, n = estate(auto=True), names(sandbox)
    sandbox.admin("POST", "/_sandbox/meta", {"resourceId": n["des"], "facts": {"autoRotationStuck": True}})
    old = des_version(admin, n["des"])
    (rotated,) = run(sandbox, azure_as("bot")).rotated

    sandbox.advance(2 * 3600)
    later = run(sandbox, azure_as("bot"))
    (escalation,) = later.escalations
    assert escalation.resource_id.lower() == n["des"].lower() and escalation.action == "follow-through"
    assert (escalation.before_version, escalation.after_version) == (old, rotated.after_version)
    assert escalation.overdue is not None and escalation.overdue >= timedelta(hours=2)
    assert "2 h 0 min after version" in escalation.reason and "promises an hour" in escalation.reason
    assert later.rotated == []


def test_auto_rotation_is_turned_on_first_where_the_policy_remediates_and_the_vault_has_purge_protection(
    sandbox, estate, azure_as
):
    admin, n = estate(purge_protection=True), names(sandbox)
    report = run(sandbox, azure_as("bot"))
    assert [(r.action, r.status) for r in report.of("auto-rotation")] == [("auto-rotation", "applied")]
    assert admin.get(n["des"], DES_API)["properties"]["rotationToLatestKeyVersionEnabled"] is True
    assert len(report.rotated) == 1
    assert [r.status for r in report.of("follow-through")] == [WAITING]  # Azure moves it: no update by the bot
    assert report.of("update-des") == []


def test_duplicate_key_events_rotate_once_and_move_a_set_once(sandbox, estate, azure_as):
    admin, n = estate(), names(sandbox)
    old = versions(admin, n["key"])
    settings = Settings(modes={"des-auto-rotation": "audit"})
    for _ in range(2):
        on_key_event("Microsoft.KeyVault.KeyNearExpiry", n["key"], azure=azure_as("bot"), settings=settings,
                     now=clock(sandbox), policies=POLICIES)  # fmt: skip
    assert len(versions(admin, n["key"])) == len(old) + 1

    # Someone else rotates the key: KeyNewVersionCreated (delivered twice) moves the fixed-version set once.
    with sandbox.roles_at_once():  # the admin's own role, in effect before they rotate
        assign(admin, n["vault"], sandbox.principal("admin").object_id, CRYPTO_OFFICER)
    vault_url = admin.get(n["vault"], KV_API)["properties"]["vaultUri"]
    newest = admin.key_client(vault_url).rotate_key("des-key").properties.version
    since = len(sandbox.calls())
    reports = [
        on_key_event("KeyNewVersionCreated", n["key"], azure=azure_as("bot"), settings=settings, now=clock(sandbox),
                     policies=POLICIES)
        for _ in range(2)
    ]  # fmt: skip
    assert [[(r.action, r.status) for r in rep.results] for rep in reports] == [
        [("update-des", UPDATED)],
        [("follow-through", VERIFIED)],
    ]
    assert des_version(admin, n["des"]) == newest
    assert [c["method"] for c in writes_by(sandbox, "bot", since)] == ["PATCH"]
    assert len(versions(admin, n["key"])) == len(old) + 2  # no rotation on a new-version event


def test_a_key_event_may_name_the_key_by_its_url(sandbox, estate, azure_as):
    admin, n = estate(), names(sandbox)
    url = admin.get(n["key"], KV_API)["properties"]["keyUriWithVersion"]
    scope = Scope((sandbox.subscription_id,))
    report = on_key_event("KeyExpired", url, azure=azure_as("bot"), settings=Settings(), now=clock(sandbox),
                          policies=POLICIES, scope=scope)  # fmt: skip
    assert [r.key_id.lower() for r in report.rotated] == [n["key"].lower()]
    with pytest.raises(ValueError, match="valid: KeyNearExpiry"):
        on_key_event("KeyDeleted", n["key"], azure=azure_as("bot"), settings=Settings(), now=clock(sandbox))


class Gate:
    """A ledger stand-in that lets both workers reach the claim (both having read the key as due) before either
    goes on: the worst interleaving, every time. `then` is the real claim, or None to let both through."""

    def __init__(self, then, key, version):
        self.barrier = threading.Barrier(2, timeout=limit(30))
        self.then, self.key, self.version = then, key, version

    def claim(self, resource_key, window_seconds, now=None):
        assert resource_key == f"rotate:{self.key.lower()}:{self.version}"
        self.barrier.wait()
        return True if self.then is None else self.then.claim(resource_key, window_seconds, now)


def race(sandbox, azure_as, gate):
    scope, now = Scope((sandbox.subscription_id,)), clock(sandbox)
    reports, errors = [], []

    def work():
        try:
            reports.append(rotate(scope, azure=azure_as("bot"), settings=Settings(), now=now, policies=POLICIES,
                                  ledger=gate))  # fmt: skip
        except BaseException as e:  # pragma: no cover - surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return reports


def test_two_concurrent_workers_with_the_ledger_claim_make_exactly_one_version(sandbox, estate, azure_as, azurite):
    admin, n = estate(), names(sandbox)
    old = versions(admin, n["key"])
    tables = Tables.with_prefix(f"rot{uuid.uuid4().hex[:10]}")
    ledger = Ledger(azurite, tables)
    ledger.create_tables()
    reports = race(sandbox, azure_as, Gate(ledger, n["key"], old[-1]))
    assert sorted(len(r.rotated) for r in reports) == [0, 1]
    assert len(versions(admin, n["key"])) == len(old) + 1
    assert any("another worker holds the claim" in note for r in reports for note in r.notes)


def test_without_the_claim_two_workers_past_the_re_read_would_both_rotate(sandbox, estate, azure_as):
    """The window the claim closes: Key Vault's rotate has no precondition."""
    admin, n = estate(), names(sandbox)
    old = versions(admin, n["key"])
    reports = race(sandbox, azure_as, Gate(None, n["key"], old[-1]))
    assert [len(r.rotated) for r in reports] == [1, 1]
    assert len(versions(admin, n["key"])) == len(old) + 2


@pytest.mark.parametrize(
    ("missing", "scope_part"),
    [
        ("Microsoft.KeyVault/vaults/keys/rotate/action", "/keys/des-key"),
        ("Microsoft.KeyVault/vaults/keys/read", "/keys/des-key"),
        ("Microsoft.Compute/diskEncryptionSets/write", "/diskEncryptionSets/des-weu"),
    ],
)
def test_a_missing_permission_is_named_and_nothing_is_half_done(
    sandbox, azure_as, grant_custom_role, missing, scope_part
):
    sandbox.reset("estate")
    grant_custom_role("bot", without=[missing])
    admin, n = azure_as("admin"), names(sandbox)
    des = admin.get(n["des"], DES_API)
    with sandbox.roles_at_once():  # granted long before (the sandbox's role propagation delay is past)
        assign(admin, n["vault"], des["identity"]["principalId"], ENCRYPTION_USER)
    old_versions, old_des = versions(admin, n["key"]), des_version(admin, n["des"])

    report = run(sandbox, azure_as("bot"), **{"des-auto-rotation": "audit"})
    (failure,) = report.failures
    assert failure.action == "rotate" and "Not rotated" in failure.reason
    assert failure.missing is not None and failure.missing.startswith(missing)
    assert scope_part.lower() in failure.missing.lower()
    assert report.rotated == [] and report.of("update-des") == []
    assert versions(admin, n["key"]) == old_versions and des_version(admin, n["des"]) == old_des


def test_an_unreadable_scope_raises(sandbox, azure_as):
    sandbox.reset("estate")  # the bot has no role at all
    with pytest.raises(AzureAccessError, match="AuthorizationFailed"):
        run(sandbox, azure_as("bot"))


def test_results_carry_what_the_ledger_and_notices_need(sandbox, estate, azure_as):
    estate(auto=True)
    report = run(sandbox, azure_as("bot"))
    docs = report.to_dict()["results"]
    assert {d["action"] for d in docs} >= {"rotate", "follow-through"}
    for doc in docs:
        assert set(doc) >= {"resourceId", "action", "beforeVersion", "afterVersion", "status", "reason"}
    keys = [r.dedupe_key for r in report.results]
    assert len(keys) == len(set(keys))
    assert report.calls.get("POST", 0) >= 1  # the rotate
    assert ROTATED in {r.status for r in report.results} and FAILED not in {r.status for r in report.results}
    assert ESCALATED not in {r.status for r in report.results}


def test_key_vault_throttling_makes_a_rotation_wait_not_fail(sandbox, estate, azure_as):
    """Key Vault answers a rotate over its budget with 429 and no Retry-After; azure-core alone does not retry a POST
    on 429, the bot's WriteRetries policy does, backing off (a throttled request was not processed: sending it again
    is safe)."""
    # One rotate costs 200 units: with a 200-unit budget (set before the vault's bucket exists), the reads before it
    # leave too little for the first try.
    sandbox.admin("PATCH", "/_sandbox/settings", {"throttle": True, "kv_budget": 200, "kv_window_seconds": 20})
    admin, n = estate(), names(sandbox)
    old = versions(admin, n["key"])
    report = run(sandbox, azure_as("bot"), **{"des-auto-rotation": "audit"})
    throttled = [c for c in sandbox.calls() if c["status"] == 429 and c["path"].endswith("/rotate")]
    assert throttled, "the sandbox never throttled the rotate: this test would prove nothing"
    assert report.failures == []
    (rotated,) = report.rotated
    assert versions(admin, n["key"]) == [*old, rotated.after_version]


# --- the verdicts (pure) ---------------------------------------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SETS = "/subscriptions/s/resourceGroups/{}/providers/Microsoft.Compute/diskEncryptionSets/{}"
KEY = KeyVersion(
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv/keys/k", {}, {}, "v1", T0, None
)
CHECK = KeyCheck(KEY.key_id, "v1", T0, None, "P90D", T0 + timedelta(days=90), "its version is older than P90D")


@pytest.mark.parametrize(
    ("mode", "status", "says"),
    [
        ("audit", "due", "key-rotation-policy runs in audit mode: not rotated."),
        ("approve", "pending-approval", "A person must approve the rotation first."),
        ("remediate", None, None),
    ],
)
def test_a_due_key_is_held_back_in_audit_and_approve_mode(mode, status, says):
    held = held_back(KEY, CHECK, mode)
    assert (held and held.status) == status
    if held is not None:
        assert (held.action, held.resource_id, held.before_version, held.after_version) == (
            "rotate",
            KEY.key_id,
            "v1",
            None,
        )
        assert held.reason == f"Key k is due for a new version: its version is older than P90D. {says}"


def a_set(group: str, name: str, *, auto: bool = False) -> dict:
    return {"id": SETS.format(group, name), "properties": {"rotationToLatestKeyVersionEnabled": auto}}


@pytest.mark.parametrize(
    ("users", "written", "outside"),
    [
        ([], [], None),
        ([a_set("rg", "auto", auto=True), a_set("other", "auto2", auto=True)], [], None),
        ([a_set("rg", "a"), a_set("rg", "auto", auto=True), a_set("rg", "b")], ["a", "b"], None),
        ([a_set("rg", "a"), a_set("other", "far"), a_set("rg", "b")], ["a"], "far"),
    ],
)
def test_the_fixed_version_sets_proved_before_a_rotation_stop_at_one_outside_the_scope(users, written, outside):
    writes, stopped_by = proofs(users, Scope(("s",), "rg").contains)
    assert ([d["id"].rsplit("/", 1)[1] for d in writes], stopped_by) == (written, outside)


def test_a_rotation_result_names_what_azure_refused():
    error = AzureAccessError(
        403,
        "AuthorizationFailed",
        "The client 'x' does not have authorization to perform action 'Microsoft.KeyVault/vaults/keys/rotate/action' "
        "over scope '/subscriptions/s'",
    )
    result = rotation(KEY, "failed", "Not rotated.", error=error)
    assert (result.code, result.missing) == (
        "AuthorizationFailed",
        "Microsoft.KeyVault/vaults/keys/rotate/action on /subscriptions/s",
    )
    assert rotation(KEY, "rotated", "Created.", "v2").after_version == "v2"
