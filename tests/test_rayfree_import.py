"""The layers below tune/tracking import with Ray and MLflow unavailable."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
sys.modules["ray"] = None
sys.modules["mlflow"] = None
import raynas.config, raynas.data, raynas.nets, raynas.spaces, raynas.engine, raynas.stages
from raynas.nets import make_op, build_network
from raynas.spaces import MixedOp, load_space
assert load_space("c2f_small").describe()["topologies"] == 30
bad = [m for m in sys.modules if m.split(".")[0] in ("ray", "mlflow") and sys.modules[m]]
assert not bad, bad
print("ok")
"""


def test_import_without_ray_and_mlflow():
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")
