"""Hostile and broken PoT programs: each must yield a verdict, never hang or harm the caller."""
import os
import textwrap
from fractions import Fraction

import pytest

from eotd import verify, verify_many
from eotd.sandbox import Sandbox


def pot(source: str, gold=1, **options):
    return verify("pot", textwrap.dedent(source), gold, **options)


@pytest.mark.parametrize(
    "source, reason",
    [
        ("while True:\n    pass\n", "timeout"),
        ("import os\nos.fork()\nans = 1\n", "forbidden"),
        ("import os\nos.system('touch /tmp/eotd-pwned')\nans = 1\n", "forbidden"),
        ("ans = len(open('/etc/passwd').read())\n", "forbidden"),
        ("import socket\nans = 1\n", "forbidden"),
        ("import subprocess\nans = 1\n", "forbidden"),
        ("import ctypes\nans = 1\n", "forbidden"),
        ("x = [0] * int(1e10)\nans = 1\n", "memory"),
        ("import sys\nsys.exit(0)\n", "forbidden"),
        ("raise SystemExit(3)\n", "runtime_error"),
        ("def f(n):\n    return f(n + 1)\nans = f(0)\n", "runtime_error"),
        ("ans = 1/0\n", "runtime_error"),
        ("ans = = 3\n", "syntax_error"),
        ("x = 3\n", "no_answer"),
        ("ans = 'seven'\n", "non_numeric"),
        ("ans = [1, 2]\n", "non_numeric"),
        ("ans = None\n", "no_answer"),
    ],
)
def test_hostile_or_broken_programs_get_a_verdict(source, reason):
    verdict = pot(source, timeout=2.0)
    assert not verdict.correct
    assert verdict.reason == reason, verdict


def test_subclass_walk_to_os_is_still_refused(tmp_path):
    target = tmp_path / "pwned"
    source = f"""
        for cls in ().__class__.__base__.__subclasses__():
            if cls.__name__ == '_wrap_close':
                cls.__init__.__globals__['system']('touch {target}')
        ans = 1
    """
    verdict = pot(source)
    assert verdict.reason == "forbidden"
    assert not target.exists()


def test_writing_outside_the_temp_dir_is_refused(tmp_path):
    target = tmp_path / "out.txt"
    verdict = pot(f"open({str(target)!r}, 'w').write('x')\nans = 1\n")
    assert verdict.reason == "forbidden"
    assert not target.exists()


def test_files_inside_the_temp_dir_are_allowed():
    assert pot("open('scratch.txt', 'w').write('41')\nans = int(open('scratch.txt').read()) + 1\n", 42).correct


def test_environment_is_empty(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    verdict = pot("import os\nans = len(os.environ)\n", 0)
    assert verdict.reason == "forbidden"  # os is not importable at all
    verdict = pot(
        """
        env = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0].__init__.__globals__['environ']
        ans = int("OPENAI_API_KEY" in env or any("sk-secret" in v for v in env.values())) + len(env) * 10
        """,
        0,
    )
    # Python itself may set LC_CTYPE (PEP 538 locale coercion); nothing of the caller's environment is there.
    assert verdict.answer in (0, 10), verdict


def test_huge_output_is_absorbed():
    assert pot("print('x' * (100 * 2**20))\nans = 7\n", 7).correct


def test_fork_bomb_does_not_spread():
    source = """
        for c in ().__class__.__base__.__subclasses__():
            if c.__name__ == '_wrap_close':
                fork = c.__init__.__globals__['fork']
        while True:
            fork()
    """
    assert pot(source, timeout=2.0).reason == "forbidden"


def test_solution_function_and_ans_variable_are_both_accepted():
    assert pot("def solution():\n    return 6 * 7\n", 42).correct
    assert pot("def solution():\n    return 1\nans = 42\n", 42).correct


def test_allowed_imports_work():
    source = """
        import math, fractions, itertools, datetime
        from sympy import Rational
        ans = Rational(1, 3) + fractions.Fraction(2, 3) + math.floor(2.5) + len(list(itertools.permutations([1, 2])))
    """
    verdict = pot(source, 5)
    assert verdict.correct, verdict
    assert verdict.answer == 5


def test_exact_and_float_answers_are_kept():
    assert pot("from fractions import Fraction\nans = Fraction(1, 3)\n", Fraction(1, 3)).answer == Fraction(1, 3)
    assert isinstance(pot("ans = 0.1 + 0.2\n", Fraction(3, 10)).answer, float)


def test_a_crash_does_not_poison_the_pool():
    sandbox = Sandbox(workers=1)
    try:
        crash = "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]" \
            ".__init__.__globals__['_exit'](1)"
        items = [("pot", "while True: pass", 1), ("pot", crash, 1), ("pot", "ans = 2", 2)]
        verdicts = verify_many(items, timeout=1.0, sandbox=sandbox)
        assert [v.reason for v in verdicts] == ["timeout", "runtime_error", "ok"]
    finally:
        sandbox.close()


def test_state_does_not_leak_between_programs():
    sandbox = Sandbox(workers=1)
    try:
        items = [("pot", "import math\nmath.pi = 3\nans = 1", 1), ("pot", "import math\nans = math.pi", 3.141592653589793)]
        verdicts = verify_many(items, sandbox=sandbox)
        assert verdicts[1].correct, verdicts
    finally:
        sandbox.close()


def test_caller_is_unharmed():
    pid = os.getpid()
    pot("while True:\n    pass\n", timeout=1.0)
    assert os.getpid() == pid


def test_network_is_unreachable_even_past_the_import_guard():
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    source = f"""
        import sys
        ans = 1
    """
    assert pot(source).reason == "forbidden"
    walk = f"""
        g = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0].__init__.__globals__
        sock = g['sys'].modules['_socket'].socket()
        sock.connect(('127.0.0.1', {port}))
        ans = 1
    """
    verdict = pot(walk)
    server.close()
    assert verdict.reason in ("forbidden", "runtime_error"), verdict
    assert not accepted
