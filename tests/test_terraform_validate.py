"""`terraform validate` of every stack of every environment, terraform-modules/ and examples/.

Runs against the local provider mirror (the synth's `>= 6` constraint rewritten for it, see
modules/rehearsal/rewrite.py); started in the background by conftest's `terraform_validation`.
"""

from __future__ import annotations

import pytest


def test_every_stack_module_and_example_is_valid_terraform(terraform_validation, stacks) -> None:
    terraform_validation.join(timeout=600)
    if terraform_validation.skip_reason:
        pytest.skip(f"terraform validate not run: {terraform_validation.skip_reason}")
    assert not terraform_validation.is_alive(), "terraform validate did not finish within 10 minutes"
    assert terraform_validation.errors == []
    validated = (terraform_validation.work / "main.tf.json").read_text()
    assert all(f"./stacks/{name}" in validated for name in stacks) and "./examples/complete" in validated \
        and "./examples/minimal" in validated
