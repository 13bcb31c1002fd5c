"""Versions of the plain-Terraform modules: the interface a release promised, and whether the
current modules keep it.

Every module under terraform-modules/ shares one semantic version, released as the git tag
`modules/vX.Y.Z`. CHANGELOG.md (Keep a Changelog) names the versions; its newest released
heading is the version being prepared. `terraform-modules/interface.json` records the variables
and outputs of the version it names. A change that removes or renames a variable or an output,
or adds a variable without a default, breaks callers: it needs a new major version.

    python -m modules.tools.release            # check (what the tests run)
    python -m modules.tools.release --record   # releasing: record the interface under the newest version
    python modules/tools/release.py --tag      # the tag to create (the release workflow; standard library only)

Releasing is a CHANGELOG heading `## [X.Y.Z] - date` and the interface recorded under it, merged
to main: .github/workflows/release.yml then tags that commit `modules/vX.Y.Z` (once).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES_DIR = ROOT / "terraform-modules"
CHANGELOG = ROOT / "CHANGELOG.md"
RECORD = MODULES_DIR / "interface.json"
RELEASED = re.compile(r"^## \[(\d+)\.(\d+)\.(\d+)\]", re.M)

Version = tuple[int, int, int]
Interface = dict[str, dict[str, dict[str, bool]]]  # module -> {"variables": {name: required}, "outputs": {name: True}}


def newest_version(changelog: str) -> Version:
    """The first released `## [X.Y.Z]` heading (Keep a Changelog lists the newest first)."""
    found = RELEASED.search(changelog)
    if not found:
        raise ValueError("CHANGELOG.md has no released version (`## [X.Y.Z] - YYYY-MM-DD`).")
    major, minor, patch = (int(part) for part in found.groups())
    return major, minor, patch


def interface(modules_dir: Path = MODULES_DIR) -> Interface:
    """Each module's variables (required: no default) and outputs, from its main.tf.json."""
    found: Interface = {}
    for main in sorted(modules_dir.glob("*/main.tf.json")):
        doc = json.loads(main.read_text())
        variables = {name: "default" not in (body[0] if isinstance(body, list) else body)
                     for name, body in doc.get("variable", {}).items()}
        found[main.parent.name] = {"variables": variables, "outputs": {name: True for name in doc.get("output", {})}}
    return found


def breaking_changes(released: Interface, current: Interface) -> list[str]:
    """What a caller of the released modules would have to change."""
    changes = []
    for module, was in sorted(released.items()):
        now = current.get(module)
        if now is None:
            changes.append(f"module {module} removed")
            continue
        for kind in ("variables", "outputs"):
            changes += [f"{module}: {kind[:-1]} {name} removed or renamed" for name in sorted(was[kind])
                        if name not in now[kind]]
        changes += [f"{module}: new required variable {name}" for name, required in sorted(now["variables"].items())
                    if required and not was["variables"].get(name, False)]
    return changes


def problems(changelog: str, record: dict, current: Interface) -> list[str]:
    """Why the current modules cannot be released under the changelog's newest version."""
    recorded = tuple(int(part) for part in record["version"].split("."))
    breaking = breaking_changes(record["modules"], current)
    if breaking and newest_version(changelog)[0] <= recorded[0]:
        # While the newest version is being prepared (not tagged yet), its record is re-taken.
        return [f"{change} since modules/v{record['version']}: a breaking change needs a new major version. "
                f"Fix: add a `## [{recorded[0] + 1}.0.0] - YYYY-MM-DD` entry to CHANGELOG.md saying what callers "
                "must change (or keep the old name); if modules/v" + record["version"] + " is not tagged yet, "
                "say what changed under its entry and run `python -m modules.tools.release --record`."
                for change in breaking]
    return []


def tag(changelog: str, record: dict, current: Interface) -> str:
    """`modules/vX.Y.Z` of the newest released version, once its interface is recorded and kept;
    ValueError says what is missing."""
    version = ".".join(str(part) for part in newest_version(changelog))
    if record["version"] != version:
        raise ValueError(f"terraform-modules/interface.json records modules/v{record['version']}, not v{version}. "
                         "Fix: run `python -m modules.tools.release --record` and commit it with the CHANGELOG entry")
    if record["modules"] != current:
        raise ValueError(f"the modules differ from the interface recorded for v{version}. Fix: run "
                         "`python -m modules.tools.release --record` and commit it")
    return f"modules/v{version}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="record the interface under the newest version")
    parser.add_argument("--tag", action="store_true", help="print the tag of the newest version, ready to create")
    args = parser.parse_args(argv)
    try:
        changelog, current = CHANGELOG.read_text(), interface()
        if args.tag:
            try:
                print(tag(changelog, json.loads(RECORD.read_text()), current))
            except ValueError as err:
                print(f"release: not ready to tag: {err}.", file=sys.stderr)
                return 1
            return 0
        if args.record:
            version = ".".join(str(part) for part in newest_version(changelog))
            RECORD.write_text(json.dumps({"version": version, "modules": current}, indent=1, sort_keys=True) + "\n")
            print(f"recorded the interface of modules/v{version} in {RECORD.relative_to(ROOT)}")
            return 0
        found = problems(changelog, json.loads(RECORD.read_text()), current)
    except (OSError, ValueError, KeyError) as err:
        print(f"release: cannot check the modules' interface: {err}. Fix: keep CHANGELOG.md with a "
              "`## [X.Y.Z] - YYYY-MM-DD` entry and record the interface with `python -m modules.tools.release "
              "--record`.", file=sys.stderr)
        return 2
    print("\n".join(found) or "the modules keep the recorded interface or declare a new major version")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
