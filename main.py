"""Synthesize the LLM platform's Terraform.

    python main.py [ENV ...] [--environments-dir DIR] [--outdir DIR]
    python main.py --export-modules [DIR] [--environment prod] [--layers edge,data]

Default: every folder under environments/. Every selected environment is loaded and
validated before any construct is built; on a configuration error nothing is written and
each problem is printed with its environment, file, field, rule and fix (exit code 2). The
functions' packages are built (or found in the build cache) next; if that fails, one line
says how to fill the cache (`python -m modules.parts.packaging`) and nothing is written (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from modules.config import ENVIRONMENTS_DIR, ConfigError, available_environments, load_environments
from modules.tools.synthesized import synth_summary


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Synthesize Terraform for the selected environments.")
    parser.add_argument("environments", nargs="*", help="environment folders (default: all)")
    parser.add_argument("--environments-dir", type=Path, default=ENVIRONMENTS_DIR)
    parser.add_argument("--outdir", help="output directory (default: cdktf.out, or $CDKTF_OUTDIR)")
    parser.add_argument("--export-modules", nargs="?", const="terraform-modules", metavar="DIR",
                        help="write every layer as a plain Terraform module instead (default DIR: terraform-modules)")
    parser.add_argument("--environment", default="prod", help="environment the modules are exported from")
    parser.add_argument("--layers", help="comma-separated layers to export (default: all)")
    args = parser.parse_args(argv)
    if args.export_modules:
        return export(args)
    names = args.environments or available_environments(args.environments_dir)
    try:
        environments = load_environments(names, args.environments_dir)
    except ConfigError as err:
        print(f"configuration error, nothing synthesized ({err.counted}):\n{err}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    if not packages_built("synthesized"):
        return 2
    # Imported after validation: configuration errors answer at once, without loading jsii.
    from modules.engine.app import build_app

    app = build_app(environments, outdir=args.outdir)
    app.synth()
    stacks = sorted(json.loads((Path(app.outdir) / "manifest.json").read_text())["stacks"])
    print(synth_summary([env.name for env in environments], stacks, time.perf_counter() - started,
                        str(Path(app.outdir) / "stacks")))
    return 0


def packages_built(what: str) -> bool:
    """Build (or find cached) the functions' packages before anything is written: the layer is
    the one input fetched from the package index, and a synth that fails half-way would leave
    an empty output directory behind."""
    from modules.parts.packaging import BuildError, build_all

    try:
        build_all()
    except BuildError as err:
        print(f"build error, nothing {what}: {err}", file=sys.stderr)
        return False
    return True


def export(args: argparse.Namespace) -> int:
    try:
        (env,) = load_environments([args.environment], args.environments_dir)
    except ConfigError as err:
        print(f"configuration error, nothing exported ({err.counted}):\n{err}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    if not packages_built("exported"):
        return 2
    from modules.tools.export import EXPORTED_LAYERS, ExportError, export_modules

    layers = tuple(args.layers.split(",")) if args.layers else EXPORTED_LAYERS
    try:
        written = export_modules(env, Path(args.export_modules), layers)
    except ExportError as err:
        print(f"export error, nothing exported: {err}", file=sys.stderr)
        return 2
    print(f"exported {len(written)} modules from {env.name} in {time.perf_counter() - started:.1f} s into "
          f"{args.export_modules}/: {' '.join(p.name for p in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
