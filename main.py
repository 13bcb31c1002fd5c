"""Synthesize the LLM platform's Terraform.

    python main.py [ENV ...] [--environments-dir DIR] [--outdir DIR]

Default: every folder under environments/. Every selected environment is loaded and
validated before any construct is built; on a configuration error nothing is written and
each problem is printed with its environment, field and fix (exit code 2).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from modules.config import ENVIRONMENTS_DIR, ConfigError, available_environments, load_environments


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Synthesize Terraform for the selected environments.")
    parser.add_argument("environments", nargs="*", help="environment folders (default: all)")
    parser.add_argument("--environments-dir", type=Path, default=ENVIRONMENTS_DIR)
    parser.add_argument("--outdir", help="output directory (default: cdktf.out, or $CDKTF_OUTDIR)")
    args = parser.parse_args(argv)
    names = args.environments or available_environments(args.environments_dir)
    try:
        environments = load_environments(names, args.environments_dir)
    except ConfigError as err:
        print(f"configuration error, nothing synthesized:\n{err}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    # Imported after validation: configuration errors answer at once, without loading jsii.
    from modules.app import build_app

    app = build_app(environments, outdir=args.outdir)
    app.synth()
    stacks = sorted(json.loads((Path(app.outdir) / "manifest.json").read_text())["stacks"])
    print(f"synthesized {len(stacks)} stacks of {', '.join(names)} in {time.perf_counter() - started:.1f} s "
          f"into {Path(app.outdir) / 'stacks'}/")
    for env in environments:
        print(f"  {env.name}: " + " ".join(s.removeprefix(f"{env.name}-") for s in stacks
                                          if s.startswith(f"{env.name}-") and s.count("-") == env.name.count("-") + 1))
    print("next: python -m policies.gate (compliance), cdktf diff|deploy <stack>")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
