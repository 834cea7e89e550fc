"""`scan(..., stream=True)` (what `cryptward scan` runs): each body evaluated and planned, then dropped; findings and
skips spooled to a private temporary file. The report must be the same, item for item and byte for byte, as the scan
held in memory, and the file must be private and gone on success and on error."""

import io
import json
import os
import re
import stat
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from azure.mgmt.keyvault import KeyVaultManagementClient

from remediations.cli import output
from remediations.engine import planner, run, streamed
from remediations.engine.reader import Scope
from remediations.engine.spool import Spool
from remediations.errors import PlanError
from tests.engine.test_run import POLICIES, ids, settings_for

ROOT = Path(__file__).resolve().parents[2]


def _scan(sandbox, azure, *, stream, apply=False):
    return run.scan(
        Scope((sandbox.subscription_id,)),
        POLICIES,
        apply=apply,
        settings=settings_for(sandbox),
        azure=azure,
        ade_history=[ids(sandbox)["ade"]],
        stream=stream,
    )


def _texts(report):
    """Every way the CLI writes a report: JSON (streamed rows), Markdown, the table."""
    from rich.console import Console

    as_json = io.StringIO()
    output.write_json(report, as_json)
    table = io.StringIO()
    output.print_table(report, Console(file=table, width=160))
    return {"json": as_json.getvalue(), "markdown": output.to_markdown(report), "table": table.getvalue()}


@pytest.fixture
def mixed_estate(sandbox, grant_custom_role):
    """The estate (vaults, keys, a DES, disks, VMs, ADE), every policy; a vault exempt from one policy by its tag
    and with a malformed entry (a note); the bot without `locks/read` (findings it cannot decide: cannot-read)."""
    sandbox.reset("estate")
    grant_custom_role("bot", without=["Microsoft.Authorization/locks/read"])
    vaults = sandbox.client(KeyVaultManagementClient)
    vaults.vaults.update(
        "rg-app-weu", "kv-weu-app", {"tags": {"cryptward-exempt": "kv-purge-protection; kv-no-such-policy"}}
    )
    return sandbox


def test_a_streamed_scan_is_the_scan_held_in_memory_item_for_item_and_byte_for_byte(mixed_estate, as_bot):
    _scan(mixed_estate, as_bot(), stream=False)  # the first scan of a process makes one GET more (a cache)
    held = _scan(mixed_estate, as_bot(), stream=False)
    streamed = _scan(mixed_estate, as_bot(), stream=True)
    try:
        reasons = Counter(s.reason for s in held.plan.skipped)
        # the estate holds every kind the comparison must cover
        assert {"exempt", "cannot-read", "audit-only"} <= set(reasons), reasons
        assert held.plan.changes and held.plan.notes and any(f.unreadable for f in held.findings)
        assert {str(f.resource.get("type")) for f in held.findings} >= {
            "Microsoft.KeyVault/vaults",
            "Microsoft.Compute/diskEncryptionSets",
            "Microsoft.Compute/disks",
            "Microsoft.Compute/virtualMachines",
        }
        assert streamed.spool is not None and held.bodies and not streamed.bodies

        def rows(report):
            findings = [tuple(output_row.values()) for output_row in map(run.finding_dict, report.findings)]
            skips = [tuple(s.to_dict().values()) for s in report.plan.skipped]
            return findings, skips

        held_findings, held_skips = rows(held)
        streamed_findings, streamed_skips = rows(streamed)
        # none lost, none twice: the same multiset, and then the same order
        assert Counter(streamed_findings) == Counter(held_findings)
        assert Counter(streamed_skips) == Counter(held_skips)
        assert streamed_findings == held_findings and streamed_skips == held_skips
        assert len(streamed.findings) == len(held.findings) and len(streamed.plan.skipped) == len(held.plan.skipped)
        assert [c.to_dict() for c in streamed.plan.changes] == [c.to_dict() for c in held.plan.changes]
        assert (streamed.resources, streamed.evaluations) == (held.resources, held.evaluations)
        held_texts, streamed_texts = _texts(held), _texts(streamed)
        for kind in held_texts:
            assert streamed_texts[kind] == held_texts[kind], kind
        assert json.loads(streamed_texts["json"])["findings"]
    finally:
        streamed.close()


@pytest.fixture
def spools(monkeypatch, tmp_path):
    """Every Spool a scan makes, with its files made in an empty folder of the test's own."""
    made: list[Spool] = []

    class Recorded(Spool):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    monkeypatch.setattr(run, "Spool", Recorded)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return made


def test_the_spooled_file_is_private_nameless_and_closed_with_the_report(mixed_estate, as_bot, spools, tmp_path):
    report = _scan(mixed_estate, as_bot(), stream=True)
    assert spools == [report.spool]
    files = [report.findings, report.plan.skipped]
    for spooled in files:
        st = os.fstat(spooled.fileno())
        assert stat.S_IMODE(st.st_mode) == 0o600  # only the bot's own user can open it
        assert st.st_nlink == 0  # never in a folder: nothing to find, nothing left if the process dies
    assert os.listdir(tmp_path) == []
    assert len(report.findings) > 0
    report.close()
    assert report.spool.closed and os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="closed"):
        list(report.findings)


def test_the_spool_is_closed_when_the_scan_fails(mixed_estate, as_bot, spools, monkeypatch):
    def broken(self):
        raise PlanError("changes depend on each other in a cycle: x")

    monkeypatch.setattr(planner.Planner, "finish", broken)
    with pytest.raises(PlanError):
        _scan(mixed_estate, as_bot(), stream=True)
    assert len(spools) == 1 and spools[0].closed


def test_the_cli_closes_the_report_it_wrote_and_the_one_it_could_not_write(sandbox, monkeypatch):
    from remediations.cli.scan import command

    monkeypatch.setenv("AZURE_CLIENT_ID", sandbox.principal("admin").client_id)
    sandbox.reset("estate")

    class Result:
        compliant = False
        closed = False

        def close(self) -> None:
            self.closed = True

    made: list[Result] = []

    def produce(*_, **__):
        made.append(Result())
        return made[-1]

    def cannot_write(_):
        raise OSError("disk full")

    common = dict(output="json", formats=("json",), policies_dir=None, produce=produce)
    assert command([sandbox.subscription_id], None, ["kv-delete-lock"], write=lambda _: None, **common) == 1
    assert command([sandbox.subscription_id], None, ["kv-delete-lock"], write=cannot_write, **common) == 2
    assert [r.closed for r in made] == [True, True]


def test_what_planning_looks_up_beside_a_finding_is_what_looked_up_keeps():
    """A fix that looks up another body (PlanContext.related) must be listed in streamed.looked_up, or a streamed scan
    would have dropped that body: these are the lookups it keeps."""
    lookups = {}
    for path in sorted((ROOT / "remediations" / "fixes").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "ctx.resources" not in text, path.name
        found = re.findall(r"ctx\.related\(([^)]*)\)", text)
        if found:
            lookups[path.stem] = found
    assert lookups == {
        "des_auto_rotation": ['get(des, "properties.activeKey.sourceVault.id"'],
        "disk_cmk": ['resource.get("managedBy"'],
        "key_rotation_policy": ['parent_of(str(key["id"]'],
        "snapshot_cmk": ["des_id"],
    }


def test_looked_up_keeps_a_sets_vault_a_disks_vm_and_a_keys_vault_and_with_apply_every_disk_and_vm():
    from remediations.engine.found import Reading

    sub = "/subscriptions/s/resourcegroups/g/providers"
    vault, other = f"{sub}/microsoft.keyvault/vaults/kv", f"{sub}/microsoft.keyvault/vaults/kv-other"
    key_vault = f"{sub}/microsoft.keyvault/vaults/kv-keys"
    vm, disk = f"{sub}/microsoft.compute/virtualmachines/vm", f"{sub}/microsoft.compute/disks/d"
    des = f"{sub}/microsoft.compute/diskencryptionsets/des"
    bodies = {
        vault: {"id": vault, "type": "Microsoft.KeyVault/vaults"},
        other: {"id": other, "type": "Microsoft.KeyVault/vaults"},
        key_vault: {"id": key_vault, "type": "Microsoft.KeyVault/vaults"},
        vm: {"id": vm, "type": "Microsoft.Compute/virtualMachines"},
        disk: {"id": disk, "type": "Microsoft.Compute/disks", "managedBy": vm.upper()},
        des: {
            "id": des,
            "type": "Microsoft.Compute/diskEncryptionSets",
            "properties": {"activeKey": {"sourceVault": {"id": vault}}},
        },
        f"{key_vault}/keys/k": {"id": f"{key_vault}/keys/k", "type": "Microsoft.KeyVault/vaults/keys"},
        f"{sub}/microsoft.compute/snapshots/s": {
            "id": f"{sub}/microsoft.compute/snapshots/s",
            "type": "Microsoft.Compute/snapshots",
            "cryptward": {"sourceEncryption": {"diskEncryptionSetId": des.upper()}},
        },
    }
    reading = Reading(resources=dict(bodies), related=dict(bodies))
    assert set(streamed.looked_up(reading, None, apply=False)) == {vault, vm, key_vault, des}
    assert set(streamed.looked_up(reading, None, apply=True)) == {vault, vm, key_vault, disk, des}


def test_spooled_rows_come_back_in_order_every_time_none_lost_or_twice():
    with Spool() as spool:
        rows = spool.rows(lambda x: [x, f"row {x}"], lambda v: (v[0], v[1]))
        rows.extend(range(2500))  # across lines of BATCH rows, and a batch not yet written
        first = list(rows)
        rows.append(2500)
        assert list(rows) == [*first, (2500, "row 2500")] == [(i, f"row {i}") for i in range(2501)]
        assert len(rows) == 2501 and rows[5] == (5, "row 5") and bool(rows)
    assert spool.closed


def test_a_streamed_compliance_report_is_the_one_composed_from_a_scan_held_in_memory(mixed_estate, as_bot):
    """`cryptward report` streams its scan too, keeping each resource's summary and the VMs' and disks' bodies."""
    from datetime import UTC, datetime

    from remediations.report import compliance, html, text
    from remediations.report.history import read_history

    now = datetime.now(UTC)
    scope, settings = Scope((mixed_estate.subscription_id,)), settings_for(mixed_estate)
    _scan(mixed_estate, as_bot(), stream=False)  # the first scan of a process makes one GET more (a cache)
    held = run.scan(scope, POLICIES, settings=settings, azure=as_bot(), now=now)
    held_report = compliance.compose(held, read_history(held.bodies, {}), policies=POLICIES, settings=settings, now=now)
    streamed = compliance.generate(scope, POLICIES, settings=settings, azure=as_bot(), env={}, now=now)
    try:
        assert streamed.scan.spool is not None and len(streamed.scan.summaries) == held.resources
        kinds = {str(b["type"]).lower() for b in streamed.scan.bodies.values()}
        assert kinds == {f"microsoft.compute/{k}" for k in ("virtualmachines", "virtualmachinescalesets", "disks")}
        assert held_report.vms and held_report.resources and held_report.history.problem
        assert text.to_markdown(streamed) == text.to_markdown(held_report)
        assert html.render(streamed) == html.render(held_report)
    finally:
        streamed.close()
    assert streamed.scan.spool.closed
