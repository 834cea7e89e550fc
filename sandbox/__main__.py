"""`python -m sandbox`: run the local Azure and talk to it.

serve [--port N] [--state DIR] [--scenario NAME] [--persist]   start it (HTTPS on 127.0.0.1)
env [--state DIR] [--as NAME]                                  print the export lines a client needs (and the
                                                               sign-in authority, SANDBOX_OIDC_AUTHORITY)
seed NAME [--state DIR]                                        add a named scenario to the running sandbox
reset [NAME] [--state DIR]                                     empty it (then seed NAME, default "empty")
clock [--advance DURATION] [--state DIR]                       show or move the sandbox clock (e.g. 90d, 2h, 30m)
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import signal
import ssl
import sys
from pathlib import Path
from typing import Any

DEFAULT_STATE = Path(".sandbox")
DEFAULT_PORT = 8443


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="start the sandbox in the foreground (Ctrl-C stops it)")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0 = any)"
    )
    p.add_argument("--state", type=Path, default=DEFAULT_STATE, help="state dir for certs, server.json, state.json")
    p.add_argument("--scenario", default="empty", help="scenario to seed at start (default: empty)")
    p.add_argument("--persist", action="store_true", help="load state.json at start and save it at exit")
    p = sub.add_parser("env", help="print export lines for the SDKs, az and Cryptward")
    p.add_argument("--state", type=Path, default=DEFAULT_STATE)
    p.add_argument("--as", dest="principal", default="bot", help="principal whose client id AZURE_CLIENT_ID names")
    p = sub.add_parser("seed", help="seed a named scenario into the running sandbox")
    p.add_argument("name")
    p.add_argument("--state", type=Path, default=DEFAULT_STATE)
    p = sub.add_parser("reset", help="empty the running sandbox, then seed a scenario")
    p.add_argument("name", nargs="?", default="empty")
    p.add_argument("--state", type=Path, default=DEFAULT_STATE)
    p = sub.add_parser("clock", help="show or advance the sandbox clock")
    p.add_argument("--advance", help="duration such as 90d, 12h, 30m, 45s")
    p.add_argument("--state", type=Path, default=DEFAULT_STATE)
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except SandboxCliError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2


class SandboxCliError(Exception):
    pass


def serve(args: argparse.Namespace) -> int:
    from sandbox.runner import prepare, write_info

    running = prepare(args.state, args.port, args.scenario, persist=args.persist)
    server = running.server
    original = server.startup

    async def startup(sockets: Any = None) -> None:
        await original(sockets)
        write_info(args.state, running.info())
        print(
            f"sandbox: serving {running.base_url} (state {args.state}); `python -m sandbox env` prints the exports",
            flush=True,
        )

    server.startup = startup  # type: ignore[method-assign]
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    server.run()
    if args.persist:
        running.sandbox.save()
    (args.state / "server.json").unlink(missing_ok=True)
    return 0


def _info(state: Path) -> dict[str, Any]:
    path = state / "server.json"
    if not path.exists():
        raise SandboxCliError(f"no running sandbox found ({path} is missing); start one with `python -m sandbox serve`")
    return json.loads(path.read_text())


def env(args: argparse.Namespace) -> int:
    info = _info(args.state)
    principals = info["principals"]
    if args.principal not in principals:
        raise SandboxCliError(f"unknown principal {args.principal!r}; valid: {sorted(principals)}")
    ca = str(Path(info["ca"]).resolve())
    lines = {
        "AZURE_RESOURCE_MANAGER_ENDPOINT": info["baseUrl"] + "/",
        "AZURE_TENANT_ID": info["tenantId"],
        "AZURE_SUBSCRIPTION_ID": info["subscriptionId"],
        "AZURE_CLIENT_ID": principals[args.principal]["client_id"],
        "IDENTITY_ENDPOINT": info["identityEndpoint"],
        "IDENTITY_HEADER": info["identityHeader"],
        "REQUESTS_CA_BUNDLE": ca,
        "SSL_CERT_FILE": ca,
        "SANDBOX_ADMIN_KEY": info["adminKey"],
        # Sign-in (OpenID Connect, sandbox/oidc.py): MSAL's authority, with instance_discovery=False.
        "SANDBOX_OIDC_AUTHORITY": info.get("authority") or f"{info['baseUrl']}/{info['tenantId']}",
        **({"CRYPTWARD_RETAIL_PRICES_URL": info["retailPrices"]} if info.get("retailPrices") else {}),
    }
    print('# Cryptward sandbox: eval "$(python -m sandbox env)"')
    for name, value in lines.items():
        print(f"export {name}={shlex.quote(value)}")
    print("# principals (use --as NAME, or `az login --identity --client-id ID`):")
    for name, p in principals.items():
        print(f"#   {name:10} client id {p['client_id']}  object id {p['object_id']}  {p.get('upn') or ''}".rstrip())
    authority = lines["SANDBOX_OIDC_AUTHORITY"]
    print(f"# sign-in: discovery {authority}/v2.0/.well-known/openid-configuration; users sign in by UPN (login_hint)")
    print("#   register an app: POST /_sandbox/apps {redirectUris, secret: true}; groups: POST /_sandbox/groups")
    return 0


def _admin(state: Path, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    import httpx

    info = _info(state)
    with httpx.Client(
        base_url=info["baseUrl"],
        verify=ssl.create_default_context(cafile=info["ca"]),
        headers={"x-sandbox-key": info["adminKey"]},
    ) as c:
        try:
            r = c.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise SandboxCliError(f"the sandbox at {info['baseUrl']} did not answer: {exc}") from exc
    if r.status_code >= 400:
        raise SandboxCliError(r.json().get("error", {}).get("message", r.text))
    return dict(r.json())


def seed(args: argparse.Namespace) -> int:
    print(json.dumps(_admin(args.state, "POST", "/_sandbox/seed", {"scenario": args.name}), indent=2))
    return 0


def reset(args: argparse.Namespace) -> int:
    print(json.dumps(_admin(args.state, "POST", "/_sandbox/reset", {"scenario": args.name}), indent=2))
    return 0


_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhms])\s*", text)
    if not m:
        raise SandboxCliError(f"bad duration {text!r}; use a number and one of d, h, m, s (e.g. 90d, 2h)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def clock(args: argparse.Namespace) -> int:
    if args.advance:
        out = _admin(args.state, "POST", "/_sandbox/clock", {"advanceSeconds": parse_duration(args.advance)})
    else:
        out = _admin(args.state, "GET", "/_sandbox/clock")
    print(json.dumps(out))
    return 0


COMMANDS = {"serve": serve, "env": env, "seed": seed, "reset": reset, "clock": clock}

if __name__ == "__main__":
    sys.exit(main())
