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


def test_a_corrupt_file_names_itself_and_the_fix(tmp_path):
    import pytest

    from eotd.teachers.cache import CacheError

    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CacheError) as info:
        CompletionCache(path)
    assert str(path) in str(info.value) and "mv " in str(info.value)


def test_an_altered_completion_is_refused_and_asked_again(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = CompletionCache(path)
    cache.put("k1", REQ, Completion("ans = 1", 10, 5))
    cache.put("k2", REQ, Completion("ans = 2", 10, 5))
    cache.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE completions SET text = 'ans = 999' WHERE key = 'k1'")
    db.commit()
    db.close()
    cache = CompletionCache(path)
    assert cache.get("k1") is None and cache.refused == 1  # a miss: the synthesis stage asks the teacher again
    assert cache.get("k2").text == "ans = 2"
    cache.put("k1", REQ, Completion("ans = 1", 10, 5))
    assert cache.get("k1").text == "ans = 1"
    cache.close()


def test_a_cache_from_before_checksums_still_serves(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE completions (key TEXT PRIMARY KEY, request TEXT NOT NULL, text TEXT NOT NULL, "
               "input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, created TEXT NOT NULL DEFAULT "
               "(datetime('now')))")
    db.execute("INSERT INTO completions (key, request, text, input_tokens, output_tokens) VALUES "
               "('k', '{}', 'ans = 3', 1, 1)")
    db.commit()
    db.close()
    assert CompletionCache(path).get("k").text == "ans = 3"
