"""What the reader reads into: the scope, what the policies need, the reading, and what the lists found.

`Found` holds the bodies listed per type (lower-cased ids), the locks and role assignments listed (indexed by
scope on first use), and what could not be listed; `Reading` is what the engine evaluates (see engine/reader.py).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from remediations import fixes
from remediations.azure import Azure, as_body, translated
from remediations.errors import AzureAccessError
from remediations.policy import aliases
from remediations.policy.loader import Policy
from remediations.resources import (
    parent_of,
)

VAULT, KEY, DISK, DES, VM = aliases.VAULT, aliases.KEY, aliases.DISK, aliases.DES, aliases.VM


RELATED = "related"


ASSIGNMENT_BLOCKS = frozenset({"keyvaultroleassignments", "keyaccess", "encryptionsets"})


Progress = Callable[[str], None]


@dataclass(frozen=True)
class Scope:
    """Subscriptions, optionally narrowed to one resource group (by name, in each subscription). A management group's
    scope names the group and holds the subscriptions it was last expanded to (`remediations.scopes.expand`; none
    before); `excluded` are the lower-cased id prefixes of its not-scopes, which it does not contain."""

    subscriptions: tuple[str, ...]
    resource_group: str | None = None
    management_group: str | None = None
    excluded: tuple[str, ...] = ()

    def prefixes(self) -> tuple[str, ...]:
        group = f"/resourcegroups/{self.resource_group.lower()}" if self.resource_group else ""
        return tuple(f"/subscriptions/{s.lower()}{group}" for s in self.subscriptions)

    def contains(self, resource_id: str) -> bool:
        rid = resource_id.lower().rstrip("/")
        if any(rid == p or rid.startswith(p + "/") for p in self.excluded):
            return False
        return any(rid == p or rid.startswith(p + "/") for p in self.prefixes())


@dataclass(frozen=True)
class Needs:
    """What the policies read: resource types, and `cryptward` blocks (lower-cased)."""

    types: frozenset[str]
    blocks: frozenset[str]
    rotation_policy: bool = False  # a policy reads a key's rotationPolicy

    @classmethod
    def of(cls, policies: Iterable[Policy]) -> Needs:
        types: set[str] = set()
        blocks: set[str] = set()
        rotation = False
        for policy in policies:
            kind = policy.resource_type and aliases.READ_AS.get(policy.resource_type.lower(), policy.resource_type)
            types.update([kind] if kind else aliases.RESOURCE_TYPES)
            blocks.update(block_of(f) for f in policy.condition.fields if aliases.is_cryptward(f))
            if policy.fix:
                blocks.update(block_of(f) for f in fixes.reads(policy.fix.name))
            rotation = rotation or any("rotationpolicy" in f.lower() for f in policy.condition.fields)
        return cls(frozenset(types), frozenset(blocks), rotation)

    def wants(self, *types: str) -> bool:
        return any(t in self.types for t in types)


def block_of(field_name: str) -> str:
    """`cryptward.locks[*].properties.level` -> `locks` (lower-cased)."""
    return field_name.split(".")[1].split("[")[0].lower()


@dataclass
class Reading:
    """The bodies read (the five policy types, `cryptward` blocks filled), by id; what could not be read."""

    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # in scope: what the policies evaluate
    related: dict[str, dict[str, Any]] = field(default_factory=dict)  # everything read, by lower-cased id
    unreadable: dict[str, dict[str, str]] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)  # asked for by id, and Azure answered 404: it does not exist (now)
    notes: list[str] = field(default_factory=list)  # how the scope was read, when it matters (a fallback)
    # ARM's role-assignment list of each subscription the reader listed whole (at, above and below it), by
    # `/subscriptions/{id}` lower-cased: the access review (engine/vaultextras.py) takes it rather than list it again.
    assignment_lists: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def missing(self, resource_id: str, block: str, error: AzureAccessError | str) -> None:
        why = error if isinstance(error, str) else f"{error.code}: {error.message}".rstrip(": ")
        self.unreadable.setdefault(resource_id.lower(), {})[block.lower()] = why

    def reasons(self, resource_id: str) -> Mapping[str, str]:
        return self.unreadable.get(resource_id.lower(), {})


@dataclass
class Found:
    vaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    disks: dict[str, dict[str, Any]] = field(default_factory=dict)
    vms: dict[str, dict[str, Any]] = field(default_factory=dict)
    locks: list[dict[str, Any]] | None = None
    assignments: list[dict[str, Any]] | None = None
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock_error: AzureAccessError | None = None
    assignment_error: AzureAccessError | None = None
    listed: list[str] = field(default_factory=list)  # scopes whose locks / assignments were listed (lower-cased)
    vaults_everywhere: AzureAccessError | str | None = None  # the other subscriptions' vaults were listed (or why not)
    snapshots: dict[str, dict[str, Any]] | AzureAccessError | None = None  # listed with the disks (or why not)
    power: dict[str, str] = field(default_factory=dict)  # VM id (lower-cased) -> power state code
    skus: dict[tuple[str, str], Any] = field(default_factory=dict)  # (subscription, region) -> sizes' capabilities
    features: dict[str, Any] = field(default_factory=dict)  # subscription -> its EncryptionAtHost feature
    # Per listed scope, the scopes above it its id does not spell (management groups, the root as ""), from the
    # assignments its list inherits: ARM answers them in a subscription's list, and they hold below it.
    inherited: dict[str, set[str]] = field(default_factory=dict)
    assignments_from_graph: bool = False  # Resource Graph's: read again through ARM before a decision to write
    exact: dict[str, Any] = field(default_factory=dict)  # subscription -> ARM's list of it (or the count of keys read)
    _index: dict[str, dict[str, list[tuple[int, dict[str, Any]]]]] = field(default_factory=dict)

    def absorb(self, other: Found) -> None:
        """Add what another subscription's lists found: dicts merge, lists add up, the first error stays."""
        for f in fields(self):
            if f.name == "_index":
                continue
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name == "snapshots":  # a failed list anywhere: the snapshots are not known
                if not isinstance(mine, AzureAccessError) and theirs is not None:
                    failed = isinstance(theirs, AzureAccessError)
                    self.snapshots = theirs if failed else {**(mine or {}), **theirs}
                continue
            if isinstance(mine, bool):
                setattr(self, f.name, mine or theirs)
            elif isinstance(mine, dict):
                mine.update(theirs)
            elif isinstance(theirs, list):
                setattr(self, f.name, [*(mine or []), *theirs])
            elif mine is None:
                setattr(self, f.name, theirs)
        self._index.clear()

    def over(self, kind: str, resource_id: str, extra: Collection[str] = ()) -> list[dict[str, Any]]:
        """The listed locks or role assignments (`kind`) at `resource_id`'s scope and above (and at the `extra`
        scopes its id does not spell: management groups, the root), in list order: from an index by scope, built
        once, so each resource costs the depth of its id rather than the length of the list."""
        items = self.locks if kind == "locks" else self.assignments
        if kind not in self._index:
            index: dict[str, list[tuple[int, dict[str, Any]]]] = {}
            for i, item in enumerate(items or []):
                index.setdefault(scope_of(str(item["id"]), kind), []).append((i, item))
            self._index[kind] = index
        index = self._index[kind]
        hits = [hit for scope in ancestors(resource_id) | set(extra) for hit in index.get(scope, ())]
        return [item for _, item in sorted(hits, key=lambda hit: hit[0])]


def bodies_of(items: Iterable[Any]) -> dict[str, dict[str, Any]]:
    with translated():
        return {str(b["id"]).lower(): b for b in (i if isinstance(i, dict) else as_body(i) for i in items)}


def list_json(azure: Azure, path: str, api_version: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One ARM collection as JSON bodies by lower-cased id: the generic pipeline (same credential, retries, pacing
    and cloud profile as the SDK clients), following nextLink, without building SDK models."""
    return {str(b["id"]).lower(): b for b in azure.list(path, api_version, params)}


def lock_block(
    locks: list[dict[str, Any]] | None, error: AzureAccessError | None, resource_id: str
) -> list[dict[str, Any]] | AzureAccessError | str:
    """A resource's `cryptward.locks` block: the locks at its scope and above, or why it cannot be filled (the
    list's error, or a reason when the locks were not listed)."""
    if locks is None:
        return error or "the locks were not listed"
    return locks_over(locks, resource_id)


def cw(body: dict[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = body.setdefault(aliases.CRYPTWARD, {})
    return block


def ancestors(resource_id: str) -> set[str]:
    """The id and every scope above it (resource, parent resource, group, subscription), lower-cased."""
    rid = resource_id.lower().rstrip("/")
    out = {rid}
    while "/" in rid.strip("/"):
        if "/providers/" in rid and rid.rsplit("/providers/", 1)[1].count("/") > 2:
            rid = parent_of(rid)  # a child resource: .../vaults/kv/keys/k -> .../vaults/kv
        elif "/providers/" in rid:
            rid = rid.rsplit("/providers/", 1)[0]
        elif "/resourcegroups/" in rid:
            rid = rid.rsplit("/resourcegroups/", 1)[0]
        else:
            break
        out.add(rid)
    return out


def scope_of(extension_id: str, kind: str) -> str:
    return extension_id.lower().rsplit(f"/providers/microsoft.authorization/{kind}/", 1)[0]


def locks_over(locks: list[dict[str, Any]], resource_id: str) -> list[dict[str, Any]]:
    above = ancestors(resource_id)
    return [lock for lock in locks if scope_of(str(lock["id"]), "locks") in above]
