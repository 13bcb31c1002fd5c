"""Parallel and cached synthesis (modules/engine/synth.py) write exactly what one serial synth writes.

The session's synth (`synth_outdir`) is the serial, uncached path: one app, one process, type
checks on. The parallel path (one worker per environment, type checks off) and the cached path
(an environment's output copied from `.build/synth/`) must produce the same files, byte for
byte, manifest and function assets included."""

from __future__ import annotations

import shutil
from pathlib import Path

from modules.config import available_environments
from modules.engine.synth import environment_key, library_key, synthesize, unit_key

ROOT = Path(__file__).resolve().parent.parent


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_parallel_synth_is_byte_identical_to_the_serial_one(synth_outdir: Path, tmp_path: Path) -> None:
    names = [*available_environments(), "account-dev", "account-prod"]  # accounts are units of their own
    assert len(names) >= 2
    outcome = synthesize(names, ROOT / "environments", tmp_path / "out", jobs=2, cache_dir=None, type_checks=False)
    assert outcome.synthesized == names and outcome.cached == [] and outcome.type_checked is False
    parallel, serial = tree(tmp_path / "out"), tree(synth_outdir)
    assert sorted(parallel) == sorted(serial)
    assert [path for path in serial if parallel[path] != serial[path]] == []


def test_an_unchanged_environment_comes_from_the_cache_and_an_edited_one_is_rebuilt(tmp_path: Path) -> None:
    environments = tmp_path / "environments"
    for name in ("dev", "prod"):
        shutil.copytree(ROOT / "environments" / name, environments / name)
    shutil.copy(ROOT / "environments" / "accounts.toml", environments / "accounts.toml")
    cache, out = tmp_path / "cache", tmp_path / "out"

    def run(**kwargs):
        return synthesize(["dev", "prod"], environments, out, jobs=2, cache_dir=cache, **kwargs)

    first = run()
    assert (first.synthesized, first.cached) == (["dev", "prod"], [])
    fresh = tree(out)
    shutil.rmtree(out)
    again = run()
    assert (again.synthesized, again.cached) == ([], ["dev", "prod"])
    assert tree(out) == fresh
    config = environments / "dev" / "environment.toml"
    config.write_text(config.read_text().replace('Owner = "platform-team"', 'Owner = "platform-team-b"', 1))
    edited = run()
    assert (edited.synthesized, edited.cached) == (["dev"], ["prod"])
    changed = {path.split("/")[1] for path, data in tree(out).items() if fresh.get(path) != data and "/" in path}
    assert changed and all(stack.startswith("dev-") for stack in changed)
    assembled = tree(out)  # prod from the cache, dev rebuilt
    assert sorted(p.name.rsplit("-", 1)[0] for p in cache.iterdir() if not p.name.startswith(".")) == ["dev", "prod"]
    damaged = next(p for p in cache.iterdir() if p.name.startswith("prod-"))
    (damaged / "manifest.json").unlink()  # a damaged entry is a miss, rebuilt
    repaired = run()
    assert (repaired.synthesized, repaired.cached) == (["prod"], ["dev"])
    assert tree(out) == assembled  # prod synthesized afresh is byte for byte the cached prod
    forced = synthesize(["dev"], environments, out, jobs=1, cache_dir=cache, force=True)
    assert (forced.synthesized, forced.cached) == (["dev"], [])
    dev_stacks = {path: data for path, data in assembled.items() if path.startswith("stacks/dev-")}
    assert dev_stacks and {path: tree(out)[path] for path in dev_stacks} == dev_stacks


def test_the_key_follows_the_environments_files_and_the_engines_settings(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "dev"
    shutil.copytree(ROOT / "environments" / "dev", folder)
    before = environment_key(folder)
    try:
        monkeypatch.setenv("SYNTH_HCL_OUTPUT", "true")  # cdktn then writes HCL: another output
        library_key.cache_clear()
        assert environment_key(folder) != before
        monkeypatch.delenv("SYNTH_HCL_OUTPUT")
        monkeypatch.setenv("CDKTF_OUTDIR", str(tmp_path / "elsewhere"))  # only where, not what
        library_key.cache_clear()
        assert environment_key(folder) == before
    finally:
        library_key.cache_clear()
    (folder / "environment.toml").write_text((folder / "environment.toml").read_text() + "\n")
    assert environment_key(folder) != before


def test_an_accounts_key_follows_the_accounts_file_and_every_environment_folder(tmp_path: Path) -> None:
    """An account's stack holds a role pair per environment of the account: any environment's
    file may change it, and so may accounts.toml."""
    environments = tmp_path / "environments"
    shutil.copytree(ROOT / "environments" / "dev", environments / "dev")
    shutil.copy(ROOT / "environments" / "accounts.toml", environments / "accounts.toml")
    before = unit_key(environments, "account-dev")
    assert unit_key(environments, "dev") == environment_key(environments / "dev")
    accounts = environments / "accounts.toml"
    accounts.write_text(accounts.read_text() + "\n")
    after_accounts = unit_key(environments, "account-dev")
    assert after_accounts != before
    shutil.copytree(ROOT / "environments" / "prod", environments / "prod")
    assert unit_key(environments, "account-dev") != after_accounts
