"""Fixtures shared by the fixes' tests against the sandbox."""

import pytest

from remediations.azure import Azure


@pytest.fixture
def legacy(sandbox, grant_custom_role, monkeypatch):
    """The sandbox's `legacy` scenario (a vault that never said enableRbacAuthorization, disk encryption sets on it),
    and the bot with exactly its role (infra/cryptward-role.json), as `(sandbox, azure)`."""
    sandbox.reset("legacy")
    grant_custom_role("bot")
    monkeypatch.setenv("AZURE_CLIENT_ID", sandbox.principal("bot").client_id)
    azure = Azure.from_env()
    yield sandbox, azure
    azure.close()
