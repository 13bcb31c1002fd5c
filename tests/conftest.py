"""Shared fixtures: synthesize every environment once per session; tests read the JSON.

Synthesis happens in-process through the fast provider path (a few seconds); the
compliance gate runs once over the same output.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from modules.config import accounts_of, available_environments, load_environments  # noqa: E402

ENVIRONMENTS = available_environments()


class Stack:
    """One synthesized `cdk.tf.json`, with small query helpers."""

    def __init__(self, name: str, doc: dict[str, Any]) -> None:
        self.name, self.doc = name, doc

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return self.doc.get("resource", {}).get(type_, {})

    def one(self, type_: str) -> dict[str, Any]:
        found = self.resources(type_)
        assert len(found) == 1, f"{self.name}: expected one {type_}, found {sorted(found)}"
        return next(iter(found.values()))

    def ref(self, type_: str, logical_id: str, attr: str = "id") -> str:
        return f"${{{type_}.{logical_id}.{attr}}}"


# A synth output to test instead of synthesizing one (tests/test_new_environment.py runs the
# environment tests on its scratch copy's synth this way).
REUSE_SYNTH = "LLM_PLATFORM_TEST_SYNTH"


@pytest.fixture(scope="session")
def synth_outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's synth output: `manifest.json` and `stacks/<stack>/cdk.tf.json`."""
    if os.environ.get(REUSE_SYNTH):
        return Path(os.environ[REUSE_SYNTH])
    from modules.engine.app import build_app  # the engine only where a synth is made (scripts import this file)
    outdir = tmp_path_factory.mktemp("cdktf.out")
    envs = load_environments(ENVIRONMENTS)
    build_app(envs, outdir=str(outdir), accounts=accounts_of(envs)).synth()
    return outdir


@pytest.fixture(scope="session")
def synth_dir(synth_outdir: Path) -> Path:
    return synth_outdir / "stacks"


@pytest.fixture(scope="session")
def stacks(synth_dir: Path) -> dict[str, Stack]:
    """The environments' stacks (`<env>-<layer>`); the accounts' are `account_stacks`."""
    return {p.parent.name: Stack(p.parent.name, json.loads(p.read_text()))
            for p in sorted(synth_dir.glob("*/cdk.tf.json")) if not p.parent.name.startswith("account-")}


@pytest.fixture(scope="session")
def account_stacks(synth_dir: Path) -> dict[str, Stack]:
    """`account-<name>`: each AWS account's singletons and pipeline roles."""
    return {p.parent.name: Stack(p.parent.name, json.loads(p.read_text()))
            for p in sorted(synth_dir.glob("account-*/cdk.tf.json"))}


@pytest.fixture(scope="session")
def gate(synth_outdir: Path, tmp_path_factory: pytest.TempPathFactory):
    from policies.gate import run_gate
    report_dir = tmp_path_factory.mktemp("compliance-report")
    return run_gate(synth_outdir, report_dir), report_dir


BACKGROUND_NICENESS = 10
WAITING_FILES = ("test_module_tests.py", "test_terraform_validate.py")


def yield_to_the_tests() -> None:
    """Lower this thread's priority (Linux: per thread, inherited by the threads and processes it
    starts), so background Terraform runs take the cores the tests leave idle."""
    if hasattr(os, "setpriority"):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)


PIPELINE_REHEARSAL = "pipeline_rehearsal"  # applies to moto (the pipeline's commands, an example, the proxy): minutes


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--pipeline-rehearsal", action="store_true",
                     help="also run the pipeline's plan/guard/apply against moto (the README's test command does)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{PIPELINE_REHEARSAL}: applies real plans to Terraform and moto (the "
                            "pipeline's commands, the another-region example) or starts the real LiteLLM proxy; "
                            "run with --pipeline-rehearsal, as CI's rehearsal step")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests that wait for the background runs go last, giving those runs the whole session;
    the pipeline's rehearsal runs only when asked (it applies real plans: minutes)."""
    items.sort(key=lambda item: Path(str(item.fspath)).name in WAITING_FILES)
    if not config.getoption("--pipeline-rehearsal"):
        later = pytest.mark.skip(reason="the pipeline's rehearsal: pytest --pipeline-rehearsal -m pipeline_rehearsal")
        for item in items:
            if PIPELINE_REHEARSAL in item.keywords:
                item.add_marker(later)


class BackgroundValidation(threading.Thread):
    """`terraform validate` of every stack, exported module and example, run beside the other tests.

    It takes ~20 s of one core (the provider's schema, every resource checked); started
    as soon as the synth exists, its test only waits for the answer."""

    def __init__(self, synth_dir: Path, work: Path) -> None:
        super().__init__(name="terraform-validate", daemon=True)
        self.synth_dir, self.work = synth_dir, work
        self.errors: list[str] = []
        self.skip_reason = ""
        self.seconds = 0.0

    def run(self) -> None:
        from modules.rehearsal.terraform import ToolError, find_toolchain
        from modules.rehearsal.validate import validate_all
        yield_to_the_tests()
        started = time.monotonic()
        try:
            toolchain = find_toolchain()
        except ToolError as err:  # only a missing Terraform or mirror skips
            self.skip_reason = str(err)
            return
        try:
            self.errors = validate_all(self.synth_dir, self.work, toolchain)
        except ToolError as err:  # e.g. init refusing the configuration: a failure, not a skip
            self.errors = [str(err)]
        self.seconds = time.monotonic() - started


class BackgroundModuleTests(threading.Thread):
    """`terraform test` of the exported modules, and of a copy of the network's with one
    promise broken (it must fail), run beside the other tests."""

    def __init__(self, work: Path) -> None:
        super().__init__(name="terraform-test", daemon=True)
        self.work = work
        self.results: dict[str, str] = {}
        self.broken: dict[str, str] = {}
        self.skip_reason = ""

    def run(self) -> None:
        from modules.rehearsal.terraform import ToolError, find_toolchain
        from modules.rehearsal.validate import run_module_tests
        yield_to_the_tests()
        modules = ROOT / "terraform-modules"
        broken = self.work / "project" / "terraform-modules" / "network"
        shutil.copytree(modules / "network", broken)
        tests = broken / "tests" / "network.tftest.hcl"
        # Only the file's head and first run (the one whose promise is broken): fewer plans.
        head = tests.read_text().split('\nrun "')[:2]
        tests.write_text('\nrun "'.join(head).replace('"/vpc/acme-staging-flow-logs"', '"/vpc/somebody-else"'))
        try:
            toolchain = find_toolchain()
        except ToolError as err:  # only a missing Terraform or mirror skips
            self.skip_reason = str(err)
            return
        try:
            self.results = run_module_tests(self.work / "modules", toolchain)
            self.broken = run_module_tests(self.work / "broken", toolchain, self.work / "project")
        except ToolError as err:  # a module that cannot even init fails its test
            self.results = {"(all)": str(err)}


@pytest.fixture(scope="session", autouse=True)
def module_tests(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Starts the background `terraform test` runs when tests/test_module_tests.py is selected."""
    if not any(Path(str(item.fspath)).name == "test_module_tests.py" for item in request.session.items):
        yield None
        return
    job = BackgroundModuleTests(tmp_path_factory.mktemp("module-tests"))
    job.start()
    yield job
    job.join()


@pytest.fixture(scope="session", autouse=True)
def terraform_validation(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Starts the background validation when tests/test_terraform_validate.py is selected."""
    if not any(Path(str(item.fspath)).name == "test_terraform_validate.py" for item in request.session.items):
        yield None
        return
    job = BackgroundValidation(request.getfixturevalue("synth_dir"), tmp_path_factory.mktemp("validate"))
    job.start()
    yield job
    job.join()


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """moto's server on loopback (in this process, on its own thread), one per test module."""
    from moto.server import ThreadedMotoServer

    from modules.rehearsal.emulator import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
