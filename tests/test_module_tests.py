"""`terraform test` of the exported modules (their tests/*.tftest.hcl), with a mocked AWS
provider from the local mirror: inputs produce the resources they promise, bad inputs fail
their validation at plan."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modules.rehearsal import terraform as tf
from modules.rehearsal.validate import run_module_tests

MODULES = Path(__file__).resolve().parent.parent / "terraform-modules"


def test_every_module_test_passes(tmp_path: Path) -> None:
    try:
        toolchain = tf.find_toolchain()
    except tf.ToolError as missing:
        pytest.skip(f"terraform test not run: {missing}")
    results = run_module_tests(tmp_path, toolchain)
    assert sorted(results) == sorted(p.parent.name for p in MODULES.glob("*/tests"))
    assert {module: output for module, output in results.items() if output} == {}


def test_a_broken_promise_fails_the_module_tests(tmp_path: Path) -> None:
    try:
        toolchain = tf.find_toolchain()
    except tf.ToolError as missing:
        pytest.skip(f"terraform test not run: {missing}")
    project = tmp_path / "project"
    shutil.copytree(MODULES / "network", project / "terraform-modules" / "network")
    tests = project / "terraform-modules" / "network" / "tests" / "network.tftest.hcl"
    tests.write_text(tests.read_text().replace('"/vpc/acme-staging-flow-logs"', '"/vpc/somebody-else"'))
    results = run_module_tests(tmp_path / "work", toolchain, project)
    assert "The flow log group is not named after project and environment." in results["network"]
