import sqlite3

from eotd.teachers.base import Completion, Request
from eotd.teachers.cache import CompletionCache, cache_key

REQ = Request("q-1", "How many?", "pot", 0)


def key(**changes):
    base = {"backend": "openai", "model": "m", "prompt_version": "abc", "settings": {"temperature": 0.7}, "request": REQ}
    base.update(changes)
    return cache_key(**base)


def test_key_changes_with_everything_that_changes_a_completion():
    keys = {
        key(), key(backend="transformers"), key(model="m2"), key(prompt_version="abd"),
        key(settings={"temperature": 0.0}), key(request=Request("q-2", "How many?", "pot", 0)),
        key(request=Request("q-1", "How many?", "eot", 0)), key(request=Request("q-1", "How many?", "pot", 1)),
        key(request=Request("q-1", "How many now?", "pot", 0)),
    }
    assert len(keys) == 9
    assert key() == key()


def test_completions_survive_reopening(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = CompletionCache(path)
    cache.put("k1", REQ, Completion("ans = 1", 10, 5))
    cache.close()
    reopened = CompletionCache(path)
    assert reopened.get("k1") == Completion("ans = 1", 10, 5)
    assert reopened.get("k2") is None
    assert len(reopened) == 1


def test_failures_are_not_cached(tmp_path):
    cache = CompletionCache(tmp_path / "c.sqlite")
    cache.put("k1", REQ, Completion(None, error="http 500"))
    assert cache.get("k1") is None and len(cache) == 0


def test_each_put_is_committed_immediately(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = CompletionCache(path)
    cache.put("k1", REQ, Completion("x", 1, 1))
    other = sqlite3.connect(path)  # a second reader sees it without close(): nothing waits in a transaction
    assert other.execute("SELECT COUNT(*) FROM completions").fetchone()[0] == 1
