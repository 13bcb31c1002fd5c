"""Saved Logs Insights queries: every field a query reads exists in real samples of its log.

The samples (tests/fixtures/logs/, sources in SOURCES.md) are read as CloudWatch Logs holds
them: one event per line (a continuation line starting with a tab belongs to the event
before it, as in PostgreSQL's multi-line DETAIL), JSON events flattened as Logs Insights
discovers their fields (`httpRequest.clientIp`, `ruleGroupList.0.terminatingRule.ruleId`).
Each query's `filter` and `parse` commands run on the samples (a small interpreter of the
forms the queries use); at least one event must come through, and every field the later
commands name must then be known.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import Stack
from modules.catalogue.alarms import CATALOGUE
from modules.catalogue.queries import BY_PATH, QUERIES, SOURCES

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
SAMPLE_FILES = {"waf": "waf.jsonl", "proxy": "proxy.log", "postgresql": "postgresql.log", "worker": "worker.jsonl"}
KEYWORDS = {"like", "as", "by", "desc", "asc", "and", "or", "not", "in"}
Event = dict[str, Any]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flatten(item, f"{prefix}{key}.").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in flatten(item, f"{prefix}{i}.").items()}
    return {prefix[:-1]: value}


def events(source: str) -> list[Event]:
    lines: list[str] = []
    for line in (FIXTURES / SAMPLE_FILES[source]).read_text().splitlines():
        if line.startswith("\t") and lines:
            lines[-1] += "\n" + line
        elif line:
            lines.append(line)
    result = []
    for line in lines:
        event: Event = {"@message": line, "@timestamp": 0}
        if line.startswith("{"):
            event.update(flatten(json.loads(line)))
        result.append(event)
    return result


def any_index(name: str) -> str:
    """`ruleGroupList.2.terminatingRule.ruleId` is the field of the sample's `….0.…`: which
    element of a list holds it varies per request."""
    return re.sub(r"\.\d+\.", ".N.", name)


def commands(query: str) -> list[str]:
    return [part.strip() for part in query.split("\n| ")]


def python_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern.replace("(?<", "(?P<"))


def glob_regex(pattern: str) -> re.Pattern[str]:
    parts = [re.escape(p) for p in pattern.split("*")]
    return re.compile("(.*?)".join(parts[:-1]) + "(.*)" + parts[-1] if len(parts) > 1 else parts[0])


def matches(expression: str, event: Event) -> bool:
    """The filter forms the queries use: `a or b`, `f like /re/`, `f like "text"`, `f = "v"`,
    `ispresent(f)`. Anything else is an error, so a new form is taught here first."""
    if " or " in expression:
        return any(matches(part, event) for part in expression.split(" or "))
    if found := re.fullmatch(r"(\S+) like /(.*)/", expression):
        return bool(re.search(found[2], str(event.get(found[1], ""))))
    if found := re.fullmatch(r'(\S+) like "(.*)"', expression):
        return found[2].replace('\\"', '"') in str(event.get(found[1], ""))
    if found := re.fullmatch(r'(\S+) = "(.*)"', expression):
        return found[1] in event and str(event[found[1]]) == found[2]
    if found := re.fullmatch(r"ispresent\((\S+)\)", expression):
        return event.get(found[1]) is not None
    raise AssertionError(f"filter form not understood: {expression}")


def parse(command: str, event: Event) -> Event | None:
    if found := re.fullmatch(r"parse (\S+) /(.*)/", command):
        hit = python_regex(found[2]).search(str(event.get(found[1], "")))
        return {**event, **hit.groupdict()} if hit else None
    found = re.fullmatch(r'parse (\S+) "(.*)" as (.*)', command)
    assert found, f"parse form not understood: {command}"
    hit = glob_regex(found[2]).search(str(event.get(found[1], "")))
    names = [n.strip() for n in found[3].split(",")]
    return {**event, **dict(zip(names, hit.groups()))} if hit else None


def names_read(command: str) -> set[str]:
    """Field names a fields/stats/sort/display command reads (functions, aliases, literals out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', " ", command.split(" ", 1)[1] if " " in command else "")
    text = re.sub(r"(?<![\w.])\d+[a-z]*\b", " ", text)
    aliases = set(re.findall(r"\bas ([A-Za-z_][\w]*)", text))
    tokens = set(re.findall(r"@?[A-Za-z_][\w.]*(?!\w|\()", text)) - set(re.findall(r"([A-Za-z_]\w*)\(", text))
    return {t for t in tokens if t not in KEYWORDS} - aliases


def run(query: str, source: str) -> tuple[list[Event], set[str]]:
    """The events that pass the query's filters and parses, and the names the rest reads."""
    passing, rest = events(source), []
    for command in commands(query):
        verb = command.split(" ", 1)[0]
        if verb == "filter":
            passing = [e for e in passing if matches(command.removeprefix("filter "), e)]
        elif verb == "parse":
            passing = [p for e in passing if (p := parse(command, e)) is not None]
        else:
            rest.append(command)
    aliases = {a for command in rest for a in re.findall(r"\bas ([A-Za-z_]\w*)", command)}
    return passing, {name for command in rest for name in names_read(command)} - aliases


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.path)
def test_every_field_a_query_reads_is_in_a_real_sample_of_its_log(query) -> None:
    passing, read = run(query.query, query.source)
    assert passing, f"{query.path}: no sample event passes its filters and parses"
    known = {any_index(k) for e in passing for k in e}
    missing = {name for name in read if any_index(name) not in known}
    assert not missing, f"{query.path}: reads {sorted(missing)}, absent from every sample that passes"


def test_a_query_on_a_misspelt_field_fails_the_check() -> None:
    """The check itself: a WAF field Logs Insights would not find is reported."""
    _, read = run('filter action = "BLOCK"\n| stats count(*) as n by httpRequest.clientIP', "waf")
    known = set().union(*(e.keys() for e in events("waf")))
    assert read - known == {"httpRequest.clientIP"}
    passing, _ = run('filter @message like "user_api_key_auth(): Exception occurred - "', "proxy")
    assert passing == []  # LiteLLM writes "occured": the misspelling is theirs, kept in the query


def test_each_sample_line_of_a_query_is_the_format_it_expects() -> None:
    """The slow-query and deadlock samples carry what the queries extract."""
    slow, _ = run(BY_PATH["postgresql/slow-queries"].query, "postgresql")
    assert [(e["user"], e["db"], e["durationMs"]) for e in slow] == [("litellm_admin", "litellm", "1202.569")]
    deadlocks, _ = run(BY_PATH["postgresql/deadlocks"].query, "postgresql")
    assert {e["severity"] for e in deadlocks} == {"ERROR", "DETAIL"}
    refused, _ = run(BY_PATH["proxy/budget-exceeded"].query, "proxy")
    assert sorted(e["owner"] for e in refused) == ["Key=team-search", "User=alice@example.com"]


def test_every_alarm_names_saved_queries_that_exist() -> None:
    named = {path for spec in CATALOGUE for path in spec.queries}
    assert named <= set(BY_PATH)
    # Every query helps at least one alarm's first action.
    assert set(BY_PATH) <= named
    assert {q.source for q in QUERIES} == set(SOURCES)


@pytest.mark.parametrize("env, waf_in_cloudwatch", [("dev", True), ("prod", False), ("prod-us", True)])
def test_queries_are_saved_per_environment_scoped_to_their_log_groups(stacks, env: str,
                                                                      waf_in_cloudwatch: bool) -> None:
    stack: Stack = stacks[f"{env}-observability"]
    saved = {q["name"]: q for q in stack.resources("aws_cloudwatch_query_definition").values()}
    expected = {f"llmlite-{env}/{q.path}" for q in QUERIES if waf_in_cloudwatch or q.source != "waf"}
    assert set(saved) == expected
    for query in QUERIES:
        definition = saved.get(f"llmlite-{env}/{query.path}")
        if definition is None:
            continue
        assert definition["query_string"] == query.query
        [group] = definition["log_group_names"]
        assert {"waf": group == f"aws-waf-logs-llmlite-{env}-waf",
                "proxy": "gateway_log_group" in group,
                "postgresql": group.startswith("/aws/rds/instance/${") and group.endswith("/postgresql"),
                "worker": group.startswith("/aws/lambda/${") and "worker" in group}[query.source], group
