"""The realtime smoke's machinery: the deployed function zips run, each with exactly the environment variables
Terraform gave it, against the emulator's tables, queue, topic, key and secrets.

Connect, send a message, the worker answers (through a stand-in model server), the answer reaches
the connection (a stand-in management API records postToConnection), history is stored encrypted,
the same message is answered from the Redis cache (`redis-server` over TLS), disconnect.

Only addresses no loopback process can own are changed, each listed in the step's detail and
checked against the state first: REDIS_HOST/REDIS_PORT (the replication group's primary endpoint),
WEBSOCKET_ENDPOINT's host (the API's execute-api host) and MODEL_ENDPOINT's host (configuration).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

from modules.rehearsal.smoke.deployment import Deployment, SmokeFailure
from modules.rehearsal.smoke.standins import Authority, ManagementApi, ModelServer, RedisTls

ROLES = ("connect", "message", "worker", "disconnect")
HOST = Path(__file__).with_name("host.py")
USER, SESSION, CONNECTION = "smoke-user", "smoke-session", "smoke-connection="
PROMPT = "Say hello to the rehearsal."
INVOCATION_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Function:
    role: str
    name: str
    region: str
    variables: dict[str, str]  # as Terraform set them
    package: Path


def deployed_functions(deployment: Deployment) -> dict[str, Function]:
    workdir = deployment.workdirs.get(deployment.stack("realtime"), Path("."))
    found: dict[str, Function] = {}
    for values in deployment.resources("realtime", "aws_lambda_function"):
        environment = (values.get("environment") or [{}])[0] or {}
        package = Path(values.get("filename") or "")
        found[values["function_name"].rsplit("-", 1)[-1]] = Function(
            role=values["function_name"].rsplit("-", 1)[-1], name=values["function_name"],
            region=values["arn"].split(":")[3], variables=dict(environment.get("variables") or {}),
            package=package if package.is_absolute() else workdir / package)
    missing = [role for role in ROLES if role not in found]
    if missing:
        raise SmokeFailure(f"{deployment.stack('realtime')} state has no function for: {', '.join(missing)}")
    return found


def _swap_host(url: str, loopback: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, loopback, parts.path, parts.query, parts.fragment))


class Flow:
    """One run of the realtime smoke: the stand-ins, the functions and what they were given."""

    def __init__(self, deployment: Deployment, functions: dict[str, Function], scratch: Path,
                 authority: Authority, model: ModelServer, api: ManagementApi, redis: RedisTls) -> None:
        self.deployment, self.functions, self.scratch = deployment, functions, scratch
        self.authority, self.model, self.api, self.redis = authority, model, api, redis
        self.region = functions["worker"].region
        self.model_key = f"sk-smoke-{uuid.uuid4().hex}"
        model.key = self.model_key
        self.mapped: dict[str, str] = {}  # "VARIABLE: deployed -> loopback", for the report
        self.pending: tuple[str, str, list[dict[str, Any]]] = ("", "", [])  # queue ARN, URL, received

    def aws(self, service: str) -> Any:
        return self.deployment.client(service, self.region)

    # --- the environment each process gets -------------------------------------------------

    def loopback_addresses(self) -> dict[str, Callable[[str], str]]:
        """VARIABLE -> how its deployed value becomes the stand-in's; each value checked against state."""
        groups = list(self.deployment.resources("data", "aws_elasticache_replication_group"))
        apis = [v for v in self.deployment.resources("realtime", "aws_apigatewayv2_api")
                if v.get("protocol_type") == "WEBSOCKET"]
        if len(groups) != 1 or len(apis) != 1:
            raise SmokeFailure(f"expected one Redis replication group and one WebSocket API in state, found "
                               f"{len(groups)} and {len(apis)}")
        redis_host, redis_port = groups[0]["primary_endpoint_address"], str(groups[0]["port"])
        api_host = f"{apis[0]['id']}.execute-api.{self.region}.amazonaws.com"

        def exactly(variable: str, deployed: str, loopback: str) -> Callable[[str], str]:
            def swap(value: str) -> str:
                if value != deployed:
                    raise SmokeFailure(f"{variable} is {value!r}, not the deployed {deployed!r}")
                return loopback
            return swap

        def host_of(variable: str, deployed: str | None, port: int) -> Callable[[str], str]:
            def swap(value: str) -> str:
                if deployed is not None and urlsplit(value).hostname != deployed:
                    raise SmokeFailure(f"{variable} is {value!r}, whose host is not the deployed {deployed!r}")
                return _swap_host(value, f"127.0.0.1:{port}")
            return swap

        return {"REDIS_HOST": exactly("REDIS_HOST", redis_host, "127.0.0.1"),
                "REDIS_PORT": exactly("REDIS_PORT", redis_port, str(self.redis.port)),
                "WEBSOCKET_ENDPOINT": host_of("WEBSOCKET_ENDPOINT", api_host, self.api.port),
                # The model endpoint is configuration (the gateway's public name), not a resource.
                "MODEL_ENDPOINT": host_of("MODEL_ENDPOINT", None, self.model.port)}

    def process_environment(self, function: Function) -> dict[str, str]:
        """Lambda's runtime variables (region, credentials; AWS endpoints and trusted CAs pointed at
        the emulator and the throwaway CA), then the function's own, addresses mapped."""
        variables = dict(function.variables)
        for variable, swap in self.loopback_addresses().items():
            if variable in variables:
                mapped = swap(variables[variable])
                self.mapped[variable] = f"{variables[variable]} -> {mapped}"
                variables[variable] = mapped
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "TZ": "UTC",
                "AWS_REGION": function.region, "AWS_DEFAULT_REGION": function.region,
                "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_ENDPOINT_URL": self.deployment.endpoint_url,
                "AWS_CA_BUNDLE": str(self.authority.ca), "SSL_CERT_FILE": str(self.authority.ca), **variables}

    def invoke(self, role: str, event: dict[str, Any]) -> Any:
        """`handler.handler(event, context)` of the deployed zip in its own process; an unhandled
        error fails the step with the function's own message."""
        function = self.functions[role]
        code = self.scratch / "code" / role
        if not code.is_dir():
            if not function.package.is_file():
                raise SmokeFailure(f"{role}: the deployed package {function.package} is missing")
            with zipfile.ZipFile(function.package) as package:
                package.extractall(code)
        result_file, log = self.scratch / f"{role}-result.json", self.scratch / f"{role}.log"
        with log.open("a") as out:
            subprocess.run([sys.executable, "-I", str(HOST), str(code), function.name, str(result_file)],
                           input=json.dumps(event).encode(), stdout=out, stderr=subprocess.STDOUT, cwd=code,
                           env=self.process_environment(function), timeout=INVOCATION_TIMEOUT_SECONDS, check=False)
        outcome = json.loads(result_file.read_text()) if result_file.is_file() else {
            "errorType": "NoResult", "errorMessage": f"the process wrote no result; see {log}"}
        result_file.unlink(missing_ok=True)
        if "errorType" in outcome:
            raise SmokeFailure(f"{role} failed: {outcome['errorType']}: {outcome['errorMessage']}")
        return outcome["result"]

    def warnings(self, role: str) -> str:
        """The function's own warnings and errors (JSON log lines), for a failing step's detail."""
        lines = []
        for line in (self.scratch / f"{role}.log").read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("level") in ("WARNING", "ERROR"):
                lines.append(" ".join(str(entry.get(k)) for k in ("message", "error", "detail") if entry.get(k)))
        return "; ".join(lines[-3:])

    # --- events as API Gateway and the SQS poller send them -----------------------------------

    def websocket_event(self, route: str, event_type: str, body: str | None = None) -> dict[str, Any]:
        context = {"routeKey": route, "eventType": event_type, "connectionId": CONNECTION,
                   "requestId": f"smoke-{uuid.uuid4().hex[:12]}", "stage": "live",
                   "authorizer": {"principalId": USER, "userId": USER}}
        event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": False, "headers": {}}
        if body is not None:
            event["body"] = body
        return event

    def frame(self) -> str:
        model = self.functions["message"].variables.get("ALLOWED_MODELS", "").split(",")[0]
        return json.dumps({"action": "sendMessage", "sessionId": SESSION, "model": model,
                           "messages": [{"role": "user", "content": PROMPT}]})

    def worker_queue(self) -> tuple[str, str]:
        """(ARN, URL) of the queue the worker's event source mapping reads."""
        worker = self.functions["worker"].name
        sources = [v["event_source_arn"] for v in self.deployment.resources("realtime", "aws_lambda_event_source_mapping")
                   if str(v.get("function_name", "")).endswith(f":{worker}") or v.get("function_name") == worker]
        if len(sources) != 1:
            raise SmokeFailure(f"expected one event source mapping for {worker}, found {len(sources)}")
        queue = sources[0].rsplit(":", 1)[-1]
        return sources[0], str(self.aws("sqs").get_queue_url(QueueName=queue)["QueueUrl"])

    def receive(self, url: str) -> list[dict[str, Any]]:
        found = self.aws("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                                AttributeNames=["All"], MessageAttributeNames=["All"])
        return list(found.get("Messages", []))

    def sqs_event(self, arn: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": m.get("MessageAttributes", {}),
            "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs", "eventSourceARN": arn,
            "awsRegion": self.region} for m in messages]}

    def answers(self) -> list[dict[str, Any]]:
        return [p.frame for p in self.api.posted if p.connection_id == CONNECTION]


def secret(deployment: Deployment, region: str, arn: str) -> str:
    return str(deployment.client("secretsmanager", region).get_secret_value(SecretId=arn)["SecretString"])
