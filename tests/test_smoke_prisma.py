"""The query-engine stand-in (modules/rehearsal/smoke/engines): prisma-client-py's GraphQL documents,
as its query builder renders them, translated into Prisma's JSON protocol, and answered by the
WebAssembly engine over a real PostgreSQL (`PostgresTls`) the way the native engine answers them.

The documents below are written as prisma-client-py 0.15 renders them (prisma/_builder.py):
newline-separated fields, lists as `[,\n "a",\n]`, Json values as strings of JSON, `result:`
as the alias. The npm packages are installed once into .build/smoke/engines (prisma.install).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from modules.rehearsal.emulator import free_port
from modules.rehearsal.smoke import prisma
from modules.rehearsal.smoke.standins import Authority, PostgresTls

DATAMODEL = """datasource client {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

model Budget {
  id               String @id
  model_max_budget Json?
  keys             Key[]
}

model Key {
  token      String    @id
  spend      Float     @default(0)
  max_budget Float?
  metadata   Json      @default("{}")
  expires    DateTime?
  models     String[]
  tpm_limit  BigInt?
  budget_id  String?
  budget     Budget?   @relation(fields: [budget_id], references: [id])
}
"""
TABLES = """CREATE TABLE "Budget" (id text PRIMARY KEY, model_max_budget jsonb);
CREATE TABLE "Key" (token text PRIMARY KEY, spend double precision NOT NULL DEFAULT 0, max_budget double precision,
  metadata jsonb NOT NULL DEFAULT '{}', expires timestamp(3), models text[], tpm_limit bigint,
  budget_id text REFERENCES "Budget"(id));"""

CREATE = r'''mutation {
  result: createOneKey
  (
    data: {
      token: "k1"
      max_budget: 1e-06
      metadata: "{\"team\": [1, null]}"
      expires: "2030-01-02T03:04:05.678000+00:00"
      models: [,
        "deepseek-r1-7b",
      ]
      tpm_limit: 10000
      budget: {
        create: {
          id: "b1"
          model_max_budget: "{}"
        }
      }
    }
  )
  {
    token
    metadata
    expires
    tpm_limit
    budget {
      id
      model_max_budget
    }
  }
}'''
INCREMENT = '''mutation {
  result: updateManyKey
  (
    where: {
      token: "k1"
    }
    data: {
      spend: {
        increment: 5e-06
      }
    }
  )
  {
    count
  }
}'''
MISSING = '''query {
  result: findUniqueKeyOrThrow
  (
    where: {
      token: "nobody"
    }
  )
  {
    token
  }
}'''
# A column of pg_catalog's `name[]`, which the native engine reads as text[] (LiteLLM's view check).
VIEWS = r'''mutation {
  result: queryRaw
  (
    query: "SELECT ARRAY_AGG(viewname) AS names FROM pg_views WHERE viewname = $1"
    parameters: "[\"pg_stats\"]"
  )
}'''


def body(document: str) -> str:
    return json.dumps({"variables": {}, "operation_name": document.split()[0], "query": document})


def node(script: str, payload: Any) -> Any:
    """Runs an ES module beside graphql.mjs with `payload` on stdin; its stdout as JSON."""
    done = subprocess.run(["node", "--input-type=module", "-e", script], input=json.dumps(payload), text=True,
                          capture_output=True, check=True, cwd=prisma.SOURCE)
    return json.loads(done.stdout)


TRANSLATE = """
import { readFileSync } from 'node:fs';
import { models, request } from './graphql.mjs';
const { datamodel, bodies, answers } = JSON.parse(readFileSync(0, 'utf8'));
const out = bodies.map((b, i) => {
  try {
    const [json, back] = request(b, models(datamodel));
    return { json: JSON.parse(json), back: answers[i] ? JSON.parse(back(JSON.stringify(answers[i]))) : null };
  } catch (err) { return { error: `${err.constructor.name}: ${err.message}` }; }
});
console.log(JSON.stringify(out));
"""


def test_graphql_documents_become_json_protocol_requests_and_answers_come_back_as_graphql_did() -> None:
    answer = {"data": {"createOneKey": {"token": "k1", "metadata": {"$type": "Json", "value": "{\"team\":[1,null]}"},
                                        "expires": {"$type": "DateTime", "value": "2030-01-02T03:04:05.678Z"},
                                        "tpm_limit": {"$type": "BigInt", "value": "10000"},
                                        "budget": {"id": "b1", "model_max_budget": {"$type": "Json", "value": "{}"}}}}}
    batch = json.dumps({"batch": [{"query": INCREMENT, "variables": {}}] * 2, "transaction": True})
    create, increments, missing = node(TRANSLATE, {"datamodel": DATAMODEL, "bodies": [body(CREATE), batch, body(MISSING)],
                                                   "answers": [answer, {"batchResult": [
                                                       {"data": {"updateManyKey": {"count": 1}}}] * 2}, None]})
    data = create["json"]["query"]["arguments"]["data"]
    assert create["json"]["modelName"] == "Key" and create["json"]["action"] == "createOne"
    # A Json field's string is JSON text (tagged), here and in the related model's nested create.
    assert data["metadata"] == {"$type": "Json", "value": "{\"team\": [1, null]}"}
    assert data["budget"]["create"]["model_max_budget"] == {"$type": "Json", "value": "{}"}
    assert data["models"] == ["deepseek-r1-7b"] and data["max_budget"] == 1e-06 and data["tpm_limit"] == 10000
    assert create["json"]["query"]["selection"] == {
        "token": True, "metadata": True, "expires": True, "tpm_limit": True,
        "budget": {"selection": {"id": True, "model_max_budget": True}}}
    # The answer under the document's alias, with plain values as the GraphQL protocol gave them.
    assert create["back"] == {"data": {"result": {"token": "k1", "metadata": "{\"team\":[1,null]}",
                                                  "expires": "2030-01-02T03:04:05.678Z", "tpm_limit": "10000",
                                                  "budget": {"id": "b1", "model_max_budget": "{}"}}}}
    assert increments["json"]["transaction"] == {} and len(increments["json"]["batch"]) == 2
    assert increments["back"] == {"batchResult": [{"data": {"result": {"count": 1}}}] * 2}
    assert missing["json"]["action"] == "findUniqueOrThrow" and missing["json"]["modelName"] == "Key"


def test_what_prisma_client_py_does_not_render_is_refused_by_name() -> None:
    unknown_model = CREATE.replace("createOneKey", "createOneTeam")
    variables = MISSING.replace('"nobody"', "$token")
    refused = node(TRANSLATE, {"datamodel": DATAMODEL, "answers": [None, None], "bodies": [
        body(unknown_model), body(variables)]})
    assert refused[0]["error"] == "Untranslatable: no model action createOneTeam"
    assert refused[1]["error"] == "Untranslatable: expected a token at “$token } ) { token } }…”"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PostgresTls, str, Path]]:
    authority = Authority.create(tmp_path_factory.mktemp("tls"))
    with PostgresTls(authority, "smoke", "litellm_admin", "p#ss/w?rd") as postgres:
        url = f"postgresql://litellm_admin:p%23ss%2Fw%3Frd@127.0.0.1:{postgres.port}/smoke?sslmode=require"
        assert postgres.session(url, TABLES) == ("CREATE TABLE\nCREATE TABLE", "")
        yield postgres, url, authority.ca


def query_engine(url: str, ca: Path, scratch: Path) -> tuple[subprocess.Popen[str], str]:
    """The stand-in as prisma-client-py spawns it (`query-engine -p PORT`, PRISMA_DML_PATH, DATABASE_URL)."""
    engines, port = prisma.install(), free_port()
    (scratch / "schema.prisma").write_text(DATAMODEL)
    process = subprocess.Popen([str(engines / "bin" / "query-engine"), "-p", str(port)], text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={
                                   "PATH": os.environ["PATH"], "PRISMA_DML_PATH": str(scratch / "schema.prisma"),
                                   "DATABASE_URL": url, "SSL_CERT_FILE": str(ca), "PRISMA_ENGINE_PROTOCOL": "graphql"})
    return process, f"http://127.0.0.1:{port}"


def post(base: str, data: str) -> tuple[int, Any]:
    request = urllib.request.Request(base + "/", data=data.encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_the_stand_in_answers_prisma_client_py_over_postgres_as_the_native_engine(database, tmp_path) -> None:
    postgres, url, ca = database
    process, base = query_engine(url, ca, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                urllib.request.urlopen(base + "/status", timeout=2).close()
                break
            except OSError:
                time.sleep(0.2)
        created = post(base, body(CREATE))
        increments = post(base, json.dumps({"batch": [{"query": INCREMENT, "variables": {}}] * 2, "transaction": True}))
        missing, views = post(base, body(MISSING)), post(base, body(VIEWS))
        refused = post(base, body(MISSING.replace('"nobody"', "$token")))
    finally:
        process.kill()
        process.wait()
    assert created == (200, {"data": {"result": {"token": "k1", "metadata": "{\"team\":[1,null]}",
                                                 "expires": "2030-01-02T03:04:05.678Z", "tpm_limit": "10000",
                                                 "budget": {"id": "b1", "model_max_budget": "{}"}}}})
    # Stored as JSON, not as a JSON string of it; both increments in one transaction.
    assert postgres.session(url, "select metadata->'team'->>0, jsonb_typeof(metadata), spend from \"Key\"") == (
        "1|object|1e-05", "")
    assert increments == (200, {"batchResult": [{"data": {"result": {"count": 1}}}] * 2})
    assert missing[1]["errors"][0]["user_facing_error"]["error_code"] == "P2025"
    assert views == (200, {"data": {"result": {"columns": ["names"], "types": ["string-array"],
                                               "rows": [[["pg_stats"]]]}}})
    assert refused[0] == 500 and "the query-engine stand-in cannot translate this request" in refused[1]["errors"][0][
        "error"]


def test_a_database_url_with_the_wrong_password_stops_the_stand_in_saying_why(database, tmp_path) -> None:
    _, url, ca = database
    process, _ = query_engine(url.replace("p%23ss", "p%23sx"), ca, tmp_path)
    try:
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 1
    assert 'password authentication failed for user "litellm_admin"' in output and "p#ss" not in output
