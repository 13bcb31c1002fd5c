"""`terraform validate` of every synthesized stack, the exported modules and their example, in one run.

Each Terraform run starts the 700 MB provider once per provider configuration (~1 s each)
and `init` hashes it, so validating 26 stacks one by one costs minutes. Instead every
stack becomes a child module of one root (validate checks child modules as it checks a
root), with the mirror's provider version and without its backend and default provider
block (the root's stands in; aliased ones stay): one init, one validate, ~20 s.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from modules.rehearsal import terraform as tf
from modules.rehearsal.emulator import MotoServer
from modules.rehearsal.rewrite import close_provider_gap, pin_provider

ROOT = Path(__file__).resolve().parent.parent.parent
EXPORTED_CONSTRAINT = re.compile(r'version\s*=\s*">= 6[^"]*"')
# The exported modules' constraint (modules/tools/export.py, not imported: it loads the bindings).
MODULE_CONSTRAINT = ">= 6.0, < 7.0"
# The account the module tests' fixtures name (arn:aws:…:444455556666:…): the emulator answers as it.
EMULATED_ACCOUNT = "444455556666"


def pinned_module(main_tf_json: str, provider_version: str) -> str:
    """An exported module's main.tf.json requiring the mirror's provider version instead, without
    the arguments that version does not know (the provider gap)."""
    doc = json.loads(main_tf_json.replace(MODULE_CONSTRAINT, provider_version))
    close_provider_gap(doc, provider_version)
    return json.dumps(doc, indent=2)


def build_root(synth_stacks: Path, work: Path, provider_version: str, project: Path = ROOT) -> dict[str, str]:
    """Write the validation root into `work`; returns module name -> what it validates."""
    if work.exists():
        shutil.rmtree(work)
    (work / "stacks").mkdir(parents=True)
    modules: dict[str, str] = {}
    root_provider: dict[str, Any] = {}
    for stack_dir in sorted(p.parent for p in synth_stacks.glob("*/cdk.tf.json")):
        doc = json.loads((stack_dir / "cdk.tf.json").read_text())
        pin_provider(doc, provider_version)
        close_provider_gap(doc, provider_version)
        doc.get("terraform", {}).pop("backend", None)
        # Each stack is a child module here, and Terraform admits `import` and `removed` blocks
        # only in a root module (init fails on them); they move state, they declare no resource.
        for root_only in ("import", "removed"):
            doc.pop(root_only, None)
        providers = doc.get("provider", {}).get("aws", [])
        root_provider = root_provider or next((p for p in providers if "alias" not in p), {})
        aliased = [p for p in providers if "alias" in p]
        if aliased:
            doc["provider"]["aws"] = aliased
        else:
            doc.pop("provider", None)
        copy = work / "stacks" / stack_dir.name
        copy.mkdir()
        (copy / "main.tf.json").write_text(json.dumps(doc))
        if (stack_dir / "assets").is_dir():
            (copy / "assets").symlink_to(stack_dir / "assets")
        modules[f"stack_{stack_dir.name.replace('-', '_')}"] = f"stack {stack_dir.name}"
    for module_dir in sorted(p.parent for p in (project / "terraform-modules").glob("*/main.tf.json")):
        copy = work / "terraform-modules" / module_dir.name
        copy.mkdir(parents=True)
        text = pinned_module((module_dir / "main.tf.json").read_text(), provider_version)
        (copy / "main.tf.json").write_text(text)
        if (module_dir / "assets").is_dir():
            (copy / "assets").symlink_to(module_dir / "assets")
    for example_dir in sorted((project / "examples").glob("*/")):
        example = work / "examples" / example_dir.name
        example.mkdir(parents=True)
        for tf_file in example_dir.glob("*.tf"):
            text = EXPORTED_CONSTRAINT.sub(f'version = "{provider_version}"', tf_file.read_text())
            # A child module's backend is ignored anyway; dropping it keeps the output free of warnings.
            text = re.sub(r'\n  backend "[a-z0-9]+" \{.*?\n  \}\n', "\n", text, flags=re.S)
            (example / tf_file.name).write_text(text)
        modules[f"example_{example_dir.name}"] = f"examples/{example_dir.name}"
    root = {"terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": provider_version}}},
            "provider": {"aws": [root_provider or {"region": "eu-west-2"}]},
            "module": {name: {"source": f"./stacks/{what.split()[1]}" if what.startswith("stack ") else
                              f"./{what}"} for name, what in modules.items()}}
    (work / "main.tf.json").write_text(json.dumps(root, indent=1))
    return modules


def validate_all(synth_stacks: Path, work: Path, toolchain: tf.Toolchain | None = None) -> list[str]:
    """Every validation error (empty when all is valid). Raises ToolError when a tool is missing."""
    toolchain = toolchain or tf.find_toolchain()
    build_root(synth_stacks, work, toolchain.provider_version)
    cli_config = tf.write_cli_config(work / "terraform.rc", toolchain.mirror)
    log = work / "terraform.log"
    tf.init(toolchain, cli_config, work, log, backend=False)
    done = tf.run(toolchain, cli_config, ["validate"], work, log, timeout=600)
    return [] if done.returncode == 0 else tf.errors(done.stdout + done.stderr) or [tf.first_error(done.stderr)]


def run_module_tests(work: Path, toolchain: tf.Toolchain | None = None, project: Path = ROOT) -> dict[str, str]:
    """`terraform test` of every exported module that has tests, each in a copy pinned to the
    mirror's provider version, one per core at a time: module -> output of a failed run ('' when
    it passed). Tests with a mocked provider never call AWS; the others (modules holding an
    ephemeral resource, which 1.11's mocks refuse) plan against an emulator on loopback."""
    toolchain = toolchain or tf.find_toolchain()
    work.mkdir(parents=True, exist_ok=True)
    cli_config = tf.write_cli_config(work / "terraform.rc", toolchain.mirror)
    files = sorted((project / "terraform-modules").glob("*/tests/*.tftest.hcl"))
    if all('mock_provider "aws"' in file.read_text() for file in files):
        return _test_modules(work, toolchain, cli_config, project, {})
    with MotoServer(EMULATED_ACCOUNT, work / "moto.log") as server:
        return _test_modules(work, toolchain, cli_config, project, {"AWS_ENDPOINT_URL": server.url})


def _test_modules(work: Path, toolchain: tf.Toolchain, cli_config: Path, project: Path,
                  emulator: dict[str, str]) -> dict[str, str]:

    def test(module: Path) -> str:
        copy = work / module.name
        shutil.copytree(module, copy, dirs_exist_ok=True)
        main = copy / "main.tf.json"
        main.write_text(pinned_module(main.read_text(), toolchain.provider_version))
        log = work / f"{module.name}.log"
        tf.init(toolchain, cli_config, copy, log, backend=False)
        done = tf.run(toolchain, cli_config, ["test"], copy, log, timeout=600, extra_env=emulator)
        return "" if done.returncode == 0 else done.stdout + done.stderr

    modules = [tests.parent for tests in sorted((project / "terraform-modules").glob("*/tests"))]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return dict(zip((m.name for m in modules), pool.map(test, modules)))


def run_example_test(example: str, work: Path, toolchain: tf.Toolchain | None = None, project: Path = ROOT) -> str:
    """`terraform test` of `examples/<example>` against an emulator on loopback, with the
    exported modules it sources pinned to the mirror's provider version: the output of a
    failed run ('' when it passed)."""
    toolchain = toolchain or tf.find_toolchain()
    for module_dir in sorted(p.parent for p in (project / "terraform-modules").glob("*/main.tf.json")):
        copy = work / "terraform-modules" / module_dir.name
        copy.mkdir(parents=True)
        (copy / "main.tf.json").write_text(pinned_module((module_dir / "main.tf.json").read_text(),
                                                         toolchain.provider_version))
        if (module_dir / "assets").is_dir():
            (copy / "assets").symlink_to(module_dir / "assets")
    root = work / "examples" / example
    shutil.copytree(project / "examples" / example, root)
    for tf_file in root.glob("*.tf"):
        tf_file.write_text(EXPORTED_CONSTRAINT.sub(f'version = "{toolchain.provider_version}"', tf_file.read_text()))
    cli_config = tf.write_cli_config(work / "terraform.rc", toolchain.mirror)
    log = work / f"{example}.log"
    tf.init(toolchain, cli_config, root, log, backend=False)
    with MotoServer(EMULATED_ACCOUNT, work / "moto.log") as server:
        done = tf.run(toolchain, cli_config, ["test"], root, log, timeout=1200,
                      extra_env={"AWS_ENDPOINT_URL": server.url, "AWS_ACCESS_KEY_ID": "test",
                                 "AWS_SECRET_ACCESS_KEY": "test"})
    return "" if done.returncode == 0 else done.stdout + done.stderr
