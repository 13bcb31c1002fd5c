"""Pin the synthesized output the suite compares every synth with: the digests
(`tests/output_digests.json`) and the stateful addresses (`tests/stateful_addresses.json`).

    python tests/pin.py ENV ...   pin new environments; the others' pins stay as they are
    python tests/pin.py --all     re-pin every environment (an intended change: say why in the commit)

A new environment is pinned once, when it is added: from then on a renamed construct in it
fails the suite like one of the committed environments'.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_addresses import PINNED as ADDRESSES, stateful_addresses  # noqa: E402
from test_output_equality import PINNED as DIGESTS, digests, write_digests  # noqa: E402

PIN_FILES = (DIGESTS, ADDRESSES)
COMMAND = "python tests/pin.py"


def environment_of(stack: str) -> str:
    return stack.rsplit("-", 1)[0]  # stacks are <env>-<layer>


def pinned_environments() -> dict[Path, set[str]]:
    """The environments each pin file holds."""
    return {path: {environment_of(stack) for stack in json.loads(path.read_text())} for path in PIN_FILES}


def unpinned(environments: list[str]) -> list[str]:
    """One line per environment whose pins are missing or left over, naming the command that fixes it."""
    held = pinned_environments()
    problems = []
    for env in environments:
        missing = [f"tests/{path.name}" for path, envs in held.items() if env not in envs]
        if missing:
            problems.append(f"environment '{env}' is not pinned in {', '.join(missing)} (a new environment?). "
                            f"Pin it: {COMMAND} {env}")
    for env in sorted(set().union(*held.values()) - set(environments)):
        problems.append(f"environment '{env}' is pinned but has no folder in environments/. Re-pin: {COMMAND} --all")
    return problems


def merge(pinned: dict[str, object], fresh: dict[str, object], environments: list[str]) -> dict[str, object]:
    """`pinned` with the stacks of `environments` replaced by `fresh`'s, in stack order."""
    kept = {stack: body for stack, body in pinned.items() if environment_of(stack) not in environments}
    return dict(sorted({**kept, **fresh}.items()))


def pin(environments: list[str] | None) -> list[str]:
    """Synthesize `environments` (None: all) and write their pins; returns the environments pinned."""
    from modules.config import available_environments, load_environments
    from modules.engine.app import build_app

    names = environments or available_environments()
    with tempfile.TemporaryDirectory() as out:
        build_app(load_environments(names), outdir=out).synth()
        stacks = Path(out) / "stacks"
        fresh_digests, fresh_addresses = digests(stacks), stateful_addresses(stacks)
    if environments is None:
        write_digests(fresh_digests)
        ADDRESSES.write_text(json.dumps(fresh_addresses, indent=2) + "\n")
    else:
        write_digests(merge(json.loads(DIGESTS.read_text()), fresh_digests, names))
        ADDRESSES.write_text(json.dumps(merge(json.loads(ADDRESSES.read_text()), fresh_addresses, names),
                                        indent=2) + "\n")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("environments", nargs="*", metavar="ENV",
                        help="environments to pin (a new one); the others' pins are kept")
    parser.add_argument("--all", action="store_true", help="re-pin every environment (an intended change)")
    args = parser.parse_args(argv)
    if bool(args.environments) == args.all:
        parser.print_usage(sys.stderr)
        print(f"{COMMAND}: name the environments to pin, or --all", file=sys.stderr)
        return 2
    from modules.config import ConfigError

    try:
        names = pin(None if args.all else args.environments)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    print(f"pinned {', '.join(names)} in {', '.join(f'tests/{p.name}' for p in PIN_FILES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
