"""SEC-4: Terraform addresses of stateful resources never change by accident.

A renamed construct id renames the address, and Terraform then destroys the old resource
and creates a new one: for a database, bucket or key that is data loss. The addresses
are pinned in `stateful_addresses.json`. If a change here is intended, move the state
(`moved` block / `terraform state mv`, or keep the old id with `override_logical_id`), then
re-pin with:  python tests/test_addresses.py --write
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PINNED = Path(__file__).with_name("stateful_addresses.json")
import pytest

from modules.parts.storage import STATEFUL_TYPES as PROTECTED_TYPES

# Log groups hold audit data too: their addresses are pinned as well; and the account's Auto
# Scaling role, which every Auto Scaling group of the account needs (account-<name>).
STATEFUL_TYPES = (*PROTECTED_TYPES, "aws_cloudwatch_log_group", "aws_iam_service_linked_role")


def stateful_addresses(stacks_dir: Path) -> dict[str, list[str]]:
    out = {}
    for path in sorted(stacks_dir.glob("*/cdk.tf.json")):
        resources = json.loads(path.read_text()).get("resource", {})
        out[path.parent.name] = sorted(f"{t}.{lid}" for t in STATEFUL_TYPES for lid in resources.get(t, {}))
    return out


def test_stateful_addresses_are_stable(synth_dir: Path) -> None:
    pinned = json.loads(PINNED.read_text())
    current = stateful_addresses(synth_dir)
    problems = []
    for stack in sorted(set(pinned) | set(current)):
        gone = sorted(set(pinned.get(stack, [])) - set(current.get(stack, [])))
        new = sorted(set(current.get(stack, [])) - set(pinned.get(stack, [])))
        problems += [f"{stack}: {a} would be destroyed (renamed or removed)" for a in gone]
        problems += [f"{stack}: {a} is not pinned yet" for a in new]
    assert not problems, "\n".join(problems) + "\n\n" + __doc__


@pytest.mark.parametrize("env", ["prod", "prod-us"])
def test_prod_stateful_resources_cannot_be_destroyed(stacks, env: str) -> None:
    """Every key, bucket, log group, database, table, Redis group and secret of every prod stack."""
    protected = 0
    for name, stack in stacks.items():
        if name.rsplit("-", 1)[0] != env:  # stacks are <env>-<layer>
            continue
        for type_ in STATEFUL_TYPES:
            for lid, body in stack.resources(type_).items():
                assert body.get("lifecycle", {}).get("prevent_destroy") is True, f"{name}: {type_}.{lid}"
                protected += 1
        for bucket in stack.resources("aws_s3_bucket").values():
            assert bucket["force_destroy"] is False
    assert protected >= 20


if __name__ == "__main__" and "--write" in sys.argv:
    from modules.engine.app import build_app
    from modules.config import accounts_of, available_environments, load_environments

    with tempfile.TemporaryDirectory() as out:
        envs = load_environments(available_environments())
        build_app(envs, outdir=out, accounts=accounts_of(envs)).synth()
        PINNED.write_text(json.dumps(stateful_addresses(Path(out) / "stacks"), indent=2) + "\n")
    print(f"pinned {PINNED}")
