"""Role coverage: which of infra/cryptward-role.json's permissions the bot actually used during the test session.

A pytest plugin (tests/conftest.py lists it). After every test that granted the custom role (the
`grant_custom_role` fixture), it reads the sandbox's call log: each call lists the RBAC checks it made (`actions`:
principal, action, dataAction, scope, allowed). At the end of the session the terminal summary lists

- the role's actions that no test exercised (reported, not failed: a permission only a path the tests do not take
  needs is a prompt to add a test, or to drop the permission);
- actions the bot was refused (403) that the role does not hold at all: the role misses something the bot does.
  That fails the session, since the deployed bot would fail the same way.

Actions a test removed on purpose (`grant_custom_role(without=...)`, tests/test_infra.py) are in the role, so their
refusals are expected and not "missing".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROLE_FILE = Path(__file__).resolve().parent.parent / "infra" / "cryptward-role.json"
# The bot's role on the one Log Analytics workspace it is deployed with (infra/app/workspace-access.bicep): the
# linked-scope action ARM checks when a diagnostic setting names the workspace. Counted with the main role.
WORKSPACE_ROLE_FILE = ROLE_FILE.with_name("cryptward-workspace-role.json")
WORKSPACE_TYPE = "Microsoft.OperationalInsights/workspaces"

Permission = tuple[str, bool]  # (action, is a data action)


def role_permissions(doc: Mapping[str, Any]) -> set[Permission]:
    """Every (action, is data action) of a role document, lower-cased as Azure compares them."""
    return {(a.lower(), False) for a in doc["actions"]} | {(a.lower(), True) for a in doc["dataActions"]}


def deployed_permissions() -> set[Permission]:
    """Every permission the deployment gives the bot: the custom role's and the workspace role's."""
    return role_permissions(json.loads(ROLE_FILE.read_text())) | role_permissions(
        json.loads(WORKSPACE_ROLE_FILE.read_text())
    )


def define_role(sandbox: Any, doc: Mapping[str, Any], without: Iterable[str] = ()) -> Any:
    """A role document of infra/ (roleName, description, actions, notActions, dataActions, notDataActions) made a
    custom role at the subscription, without the actions and data actions `without` names (as the admin, through
    AuthorizationManagementClient); the role definition made."""
    import uuid

    from azure.mgmt.authorization import AuthorizationManagementClient

    client = sandbox.client(AuthorizationManagementClient, "admin")
    guid = str(uuid.uuid4())
    sub = f"/subscriptions/{sandbox.subscription_id}"
    permissions = {k: [a for a in doc.get(k) or () if a not in without] for k in ("actions", "dataActions")}
    permissions |= {k: list(doc.get(k) or ()) for k in ("notActions", "notDataActions")}
    return client.role_definitions.create_or_update(
        sub,
        guid,
        {
            "properties": {
                "roleName": f"{doc['roleName']} {guid[:8]}",
                "description": doc["description"],
                "type": "CustomRole",
                "permissions": [permissions],
                "assignableScopes": [sub],
            }
        },
    )


def grant_workspace_role(sandbox: Any, workspace_id: str, principal: str = "bot", without: Iterable[str] = ()) -> None:
    """infra/cryptward-workspace-role.json as a custom role, assigned to `principal` on the workspace alone, as
    infra/app/workspace-access.bicep deploys it (as the admin, through AuthorizationManagementClient)."""
    import uuid

    from azure.mgmt.authorization import AuthorizationManagementClient

    definition = define_role(sandbox, json.loads(WORKSPACE_ROLE_FILE.read_text()), without)
    p = sandbox.principal(principal)
    properties = {"roleDefinitionId": definition.id, "principalId": p.object_id, "principalType": p.kind}
    client = sandbox.client(AuthorizationManagementClient, "admin")
    client.role_assignments.create(workspace_id, str(uuid.uuid4()), {"properties": properties})


def workspaces(sandbox: Any) -> list[str]:
    """The ids of the Log Analytics workspaces in the sandbox's subscription."""
    from azure.mgmt.resource.resources import ResourceManagementClient

    rm = sandbox.client(ResourceManagementClient, "admin")
    return [str(r.id) for r in rm.resources.list(filter=f"resourceType eq '{WORKSPACE_TYPE}'")]


def label(permission: Permission) -> str:
    action, data = permission
    return f"{action} (dataAction)" if data else action


@dataclass
class Coverage:
    """What the bot did while holding (a part of) the custom role, summed over the session."""

    role: set[Permission]
    used: set[Permission] = field(default_factory=set)
    missing: dict[Permission, str] = field(default_factory=dict)  # -> the first test that saw the refusal
    tests: int = 0

    def add(self, calls: Iterable[Mapping[str, Any]], principal: str, test: str) -> None:
        """Fold in one test's call log: the checks made for `principal` (its object id) on its own calls."""
        self.tests += 1
        for call in calls:
            if call.get("principal") != principal:
                continue
            for check in call.get("actions") or []:
                if check.get("principal") != principal:
                    continue  # a check the sandbox made for someone else (a DES identity's key access)
                permission = (str(check["action"]).lower(), bool(check["dataAction"]))
                if check["allowed"]:
                    self.used.add(permission)
                elif call.get("status") == 403 and permission not in self.role:
                    self.missing.setdefault(permission, test)

    @property
    def never_exercised(self) -> list[Permission]:
        return sorted(self.role - self.used)

    def report(self) -> list[str]:
        lines = [
            f"{len(self.role & self.used)} of the {len(self.role)} permissions of {ROLE_FILE.name} and "
            f"{WORKSPACE_ROLE_FILE.name} exercised by the bot in {self.tests} tests"
        ]
        unused = self.never_exercised
        lines.append(f"never exercised ({len(unused)}):" if unused else "never exercised: none")
        lines += [f"  {label(p)}" for p in unused]
        if self.missing:
            lines.append(f"MISSING from the roles: refused to the bot, not deployed to it ({len(self.missing)}):")
            lines += [f"  {label(p)}  (first in {test})" for p, test in sorted(self.missing.items())]
        else:
            lines.append("missing from the role: none (no refusal of an action outside the role)")
        return lines


COVERAGE = pytest.StashKey[Coverage]()


def _coverage(config: pytest.Config) -> Coverage:
    if COVERAGE not in config.stash:
        config.stash[COVERAGE] = Coverage(deployed_permissions())
    return config.stash[COVERAGE]


@pytest.fixture
def role_coverage(request: pytest.FixtureRequest, sandbox: Any) -> Any:
    """Used by `grant_custom_role`: call it with the principal's name when the custom role goes to that principal;
    after the test, that principal's calls are folded into the session's coverage."""
    granted: set[str] = set()
    yield granted.add
    for name in sorted(granted):
        _coverage(request.config).add(sandbox.calls(), sandbox.principal(name).object_id, request.node.nodeid)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    coverage = config.stash.get(COVERAGE, None)
    if coverage is None:
        return
    terminalreporter.write_sep("=", "custom role coverage (infra/cryptward-role.json)")
    for line in coverage.report():
        terminalreporter.write_line(line)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    coverage = session.config.stash.get(COVERAGE, None)
    if coverage is not None and coverage.missing and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
