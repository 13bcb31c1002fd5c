"""Lambda packages for the realtime functions: one layer with the third-party code, one zip
per function (its folder under `lambda/` plus the shared `chat_common` package).

    python -m modules.parts.packaging [--cache-dir DIR]     # fill the build cache (needs PyPI once)

Builds are deterministic — entries sorted, timestamps 1980-01-01, permissions 0644, no
`__pycache__`/`.pyc` — so the same inputs give the same bytes and the same Terraform
`source_code_hash`. They are cached by content hash under `<project>/.build/lambda/`
(override with $LLM_PLATFORM_BUILD_CACHE): with a warm cache nothing runs pip or touches the
network. Imports neither cdktn nor the AWS provider, so it is cheap to import anywhere.

The layer is the one input fetched from the package index. `python main.py` builds every
package before it synthesizes anything, so an unreachable index costs one line naming the
fill command above, and no output. A cache filled on a connected machine serves an
air-gapped one: copy the directory and point $LLM_PLATFORM_BUILD_CACHE at it (the cache key
is the content of the inputs, not the machine).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LAMBDA_DIR = PROJECT_ROOT / "lambda"
REQUIREMENTS = LAMBDA_DIR / "requirements.txt"
SHARED_PACKAGE = "chat_common"
FUNCTIONS = ("authorizer", "connect", "disconnect", "eraser", "message", "worker")

RUNTIME = "python3.12"
ARCHITECTURE = "arm64"
HANDLER = "handler.handler"

CACHE_ENV = "LLM_PLATFORM_BUILD_CACHE"
DEFAULT_CACHE_DIR = PROJECT_ROOT / ".build" / "lambda"
# The layer's target: Lambda python3.12 on Graviton (Amazon Linux 2023, glibc 2.34).
PIP_PLATFORM_ARGS = ("--only-binary=:all:", "--platform", "manylinux_2_28_aarch64",
                     "--platform", "manylinux2014_aarch64", "--python-version", "3.12",
                     "--implementation", "cp")
# Part of every cache key: bump it when the zip layout or the install options change.
BUILD_FORMAT = "2"
# Machine-specific parts of a pip install, left out of the layer: console scripts carry the
# build interpreter's path in their shebang, and RECORD (hashes of the installed files,
# scripts included) and direct_url.json inherit that. None is needed at run time.
LAYER_EXCLUDED_DIRS = ("bin",)
LAYER_EXCLUDED_METADATA = ("RECORD", "direct_url.json")

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--

Installer = Callable[[Path, Path], None]  # (requirements file, empty target directory)


@dataclass(frozen=True)
class Package:
    path: Path
    source_code_hash: str  # base64 of the zip's sha256, as Terraform's `source_code_hash` wants it


FILL_COMMAND = "python -m modules.parts.packaging --cache-dir DIR"


class BuildError(Exception):
    """A package could not be built; the message is one line saying what failed and what to do."""


def pip_install(requirements: Path, target: Path) -> None:
    """Install the pinned wheels for the Lambda platform into `target` (needs PyPI)."""
    # --no-deps: the file lists the whole closure except what the runtime provides (botocore).
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           "--no-input", "--no-compile", "--no-deps", "--require-hashes", *PIP_PLATFORM_ARGS,
                           "--target", str(target), "--requirement", str(requirements)],
                          check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"pip install of {_shown(requirements)} failed: {_pip_reason(proc.stdout + proc.stderr)}")


def _pip_reason(output: str) -> str:
    """pip's output in a few words: the index unreachable and why, else its last error line."""
    errors = [line.removeprefix("ERROR: ").strip() for line in output.splitlines() if line.startswith("ERROR:")]
    last = errors[-1] if errors else (output.strip().splitlines() or ["no output"])[-1].strip()
    network = re.search(r"^.*(NewConnectionError|ConnectTimeoutError|NameResolutionError|ProxyError|SSLError).*$",
                        output, re.M)
    if network:
        errno = re.search(r"\[Errno -?\d+\] ([^\"')]+)", network[0])
        return f"the package index could not be reached ({errno[1] if errno else network[1]}); {last}"
    if "(from versions: none)" in output:  # what pip says, without retries, when the index does not answer
        return f"the package index offered no version (is it reachable?); {last}"
    return last


def build_layer(*, requirements: Path = REQUIREMENTS, cache_dir: Path | None = None,
                installer: Installer | None = None) -> Package:
    """The layer zip (`python/` prefix) with the third-party packages of `requirements`.

    Raises BuildError (one line: what failed, how to fill the cache) when the install fails."""
    cache = _cache_dir(cache_dir)
    key = _digest([BUILD_FORMAT.encode(), requirements.read_bytes(), "\0".join(PIP_PLATFORM_ARGS).encode()])
    out = cache / f"layer-{key[:20]}.zip"
    if not out.exists():
        with tempfile.TemporaryDirectory(dir=cache, prefix="layer-") as work:
            site = Path(work) / "python"
            try:
                (installer or pip_install)(requirements, site)
            except BuildError as err:
                raise BuildError(f"the functions' layer is not in the build cache ({_shown(cache)}) and could not "
                                 f"be built: {err}. Fix: run `python -m modules.parts.packaging` where PyPI is reachable "
                                 f"(for a machine without it: `{FILL_COMMAND}`, copy DIR over and set "
                                 f"{CACHE_ENV}=DIR).") from None
            _write_zip(out, [(f"python/{name}", path) for name, path in _tree(site) if _in_layer(name)])
    return _package(out)


def build_all(cache_dir: Path | None = None) -> dict[str, Package]:
    """The layer and every function, as the synth uses them: `{"layer": …, "<function>": …}`."""
    return {"layer": build_layer(cache_dir=cache_dir),
            **{name: build_function(name, cache_dir=cache_dir) for name in FUNCTIONS}}


def build_function(name: str, *, lambda_dir: Path = LAMBDA_DIR, cache_dir: Path | None = None) -> Package:
    """The zip of `lambda/<name>/` with the shared package beside it, both at the zip's root."""
    if name == SHARED_PACKAGE or not (lambda_dir / name / "handler.py").is_file():
        raise ValueError(f"no function {name!r} in {lambda_dir} (a folder with handler.py)")
    files = [*_tree(lambda_dir / name),
             *((f"{SHARED_PACKAGE}/{arcname}", path) for arcname, path in _tree(lambda_dir / SHARED_PACKAGE))]
    contents = [(arcname, path.read_bytes()) for arcname, path in sorted(files)]
    key = _digest([BUILD_FORMAT.encode(), name.encode(),
                   *(part for arcname, data in contents for part in (arcname.encode(), data))])
    out = _cache_dir(cache_dir) / f"function-{name}-{key[:20]}.zip"
    if not out.exists():
        _write_zip(out, contents)
    return _package(out)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _cache_dir(cache_dir: Path | None) -> Path:
    path = Path(cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _tree(root: Path) -> list[tuple[str, Path]]:
    """Files under `root` by relative POSIX path, without bytecode or hidden files."""
    found = []
    for path in root.rglob("*"):
        parts = path.relative_to(root).parts
        if (path.is_file() and "__pycache__" not in parts and path.suffix not in (".pyc", ".pyo")
                and not any(part.startswith(".") for part in parts)):
            found.append(("/".join(parts), path))
    return sorted(found)


def _in_layer(name: str) -> bool:
    parts = name.split("/")
    return not (parts[0] in LAYER_EXCLUDED_DIRS
                or (len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] in LAYER_EXCLUDED_METADATA))


def _digest(parts: Iterable[bytes]) -> str:
    """sha256 over length-prefixed parts, so no two different part lists hash alike."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _write_zip(out: Path, entries: Sequence[tuple[str, Path | bytes]]) -> None:
    """Write atomically (a concurrent build sees the old state or the whole new zip)."""
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w") as archive:
            for arcname, content in sorted(entries, key=lambda entry: entry[0]):
                info = zipfile.ZipInfo(arcname, date_time=ZIP_DATE)
                info.create_system = 3  # unix, so the mode below is honoured
                info.external_attr = FILE_MODE << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                data = content if isinstance(content, bytes) else content.read_bytes()
                archive.writestr(info, data, compresslevel=9)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _package(path: Path) -> Package:
    digest = hashlib.sha256(path.read_bytes()).digest()
    return Package(path=path, source_code_hash=base64.b64encode(digest).decode("ascii"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the functions' layer and zips into the build cache.")
    parser.add_argument("--cache-dir", type=Path,
                        help=f"cache directory (default: ${CACHE_ENV}, else {_shown(DEFAULT_CACHE_DIR)})")
    args = parser.parse_args(argv)
    try:
        built = build_all(args.cache_dir)
    except BuildError as err:
        print(f"packaging: {err}", file=sys.stderr)
        return 2
    for name, package in built.items():
        print(f"{name}: {_shown(package.path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
