"""Loading: TOML → strict models → cross-field rules, every problem reported at once."""

from __future__ import annotations

import copy
import difflib
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from modules.config.models import Environment
from modules.config.rules import Problem, check

ENVIRONMENTS_DIR = Path(__file__).resolve().parent.parent.parent / "environments"
CONFIG_FILE = "environment.toml"


class ConfigError(Exception):
    """Invalid environments: every problem with its environment, field and fix."""

    def __init__(self, problems: list[tuple[str, Problem]]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"environment '{env}': {p.field}: {p.message} Fix: {p.fix}"
                                   for env, p in problems))


def _invalid(environment: str, *problems: Problem) -> ConfigError:
    return ConfigError([(environment, p) for p in problems])



def available_environments(root: Path = ENVIRONMENTS_DIR) -> list[str]:
    return sorted(p.parent.name for p in root.glob(f"*/{CONFIG_FILE}"))


def load_environment(name: str, root: Path = ENVIRONMENTS_DIR) -> Environment:
    path = root / name / CONFIG_FILE
    if not path.is_file():
        known = ", ".join(available_environments(root)) or "none"
        raise _invalid(name, Problem("(file)", f"{path} does not exist.", f"create it, or pick one of: {known}."))
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise _invalid(name, Problem("(file)", f"{path} is not valid TOML ({err}).",
                                     "correct the TOML syntax.")) from None
    if "name" in raw:
        raise _invalid(name, Problem("name", "is set in the file.",
                                     "remove it; the folder name is the environment name."))
    raw = {**raw, "name": name}
    try:
        env = Environment.model_validate(raw)
    except ValidationError as err:
        errors = err.errors()
        problems = [_problem_from_pydantic(e) for e in errors]
        # A typo must not hide the rest: without the unknown keys, the cross-field rules can
        # still run (when nothing else is wrong with the types).
        unknown = [e["loc"] for e in errors if e["type"] == "extra_forbidden"]
        if len(unknown) == len(errors):
            problems += check(Environment.model_validate(_without(raw, unknown)))
        raise _invalid(name, *problems) from None
    problems = list(check(env))
    if problems:
        raise _invalid(name, *problems)
    return env


def _without(raw: dict[str, Any], locations: list[tuple[Any, ...]]) -> dict[str, Any]:
    """A deep copy of `raw` with the keys at `locations` removed."""
    cleaned = copy.deepcopy(raw)
    for loc in locations:
        parent: Any = cleaned
        for part in loc[:-1]:
            parent = parent[part]
        parent.pop(loc[-1], None)
    return cleaned


def load_environments(names: list[str], root: Path = ENVIRONMENTS_DIR) -> list[Environment]:
    """Load and validate all `names`; raise one ConfigError listing every problem of every one."""
    envs, problems = [], []
    for name in names:
        try:
            envs.append(load_environment(name, root))
        except ConfigError as err:
            problems += err.problems
    if problems:
        raise ConfigError(problems)
    return envs


def _field(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The section model that owns the last element of `loc` (for 'did you mean')."""
    model: Any = Environment
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        model = next((a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return None
    return model


def _problem_from_pydantic(error: dict[str, Any]) -> Problem:
    loc, kind = error["loc"], error["type"]
    field = _field(loc)
    if kind == "extra_forbidden":
        model = _model_at(loc)
        allowed = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return Problem(field, "is not a known key.",
                       f"{hint}remove it or use one of: {', '.join(allowed)}.")
    if kind == "missing":
        return Problem(field, "is required.", "add it to environment.toml.")
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return Problem(field, f"{error['input']!r} is not allowed.", f"use one of {expected}.")
    fix = _TYPE_FIXES.get(kind, "correct the value in environment.toml.")
    return Problem(field, f"{error['msg']} (got {error.get('input')!r}).", fix)


# Strict types: say how to write the value in TOML.
_TYPE_FIXES = {
    "int_type": "write a whole number without quotes (e.g. 1024, not \"1024\").",
    "bool_type": "write true or false without quotes.",
    "string_type": "write the value in double quotes.",
    "list_type": "write a list in brackets, e.g. [\"a\", \"b\"].",
}


