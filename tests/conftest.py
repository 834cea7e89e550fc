import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

# hypothesis is imported here, at collection, not lazily by its plugin at the end of the session: on CPython 3.11.7
# that late import (pytest rewrites plugin modules) trips "AST constructor recursion depth mismatch" after the
# Azure SDK clients have run.
import hypothesis
import pytest

from tests.waits import SLOWDOWN

pytest_plugins = ["sandbox.testing", "tests.azurite", "tests.role_coverage"]

# No wall-clock limit on an example: hypothesis's default deadline (200 ms) and its too_slow health check fail a
# property test on a busy machine for the machine's sake, not the property's (tests/waits.py).
hypothesis.settings.register_profile(
    "cryptward", deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
hypothesis.settings.load_profile("cryptward")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """pytest-timeout's per-test limit (pyproject.toml) scaled by CRYPTWARD_TEST_SLOWDOWN, as every wait is, unless
    given on the command line or in PYTEST_TIMEOUT."""
    import os

    ini = config.getini("timeout")
    if SLOWDOWN != 1 and ini and config.getoption("timeout", None) is None and not os.environ.get("PYTEST_TIMEOUT"):
        config.option.timeout = float(ini) * SLOWDOWN


ROLE_FILE = Path(__file__).resolve().parent.parent / "infra" / "cryptward-role.json"


@pytest.fixture(autouse=True)
def _no_runtime_left() -> Iterator[None]:
    """No test sees another's runtime: the process's runtime (remediations/runtime.py), if a test built one from its
    environment, is closed and forgotten after it."""
    yield
    from remediations import runtime

    runtime.reset()


@pytest.fixture
def bot_runtime() -> Iterator[Callable[..., Any]]:
    """`bot_runtime(env)`: a Runtime built from these settings (never the process's environment), installed as the
    process's runtime for the rest of the test."""
    from remediations import runtime
    from remediations.settings import Settings

    made: list[Any] = []

    def make(env: dict[str, str]) -> Any:
        rt = runtime.Runtime(Settings.from_env(env))
        made.append(rt)
        runtime.install(rt)
        return rt

    yield make
    runtime.install(None)
    for rt in made:
        rt.close()


@pytest.fixture
def azure_as(sandbox: Any) -> Iterator[Callable[[str], Any]]:
    """An `Azure` (the bot's one Azure access module) acting as a sandbox principal through its real credential."""
    from remediations.azure import Azure, CloudProfile

    made: list[Any] = []

    def make(name: str) -> Any:
        azure = Azure(CloudProfile.from_env(), credential_factory=lambda: sandbox.credential(name))
        made.append(azure)
        return azure

    yield make
    for azure in made:
        azure.close()


@pytest.fixture
def as_bot(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], Any]]:
    """The bot as it runs in Azure: DefaultAzureCredential picks the managed identity AZURE_CLIENT_ID names. Each
    call makes an `Azure`; all are closed at the end of the test."""
    from remediations.azure import Azure

    monkeypatch.setenv("AZURE_CLIENT_ID", sandbox.principal("bot").client_id)
    made: list[Any] = []

    def make() -> Any:
        made.append(Azure.from_env())
        return made[-1]

    yield make
    for azure in made:
        azure.close()


@pytest.fixture
def grant_custom_role(sandbox: Any, role_coverage: Callable[[str], None]) -> Callable[..., str]:
    """Create a custom role (as the admin, through AuthorizationManagementClient) and assign it to a principal at the
    subscription, with the role document's `assignmentCondition` as the assignment's ABAC condition, as the Bicep
    deploys it (infra/app/role.bicep). Defaults: infra/cryptward-role.json, minus `without` actions, to the bot, and
    infra/cryptward-workspace-role.json on each Log Analytics workspace there is (the deployment's, see
    infra/app/workspace-access.bicep). A role within infra/cryptward-role.json counts towards the session's role
    coverage (tests/role_coverage.py)."""
    from azure.mgmt.authorization import AuthorizationManagementClient

    from tests.role_coverage import define_role, grant_workspace_role, role_permissions, workspaces

    def grant(principal: str = "bot", *, without: Sequence[str] = (), role: dict[str, Any] | None = None) -> str:
        full = json.loads(ROLE_FILE.read_text())
        doc = role or full
        if role_permissions(doc) <= role_permissions(full):
            role_coverage(principal)
        sub = f"/subscriptions/{sandbox.subscription_id}"
        client = sandbox.client(AuthorizationManagementClient, "admin")
        definition = define_role(sandbox, doc, without)
        p = sandbox.principal(principal)
        properties = {"roleDefinitionId": definition.id, "principalId": p.object_id, "principalType": p.kind}
        if doc.get("assignmentCondition"):
            properties |= {"condition": doc["assignmentCondition"], "conditionVersion": "2.0"}
        with sandbox.roles_at_once():  # deployed long before the bot runs
            client.role_assignments.create(sub, str(uuid.uuid4()), {"properties": properties})
            if role_permissions(doc) <= role_permissions(full):  # the deployment's role, or a part of it: it also
                # gives the bot its workspace role (infra/app/workspace-access.bicep)
                for workspace in workspaces(sandbox):
                    grant_workspace_role(sandbox, workspace, principal, without)
        return str(definition.id)

    return grant
