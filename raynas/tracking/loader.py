"""The MLflow model of a network ``torch.export`` cannot handle: a state dict and an
Architecture JSON, rebuilt by this file (MLflow "models from code", a ``pyfunc`` model).

MLflow copies this file into the model package and runs it at load time: nothing is unpickled
(weights with ``torch.load(weights_only=True)``, the Architecture as JSON). Loading needs raynas
installed (it is in the model's requirements). ``load_pytorch_model`` returns the ``nn.Module``;
``mlflow.pyfunc.load_model(uri).predict(x)`` gives the logits as a numpy array.
"""

from __future__ import annotations

from typing import Any

import mlflow.models
import mlflow.pyfunc

WEIGHTS = "weights"
ARCHITECTURE = "architecture"


class ArchitectureModel(mlflow.pyfunc.PythonModel):
    """A raynas network rebuilt from its Architecture JSON and state dict."""

    def load_context(self, context: Any) -> None:
        import torch

        from raynas.nets import build_network, load_architecture

        with open(context.artifacts[ARCHITECTURE], encoding="utf-8") as fh:
            arch = load_architecture(fh.read())
        net = build_network(arch)
        net.load_state_dict(torch.load(context.artifacts[WEIGHTS], weights_only=True))
        self.network = net.eval()

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        import numpy as np
        import torch

        with torch.no_grad():
            x = torch.as_tensor(np.asarray(model_input, dtype=np.float32))
            return self.network(x).numpy()


mlflow.models.set_model(ArchitectureModel())
