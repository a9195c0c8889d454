"""A teacher backed by any OpenAI-compatible chat endpoint: the OpenAI API, vLLM's or llama.cpp's server, a gateway.

Requests go to ``POST {base_url}/chat/completions`` from a thread pool (at most ``concurrency`` in flight). Transient
failures (429, 5xx, connection errors, timeouts, malformed replies) are retried with capped exponential backoff that
honours ``Retry-After``; a request that still fails yields ``Completion(None, error=...)`` so the run goes on, its
error starting with the reason (``timeout``, ``HTTP 503``, ``malformed reply``, ...). Whatever bytes a server sends,
only configuration failures (401/403: the key; 404: base_url or model; a missing key) raise
:class:`TeacherConfigError`, at once.

Each attempt is cut ``timeout`` seconds after it starts, from connect to last byte (a server that trickles its
headers or body cannot hold it longer), and every back-off wait is at most ``backoff_cap``, so one request ends
within :attr:`OpenAITeacher.request_deadline` = ``(max_retries + 1) * timeout + max_retries * backoff_cap`` seconds.
A reply whose text is not valid Unicode (a JSON-escaped lone surrogate such as ``"\\ud800"``) is refused, so the
cache, the records and the verifiers only ever see text that encodes as UTF-8.

With a ``budget``, each request's worst-case cost is reserved before it is sent, so the spend never exceeds the
budget; when the next request no longer fits, dispatching stops and ``usage.stopped_by_budget`` is set.

The API key is read from an environment variable once, at construction, and is only ever put in the
``Authorization`` header: it is not in :meth:`OpenAITeacher.settings`, the repr, error messages or logs.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import math
import os
import random
import socket
import threading
import time
from dataclasses import replace
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import urlparse

import httpx

from eotd.teachers.base import Completion, Request, Usage

log = logging.getLogger(__name__)

# Besides 429 and every 5xx: request timeout, conflict, too early - worth another try.
_RETRY_STATUSES = frozenset({408, 409, 425, 429})
_SNIPPET = 300  # characters of an error body kept in a Completion's error
_MAX_ERROR = 1000  # characters of any error (a server-chosen finish_reason can be long)
_MAX_TOKENS = 2**31 - 1  # a larger token count is nonsense, and would overflow SQLite integers and float costs


class TeacherConfigError(RuntimeError):
    """The teacher cannot work as configured (bad or missing key, wrong base_url or model): fix the setting named."""


class MalformedReply(ValueError):
    """A 2xx body that is not an OpenAI-style completion; the message says what is wrong with it."""


def first_choice(content: bytes) -> tuple[dict, int, int]:
    """(choices[0], prompt tokens, completion tokens) of an OpenAI-style JSON body; MalformedReply when it is not."""
    try:
        data = json.loads(content)
    except RecursionError:
        raise MalformedReply("JSON nested too deeply to parse") from None
    except ValueError as exc:  # includes a body that is not UTF-8
        raise MalformedReply(f"invalid JSON ({exc})") from None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedReply("no choices[0] object")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return choices[0], _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))


def invalid_text(text: str) -> str | None:
    """Why `text` cannot be stored as UTF-8 (a lone surrogate, which valid JSON can escape), or None when it can."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"lone surrogate U+{ord(text[exc.start]):04X} at character {exc.start}"
    return None


def _clean(text: str, limit: int = _MAX_ERROR) -> str:
    """Server-chosen text made safe for logs, the cache and JSON records: valid UTF-8, printable, bounded."""
    text = text[:limit].encode("utf-8", "replace").decode("utf-8")
    return "".join(c if c.isprintable() else "?" for c in text)


def is_loopback(base_url: str) -> bool:
    """Whether base_url points at this machine (where local servers need no key)."""
    host = urlparse(base_url).hostname or ""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def request_seed(seed: int, question_id: str, sample_index: int) -> int:
    """A stable non-negative 31-bit seed for one sample: differs across samples, identical across runs."""
    digest = hashlib.sha256(f"{seed}\x1f{question_id}\x1f{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2**31)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except Exception:  # whatever a server puts there: unreadable means absent
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def _int(value: Any) -> int:
    try:
        return min(max(0, int(value)), _MAX_TOKENS)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(float("inf")) from a JSON 1e999
        return 0


class _Watchdog:
    """Cuts one attempt's connection `seconds` after it starts.

    httpx's timeout is per read, so a server sending a byte now and then (in the headers or the body) holds a request
    for ever. The socket is learnt from httpx's ``trace`` extension when the connection is made (each attempt has a
    connection of its own, see ``complete``), and a duplicate of it is kept: ``shutdown`` acts on the connection, not
    the descriptor, so it wakes a read blocked in another thread, even during a TLS handshake.
    """

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def trace(self, event: str, info: dict) -> None:
        if self._sock is not None or not event.endswith(".complete"):
            return
        get = getattr(info.get("return_value"), "get_extra_info", None)
        sock = get("socket") if get else None
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sock = sock.dup()
                if self.fired:
                    self._cut()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            self._cut()

    def _cut(self) -> None:
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed by the peer
                pass

    def close(self) -> None:
        with self._lock:
            self._timer.cancel()
            if self._sock is not None:
                self._sock.close()


class OpenAITeacher:
    backend = "openai"
    is_llm = True

    def __init__(
        self,
        model: str,
        base_url: str = "https://api.openai.com/v1",
        api_key_env: str = "OPENAI_API_KEY",
        temperature: float = 0.7,
        max_tokens: int = 512,
        concurrency: int = 8,
        seed: int = 0,
        price_input_per_m: float = 0.0,
        price_output_per_m: float = 0.0,
        budget: float | None = None,
        max_retries: int = 6,
        timeout: float = 120.0,
        max_reply_bytes: int = 1 << 20,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        messages_for: Callable[[Request], list[dict]] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.concurrency = concurrency
        self.seed = seed
        self.price_input_per_m = price_input_per_m
        self.price_output_per_m = price_output_per_m
        self.budget = budget
        self.max_retries = max_retries
        self.timeout = timeout
        self.max_reply_bytes = max_reply_bytes  # a chat reply is a few KB; a larger body is refused, never cached
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.messages_for = messages_for
        self.usage = Usage()
        self._url = f"{self.base_url}/chat/completions"
        self._rng = random.Random()

        key = os.environ.get(api_key_env, "")
        if not key and not is_loopback(self.base_url):
            raise TeacherConfigError(
                f"the API key for {self.base_url} is missing: set the environment variable {api_key_env} "
                "(an empty key is only accepted for a loopback base_url)"
            )
        self._headers = {"Content-Type": "application/json"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self.__key = key  # kept only to scrub it from any text that leaves this object

    # -- identity ----------------------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"OpenAITeacher(model={self.model!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"

    def settings(self) -> dict:
        """What changes the generations (goes into cache keys): never the key or the base_url."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": self.seed}

    def prompt_version(self, thought: str) -> str:
        if self.messages_for is None:
            from eotd import prompts

            return prompts.load(thought).version
        return "custom-" + hashlib.sha256(b"custom").hexdigest()[:12]

    # -- messages and replies ------------------------------------------------------------------------------------

    def _messages(self, request: Request) -> list[dict]:
        if self.messages_for is not None:
            return self.messages_for(request)
        from eotd import prompts

        return prompts.load(request.thought).messages(request.question)

    def _postprocess(self, request: Request, completion: Completion) -> Completion:
        if completion.text is None or self.messages_for is not None:
            return completion
        from eotd import prompts

        try:
            text = prompts.load(request.thought).parse(completion.text)
        except Exception as exc:  # a reply the prompt cannot read is a failed sample, not a failed run
            return Completion(None, completion.input_tokens, completion.output_tokens,
                              error=self._scrub(f"could not parse the reply: {type(exc).__name__}: {exc}"))
        return Completion(text, completion.input_tokens, completion.output_tokens, completion.error)

    def _reserve(self, messages: list[dict]) -> float:
        """Worst-case cost of one request: input ~ len(JSON of messages)/3 tokens (+4 per message), max_tokens out."""
        est_in = math.ceil(len(json.dumps(messages)) / 3) + 4 * len(messages)
        return (est_in * self.price_input_per_m + self.max_tokens * self.price_output_per_m) / 1e6

    def _scrub(self, text: str) -> str:
        return text.replace(self.__key, "***") if self.__key else text

    def _body(self, request: Request, messages: list[dict]) -> dict:
        return {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "n": 1,
            "seed": request_seed(self.seed, request.question_id, request.sample_index),
        }

    # -- one request, with retries -------------------------------------------------------------------------------

    @property
    def request_deadline(self) -> float:
        """Seconds one request can take at most, all attempts and back-off waits included."""
        return (self.max_retries + 1) * self.timeout + self.max_retries * self.backoff_cap

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """The wait before the next attempt: never more than backoff_cap (the deadline counts on it)."""
        if retry_after is not None:  # never earlier than asked, unless asked for more than the cap
            return min(retry_after + self._rng.uniform(0.0, min(0.1, 0.05 * retry_after + 0.01)), self.backoff_cap)
        return min(self.backoff_base * 2**attempt * self._rng.uniform(1.0, 1.1), self.backoff_cap)

    def _send(self, client: httpx.Client, request: Request, messages: list[dict], stop: threading.Event) -> Completion:
        completion = self._attempts(client, request, messages, stop)
        return replace(completion, error=_clean(self._scrub(completion.error))) if completion.error else completion

    def _attempts(self, client: httpx.Client, request: Request, messages: list[dict],
                  stop: threading.Event) -> Completion:
        body = self._body(request, messages)
        deadline = time.monotonic() + self.request_deadline
        last_error, attempts = "", 0
        for attempt in range(self.max_retries + 1):
            limit = min(self.timeout, deadline - time.monotonic())
            if stop.is_set():
                return Completion(None, error="cancelled")
            if limit <= 0:
                break
            attempts += 1
            retry_after = None
            watchdog = _Watchdog(limit)
            try:
                status, headers, content = self._post(client, body, limit, watchdog)
            except Exception as exc:  # whatever the server did, this attempt failed; a retry may do better
                if stop.is_set():  # the client was closed under us: the caller stopped consuming
                    return Completion(None, error="cancelled")
                if watchdog.fired or isinstance(exc, httpx.TimeoutException):
                    last_error = f"timeout: no complete reply within {limit:.3g}s ({type(exc).__name__})"
                elif isinstance(exc, httpx.RequestError):
                    last_error = f"connection error: {type(exc).__name__}: {exc}"
                else:
                    last_error = f"client error: {type(exc).__name__}: {exc}"
            else:
                text = content[: 4 * _SNIPPET].decode("utf-8", "replace")[:_SNIPPET] if content is not None else ""
                if content is None:
                    return Completion(None, error=f"reply too large: larger than {self.max_reply_bytes:,} bytes, "
                                                  "refused")
                if status in (401, 403):
                    raise TeacherConfigError(
                        f"{self.base_url} rejected the API key (HTTP {status}): check the environment variable "
                        f"{self.api_key_env}" + ("" if self.__key else " (it is empty)")
                    )
                if status == 404:
                    raise TeacherConfigError(
                        f"{self._url} answered 404 for model {self.model!r}: check base_url ({self.base_url}) "
                        "and model (does the server serve it under that name?)"
                    )
                if 200 <= status < 300:
                    try:
                        return self._valid(self._read(content))
                    except MalformedReply as exc:
                        last_error = f"malformed reply: {exc}: {text}"
                    except Exception as exc:  # anything else a hostile body sets off is a malformed reply too
                        last_error = f"malformed reply: {type(exc).__name__}: {exc}: {text}"
                elif status in _RETRY_STATUSES or status >= 500:
                    last_error = f"HTTP {status}: {text}"
                    retry_after = _retry_after(headers.get("retry-after"))
                else:  # another 4xx: the request itself is wrong (too long, bad parameter); retrying won't help
                    return Completion(None, error=f"HTTP {status}: {text}")
            finally:
                watchdog.close()
            last_error = _clean(self._scrub(last_error))
            if attempt == self.max_retries:
                break
            delay = self._backoff(attempt, retry_after)
            log.warning("%s (question %s, sample %d): %s; retry %d/%d in %.2fs", self.model, request.question_id,
                        request.sample_index, last_error, attempt + 1, self.max_retries, delay)
            if stop.wait(delay):
                return Completion(None, error="cancelled")
        return Completion(None, error=f"{last_error} (gave up after {attempts} attempts)")

    def _post(self, client: httpx.Client, body: dict, limit: float,
              watchdog: _Watchdog) -> tuple[int, httpx.Headers, bytes | None]:
        """(status, headers, body) of one request; the body is read at most max_reply_bytes far (None past it)."""
        with client.stream("POST", self._url, json=body, timeout=limit,
                           extensions={"trace": watchdog.trace}) as response:
            content = bytearray()
            for chunk in response.iter_bytes():
                content += chunk
                if len(content) > self.max_reply_bytes:
                    return response.status_code, response.headers, None
            return response.status_code, response.headers, bytes(content)

    @staticmethod
    def _valid(completion: Completion) -> Completion:
        """The completion, or a refusal when its text cannot be stored as UTF-8 (not retried: it is what the model
        wrote)."""
        why = invalid_text(completion.text) if completion.text is not None else None
        if why is None:
            return completion
        return Completion(None, completion.input_tokens, completion.output_tokens,
                          error=f"invalid text: the reply holds a {why}, refused")

    @staticmethod
    def _read(content: bytes) -> Completion:
        """The completion in a 2xx response body; MalformedReply when the body is not one (worth a retry)."""
        choice, tokens_in, tokens_out = first_choice(content)
        message = choice.get("message")
        if not isinstance(message, dict):
            raise MalformedReply("choices[0].message is not an object")
        text = message.get("content")
        if not isinstance(text, str) or not text.strip():
            reason = choice.get("finish_reason")
            reason = reason[:100] if isinstance(reason, str) else None  # a server's value, of any size or shape
            return Completion(None, tokens_in, tokens_out, error=f"empty reply (finish_reason={reason})")
        return Completion(text, tokens_in, tokens_out)

    # -- many requests -------------------------------------------------------------------------------------------

    def complete(self, requests: Iterable[Request]) -> Iterator[tuple[Request, Completion]]:
        """Yield each request with its completion as soon as it is done (any order), at most `concurrency` in flight.

        Requests are pulled from `requests` lazily. Closing the iterator early (break, KeyboardInterrupt) cancels
        the pending work and closes the HTTP client. A TeacherConfigError from any request is raised here.
        """
        stop = threading.Event()
        client = httpx.Client(  # no keep-alive: each attempt's watchdog learns its socket when it connects
            headers=self._headers,
            timeout=httpx.Timeout(self.timeout),
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=0),
        )
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai-teacher")
        in_flight: dict[Future, tuple[Request, float]] = {}
        reserved = 0.0
        pending = iter(requests)
        held: tuple[Request, list[dict], float] | None = None  # next request, waiting for the budget to allow it
        exhausted = stopping = False
        try:
            while True:
                while not (exhausted or stopping) and len(in_flight) < self.concurrency:
                    if held is None:
                        try:
                            request = next(pending)
                        except StopIteration:
                            exhausted = True
                            break
                        messages = self._messages(request)
                        held = (request, messages, self._reserve(messages))
                    request, messages, reserve = held
                    if self.budget is not None and self.usage.cost + reserved + reserve > self.budget:
                        if in_flight:
                            break  # in-flight reserves are worst cases: re-check once some settle
                        stopping = True
                        self.usage.stopped_by_budget = True
                        log.warning("%s: budget %.4f reached (spent %.4f); not sending further requests",
                                    self.model, self.budget, self.usage.cost)
                        break
                    held = None
                    reserved += reserve
                    in_flight[pool.submit(self._send, client, request, messages, stop)] = (request, reserve)
                if not in_flight:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    request, reserve = in_flight.pop(future)
                    reserved -= reserve
                    completion = future.result()  # re-raises TeacherConfigError
                    if completion.text is not None or completion.input_tokens or completion.output_tokens:
                        self.usage.add(completion, self.price_input_per_m, self.price_output_per_m)
                    yield request, self._postprocess(request, completion)
        finally:
            stop.set()
            for future in in_flight:
                future.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            client.close()
