"""Prisma, the proxy's database client, outside the image: its CLI (the version prisma-client-py
pins), the client `prisma generate` makes (the image bakes it at build time) and, where its
native engines cannot be downloaded, stand-ins for the two engine binaries.

The CLI and prisma-client-py download the native query and schema engines of one engine commit
from binaries.prisma.sh. Where that host answers (the pipeline), they do. Offline, the stand-ins
in engines/ are used: the schema engine's `can-connect-to-database` and the JSON-RPC that
`prisma migrate deploy` speaks, over node-postgres (`prisma migrate diff` is refused by name);
the query engine's HTTP server, driving the same engine commit compiled to WebAssembly
(`@prisma/query-engine-wasm` with `@prisma/adapter-pg`). That engine speaks only Prisma's JSON
protocol while prisma-client-py sends GraphQL, so engines/graphql.mjs translates prisma-client-py's
documents and the engine's answers. All npm packages are pinned by engines/package-lock.json and
installed once into .build/smoke/engines.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from modules.rehearsal.smoke.deployment import SmokeFailure, installing

SOURCE = Path(__file__).with_name("engines")
ROOT = Path(__file__).resolve().parents[3]
INSTALLED = ROOT / ".build" / "smoke" / "engines"
ENGINE_COMMIT = "393aa359c9ad4a4bb28630fb5613f9c281cde053"  # prisma-client-py 0.15.0 (Prisma 5.17.0)
DOWNLOAD_PROBE = (f"https://binaries.prisma.sh/all_commits/{ENGINE_COMMIT}/debian-openssl-3.0.x/"
                  "query-engine.gz.sha256")
STAND_INS = ("query-engine", "schema-engine")
MODULES = ("graphql.mjs",)  # what the stand-ins import


def install(directory: Path = INSTALLED) -> Path:
    """The pinned packages (npm ci, no install scripts: the CLI's would download engines) and the
    stand-ins' launchers; redone when the lock or a stand-in changes."""
    sources = [SOURCE / "package.json", SOURCE / "package-lock.json", *(SOURCE / f"{n}.mjs" for n in STAND_INS),
               *(SOURCE / n for n in MODULES)]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    with installing(directory):
        done = directory / ".installed"
        if done.is_file() and done.read_text() == digest:
            return directory
        if shutil.which("npm") is None:
            raise SmokeFailure("npm is not installed: Prisma's CLI and the engine stand-ins come from npm")
        directory.mkdir(parents=True, exist_ok=True)
        for source in sources:
            shutil.copyfile(source, directory / source.name)
        installed = subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=directory,
                                   capture_output=True, text=True, check=False)
        if installed.returncode != 0:
            raise SmokeFailure(f"npm ci in {directory} failed: {installed.stderr.strip()[-400:]}")
        (directory / "bin").mkdir(exist_ok=True)
        for name in STAND_INS:  # node trusts the process's SSL_CERT_FILE only with --use-openssl-ca
            launcher = directory / "bin" / name
            launcher.write_text(f'#!/bin/sh\nexec node --use-openssl-ca "$(dirname "$0")/../{name}.mjs" "$@"\n')
            launcher.chmod(0o755)
        done.write_text(digest)
    return directory


def downloadable(timeout: float = 5) -> bool:
    try:
        with urllib.request.urlopen(DOWNLOAD_PROBE, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def environment(directory: Path, real: bool) -> tuple[dict[str, str], str]:
    """What the proxy's Prisma needs: its CLI from the pinned packages, and the stand-ins unless
    the real engines can be downloaded. Returns the variables and a sentence saying which."""
    variables = {"PRISMA_BINARY_CACHE_DIR": str(directory)}  # prisma-client-py's CLI: node_modules/prisma
    if real:
        return variables, f"Prisma's native engines {ENGINE_COMMIT[:7]} from binaries.prisma.sh"
    return {**variables, "PRISMA_ENGINES_CHECKSUM_IGNORE_MISSING": "1",
            **{f"PRISMA_{n.split('-')[0].upper()}_ENGINE_BINARY": str(directory / "bin" / n) for n in STAND_INS}}, (
        f"stand-in engines (binaries.prisma.sh unreachable; engine commit {ENGINE_COMMIT[:7]})")


def generate(venv: Path, environment: dict[str, str], which: str) -> Path:
    """prisma-client-py's client for LiteLLM's schema (`prisma generate`), which the image bakes at
    build time; redone when the engines change, since the client records their paths. Returns
    the schema."""
    schemas = sorted(venv.glob("lib/python3*/site-packages/litellm/proxy/schema.prisma"))
    if not schemas:
        raise SmokeFailure(f"no litellm/proxy/schema.prisma in {venv}")
    done = venv / ".prisma-client"
    with installing(venv):
        if done.is_file() and done.read_text() == which:
            return schemas[0]
        made = subprocess.run([str(venv / "bin" / "prisma"), "generate", "--schema", str(schemas[0])],
                              env=environment, cwd=schemas[0].parent, capture_output=True, text=True, check=False)
        if made.returncode != 0:
            raise SmokeFailure(f"prisma generate failed with {which}: {(made.stdout + made.stderr).strip()[-400:]}")
        done.write_text(which)
    return schemas[0]

