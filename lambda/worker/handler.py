"""SQS consumer: call the model, store the encrypted exchange, cache it, reply, notify.

Each record is processed on its own (powertools BatchProcessor); a failing record is
reported in `batchItemFailures` so only it returns to the queue, and after the queue's
maximum receives it lands in the DLQ.

Idempotency (best effort): the answer is stored before it is posted, so a retried record
whose exchange is already in the history is answered from there without calling the model
again. Two deliveries of one message processed at the same moment can still both call it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chat_common import connections, env, frames, history, model, runtime
from chat_common.cache import CacheSettings, ResponseCache
from chat_common.observability import logger, tracer

processor = BatchProcessor(event_type=EventType.SQS)


@dataclass(frozen=True)
class Dependencies:
    history: history.History
    connections_table: Any
    api: Any  # API Gateway management API
    cache: ResponseCache
    sns: Any
    topic_arn: str
    model: model.ModelSettings
    clock_ms: Callable[[], int]


@runtime.per_container
def dependencies() -> Dependencies:
    return Dependencies(
        history=history.History(runtime.table(env.required("HISTORY_TABLE")), runtime.client("kms"),
                                env.required("KMS_KEY_ARN")),
        connections_table=runtime.table(env.required("CONNECTIONS_TABLE")),
        api=connections.management_api(env.required("WEBSOCKET_ENDPOINT")),
        cache=ResponseCache(CacheSettings.from_env()), sns=runtime.client("sns"),
        topic_arn=env.required("RESPONSE_TOPIC_ARN"), model=model.ModelSettings.from_env(),
        clock_ms=lambda: int(time.time() * 1000))


def ask_model(deps: Dependencies, job: frames.ChatJob) -> str:
    secret_arn = deps.model.api_key_secret_arn
    try:
        return model.complete(deps.model, runtime.secret_string(secret_arn), job.model, job.messages)
    except model.CredentialsRejected:
        runtime.forget_secret(secret_arn)  # rotated key: the retry reads the new one
        raise


@tracer.capture_method(capture_response=False)
def process(job: frames.ChatJob, deps: Dependencies) -> None:
    """Raises when the record must be retried (model unavailable, AWS errors)."""
    ids = {"sessionId": job.session_id, "requestId": job.request_id}
    session = history.user_session(job.user_id, job.session_id)
    started = deps.clock_ms()
    stored = deps.history.find(session, job.request_id, requested_at=job.requested_at)
    if stored is not None:
        answer = history.decrypt(stored, deps.history.kms).answer
    else:
        try:
            answer = ask_model(deps, job)
        except model.ModelRejected as err:
            logger.warning("model rejected the request", extra={**ids, "error": str(err)})
            _reply(deps, job, frames.error_frame("model_error", "the model could not answer this request", **ids))
            return
        deps.history.store(session=session, request_id=job.request_id, model=job.model,
                           messages=job.messages, answer=answer, now_ms=deps.clock_ms())
    latency_ms = deps.clock_ms() - started
    deps.cache.put(deps.cache.key(job.model, job.messages, job.user_id), answer)
    delivered = _reply(deps, job, frames.answer_frame(session_id=job.session_id, request_id=job.request_id,
                                                      content=answer, cached=False))
    # Ids and timings only: subscribers never see the conversation.
    deps.sns.publish(TopicArn=deps.topic_arn, Message=json.dumps({
        "type": "answer", **ids, "userId": job.user_id, "model": job.model, "latencyMs": latency_ms,
        "delivered": delivered, "replayed": stored is not None}))
    logger.info("answered", extra={**ids, "model": job.model, "latencyMs": latency_ms, "delivered": delivered})


def _reply(deps: Dependencies, job: frames.ChatJob, frame: dict[str, Any]) -> bool:
    """Post the frame; a vanished client only loses its connection record (history stays)."""
    if connections.post(deps.api, job.connection_id, frame):
        return True
    connections.forget(deps.connections_table, job.connection_id)
    return False


def record_handler(record: SQSRecord) -> None:
    try:
        process(frames.ChatJob.from_json(record.body), dependencies())
    except Exception as err:  # reported to SQS as this record's failure by the batch processor
        logger.warning("record failed, left for retry", extra={
            "messageId": record.message_id, "error": type(err).__name__, "detail": str(err)[:200]})
        raise


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
