"""The linter over the whole repository (ruff.toml: pycodestyle, pyflakes, isort order at 120 columns), run by
``make test`` and so by CI."""
import shutil
import subprocess
import sys

import pytest

from mmdistkd.testing import REPO


def test_repository_passes_the_linter():
    ruff = shutil.which('ruff', path=f'{sys.prefix}/bin') or shutil.which('ruff')
    if ruff is None:
        pytest.fail('ruff is not installed: run `make setup` (requirements/tests.txt pins it)')
    result = subprocess.run([ruff, 'check', '--no-cache', '.'], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
