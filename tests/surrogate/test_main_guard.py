"""A script without `if __name__ == "__main__":` gets one clear line, not a pool re-importing it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from surrogate.errors import MainGuardError
from surrogate.executors import _has_main_guard, check_main_guard

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("source", "guarded"),
    [
        ('if __name__ == "__main__":\n    main()\n', True),
        ("if '__main__' == __name__:\n    main()\n", True),
        ("main()\n", False),
        ("def f():\n    if __name__ == '__main__':\n        pass\nf()\n", False),  # not top level
        ("if __name__ != '__main__':\n    pass\n", False),
        ("this is not python (\n", True),  # not ours to judge
    ],
)
def test_guard_detection(source, guarded):
    assert _has_main_guard(source) is guarded


def test_check_main_guard_names_the_script(tmp_path):
    script = tmp_path / "study.py"
    script.write_text("from analysis.study import run_study\nrun_study('runs/x', 'smoke')\n")
    main = types.SimpleNamespace(__file__=str(script))
    with pytest.raises(MainGuardError, match=r"study\.py starts a dagrank job at import time"):
        check_main_guard(main)
    script.write_text("if __name__ == '__main__':\n    pass\n")
    check_main_guard(main)  # guarded: fine
    check_main_guard(types.SimpleNamespace())  # interactive, -c: nothing to re-import


def test_a_script_without_the_guard_stops_before_the_pool_in_one_line(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent("""
        import sys
        from surrogate.errors import MainGuardError
        from surrogate.executors import LocalExecutor

        try:
            LocalExecutor(workers=2, devices=["cpu"])._new_pool()
        except MainGuardError as err:
            print("refused:", err)
            sys.exit(3)
        print("a pool was started")
    """))  # fmt: skip
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env={"PYTHONPATH": str(ROOT),
                                                      "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert done.stdout.count("\n") == 1 and "if __name__ ==" in done.stdout
