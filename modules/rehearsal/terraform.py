"""Terraform and its local provider mirror: finding them, running them, validating many roots at once."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MIRROR = Path("/opt/tf-plugins")
AWS_PROVIDER = "registry.terraform.io/hashicorp/aws"
PROVIDER_GOGC = "400"  # see Toolchain.env


# Set on Ctrl-C: no further Terraform command starts (running ones get the terminal's SIGINT).
STOPPING = threading.Event()


class ToolError(Exception):
    """A missing or broken tool, said in one line with what to do."""


@dataclass(frozen=True)
class Toolchain:
    terraform: str
    mirror: Path
    provider_version: str  # the AWS provider in the mirror

    def env(self, cli_config: Path) -> dict[str, str]:
        """Terraform's environment: no telemetry, no user CLI config, no AWS identity of the caller."""
        keep = {k: v for k, v in os.environ.items()
                if not k.startswith(("AWS_", "TF_")) and k not in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                                                                   "https_proxy")}
        # The AWS provider spends most of each start building its schema (13 starts per stack:
        # three per plan, two per apply, one per show, four per destroy): a laxer Go garbage
        # collector saves about 30 % of that CPU for about 200 MB more per provider process
        # (measured). The caller's own GOGC wins.
        return {"GOGC": PROVIDER_GOGC, **keep, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0",
                "TF_CLI_CONFIG_FILE": str(cli_config),
                # Belt and braces beside the provider block: nothing of the caller's AWS setup is read.
                "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true",
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def find_toolchain(mirror: Path = MIRROR) -> Toolchain:
    terraform = shutil.which("terraform")
    if terraform is None:
        raise ToolError("terraform is not on PATH: install Terraform >= 1.11 (this project uses 1.11.4).")
    provider_dir = mirror / AWS_PROVIDER
    versions = sorted((p.name for p in provider_dir.glob("*") if any(p.glob("*/terraform-provider-aws_*"))),
                      key=lambda v: tuple(int(x) for x in re.findall(r"\d+", v)))
    if not versions:
        raise ToolError(f"no AWS provider in the local mirror {provider_dir}: unpack terraform-provider-aws "
                        f"there as {AWS_PROVIDER}/<version>/<os_arch>/ (or pass --mirror DIR).")
    return Toolchain(terraform=terraform, mirror=mirror, provider_version=versions[-1])


def write_cli_config(path: Path, mirror: Path) -> Path:
    """A CLI config that installs providers from the mirror only: never a registry."""
    path.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n  }}\n}}\n')
    return path


def run(toolchain: Toolchain, cli_config: Path, args: list[str], cwd: Path, log: Path,
        timeout: float = 1800, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run terraform, its output appended to `log` (and returned)."""
    if STOPPING.is_set():
        return subprocess.CompletedProcess(args, 130, "", "Error: interrupted before it started")
    started = time.monotonic()
    try:
        done = subprocess.run([toolchain.terraform, *args, "-no-color"], cwd=cwd, text=True, capture_output=True,
                              env={**toolchain.env(cli_config), **(extra_env or {})}, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        done = subprocess.CompletedProcess(err.cmd, 124, str(err.stdout or ""), f"timed out after {timeout:.0f} s")
    with log.open("a") as out:
        out.write(f"$ terraform {' '.join(args)}  (exit {done.returncode}, {time.monotonic() - started:.1f} s)\n"
                  f"{done.stdout}{done.stderr}\n")
    return done


def init(toolchain: Toolchain, cli_config: Path, cwd: Path, log: Path, backend: bool = True) -> None:
    done = run(toolchain, cli_config, ["init", "-input=false", f"-backend={str(backend).lower()}"], cwd, log)
    if done.returncode != 0:
        raise ToolError(f"terraform init failed in {cwd} (from the mirror {toolchain.mirror}): "
                        f"{first_error(done.stdout + done.stderr)}")


def first_error(output: str) -> str:
    """The first `Error: …` of terraform's output, with the line after it."""
    lines = [line.strip(" │╷╵") for line in output.splitlines()]
    for i, line in enumerate(lines):
        if line.startswith("Error:"):
            rest = next((x for x in lines[i + 1:] if x and not x.startswith(("on ", "with "))), "")
            return f"{line} {rest}".strip()
    return (output.strip().splitlines() or ["(no output)"])[-1]


def errors(output: str) -> list[str]:
    """Every `Error: …` of terraform's output with its location (`on file line n, in …`)."""
    found, lines = [], [line.strip(" │╷╵") for line in output.splitlines()]
    for i, line in enumerate(lines):
        if line.startswith("Error:"):
            where = next((x for x in lines[i + 1:i + 4] if x.startswith("on ")), "")
            found.append(f"{line} {where}".strip())
    return found


def provider_endpoint_keys(toolchain: Toolchain, cli_config: Path, initialised: Path) -> list[str]:
    """Every service key of the provider's `endpoints` block, from its schema."""
    done = subprocess.run([toolchain.terraform, "providers", "schema", "-json"], cwd=initialised, text=True,
                          capture_output=True, env=toolchain.env(cli_config))
    if done.returncode != 0:
        raise ToolError(f"terraform providers schema failed: {first_error(done.stderr)}")
    schema = json.loads(done.stdout)["provider_schemas"][AWS_PROVIDER]["provider"]["block"]
    return sorted(schema["block_types"]["endpoints"]["block"]["attributes"])


def json_messages(stdout: str) -> list[dict[str, object]]:
    """The messages of a `-json` command (machine-readable UI), one a line."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def json_errors(messages: list[dict]) -> list[str]:  # type: ignore[type-arg]
    """Every error diagnostic with its location, as `errors()` gives them for text output."""
    found = []
    for message in messages:
        diagnostic = message.get("diagnostic") or {}
        if message.get("type") == "diagnostic" and diagnostic.get("severity") == "error":
            where = diagnostic.get("range") or {}
            place = f" on {where['filename']} line {where['start']['line']}" if where.get("filename") else ""
            detail = f" {diagnostic['detail'].splitlines()[0]}" if diagnostic.get("detail") else ""
            found.append(f"Error: {diagnostic.get('summary', '')}{detail}{place}")
    return found


def slowest_resources(messages: list[dict], count: int = 5) -> list[tuple[str, float]]:  # type: ignore[type-arg]
    """The resources an `apply -json` spent longest on (its apply_complete/apply_errored hooks)."""
    seconds = {m["hook"]["resource"]["addr"]: float(m["hook"].get("elapsed_seconds", 0)) for m in messages
               if m.get("type") in ("apply_complete", "apply_errored") and "resource" in m.get("hook", {})}
    return sorted(seconds.items(), key=lambda item: -item[1])[:count]
