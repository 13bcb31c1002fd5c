"""WebSocket $default: validate a chat frame, answer from the cache or enqueue it for the worker."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from chat_common import connections, env, frames, runtime
from chat_common.cache import CacheSettings, ResponseCache
from chat_common.observability import logger, tracer

OK = {"statusCode": 200}
REFUSED = {"statusCode": 403}


@dataclass(frozen=True)
class Dependencies:
    allowed_models: frozenset[str]
    max_frame_bytes: int
    queue_url: str
    sqs: Any
    api: Any  # API Gateway management API
    cache: ResponseCache


@runtime.per_container
def dependencies() -> Dependencies:
    return Dependencies(allowed_models=frozenset(env.names("ALLOWED_MODELS")),
                        max_frame_bytes=env.integer("MAX_FRAME_BYTES", 32768),
                        queue_url=env.required("REQUEST_QUEUE_URL"), sqs=runtime.client("sqs"),
                        api=connections.management_api(env.required("WEBSOCKET_ENDPOINT")),
                        cache=ResponseCache(CacheSettings.from_env()))


def handle_frame(event: dict[str, Any], deps: Dependencies, *, now_ms: int) -> dict[str, Any]:
    identity = connections.authorized_caller(event)
    if identity is None:
        logger.error("frame without a connection or an authorized user refused")
        return REFUSED
    connection_id, user_id = identity
    context = event["requestContext"]
    try:
        request = frames.parse_request(event.get("body"), allowed_models=deps.allowed_models,
                                       max_bytes=deps.max_frame_bytes,
                                       is_base64=bool(event.get("isBase64Encoded")))
    except frames.FrameError as err:
        logger.info("frame refused", extra={"code": err.code})
        connections.post(deps.api, connection_id, frames.error_frame(err.code, err.message))
        return OK
    request_id = context.get("requestId")
    if not isinstance(request_id, str) or not request_id:
        request_id = uuid.uuid4().hex
    key = deps.cache.key(request.model, request.messages, user_id)
    cached = deps.cache.get(key)
    if cached is not None:
        logger.info("answered from cache", extra={"requestId": request_id, "model": request.model})
        connections.post_all(deps.api, connection_id, frames.answer_frames(
            session_id=request.session_id, request_id=request_id, content=cached, cached=True))
        return OK
    job = frames.ChatJob(connection_id=connection_id, user_id=user_id, session_id=request.session_id,
                         model=request.model, messages=request.messages, request_id=request_id,
                         requested_at=now_ms)
    deps.sqs.send_message(QueueUrl=deps.queue_url, MessageBody=job.to_json())
    logger.info("request queued", extra={"requestId": request_id, "model": request.model})
    return OK


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_frame(event, dependencies(), now_ms=int(time.time() * 1000))
