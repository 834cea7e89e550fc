"""CRYPTWARD_DES_MAP: which disk encryption set a disk of a subscription and region is moved to (pure).

Azure requires a disk and its set in the same subscription and region ("Most resources related to your
customer-managed keys (disk encryption sets, VMs, disks, and snapshots) must be in the same subscription and region",
https://learn.microsoft.com/azure/virtual-machines/disk-encryption#restrictions), so the map is keyed by both:

    {"<subscription id>": {"westeurope": {"EncryptionAtRestWithCustomerKey": "<DES id>"}}}

The region-only form of one subscription still works, for the disks of that subscription (the subscription of its
sets):

    {"westeurope": {"EncryptionAtRestWithCustomerKey": "<DES id>"}}

`check` names what is wrong with a map (the settings refuse it at load): a form mixing subscriptions and regions, a
region-only map whose sets are in several subscriptions (ambiguous: key it by subscription), a value that is not a
disk encryption set id, a set of another subscription than the one it is listed under.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DES_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/[^/]+/providers/Microsoft\.Compute/diskEncryptionSets/[^/]+$",
    re.IGNORECASE,
)
EXAMPLE = (
    '{"<subscription id>": {"westeurope": {"EncryptionAtRestWithCustomerKey": '
    '"/subscriptions/<subscription id>/resourceGroups/<group>/providers/Microsoft.Compute/diskEncryptionSets/<name>"}}}'
)


def _region(name: str) -> str:
    return name.replace(" ", "").lower()


def by_subscription(des_map: Mapping[str, Any]) -> bool:
    """Whether the map is keyed by subscription first (its keys are subscription ids)."""
    return bool(des_map) and all(_GUID.match(str(k)) for k in des_map)


def check(des_map: Mapping[str, Any]) -> str | None:
    """What is wrong with the map, or None."""
    keys = [str(k) for k in des_map]
    subs = [k for k in keys if _GUID.match(k)]
    if subs and len(subs) != len(keys):
        return "mixes subscription ids and regions at the top level; key every entry by subscription, e.g. " + EXAMPLE
    regions: dict[str, Any] = {}
    if subs:
        for sub, by_region in des_map.items():
            if not isinstance(by_region, dict):
                return f"{sub!r} must map regions to encryption types to disk encryption set ids, e.g. {EXAMPLE}"
            regions.update({f"{sub}/{r}": v for r, v in by_region.items()})
    else:
        regions = dict(des_map)
    seen: set[str] = set()
    for where, by_type in regions.items():
        if not isinstance(by_type, dict) or not all(isinstance(v, str) for v in by_type.values()):
            return f"{where!r} must map encryption types to disk encryption set ids, e.g. {EXAMPLE}"
        for des_id in by_type.values():
            match = _DES_ID.match(des_id)
            if match is None:
                return f"{des_id!r} (under {where!r}) is not a disk encryption set id, e.g. {EXAMPLE}"
            sub = match["sub"].lower()
            if subs and sub != where.split("/")[0].lower():
                return (
                    f"{des_id!r} is listed for subscription {where.split('/')[0]}, but it is in subscription "
                    f"{match['sub']}: Azure lets a disk use only a set of its own subscription"
                )
            seen.add(sub)
    if not subs and len(seen) > 1:
        return (
            f"names disk encryption sets of {len(seen)} subscriptions ({', '.join(sorted(seen))}) by region alone, "
            "which is ambiguous: key it by subscription, e.g. " + EXAMPLE
        )
    return None


def lookup(des_map: Mapping[str, Any], subscription: str, region: str, encryption_type: str) -> str | None:
    """The set for a disk of `subscription` in `region` with `encryption_type`, or None. A region-only map serves
    only the subscription of its sets."""
    entries: Mapping[str, Any] = {}
    if by_subscription(des_map):
        entries = next((v for k, v in des_map.items() if str(k).lower() == subscription.lower()), {}) or {}
    else:
        entries = des_map
    wanted = _region(region)
    by_type = next((v for k, v in entries.items() if _region(str(k)) == wanted), None) or {}
    des_id = next((str(d) for t, d in by_type.items() if str(t).lower() == encryption_type.lower()), None)
    if des_id is None:
        return None
    match = _DES_ID.match(des_id)
    if match is not None and subscription and match["sub"].lower() != subscription.lower():
        return None  # a set of another subscription cannot serve this disk
    return des_id


__all__ = ["EXAMPLE", "by_subscription", "check", "lookup"]
