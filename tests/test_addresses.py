"""SEC-4: Terraform addresses of stateful resources never change by accident.

A renamed construct id renames the address, and Terraform then destroys the old resource
and creates a new one: for a database, bucket or key that is data loss. The addresses
are pinned in `stateful_addresses.json`. If a change here is intended, move the state
(`moved` block / `terraform state mv`, or keep the old id with `override_logical_id`), then
re-pin with:  python tests/test_addresses.py --write
A new environment is pinned (with its output digests) by:  python tests/pin.py ENV
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PINNED = Path(__file__).with_name("stateful_addresses.json")
import pytest

from conftest import ENVIRONMENTS
from modules.config import load_environment
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
    # An environment missing on either side is tests/test_output_equality.py's one failure.
    both = {s.rsplit("-", 1)[0] for s in pinned} & {s.rsplit("-", 1)[0] for s in current}
    problems = []
    for stack in sorted(s for s in set(pinned) | set(current) if s.rsplit("-", 1)[0] in both):
        gone = sorted(set(pinned.get(stack, [])) - set(current.get(stack, [])))
        new = sorted(set(current.get(stack, [])) - set(pinned.get(stack, [])))
        problems += [f"{stack}: {a} would be destroyed (renamed or removed)" for a in gone]
        problems += [f"{stack}: {a} is not pinned yet" for a in new]
    assert not problems, "\n".join(problems) + "\n\n" + __doc__


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_stateful_resources_of_a_protected_environment_cannot_be_destroyed(stacks, env: str) -> None:
    """Where `protect_stateful = true`, every key, bucket, log group, database, table, Redis group and
    secret of every stack; elsewhere none (a test environment is torn down whole)."""
    protect = load_environment(env).protect_stateful
    stateful = 0
    for name, stack in stacks.items():
        if name.rsplit("-", 1)[0] != env:  # stacks are <env>-<layer>
            continue
        for type_ in STATEFUL_TYPES:
            for lid, body in stack.resources(type_).items():
                assert (body.get("lifecycle", {}).get("prevent_destroy") is True) is protect, f"{name}: {type_}.{lid}"
                stateful += 1
        for bucket in stack.resources("aws_s3_bucket").values():
            assert bucket["force_destroy"] is not protect
    assert stateful >= 20


def main(argv: list[str]) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="python tests/test_addresses.py", description="Re-pin every environment's "
                                     "stateful addresses, after moving the state (the test itself runs under pytest; "
                                     "a new environment: python tests/pin.py ENV).")
    parser.add_argument("--write", action="store_true", required=True, help="synthesize and rewrite " + PINNED.name)
    parser.parse_args(argv)
    from modules.config import accounts_of, available_environments, load_environments
    from modules.engine.app import build_app

    with tempfile.TemporaryDirectory() as out:
        envs = load_environments(available_environments())
        build_app(envs, outdir=out, accounts=accounts_of(envs)).synth()
        PINNED.write_text(json.dumps(stateful_addresses(Path(out) / "stacks"), indent=2) + "\n")
    print(f"pinned {PINNED}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
