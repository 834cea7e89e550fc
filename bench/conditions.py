"""Condition evaluations per second on one core (target: >= 50,000 for a typical 3-5 clause condition).

Run: .venv/bin/python bench/conditions.py
"""

import json
import time
from pathlib import Path

from remediations.policy.conditions import compile_condition

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "policies" / "kv-purge-protection" / "samples"
KV = "Microsoft.KeyVault/vaults/"

CONDITIONS = {
    "kv-purge-protection (4 clauses)": {
        "allOf": [
            {"field": "type", "equals": "Microsoft.KeyVault/vaults"},
            {"field": f"{KV}createMode", "notEquals": "recover"},
            {
                "anyOf": [
                    {"field": f"{KV}enablePurgeProtection", "exists": False},
                    {"field": f"{KV}enablePurgeProtection", "equals": False},
                ]
            },
        ]
    },
    "mixed (5 clauses: in, like, tags, [*], parameter)": {
        "allOf": [
            {"field": "type", "equals": "Microsoft.KeyVault/vaults"},
            {"field": "location", "in": "[parameters('locations')]"},
            {"field": "name", "like": "kv-*"},
            {"field": "tags['owner']", "exists": True},
            {"not": {"field": f"{KV}networkAcls.ipRules[*].value", "notEquals": "203.0.113.0/24"}},
        ]
    },
    "count with where (2 clauses per member)": {
        "count": {
            "field": f"{KV}accessPolicies[*]",
            "where": {
                "allOf": [
                    {"field": f"{KV}accessPolicies[*].objectId", "exists": True},
                    {"field": f"{KV}accessPolicies[*].permissions.keys[*]", "notEquals": "purge"},
                ]
            },
        },
        "greater": 0,
    },
}


def rate(condition, resources, seconds=1.0):
    compiled = compile_condition(condition, parameters={"locations": ["westeurope", "uksouth"]})
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for resource in resources:
            compiled.matches(resource)
        done += len(resources)
    return done / (time.perf_counter() - start)


def main():
    resources = [json.loads(p.read_text()) for p in sorted(SAMPLES.glob("*/*.json"))]
    start = time.perf_counter()
    for _ in range(1000):
        compile_condition(CONDITIONS["kv-purge-protection (4 clauses)"])
    compile_us = (time.perf_counter() - start) / 1000 * 1e6
    print(f"compile: {compile_us:,.0f} us per condition (once, at load)")
    print(f"evaluate over {len(resources)} sample vaults (target >= 50,000/s):")
    for name, condition in CONDITIONS.items():
        per_second = rate(condition, resources)
        print(f"  {name:<50} {per_second:>10,.0f} evaluations/s  ({per_second / 50_000:.1f}x target)")


if __name__ == "__main__":
    main()
