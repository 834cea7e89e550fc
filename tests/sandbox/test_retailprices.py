"""The sandbox's Retail Prices API (sandbox/providers/retailprices.py) as a client finds it: `python -m sandbox env`
and the session's client environment name its own origin, and the admin API refuses knobs it does not have. Its
answers against real recordings are tests/conformance/test_retail_prices.py's."""

import pytest


def test_the_env_names_the_apis_own_origin(sandbox, capsys):
    from sandbox.__main__ import main

    url = sandbox.admin("GET", "/_sandbox/retailprices")["url"]
    assert url.startswith("https://127.0.0.1:") and url.endswith("/api/retail/prices") and sandbox.base_url not in url
    assert main(["env", "--state", str(sandbox.running.state_dir)]) == 0
    assert f"export CRYPTWARD_RETAIL_PRICES_URL={url}\n" in capsys.readouterr().out
    assert sandbox.env()["CRYPTWARD_RETAIL_PRICES_URL"] == url


@pytest.mark.parametrize("body", [{"answer": "sometimes"}, {"colour": "red"}])
def test_the_admin_api_refuses_what_it_does_not_know(sandbox, body):
    r = sandbox.admin_api.put("/_sandbox/retailprices", json=body)
    assert r.status_code == 400


def test_a_reset_forgets_the_knobs_and_the_requests(sandbox):
    sandbox.admin("PUT", "/_sandbox/retailprices", {"answer": "error500", "rows": []})
    sandbox.reset()
    state = sandbox.admin("GET", "/_sandbox/retailprices")
    assert (state["answer"], state["requests"]) == ("normal", []) and state["rows"] > 0
