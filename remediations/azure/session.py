"""The requests session under every client of remediations/azure/ (`Azure.transport`): requests' own, except that
what it reads from the environment for each request is read once per origin.

requests' `Session.merge_environment_settings` (requests 2.34, `trust_env`) looks up the proxies for every request
(`get_environ_proxies`: urllib's `getproxies_environment` walks the whole of `os.environ`, twice with `no_proxy`
checked) and `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE`: measured, about 0.6 ms of the bot's CPU per ARM call, a tenth
of a scan's own CPU, for an answer that depends only on the environment and the URL's scheme and host. Here it is
looked up once per (scheme, host:port, no_proxy) and merged as requests merges it. The settings are the same; what
changes is when they are read: an environment changed while the process runs is seen by a new `Azure` (a new
transport), not by one already talking to that origin.
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies


class Session(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str, str | None], tuple[dict[str, str], str | None]] = {}
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
