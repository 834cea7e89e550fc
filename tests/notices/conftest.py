"""Fixtures shared by the notices' tests."""

import uuid

import pytest

from remediations.store.outbox import TableNoticeStore


@pytest.fixture
def table_store(azurite):
    """A notice store in a table of its own in Azurite (created, and its client closed after the test)."""
    store = TableNoticeStore(azurite, f"t{uuid.uuid4().hex[:10]}notices")
    store.create_table()
    yield store
    store.close()
