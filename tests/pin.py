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

from modules.config import ENVIRONMENTS_DIR  # noqa: E402

PIN_FILES = (DIGESTS, ADDRESSES)
COMMAND = "python tests/pin.py"


ACCOUNT_STACK = "account-"  # account-<name>: built from every environment in that account


def environment_of(stack: str) -> str:
    return stack.rsplit("-", 1)[0]  # stacks are <env>-<layer>


def is_account(stack: str) -> bool:
    return stack.startswith(ACCOUNT_STACK)


def unpinned(environments: list[str], files: tuple[Path, ...] = PIN_FILES) -> list[str]:
    """One line per environment whose pins are missing or left over, naming the command that fixes it."""
    held = {path: {environment_of(stack) for stack in json.loads(path.read_text()) if not is_account(stack)}
            for path in files}
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
    # the account stacks hold every environment's roles: re-pinned with any environment
    kept = {stack: body for stack, body in pinned.items()
            if environment_of(stack) not in environments and not is_account(stack)}
    return dict(sorted({**kept, **fresh}.items()))


def pin(environments: list[str] | None, synth_dir: Path | None = None) -> list[str]:
    """Write the pins of `environments` (None: all), read from `synth_dir` or synthesized (through
    the synth's cache: right after `python main.py`, nothing is rebuilt); returns their names."""
    from modules.config import available_environments, load_environments
    from modules.engine.synth import synthesize

    names = environments or available_environments()
    load_environments(names)  # every problem at once, before anything is written
    with tempfile.TemporaryDirectory() as out:
        if synth_dir is None:
            synthesize(names, ENVIRONMENTS_DIR, Path(out))
        stacks = (synth_dir or Path(out)) / "stacks"
        write(stacks, names, replace_all=environments is None)
    return names


def write(stacks: Path, names: list[str], files: tuple[Path, Path] = PIN_FILES, replace_all: bool = False) -> None:
    """Pin the stacks of `names` found in `stacks` into `files` (digests, addresses), keeping the
    other environments' pins unless `replace_all`."""
    chosen = [p.name for p in stacks.iterdir() if environment_of(p.name) in names or is_account(p.name)]
    missing = sorted(set(names) - {environment_of(stack) for stack in chosen})
    if missing:
        raise SystemExit(f"{COMMAND}: {', '.join(missing)} not in {stacks.parent}. Fix: python main.py first.")
    fresh = ({k: v for k, v in digests(stacks).items() if k in chosen},
             {k: v for k, v in stateful_addresses(stacks).items() if k in chosen})
    digests_file, addresses_file = files
    old = ({}, {}) if replace_all else (json.loads(digests_file.read_text()), json.loads(addresses_file.read_text()))
    write_digests(merge(old[0], fresh[0], names), digests_file)
    addresses_file.write_text(json.dumps(merge(old[1], fresh[1], names), indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("environments", nargs="*", metavar="ENV",
                        help="environments to pin (a new one); the others' pins are kept")
    parser.add_argument("--all", action="store_true", help="re-pin every environment (an intended change)")
    parser.add_argument("--synth-dir", type=Path, help="pin from this synth output (e.g. cdktf.out) instead of "
                        "synthesizing")
    args = parser.parse_args(argv)
    if bool(args.environments) == args.all:
        parser.print_usage(sys.stderr)
        print(f"{COMMAND}: name the environments to pin, or --all", file=sys.stderr)
        return 2
    from modules.config import ConfigError

    try:
        names = pin(None if args.all else args.environments, args.synth_dir)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    print(f"pinned {', '.join(names)} in {', '.join(f'tests/{p.name}' for p in PIN_FILES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
