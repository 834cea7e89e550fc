"""Cryptward: finds and fixes encryption-hygiene gaps on Azure key vaults, keys, disks, disk encryption sets and VMs.

The packages follow the flow (README, "How it works"):

    triggers/  what function_app.py's doors call: events and alerts in, the work queue, the worker
    engine/    read -> evaluate -> plan -> apply
    policy/    the Azure Policy language (pure)          fixes/     one small module per fix
    rotation/  key versions on a timer                   notices/   who is told what, and how
    store/     the function app's own Table and Queue Storage
    report/    the compliance report                     cli/       the laptop's `cryptward` command (not deployed)

At the top: `azure` (the only module that talks to ARM and Key Vault), `settings`, `errors`, and the vocabulary the
packages share: `changes` (planned changes, their context, the caller), `work` (the work item), `resources` (ARM ids
and bodies), `payload` (reading untrusted JSON).

Importing this package is cheap: it loads no Azure SDK. Modules that talk to Azure import the SDK on the path that
needs it (cold start of the function app is a goal).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
