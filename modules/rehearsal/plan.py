"""What to rehearse: a fresh synth, its stacks in dependency order, the certificates the config names."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

from modules.rehearsal.emulator import Certificate
from modules.rehearsal.terraform import ToolError

ROOT = Path(__file__).resolve().parent.parent.parent
SOURCES = ("main.py", "environments", "modules", "lambda")


@dataclass(frozen=True)
class Stack:
    name: str
    directory: Path  # the synth's stacks/<name>
    doc: dict[str, Any]
    dependencies: tuple[str, ...]

    @property
    def protected_resources(self) -> list[str]:
        """Addresses whose `lifecycle.prevent_destroy` must refuse a destroy."""
        return [f"{type_}.{name}" for type_, blocks in self.doc.get("resource", {}).items()
                for name, block in blocks.items() if block.get("lifecycle", {}).get("prevent_destroy")]


NOT_SYNTH_INPUTS = ("rehearsal", "__pycache__")  # tools that read a synth, not what makes one


def _newest_source() -> float:
    times = []
    for name in SOURCES:
        path = ROOT / name
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and not any(
            part in NOT_SYNTH_INPUTS for part in p.relative_to(ROOT).parts)]
        times += [p.stat().st_mtime for p in files]
    return max(times)


def _has(synth_dir: Path, environments: list[str]) -> bool:
    manifest = synth_dir / "manifest.json"
    if not manifest.is_file():
        return False
    stacks = json.loads(manifest.read_text())["stacks"]
    return all(any(s.rsplit("-", 1)[0] == env for s in stacks) for env in environments)


def synth(environments: list[str], given: Path | None, work_dir: Path) -> Path:
    """The synth to rehearse: `given`, else cdktf.out when newer than every source, else a fresh one."""
    if given is not None:
        if not _has(given, environments):
            raise ToolError(f"{given} holds no synth of {', '.join(environments)}: run `python main.py "
                            f"{' '.join(environments)} --outdir {given}` or leave out --synth-dir.")
        return given
    outdir = work_dir / "synth"
    newest = _newest_source()
    for candidate in (ROOT / "cdktf.out", outdir):
        if _has(candidate, environments) and (candidate / "manifest.json").stat().st_mtime > newest:
            print(f"reusing the synth in {candidate} (newer than every source)", flush=True)
            return candidate
    print(f"synthesizing {', '.join(environments)} into {outdir}", flush=True)
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), *environments, "--outdir", str(outdir)],
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise ToolError(f"synthesis failed: {(done.stderr.strip() or done.stdout.strip()).splitlines()[-1]}")
    return outdir


def load_stacks(synth_dir: Path, env: str) -> dict[str, Stack]:
    """The environment's stacks (named `<env>-<layer>`)."""
    manifest = json.loads((synth_dir / "manifest.json").read_text())["stacks"]
    stacks = {name: load_stack(synth_dir, name, manifest) for name in manifest if name.rsplit("-", 1)[0] == env}
    if not stacks:
        raise ToolError(f"no stacks of environment {env!r} in {synth_dir}")
    return stacks


def load_stack(synth_dir: Path, name: str, manifest: dict[str, Any] | None = None) -> Stack:
    entry = (manifest or json.loads((synth_dir / "manifest.json").read_text())["stacks"])[name]
    path = synth_dir / entry["synthesizedStackPath"]
    return Stack(name, path.parent, json.loads(path.read_text()), tuple(entry.get("dependencies", ())))


def dependency_order(stacks: dict[str, Stack]) -> list[str]:
    """Producers before consumers (cross-stack references), ties by name: the deploy order."""
    graph = {name: {d for d in s.dependencies if d in stacks} for name, s in stacks.items()}
    sorter = TopologicalSorter(graph)
    try:
        sorter.prepare()
    except CycleError as err:
        raise ToolError(f"stacks depend on each other in a cycle: {err.args[1]}") from None
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order += ready
        sorter.done(*ready)
    return order


def certificates_of(env: str) -> list[Certificate]:
    """The ACM certificates the environment's config names, with the names they must cover."""
    from modules.config import ConfigError, load_environment

    try:
        config = load_environment(env).model_dump()
    except ConfigError as err:
        raise ToolError(f"invalid configuration: {str(err).splitlines()[0]}") from None
    arns: set[str] = set()
    names: set[str] = set()

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and node:
            if key.endswith("certificate_arn"):
                arns.add(node)
            elif key in ("dns_name", "custom_domain", "domain", "certificate_domain"):
                names.add(node)

    walk(config)
    covered = tuple(sorted(names)) or (f"{env}.rehearsal.invalid",)
    return [Certificate(arn, covered) for arn in sorted(arns)]
