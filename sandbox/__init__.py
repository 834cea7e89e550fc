"""A local HTTPS stand-in for one Azure tenant: ARM, the Key Vault data plane and a managed identity endpoint."""
