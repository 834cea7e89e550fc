"""Tag rights cannot make the bot rotate keys (issue: "Rotation rotates keys no disk uses, and tag rights trigger it").

A principal with tag rights only tags a vault `cryptward-max-key-age: P1D`: the bot must not rotate its keys daily,
nor touch keys no disk encryption set uses (a token-signing key) unless the operator opted the vault in.
"""

from __future__ import annotations

from tests.rotation.test_run import DAY, KV_API, estate, names, run  # noqa: F401  (estate is a fixture)


def test_a_tag_opts_no_key_into_rotation(sandbox, estate, azure_as):  # noqa: F811
    """Security: a principal with tag rights only tagged a vault `cryptward-max-key-age: P1D` and the bot rotated its
    keys daily, and the timer rotated keys no disk encryption set uses (a token-signing key)."""
    admin, n = estate(), names(sandbox)
    admin.write("PATCH", n["vault"], KV_API, {"tags": {"cryptward-max-key-age": "P1D"}})
    sandbox.advance(2 * DAY)
    report = run(sandbox, azure_as("bot"))
    checked = {c.key_id.rsplit("/", 1)[-1] for c in report.checked}
    assert checked == {"des-key"}  # only the key a disk encryption set uses
    assert "short-key" not in {r.key_id.rsplit("/", 1)[-1] for r in report.rotated}
    (des_key,) = report.checked
    assert des_key.max_age == "P30D"  # the tag on its vault shortens it to the floor, not to a day
