"""Checkov skips declared on the construct that owns the resource.

A skip is `{check id: reason}` recorded in the resource's `//` metadata of the synthesized
JSON, so the reason travels with the artifact that is scanned. Checkov's terraform_json
runner ignores inline skips; the compliance gate (`policies/gate.py`) reads this
key, matches skips to failures, and reports each one with its reason.
"""

from __future__ import annotations

import re

from cdktn import TerraformResource

SKIP_KEY = "checkov_skip"
_CHECK_ID = re.compile(r"^CKV2?_[A-Z0-9]+_\d+$")


def skip(resource: TerraformResource, check_id: str, reason: str) -> None:
    """Record that `check_id` does not apply to `resource`, and why."""
    if not _CHECK_ID.match(check_id):
        raise ValueError(f"{check_id!r} is not a Checkov check id (e.g. CKV_AWS_18)")
    if len(reason.split()) < 5 or not reason.rstrip().endswith("."):
        raise ValueError(f"skip of {check_id} needs a reason of at least a sentence, got {reason!r}")
    resource.add_override(f"//.{SKIP_KEY}.{check_id}", reason)
