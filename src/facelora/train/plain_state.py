"""A state_dict as safetensors + JSON, so a training state is saved and loaded without pickle
(nothing in it can run code), and the random generators' states in the same form."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from ..errors import FaceloraError


class ResumeError(FaceloraError):
    """No usable state to resume from, or one that does not fit this run."""



def to_json(obj: Any, tensors: dict[str, torch.Tensor], path: str) -> Any:
    """`obj` with each tensor replaced by {"__tensor__": key} (the tensor put in `tensors`), tuples
    and dicts with non-string keys tagged, so from_json rebuilds the same structure."""
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu().clone()
        return {"__tensor__": path}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: to_json(v, tensors, f"{path}.{k}") for k, v in obj.items()}
        return {"__items__": [[to_json(k, tensors, f"{path}.k{i}"), to_json(v, tensors, f"{path}.{i}")]
                              for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, tuple):
        return {"__tuple__": [to_json(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [to_json(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise ResumeError("Cannot save a {type} in the training state ({path}); this optimizer or scheduler keeps "
                      "values facelora cannot save without pickle.", type=type(obj).__name__, path=str(path))


def from_json(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__tuple__" in obj:
            return tuple(from_json(v, tensors) for v in obj["__tuple__"])
        if "__items__" in obj:
            return {from_json(k, tensors): from_json(v, tensors) for k, v in obj["__items__"]}
        return {k: from_json(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_json(v, tensors) for v in obj]
    return obj


def rng_states() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda{i}"] = s
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    rest = {"python": to_json(random.getstate(), {}, "python"),
            "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)]}
    return tensors, rest


def set_rng_states(tensors: dict[str, torch.Tensor], rest: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("cuda")), key=lambda k: int(k[4:]))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    random.setstate(from_json(rest["python"], {}))
    kind, keys, pos, has_gauss, gauss = rest["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
