"""Module versions: a change to a module's interface cannot land without a major version."""

from __future__ import annotations

import json

import pytest

from modules.tools import release

RELEASED = {"network": {"variables": {"project": False, "kms_key_arn": True}, "outputs": {"vpc_id": True}}}
CHANGELOG_1 = "# Changelog\n\n## [Unreleased]\n\n## [1.0.0] - 2026-12-04\n"
CHANGELOG_2 = "# Changelog\n\n## [Unreleased]\n\n## [2.0.0] - 2026-12-10\n\n## [1.0.0] - 2026-12-04\n"
RECORD = {"version": "1.0.0", "modules": RELEASED}


def changed(**network: dict) -> dict:
    return {"network": {**RELEASED["network"], **network}}


@pytest.mark.parametrize("current, breaking", [
    (changed(outputs={"vpc": True}), "network: output vpc_id removed or renamed"),
    (changed(variables={"project": False}), "network: variable kms_key_arn removed or renamed"),
    (changed(variables={**RELEASED["network"]["variables"], "cidr": True}), "network: new required variable cidr"),
    (changed(variables={"project": True, "kms_key_arn": True}), "network: new required variable project"),
    ({}, "module network removed"),
])
def test_a_breaking_change_needs_a_major_version_entry(current: dict, breaking: str) -> None:
    (problem,) = release.problems(CHANGELOG_1, RECORD, current)
    assert problem.startswith(breaking) and "## [2.0.0]" in problem
    assert release.problems(CHANGELOG_2, RECORD, current) == []


def test_additions_with_defaults_are_not_breaking() -> None:
    current = changed(variables={**RELEASED["network"]["variables"], "cidr": False},
                      outputs={"vpc_id": True, "vpc_cidr": True})
    assert release.breaking_changes(RELEASED, current) == []
    assert release.problems(CHANGELOG_1, RECORD, current) == []


def test_the_committed_modules_keep_their_recorded_interface() -> None:
    """Fails when a module's interface breaks without a new major version in CHANGELOG.md."""
    record = json.loads(release.RECORD.read_text())
    assert release.problems(release.CHANGELOG.read_text(), record, release.interface()) == []
    recorded = tuple(int(part) for part in record["version"].split("."))
    assert recorded <= release.newest_version(release.CHANGELOG.read_text())


def test_the_changelog_names_its_versions_newest_first() -> None:
    assert release.newest_version(CHANGELOG_2) == (2, 0, 0)
    with pytest.raises(ValueError, match="no released version"):
        release.newest_version("# Changelog\n\n## [Unreleased]\n")


def test_a_missing_record_or_version_is_one_clear_line(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(release, "RECORD", tmp_path / "interface.json")
    assert release.main([]) == 2
    assert "python -m modules.tools.release --record" in capsys.readouterr().err
    monkeypatch.setattr(release, "CHANGELOG", tmp_path / "CHANGELOG.md")
    (tmp_path / "CHANGELOG.md").write_text("# Changelog\n\n## [Unreleased]\n")
    assert release.main(["--record"]) == 2
    assert "no released version" in capsys.readouterr().err
    assert not (tmp_path / "interface.json").exists()
