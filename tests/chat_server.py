"""A real OpenAI-compatible chat server on 127.0.0.1 for tests: scripted replies, failures and delays, and a request log.

    with ChatServer() as server:                                   # every request gets a normal completion
        teacher = OpenAITeacher("m", base_url=server.base_url, ...)

    with ChatServer(script=[rate_limited(1), server_error()]) as server:
        ...                                                        # 1st request 429, 2nd 500, then normal

    with ChatServer(script=lambda body, hit: server_error() if "Q7" in last_user(body) else None) as server:
        ...                                                        # decide per request (hit = 0-based arrival index)

`script` is a list of actions applied to requests in arrival order (then normal replies), or a callable
``(body, hit) -> Action | None`` (None: normal reply). `reply(body) -> str` writes normal replies; `usage(body, text)`
returns ``(prompt_tokens, completion_tokens)`` (replies longer than the request's max_tokens are cut to it, with
finish_reason "length", as real servers do); `delay` (seconds) applies to every request. Actions: ok, rate_limited,
server_error, malformed, no_choices, unauthorized, not_found, status, disconnect, slow; and hostile ones, as broken
proxies and buggy model servers answer: trickle_body, trickle_headers, endless_chunks (a byte now and then, for at
most `limit` seconds), nested_json, lone_surrogate.

`server.log` holds one LoggedRequest per request (arrival/finish time from time.monotonic, path, headers, parsed body,
status sent); `server.max_in_flight` is the most requests handled at once. Everything stops at context exit.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Sequence

__all__ = [
    "Action", "ChatServer", "LoggedRequest", "default_reply", "default_usage", "last_user",
    "ok", "rate_limited", "server_error", "malformed", "no_choices", "unauthorized", "not_found", "status",
    "disconnect", "slow", "trickle_body", "trickle_headers", "endless_chunks", "nested_json", "lone_surrogate",
]


@dataclass(frozen=True)
class Action:
    """How to answer one request. body None -> a normal completion (with status 200); `raw` bytes are sent verbatim."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: Any = None  # a dict (sent as JSON), a str/bytes (sent verbatim), or None for the normal completion
    delay: float = 0.0  # seconds before answering
    drop: bool = False  # close the connection without answering
    stream: Callable[[Callable[[bytes], Any], threading.Event], None] | None = None  # (write, stop): raw bytes


def ok(delay: float = 0.0) -> Action:
    return Action(delay=delay)


def slow(seconds: float) -> Action:
    return Action(delay=seconds)


def rate_limited(retry_after: float | str | None = 1) -> Action:
    headers = () if retry_after is None else (("Retry-After", str(retry_after)),)
    return Action(429, headers, {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}})


def server_error(code: int = 500, retry_after: float | None = None) -> Action:
    headers = () if retry_after is None else (("Retry-After", str(retry_after)),)
    return Action(code, headers, {"error": {"message": "Internal server error", "type": "server_error"}})


def malformed() -> Action:
    return Action(200, (("Content-Type", "application/json"),), '{"id": "chatcmpl-x", "choices": [')


def no_choices() -> Action:
    return Action(200, (), {"id": "chatcmpl-x", "object": "chat.completion", "choices": []})


def unauthorized(code: int = 401) -> Action:
    return Action(code, (), {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})


def not_found() -> Action:
    return Action(404, (), {"error": {"message": "The model does not exist", "type": "invalid_request_error"}})


def status(code: int, body: Any = None, headers: Sequence[tuple[str, str]] = ()) -> Action:
    return Action(code, tuple(headers), body if body is not None else {"error": {"message": f"HTTP {code}"}})


def disconnect() -> Action:
    return Action(drop=True)


def _trickle(head: bytes, piece: bytes, interval: float, limit: float) -> Action:
    """Send `head`, then `piece` every `interval` seconds until the client goes, the server stops or `limit` s pass."""
    def stream(write: Callable[[bytes], Any], stop: threading.Event) -> None:
        write(head)
        end = time.monotonic() + limit
        while time.monotonic() < end and not stop.wait(interval):
            write(piece)
    return Action(stream=stream)


def trickle_body(interval: float = 0.2, limit: float = 20.0) -> Action:
    """A 200 announcing 100 kB, then one space (valid JSON padding) per `interval`: far under any size cap."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    return _trickle(head, b" ", interval, limit)


def trickle_headers(interval: float = 0.2, limit: float = 20.0) -> Action:
    """A status line, then a header that never ends, one byte per `interval`."""
    return _trickle(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: ", b"a", interval, limit)


def endless_chunks(interval: float = 0.1, limit: float = 20.0) -> Action:
    """A chunked 200 whose chunks (one space each) never stop coming."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    return _trickle(head, b"1\r\n \r\n", interval, limit)


def nested_json(depth: int = 100_000) -> Action:
    """A 200 whose body is valid JSON nested `depth` deep (2*depth bytes, under the size cap)."""
    return Action(200, (), '{"choices": ' + "[" * depth + "]" * depth + "}")


def lone_surrogate(kind: str = "chat") -> Action:
    """A 200 whose text holds a JSON-escaped lone surrogate (as when a byte-level tokenizer cuts a character);
    kind "chat" answers /chat/completions, "text" answers /completions."""
    text = "The answer is 4 \ud800."
    choice = {"message": {"role": "assistant", "content": text}} if kind == "chat" else {"text": text}
    return Action(200, (), {"choices": [{"index": 0, **choice, "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 10, "completion_tokens": 5}})


def last_user(body: dict | None) -> str:
    """The content of the last user message of a chat request body ('' when none)."""
    for message in reversed((body or {}).get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def default_reply(body: dict) -> str:
    """Deterministic: a function of the last user message and the request seed."""
    question, seed = last_user(body), body.get("seed")
    answer = sum(map(ord, question)) % 1000 + (seed or 0) % 7
    return f"Reply to: {question[:60]} (seed {seed}). The answer is {answer}."


def default_usage(body: dict, text: str) -> tuple[int, int]:
    """Roughly 4 characters a token, like real tokenizers on English."""
    chars = sum(len(str(m.get("content", ""))) for m in body.get("messages") or [] if isinstance(m, dict))
    return chars // 4 + 3 * len(body.get("messages") or []), max(1, len(text) // 4)


@dataclass
class LoggedRequest:
    index: int  # 0-based arrival order
    arrived: float  # time.monotonic()
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or the raw text when it is not JSON
    status: int = 0  # what was sent (0: dropped, or not answered yet)
    finished: float = 0.0


@dataclass
class ChatServer:
    script: Sequence[Action] | Callable[[Any, int], Action | None] | None = None
    reply: Callable[[dict], str] = default_reply
    usage: Callable[[dict, str], tuple[int, int]] = default_usage
    delay: float = 0.0
    log: list[LoggedRequest] = field(default_factory=list, init=False)
    max_in_flight: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def __enter__(self) -> "ChatServer":
        handler = type("Handler", (_Handler,), {"chat": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="chat-server", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # cuts short any delayed answer
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Until every request has been answered and logged (a handler records its status after sending: a client
        can hold the answer before the log has it)."""
        deadline = time.monotonic() + timeout
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.01)

    @property
    def port(self) -> int:
        assert self._server is not None, "use ChatServer as a context manager"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- introspection ------------------------------------------------------------------------------------------

    @property
    def hits(self) -> int:
        with self._lock:
            return len(self.log)

    def bodies(self) -> list[Any]:
        with self._lock:
            return [entry.body for entry in self.log]

    # -- handling -----------------------------------------------------------------------------------------------

    def _arrive(self, path: str, headers: dict[str, str], body: Any) -> tuple[LoggedRequest, Action | None]:
        with self._lock:
            entry = LoggedRequest(len(self.log), time.monotonic(), path, headers, body)
            self.log.append(entry)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            if self.script is None:
                action = None
            elif callable(self.script):
                action = None  # decided outside the lock: the callable may be slow or take its own locks
            else:
                action = self.script[entry.index] if entry.index < len(self.script) else None
        if callable(self.script):
            action = self.script(body, entry.index)
        return entry, action

    def _leave(self, entry: LoggedRequest, code: int) -> None:
        with self._lock:
            entry.status, entry.finished = code, time.monotonic()
            self._in_flight -= 1

    def _completion(self, body: dict) -> dict:
        text, finish = self.reply(body), "stop"
        prompt_tokens, completion_tokens = self.usage(body, text)
        limit = body.get("max_tokens")
        if isinstance(limit, int) and 0 < limit < completion_tokens:  # like a real server: cut at max_tokens
            text = text[: max(1, len(text) * limit // completion_tokens)]
            completion_tokens, finish = limit, "length"
        return {
            "id": f"chatcmpl-{abs(hash(text)) % 10**12}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up is no server error
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    chat: ChatServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, code: int, payload: Any, headers: Sequence[tuple[str, str]] = ()) -> None:
        if isinstance(payload, (dict, list)):
            data, ctype = json.dumps(payload).encode(), "application/json"
        elif isinstance(payload, str):
            data, ctype = payload.encode(), "application/json"
        else:
            data, ctype = bytes(payload or b""), "application/octet-stream"
        self.send_response(code)
        names = {name.lower() for name, _ in headers}
        if "content-type" not in names:
            self.send_header("Content-Type", ctype)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": "test-model", "object": "model"}]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        headers = {name.lower(): value for name, value in self.headers.items()}
        chat = self.chat
        entry, action = chat._arrive(self.path, headers, body)
        code = 0
        try:
            action = action or Action()
            delay = max(action.delay, chat.delay)
            if delay and chat._stop.wait(delay):
                self.close_connection = True
                return
            if action.drop:
                self.close_connection = True
                return
            if action.stream is not None:
                self.close_connection = True
                try:
                    action.stream(self.wfile.write, chat._stop)
                except OSError:  # the client cut the connection: what a hostile server is for
                    pass
                return
            if action.body is not None:  # a scripted answer, on any path (a served student posts to /completions)
                code = action.status
                self._send(code, action.body, action.headers)
            elif self.path.rstrip("/") != "/v1/chat/completions":
                code = 404
                self._send(404, {"error": {"message": f"no route {self.path}"}})
            elif not isinstance(body, dict):
                code = 400
                self._send(400, {"error": {"message": "request body is not a JSON object"}})
            else:
                code = action.status
                self._send(code, chat._completion(body), action.headers)
        finally:
            chat._leave(entry, code)
