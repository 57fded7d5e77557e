"""The engine imports neither ray nor mlflow."""

from __future__ import annotations

import subprocess
import sys


def test_engine_imports_without_ray_and_mlflow():
    code = (
        "import sys; sys.modules['ray'] = None; sys.modules['mlflow'] = None\n"
        "import raynas.engine as e\n"
        "assert all(hasattr(e, n) for n in e.__all__)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
