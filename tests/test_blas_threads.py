"""The CLI keeps numpy's OpenBLAS to one thread unless the user says otherwise (docs/performance.md
"What a user pays"): its spinning threads cost more CPU than a hop's small matrices save."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("threadpoolctl")

BLAS_THREADS = ("import edge.cli; from threadpoolctl import threadpool_info; "
                "print(sorted({i['num_threads'] for i in threadpool_info() if i['internal_api'] == 'openblas'}))")


def blas_threads(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", BLAS_THREADS], env={**clean, **env}, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def test_the_cli_runs_numpy_with_one_blas_thread():
    assert blas_threads() == "[1]"


def test_a_users_own_blas_setting_wins():
    assert blas_threads(OPENBLAS_NUM_THREADS="2") == "[2]"
