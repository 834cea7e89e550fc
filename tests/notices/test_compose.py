"""Who is told what: notices from a run, owners, routes, and the outbox (send, keep failures, retry later)."""

from datetime import timedelta

import pytest

from remediations.changes import Caller, Change, Operation, Plan, Skip
from remediations.engine import applier
from remediations.engine.applier import Result
from remediations.engine.planner import Finding
from remediations.engine.reader import Scope
from remediations.engine.run import Report
from remediations.errors import SettingsError
from remediations.notices import approvals
from remediations.notices import compose as notices
from remediations.notices.compose import ApprovalLinks, Notice, Routes, build, owners_of, result_line, skip_line
from tests import notice_samples as s

DISK2 = s.DISK.replace("OsDisk_1", "data-1")


def change(resource_id, policy_id, path="properties.enablePurgeProtection", before=None, after=True, op_path=None):
    return Change(
        resource_id,
        f"Fix {policy_id} on {resource_id.rsplit('/', 1)[-1]}",
        Operation("PATCH", op_path or resource_id, "2026-05-15", {}),
        {path: before},
        {path: after},
        policy_ids=(policy_id,),
        fixes=(policy_id,),
    )


def report(results=(), skipped=(), bodies=()):
    pol = s.policies()
    findings = tuple(Finding(pol["kv-purge-protection"], b) for b in bodies)
    plan = Plan(tuple(r.change for r in results), tuple(skipped))
    return Report(Scope((s.SUB,)), tuple(pol), len(bodies), len(bodies), findings, plan, tuple(results), True)


VAULT_BODY = {"id": s.VAULT, "type": "Microsoft.KeyVault/vaults", "tags": {"Owner": "alice@contoso.com; bob@x"}}


def test_one_notice_per_resource_with_a_line_per_change_and_reason():
    purge = change(s.VAULT, "kv-purge-protection")
    lock = change(s.VAULT, "kv-delete-lock", "properties.level", None, "CanNotDelete", s.VAULT + "/providers/locks/l")
    disk = change(s.DISK, "disk-cmk", "properties.encryption.type", "EncryptionAtRestWithPlatformKey", "X")
    quiet = change(DISK2, "disk-cmk")
    results = [
        Result(purge, applier.APPLIED, "written and verified"),
        Result(disk, applier.PENDING_APPROVAL, "a person must approve this change first"),
        Result(lock, applier.FAILED, "denied", "AuthorizationFailed"),
        Result(quiet, applier.ALREADY, "already holds"),  # nothing changed: nothing to tell
    ]
    skipped = [
        Skip(s.VAULT, "kv-diagnostic-setting", "not-configured", "No workspace is configured."),
        Skip(s.VM, "vm-encryption-at-host", "blocked", "needs a change this plan does not make"),
        Skip(s.KEY, "key-rotation-policy", "exempt", "exempted by tag"),  # the owner chose it: quiet
    ]
    out = build(report(results, skipped, [VAULT_BODY]), run_id="r1", now=s.NOW, owner_tag="owner")
    assert [n.resource_id for n in out] == [s.VAULT, s.DISK, s.VM]
    vault, disk, vm = out
    assert [(line.kind, line.status) for line in vault.lines] == [
        ("applied", "applied"),
        ("failed", "failed"),
        ("skipped", "not-configured"),
    ]
    assert vault.owners == ("alice@contoso.com", "bob@x") and vault.owner_source == "tag"
    assert vault.lines[0].title == "Key vaults have purge protection enabled"
    assert vault.lines[0].why == (
        "A key vault holds the keys that encrypt disks and data, so losing it loses the data."
    )
    assert vault.lines[0].before == {"properties.enablePurgeProtection": None}
    assert disk.lines[0].kind == "pending" and disk.lines[0].approve_url is None  # no approval endpoint configured
    assert vm.lines[0].kind == "escalated" and disk.owners == () and disk.owner_source == "default"


def test_pending_approvals_get_signed_links_and_denied_changes_are_not_told_again():
    disk = change(s.DISK, "disk-cmk")
    run = report([Result(disk, applier.PENDING_APPROVAL, "a person must approve")])
    links = ApprovalLinks(s.APPROVAL_URL, s.APPROVAL_KEY, timedelta(days=2))
    [notice] = build(run, run_id="r1", now=s.NOW, approval=links)
    line = notice.lines[0]
    for url, decision in ((line.approve_url, "approve"), (line.deny_url, "deny")):
        token = url.split("token=", 1)[1]
        checked = approvals.verify(token, s.APPROVAL_KEY, s.NOW, lambda n: False)
        assert (checked.change_id, checked.resource_id, checked.decision) == (disk.id, s.DISK, decision)
        assert checked.expires_at == s.NOW + timedelta(days=2)
    assert build(run, run_id="r1", now=s.NOW, approval=links, silenced={disk.id}) == []


def test_escalations_and_quiet_reasons():
    skip = Skip(s.KEY, "key-rotation-policy", "exempt", "exempted by tag")
    out = build(report(skipped=[skip]), run_id="r1", now=s.NOW, escalations={s.VM: "fought 3 times"}, quiet=())
    assert [(n.resource_id, n.lines[0].kind) for n in out] == [(s.KEY, "skipped"), (s.VM, "escalated")]


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (applier.APPLIED, "applied"),
        (applier.PENDING_APPROVAL, "pending"),
        (applier.PENDING_DEALLOCATION, "pending"),
        (applier.FAILED, "failed"),
        (applier.BLOCKED, "escalated"),
        (applier.REFUSED, "escalated"),
        (applier.ALREADY, None),
        (applier.WAITING, None),  # waiting for a new role to take effect: no failure notice inside the window
    ],
)
def test_which_results_are_told_and_as_what(status, kind):
    purge = change(s.VAULT, "kv-purge-protection")
    line = result_line(Result(purge, status, "detail"), s.policies(), s.NOW)
    assert (line and line.kind) == kind
    if line is not None:
        assert (line.status, line.change_id, line.detail) == (status, purge.id, "detail")
        assert line.title == "Key vaults have purge protection enabled"
    assert result_line(Result(purge, status, "detail"), s.policies(), s.NOW, silenced={purge.id}) is None


@pytest.mark.parametrize("status", [applier.APPLIED, applier.PENDING_APPROVAL])
def test_only_a_change_pending_approval_gets_links(status):
    links = ApprovalLinks(s.APPROVAL_URL, s.APPROVAL_KEY)
    line = result_line(Result(change(s.DISK, "disk-cmk"), status), {}, s.NOW, links)
    assert line is not None and (line.approve_url is not None) is (status == applier.PENDING_APPROVAL)
    assert line.title == "disk-cmk" and line.why == ""  # a policy not known: its id stands for its title


@pytest.mark.parametrize(
    ("reason", "quiet", "kind"),
    [
        ("blocked", (), "escalated"),
        ("not-configured", (), "skipped"),
        ("exempt", ("exempt",), None),
        ("exempt", (), "skipped"),
    ],
)
def test_which_findings_left_alone_are_told_and_as_what(reason, quiet, kind):
    line = skip_line(Skip(s.VAULT, "kv-purge-protection", reason, "why"), s.policies(), quiet)
    assert (line and line.kind) == kind
    if line is not None:
        assert (line.status, line.policy_ids, line.summary) == (reason, ("kv-purge-protection",), "why")


def test_notice_id_is_stable_and_depends_on_resource_run_and_changes():
    a, b = s.applied(), s.applied()
    assert a.id == b.id and len(a.id) == 32
    assert Notice(s.VAULT.upper(), s.RUN, a.lines, s.NOW).id == a.id  # ARM ids are case-insensitive
    assert Notice(s.VAULT, "other-run", a.lines, s.NOW).id != a.id
    assert Notice(s.VAULT, s.RUN, a.lines[:1], s.NOW).id != a.id
    assert Notice(s.VAULT, s.RUN, a.lines[::-1], s.NOW + timedelta(1), ("x",)).id == a.id


def test_notice_round_trips_through_json():
    for make in s.SAMPLES.values():
        notice = make()
        assert Notice.from_dict(notice.to_dict()) == notice
    doc = s.pending().to_dict(links=False)
    assert "approveUrl" not in doc["lines"][0] and doc["subscriptionId"] == s.SUB
    assert doc["portalUrl"] == f"https://portal.azure.com/#@{s.TENANT}/resource{s.DISK}"


@pytest.mark.parametrize(
    ("body", "caller", "expected"),
    [
        ({"tags": {"OWNER": " a@x , b@x;a@x "}}, Caller(upn="c@x"), (("a@x", "b@x"), "tag")),
        ({"tags": {"owner": ""}}, Caller(upn="c@x", name="C"), (("c@x",), "caller")),
        ({}, Caller(name="Carol"), (("Carol",), "caller")),
        (None, Caller(appid="0000-app"), (("0000-app",), "caller")),
        ({"systemData": {"lastModifiedBy": "d@x"}}, None, (("d@x",), "last-modified")),
        ({"tags": {"team": "t"}}, Caller(), ((), "default")),
        (None, None, ((), "default")),
    ],
)
def test_owner_resolution(body, caller, expected):
    assert owners_of(body, "owner", caller) == expected


def test_event_caller_names_the_owner_when_there_is_no_tag():
    from remediations.changes import Caller

    run = report([Result(change(s.DISK, "disk-cmk"), applier.FAILED, "x")])
    [notice] = build(run, run_id="r", now=s.NOW, caller=Caller(upn=None, name="Dana", appid="app"))
    assert notice.owners == ("Dana",) and notice.owner_source == "caller"


def test_routes():
    routes = Routes.parse('{"Alice@Contoso.com": ["teams:ops", "webhook:siem"], "*": ["teams:default"]}')
    assert routes.destinations(["alice@contoso.com"]) == ("teams:ops", "webhook:siem")
    assert routes.destinations(["bob@contoso.com"]) == ("teams:default",)
    assert routes.destinations([]) == ("teams:default",)
    assert routes.destinations(["alice@contoso.com", "bob@x"]) == ("teams:ops", "webhook:siem", "teams:default")
    assert Routes.parse("").destinations(["a"]) == ()
    assert Routes.from_env({"CRYPTWARD_ROUTES": '{"*": ["eventgrid:bus"]}'}).destinations([]) == ("eventgrid:bus",)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"*": "teams:x"}', "list of 'kind:name'"),
        ('{"*": ["slack:x"]}', "valid kinds: teams, webhook, eventgrid"),
        ('{"*": ["teams:"]}', "is not 'kind:name'"),
    ],
)
def test_bad_routes_say_what_is_expected(raw, message):
    with pytest.raises(SettingsError, match=message):
        Routes.parse(raw)


def test_event_types():
    assert notices.EVENT_TYPES["applied"] == "Cryptward.Change.Applied"
    assert sorted(notices.EVENT_TYPES.values()) == [
        "Cryptward.Change.Applied",
        "Cryptward.Change.Escalated",
        "Cryptward.Change.Failed",
        "Cryptward.Change.Pending",
        "Cryptward.Change.Skipped",
    ]
