"""The synthesized Terraform changes only on purpose.

`output_digests.json` pins, per stack, a digest of every resource, data source and ephemeral
resource (by address) and of every other top-level block (`terraform`, `provider`, `output`,
`locals`, `//`) of every environment's synthesized `cdk.tf.json`. A change to the framework,
the provider bindings or a shared construct that alters any of them fails here, naming the
stacks and addresses that changed. Normalization drops only the synthesizing engine's own
version string (`//.metadata.version`); everything else, including construct paths, is compared.

If a change is intended, say why in the commit and re-pin with:  python tests/test_output_equality.py --write
A new environment is pinned (with its stateful addresses) by:  python tests/pin.py ENV
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PINNED = Path(__file__).with_name("output_digests.json")
PER_ADDRESS = {"resource": "", "data": "data.", "ephemeral": "ephemeral."}  # block kind -> address prefix


def _digest(value: Any) -> str:
    # 16 hex digits (64 bits) of sha256 over canonical JSON: ample to detect a change.
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def normalize(doc: dict[str, Any]) -> dict[str, Any]:
    """The document without what legitimately differs between engine releases."""
    doc = json.loads(json.dumps(doc))
    doc.get("//", {}).get("metadata", {}).pop("version", None)
    return doc


def stack_digests(doc: dict[str, Any]) -> dict[str, str]:
    """`<type>.<name>` (resources), `data.`/`ephemeral.<type>.<name>`, and top-level block names -> digest."""
    out = {}
    for kind, body in normalize(doc).items():
        if kind in PER_ADDRESS:
            for type_, items in body.items():
                out.update({f"{PER_ADDRESS[kind]}{type_}.{name}": _digest(item) for name, item in items.items()})
        else:
            out[kind] = _digest(body)
    return dict(sorted(out.items()))


def digests(stacks_dir: Path) -> dict[str, dict[str, str]]:
    return {p.parent.name: stack_digests(json.loads(p.read_text()))
            for p in sorted(stacks_dir.glob("*/cdk.tf.json"))}


def differences(pinned: dict[str, dict[str, str]], current: dict[str, dict[str, str]]) -> list[str]:
    problems = []
    for stack in sorted(set(pinned) | set(current)):
        if stack not in current:
            problems.append(f"{stack}: stack no longer synthesized")
            continue
        if stack not in pinned:
            problems.append(f"{stack}: new stack, not pinned yet")
            continue
        old, new = pinned[stack], current[stack]
        problems += [f"{stack}: {a} changed" for a in sorted(set(old) & set(new)) if old[a] != new[a]]
        problems += [f"{stack}: {a} removed" for a in sorted(set(old) - set(new))]
        problems += [f"{stack}: {a} added" for a in sorted(set(new) - set(old))]
    return problems


def pinned_environments_only(stacks: dict[str, Any], environments: set[str]) -> dict[str, Any]:
    """The stacks of `environments`: those of an unpinned one are the one failure below, not one each."""
    return {stack: body for stack, body in stacks.items() if stack.rsplit("-", 1)[0] in environments}


def test_every_environment_is_pinned() -> None:
    from conftest import ENVIRONMENTS
    from pin import unpinned
    problems = unpinned(ENVIRONMENTS)
    assert not problems, "\n".join(problems)


def test_synthesized_output_equals_the_pinned_output(synth_dir: Path) -> None:
    pinned = json.loads(PINNED.read_text())
    both = {stack.rsplit("-", 1)[0] for stack in pinned} & {p.parent.name.rsplit("-", 1)[0]
                                                             for p in synth_dir.glob("*/cdk.tf.json")}
    problems = differences(pinned_environments_only(pinned, both),
                           pinned_environments_only(digests(synth_dir), both))
    shown = problems[:60] + ([f"... and {len(problems) - 60} more"] if len(problems) > 60 else [])
    assert not problems, "\n".join(shown) + "\n\n" + __doc__


def test_normalization_keeps_everything_but_the_engine_version() -> None:
    doc = {"//": {"metadata": {"version": "0.21.0", "stackName": "s"}},
           "resource": {"aws_s3_bucket": {"b": {"bucket": "x"}}},
           "terraform": {"required_providers": {"aws": {"source": "aws", "version": "6.25.0"}}}}
    same = json.loads(json.dumps(doc)) | {"//": {"metadata": {"version": "0.24.0", "stackName": "s"}}}
    assert stack_digests(doc) == stack_digests(same)
    assert set(stack_digests(doc)) == {"//", "aws_s3_bucket.b", "terraform"}
    for changed in ({"resource": {"aws_s3_bucket": {"b": {"bucket": "y"}}}},
                    {"terraform": {"required_providers": {"aws": {"source": "aws", "version": "6.69.1"}}}},
                    {"//": {"metadata": {"version": "0.21.0", "stackName": "t"}}}):
        assert differences({"s": stack_digests(doc)}, {"s": stack_digests(doc | changed)}), changed


def write_digests(pinned: dict[str, dict[str, str]], path: Path = PINNED) -> None:
    # One line per address keeps the file diffable and a re-pin's changes readable.
    lines = [json.dumps(stack) + ": {\n" + ",\n".join(f"  {json.dumps(a)}: {json.dumps(d)}" for a, d in body.items())
             + "\n}" for stack, body in pinned.items()]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")


def main(argv: list[str]) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="python tests/test_output_equality.py", description="Re-pin every "
                                     "environment's digests after an intended change (the test itself runs under "
                                     "pytest; a new environment: python tests/pin.py ENV).")
    parser.add_argument("--write", action="store_true", required=True, help="synthesize and rewrite " + PINNED.name)
    parser.parse_args(argv)
    from modules.config import accounts_of, available_environments, load_environments
    from modules.engine.app import build_app

    with tempfile.TemporaryDirectory() as out:
        envs = load_environments(available_environments())
        build_app(envs, outdir=out, accounts=accounts_of(envs)).synth()
        pinned = digests(Path(out) / "stacks")
    write_digests(pinned)
    print(f"pinned {sum(map(len, pinned.values()))} digests of {len(pinned)} stacks in {PINNED}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
