"""The WebSocket frame protocol: client requests in, answer, chunk and error frames out.

Client → server (text frame, JSON, at most MAX_FRAME_BYTES UTF-8 bytes, nested at most
MAX_NESTING levels deep, text limited to the characters SQS carries — see TEXT_ALLOWED):
    {"action": "sendMessage", "sessionId": "<1..64 of A-Za-z0-9_->", "model": "<allowed model>",
     "messages": [{"role": "user"|"assistant"|"system", "content": "<text>"}, ...]}   (1..50)
Server → client (each frame at most REPLY_FRAME_BYTES):
    {"type": "answer", "cached": bool, "sessionId", "requestId", "content"}
    {"type": "chunk", "cached": bool, "sessionId", "requestId", "index": 0.., "final": bool, "content"}
    {"type": "error", "code": "bad_request"|"too_large"|"unknown_action"|"model_error"|"unavailable",
     "message", ...}
An answer that does not fit one frame is sent as chunks: indexes 0, 1, … in order, the last
with "final": true; the answer is their contents joined in index order.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Collection, Iterator

SEND_MESSAGE = "sendMessage"
ROLES = ("user", "assistant", "system")
MAX_MESSAGES = 50
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A request is three levels deep (frame, message list, message); anything much deeper is not
# a request, and a deep enough one exhausts the JSON parser's recursion.
MAX_NESTING = 8
# API Gateway: a WebSocket frame carries at most 32 KB and a message at most 128 KB, and
# postToConnection is held to the frame quota. 32,000 bytes is under 32 KB however a KB is
# counted, so every reply fits one frame.
REPLY_FRAME_BYTES = 32_000
# What SQS accepts in a message body (#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
# #x10000-#x10FFFF): no lone surrogates, no U+FFFE/U+FFFF, no other control characters.
TEXT_ALLOWED = "\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff"
_NOT_ALLOWED = re.compile(f"[^{TEXT_ALLOWED}]")
_STRUCTURE = re.compile(r'["\\\[\]{}]')

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


def carriable(text: str) -> bool:
    """True when every character of `text` may travel in an SQS message (and so in UTF-8)."""
    return _NOT_ALLOWED.search(text) is None


def nesting_depth(text: str) -> int:
    """How deeply the arrays and objects of a JSON text nest (brackets inside strings ignored)."""
    depth = deepest = 0
    in_string, escaped_until = False, -1
    for match in _STRUCTURE.finditer(text):  # linear: only quotes, backslashes and brackets
        position, char = match.start(), match.group()
        if position < escaped_until:
            continue
        if in_string:
            if char == "\\":
                escaped_until = position + 2
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_request(body: Any, *, allowed_models: Collection[str], max_bytes: int,
                  is_base64: bool = False) -> ChatRequest:
    """A valid request frame, or `FrameError` with the code the client gets."""
    if is_base64 or not isinstance(body, str):
        raise FrameError("bad_request", "send a JSON text frame")
    if len(body) > max_bytes:  # at least one byte per character: too large whatever it holds
        raise FrameError("too_large", f"frame exceeds {max_bytes} bytes")
    if not carriable(body):
        raise FrameError("bad_request", _UNCARRIABLE)
    if len(body.encode("utf-8")) > max_bytes:
        raise FrameError("too_large", f"frame exceeds {max_bytes} bytes")
    if body.count("[") + body.count("{") > MAX_NESTING and nesting_depth(body) > MAX_NESTING:
        raise FrameError("bad_request", f"frame nests deeper than {MAX_NESTING} levels")
    try:
        frame = json.loads(body)
    except (ValueError, RecursionError):
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


_UNCARRIABLE = ("text may not contain unpaired surrogates, U+FFFE, U+FFFF or control characters "
                "other than tab, line feed and carriage return")


def _messages(value: Any) -> tuple[Message, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_MESSAGES:
        raise FrameError("bad_request", f"messages must be a list of 1 to {MAX_MESSAGES} messages")
    messages = []
    for index, item in enumerate(value):
        if (not isinstance(item, dict) or item.get("role") not in ROLES
                or not isinstance(item.get("content"), str)):
            raise FrameError("bad_request", f"messages[{index}] must be {{\"role\": one of "
                             f"{', '.join(ROLES)}, \"content\": string}}")
        if not carriable(item["content"]):  # an escape such as "\ud800" passes the raw-text check
            raise FrameError("bad_request", f"messages[{index}].content: {_UNCARRIABLE}")
        # Only role and content reach the model and the cache key.
        messages.append({"role": item["role"], "content": item["content"]})
    return tuple(messages)


def error_frame(code: str, message: str, **ids: str) -> dict[str, str]:
    return {"type": "error", "code": code, "message": message, **ids}


def encoded(frame: dict[str, Any]) -> bytes:
    """The bytes a frame travels as."""
    return json.dumps(frame, ensure_ascii=False).encode("utf-8")


def answer_frames(*, session_id: str, request_id: str, content: str, cached: bool,
                  max_bytes: int = REPLY_FRAME_BYTES) -> list[dict[str, Any]]:
    """One answer frame, or ordered chunk frames when the answer does not fit one frame."""
    single = {"type": "answer", "cached": cached, "sessionId": session_id, "requestId": request_id,
              "content": content}
    if len(encoded(single)) <= max_bytes:
        return [single]
    parts = list(_split(content, max_bytes - _chunk_overhead(session_id, request_id, len(content))))
    return [{"type": "chunk", "cached": cached, "sessionId": session_id, "requestId": request_id,
             "index": index, "final": index == len(parts) - 1, "content": part}
            for index, part in enumerate(parts)]


def _chunk_overhead(session_id: str, request_id: str, longest_index: int) -> int:
    """Bytes of a chunk frame besides its content, for the widest index and flags."""
    return len(encoded({"type": "chunk", "cached": False, "sessionId": session_id, "requestId": request_id,
                        "index": longest_index, "final": False, "content": ""}))


def _split(text: str, budget: int) -> Iterator[str]:
    """Consecutive pieces of `text`, each at most `budget` bytes once JSON-encoded."""
    if budget < 16:
        raise ValueError("frame budget too small for any content")
    start, size = 0, 0
    for position, char in enumerate(text):
        cost = _encoded_size(char)
        if size + cost > budget:
            yield text[start:position]
            start, size = position, 0
        size += cost
    yield text[start:]


def _encoded_size(char: str) -> int:
    if " " <= char < "\x7f" and char not in '"\\':
        return 1
    return len(json.dumps(char, ensure_ascii=False).encode("utf-8", "surrogatepass")) - 2


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
        """Raises (and so fails the record) on a body this code did not write: every id must
        be a non-empty string, never a null turned into "None"."""
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("job is not a JSON object")
        ids = {name: _identifier(data, name) for name in ("connectionId", "userId", "sessionId", "model",
                                                          "requestId")}
        if not SESSION_ID.fullmatch(ids["sessionId"]):
            raise ValueError("job sessionId is malformed")
        requested_at = data.get("requestedAt")
        if not isinstance(requested_at, int) or isinstance(requested_at, bool) or requested_at < 0:
            raise ValueError("job requestedAt must be epoch milliseconds")
        return cls(connection_id=ids["connectionId"], user_id=ids["userId"], session_id=ids["sessionId"],
                   model=ids["model"], messages=_messages(data.get("messages")), request_id=ids["requestId"],
                   requested_at=requested_at)


def _identifier(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"job {name} is missing, null or empty")
    return value
