"""Synthesize the LLM platform's Terraform.

    python main.py [ENV ...] [--environments-dir DIR] [--outdir DIR] [--jobs N] [--force] [--cache-dir DIR]
    python main.py --export-modules [DIR] [--environment prod] [--layers edge,data]

Default: every folder under environments/. Every selected environment is loaded and
validated before any construct is built; on a configuration error nothing is written and
each problem is printed with its environment, file, field, rule and fix (exit code 2). The
functions' packages are built (or found in the build cache) next; if that fails, one line
says how to fill the cache (`python -m modules.parts.packaging`) and nothing is written (exit 2).

The environments are synthesized in worker processes, one per core (`--jobs N`), without the
bindings' runtime type checks; an environment whose inputs are unchanged since the last synth
is copied from `.build/synth/` instead (`--force` synthesizes every one afresh). See
modules/engine/synth.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from modules.config import ENVIRONMENTS_DIR, ConfigError, accounts_of, available_environments, load_environments
from modules.config.models import Account, Environment
from modules.engine.provider import kernel_started
from modules.engine.synth import CACHE_DIR, synthesize
from modules.tools.synthesized import synth_summary


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Synthesize Terraform for the selected environments.")
    parser.add_argument("environments", nargs="*", help="environment folders (default: all)")
    parser.add_argument("--environments-dir", type=Path, default=ENVIRONMENTS_DIR,
                        help="where the environment folders are (default: environments/)")
    parser.add_argument("--outdir", help="output directory (default: cdktf.out, or $CDKTF_OUTDIR)")
    parser.add_argument("--export-modules", nargs="?", const="terraform-modules", metavar="DIR",
                        help="write every layer as a plain Terraform module instead (default DIR: terraform-modules)")
    parser.add_argument("--environment", default="prod", help="environment the modules are exported from")
    parser.add_argument("--layers", help="comma-separated layers to export (default: all)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes synthesizing environments in parallel (default: one per core)")
    parser.add_argument("--force", action="store_true",
                        help="synthesize every environment afresh (and refresh its cache entry)")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR,
                        help="where each environment's output is kept (default: .build/synth/; safe to delete)")
    args = parser.parse_args(argv)
    if args.export_modules:
        return export(args)
    names = args.environments or available_environments(args.environments_dir)
    try:
        environments = load_environments(names, args.environments_dir)
        accounts = accounts_of(environments, args.environments_dir)
    except ConfigError as err:
        print(f"configuration error, nothing synthesized ({err.counted}):\n{err}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    if not packages_built("synthesized"):
        return 2
    outdir = Path(args.outdir or os.environ.get("CDKTF_OUTDIR") or "cdktf.out")
    cached: list[str] = []
    if kernel_started():
        stacks = synthesize_here(environments, outdir, accounts)
    else:  # a production run: parallel, cached, without the bindings' runtime type checks
        units = [*names, *(f"account-{name}" for name in accounts)]
        outcome = synthesize(units, args.environments_dir, outdir, jobs=args.jobs, cache_dir=args.cache_dir,
                             force=args.force, type_checks=False)
        stacks, cached = outcome.stacks, outcome.cached
    print(synth_summary([env.name for env in environments], stacks, time.perf_counter() - started,
                        str(outdir / "stacks")))
    if cached:
        print(f"unchanged since their last synth, copied from {args.cache_dir}: {', '.join(cached)} "
              "(--force synthesizes afresh)")
    return 0


def synthesize_here(environments: list[Environment], outdir: Path,
                    accounts: dict[str, tuple[Account, list[Environment]]]) -> list[str]:
    """A jsii kernel already running in this process was set up by its caller (a test, the
    eager-loading comparison): synthesize in it, serially and uncached, its type checks as they are."""
    # Imported after validation: configuration errors answer at once, without loading jsii.
    from modules.engine.app import build_app

    build_app(environments, outdir=str(outdir), accounts=accounts).synth()
    return sorted(json.loads((outdir / "manifest.json").read_text())["stacks"])


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
