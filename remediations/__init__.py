"""Cryptward: finds and fixes encryption-hygiene gaps on Azure key vaults, keys, disks, disk encryption sets and VMs.

Importing this package is cheap: it loads no Azure SDK. Modules that talk to Azure import the SDK on the path
that needs it (cold start of the function app is a goal).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
