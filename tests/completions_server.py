"""A real OpenAI-compatible *completions* server on 127.0.0.1 that serves a transformers model greedily, for tests:

    with CompletionsServer(folder, name="PoTD") as server:
        ...  # POST {server.base_url}/completions {"model": "PoTD", "prompt": ..., "max_tokens": N, "temperature": 0}

Requests are answered one at a time (a lock around generation), with the model's own greedy continuation through
eotd.infer, or with `reply(prompt, max_tokens)` for scripted outputs; a request for another model name gets 404, as
vLLM answers.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from eotd import infer, models


class CompletionsServer:
    def __init__(self, folder: str | None, name: str, reply: Callable[[str, int], str] | None = None) -> None:
        if reply is None:
            model, tokenizer = models.load(folder)
            reply = lambda prompt, n: infer.generate(model, tokenizer, [prompt], n, batch_size=1)[0]  # noqa: E731
        self.reply = reply
        self.name, self.hits, self._lock = name, 0, threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if self.path.rstrip("/") != "/v1/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                if body.get("model") != server.name:
                    return self._send(404, {"error": {"message": f"model {body.get('model')!r} does not exist"}})
                with server._lock:
                    server.hits += 1
                    text = server.reply(body["prompt"], int(body["max_tokens"]))
                self._send(200, {"id": f"cmpl-{server.hits}", "object": "text_completion", "model": server.name,
                                 "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                                 "usage": {"prompt_tokens": 0, "completion_tokens": len(text.split())}})

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> "CompletionsServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)
