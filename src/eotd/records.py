"""JSONL in and out: every written file appears whole or not at all (write to a temp file, then rename). A path in a
written record is written as `paths.relative` names it, never as this machine's absolute path."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterable

from eotd import paths


class RecordError(ValueError):
    pass


def utf8_text(path: str | Path, error: type[Exception] = ValueError) -> str:
    """The file as UTF-8 text; bytes that are not UTF-8 raise `error` naming the file, the line and the column."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise error(f"{path}: line {line}: column {column}: byte 0x{raw[e.start]:02x} is not UTF-8; "
                    "re-save the file as UTF-8") from None


def read_jsonl(path: str | Path, required: Iterable[str] = ()) -> list[dict]:
    """Rows of a JSONL file; a bad line or a missing field is an error naming the file, the line and the field."""
    path = Path(path)
    rows = []
    for number, line in enumerate(utf8_text(path, RecordError).split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise RecordError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        missing = [field for field in required if field not in row]
        if missing:
            raise RecordError(f"{path}:{number}: missing field(s) {missing}")
        rows.append(row)
    return rows


def atomic_write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make results unreadable to others
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _plain(value) -> str:
    return paths.relative(value) if isinstance(value, Path) else str(value)


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> Path:
    return atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False, default=_plain) + "\n" for row in rows))


def write_json(path: str | Path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=_plain) + "\n")


def replace_marked_block(path: str | Path, start: str, end: str, body: str) -> bool:
    """Put `body` (which begins with `start` and ends with `end`) in place of the text between those markers in a
    file such as README.md, or append it when the file has neither; True when the file changed."""
    path = Path(path)
    text = path.read_text() if path.exists() else ""
    i, j = text.find(start), text.find(end)
    if i == -1 and j == -1:
        new = text + ("\n" if text and not text.endswith("\n") else "") + ("\n" if text else "") + body + "\n"
    elif i == -1 or j == -1 or j < i:
        raise ValueError(f"{path}: needs both {start} and {end}, in that order")
    else:
        new = text[:i] + body + text[j + len(end):]
    if new == text:
        return False
    path.write_text(new)
    return True
