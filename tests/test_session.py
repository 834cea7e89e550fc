"""remediations/azure/session.py: the environment's proxies and CA bundle merged as requests merges them, read once
per origin (pure: no request is sent)."""

from __future__ import annotations

import http.client
from types import SimpleNamespace

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


class _Recorder(requests.adapters.BaseAdapter):
    """An adapter that records what it is handed and answers 200 (with a cookie when told to): no network."""

    def __init__(self, cookie: str | None = None) -> None:
        super().__init__()
        self.sent: list[tuple] = []
        self.cookie = cookie

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        import io

        from urllib3 import HTTPResponse

        self.sent.append(
            (request.method, request.url, list(request.headers.items()), request.body,
             dict(stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies))
        )  # fmt: skip
        headers = {"content-type": "application/json", **({"set-cookie": self.cookie} if self.cookie else {})}
        raw = HTTPResponse(body=io.BytesIO(b"{}"), headers=headers, status=200, preload_content=False)
        message = http.client.HTTPMessage()
        for name, value in headers.items():
            message[name] = value
        raw._original_response = SimpleNamespace(
            msg=message, isclosed=lambda: True, close=lambda: None
        )  # where requests reads the cookies from
        return requests.adapters.HTTPAdapter().build_response(request, raw)

    def close(self):
        pass


# What azure-core's RequestsTransport hands a session (azure/core/pipeline/transport/_requests_basic.py, send).
CALLS = [
    dict(headers={"Accept": "application/json", "x-ms-client-request-id": "1"}, data=None, verify="/ca.pem"),
    dict(headers={"Content-Type": "application/json", "USER-AGENT": "cryptward"}, data=b'{"a": 1}', verify=True),
    dict(headers={"accept-encoding": None, "Authorization": "Bearer t"}, data=None, verify=None, cert="/c.pem"),
    dict(headers={}, data=None, verify=False, stream=True),
]


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("url", [*URLS, "https://user:pw@127.0.0.1:8443/subscriptions/s?a=%20b&c=d"])
@pytest.mark.parametrize("env", [{}, {"REQUESTS_CA_BUNDLE": "/etc/ssl/bundle.pem"}])
def test_the_short_way_hands_the_adapter_what_requests_would(monkeypatch, tmp_path, call, url, env):
    monkeypatch.setenv("HOME", str(tmp_path))  # no .netrc
    monkeypatch.delenv("NETRC", raising=False)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    seen = []
    for session in (Session(), requests.Session()):
        recorder = _Recorder()
        session.mount("https://", recorder)
        kwargs = {"stream": False, **call}
        for method in ("GET", "put"):
            response = session.request(method, url, timeout=(5, 30), allow_redirects=False, proxies=None, **kwargs)
            assert response.status_code == 200 and response.request.url == recorder.sent[-1][1]
        seen.append(recorder.sent)
    assert seen[0] == seen[1]


def test_what_the_short_way_does_not_cover_goes_through_requests(monkeypatch, tmp_path):
    (tmp_path / ".netrc").write_text("machine management.azure.com login me password secret\n")
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    session, recorder = Session(), _Recorder()
    session.mount("https://", recorder)
    session.request("GET", URLS[0], headers={}, allow_redirects=False)
    assert dict(recorder.sent[-1][2])["Authorization"].startswith("Basic ")  # the .netrc's, as requests sends it
    session, recorder = Session(), _Recorder(cookie="affinity=1; Path=/")
    session.mount("https://", recorder)
    session.request("GET", URLS[1], headers={}, allow_redirects=False)  # no .netrc entry: the short way
    assert "Authorization" not in dict(recorder.sent[-1][2])
    assert session.cookies.get("affinity") == "1"  # a cookie an answer sets is kept
    session.request("GET", URLS[1], headers={}, allow_redirects=False)
    assert "affinity=1" in dict(recorder.sent[-1][2])["Cookie"]  # and sent back, through requests
