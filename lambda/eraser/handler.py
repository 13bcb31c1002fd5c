"""Erase one user's chat data (right to be forgotten), invoked by an operator.

Runs in the VPC because Redis is reachable only there. Event: {"userId": "<Cognito sub>",
"scanUnindexed": false}. Returns the counts of what was deleted; the virtual keys in the
gateway are erased by `python -m modules.tools.erase_user`, which invokes this function.
Unlike the cache in the request path, a failing Redis fails the erasure: it must not report
success while answers remain.
"""

from __future__ import annotations

from typing import Any

from chat_common import cache, env, erasure, runtime
from chat_common.observability import logger, tracer


def erase(event: Any, *, history_table: Any, connections_table: Any, redis_client: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise ValueError('event must be {"userId": "..."}')
    user_id = erasure.check_user_id(event.get("userId"))
    erased = erasure.erase_user(user_id, history_table=history_table, connections_table=connections_table,
                                redis_client=redis_client, scan_unindexed=event.get("scanUnindexed") is True)
    logger.info("user erased", extra={"erased": erased.as_dict()})  # counts only: the id stays out of logs
    return {"userId": user_id, "erased": erased.as_dict()}


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    client = cache.connect(cache.CacheSettings.from_env())
    try:
        return erase(event, history_table=runtime.table(env.required("HISTORY_TABLE")),
                     connections_table=runtime.table(env.required("CONNECTIONS_TABLE")), redis_client=client)
    finally:
        client.close()
