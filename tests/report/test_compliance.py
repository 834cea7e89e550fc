"""The compliance report against the sandbox's estate, acting as the bot with its custom role: every policy, counts
that agree with a scan, the EAH-or-ADE advice per VM, the CIS and Azure Policy mapping, the ledger's history, the
three formats and exit codes of `cryptward report`, and the HTML page as headless Chromium draws it."""

from __future__ import annotations

import re
import struct
import subprocess
import uuid
import zlib
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from remediations.azure import Azure
from remediations.changes import PlanSettings
from remediations.cli.main import app
from remediations.engine import applier
from remediations.engine.advisor import ADE, EAH
from remediations.engine.reader import Scope
from remediations.engine.run import scan
from remediations.policy.loader import load_policies
from remediations.report import compliance
from remediations.report import html as report_html
from remediations.report import text as report_text
from remediations.report.compliance import azure_policy_url, compose, generate
from remediations.report.history import NO_LEDGER
from remediations.settings import Settings
from remediations.store.ledger import Ledger, Tables
from remediations.triggers import worker
from tests.waits import limit

ROOT = Path(__file__).resolve().parents[2]
POLICIES = load_policies(ROOT / "policies")
CHROMIUM = Path("/usr/bin/chromium")
runner = CliRunner()


@pytest.fixture
def estate(sandbox, grant_custom_role, monkeypatch):
    """The estate, and the bot holding exactly infra/cryptward-role.json, with no ledger configured."""
    sandbox.reset("estate")
    grant_custom_role("bot")
    monkeypatch.setenv("AZURE_CLIENT_ID", sandbox.principal("bot").client_id)
    for name in ("AzureWebJobsStorage", "CRYPTWARD_POLICY_MODES", "CRYPTWARD_DES_MAP", "CRYPTWARD_WORKSPACE_ID"):
        monkeypatch.delenv(name, raising=False)
    azure = Azure.from_env()
    yield sandbox, azure
    azure.close()


def settings_for(sandbox) -> Settings:
    sub = f"/subscriptions/{sandbox.subscription_id}"
    workspace = f"{sub}/resourceGroups/rg-ops/providers/Microsoft.OperationalInsights/workspaces/law-cryptward"
    des = f"{sub}/resourceGroups/rg-keys-weu/providers/Microsoft.Compute/diskEncryptionSets/des-weu"
    by_region = {"westeurope": {"EncryptionAtRestWithCustomerKey": des}}
    return Settings(plan=PlanSettings(workspace_id=workspace, disk_encryption_sets=by_region))


def test_every_policy_and_resource_is_reported_and_the_counts_agree_with_a_scan(estate):
    sandbox, azure = estate
    scope = Scope((sandbox.subscription_id,))
    plain = scan(scope, POLICIES, azure=azure, settings=Settings())
    report = generate(scope, POLICIES, azure=azure, settings=Settings(), env={})

    assert [p.policy.id for p in report.policies] == [p.id for p in POLICIES]
    totals = report.totals()
    # with des-weu-central (its vault in the keys subscription); kv-access-review: the administrator is a user holding
    # Owner over the three vaults; kv-item-expiry: kv-weu-disks's keys have no expiry; kv-defender and kv-admin-alerts
    # for each of the 3 vaults, vm-ade-key-vault, and vm-weu-ade's encryption at host and its OS disk's customer-managed
    # key; and 7 of the scale sets, the snapshot and the image
    assert totals["findings"] == len(plain.findings) == 57
    assert totals["changes"] == len(plain.plan.changes)
    assert report.checks == plain.evaluations  # nothing unreadable: every applicable pair was evaluated
    assert report.passed == report.checks - len(plain.findings)
    by_policy = Counter(f.policy.id for f in plain.findings)
    for status in report.policies:
        assert status.noncompliant == by_policy[status.policy.id], status.policy.id
        assert {i.resource_id.lower() for i in status.items} == {
            str(f.resource["id"]).lower() for f in plain.findings if f.policy.id == status.policy.id
        }
    # Each change is counted once, each left-alone finding once: together they account for every finding.
    planned = sum(totals[s] for s in ("planned", "pending-approval", "pending-deallocation"))
    assert planned == len(plain.plan.changes)
    assert totals["left-alone"] + totals["blocked"] + totals["cannot-read"] == len(plain.plan.skipped)
    assert {r.name for r in report.resources} >= {"kv-weu-app", "kv-neu-legacy", "des-weu", "disk-weu-ade", "des-key"}
    assert len(report.resources) == plain.resources

    items = {(s.policy.id, i.resource_id.rsplit("/", 1)[-1]): i for s in report.policies for i in s.items}
    purge = items[("kv-purge-protection", "kv-weu-app")]
    assert purge.status == "pending-approval" and purge.irreversible
    assert dict(purge.after) == {"properties.enablePurgeProtection": True}
    assert items[("kv-delete-lock", "kv-weu-app")].status == "planned"
    assert {v for p, v in items if p == "kv-access-review"} == {"kv-weu-app", "kv-neu-legacy", "kv-weu-disks"}
    assert {v for p, v in items if p == "kv-item-expiry"} == {"kv-weu-disks"}
    assert items[("disk-cmk", "disk-weu-data")].reason == "not-configured"
    assert items[("vm-encryption-at-host", "vm-neu-legacy")].reason == "unsupported"
    assert items[("vm-encryption-at-host", "vm-weu-app")].also_needs_deallocation
    assert report.history.problem == NO_LEDGER


def test_every_vm_gets_eah_or_ade_advice_with_reasons(estate):
    sandbox, azure = estate
    report = generate(Scope((sandbox.subscription_id,)), POLICIES, azure=azure, settings=Settings(), env={})
    vms = {vm.name: vm for vm in report.vms if vm.kind == "VM"}
    assert set(vms) == {"vm-weu-app", "vm-weu-batch", "vm-neu-legacy", "vm-weu-ade"}
    assert vms["vm-weu-app"].advice.recommended == EAH
    assert vms["vm-weu-batch"].advice.recommended == EAH
    legacy = vms["vm-neu-legacy"].advice
    assert not legacy.eah.available and legacy.recommended == ADE
    assert any("Standard_D2_v3" in reason for reason in legacy.eah.reasons)
    for vm in vms.values():
        assert vm.advice.summary and (vm.advice.eah.reasons or vm.advice.ade.reasons)
    page = report_html.render(report)
    markdown = report_text.to_markdown(report)
    for vm in vms.values():
        assert vm.advice.summary.split(":")[0] in markdown
        assert vm.name in page
    # Azure decides (the Resource SKUs capability), not the seed's series table
    assert "Azure reports (Resource SKUs) that size Standard_D2_v3 does not support encryption at host" in page


def test_scale_sets_get_the_seeds_advice_too(estate):
    sandbox, azure = estate
    report = generate(Scope((sandbox.subscription_id,)), POLICIES, azure=azure, settings=Settings(), env={})
    sets = {vm.name: vm for vm in report.vms if vm.kind == "scale set"}
    assert set(sets) == {"vmss-weu-web", "vmss-weu-ade"}
    web, ade = sets["vmss-weu-web"], sets["vmss-weu-ade"]
    assert web.advice.recommended == EAH and web.size == "Standard_D2s_v5" and web.os_type == "Linux"
    assert web.disks == ("model OS disk: platform-managed key", "2 instance(s)")
    # the seed: ADE cannot encrypt a Linux scale set's OS drive; this one has ADE, so EAH is not available
    assert ade.current == "Azure Disk Encryption (AzureDiskEncryptionForLinux, VolumeType All)"
    assert not ade.advice.eah.available and "OS disk of a Linux scale set" in ade.advice.summary
    markdown = report_text.to_markdown(report)
    assert "### vmss-weu-web (Standard\\_D2s\\_v5, Linux, scale set)" in markdown
    assert "vmss-weu-ade" in report_html.render(report)


def test_markdown_and_html_carry_the_mapping_and_every_section(estate):
    sandbox, azure = estate
    report = generate(Scope((sandbox.subscription_id,)), POLICIES, azure=azure, settings=settings_for(sandbox), env={})
    markdown = report_text.to_markdown(report)
    page = report_html.render(report)
    for policy in POLICIES:
        assert f"`{policy.id}`" in markdown and f'id="p-{policy.id}"' in page
        if policy.references.cis:
            assert policy.references.cis in markdown and policy.references.cis in page
        if policy.references.azure_policy:
            url = azure_policy_url(policy.references.azure_policy)
            assert f"]({url})" in markdown
            assert f'href="{url}"' in page
    assert azure_policy_url("0b60c0b2-2dc2-4e1c-b5c9-abbed971de53") == (
        "https://portal.azure.com/#view/Microsoft_Azure_Policy/PolicyDetailBlade/definitionId/"
        "%2Fproviders%2FMicrosoft.Authorization%2FpolicyDefinitions%2F0b60c0b2-2dc2-4e1c-b5c9-abbed971de53"
    )
    for heading in ("Compliance by policy", "Policies", "Resources", "per VM", "Mapping to the CIS Azure benchmark"):
        assert f"## {heading}" in markdown or heading in markdown
        assert heading in page
    # With the operator's settings, the disks wait for approval instead of being left alone.
    disk = next(s for s in report.policies if s.policy.id == "disk-cmk")
    assert {i.status for i in disk.items} >= {"pending-approval"}


def test_the_html_page_is_self_contained(estate):
    sandbox, azure = estate
    page = report_html.render(generate(Scope((sandbox.subscription_id,)), POLICIES, azure=azure, env={}))
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    lowered = page.lower()
    for fetched in ("<script", "<link", "<img", "<iframe", " src=", "url(", "@import", "@font-face"):
        assert fetched not in lowered, fetched
    assert "content-security-policy" in lowered and "default-src 'none'" in lowered
    for href in re.findall(r'href="([^"]*)"', page):
        assert href.startswith(("#", "https://portal.azure.com/", "https://www.cisecurity.org/")), href
    assert "@media print" in page


def test_the_ledger_adds_what_the_bot_did_before(estate, azurite):
    sandbox, azure = estate
    scope = Scope((sandbox.subscription_id,))
    tables = Tables.with_prefix(f"cw{uuid.uuid4().hex[:8]}")
    with Ledger(azurite, tables) as ledger:
        ledger.create_tables()
        applied = scan(scope, POLICIES, apply=True, azure=azure, settings=settings_for(sandbox))
        worker.record(ledger, applied, "")  # what the worker records after its run
    done = [r for r in applied.results if r.status == "applied"]
    assert done

    env = {"AzureWebJobsStorage": azurite, "CRYPTWARD_TABLE_PREFIX": tables.audit.removesuffix("audit")}
    report = generate(scope, POLICIES, azure=azure, settings=settings_for(sandbox), env=env)
    assert report.history.problem is None
    assert report.totals()["applied earlier"] == len(done)
    lock = next(s for s in report.policies if s.policy.id == "kv-delete-lock")
    assert lock.percent == 100.0 and not lock.items
    assert {d.resource_id.rsplit("/", 1)[-1] for d in lock.history} == {"kv-weu-app", "kv-neu-legacy", "kv-weu-disks"}
    purge = next(s for s in report.policies if s.policy.id == "kv-purge-protection")
    assert all(i.status == "pending-approval" and i.since is not None for i in purge.items)
    page = report_html.render(report)
    assert "Done earlier" in page and "History from the ledger" in page
    assert "Done earlier (ledger)" in report_text.to_markdown(report)


def test_a_ledger_that_cannot_be_read_is_reported_and_the_report_goes_on(estate):
    sandbox, azure = estate
    env = {"AzureWebJobsStorage": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
           "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"}  # fmt: skip
    report = generate(Scope((sandbox.subscription_id,)), POLICIES, azure=azure, env=env)
    assert report.history.problem and report.history.problem.startswith("The ledger could not be read")
    assert report.totals()["findings"] == 57  # as in the first test


def test_compose_is_pure_and_reports_what_an_applied_run_did(estate):
    sandbox, azure = estate
    applied = scan(Scope((sandbox.subscription_id,)), POLICIES, apply=True, azure=azure, settings=Settings())
    report = compose(applied, policies=POLICIES)
    statuses = Counter(i.status for s in report.policies for i in s.items)
    assert statuses["applied"] == sum(1 for r in applied.results if r.status == "applied") > 0
    assert "fixed in this run" in report_html.render(report)


# --- the command ------------------------------------------------------------------------------------------------------


def test_the_command_exits_1_with_findings_in_each_format(estate, tmp_path):
    table = runner.invoke(app, ["report"])
    assert table.exit_code == 1, table.output
    assert "Compliance by policy" in table.stdout and "kv-purge-protection" in table.stdout
    markdown = runner.invoke(app, ["report", "-f", "markdown", "-g", "rg-keys-weu"])
    assert markdown.exit_code == 1
    assert markdown.stdout.startswith("# Cryptward compliance report")
    assert "des-weu" in markdown.stdout and "vm-weu-app" not in markdown.stdout
    out = tmp_path / "report.html"
    html = runner.invoke(app, ["report", "--format", "html", "--output", str(out), "-p", "kv-delete-lock"])
    assert html.exit_code == 1
    page = out.read_text(encoding="utf-8")
    assert "kv-delete-lock" in page and "kv-purge-protection" not in page
    assert f"report written to {out}" in " ".join(html.stderr.split())


def test_a_compliant_scope_exits_0_and_errors_exit_2(estate, tmp_path):
    assert runner.invoke(app, ["report", "-p", "kv-soft-delete-retention"]).exit_code == 0
    for args, message in [
        (["-f", "json"], "unknown format 'json'"),
        (["-p", "kv-delete-lok"], "unknown policy id(s): kv-delete-lok"),
        (["-s", "11111111-2222-3333-4444-555555555555"], "unknown subscription"),
        (["-o", str(tmp_path / "missing" / "x.html"), "-f", "html"], "cannot write"),
    ]:
        result = runner.invoke(app, ["report", *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.stderr.split())
    read_only = runner.invoke(app, ["report", "--apply"])  # the report never writes: there is no such option
    assert read_only.exit_code == 2 and "No such option" in read_only.output


# --- the page in a browser -------------------------------------------------------------------------------------------


def png_rows(data: bytes, limit: int) -> tuple[int, int, int, list[bytes]]:
    """Width, height, bytes per pixel and the first `limit` rows of an 8-bit RGB(A) PNG: a tiny decoder."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = depth = kind = 0
    while pos < len(data):
        size, name = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + size]
        pos += 12 + size
        if name == b"IHDR":
            width, height, depth, kind = struct.unpack(">IIBB", body[:10])
        elif name == b"IDAT":
            idat += body
    assert depth == 8 and kind in (2, 6), f"unexpected PNG format: depth {depth}, colour type {kind}"
    bpp = 3 if kind == 2 else 4
    stride = width * bpp
    raw = zlib.decompressobj().decompress(idat, (stride + 1) * limit)
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(min(limit, height)):
        kind_of_filter, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if kind_of_filter == 1:
                line[x] = (line[x] + a) & 255
            elif kind_of_filter == 2:
                line[x] = (line[x] + b) & 255
            elif kind_of_filter == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind_of_filter == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def screenshot(page: Path, png: Path, profile: Path) -> None:
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        "--window-size=1280,2000",
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=limit(120))
    assert done.returncode == 0 and png.exists(), f"chromium failed ({done.returncode}): {done.stderr[-2000:]}"


def test_chromium_draws_the_page(estate, tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(
            "/usr/bin/chromium is missing, so the report page cannot be checked in a browser: run "
            "`bash scripts/install-chromium.sh` (as root; `make test` runs it)",
            pytrace=False,
        )
    sandbox, azure = estate
    report = generate(Scope((sandbox.subscription_id,)), POLICIES, azure=azure, settings=settings_for(sandbox), env={})
    page = tmp_path / "report.html"
    page.write_text(report_html.render(report), encoding="utf-8")
    png = tmp_path / "report.png"
    screenshot(page, png, tmp_path / "profile")

    data = png.read_bytes()
    assert len(data) > 50_000, f"the screenshot is only {len(data)} bytes: a blank or broken page?"
    width, height, bpp, rows = png_rows(data, 700)
    assert (width, height) == (1280, 2000)
    pixels = [row[x : x + 3] for row in rows[::4] for x in range(0, len(row), bpp * 4)]
    colours = Counter(pixels)
    assert len(colours) > 50, f"only {len(colours)} colours in the top of the page: is it blank?"
    assert colours.most_common(1)[0][1] < 0.9 * len(pixels), "the top of the page is one colour"
    luma = [0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2] for p in pixels]
    mean = sum(luma) / len(luma)
    assert sum((v - mean) ** 2 for v in luma) / len(luma) > 500, "almost no contrast: nothing was drawn"
    header = Counter(rows[20][x : x + 3] for x in range(0, width * bpp, bpp)).most_common(1)[0][0]
    assert header == bytes([0x0F, 0x2A, 0x44]), f"the header band is {header.hex()}, not the page's #0f2a44"


def test_the_chromium_script_is_idempotent():
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: run `bash scripts/install-chromium.sh` as root", pytrace=False)
    done = subprocess.run(["bash", str(ROOT / "scripts" / "install-chromium.sh")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "chromium is already installed" in done.stderr


def test_every_applier_status_has_a_place_and_a_label_in_the_report():
    assert set(applier.Status) <= set(compliance.STATUSES)
    assert set(compliance.STATUSES) == set(compliance.LABELS)
    assert len(set(compliance.LABELS.values())) == len(compliance.LABELS)


def test_a_management_group_report_rolls_up_per_group_and_per_subscription(estate):
    from sandbox import scenarios
    from sandbox.providers import management_groups as mg
    from sandbox.rbac import ROLES

    sandbox, _ = estate
    sb, other = sandbox.running.sandbox, str(uuid.UUID(int=0xB1))
    scenarios.add_subscription(sb, other, "Contoso Dev")
    mg.add_group(sb.state, "corp", "Corp")
    for sub in (sandbox.subscription_id, other):
        mg.place(sb.state, sub, "corp")
    scenarios.assign(sb, "/", sb.directory.named("admin"), ROLES["Owner"])
    scenarios.assign(sb, mg.group_id("corp"), sb.directory.named("bot"), ROLES["Reader"])
    rg = f"/subscriptions/{other}/resourceGroups/rg-dev"
    scenarios.play(
        sb, [scenarios._group(rg, "westeurope"), scenarios._vault(rg, "kv-dev", "westeurope", sb.state.tenant_id)]
    )
    result = runner.invoke(app, ["report", "-m", "corp", "-f", "markdown", "-p", "kv-purge-protection"])
    assert result.exit_code == 1, result.output
    text = result.stdout
    section = text.split("## Compliance by management group and subscription", 1)[1].split("## ", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines() if line.startswith("| ")]
    by_sub = {r[1]: r for r in rows[1:]}
    assert set(by_sub) == {"(all)", sandbox.subscription_id, other}
    assert all(r[0] == "corp" for r in by_sub.values())
    assert by_sub[other][2] == "1" and by_sub[other][5] == "1"  # kv-dev: no purge protection
    total = by_sub["(all)"]
    assert int(total[2]) == int(by_sub[other][2]) + int(by_sub[sandbox.subscription_id][2])
    assert "management group corp" in text
    alone = runner.invoke(app, ["report", "-f", "markdown", "-p", "kv-purge-protection"])
    assert "by management group" not in alone.stdout  # one subscription alone: no roll-up
