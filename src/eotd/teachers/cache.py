"""An on-disk cache of teacher completions, so that no paid call is ever made twice.

SQLite in WAL mode, one committed transaction per completion: a run killed at any point (Ctrl-C, crash, power loss)
keeps every completion that had arrived, and the file is never left half-written.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from eotd.teachers.base import Completion, Request

_SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    key TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    text TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    created TEXT NOT NULL DEFAULT (datetime('now'))
)
"""


def cache_key(backend: str, model: str, prompt_version: str, settings: dict, request: Request) -> str:
    """Hash of everything that determines a completion (never the API key or the endpoint URL)."""
    material = {
        "backend": backend, "model": model, "prompt": prompt_version, "settings": settings,
        "question_id": request.question_id, "question": request.question, "thought": request.thought,
        "sample": request.sample_index,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class CompletionCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)  # autocommit: each put is its own transaction
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)

    def get(self, key: str) -> Completion | None:
        row = self._db.execute(
            "SELECT text, input_tokens, output_tokens FROM completions WHERE key = ?", (key,)
        ).fetchone()
        return Completion(*row) if row else None

    def put(self, key: str, request: Request, completion: Completion) -> None:
        """Store a usable completion (failures are not cached: the next run asks again)."""
        if completion.text is None:
            return
        self._db.execute(
            "INSERT OR REPLACE INTO completions (key, request, text, input_tokens, output_tokens) VALUES (?, ?, ?, ?, ?)",
            (key, json.dumps(vars(request)), completion.text, completion.input_tokens, completion.output_tokens),
        )

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        self._db.close()
