"""The configuration keys the pinned LiteLLM reads, extracted from its own source.

LiteLLM ignores a key it does not know (a misspelt `database_conection_pool_limit` leaves the
pool at its default), so the tests check every key the gateway renders against this list.
Tests cannot download; the list is committed (tests/litellm_config_keys.json) and refreshed
with the image pin:

    pip download litellm==<version of gateway.image> --no-deps -d /tmp/litellm-src
    unzip -q /tmp/litellm-src/litellm-*.whl -d /tmp/litellm-src/x
    python -m modules.tools.litellm_keys /tmp/litellm-src/x/litellm --write
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

OUTPUT = Path(__file__).resolve().parents[2] / "tests" / "litellm_config_keys.json"


def _classes(root: Path) -> dict[str, ast.ClassDef]:
    """Every class in the package by name (later definitions of a name are ignored)."""
    found: dict[str, ast.ClassDef] = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, node)
    return found


def _fields(classes: dict[str, ast.ClassDef], name: str) -> set[str]:
    """A pydantic/TypedDict class's annotated fields, with those of the bases it inherits."""
    cls = classes[name]
    names = {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id in classes:
            names |= _fields(classes, base.id)
    return names


def _init_args(path: Path, name: str) -> set[str]:
    cls = next(n for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
               if isinstance(n, ast.ClassDef) and n.name == name)
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    return {a.arg for a in init.args.args + init.args.kwonlyargs} - {"self"}


def _module_names(path: Path) -> set[str]:
    """Names a module defines or imports at top level: what `setattr(litellm, key, …)` feeds."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom):
            names |= {a.asname or a.name for a in node.names}
    return names


def _strings_in(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _function(path: Path, name: str) -> ast.AST:
    return next(n for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name)


GENERAL_READ = re.compile(r"general_settings(?:\.get\(|\[)\s*\"([a-z_0-9]+)\"")
DB_ERROR = re.compile(r"(DB transport error|Prisma DB reconnect failed)")
# The Redis client arguments LiteLLM passes through to redis-py (its allowlist in _redis.py).
REDIS_ARG = re.compile(r"socket_[a-z_]+|ssl[a-z_]*|password|username|max_connections|health_check_interval")


def extract(root: Path) -> dict[str, object]:
    """The accepted keys of each part of the proxy's config, as LiteLLM's source reads them."""
    classes = _classes(root)
    proxy = root / "proxy" / "proxy_server.py"
    general = _fields(classes, "ConfigGeneralSettings")
    for path in root.rglob("*.py"):
        general |= set(GENERAL_READ.findall(path.read_text(encoding="utf-8")))
    # load_config special-cases some litellm_settings keys; every other key is setattr on the module.
    load_config = _function(proxy, "load_config")
    special = {c.comparators[0].value for c in ast.walk(load_config)
               if isinstance(c, ast.Compare) and isinstance(c.left, ast.Name) and c.left.id == "key"
               and isinstance(c.comparators[0], ast.Constant)}
    managed = _strings_in(next(n for n in ast.parse((root / "constants.py").read_text(encoding="utf-8")).body
                               if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "")
                               == "ROUTER_SETTINGS_MANAGED_OUTSIDE_CONFIG"))
    # Redis client arguments LiteLLM passes through (its allowlist in _redis.py) beside Cache's own.
    redis_args = {s for s in _strings_in(ast.parse((root / "_redis.py").read_text(encoding="utf-8")))
                  if REDIS_ARG.fullmatch(s)}
    key_defaults = _strings_in(_function(root / "proxy" / "management_endpoints" / "key_management_endpoints.py",
                                         "_common_key_generation_helper"))
    # The proxy's log lines when a database call fails (the proxy-db-errors alarm matches them).
    db_messages = {m for path in (root / "proxy" / "db" / "exception_handler.py", root / "proxy" / "utils.py")
                   for m in _strings_in(ast.parse(path.read_text(encoding="utf-8"))) if DB_ERROR.match(m)}
    return {
        "db_error_messages": sorted(db_messages),
        "top_level": sorted(_fields(classes, "ConfigYAML")),
        "general_settings": sorted(general),
        "litellm_settings": sorted(_module_names(root / "__init__.py") | {k for k in special if isinstance(k, str)}),
        "router_settings": sorted(_init_args(root / "router.py", "Router") - managed),
        "cache_params": sorted((_init_args(root / "caching" / "caching.py", "Cache") | redis_args) - {"kwargs"}),
        "litellm_params": sorted(_fields(classes, "LiteLLM_Params")),
        "model_info": sorted(_fields(classes, "ModelInfo")),
        "upperbound_key_generate_params": sorted(_fields(classes, "LiteLLM_UpperboundKeyGenerateParams")),
        "default_key_generate_params": sorted(
            _fields(classes, "LiteLLM_UpperboundKeyGenerateParams") | ({"models", "metadata"} & key_defaults)),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m modules.tools.litellm_keys", description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="the unpacked wheel's litellm/ package directory")
    parser.add_argument("--write", action="store_true", help=f"rewrite {OUTPUT.name} instead of printing the keys")
    args = parser.parse_args(argv)
    root = args.source
    version = re.search(r"^Version: (\S+)$", next(root.parent.glob("litellm-*.dist-info/METADATA")).read_text(
        encoding="utf-8"), re.MULTILINE)
    keys = {"litellm_version": version.group(1) if version else "unknown", **extract(root)}
    text = json.dumps(keys, indent=1, sort_keys=True) + "\n"
    if args.write:
        OUTPUT.write_text(text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
