"""Scopes that are management groups: parsed and validated, expanded to their descendant subscriptions through the
real Management Groups API of the sandbox, less the not-scopes, and expanded again by each sweep so a subscription
that joins (or leaves) a group is swept (or dropped) without a redeploy."""

from __future__ import annotations

import uuid

import httpx
import pytest

from remediations import runtime, scopes
from remediations.engine.reader import Scope
from remediations.errors import AzureAccessError, SettingsError
from remediations.settings import Settings
from remediations.triggers import intake, worker
from remediations.work import WorkItem
from sandbox import scenarios
from sandbox.providers import management_groups as mg
from sandbox.rbac import ROLES

OTHER, THIRD = str(uuid.UUID(int=0xA1)), str(uuid.UUID(int=0xA2))
GROUP = "/providers/Microsoft.Management/managementGroups/corp"


def test_parse_accepts_groups_subscriptions_and_resource_groups_and_names_the_setting_it_refuses():
    assert scopes.parse(GROUP) == Scope((), management_group="corp")
    assert scopes.parse(f"/subscriptions/{OTHER}/resourceGroups/rg") == Scope((OTHER,), "rg")
    assert scopes.parse(OTHER) == Scope((OTHER,))
    for bad in ("/providers/Microsoft.Management/managementGroups/bad name", "/providers/x", "/a/b/c"):
        with pytest.raises(SettingsError, match="CRYPTWARD_NOT_SCOPES"):
            Settings.from_env({"CRYPTWARD_SCOPES": OTHER, "CRYPTWARD_NOT_SCOPES": bad})
    s = Settings.from_env({"CRYPTWARD_SCOPES": f"{GROUP}, {THIRD}", "CRYPTWARD_NOT_SCOPES": f"/subscriptions/{OTHER}"})
    assert s.intake.scopes == (Scope((), management_group="corp"), Scope((THIRD,)))
    assert s.intake.not_scopes == (Scope((OTHER,)),)


def test_without_a_group_nothing_is_asked_of_azure_and_not_scopes_still_hold():
    def no_azure():
        raise AssertionError("Azure asked")

    rg = f"/subscriptions/{OTHER}/resourceGroups/rg-excluded"
    s = scopes.Scopes([Scope((OTHER,)), Scope((THIRD,))], [Scope((THIRD,)), Scope((OTHER,), "rg-excluded")], no_azure)
    assert s.subscriptions() == (OTHER,)  # a subscription excluded whole is not listed
    assert s.scope_of(f"/subscriptions/{OTHER}/resourceGroups/rg/providers/X/y/z") is not None
    assert s.scope_of(f"{rg}/providers/Microsoft.KeyVault/vaults/kv") is None
    assert s.scope_of(f"/subscriptions/{THIRD}/resourceGroups/rg") is None


def _vault(sub: str, group: str, name: str, tenant: str) -> list[scenarios.Step]:
    rg = f"/subscriptions/{sub}/resourceGroups/{group}"
    return [scenarios._group(rg, "westeurope"), scenarios._vault(rg, name, "westeurope", tenant)]


@pytest.fixture
def estate(sandbox):
    """corp -> landing -> (the sandbox's subscription, OTHER); THIRD under the root group. The bot reads at corp; the
    admin is Owner at the root (to move subscriptions and to make a vault in each)."""
    sb = sandbox.running.sandbox
    for sub, name in ((OTHER, "Contoso Dev"), (THIRD, "Contoso Lab")):
        scenarios.add_subscription(sb, sub, name)
    mg.add_group(sb.state, "corp", "Corp")
    mg.add_group(sb.state, "landing", "Landing zones", parent="corp")
    for sub in (sandbox.subscription_id, OTHER):
        mg.place(sb.state, sub, "landing")
    d = sb.directory
    scenarios.assign(sb, "/", d.named("admin"), ROLES["Owner"])
    scenarios.assign(sb, mg.group_id("corp"), d.named("bot"), ROLES["Reader"])
    steps = [
        s
        for sub in (sandbox.subscription_id, OTHER, THIRD)
        for s in _vault(sub, "rg-app", f"kv-{sub[-4:]}", sb.state.tenant_id)
    ]
    scenarios.play(sb, steps)
    return sb


def _move(sandbox, sub: str, group: str, method: str = "PUT") -> None:
    token = sandbox.credential("admin").get_token("https://management.azure.com/.default").token
    r = httpx.request(
        method,
        f"{sandbox.base_url}/providers/Microsoft.Management/managementGroups/{group}/subscriptions/{sub}",
        params={"api-version": scopes.MANAGEMENT_GROUPS_API},
        headers={"Authorization": f"Bearer {token}"},
        verify=sandbox.ssl,
    )
    assert r.status_code == 200, r.text


def test_a_group_expands_to_its_descendant_subscriptions_less_the_not_scopes(sandbox, estate, azure_as):
    bot, main = azure_as("bot"), sandbox.subscription_id
    assert scopes.descendants(bot, "corp") == tuple(sorted((main, OTHER)))
    (scope,) = scopes.expand(bot, [scopes.parse(GROUP)], [Scope((OTHER,), "rg-app")])
    assert scope.management_group == "corp" and set(scope.subscriptions) == {main, OTHER}
    assert scope.contains(f"/subscriptions/{main}/resourceGroups/rg-app/providers/X/y/z")
    assert not scope.contains(f"/subscriptions/{OTHER}/resourceGroups/rg-app/providers/X/y/z")  # the not-scope
    assert not scope.contains(f"/subscriptions/{THIRD}/resourceGroups/rg-app")  # not below the group
    (scope,) = scopes.expand(
        bot, [scopes.parse(GROUP)], [scopes.parse("/providers/Microsoft.Management/managementGroups/landing")]
    )
    assert scope.subscriptions == ()  # a group excluded whole


def test_what_cannot_be_expanded_is_not_in_scope(sandbox, estate, azure_as):
    s = scopes.Scopes([scopes.parse(GROUP)], (), lambda: azure_as("reader"))  # no role at the group
    with pytest.raises(AzureAccessError) as e:
        s.refresh()
    assert e.value.status == 403
    assert s.scope_of(f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-app") is None


def test_a_subscription_moved_into_the_group_is_seen_by_the_next_sweep_and_one_moved_out_is_dropped(
    sandbox, estate, azure_as, azurite
):
    tag = uuid.uuid4().hex[:8]
    env = {
        "AzureWebJobsStorage": azurite,
        "CRYPTWARD_TABLE_PREFIX": f"t{tag}",
        "CRYPTWARD_WORK_QUEUE": f"cw-{tag}",
        "CRYPTWARD_DEBOUNCE_SECONDS": "0",
        "CRYPTWARD_SCOPES": GROUP,
    }
    rt = runtime.Runtime(Settings.from_env(env), azure=azure_as("bot"))
    try:
        with runtime.use(rt):
            swept = _swept_vaults(rt)
            assert swept == {sandbox.subscription_id, OTHER}
            third = f"/subscriptions/{THIRD}/resourceGroups/rg-app/providers/Microsoft.KeyVault/vaults/kv-{THIRD[-4:]}"
            assert intake.accept(WorkItem("eventgrid", third), rt) == intake.OUT_OF_SCOPE
            _move(sandbox, THIRD, "landing")
            _move(sandbox, OTHER, "landing", "DELETE")  # back under the root group: out of corp
            assert _swept_vaults(rt) == {sandbox.subscription_id, THIRD}
            assert rt.scopes.scope_of(third) is not None
            gone = f"/subscriptions/{OTHER}/resourceGroups/rg-app/providers/Microsoft.KeyVault/vaults/kv-{OTHER[-4:]}"
            assert intake.accept(WorkItem("eventgrid", gone), rt) == intake.OUT_OF_SCOPE
            assert worker.fix(rt, WorkItem("eventgrid", gone), gone, "m-1").status == worker.OutcomeStatus.SKIPPED
    finally:
        rt.close()


def _swept_vaults(rt) -> set[str]:
    client = rt.queue._client(rt.queue.name)
    for message in client.receive_messages(max_messages=32):  # what an earlier sweep left
        client.delete_message(message)
    from remediations.store.workqueue import decode_all

    intake.sweep(rt=rt)
    items = [w for m in client.receive_messages(max_messages=32) for w in decode_all(m.content)]
    return {w.resource_id.split("/")[2] for w in items if "/vaults/" in w.resource_id}


def test_an_event_from_a_subscription_that_joined_is_accepted_once_the_retry_window_passed(sandbox, estate, azure_as):
    now = [0.0]
    s = scopes.Scopes([scopes.parse(GROUP)], (), lambda: azure_as("bot"), clock=lambda: now[0], retry_seconds=60)
    third = f"/subscriptions/{THIRD}/resourceGroups/rg-app"
    assert s.scope_of(third) is None
    _move(sandbox, THIRD, "corp")
    now[0] = 30.0
    assert s.scope_of(third) is None  # asked less than a minute ago: not asked again
    now[0] = 61.0
    assert s.scope_of(third) is not None
