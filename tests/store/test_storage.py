"""remediations/store/storage.py: which storage account the settings name, and how it is reached. The identity-based
settings (what infra/ deploys) are parsed directly; their clients are driven against Azurite through the same
StorageTarget with a shared-key credential object in place of the managed identity.

Not covered here: a real token from ManagedIdentityCredential on the storage endpoints. Azurite checks OAuth
tokens only over HTTPS (`--oauth basic` with a certificate); that part is azure-storage's own, and the credential
choice itself is tested below (`storage_credential`)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

from remediations import azure
from remediations.errors import SettingsError
from remediations.store.ledger import Ledger, Tables
from remediations.store.storage import StorageTarget, target
from remediations.store.workqueue import WorkQueue
from remediations.work import WorkItem
from tests.azurite import ACCOUNT, ACCOUNT_KEY


def test_a_connection_string_wins():
    env = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AzureWebJobsStorage__accountName": "ignored"}
    got = target(env)
    assert got.connection == "UseDevelopmentStorage=true" and got.table_url is None


def test_the_account_name_gives_the_public_endpoints():
    env = {
        "AzureWebJobsStorage__accountName": "stcryptward",
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": "11111111-2222-3333-4444-555555555555",
    }
    got = target(env)
    assert got.connection is None
    assert got.queue_url == "https://stcryptward.queue.core.windows.net"
    assert got.table_url == "https://stcryptward.table.core.windows.net"
    assert got.identity == "managedidentity(11111111-2222-3333-4444-555555555555)"


def test_explicit_service_uris_win_over_the_account_name():
    env = {
        "AzureWebJobsStorage__accountName": "stcryptward",
        "AzureWebJobsStorage__tableServiceUri": "https://tables.example/",
    }
    got = target(env)
    assert got.table_url == "https://tables.example/"
    assert got.queue_url == "https://stcryptward.queue.core.windows.net"
    assert got.identity == "default"


def test_nothing_set_or_an_unknown_credential_is_a_settings_error():
    with pytest.raises(SettingsError, match=r"AzureWebJobsStorage is not set.*__accountName"):
        target({})
    with pytest.raises(SettingsError, match="valid: managedidentity"):
        target({"AzureWebJobsStorage__accountName": "a", "AzureWebJobsStorage__credential": "connectionstring"})
    only_tables = target({"AzureWebJobsStorage__tableServiceUri": "https://t.example"})
    with pytest.raises(SettingsError, match="no queue endpoint"):
        only_tables.queue_client("q")


def test_the_repr_never_shows_a_key():
    got = StorageTarget(connection=f"AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY}")
    assert ACCOUNT_KEY not in repr(got)
    assert ACCOUNT_KEY not in repr(Ledger(got)) and ACCOUNT_KEY not in repr(WorkQueue(got))


def test_the_credential_is_chosen_as_the_host_chooses_it():
    mi = azure.storage_credential(
        {"AzureWebJobsStorage__credential": "managedidentity", "AzureWebJobsStorage__clientId": "abc"}
    )
    assert isinstance(mi, ManagedIdentityCredential)
    assert isinstance(azure.storage_credential({"AzureWebJobsStorage__accountName": "a"}), DefaultAzureCredential)


def _endpoints(connection: str) -> dict[str, str]:
    return dict(re.findall(r"(QueueEndpoint|TableEndpoint)=([^;]+)", connection))


def test_ledger_and_queue_work_through_service_uris_and_a_credential_object(azurite):
    ends = _endpoints(azurite)
    env = {
        "AzureWebJobsStorage__queueServiceUri": ends["QueueEndpoint"],
        "AzureWebJobsStorage__tableServiceUri": ends["TableEndpoint"],
        "AzureWebJobsStorage__credential": "managedidentity",
    }
    storage = target(env, credential=lambda: AzureNamedKeyCredential(ACCOUNT, ACCOUNT_KEY))
    tag = uuid.uuid4().hex[:8]
    ledger = Ledger(storage, Tables.with_prefix(f"s{tag}"))
    ledger.create_tables()
    with ledger:
        assert ledger.claim("r1", 60, datetime.now(UTC))
        assert not ledger.claim("r1", 60, datetime.now(UTC))
    queue = WorkQueue(storage, f"cw-{tag}")
    queue.create()
    try:
        queue.enqueue(WorkItem("sweep", "/subscriptions/x/resourceGroups/rg/providers/a/b/c"))
        [got] = queue.receive()
        assert got.items[0].resource_id.endswith("/a/b/c")
    finally:
        queue.close()
