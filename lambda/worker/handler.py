"""SQS consumer: call the model, store the encrypted exchange, reply, cache it, notify.

Each record is processed on its own (powertools BatchProcessor); a failing record is
reported in `batchItemFailures` so only it returns to the queue, and after the queue's
maximum receives it lands in the DLQ. A record this code did not write (missing or null
ids, poison) fails the same way and is never processed.

Idempotency: a redelivered job whose exchange is already in the history is answered from
there. Otherwise the worker claims the request id with a conditional write before calling
the model (`chat_common.claims`): a second delivery of the same job arriving meanwhile waits,
bounded, for the first one's outcome and replays it; it never calls the model itself.

An exchange DynamoDB refuses for good (ValidationException, e.g. an item over 400 KB) is
not retried either: the client still gets the answer and the claim is settled "unstored".

A record that fails is made visible again after a backoff that grows with its receive count
(ChangeMessageVisibility), not after the queue's whole visibility timeout: a retriable
failure is tried again within seconds to minutes, and reaches the dead-letter queue while
its client may still be connected.

A deployment error (the model key secret has no value, no valid endpoint) is not retried:
the client gets an `unavailable` error frame and the job is set aside in the dead-letter
queue, whose alarm tells an operator, who redrives it once the configuration is fixed.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import Any, Callable

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError

from chat_common import claims, connections, env, frames, history, model, runtime
from chat_common.cache import CacheSettings, ResponseCache
from chat_common.observability import logger, tracer

processor = BatchProcessor(event_type=EventType.SQS)

ERROR_MESSAGES = {
    "model_error": "the model could not answer this request",
    "unavailable": "the chat service cannot answer right now; try again later",
}
# Time kept free after a wait for a duplicate: enough to call the model and reply.
REPLY_MARGIN_MS = 5_000
DEFAULT_REMAINING_MS = 60_000  # outside Lambda (no context)
# Retry backoff: the n-th receive's failure waits up to BASE * 2^(n-1) seconds, capped, with
# "equal jitter" (half fixed, half random) so records failed by one outage spread out.
RETRY_BACKOFF_SECONDS = 15
RETRY_BACKOFF_MAX_SECONDS = 300
_jitter = random.Random()


@dataclass(frozen=True)
class Dependencies:
    history: history.History
    claims: claims.Claims
    connections_table: Any
    api: Any  # API Gateway management API
    cache: ResponseCache
    sns: Any
    topic_arn: str
    sqs: Any
    dead_letter_queue_url: str
    model: model.ModelSettings | env.ConfigError  # a ConfigError is answered, not raised
    claim_wait_ms: int
    clock_ms: Callable[[], int]


def _model_settings() -> model.ModelSettings | env.ConfigError:
    try:
        return model.ModelSettings.from_env()
    except env.ConfigError as err:
        return err


@runtime.per_container
def dependencies() -> Dependencies:
    def clock_ms() -> int:
        return int(time.time() * 1000)

    history_table = runtime.table(env.required("HISTORY_TABLE"))
    settings = _model_settings()
    model_timeout = settings.timeout_seconds if isinstance(settings, model.ModelSettings) else 60.0
    return Dependencies(
        history=history.History(history_table, runtime.client("kms"), env.required("KMS_KEY_ARN")),
        claims=claims.Claims(history_table, lease_ms=int(env.number("CLAIM_LEASE_SECONDS", 900) * 1000),
                             clock_ms=clock_ms),
        connections_table=runtime.table(env.required("CONNECTIONS_TABLE")),
        api=connections.management_api(env.required("WEBSOCKET_ENDPOINT")),
        cache=ResponseCache(CacheSettings.from_env()), sns=runtime.client("sns"),
        topic_arn=env.required("RESPONSE_TOPIC_ARN"), sqs=runtime.client("sqs"),
        dead_letter_queue_url=env.required("DEAD_LETTER_QUEUE_URL"), model=settings,
        claim_wait_ms=int(env.number("CLAIM_WAIT_SECONDS", model_timeout) * 1000), clock_ms=clock_ms)


def model_key(deps: Dependencies, settings: model.ModelSettings) -> str:
    """The model API key; `NotConfigured` while the secret has no (or an empty) value."""
    try:
        key = runtime.secret_string(settings.api_key_secret_arn)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise model.NotConfigured("the model key secret has no value") from None
        raise
    if not key.strip():
        runtime.forget_secret(settings.api_key_secret_arn)  # read it again once an admin has set it
        raise model.NotConfigured("the model key secret is empty")
    return key


def ask_model(deps: Dependencies, job: frames.ChatJob) -> str:
    settings = deps.model
    if isinstance(settings, env.ConfigError):
        raise model.NotConfigured(str(settings))
    try:
        return model.complete(settings, model_key(deps, settings), job.model, job.messages)
    except model.CredentialsRejected:
        runtime.forget_secret(settings.api_key_secret_arn)  # rotated key: the retry reads the new one
        raise


@tracer.capture_method(capture_response=False)
def process(job: frames.ChatJob, deps: Dependencies, *, wait_until_ms: int) -> None:
    """Raises when the record must be retried (model unavailable, AWS errors, a duplicate
    still in flight after the wait)."""
    ids = {"sessionId": job.session_id, "requestId": job.request_id}
    session = history.user_session(job.user_id, job.session_id)
    started = deps.clock_ms()
    exchange, replayed = _stored(deps, job, session), True
    if exchange is None:
        outcome = deps.claims.acquire(session, job.request_id, wait_until_ms=wait_until_ms)
        if isinstance(outcome, claims.Settled):
            if outcome.state == claims.REJECTED:
                _refuse(deps, job, outcome.code or "model_error")
                return
            if outcome.state == claims.UNSTORED:
                logger.warning("answered by another delivery but not stored: nothing to replay", extra=ids)
                return
            exchange = _stored(deps, job, session)
            if exchange is None:
                raise RuntimeError("request answered by another delivery, but its exchange is not readable yet")
        else:
            exchange = _stored(deps, job, session) if outcome.taken_over else None
            if exchange is None:
                answer = _call_model(deps, job, session, outcome)
                if answer is None:
                    return  # refused, and the client told
                exchange, replayed = history.Exchange(messages=list(job.messages), answer=answer), False
            else:
                deps.claims.finish(outcome, claims.ANSWERED)
    latency_ms = deps.clock_ms() - started
    delivered = _deliver(deps, job, frames.answer_frames(session_id=job.session_id, request_id=job.request_id,
                                                         content=exchange.answer, cached=False))
    # Cached only once the answer went out (or its client had gone): what cannot be
    # delivered is never cached, nor the beginning a size-bounded record replays.
    if exchange.complete:
        deps.cache.put(deps.cache.key(job.model, job.messages, job.user_id), exchange.answer, job.user_id)
    # Ids and timings only: subscribers never see the conversation.
    deps.sns.publish(TopicArn=deps.topic_arn, Message=json.dumps({
        "type": "answer", **ids, "userId": job.user_id, "model": job.model, "latencyMs": latency_ms,
        "delivered": delivered, "replayed": replayed}))
    logger.info("answered", extra={**ids, "model": job.model, "latencyMs": latency_ms, "delivered": delivered})


def _stored(deps: Dependencies, job: frames.ChatJob, session: str) -> history.Exchange | None:
    stored = deps.history.find(session, job.request_id, requested_at=job.requested_at)
    return None if stored is None else history.decrypt(stored, deps.history.kms)


def _call_model(deps: Dependencies, job: frames.ChatJob, session: str, claim: claims.Claim) -> str | None:
    """The model's answer, stored; None when the request was refused (and the client told)."""
    ids = {"sessionId": job.session_id, "requestId": job.request_id}
    try:
        answer = ask_model(deps, job)
    except model.ModelRejected as err:
        logger.warning("model rejected the request", extra={**ids, "error": str(err)})
        deps.claims.finish(claim, claims.REJECTED, "model_error")
        _refuse(deps, job, "model_error")
        return None
    except model.NotConfigured as err:
        logger.error("model not configured: request set aside in the dead-letter queue",
                     extra={**ids, "error": str(err)})
        try:
            deps.sqs.send_message(QueueUrl=deps.dead_letter_queue_url, MessageBody=job.to_json(),
                                  MessageAttributes={"reason": {"DataType": "String", "StringValue": "not_configured"}})
        finally:
            deps.claims.release(claim)  # a redriven copy is processed afresh
        _refuse(deps, job, "unavailable")
        return None
    except Exception:
        deps.claims.release(claim)
        raise
    try:
        deps.history.store(session=session, request_id=job.request_id, model=job.model,
                           messages=job.messages, answer=answer, now_ms=deps.clock_ms())
    except history.Unstorable as err:
        # No retry can store it: calling the model again would only fail the same way.
        logger.error("exchange not stored: answered without history", extra={**ids, "error": str(err)[:200]})
        deps.claims.finish(claim, claims.UNSTORED)
        return answer
    except Exception:
        deps.claims.release(claim)
        raise
    if not deps.claims.finish(claim, claims.ANSWERED):
        logger.warning("claim was taken over while the model answered", extra=ids)
    return answer


def _refuse(deps: Dependencies, job: frames.ChatJob, code: str) -> None:
    _deliver(deps, job, [frames.error_frame(code, ERROR_MESSAGES[code], sessionId=job.session_id,
                                            requestId=job.request_id)])


def _deliver(deps: Dependencies, job: frames.ChatJob, frame_list: list[dict[str, Any]]) -> bool:
    """Post the frames; a vanished client only loses its connection record (history stays)."""
    if connections.post_all(deps.api, job.connection_id, frame_list):
        return True
    connections.forget(deps.connections_table, job.connection_id)
    return False


def wait_bound(deps: Dependencies, lambda_context: Any) -> int:
    """Until when a duplicate may wait: the configured bound, and never so long that the
    invocation could not call the model and reply afterwards."""
    remaining = getattr(lambda_context, "get_remaining_time_in_millis", lambda: DEFAULT_REMAINING_MS)()
    model_ms = int(deps.model.timeout_seconds * 1000) if isinstance(deps.model, model.ModelSettings) else 0
    return deps.clock_ms() + min(deps.claim_wait_ms, remaining - model_ms - REPLY_MARGIN_MS)


def retry_delay(receive_count: int) -> int:
    """Seconds until a record that failed on its `receive_count`-th receive is tried again."""
    ceiling = min(RETRY_BACKOFF_SECONDS * 2 ** (min(max(receive_count, 1), 16) - 1), RETRY_BACKOFF_MAX_SECONDS)
    return int(ceiling / 2 + _jitter.uniform(0, ceiling / 2))


def back_off(record: SQSRecord) -> None:
    """Shorten the failed record's invisibility to the backoff (best effort: on failure it
    simply waits out the queue's visibility timeout)."""
    receives = int(record.attributes.get("ApproximateReceiveCount") or 1)
    delay = retry_delay(receives)
    try:
        runtime.client("sqs").change_message_visibility(
            QueueUrl=env.required("REQUEST_QUEUE_URL"), ReceiptHandle=record.receipt_handle, VisibilityTimeout=delay)
    except Exception as err:  # never hide the record's own failure
        logger.warning("retry backoff not applied", extra={"messageId": record.message_id,
                                                          "error": type(err).__name__})
        return
    logger.info("retry backed off", extra={"messageId": record.message_id, "receives": receives,
                                           "retryInSeconds": delay})


def record_handler(record: SQSRecord, lambda_context: Any = None) -> None:
    try:
        deps = dependencies()
        process(frames.ChatJob.from_json(record.body), deps, wait_until_ms=wait_bound(deps, lambda_context))
    except Exception as err:  # reported to SQS as this record's failure by the batch processor
        logger.warning("record failed, left for retry", extra={
            "messageId": record.message_id, "error": type(err).__name__, "detail": str(err)[:200]})
        back_off(record)
        raise


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
