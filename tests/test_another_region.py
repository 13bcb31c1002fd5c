"""examples/another-region: a team's sandbox in ap-southeast-2 across three zones, from the
exported modules by variables only. Its `terraform test` plans the whole root against moto,
then applies the foundation and network modules as the sandbox sets them (deletion
protection off, one NAT gateway) and destroys them: it fails if anything refuses."""

from __future__ import annotations

from pathlib import Path

import hcl2
import pytest

from modules.rehearsal import terraform as tf
from modules.rehearsal.validate import run_example_test

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "another-region"


def test_the_sandbox_is_in_another_region_across_three_zones_without_protection() -> None:
    root = hcl2.loads((EXAMPLE / "main.tf").read_text())
    provider = root["provider"][0]["aws"]
    calls = {name: body for block in root["module"] for name, body in block.items()}
    assert _value(provider["region"]) == "ap-southeast-2"
    assert _value(calls["network"]["availability_zones"]) == ["ap-southeast-2a", "ap-southeast-2b", "ap-southeast-2c"]
    assert all(_value(call["deletion_protection"]) is False for call in calls.values())
    assert _value(calls["edge"]["certificate_arn"]).startswith("arn:aws:acm:ap-southeast-2:")


def _value(value):  # type: ignore[no-untyped-def]
    """The HCL parser wraps attribute values in one-element lists."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


@pytest.mark.pipeline_rehearsal  # minutes: CI's rehearsal step runs it
def test_the_sandbox_plans_applies_and_destroys_against_the_emulator(tmp_path: Path) -> None:
    try:
        toolchain = tf.find_toolchain()
    except tf.ToolError as err:  # only a missing Terraform or mirror skips
        pytest.skip(str(err))
    failed = run_example_test("another-region", tmp_path, toolchain)
    assert failed == "", failed[-4000:]
