import shutil
import subprocess
from pathlib import Path

import pytest


def test_ruff_clean():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed: pip install '.[test]'")
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run([ruff, "check", "."], cwd=root, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
