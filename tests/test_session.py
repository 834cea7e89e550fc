"""remediations/azure/session.py: the environment's proxies and CA bundle merged as requests merges them, read once
per origin (pure: no request is sent)."""

from __future__ import annotations

import pytest
import requests

from remediations.azure.session import Session

URLS = ("https://management.azure.com/subscriptions/s?api-version=1", "https://kv.vault.azure.net/keys/k")


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"HTTPS_PROXY": "http://proxy.example:3128"},
        {"HTTPS_PROXY": "http://proxy.example:3128", "NO_PROXY": "vault.azure.net"},
        {"REQUESTS_CA_BUNDLE": "/etc/ssl/bundle.pem"},
        {"CURL_CA_BUNDLE": "/etc/ssl/curl.pem"},
    ],
)
@pytest.mark.parametrize("verify", [None, True, False, "/own.pem"])
@pytest.mark.parametrize("proxies", [None, {}, {"https": "http://given.example:8080"}])
def test_same_settings_as_requests(monkeypatch, env, verify, proxies):
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ours, theirs = Session(), requests.Session()
    for url in URLS:
        for _ in range(2):  # the second from what was read once
            mine = None if proxies is None else dict(proxies)
            expected = None if proxies is None else dict(proxies)
            got = ours.merge_environment_settings(url, mine, None, verify, None)
            assert got == theirs.merge_environment_settings(url, expected, None, verify, None)
            assert mine == expected  # the caller's proxies filled in as requests fills them


def test_environment_read_once_per_origin(monkeypatch):
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://first.example:3128")
    session = Session()
    url = URLS[0]
    assert (
        session.merge_environment_settings(url, {}, None, True, None)["proxies"]["https"] == "http://first.example:3128"
    )
    monkeypatch.setenv("HTTPS_PROXY", "http://second.example:3128")
    assert (
        session.merge_environment_settings(url, {}, None, True, None)["proxies"]["https"] == "http://first.example:3128"
    )
    assert Session().merge_environment_settings(url, {}, None, True, None)["proxies"]["https"] == (
        "http://second.example:3128"
    )


def test_trust_env_off_is_requests_own(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    session = Session()
    session.trust_env = False
    assert session.merge_environment_settings(URLS[0], {}, None, True, None)["proxies"] == {}
