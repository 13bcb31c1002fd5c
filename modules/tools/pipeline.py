"""Small answers the deploy pipeline (.github/workflows/) asks of a synth, one stack name per line.

    python -m modules.tools.pipeline order ENV [--synth-dir cdktf.out]   # deploy order, state stack excluded
    python -m modules.tools.pipeline changed BASE_SYNTH HEAD_SYNTH [ENV]  # stacks whose Terraform differs
    python -m modules.tools.pipeline apply ENV                            # init, plan, apply each, in order
    python -m modules.tools.pipeline plan STACK ... --markdown FILE       # exit 2 when any stack would change

The `<env>-state` stack is left out of `order`: it holds the other stacks' state bucket,
keeps its own state in a local file and is deployed by hand once (README, "Deploying").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

from modules.rehearsal.plan import dependency_order, load_stacks
from modules.rehearsal.terraform import ToolError

STATE_LAYER = "state"  # modules.engine.stacks.STATE_LAYER; not imported here, it would load cdktn


def deploy_order(synth_dir: Path, env: str) -> list[str]:
    return [s for s in dependency_order(load_stacks(synth_dir, env)) if s != f"{env}-{STATE_LAYER}"]


def _fingerprints(synth_dir: Path) -> dict[str, str]:
    """Stack -> hash of its Terraform JSON without cdktn's metadata (paths, versions)."""
    prints = {}
    for name, entry in json.loads((synth_dir / "manifest.json").read_text())["stacks"].items():
        doc = json.loads((synth_dir / entry["synthesizedStackPath"]).read_text())
        doc.pop("//", None)
        prints[name] = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    return prints


def changed_stacks(base: Path, head: Path, env: str | None = None) -> list[str]:
    before = _fingerprints(base) if (base / "manifest.json").is_file() else {}
    after = _fingerprints(head)
    changed = sorted(s for s, h in after.items() if before.get(s) != h)
    return [s for s in changed if env is None or s.rsplit("-", 1)[0] == env]


def _terraform(stack_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["terraform", f"-chdir={stack_dir}", *args], text=True, capture_output=True)


def apply(synth_dir: Path, env: str) -> int:
    """Init, plan and apply every stack in deploy order; stop at the first failure."""
    for stack in deploy_order(synth_dir, env):
        stack_dir = synth_dir / "stacks" / stack
        print(f"::group::{stack}", flush=True)
        for args in (["init", "-input=false"], ["plan", "-input=false", "-out=deploy.tfplan"],
                     ["apply", "-input=false", "deploy.tfplan"]):
            done = subprocess.run(["terraform", f"-chdir={stack_dir}", *args])
            if done.returncode != 0:
                print(f"::endgroup::\n::error::{stack}: terraform {args[0]} failed; later stacks not deployed")
                return 1
        print("::endgroup::", flush=True)
    return 0


def plan(synth_dir: Path, stacks: list[str], markdown: Path) -> int:
    """Plan each stack (`cdktn diff` does the same in the stack's directory); 2 when any would change."""
    changed, failed, sections = [], [], []
    for stack in stacks:
        stack_dir = synth_dir / "stacks" / stack
        init = _terraform(stack_dir, "init", "-input=false")
        done = init if init.returncode else _terraform(
            stack_dir, "plan", "-input=false", "-lock=false", "-detailed-exitcode", "-no-color")
        if done.returncode == 2:
            changed.append(stack)
        elif done.returncode != 0:
            failed.append(stack)
        if done.returncode:
            body = "\n".join((done.stdout + done.stderr).splitlines()[-300:])
            sections.append(f"<details><summary>{stack}</summary>\n\n```\n{body}\n```\n</details>\n")
    summary = (f"{len(changed)} of {len(stacks)} stacks would change" + (f", {len(failed)} failed to plan"
               if failed else "") + (": " + ", ".join(changed + failed) if changed or failed else "."))
    markdown.write_text(summary + "\n\n" + "\n".join(sections))
    print(summary)
    return 1 if failed else 2 if changed else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m modules.tools.pipeline", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=text, description=text)

    order = command("order", "an environment's stacks in deploy order")
    synth_dir = {"type": Path, "default": Path("cdktf.out"), "help": "the synth output (default: cdktf.out)"}
    order.add_argument("environment", help="the environment whose stacks to list")
    order.add_argument("--synth-dir", **synth_dir)
    changed = command("changed", "stacks whose synthesized Terraform differs")
    changed.add_argument("base", type=Path, help="the base branch's synth output (missing: every stack changed)")
    changed.add_argument("head", type=Path, help="this change's synth output")
    changed.add_argument("environment", nargs="?", help="only this environment's stacks (default: all)")
    deploy = command("apply", "deploy an environment's stacks in order")
    deploy.add_argument("environment", help="the environment to deploy")
    deploy.add_argument("--synth-dir", **synth_dir)
    planned = command("plan", "plan stacks; exit 2 when any would change")
    planned.add_argument("stacks", nargs="*", help="stack names (<env>-<layer>), in deploy order")
    planned.add_argument("--markdown", type=Path, required=True, help="where to write the plans' summary")
    planned.add_argument("--synth-dir", **synth_dir)
    args = parser.parse_args(argv)
    if args.command == "apply":
        return apply(args.synth_dir, args.environment)
    if args.command == "plan":
        return plan(args.synth_dir, args.stacks, args.markdown)
    try:
        names = (deploy_order(args.synth_dir, args.environment) if args.command == "order"
                 else changed_stacks(args.base, args.head, args.environment))
    except (ToolError, FileNotFoundError) as err:
        print(f"pipeline: {err}", file=sys.stderr)
        return 2
    print("\n".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
