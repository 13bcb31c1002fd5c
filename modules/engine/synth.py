"""Synthesize environments in parallel worker processes, each environment cached by its inputs.

An environment's stacks depend only on its own folder under `environments/` and on the code
that builds them (cross-stack references never leave an environment), so:

- the environments are synthesized in worker processes, one per core (`--jobs`), each into
  a directory of its own, then merged into the output directory under the manifest cdktn
  writes for them together: byte for byte what one serial synth writes (a test proves it);
- each environment's output is kept in `.build/synth/` under a key of its inputs (its folder,
  the library's source — `modules/`, `lambda/`, `main.py`, `cdktf.json` —, `Pipfile.lock`,
  Python's and the engine packages' versions, the engine's environment variables that change
  its output); an unchanged environment is copied from there instead of synthesized. The
  cache is outside git and safe to delete; `--force` rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

from modules.engine.provider import kernel_started

ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = ROOT / ".build" / "synth"
# Everything besides an environment's own folder that its synthesized stacks depend on.
SOURCES = ("modules", "lambda", "main.py", "cdktf.json", "Pipfile.lock")
ENGINE_PACKAGES = ("cdktn", "cdktn-provider-aws", "constructs", "jsii")
# Environment variables the engine reads that change what it writes (cdktn's lib/*.js; the CLI
# sets some): part of the key. CDKTF_OUTDIR only says where, so it is not.
ENGINE_VARIABLES = ("CDKTF_CONTEXT_JSON", "CDKTF_TARGET_STACK_ID", "CDKTF_CONTINUE_SYNTH_ON_ERROR_ANNOTATIONS",
                    "CDKTN_DISABLE_CREATION_STACK", "SYNTH_HCL_OUTPUT", "TERRAFORM_BINARY_NAME")
MANIFEST = "manifest.json"
ACCOUNT_UNIT = "account-"  # a unit of synthesis that is an account's stack, not an environment
ACCOUNTS_FILE = "accounts.toml"  # modules.config.ACCOUNTS_FILE (not imported: config loads pydantic)
KEY_LENGTH = 24
CACHE_FORMAT = "1"  # bump when the layout of a cache entry changes


@dataclass
class Outcome:
    stacks: list[str] = field(default_factory=list)        # every stack now in the output directory's manifest
    synthesized: list[str] = field(default_factory=list)   # environments built by this run
    cached: list[str] = field(default_factory=list)        # environments copied unchanged from the cache
    type_checked: bool | None = None  # whether the workers kept the bindings' type checks (None: no worker ran)


def synthesize(names: list[str], environments_dir: Path, outdir: Path, *, jobs: int | None = None,
               cache_dir: Path | None = CACHE_DIR, force: bool = False, type_checks: bool = True) -> Outcome:
    """Synthesize `names` (already validated) into `outdir`. `cache_dir=None` uses no cache;
    `force` synthesizes every environment afresh and refreshes its cache entry."""
    outcome = Outcome()
    keys = {name: unit_key(environments_dir, name) for name in names}
    ready = {name: cache_dir / f"{name}-{keys[name]}" for name in names} if cache_dir else {}
    misses = [name for name in names if force or not (cache_dir and (ready[name] / MANIFEST).is_file())]
    outcome.cached = [name for name in names if name not in misses]
    work_root = cache_dir if cache_dir else None
    if work_root:
        work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_root, prefix=".work-") as work:
        built = {name: Path(work) / name for name in misses}
        outcome.type_checked = _build(built, environments_dir, jobs, type_checks)
        outcome.synthesized = misses
        for name, directory in built.items():
            if cache_dir:
                _store(directory, cache_dir, name, ready[name])
            else:
                ready[name] = directory
        outcome.stacks = merge([ready[name] for name in names], outdir)
    return outcome


def _build(targets: dict[str, Path], environments_dir: Path, jobs: int | None, type_checks: bool) -> bool | None:
    """Each environment into its target directory, in parallel worker processes."""
    if not targets:
        return None
    workers = max(1, min(jobs or os.cpu_count() or 1, len(targets)))
    # Fork is cheapest, but a forked child of a process whose jsii kernel runs would share its pipe.
    context = multiprocessing.get_context("spawn" if kernel_started() else "fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        checked = list(pool.map(_synth_environment, targets, [environments_dir] * len(targets),
                                targets.values(), [type_checks] * len(targets)))
    return all(checked)


def _synth_environment(name: str, environments_dir: Path, target: Path, type_checks: bool) -> bool:
    """Worker: one environment's app (or, for `account-<name>`, one account's), synthesized into
    `target`; says whether type checks were on."""
    from modules.engine.synth_switches import binding_type_checks_on, skip_binding_type_checks

    if not type_checks:
        skip_binding_type_checks()
    from modules.engine.app import build_app
    from modules.config import accounts_of, load_accounts, load_environments

    if name.startswith(ACCOUNT_UNIT):
        account = load_accounts(environments_dir)[name.removeprefix(ACCOUNT_UNIT)]
        members = [e for e in load_environments(_names(environments_dir), environments_dir) if e.account_id == account.id]
        build_app([], outdir=str(target), accounts=accounts_of(members, environments_dir)).synth()
    else:
        build_app(load_environments([name], environments_dir), outdir=str(target)).synth()
    return binding_type_checks_on()


def merge(sources: list[Path], outdir: Path) -> list[str]:
    """Copy each source's stacks into `outdir` and write the manifest cdktn writes for all of them."""
    stacks: dict[str, dict] = {}
    version = ""
    (outdir / "stacks").mkdir(parents=True, exist_ok=True)
    for source in sources:
        manifest = json.loads((source / MANIFEST).read_text())
        version = manifest["version"]
        for name, entry in manifest["stacks"].items():
            stacks[name] = entry
            target = outdir / entry["workingDirectory"]
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(source / entry["workingDirectory"], target)
    # cdktn writes its manifest with safe-stable-stringify: keys sorted, two-space indent, no newline.
    text = json.dumps({"stacks": stacks, "version": version}, indent=2, sort_keys=True, ensure_ascii=False)
    (outdir / MANIFEST).write_text(text)
    return sorted(stacks)


def _store(built: Path, cache_dir: Path, name: str, entry: Path) -> None:
    """Keep a fresh build as the environment's only cache entry (older keys are dropped)."""
    own = re.compile(rf"{re.escape(name)}-[0-9a-f]{{{KEY_LENGTH}}}")  # not prod-us-… for prod
    for old in cache_dir.iterdir():
        if own.fullmatch(old.name) and old != entry:
            shutil.rmtree(old, ignore_errors=True)
    if entry.exists():  # --force, or a damaged entry: set aside first, so the rename cannot fail
        aside = built.with_name(f"{built.name}.old")
        os.replace(entry, aside)
        shutil.rmtree(aside, ignore_errors=True)
    os.replace(built, entry)  # atomic: an entry is whole or absent


def unit_key(environments_dir: Path, name: str) -> str:
    """An environment's key, or an account's: the accounts file and every environment folder
    (which environments belong to the account is known only after reading them)."""
    if not name.startswith(ACCOUNT_UNIT):
        return environment_key(environments_dir / name)
    digest = hashlib.sha256(f"{library_key()}\n{name}\n".encode())
    for folder in [environments_dir / ACCOUNTS_FILE, *(environments_dir / n for n in _names(environments_dir))]:
        _hash_tree(digest, folder, environments_dir)
    return digest.hexdigest()[:KEY_LENGTH]


def _names(environments_dir: Path) -> list[str]:
    return sorted(p.parent.name for p in environments_dir.glob("*/environment.toml"))


def environment_key(folder: Path) -> str:
    """Hex digest of an environment's inputs: its folder's files and everything in `library_key`."""
    digest = hashlib.sha256(library_key().encode())
    _hash_tree(digest, folder, folder)
    return digest.hexdigest()[:KEY_LENGTH]


@cache
def library_key() -> str:
    digest = hashlib.sha256(f"{CACHE_FORMAT}\n{sys.version}\n".encode())
    for package in ENGINE_PACKAGES:
        digest.update(f"{package}=={metadata.version(package)}\n".encode())
    for variable in ENGINE_VARIABLES:
        digest.update(f"{variable}={os.environ.get(variable)!r}\n".encode())
    for source in SOURCES:
        _hash_tree(digest, ROOT / source, ROOT)
    return digest.hexdigest()


def _hash_tree(digest: "hashlib._Hash", path: Path, base: Path) -> None:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if "__pycache__" in file.parts or file.suffix == ".pyc":
            continue
        digest.update(f"{file.relative_to(base).as_posix()}\0".encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
