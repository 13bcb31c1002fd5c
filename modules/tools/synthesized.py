"""Read a synth's output (what `python main.py` wrote) for the tools that describe it: the
architecture diagram and the cost estimate. No cdktn import: reading JSON is instant."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_OUTDIR = Path("cdktf.out")


class SynthError(Exception):
    pass


def synth_summary(environments: list[str], stacks: list[str], seconds: float, stacks_dir: str) -> str:
    """What `python main.py` prints once it has synthesized (the README shows a sample of it)."""
    lines = [f"synthesized {len(stacks)} stacks of {', '.join(environments)} in {seconds:.1f} s into {stacks_dir}/"]
    for env in environments:
        lines.append(f"  {env}: " + " ".join(s.removeprefix(f"{env}-") for s in sorted(stacks)
                                              if s.startswith(f"{env}-") and s.count("-") == env.count("-") + 1))
    accounts = [s for s in sorted(stacks) if s.startswith("account-")]
    if accounts:
        lines.append("  accounts: " + " ".join(accounts))
    lines.append("next: python -m policies.gate (compliance), cdktn diff|deploy <stack>")
    return "\n".join(lines)


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 node`, `2 nodes`, `0 nodes`; `many` for irregular plurals."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


@dataclass(frozen=True)
class Environment:
    """The synthesized stacks of one environment, by layer."""

    name: str
    stacks: dict[str, dict[str, Any]]

    def resources(self, type_: str) -> list[dict[str, Any]]:
        """Every resource of `type_` in any layer, in a stable order."""
        found = []
        for layer in sorted(self.stacks):
            blocks = self.stacks[layer].get("resource", {}).get(type_, {})
            found += [blocks[key] for key in sorted(blocks)]
        return found

    def types(self) -> set[str]:
        return {t for doc in self.stacks.values() for t in doc.get("resource", {})}

    @property
    def region(self) -> str:
        (provider,) = [p for p in self.stacks["network"]["provider"]["aws"] if "alias" not in p]
        return provider["region"]


def load(outdir: Path, names: list[str] | None = None) -> list[Environment]:
    """The environments of the synth in `outdir` (all, or `names`), from its manifest."""
    manifest = outdir / "manifest.json"
    if not manifest.is_file():
        raise SynthError(f"no synth output in {outdir} (no manifest.json). Fix: run `python main.py` first.")
    # An account's stack (`account-<name>`) belongs to no environment.
    stacks = sorted(s for s in json.loads(manifest.read_text())["stacks"] if not s.startswith("account-"))
    known = sorted({s.rsplit("-", 1)[0] for s in stacks})
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise SynthError(f"environment {', '.join(map(repr, unknown))} is not in the synth in {outdir} "
                         f"(it has {', '.join(known)}). Fix: `python main.py {' '.join(unknown)}` or pick a "
                         "synthesized one.")
    environments = []
    for name in names or known:
        layers = {s.rsplit("-", 1)[1]: json.loads((outdir / "stacks" / s / "cdk.tf.json").read_text())
                  for s in stacks if s.rsplit("-", 1)[0] == name}
        environments.append(Environment(name, layers))
    return environments
