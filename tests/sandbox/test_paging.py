"""ARM paging in the sandbox: a listing builds its list once (its later pages read the snapshot), so listing N
items is linear; a token whose snapshot is gone still goes on after the last item served; a bad token is a 400."""

from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest

from sandbox import paging
from sandbox.arm import ArmError, Call
from sandbox.state import State

BASE = "https://127.0.0.1/subscriptions/s/providers/Microsoft.KeyVault/vaults"


def call(state: State, query: dict[str, str]) -> Call:
    return Call(
        state=state,
        path=None,  # type: ignore[arg-type]
        method="GET",
        base_url="https://127.0.0.1",
        url=f"{BASE}?api-version=2026-05-15",
        api_version="2026-05-15",
        query={"api-version": "2026-05-15", **query},
        principal=SimpleNamespace(object_id="reader"),
        claims={},
        correlation_id="c",
    )


def list_all(state: State, build, **query: str) -> list[dict]:
    out, q = [], dict(query)
    while True:
        answer = paging.page(call(state, q), build)
        out += answer["value"]
        if "nextLink" not in answer:
            return out
        q = {k: v[0] for k, v in parse_qs(urlsplit(answer["nextLink"]).query).items() if k != "api-version"}


def test_a_listing_builds_its_list_once_whatever_its_length():
    state = State()
    state.settings.page_size = 50
    prefix = "/subscriptions/s/resourceGroups/g/providers/Microsoft.KeyVault/vaults/kv"
    items = [{"id": f"{prefix}{i}"} for i in range(5000)]
    built = []

    def build():
        built.append(1)
        return list(items)

    assert list_all(state, build) == items
    assert len(built) == 1  # 100 pages, one build
    assert list_all(state, build, **{"$top": "7"}) == items  # $top sets the page size; the nextLink carries on
    assert len(built) == 2


def test_a_lost_snapshot_goes_on_after_the_last_item_served():
    state = State()
    state.settings.page_size = 2
    items = [{"id": f"/x/{i}"} for i in range(6)]
    first = paging.page(call(state, {}), lambda: list(items))
    token = parse_qs(urlsplit(first["nextLink"]).query)["$skiptoken"][0]
    paging._snapshots[state].clear()
    del items[0]  # /x/0 went away meanwhile: the next page still starts after /x/1
    second = paging.page(call(state, {"$skiptoken": token}), lambda: list(items))
    assert [b["id"] for b in second["value"]] == ["/x/2", "/x/3"]


def test_a_bad_token_is_invalid_skip_token():
    with pytest.raises(ArmError) as e:
        paging.page(call(State(), {"$skiptoken": "not-base64!"}), list)
    assert (e.value.status, e.value.code) == (400, "InvalidSkipToken")
