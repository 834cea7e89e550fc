"""The requests session under every client of remediations/azure/ (`Azure.transport`): requests' own, except that
what it reads from the environment for each request is read once per origin.

requests' `Session.merge_environment_settings` (requests 2.34, `trust_env`) looks up the proxies for every request
(`get_environ_proxies`: urllib's `getproxies_environment` walks the whole of `os.environ`, twice with `no_proxy`
checked) and `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE`: measured, about 0.6 ms of the bot's CPU per ARM call, a tenth
of a scan's own CPU, for an answer that depends only on the environment and the URL's scheme and host. Here it is
looked up once per (scheme, host:port, no_proxy) and merged as requests merges it. The settings are the same; what
changes is when they are read: an environment changed while the process runs is seen by a new `Azure` (a new
transport), not by one already talking to that origin.

`request` takes a short way for what every azure-core request is (no cookies, params, files, auth or hooks of the
call's own, redirects left to the pipeline's RedirectPolicy): the request prepared as requests prepares it (method,
URL, the session's headers under the call's, body) and handed to the adapter, without the steps that cannot apply.
requests builds and merges empty cookie jars, looks for a `.netrc` on disk, merges empty params and hooks through
runtime `Protocol` checks, and looks for a redirect the caller said not to follow, on every request: about a third of
the bot's CPU an ARM call (bench/percall.py). A call that uses any of those, a session given cookies, auth, params or
hooks, a `.netrc` for the origin, or a proxy, goes the whole way through requests.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.models import PreparedRequest
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies, get_netrc_auth


class Session(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str, str | None], tuple[dict[str, str], str | None]] = {}
        self._netrc: dict[tuple[str, str], bool] = {}  # origin -> a .netrc names it (requests would use it)
        self._reading = threading.Lock()

    def _from_environment(self, url: str, no_proxy: str | None) -> tuple[dict[str, str], str | None]:
        parts = urlsplit(url)
        key = (parts.scheme.lower(), parts.netloc.lower(), no_proxy)
        found = self._environment.get(key)
        if found is None:
            with self._reading:
                found = self._environment.get(key)
                if found is None:
                    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                    found = self._environment[key] = (dict(get_environ_proxies(url, no_proxy=no_proxy)), bundle)
        return found

    def _has_netrc(self, url: str) -> bool:
        parts = urlsplit(url)
        key = (parts.scheme.lower(), parts.netloc.lower())
        found = self._netrc.get(key)
        if found is None:
            found = self._netrc[key] = get_netrc_auth(url) is not None
        return found

    def request(
        self,
        method: str,
        url: Any,
        params: Any = None,
        data: Any = None,
        headers: Any = None,
        cookies: Any = None,
        files: Any = None,
        auth: Any = None,
        timeout: Any = None,
        allow_redirects: bool = True,
        proxies: Any = None,
        hooks: Any = None,
        stream: Any = None,
        verify: Any = None,
        cert: Any = None,
        json: Any = None,
    ) -> requests.Response:
        plain = not (params or cookies or files or auth or hooks or json is not None or allow_redirects or proxies)
        if (
            not plain
            or not isinstance(url, str)
            or not self.trust_env
            or self.cookies
            or self.auth
            or self.params
            or any(self.hooks.values())
            or self._has_netrc(url)
        ):
            return super().request(
                method, url, params, data, headers, cookies, files, auth, timeout, allow_redirects, proxies,
                hooks, stream, verify, cert, json,
            )  # fmt: skip
        env_proxies, bundle = self._from_environment(url, None)
        if env_proxies or self.proxies:
            return super().request(
                method, url, None, data, headers, None, None, None, timeout, False, None, None, stream, verify, cert
            )
        # merge_environment_settings, for what is left: no proxies, and settings that are not mappings (the call's
        # own unless None, then the session's)
        if verify is True or verify is None:
            verify = bundle or verify
        settings: dict[str, Any] = {
            "proxies": {},
            "stream": self.stream if stream is None else stream,
            "verify": self.verify if verify is None else verify,
            "cert": self.cert if cert is None else cert,
        }
        # requests' PreparedRequest.prepare in its order, minus the cookies (none) and hooks (none); the headers
        # merged as merge_setting merges them (the session's, then the call's over them whatever their case, where
        # the first one set keeps its place; None removes one)
        merged: dict[str, tuple[str, Any]] = {k.lower(): (k, v) for k, v in self.headers.items()}
        merged.update((k.lower(), (k, v)) for k, v in (headers or {}).items())
        prep = PreparedRequest()
        prep.prepare_method(method.upper())
        prep.prepare_url(url, None)
        prep.prepare_headers({k: v for k, v in merged.values() if v is not None})
        prep.prepare_body(data or {}, None, None)
        prep.prepare_auth(None, url)  # user:password@host in the URL, as requests takes it
        prep.prepare_hooks(None)
        start = time.perf_counter()
        response = self.get_adapter(url=str(prep.url)).send(prep, timeout=timeout, **settings)
        response.elapsed = timedelta(seconds=time.perf_counter() - start)
        if "set-cookie" in response.headers:  # kept as requests keeps them (ARM sets none)
            self.cookies.update(response.cookies)
        if not settings["stream"]:
            response.content  # noqa: B018  (read now, as requests does: the connection goes back to the pool)
        return response

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        if not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        # requests' own steps (sessions.py, merge_environment_settings), the environment's part read once
        env_proxies, bundle = self._from_environment(str(url), proxies.get("no_proxy") if proxies is not None else None)
        if proxies is not None:
            for k, v in env_proxies.items():
                proxies.setdefault(k, v)
        if verify is True or verify is None:
            verify = bundle or verify
        return {
            "proxies": merge_setting(proxies, self.proxies),
            "stream": merge_setting(stream, self.stream),
            "verify": merge_setting(verify, self.verify),
            "cert": merge_setting(cert, self.cert),
        }


__all__ = ["Session"]
