"""`terraform test` of the exported modules (their tests/*.tftest.hcl), with the AWS provider
from the local mirror, mocked or (for modules with an ephemeral resource, which 1.11's mocks
refuse) planning against an emulator on loopback: inputs produce the resources they promise,
bad inputs fail their validation at plan. The runs start beside the other tests (conftest's
`module_tests`)."""

from __future__ import annotations

from pathlib import Path

import pytest

MODULES = Path(__file__).resolve().parent.parent / "terraform-modules"


def _finished(module_tests) -> None:  # type: ignore[no-untyped-def]
    module_tests.join(timeout=600)
    if module_tests.skip_reason:
        pytest.skip(f"terraform test not run: {module_tests.skip_reason}")
    assert not module_tests.is_alive(), "terraform test did not finish within 10 minutes"


def test_every_module_test_passes(module_tests) -> None:
    _finished(module_tests)
    assert sorted(module_tests.results) == sorted(p.parent.name for p in MODULES.glob("*/tests"))
    assert {module: output for module, output in module_tests.results.items() if output} == {}


def test_every_exported_module_has_tests() -> None:
    exported = sorted(p.parent.name for p in MODULES.glob("*/main.tf.json"))
    assert sorted(p.parent.name for p in MODULES.glob("*/tests")) == exported


def test_a_broken_promise_fails_the_module_tests(module_tests) -> None:
    """The network's tests, with one asserted name changed, must fail on that assertion."""
    _finished(module_tests)
    assert "The flow log group is not named after project and environment." in module_tests.broken["network"]
