"""RT-3: the functions and their layer are packaged by the synth, deterministically and cached.

These tests run offline: the layer's pip step is replaced by a fake installer. The real build
(PyPI, ~6 s) runs with LLM_PLATFORM_NETWORK_TESTS=1.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from modules.parts import packaging
from modules.parts.packaging import FUNCTIONS, LAMBDA_DIR, Package, build_function, build_layer

RUNTIME_PROVIDED = {"boto3", "botocore", "python-dateutil", "six", "urllib3", "s3transfer"}


def entries(package: Package) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(package.path) as archive:
        return archive.infolist()


def assert_normalized(package: Package) -> None:
    infos = entries(package)
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo")) or n.endswith("/")]
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o100644}
    digest = hashlib.sha256(package.path.read_bytes()).digest()
    assert package.source_code_hash == base64.b64encode(digest).decode()


def test_the_function_folders_are_the_declared_functions() -> None:
    folders = {p.parent.name for p in LAMBDA_DIR.glob("*/handler.py")}
    assert folders == set(FUNCTIONS)
    assert (LAMBDA_DIR / packaging.SHARED_PACKAGE / "__init__.py").is_file()


def test_importing_packaging_loads_neither_cdktn_nor_the_provider() -> None:
    # `modules` only prepares the jsii kernel's environment (see modules/engine/provider.py); nothing
    # of the provider, cdktn or the kernel may actually load.
    code = ("import sys, modules.parts.packaging, modules.engine.provider; assert modules.engine.provider.is_lazy(); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('cdktn', 'cdktn_provider_aws', 'jsii', 'constructs')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=packaging.PROJECT_ROOT, check=True)


def test_a_function_zip_holds_its_handler_and_the_shared_package_at_the_top(tmp_path: Path) -> None:
    package = build_function("worker", cache_dir=tmp_path)
    names = [info.filename for info in entries(package)]
    assert "handler.py" in names and "chat_common/__init__.py" in names
    assert not [n for n in names if n.startswith(("authorizer/", "message/", "requirements"))]
    assert_normalized(package)


def test_function_builds_are_byte_identical_and_cached(tmp_path: Path) -> None:
    source = tmp_path / "lambda"
    shutil.copytree(LAMBDA_DIR, source, ignore=shutil.ignore_patterns("__pycache__"))
    # Noise a build must ignore: bytecode, file times, permissions.
    (source / "message" / "__pycache__").mkdir()
    (source / "message" / "__pycache__" / "handler.cpython-312.pyc").write_bytes(os.urandom(64))
    for path in source.rglob("*.py"):
        os.utime(path, (random.randint(10**9, 2 * 10**9),) * 2)
    os.chmod(source / "message" / "handler.py", 0o600)

    first = build_function("message", lambda_dir=source, cache_dir=tmp_path / "a")
    second = build_function("message", lambda_dir=LAMBDA_DIR, cache_dir=tmp_path / "b")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.source_code_hash == second.source_code_hash
    assert_normalized(first)

    built_at = first.path.stat().st_mtime_ns
    assert build_function("message", lambda_dir=source, cache_dir=tmp_path / "a") == first
    assert first.path.stat().st_mtime_ns == built_at, "a warm cache rebuilds nothing"

    # Shared code is part of every function: a change there gives a new package.
    with (source / "chat_common" / "frames.py").open("a") as handle:
        handle.write("\n# changed\n")
    changed = build_function("message", lambda_dir=source, cache_dir=tmp_path / "a")
    assert changed.path != first.path and changed.source_code_hash != first.source_code_hash


def test_an_unknown_function_is_refused(tmp_path: Path) -> None:
    for name in ("nope", "chat_common"):
        with pytest.raises(ValueError, match=name):
            build_function(name, cache_dir=tmp_path)


def test_each_function_zip_imports_its_handler_with_only_the_zip_and_third_party_code(tmp_path: Path) -> None:
    zips = [str(build_function(name, cache_dir=tmp_path).path) for name in FUNCTIONS]
    # A fresh interpreter per zip path, as Lambda has: the zip's own handler and chat_common.
    script = (
        "import sys\n"
        "for path in sys.argv[1:]:\n"
        "    for name in [m for m in sys.modules if m == 'handler' or m.startswith('chat_common')]:\n"
        "        del sys.modules[name]\n"
        "    sys.path.insert(0, path)\n"
        "    import handler\n"
        "    assert handler.__file__.startswith(path), handler.__file__\n"
        "    assert callable(handler.handler)\n"
        "    sys.path.remove(path)\n")
    env = {**os.environ, "AWS_DEFAULT_REGION": "eu-west-2", "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run([sys.executable, "-I", "-c", script, *zips], check=True, env=env, cwd=tmp_path)


def fake_pip(calls: list[tuple[Path, Path]]):
    """Writes what a pip install leaves behind, in a random order with random times and modes."""
    def install(requirements: Path, target: Path) -> None:
        calls.append((requirements, target))
        files = {"pkg/__init__.py": b"x = 1\n", "pkg/_native.cpython-312-aarch64-linux-gnu.so": b"\x7fELF",
                 "pkg/__pycache__/__init__.cpython-312.pyc": os.urandom(16), "single.py": b"",
                 "pkg-1.0.dist-info/METADATA": b"Name: pkg\n", "pkg-1.0.dist-info/RECORD": os.urandom(16),
                 "bin/tool": b"#!/some/build/python\n"}
        for name in random.sample(sorted(files), len(files)):
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(files[name])
            path.chmod(random.choice([0o600, 0o644, 0o755]))
            os.utime(path, (random.randint(10**9, 2 * 10**9),) * 2)
    return install


def test_layer_builds_are_deterministic_and_a_warm_cache_never_runs_pip(tmp_path: Path) -> None:
    calls: list[tuple[Path, Path]] = []
    first = build_layer(cache_dir=tmp_path / "a", installer=fake_pip(calls))
    second = build_layer(cache_dir=tmp_path / "b", installer=fake_pip(calls))
    assert first.path.read_bytes() == second.path.read_bytes()
    assert [info.filename for info in entries(first)] == [
        "python/pkg-1.0.dist-info/METADATA", "python/pkg/__init__.py",
        "python/pkg/_native.cpython-312-aarch64-linux-gnu.so", "python/single.py"]
    assert_normalized(first)
    assert calls[0][0] == packaging.REQUIREMENTS and not calls[0][1].exists(), "the build dir is temporary"

    def no_pip(requirements: Path, target: Path) -> None:
        raise AssertionError("pip ran with a warm cache")

    assert build_layer(cache_dir=tmp_path / "a", installer=no_pip) == first
    assert not [p for p in (tmp_path / "a").iterdir() if p != first.path], "no leftovers in the cache"


def test_the_layer_cache_follows_the_requirements_and_the_environment_override(tmp_path, monkeypatch) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(packaging.REQUIREMENTS.read_text())
    monkeypatch.setenv(packaging.CACHE_ENV, str(tmp_path / "cache"))
    first = build_layer(requirements=requirements, installer=fake_pip([]))
    assert first.path.parent == tmp_path / "cache"
    requirements.write_text(requirements.read_text() + "\n# bumped\n")
    calls: list[tuple[Path, Path]] = []
    second = build_layer(requirements=requirements, installer=fake_pip(calls))
    assert len(calls) == 1 and second.path != first.path


def test_the_pip_command_targets_lambda_arm64_python312_with_hashes(monkeypatch, tmp_path) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(packaging.subprocess, "run",
                        lambda args, **_: seen.append(args) or subprocess.CompletedProcess(args, 0, "", ""))
    packaging.pip_install(packaging.REQUIREMENTS, tmp_path / "site")
    [args] = seen
    joined = " ".join(args)
    for part in ("--only-binary=:all:", "--platform manylinux_2_28_aarch64", "--platform manylinux2014_aarch64",
                 "--python-version 3.12", "--implementation cp", "--require-hashes", "--no-deps", "--no-compile",
                 f"--target {tmp_path / 'site'}"):
        assert part in joined


def test_an_offline_first_synth_prints_one_line_and_writes_nothing(tmp_path: Path) -> None:
    """No layer in the cache and the package index unreachable (a closed loopback port)."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=f"http://127.0.0.1:{closed.getsockname()[1]}/simple",
               PIP_RETRIES="0", **{packaging.CACHE_ENV: str(tmp_path / "cache")})
    try:
        proc = subprocess.run([sys.executable, str(packaging.PROJECT_ROOT / "main.py"), "dev",
                               "--outdir", str(tmp_path / "cdktf.out")], cwd=packaging.PROJECT_ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
    finally:
        closed.close()
    assert proc.returncode == 2 and proc.stdout == ""
    [line] = proc.stderr.splitlines()
    assert line.startswith("build error, nothing synthesized: the functions' layer is not in the build cache")
    assert "package index" in line and "No matching distribution found" in line
    assert "Fix: run `python -m modules.parts.packaging` where PyPI is reachable" in line
    assert f"set {packaging.CACHE_ENV}=DIR" in line
    assert not (tmp_path / "cdktf.out").exists()
    assert list((tmp_path / "cache").iterdir()) == []  # no half-built layer either


def test_the_fill_command_builds_every_package_into_the_cache(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(packaging, "pip_install", fake_pip([]))
    assert packaging.main(["--cache-dir", str(tmp_path)]) == 0
    printed = dict(line.split(": ") for line in capsys.readouterr().out.splitlines())
    assert list(printed) == ["layer", *FUNCTIONS]
    assert all(Path(path).parent == tmp_path and Path(path).is_file() for path in printed.values())

    def offline(requirements: Path, target: Path) -> None:
        raise packaging.BuildError("offline")

    monkeypatch.setattr(packaging, "pip_install", offline)
    assert {name: str(p.path) for name, p in packaging.build_all(tmp_path).items()} == printed  # served from cache
    assert packaging.main(["--cache-dir", str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err.startswith("packaging: the functions' layer is not in the build cache")


def requirements() -> dict[str, str]:
    text = packaging.REQUIREMENTS.read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", text, re.M))
    blocks = re.split(r"\n(?=[A-Za-z])", text.split("\n\n", 1)[1].strip())
    assert len(blocks) == len(pins) and all(re.search(r"--hash=sha256:[0-9a-f]{64}", b) for b in blocks)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins.items()}


def test_requirements_are_pinned_with_hashes_and_leave_boto_to_the_runtime() -> None:
    pins = requirements()
    assert {"aws-lambda-powertools", "aws-xray-sdk", "pyjwt", "cryptography", "redis"} <= set(pins)
    assert not set(pins) & RUNTIME_PROVIDED


@pytest.mark.skipif(os.environ.get("LLM_PLATFORM_NETWORK_TESTS") != "1",
                    reason="builds the real layer from PyPI; set LLM_PLATFORM_NETWORK_TESTS=1")
def test_the_real_layer_is_reproducible_complete_and_for_arm64(tmp_path: Path) -> None:
    first, second = (build_layer(cache_dir=tmp_path / name) for name in ("a", "b"))
    assert first.path.read_bytes() == second.path.read_bytes()
    assert_normalized(first)
    with zipfile.ZipFile(first.path) as archive:
        names = archive.namelist()
        so = archive.read(next(n for n in names if n.startswith("python/cryptography/") and n.endswith(".so")))
        assert so[:4] == b"\x7fELF" and int.from_bytes(so[18:20], "little") == 183  # EM_AARCH64
        metadata = {n: Parser().parsestr(archive.read(n).decode()) for n in names if n.endswith(".dist-info/METADATA")}
    installed = {re.sub(r"[-_.]+", "-", m["Name"]).lower(): m["Version"] for m in metadata.values()}
    assert installed == requirements()
    from packaging.requirements import Requirement
    target = {"python_version": "3.12", "python_full_version": "3.12.8", "implementation_name": "cpython",
              "platform_python_implementation": "CPython", "sys_platform": "linux", "platform_system": "Linux",
              "platform_machine": "aarch64", "os_name": "posix", "extra": ""}
    for m in metadata.values():
        for line in m.get_all("Requires-Dist") or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(target):
                name = re.sub(r"[-_.]+", "-", requirement.name).lower()
                assert name in installed or name in RUNTIME_PROVIDED, f"{m['Name']} needs {name}"
