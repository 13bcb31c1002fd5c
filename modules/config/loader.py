"""Loading: TOML → strict models → cross-field rules, every problem reported at once.

Pydantic reports every type, range, enum and unknown-key error of a file, but builds no
model then, so the cross-field rules would see nothing. They run instead on a partial view
of what did parse (`_Partial`): a rule that reads a field which failed is skipped (that
field's own error is already reported), every other rule still runs.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from modules.config.models import REGION_AZS, Account, Accounts, Environment, Section
from modules.config.rules import Problem, Unparsed, check

ENVIRONMENTS_DIR = Path(__file__).resolve().parent.parent.parent / "environments"
CONFIG_FILE = "environment.toml"
# The AWS accounts the environments deploy to, beside their folders (one `account-<name>` stack each).
ACCOUNTS_FILE = "accounts.toml"


class ConfigError(Exception):
    """Invalid environments: every problem with its environment, file, field, rule and fix."""

    def __init__(self, problems: list[tuple[str, Path, Problem]]) -> None:
        self.problems = problems
        super().__init__("\n".join(describe(env, path, p) for env, path, p in problems))

    @property
    def counted(self) -> str:
        """`3 problems`, or `5 problems in 2 environments`."""
        count, envs = len(self.problems), len({env for env, _, _ in self.problems})
        return f"{count} problem{'s' * (count != 1)}" + (f" in {envs} environments" if envs > 1 else "")


def describe(environment: str, path: Path, problem: Problem) -> str:
    """One line: environment, file, field as written, what is wrong, the rule and the fix."""
    rule = f" Rule: {problem.rule}." if problem.rule else ""
    subject = "accounts" if path.name == ACCOUNTS_FILE else f"environment '{environment}'"
    return f"{subject} ({_shown(path)}): {problem.where}: {problem.message}{rule} Fix: {problem.fix}"


def _shown(path: Path) -> str:
    """The file relative to the working directory when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def available_environments(root: Path = ENVIRONMENTS_DIR) -> list[str]:
    return sorted(p.parent.name for p in root.glob(f"*/{CONFIG_FILE}"))


def load_accounts(root: Path = ENVIRONMENTS_DIR) -> dict[str, Account]:
    """`accounts.toml`: the accounts by name; ConfigError listing every problem of the file."""
    path = root / ACCOUNTS_FILE
    accounts, problems = _validate_accounts(path)
    if problems:
        raise ConfigError([("accounts", path, p) for p in problems])
    return accounts


def _validate_accounts(path: Path) -> tuple[dict[str, Account], list[Problem]]:
    if not path.is_file():
        return {}, [Problem("(file)", f"{path} does not exist.", 'create it with one [accounts.<name>] table per '
                            'AWS account: id, region, repository ("<org>/<repo>").', rule="one accounts.toml")]
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        return {}, [Problem("(file)", f"is not valid TOML ({err}).", "correct the TOML syntax.", rule="TOML syntax")]
    try:
        accounts = Accounts.model_validate(raw).accounts
    except ValidationError as err:
        return {}, [Problem(_field(e["loc"]), f"{e['msg']} (got {e.get('input')!r}).",
                            "write an [accounts.<name>] table with only id (12 digits in quotes), region, "
                            "repository and autoscaling_role.", rule="account fields") for e in err.errors()]
    problems, seen = [], {}
    for name, account in accounts.items():
        if account.id in seen:
            problems.append(Problem(f"accounts.{name}.id", f"{account.id} is also account '{seen[account.id]}'.",
                                    "declare each AWS account once; point both environments at that name's id.",
                                    rule="one entry per AWS account"))
        seen.setdefault(account.id, name)
        if account.region not in REGION_AZS:
            problems.append(Problem(f"accounts.{name}.region", f"{account.region!r} is not a supported region.",
                                    f"use one of: {', '.join(REGION_AZS)}.", rule="supported regions"))
    return accounts, problems


def account_of(env: Environment, accounts: dict[str, Account]) -> str:
    """The name of the account `env` deploys to (validated to exist by the loader)."""
    return next(name for name, account in accounts.items() if account.id == env.account_id)


def accounts_of(envs: list[Environment], root: Path = ENVIRONMENTS_DIR) -> dict[str, tuple[Account, list[Environment]]]:
    """The accounts `envs` deploy to, each with EVERY environment of `root` deployed to it
    (its stack holds a role pair per environment: one left out would be destroyed)."""
    accounts = load_accounts(root)
    used = {account_of(env, accounts) for env in envs}
    members = load_environments(available_environments(root), root) if used else []
    return {name: (accounts[name], [e for e in members if e.account_id == accounts[name].id]) for name in sorted(used)}


def load_environment(name: str, root: Path = ENVIRONMENTS_DIR) -> Environment:
    path = root / name / CONFIG_FILE
    env, problems = _validate(name, path, root)
    if problems:
        raise ConfigError([(name, path, p) for p in problems])
    assert env is not None
    return env


def load_environments(names: list[str], root: Path = ENVIRONMENTS_DIR) -> list[Environment]:
    """Load and validate all `names`; raise one ConfigError listing every problem of every one."""
    envs, problems = [], []
    try:
        load_accounts(root)
    except ConfigError as err:
        problems += err.problems
    for name in names:
        try:
            envs.append(load_environment(name, root))
        except ConfigError as err:
            problems += err.problems
    if problems:
        raise ConfigError(problems)
    return envs


def _validate(name: str, path: Path, root: Path) -> tuple[Environment | None, list[Problem]]:
    if not path.is_file():
        known = ", ".join(available_environments(root)) or "none"
        return None, [Problem("(file)", f"{path} does not exist.", f"create it, or pick one of: {known}.",
                              rule="one environment.toml per environment folder")]
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        return None, [Problem("(file)", f"is not valid TOML ({err}).", "correct the TOML syntax.", rule="TOML syntax")]
    problems = []
    if "name" in raw:
        problems.append(Problem("name", "is set in the file.", "remove it; the folder name is the environment name.",
                                rule="the folder names the environment"))
    raw = {**raw, "name": name}
    problems += _unknown_account(raw.get("account_id"), root)
    try:
        env = Environment.model_validate(raw)
    except ValidationError as err:
        errors = err.errors()
        problems += [_problem_from_pydantic(e) for e in errors]
        # Unknown keys count too: the section holding one is read field by field.
        failed = {tuple(e["loc"]) for e in errors}
        problems += check(_Partial(Environment, raw, (), frozenset(failed)))  # type: ignore[arg-type]
        return None, sorted(problems, key=_section_order)
    problems += check(env)
    return (None if problems else env), sorted(problems, key=_section_order)


def _unknown_account(account_id: object, root: Path) -> list[Problem]:
    """An environment deploys to an account of accounts.toml (whose own problems load_environments reports)."""
    try:
        accounts = load_accounts(root)
    except ConfigError:
        return []
    if not isinstance(account_id, str) or account_id in {a.id for a in accounts.values()}:
        return []  # a missing or mistyped id has its own problem
    known = ", ".join(f"{n} ({a.id})" for n, a in accounts.items()) or "none"
    return [Problem("account_id", f"{account_id} is not an account of {_shown(root / ACCOUNTS_FILE)}.",
                    f"add an [accounts.<name>] table with this id, or use one of: {known}.",
                    rule="environments deploy to declared accounts")]


def _section_order(problem: Problem) -> int:
    """Problems grouped by section, in the order of the file's sections (stable within one)."""
    order = list(Environment.model_fields)
    head = re.split(r"[.\[ ]", problem.field, maxsplit=1)[0]
    return order.index(head) if head in order else -1


# --- what did parse --------------------------------------------------------------------------

class _Partial:
    """A section that failed to validate, read field by field: a field that failed (or holds
    one that failed) raises Unparsed; every other field is validated alone and returned as
    the model would hold it (sub-sections that hold a failure are partial in turn)."""

    def __init__(self, model: type[Section], raw: dict[str, Any], loc: tuple[Any, ...],
                 failed: frozenset[tuple[Any, ...]]) -> None:
        self._model, self._raw, self._loc, self._failed = model, raw, loc, failed

    def __getattr__(self, name: str) -> Any:
        field = self._model.model_fields.get(name)
        if field is None:
            method = getattr(self._model, name)  # a model's method, bound to this view
            return method.__get__(self) if callable(method) else method
        loc = self._loc + (name,)
        if name not in self._raw:
            if field.is_required():
                raise Unparsed(loc)
            return field.get_default(call_default_factory=True)
        return _view(self._model, name, field.annotation, self._raw[name], loc, self._failed)


def _view(model: type[Section], name: str, annotation: Any, value: Any, loc: tuple[Any, ...],
          failed: frozenset[tuple[Any, ...]]) -> Any:
    below = [f for f in failed if f[:len(loc)] == loc]
    if not below:
        return _one_field(model, name).model_validate({"value": value}).value
    if loc in below:
        raise Unparsed(loc)
    section = _section_of(annotation)
    if section is not None and isinstance(value, dict):
        return _Partial(section, value, loc, failed)
    origin, args = get_origin(annotation), get_args(annotation)
    item = _section_of(args[-1]) if args else None
    if origin is list and item is not None and isinstance(value, list):
        return [_Partial(item, v, loc + (i,), failed) if (loc + (i,)) not in failed and isinstance(v, dict)
                else _raise(loc + (i,)) for i, v in enumerate(value)]
    if origin is dict and item is not None and isinstance(value, dict):
        return {k: _Partial(item, v, loc + (k,), failed) if (loc + (k,)) not in failed and isinstance(v, dict)
                else _raise(loc + (k,)) for k, v in value.items()}
    raise Unparsed(loc)  # a list or table of plain values with a bad item: the whole value is unknown


def _raise(loc: tuple[Any, ...]) -> Any:
    raise Unparsed(loc)


def _section_of(annotation: Any) -> type[Section] | None:
    """The section model an annotation holds (`Capacity`, `Backend | None`), if any."""
    if get_origin(annotation) in (Union, UnionType):
        return next((s for a in get_args(annotation) if (s := _section_of(a))), None)
    return annotation if isinstance(annotation, type) and issubclass(annotation, Section) else None


@cache
def _one_field(model: type[Section], name: str) -> type[BaseModel]:
    """A model of the single field `model.name`, with its type, constraints and strictness."""
    field = model.model_fields[name]
    return create_model(f"{model.__name__}_{name}", __config__=ConfigDict(strict=True, arbitrary_types_allowed=True),
                        value=(field.annotation, field))


# --- pydantic's errors, said for environment.toml --------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _field(loc: Iterable[Any]) -> str:
    """The dotted path as written in TOML: `gateway.models[1].rpm`, `tags."cost center"`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = part if _BARE_KEY.match(part) else f'"{part}"'
            out += f".{key}" if out else key
    return out or "(top level)"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The section model that owns the last element of `loc` (for 'did you mean')."""
    model: type[BaseModel] = Environment
    keyed = False  # inside a table of sections (observability.overrides): the next part is a key
    for part in loc[:-1]:
        if isinstance(part, int) or keyed:
            keyed = False
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        section = _section_of(annotation)
        if section is None:
            args = get_args(annotation)
            section = _section_of(args[-1]) if args else None
            keyed = get_origin(annotation) is dict
        if section is None:
            return None
        model = section
    return model


def _problem_from_pydantic(error: dict[str, Any]) -> Problem:
    loc, kind, ctx = tuple(error["loc"]), error["type"], error.get("ctx", {})
    if loc == ("name",):
        return Problem("(folder name)", f"{error['input']!r} is not a valid environment name.",
                       "rename the folder: 2 to 21 characters, lower-case letters, digits and '-', a letter first.",
                       rule="environment names")
    field = _field(loc)
    if kind == "extra_forbidden":
        model = _model_at(loc)
        allowed = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return Problem(field, "is not a known key.", f"{hint}remove it or use one of: {', '.join(allowed)}.",
                       rule="known keys only")
    if kind == "missing":
        return Problem(field, "is required.", "add it to environment.toml.", rule="required keys")
    if kind == "literal_error":
        return Problem(field, f"{error['input']!r} is not allowed.", f"use one of {ctx.get('expected', '')}.",
                       rule="allowed values")
    got = f" (got {error.get('input')!r})"
    if kind in _RANGES:
        return Problem(field, f"{error['msg']}{got}.", _RANGES[kind].format(**ctx), rule="value ranges")
    if kind == "cidr_host_bits":
        return Problem(field, f"{error['msg']}.", f"write the range's first address: \"{ctx['network']}\".",
                       rule="value formats")
    if kind == "string_pattern_mismatch":
        return Problem(field, f"{error['msg']}{got}.", f"write a value matching {ctx.get('pattern')}.",
                       rule="value formats")
    fix = _TYPE_FIXES.get(kind, "correct the value in environment.toml.")
    return Problem(field, f"{error['msg']}{got}.", fix, rule="strict types")


# Strict types: say how to write the value in TOML.
_TYPE_FIXES = {
    "int_type": "write a whole number without quotes (e.g. 1024, not \"1024\").",
    "bool_type": "write true or false without quotes.",
    "string_type": "write the value in double quotes.",
    "list_type": "write a list in brackets, e.g. [\"a\", \"b\"].",
    "float_type": "write a number without quotes.",
    "float_parsing": "write a number without quotes.",
    "dict_type": "write a table: a [section] or { key = value }.",
    "model_type": "write a table: a [section] or { key = value }.",
    "ip_v4_network": "write an IPv4 range in CIDR notation, e.g. \"10.1.0.0/16\".",
}
_RANGES = {
    "greater_than_equal": "use a value of at least {ge}.",
    "greater_than": "use a value above {gt}.",
    "less_than_equal": "use a value of at most {le}.",
    "less_than": "use a value below {lt}.",
}
