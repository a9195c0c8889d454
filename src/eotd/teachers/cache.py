"""An on-disk cache of teacher completions, so that no paid call is ever made twice.

SQLite in WAL mode, one committed transaction per completion: a run killed at any point (Ctrl-C, crash, power loss)
keeps every completion that had arrived, and the file is never left half-written. Each row carries a checksum of
its key, text and token counts: a row altered after it was written is refused (logged, and asked again), never
served. A file that is not a readable SQLite database is a CacheError naming the file and what to do.
"""
from __future__ import annotations

import hashlib
import json
import logging
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
    created TEXT NOT NULL DEFAULT (datetime('now')),
    checksum TEXT
)
"""
log = logging.getLogger(__name__)


class CacheError(RuntimeError):
    """The cache file cannot be used as it is."""


def checksum(key: str, text: str, input_tokens: int, output_tokens: int) -> str:
    return hashlib.sha256(json.dumps([key, text, input_tokens, output_tokens]).encode()).hexdigest()


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
        self.refused = 0  # rows whose checksum did not match (asked again)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)  # autocommit: each put is one transaction
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(completions)")}
            if "checksum" not in columns:  # a cache written before checksums: its rows are served as they are
                self._db.execute("ALTER TABLE completions ADD COLUMN checksum TEXT")
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None

    def _error(self, exc: Exception) -> CacheError:
        return CacheError(f"{self.path}: not a usable completion cache ({type(exc).__name__}: {exc}). Move it aside "
                          f"(mv {self.path} {self.path}.broken) and re-run: a fresh cache is made and the "
                          "completions are asked again (the annotation teacher is free; a paid teacher costs again)")

    def get(self, key: str) -> Completion | None:
        try:
            row = self._db.execute(
                "SELECT text, input_tokens, output_tokens, checksum FROM completions WHERE key = ?", (key,)
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None
        if not row:
            return None
        text, tokens_in, tokens_out, stored = row
        if stored is not None and stored != checksum(key, text, tokens_in, tokens_out):
            self.refused += 1
            log.warning("%s: completion %s was altered after it was written (checksum mismatch): asking again",
                        self.path, key[:12])
            return None
        return Completion(text, tokens_in, tokens_out)

    def put(self, key: str, request: Request, completion: Completion) -> None:
        """Store a usable completion (failures are not cached: the next run asks again)."""
        if completion.text is None:
            return
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO completions (key, request, text, input_tokens, output_tokens, checksum) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key, json.dumps(vars(request)), completion.text, completion.input_tokens, completion.output_tokens,
                 checksum(key, completion.text, completion.input_tokens, completion.output_tokens)),
            )
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        self._db.close()
