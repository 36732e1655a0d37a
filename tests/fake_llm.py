"""The one fake LLM server: Anthropic's and OpenAI's wire formats, scripted replies, recorded calls.

It runs in a background thread (the SDKs are synchronous) on 127.0.0.1 and serves both APIs at
once: Anthropic ``POST /v1/messages`` (base URL `FakeLlm.anthropic_url`) and OpenAI
``POST /v1/chat/completions`` (base URL `FakeLlm.openai_url`). Each request is recorded, checked
against the provider's protocol (what a real server would refuse becomes a *violation*, which the
``fake_llm`` fixture turns into a test failure) and answered from a queue of scripted replies,
shaped for the provider the request addressed::

    fake_llm.add(Text('{"value": 0, "reasons": []}'))      # a valid reply
    fake_llm.add(Status(503), times=2)                     # two 5xx in a row
    fake_llm.add(Delay(1.0))                               # longer than the client's timeout
    llm = make_llm(llm_settings_for("openai"))
    ...
    assert len(fake_llm.requests) == 2

Errors carry ``retry-after-ms`` (10 ms by default), which both SDKs obey, so tests exercise the
SDKs' real retry paths without waiting out their back-off.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

#: The key tests configure; distinctive, so that finding it in a message is never a coincidence.
FAKE_LLM_KEY = "sk-fake-llm-key-0f4e9a7c2d5b"
FAKE_LLM_MODEL = "fake-model-1"

ANTHROPIC_PATH = "/v1/messages"
OPENAI_PATH = "/v1/chat/completions"

Finish = Literal["stop", "max_tokens", "refusal"]


@dataclass(frozen=True)
class Text:
    """A 200 reply whose content is ``text``, exactly (valid JSON, invalid JSON or prose).

    ``finish`` is how the model stopped: normally, at the token limit, or refusing (then
    Anthropic says ``stop_reason: refusal`` and OpenAI sets ``message.refusal``).
    """

    text: str
    finish: Finish = "stop"


def json_text(value: Any) -> Text:
    """A reply whose text is ``value`` as JSON."""
    return Text(json.dumps(value))


@dataclass(frozen=True)
class Status:
    """An HTTP error with the provider's error body (e.g. 429, 500, 503, Anthropic's 529)."""

    status: int
    message: str = "scripted failure"
    retry_after_ms: int | None = 10


@dataclass(frozen=True)
class Delay:
    """Wait ``seconds`` before answering ``then``; past the client's timeout nobody is left."""

    seconds: float
    then: Text | Status | None = None


@dataclass(frozen=True)
class Raw:
    """Bytes as they are, such as a proxy's HTML error page."""

    status: int
    body: bytes
    content_type: str = "text/html"


Reply = Text | Status | Delay | Raw


@dataclass(frozen=True)
class Recorded:
    """One request as the fake received it. Header names are lower case."""

    provider: Literal["anthropic", "openai"] | None
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    auth_ok: bool

    @property
    def presented_key(self) -> str | None:
        """The key the request authenticated with (``x-api-key`` or a bearer token)."""
        return presented_key(self.headers)


def presented_key(headers: dict[str, str]) -> str | None:
    if "x-api-key" in headers:
        return headers["x-api-key"]
    auth = headers.get("authorization", "")
    return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None


@dataclass
class _State:
    replies: deque[Reply] = field(default_factory=deque)
    requests: list[Recorded] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_OPENAI_ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


class FakeLlm:
    """Both providers' APIs on one local port. Thread-safe; start with `start`, end with `close`.

    ``api_key`` is the key requests must present (None: any or none, like a local server).
    """

    def __init__(self, api_key: str | None = FAKE_LLM_KEY) -> None:
        self.api_key = api_key
        self._state = _State()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeLlm:
        fake = self

        class Handler(_Handler):
            owner = fake

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.02,), name="fake-llm", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; requests still waiting out a `Delay` are let go at once."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def anthropic_url(self) -> str:
        """The base URL for the Anthropic SDK (it adds ``/v1/messages``)."""
        return self.base_url

    @property
    def openai_url(self) -> str:
        """The base URL for the OpenAI SDK (it adds ``/chat/completions``)."""
        return self.base_url + "/v1"

    # -- scripting and inspection ----------------------------------------------------------------
    def add(self, *replies: Reply, times: int = 1) -> None:
        """Queue replies, each request taking the next one; ``times`` repeats the group."""
        with self._lock:
            for _ in range(times):
                self._state.replies.extend(replies)

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._state.requests)

    @property
    def pending(self) -> int:
        """Scripted replies no request has taken yet."""
        with self._lock:
            return len(self._state.replies)

    @property
    def violations(self) -> list[str]:
        with self._lock:
            return list(self._state.violations)

    def pop_violations(self) -> list[str]:
        """Take the violations a test provoked on purpose, so teardown does not fail on them."""
        with self._lock:
            taken = self._state.violations
            self._state.violations = []
            return taken

    def assert_secret_free(self, *texts: object) -> None:
        """Fail if the configured key shows in any of ``texts`` (messages, reprs, exceptions)."""
        if not self.api_key:
            return
        for text in texts:
            shown = [str(text), repr(text)]
            if isinstance(text, BaseException):
                shown += [str(a) for a in text.args]
            if any(self.api_key in s for s in shown):
                raise AssertionError(f"the API key leaked into {type(text).__name__}: {shown[0]}")

    # -- serving (called from the handler's thread) ---------------------------------------------
    def _violation(self, text: str) -> None:
        with self._lock:
            self._state.violations.append(text)

    def _record(self, request: Recorded) -> None:
        with self._lock:
            self._state.requests.append(request)

    def _next_reply(self) -> Reply | None:
        with self._lock:
            return self._state.replies.popleft() if self._state.replies else None

    def _wait(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _next_id(self) -> int:
        return next(self._ids)


class _Handler(BaseHTTPRequestHandler):
    owner: FakeLlm
    server_version = "fake-llm/1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the recorded requests say what happened."""

    def do_GET(self) -> None:
        self.owner._violation(f"GET {self.path}: neither API has such an endpoint")
        self._send(404, {"error": {"type": "not_found_error", "message": "no such endpoint"}})

    def do_POST(self) -> None:
        fake = self.owner
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        provider: Literal["anthropic", "openai"] | None = (
            "anthropic" if self.path == ANTHROPIC_PATH
            else "openai" if self.path == OPENAI_PATH
            else None
        )
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        auth_ok = self._authorized(provider, headers)
        fake._record(Recorded(provider, "POST", self.path, headers, body, auth_ok))
        problems = _protocol_problems(provider, self.path, headers, body)
        if fake.api_key and fake.api_key.encode() in raw:
            problems.append("the API key was sent in the request body")
        for problem in problems:
            fake._violation(f"POST {self.path}: {problem}")
        if provider is None:
            self._send(404, {"error": {"type": "not_found_error", "message": "no such endpoint"}})
            return
        if problems:
            self._error(provider, Status(400, "; ".join(problems), retry_after_ms=None))
            return
        if not auth_ok:
            # Real APIs say less; echoing the whole key proves gwi never repeats what it is told.
            presented = presented_key(headers)
            self._error(provider, Status(401, f"invalid API key: {presented}", retry_after_ms=None))
            return
        reply = fake._next_reply()
        if reply is None:
            fake._violation(f"POST {self.path}: no scripted reply left")
            self._error(provider, Status(500, "no scripted reply", retry_after_ms=None))
            return
        self._answer(provider, reply, body, len(raw))

    def _authorized(self, provider: str | None, headers: dict[str, str]) -> bool:
        key = self.owner.api_key
        if key is None:
            return True
        bearer = headers.get("authorization") == f"Bearer {key}"
        if provider == "anthropic":  # the API takes x-api-key; newer SDKs send a bearer token
            return headers.get("x-api-key") == key or bearer
        return bearer

    def _answer(self, provider: str, reply: Reply, body: Any, size: int) -> None:
        if isinstance(reply, Delay):
            self.owner._wait(reply.seconds)
            reply = reply.then or Text("{}")
        if isinstance(reply, Raw):
            self._send_bytes(reply.status, reply.body, reply.content_type, {})
        elif isinstance(reply, Status):
            self._error(provider, reply)
        elif provider == "anthropic":
            self._send(200, self._anthropic_message(reply, body, size))
        else:
            self._send(200, self._openai_completion(reply, body, size))

    def _anthropic_message(self, reply: Text, body: Any, size: int) -> dict[str, Any]:
        stop = {"stop": "end_turn", "max_tokens": "max_tokens", "refusal": "refusal"}[reply.finish]
        content = [{"type": "text", "text": reply.text}] if reply.text else []
        return {
            "id": f"msg_fake{self.owner._next_id():06d}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": size // 4, "output_tokens": max(1, len(reply.text) // 4)},
        }

    def _openai_completion(self, reply: Text, body: Any, size: int) -> dict[str, Any]:
        refused = reply.finish == "refusal"
        message = {
            "role": "assistant",
            "content": None if refused else reply.text,
            "refusal": reply.text if refused else None,
        }
        out_tokens = max(1, len(reply.text) // 4)
        return {
            "id": f"chatcmpl-fake{self.owner._next_id():06d}",
            "object": "chat.completion",
            "created": 1_767_225_600,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "length" if reply.finish == "max_tokens" else "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": size // 4,
                "completion_tokens": out_tokens,
                "total_tokens": size // 4 + out_tokens,
            },
        }

    def _error(self, provider: str, reply: Status) -> None:
        headers = {}
        if reply.retry_after_ms is not None:
            headers["retry-after-ms"] = str(reply.retry_after_ms)
        if provider == "anthropic":
            kind = _ANTHROPIC_ERRORS.get(reply.status, "api_error")
            payload: dict[str, Any] = {
                "type": "error",
                "error": {"type": kind, "message": reply.message},
                "request_id": f"req_fake{self.owner._next_id():06d}",
            }
        else:
            kind, code = _OPENAI_ERRORS.get(reply.status, ("server_error", None))
            payload = {
                "error": {"message": reply.message, "type": kind, "param": None, "code": code}
            }
        self._send(reply.status, payload, headers)

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), "application/json", headers or {})

    def _send_bytes(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str]
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): exactly what a Delay is for


def _protocol_problems(
    provider: str | None, path: str, headers: dict[str, str], body: Any
) -> list[str]:
    """What the real API would refuse before looking at the key."""
    if provider is None:
        return [f"neither API has the endpoint {path}"]
    problems = []
    if not headers.get("content-type", "").startswith("application/json"):
        problems.append("content-type is not application/json")
    if not isinstance(body, dict):
        return [*problems, "the body is not a JSON object"]
    if not isinstance(body.get("model"), str) or not body["model"]:
        problems.append("model is missing")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        problems.append("messages must be a non-empty list")
    elif not all(isinstance(m, dict) and m.get("role") and "content" in m for m in messages):
        problems.append("every message needs a role and content")
    if provider == "anthropic":
        if not headers.get("anthropic-version"):
            problems.append("the anthropic-version header is missing")
        if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
            problems.append("max_tokens (a positive integer) is required")
        if "system" in body and not isinstance(body["system"], (str, list)):
            problems.append("system must be a string or a list of text blocks")
        if isinstance(messages, list) and any(
            isinstance(m, dict) and m.get("role") == "system" for m in messages
        ):
            problems.append("the Messages API takes the system prompt as `system`, not a message")
    return problems
