"""Drive the sandbox with the real Azure CLI: find the pinned `az` (scripts/install-az.sh), point it at a sandbox
through a cloud of its own in a throwaway config dir, log in with the sandbox's managed-identity endpoint, and run
commands that return parsed JSON.

It needs only what any `SandboxHandle` offers (base_url, ca, principals, identity header), however the sandbox was
started. Nothing here reaches past 127.0.0.1: every endpoint of the registered cloud is the sandbox, and telemetry,
surveys, version checks and extensions are off.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.waits import limit

REPO = Path(__file__).resolve().parents[2]
INSTALL_HINT = "run `bash scripts/install-az.sh` (or `make az`) to install the pinned Azure CLI"
# Variables of the test process that would steer az somewhere else (or into the project's venv).
_SCRUB_PREFIXES = ("AZURE_", "IDENTITY_", "MSI_", "AZ_")
_SCRUB = {"REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}


class AzMissing(RuntimeError):
    pass


class AzError(RuntimeError):
    """`az` exited non-zero. `stderr` holds its error (ARM's code and message for a refused request)."""

    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        super().__init__(f"az {' '.join(args)} exited {returncode}:\n{stderr.strip()}")
        self.args_ = args
        self.returncode = returncode
        self.stderr = stderr


def pinned_version() -> str:
    spec = (REPO / "requirements-az.txt").read_text().strip()
    name, _, version = spec.partition("==")
    if name.strip() != "azure-cli" or not version:
        raise AzMissing(f"requirements-az.txt should hold one line `azure-cli==VERSION`, not {spec!r}")
    return version.strip()


def find_az() -> Path:
    """$CRYPTWARD_AZ, else where scripts/install-az.sh puts it (same rule: $CRYPTWARD_AZ_HOME, else the cache)."""
    explicit = os.environ.get("CRYPTWARD_AZ")
    if explicit:
        path = Path(explicit)
    else:
        home = os.environ.get("CRYPTWARD_AZ_HOME")
        if not home:
            cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
            home = str(Path(cache) / "cryptward" / f"azure-cli-{pinned_version()}")
        path = Path(home) / "bin" / "az"
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise AzMissing(f"the Azure CLI is not installed at {path}: {INSTALL_HINT}")
    return path


@dataclass
class Az:
    """One az installation bound to one config dir (its cloud and login). Call it like the command line:
    `az("group", "show", "-n", "rg")` returns the parsed JSON output (None when az prints nothing)."""

    exe: Path
    config_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = field(default_factory=lambda: limit(120))  # one az command: a few seconds here

    @classmethod
    def for_sandbox(cls, handle: Any, config_dir: Path, exe: Path | None = None) -> Az:
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "extensions").mkdir(exist_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES) and k not in _SCRUB}
        env = base | {
            "AZURE_CONFIG_DIR": str(config_dir),
            "AZURE_EXTENSION_DIR": str(config_dir / "extensions"),
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_ONLY_SHOW_ERRORS": "true",
            "AZURE_CORE_SURVEY_MESSAGE": "false",
            "AZURE_CORE_NO_COLOR": "true",
            "AZURE_CORE_DISABLE_CONFIRMATION_PROMPT": "true",
            "AZURE_CORE_LOGIN_EXPERIENCE_V2": "off",
            "AZURE_EXTENSION_USE_DYNAMIC_INSTALL": "no",
            "AZ_INSTALLER": "PIP",
            # The sandbox's managed-identity endpoint (App Service style) and its CA.
            "IDENTITY_ENDPOINT": f"{handle.base_url}/msi/token",
            "IDENTITY_HEADER": handle.running.sandbox.identity_header,
            "REQUESTS_CA_BUNDLE": handle.ca,
        }
        return cls(exe or find_az(), config_dir, env)

    def run(self, *args: str, output: str = "json") -> subprocess.CompletedProcess[str]:
        argv = [str(self.exe), *args, "-o", output]
        try:
            return subprocess.run(
                argv, env=self.env, capture_output=True, text=True, timeout=self.timeout, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as exc:
            raise AzError(list(args), -1, f"timed out after {self.timeout:g} s; stderr so far: {exc.stderr!r}") from exc

    def __call__(self, *args: str) -> Any:
        done = self.run(*args)
        if done.returncode != 0:
            raise AzError(list(args), done.returncode, done.stderr)
        return json.loads(done.stdout) if done.stdout.strip() else None

    def fails(self, *args: str) -> AzError:
        """Run a command that must be refused; return its error (raise if it succeeded)."""
        done = self.run(*args)
        if done.returncode == 0:
            raise AssertionError(f"az {' '.join(args)} succeeded but should have failed; it printed:\n{done.stdout}")
        return AzError(list(args), done.returncode, done.stderr)

    def use_sandbox_cloud(self, handle: Any, name: str = "CryptwardSandbox") -> None:
        """Register a cloud whose every endpoint is the sandbox, and make it the active one."""
        base = handle.base_url.rstrip("/")
        self(
            "cloud",
            "register",
            "-n",
            name,
            "--endpoint-resource-manager",
            f"{base}/",
            "--endpoint-active-directory",
            base,
            "--endpoint-active-directory-resource-id",
            "https://management.core.windows.net/",
            "--endpoint-management",
            "https://management.core.windows.net/",
            "--endpoint-active-directory-graph-resource-id",
            f"{base}/graph/",
            "--endpoint-microsoft-graph-resource-id",
            f"{base}/",
            "--endpoint-gallery",
            f"{base}/gallery/",
            "--endpoint-vm-image-alias-doc",
            f"{base}/vm-image-aliases.json",
            "--suffix-keyvault-dns",
            ".vault.azure.net",
            "--skip-endpoint-discovery",
        )
        self("cloud", "set", "-n", name)

    def login(self, handle: Any, principal: str = "admin") -> Any:
        """`az login --identity --client-id` as a named sandbox principal; returns the accounts az found."""
        return self("login", "--identity", "--client-id", handle.principal(principal).client_id)
