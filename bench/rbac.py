"""How many `is_allowed` checks per second with 100 role assignments (the sandbox does one per request).

Run: .venv/bin/python bench/rbac.py
"""

from __future__ import annotations

import itertools
import time
import uuid

from sandbox import rbac

SUB = "/subscriptions/00000000-0000-4000-8000-00000000c0de"
ROLE_NAMES = [
    "Reader",
    "Contributor",
    "Key Vault Crypto Officer",
    "Key Vault Crypto Service Encryption User",
    "Key Vault Reader",
    "Virtual Machine Contributor",
    "Monitoring Contributor",
    "Tag Contributor",
]


def build(n: int = 100) -> tuple[list[dict], dict[str, dict], list[tuple[str, str, str, bool]]]:
    principals = [str(uuid.UUID(int=i + 1)) for i in range(25)]
    scopes = [SUB] + [f"{SUB}/resourceGroups/rg{i}" for i in range(10)]
    scopes += [f"{SUB}/resourceGroups/rg{i}/providers/Microsoft.KeyVault/vaults/kv{i}" for i in range(10)]
    assignments = [
        {
            "id": f"{scopes[i % len(scopes)]}/providers/Microsoft.Authorization/roleAssignments/{uuid.UUID(int=i)}",
            "properties": {
                "scope": scopes[i % len(scopes)],
                "roleDefinitionId": rbac.role_definition_id(ROLE_NAMES[i % len(ROLE_NAMES)], SUB.rsplit("/", 1)[1]),
                "principalId": principals[i % len(principals)],
            },
        }
        for i in range(n)
    ]
    definitions = {guid: role for guid, role in rbac.BUILTIN_ROLES.items()}
    targets = [f"{SUB}/resourceGroups/rg{i}/providers/Microsoft.KeyVault/vaults/kv{i}/keys/k" for i in range(10)]
    actions = [
        ("Microsoft.KeyVault/vaults/write", False),
        ("Microsoft.KeyVault/vaults/read", False),
        ("Microsoft.Authorization/roleAssignments/write", False),
        (rbac.DATA_ACTIONS["rotate"], True),
        (rbac.DATA_ACTIONS["wrap"], True),
    ]
    checks = [(p, a, t, d) for p, t, (a, d) in itertools.product([*principals, "stranger"], targets, actions)]
    return assignments, definitions, checks


def rate(fn, checks, seconds: float = 1.0) -> float:
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for principal, action, scope, data in checks:
            fn(principal, action, scope, data)
        done += len(checks)
    return done / (time.perf_counter() - start)


def main() -> None:
    assignments, definitions, checks = build()
    index = rbac.AssignmentIndex(assignments, definitions)

    def by_list(p, a, s, d):
        return rbac.is_allowed(p, a, s, data_action=d, assignments=assignments, role_definitions=definitions)

    def by_index(p, a, s, d):
        return index.allowed(p, a, s, data_action=d)

    for p, a, s, d in checks:  # the two paths must agree before their speed means anything
        assert by_list(p, a, s, d) == by_index(p, a, s, d)
    print(f"{len(assignments)} assignments, {len(checks)} distinct checks")
    for label, fn in (("list of assignments", by_list), ("AssignmentIndex", by_index)):
        per_second = rate(fn, checks)
        print(f"  {label:20s} {per_second:>12,.0f} checks/s  ({1e6 / per_second:.1f} µs each)")


if __name__ == "__main__":
    main()
