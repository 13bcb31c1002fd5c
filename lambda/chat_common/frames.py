"""The WebSocket frame protocol: client requests in, answer and error frames out.

Client → server (text frame, JSON, at most MAX_FRAME_BYTES UTF-8 bytes):
    {"action": "sendMessage", "sessionId": "<1..64 of A-Za-z0-9_->", "model": "<allowed model>",
     "messages": [{"role": "user"|"assistant"|"system", "content": "<text>"}, ...]}   (1..50)
Server → client:
    {"type": "answer", "cached": bool, "sessionId", "requestId", "content"}
    {"type": "error", "code": "bad_request"|"too_large"|"unknown_action"|"model_error", "message", ...}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Collection

SEND_MESSAGE = "sendMessage"
ROLES = ("user", "assistant", "system")
MAX_MESSAGES = 50
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

Message = dict[str, str]


class FrameError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class ChatRequest:
    session_id: str
    model: str
    messages: tuple[Message, ...]


def parse_request(body: Any, *, allowed_models: Collection[str], max_bytes: int,
                  is_base64: bool = False) -> ChatRequest:
    """A valid request frame, or `FrameError` with the code the client gets."""
    if is_base64 or not isinstance(body, str):
        raise FrameError("bad_request", "send a JSON text frame")
    if len(body.encode("utf-8")) > max_bytes:
        raise FrameError("too_large", f"frame exceeds {max_bytes} bytes")
    try:
        frame = json.loads(body)
    except ValueError:
        raise FrameError("bad_request", "frame is not valid JSON") from None
    if not isinstance(frame, dict):
        raise FrameError("bad_request", "frame must be a JSON object")
    if frame.get("action") != SEND_MESSAGE:
        if "action" not in frame:
            raise FrameError("bad_request", "missing field: action")
        raise FrameError("unknown_action", f"unknown action; supported: {SEND_MESSAGE}")
    missing = [field for field in ("sessionId", "model", "messages") if field not in frame]
    if missing:
        raise FrameError("bad_request", f"missing field: {', '.join(missing)}")
    session_id, model = frame["sessionId"], frame["model"]
    if not isinstance(session_id, str) or not SESSION_ID.fullmatch(session_id):
        raise FrameError("bad_request", "sessionId must be 1-64 characters of A-Z, a-z, 0-9, _ and -")
    if not isinstance(model, str) or model not in allowed_models:
        raise FrameError("bad_request", f"model must be one of: {', '.join(sorted(allowed_models))}")
    return ChatRequest(session_id=session_id, model=model, messages=_messages(frame["messages"]))


def _messages(value: Any) -> tuple[Message, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_MESSAGES:
        raise FrameError("bad_request", f"messages must be a list of 1 to {MAX_MESSAGES} messages")
    messages = []
    for index, item in enumerate(value):
        if (not isinstance(item, dict) or item.get("role") not in ROLES
                or not isinstance(item.get("content"), str)):
            raise FrameError("bad_request", f"messages[{index}] must be {{\"role\": one of "
                             f"{', '.join(ROLES)}, \"content\": string}}")
        # Only role and content reach the model and the cache key.
        messages.append({"role": item["role"], "content": item["content"]})
    return tuple(messages)


def error_frame(code: str, message: str, **ids: str) -> dict[str, str]:
    return {"type": "error", "code": code, "message": message, **ids}


def answer_frame(*, session_id: str, request_id: str, content: str, cached: bool) -> dict[str, Any]:
    return {"type": "answer", "cached": cached, "sessionId": session_id, "requestId": request_id,
            "content": content}


@dataclass(frozen=True)
class ChatJob:
    """What `message` enqueues and `worker` consumes (the SQS message body)."""

    connection_id: str
    user_id: str
    session_id: str
    model: str
    messages: tuple[Message, ...]
    request_id: str
    requested_at: int  # epoch milliseconds, when `message` accepted the frame

    def to_json(self) -> str:
        return json.dumps({"connectionId": self.connection_id, "userId": self.user_id,
                           "sessionId": self.session_id, "model": self.model,
                           "messages": list(self.messages), "requestId": self.request_id,
                           "requestedAt": self.requested_at}, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, body: str) -> ChatJob:
        """Raises (and so fails the record) on a body this code did not write."""
        data = json.loads(body)
        return cls(connection_id=str(data["connectionId"]), user_id=str(data["userId"]),
                   session_id=str(data["sessionId"]), model=str(data["model"]),
                   messages=_messages(data["messages"]), request_id=str(data["requestId"]),
                   requested_at=int(data["requestedAt"]))
