"""Parameter holders: modules that own Tensors with ``requires_grad=True``.

A :class:`Module` finds its parameters by walking its attributes (Tensors that
require grad, sub-Modules, and lists/tuples/dicts of them), as ``torch.nn.Module``
does, so ``model.parameters()`` and ``model.state_dict()`` need no registration.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from .tensor import Tensor


def parameter(array: Any, name: str | None = None) -> Tensor:
    """A leaf Tensor that requires grad: a trainable parameter."""
    return Tensor(array, requires_grad=True, name=name)


def glorot(rng: np.random.Generator, fan_in: int, fan_out: int,
           shape: tuple[int, ...] | None = None, dtype: Any = np.float64) -> np.ndarray:
    """Glorot/Xavier uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out))."""
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape or (fan_in, fan_out)).astype(dtype)


class Module:
    """Base class of the parameter holders."""

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """(dotted name, Tensor) for every parameter, in attribute order, each once."""
        seen: set[int] = set()
        for name, t in _walk(self, prefix):
            if id(t) not in seen:
                seen.add(id(t))
                yield name, t

    def parameters(self) -> list[Tensor]:
        return [t for _, t in self.named_parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters()))

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: t.data.copy() for name, t in self.named_parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        params = dict(self.named_parameters())
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing {missing}, unexpected {unexpected}")
        for name, t in params.items():
            value = np.asarray(state[name])
            if value.shape != t.shape:
                raise ValueError(f"load_state_dict: {name} has shape {value.shape}, the "
                                 f"model expects {t.shape}")
            t.data = value.astype(t.dtype, copy=True)

    def save(self, path: str) -> None:
        """Save the parameters to a ``.npz`` file."""
        np.savez(path, **self.state_dict())

    def load(self, path: str) -> None:
        with np.load(path) as f:
            self.load_state_dict({k: f[k] for k in f.files})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def _walk(obj: Any, prefix: str) -> Iterator[tuple[str, Tensor]]:
    if isinstance(obj, Tensor):
        if obj.requires_grad and obj.is_leaf:
            yield prefix, obj
    elif isinstance(obj, Module):
        for key, value in vars(obj).items():
            yield from _walk(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _walk(value, f"{prefix}.{i}" if prefix else str(i))
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _walk(value, f"{prefix}.{key}" if prefix else str(key))
