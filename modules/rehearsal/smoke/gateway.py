"""The gateway smoke: the real LiteLLM proxy (the image's version, from PyPI, in its own virtual
environment under .build/smoke/) started with the configuration and environment the proxy task
definition in state renders, its secrets read from the emulator as ECS reads them (JSON keys
included), Redis over TLS (`redis-server`) and a stand-in upstream for the self-hosted route.

The database is a throwaway PostgreSQL with TLS (`PostgresTls`), made as RDS makes it from the
data stack's instance and its managed master secret; the task's own start script builds
DATABASE_URL from DB_* and that URL must log in over TLS as the secret's user. The migration
task's own command then applies LiteLLM's schema (`prisma migrate deploy`, prisma.py: the real
engines where they can be downloaded, stand-ins offline). The serving proxy gets the DATABASE_URL
its task's script builds and Prisma's client generated as the image bakes it: then a virtual key
with a small budget is made through the admin API, a completion with it is charged, the batch
writer records its spend in PostgreSQL and the next request with it is refused (README).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlsplit

from modules.rehearsal.emulator import free_port
from modules.rehearsal.smoke import prisma
from modules.rehearsal.smoke.deployment import Deployment, SmokeFailure, SmokeStep, installing
from modules.rehearsal.smoke.standins import Authority, ModelServer, PostgresTls, RedisTls, StandInError

PREFIX = "gateway: "
CONTAINER = "litellm"
MIGRATION_SUFFIX = "-proxy-migrate"
ROOT = Path(__file__).resolve().parents[3]
VENVS = ROOT / ".build" / "smoke"
START_SECONDS = 180
SPEND_SECONDS = 45  # the proxy writes spend every PROXY_BATCH_WRITE_AT (10 s) plus 0-5 s of jitter
# Below one completion's cost (10 stand-in tokens at the route's price), so one request spends it.
KEY_BUDGET = 1e-6
KEY_ALIAS = "rehearsal-smoke"
MIGRATED = 'select count(finished_at), count(*) from "_prisma_migrations"'
# `litellm[proxy]==1.108.11` cannot be installed as such: its extra pins litellm-enterprise
# 0.1.79.post2, which is not on PyPI. The extra's requirements, spelled out, with the one that is.
PROXY_REQUIREMENTS = {"1.108.11": (
    "litellm==1.108.11", "gunicorn>=23.0.0,<24.0", "uvicorn>=0.33.0,<1.0", "granian>=2.7.4,<3.0",
    "uvloop>=0.22.1,<1.0", "fastapi>=0.136.3,<1.0", "starlette>=1.0.1,<2.0", "backoff>=2.2.1,<3.0",
    "pyyaml>=6.0.3,<7.0", "rq>=2.7.0,<3.0", "orjson>=3.11.6,<4.0", "hiredis>=3.0.0,<4.0", "apscheduler>=3.11.2,<4.0",
    "fastapi-sso>=0.19.0,<1.0", "pyjwt>=2.13.0,<3.0", "python-multipart>=0.0.27,<1.0", "cryptography>=49.0.0,<51.0",
    "pynacl>=1.6.2,<2.0", "websockets>=15.0.1,<16.0", "boto3>=1.43.117,<2.0", "azure-identity>=1.25.2,<2.0",
    "azure-storage-blob>=12.28.0,<13.0", "mcp>=2.3.0,<3", "httpx2>=2.10.0,<3", "pydantic>=2.12.0,<3",
    "litellm-proxy-extras==0.4.110", "litellm-enterprise==0.1.79.post1", "restrictedpython>=8.5,<9.0",
    "rich>=13.9.4,<14.0", "inquirerpy>=0.3.4,<1.0", "tomlkit>=0.13.3,<1.0", "polars>=1.38.1,<2.0",
    "soundfile>=0.12.1,<1.0", "pyroscope-io>=0.8.16,<1.0", "expression>=5.6.0,<6.0", "prisma>=0.11.0,<1.0")}


@dataclass(frozen=True)
class Task:
    """The proxy's container as its task definition in state has it."""

    image: str
    environment: dict[str, str]
    secrets: dict[str, str]  # name -> valueFrom
    command: list[str]

    @property
    def litellm_version(self) -> str:
        found = re.search(r":v?(\d+\.\d+\.\d+)", self.image)
        if not found:
            raise SmokeFailure(f"no LiteLLM version in the image {self.image}")
        return found.group(1)

    @property
    def config(self) -> dict[str, Any]:
        return dict(json.loads(self.environment["LITELLM_CONFIG_YAML"]))


def proxy_task(deployment: Deployment, migration: bool = False) -> Task:
    """The serving task's container, or the one-off migration task's (`…-proxy-migrate`)."""
    tasks = [v for v in deployment.resources("gateway", "aws_ecs_task_definition")
             if str(v.get("family", "")).endswith(MIGRATION_SUFFIX) == migration]
    if len(tasks) != 1:
        kind = "migration" if migration else "proxy"
        raise SmokeFailure(f"expected one {kind} task definition in {deployment.stack('gateway')}, found {len(tasks)}")
    containers = [c for c in json.loads(tasks[0]["container_definitions"]) if c.get("name") == CONTAINER]
    if len(containers) != 1:
        raise SmokeFailure(f"the proxy task has no container named {CONTAINER}")
    container = containers[0]
    return Task(image=container["image"], command=[*container.get("entryPoint", []), *container.get("command", [])],
                environment={e["name"]: e["value"] for e in container.get("environment", [])},
                secrets={s["name"]: s["valueFrom"] for s in container.get("secrets", [])})


def secret_value(client: Any, name: str, value_from: str) -> str:
    """What ECS puts into `name`: the secret's string, or one JSON key of it
    (valueFrom `arn:aws:secretsmanager:region:account:secret:id[:json-key[:version-stage[:version-id]]]`)."""
    parts = value_from.split(":")
    arn, extra = ":".join(parts[:7]), parts[7:] + ["", "", ""]
    json_key, stage, version = extra[0], extra[1], extra[2]
    request: dict[str, str] = {"SecretId": arn}
    if stage:
        request["VersionStage"] = stage
    if version:
        request["VersionId"] = version
    try:
        text = str(client.get_secret_value(**request)["SecretString"])
    except Exception as err:  # the task would not start: ECS names the secret it could not read
        raise SmokeFailure(f"{name}: cannot read {arn}: {type(err).__name__}: {err}") from None
    if not json_key:
        return text
    try:
        document = json.loads(text)
    except ValueError:
        raise SmokeFailure(f"{name}: {arn} is not JSON, but valueFrom asks for its key {json_key!r}") from None
    if not isinstance(document, dict) or json_key not in document:
        keys = sorted(document) if isinstance(document, dict) else []
        raise SmokeFailure(f"{name}: {arn} has no JSON key {json_key!r} (it has {keys})")
    return str(document[json_key])


def venv(version: str, directory: Path = VENVS) -> Path:
    """The proxy's own virtual environment (made once per version from PyPI): its bin directory."""
    if version not in PROXY_REQUIREMENTS:
        raise SmokeFailure(f"the image's LiteLLM {version} has no spelled-out requirements in "
                           f"modules/rehearsal/smoke/gateway.py (known: {', '.join(PROXY_REQUIREMENTS)})")
    root = directory / f"litellm-{version}"
    done = root / ".installed"
    with installing(root):
        if not done.is_file():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True)
            installed = subprocess.run([str(root / "bin" / "pip"), "install", "-q", *PROXY_REQUIREMENTS[version]],
                                       capture_output=True, text=True, check=False)
            if installed.returncode != 0:
                raise SmokeFailure(f"pip install of LiteLLM {version} failed: {installed.stderr.strip()[-400:]}")
            done.write_text("\n".join(PROXY_REQUIREMENTS[version]) + "\n")
    return root / "bin"


def database(deployment: Deployment, client: Any, authority: Authority) -> PostgresTls:
    """PostgreSQL as RDS creates it: the instance's database, its master credentials from the
    managed secret (keys `username` and `password`, as RDS writes them)."""
    instances = list(deployment.resources("data", "aws_db_instance"))
    if len(instances) != 1:
        raise SmokeFailure(f"expected one aws_db_instance in {deployment.stack('data')}, found {len(instances)}")
    secret = (instances[0].get("master_user_secret") or [{}])[0].get("secret_arn")
    if not secret:
        raise SmokeFailure(f"the database in {deployment.stack('data')} has no managed master secret")
    username = secret_value(client, "the master username", f"{secret}:username::")
    password = secret_value(client, "the master password", f"{secret}:password::")
    return PostgresTls(authority, str(instances[0]["db_name"]), username, password)


def database_url(task: Task, environment: dict[str, str]) -> str:
    """DATABASE_URL as the task's own command builds it: its script up to the export, run by the
    shell it names with the task's environment and secrets (`python3` from the proxy's venv)."""
    script, marker = task.command[-1] if task.command else "", "export DATABASE_URL\n"
    if marker not in script:
        raise SmokeFailure("the proxy task's command does not export DATABASE_URL")
    prefix = script[:script.index(marker) + len(marker)] + 'printf %s "$DATABASE_URL"\n'
    built = subprocess.run([*task.command[:-1], prefix], env=environment, capture_output=True, text=True,
                           check=False)
    if built.returncode != 0 or not built.stdout:
        raise SmokeFailure(f"the task's script did not build DATABASE_URL: {built.stderr.strip()[-300:]}")
    return built.stdout


class Proxy:
    """One run: secrets, stand-ins, the proxy process and what it was given."""

    def __init__(self, deployment: Deployment, task: Task, scratch: Path, authority: Authority,
                 upstream: ModelServer, redis: RedisTls, postgres: PostgresTls, secrets: dict[str, str],
                 bin_dir: Path) -> None:
        self.deployment, self.task, self.scratch, self.authority = deployment, task, scratch, authority
        self.upstream, self.redis, self.postgres = upstream, redis, postgres
        self.secrets, self.bin_dir = secrets, bin_dir
        self.port = free_port()
        self.mapped: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = scratch / "proxy.log"
        self.engines: tuple[dict[str, str], str] | None = None
        self.virtual_key = ""

    def prisma(self) -> tuple[dict[str, str], str]:
        """Prisma's variables (the real engines or the stand-ins) and which, decided once a run."""
        if self.engines is None:
            self.engines = prisma.environment(prisma.install(), prisma.downloadable())
        return self.engines

    def config(self) -> dict[str, Any]:
        """The rendered config with the self-hosted route's upstream host (which must be the llm
        stack's endpoint) on the stand-in."""
        config, endpoint = self.task.config, self.deployment.output("llm", "model_endpoint_url")
        for route in config.get("model_list", []):
            base = route.get("litellm_params", {}).get("api_base")
            if base and str(base).startswith("https://") and urlsplit(base).hostname == urlsplit(endpoint).hostname:
                loopback = str(base).replace(urlsplit(base).netloc, f"127.0.0.1:{self.upstream.port}", 1)
                self.mapped[f"{route['model_name']}.api_base"] = f"{base} -> {loopback}"
                route["litellm_params"]["api_base"] = loopback
        return config

    def environment(self, given: dict[str, str] | None = None) -> dict[str, str]:
        """A task's environment and secrets (the serving task's unless `given`), endpoints on loopback."""
        variables = dict(given) if given is not None else {**self.task.environment, **self.secrets}
        group = next(iter(self.deployment.resources("data", "aws_elasticache_replication_group")), {})
        db = next(iter(self.deployment.resources("data", "aws_db_instance")), {})
        for variable, deployed, loopback in (("REDIS_HOST", group.get("primary_endpoint_address"), "127.0.0.1"),
                                             ("REDIS_PORT", str(group.get("port")), str(self.redis.port)),
                                             ("DB_ENDPOINT", f"{db.get('address')}:{db.get('port')}",
                                              f"127.0.0.1:{self.postgres.port}")):
            if variables.get(variable) != deployed:
                raise SmokeFailure(f"{variable} is {variables.get(variable)!r}, not the deployed {deployed!r}")
            self.mapped[variable] = f"{deployed} -> {loopback}"
            variables[variable] = loopback
        return {"PATH": f"{self.bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(self.scratch),
                "LANG": "C.UTF-8", "SSL_CERT_FILE": str(self.authority.ca), **variables}

    def serving_environment(self) -> dict[str, str]:
        """What the serving task's script execs `litellm` with: its environment and secrets,
        DATABASE_URL as the script builds it, DB_PASSWORD unset as the script unsets it, and
        Prisma's engines."""
        variables = self.environment()
        url = database_url(self.task, variables)
        variables.pop("DB_PASSWORD", None)
        return {**variables, "DATABASE_URL": url, **self.prisma()[0]}

    def start(self) -> str:
        config = self.scratch / "litellm-config.yaml"
        config.write_text(json.dumps(self.config()))  # YAML is a superset of JSON
        environment = self.serving_environment()
        # The image runs in /app, which holds LiteLLM's schema.prisma (its start-up schema check reads
        # ./schema.prisma) and the client `prisma generate` baked from it.
        schema = prisma.generate(self.bin_dir.parent, environment, self.prisma()[1])
        shutil.copyfile(schema, self.scratch / "schema.prisma")
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([str(self.bin_dir / "litellm"), "--config", str(config), "--host",
                                             "127.0.0.1", "--port", str(self.port)], stdout=out,
                                            stderr=subprocess.STDOUT, env=environment, cwd=self.scratch)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SmokeFailure(f"the proxy exited ({self.process.returncode}): {redact(self, self.log_tail())}")
            try:
                self.call("GET", "/health/liveliness")
            except (OSError, SmokeFailure):
                time.sleep(1)
                continue
            return (f"LiteLLM {self.task.litellm_version} answers on 127.0.0.1:{self.port}, its database "
                    f"through {self.prisma()[1]}; {schema_check(self)}")
        raise SmokeFailure(f"the proxy did not answer within {START_SECONDS} s: {redact(self, self.log_tail())}")

    def log_tail(self) -> str:
        lines = [line for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        errors = [line for line in lines if re.search(r"Error|Exception|error", line)]
        return " | ".join((errors or lines)[-3:])[-600:]

    def answer(self, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
        """(HTTP status, JSON body) of one request to the proxy."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json",
                                                  **({"Authorization": f"Bearer {key}"} if key else {})})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            text = err.read()
            try:
                return err.code, json.loads(text)
            except ValueError:
                return err.code, text[:300].decode(errors="replace")

    def call(self, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
        status, found = self.answer(method, path, body, key)
        if status != 200:
            raise SmokeFailure(f"{method} {path} answered {status}: {str(found)[:300]}")
        return found

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def redact(proxy: Proxy, text: str) -> str:
    """A tool's output may quote what it was given: never a secret's value in a step's detail."""
    for value in proxy.secrets.values():
        for form in (value, quote(value, safe="")):  # as given, and as DATABASE_URL carries it
            text = text.replace(form, "***") if len(value) > 3 else text
    return text[-500:]


def database_login(proxy: Proxy) -> str:
    url, postgres = database_url(proxy.task, proxy.environment()), proxy.postgres
    found, error = postgres.session(url)
    error = redact(proxy, error)
    if found != f"{postgres.user}|{postgres.database}|t":
        raise SmokeFailure(f"the task's DATABASE_URL did not log in to {postgres.database!r} as the master user "
                           f"over TLS: {error or found!r}")
    return f"logged in to {postgres.database!r} over TLS as the master user ({urlsplit(url).query})"


def own_config_path(command: list[str], scratch: Path) -> list[str]:
    """The task's command writing its config into SCRATCH: a container's /tmp is its own, while
    here environments rehearsed side by side share one host's. (The path is read from the
    script's `--config`: importing the layer for it would load the provider bindings.)"""
    script = command[-1] if command else ""
    named = re.search(r"--config (\S+)", script)
    if named is None:
        raise SmokeFailure("the task's script names no `--config` file")
    return [*command[:-1], script.replace(named[1], str(scratch / "litellm-config-task.yaml"))]


def migrations(proxy: Proxy) -> str:
    """The migration task's own command (its script, `litellm --skip_server_startup`: the proxy's
    `prisma migrate deploy`) must exit 0 with every migration LiteLLM ships recorded as finished."""
    task = proxy_task(proxy.deployment, migration=True)
    client = proxy.deployment.client("secretsmanager", task.environment.get("AWS_REGION", "us-east-1"))
    given = {**task.environment, **{n: secret_value(client, n, v) for n, v in task.secrets.items()}}
    variables, which = proxy.prisma()
    command = own_config_path(task.command, proxy.scratch)
    with (proxy.scratch / "migrate.log").open("ab") as out:
        done = subprocess.run(command, env={**proxy.environment(given), **variables}, cwd=proxy.scratch,
                              stdout=out, stderr=subprocess.STDOUT, timeout=START_SECONDS * 3, check=False)
    shipped = list((proxy.bin_dir.parent / "lib").glob("python3*/site-packages/litellm_proxy_extras/migrations/*/"))
    found, error = proxy.postgres.session(database_url(task, proxy.environment(given)), MIGRATED)
    if done.returncode != 0 or found != f"{len(shipped)}|{len(shipped)}":
        tail = redact(proxy, " | ".join((proxy.scratch / "migrate.log").read_text(errors="replace").splitlines()[-3:]))
        raise SmokeFailure(f"the migration task exited {done.returncode}; migrations finished/recorded "
                           f"{found or error!r} of {len(shipped)} shipped; with {which}: {tail}")
    return f"{len(shipped)} migrations applied by the task's `prisma migrate deploy` with {which}"


def self_hosted_route(proxy: Proxy) -> str:
    routes = [k.split(".")[0] for k in proxy.mapped if k.endswith(".api_base")]
    if not routes:
        raise SmokeFailure("no route of the config goes to the llm stack's model endpoint")
    return routes[0]


def completion(proxy: Proxy) -> str:
    route = self_hosted_route(proxy)
    answer = proxy.call("POST", "/chat/completions", {"model": route, "messages": [
        {"role": "user", "content": "Say hello to the rehearsal."}]}, key=proxy.secrets["LITELLM_MASTER_KEY"])
    content = answer["choices"][0]["message"]["content"]
    calls = proxy.upstream.calls
    if content != "answer: Say hello to the rehearsal." or len(calls) != 1:
        raise SmokeFailure(f"the proxy answered {content!r} after {len(calls)} upstream calls")
    return f"{route}: the upstream was called with the route's key and its answer came back"


def cached(proxy: Proxy) -> str:
    route, key = self_hosted_route(proxy), proxy.secrets["LITELLM_MASTER_KEY"]
    body = {"model": route, "messages": [{"role": "user", "content": "Cache this."}], "cache": {"use-cache": True}}
    first, second = proxy.call("POST", "/chat/completions", body, key), proxy.call("POST", "/chat/completions", body, key)
    asked = [c for c in proxy.upstream.calls if c.body["messages"][-1]["content"] == "Cache this."]
    if len(asked) != 1 or first["choices"][0]["message"] != second["choices"][0]["message"]:
        raise SmokeFailure(f"the repeated request reached the upstream {len(asked)} times: the Redis cache did not answer")
    return f"the repeated request was answered from Redis over TLS ({len(proxy.redis.client().keys('*'))} keys)"


def schema_check(proxy: Proxy) -> str:
    """What the start-up schema check said. With DISABLE_SCHEMA_UPDATE=true (the serving task's)
    the proxy runs `prisma migrate diff` against the database and only logs the result."""
    log = proxy.log.read_text(errors="replace")
    if "Changes to DB Schema detected" in log:
        raise SmokeFailure("the migrated database differs from the proxy's schema: "
                           + redact(proxy, log[log.index("Changes to DB Schema detected"):][:400]))
    if "Failed to generate migration diff" in log:
        said = " ".join(log[log.index("Failed to generate migration diff"):][:400].split())
        if "the stand-in does not implement diff" not in said:
            raise SmokeFailure(f"the start-up schema check failed: {redact(proxy, said)}")
        return "its start-up `prisma migrate diff` check was declined by the stand-in schema engine (logged, ignored)"
    return "its start-up `prisma migrate diff` check found no difference"


def virtual_key(proxy: Proxy) -> str:
    """POST /key/generate with the master key: a key for the self-hosted route with a budget one
    completion exceeds, stored (hashed) in the database."""
    route = self_hosted_route(proxy)
    made = proxy.call("POST", "/key/generate", {"models": [route], "max_budget": KEY_BUDGET, "key_alias": KEY_ALIAS},
                      key=proxy.secrets["LITELLM_MASTER_KEY"])
    key = str(made.get("key") or "")
    if not key.startswith("sk-") or made.get("max_budget") != KEY_BUDGET:
        raise SmokeFailure(f"/key/generate answered no key with max_budget {KEY_BUDGET}: {sorted(made)}")
    proxy.virtual_key = key
    found, error = proxy.postgres.session(proxy.serving_environment()["DATABASE_URL"], (
        f'select max_budget, models from "LiteLLM_VerificationToken" where key_alias = \'{KEY_ALIAS}\''))
    if found != f"{KEY_BUDGET:g}|{{{route}}}":
        raise SmokeFailure(f"the key's row in PostgreSQL is {found or error!r}")
    return f"{KEY_ALIAS}: max_budget {KEY_BUDGET:g} for {route}, its row in LiteLLM_VerificationToken"


def key_completion(proxy: Proxy) -> str:
    route, before = self_hosted_route(proxy), len(proxy.upstream.calls)
    answer = proxy.call("POST", "/chat/completions", {"model": route, "messages": [
        {"role": "user", "content": "Spend the key's budget."}]}, key=proxy.virtual_key)
    content = answer["choices"][0]["message"]["content"]
    if content != "answer: Spend the key's budget." or len(proxy.upstream.calls) != before + 1:
        raise SmokeFailure(f"the proxy answered {content!r} after {len(proxy.upstream.calls) - before} upstream calls")
    return f"{route} answered the virtual key"


def spend_recorded(proxy: Proxy) -> str:
    """The proxy's batch writer puts the key's spend into its row in PostgreSQL (every
    PROXY_BATCH_WRITE_AT, which the task leaves at its default); /key/info reads it back."""
    url, started = proxy.serving_environment()["DATABASE_URL"], time.monotonic()
    query = f'select spend from "LiteLLM_VerificationToken" where key_alias = \'{KEY_ALIAS}\''
    found, error = "", ""
    while time.monotonic() - started < SPEND_SECONDS:
        found, error = proxy.postgres.session(url, query)
        if found and float(found) > KEY_BUDGET:
            break
        time.sleep(2)
    else:
        raise SmokeFailure(f"the key's spend in PostgreSQL was {found or error!r} after {SPEND_SECONDS} s, "
                           f"not over its budget {KEY_BUDGET:g}")
    info = proxy.call("GET", f"/key/info?key={proxy.virtual_key}", key=proxy.secrets["LITELLM_MASTER_KEY"])
    if not math.isclose(float(info.get("info", {}).get("spend") or 0), float(found)):
        raise SmokeFailure(f"/key/info says spend {info.get('info', {}).get('spend')}, the row {found}")
    return f"{float(found):.3g} in the key's row after {time.monotonic() - started:.0f} s (the batch writer), as /key/info says"


def budget_refusal(proxy: Proxy) -> str:
    """Over budget, the proxy refuses before any upstream call: BudgetExceededError, whose status
    is LiteLLM's `budget_exceeded_status_code` (422 in 1.108.11; 400 or 429 in other releases)."""
    route, before = self_hosted_route(proxy), len(proxy.upstream.calls)
    status, found = proxy.answer("POST", "/chat/completions", {"model": route, "messages": [
        {"role": "user", "content": "One more."}]}, key=proxy.virtual_key)
    message = str((found.get("error") or {}).get("message") if isinstance(found, dict) else found)
    if status not in (400, 422, 429) or "Budget has been exceeded" not in message or len(proxy.upstream.calls) != before:
        raise SmokeFailure(f"a request over the key's budget answered {status} ({message[:200]!r}) after "
                           f"{len(proxy.upstream.calls) - before} upstream calls")
    return f"refused with {status}: {message[:120]}"


STEPS: tuple[tuple[str, Callable[[Proxy], str]], ...] = (
    ("the task's DATABASE_URL logs in to PostgreSQL over TLS", database_login),
    ("the migration task applies the proxy's schema (prisma migrate deploy)", migrations),
    ("proxy starts with the task's config and environment", Proxy.start),
    ("completion through the self-hosted route", completion), ("response cache in Redis", cached),
    ("virtual key with a budget (POST /key/generate)", virtual_key),
    ("completion with the virtual key", key_completion),
    ("spend recorded for the key", spend_recorded),
    ("budget refusal once the key's budget is spent", budget_refusal))


def run(deployment: Deployment, venvs: Path = VENVS) -> list[SmokeStep]:
    started = time.monotonic()
    with ExitStack() as stack:
        try:
            task = proxy_task(deployment)
            region = task.environment.get("AWS_REGION", "us-east-1")
            client = deployment.client("secretsmanager", region)
            secrets = {name: secret_value(client, name, value_from) for name, value_from in task.secrets.items()}
            bin_dir = venv(task.litellm_version, venvs)
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smoke-gateway-")))
            authority = Authority.create(scratch / "tls")
            upstream = stack.enter_context(ModelServer(authority))
            upstream.key = secrets.get("VLLM_API_KEY", "")
            proxy = Proxy(deployment, task, scratch, authority, upstream,
                          stack.enter_context(RedisTls(authority, secrets["REDIS_PASSWORD"], scratch / "redis")),
                          stack.enter_context(database(deployment, client, authority)), secrets, bin_dir)
            stack.callback(proxy.stop)
        except (SmokeFailure, StandInError, KeyError) as err:
            return [SmokeStep(PREFIX + "task definition and secrets from state", False, str(err))]
        steps = [SmokeStep(PREFIX + "task definition and secrets from state", True,
                           f"{len(secrets)} secrets read as ECS reads them: {', '.join(sorted(secrets))}")]
        for name, check in STEPS:
            if not steps[-1].passed:
                steps.append(SmokeStep(PREFIX + name, False, "not run: an earlier step failed"))
                continue
            began = time.monotonic()
            try:
                steps.append(SmokeStep(PREFIX + name, True, f"{check(proxy)} ({time.monotonic() - began:.0f} s)"))
            except SmokeFailure as err:
                steps.append(SmokeStep(PREFIX + name, False, str(err)))
            except Exception as err:  # the check's own call failed: this step fails, with why
                steps.append(SmokeStep(PREFIX + name, False, f"{type(err).__name__}: {err}"))
        steps[0] = SmokeStep(steps[0].name, True, steps[0].detail + "; mapped to loopback: " + "; ".join(
            f"{k} {v}" for k, v in sorted(proxy.mapped.items())) + f" ({time.monotonic() - started:.0f} s in all)")
        return steps
