"""Backend registry: who runs a recurrent stack, and which one ``backend="auto"`` picks.

A backend states which configurations it can run (:meth:`Backend.unsupported` returns the reason it
cannot, or ``None``) and runs them. ``auto`` tries the registered backends in priority order and takes
the first that can run the configuration on the input's device and dtype; ``reference`` can run
everything, so ``auto`` always succeeds. A backend may also decline ``auto`` for configurations it can run
but measured slower than the next one (``auto_declines``; the table is in ``docs/kernels.md``). An
explicitly requested backend that cannot run a configuration raises a ``ValueError`` that says what it
supports.

Later kernels (Triton on GPU, a fused CPU path for the variants) register themselves here with a
priority; nothing else in the package changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import torch
from torch import Tensor

if TYPE_CHECKING:
    from lstmkit.core.reference import RNNSpec


class Backend(Protocol):
    name: str
    supports: str  # one line for error messages and docs: what this backend can run

    def unsupported(self, spec: RNNSpec, device: torch.device | None, dtype: torch.dtype | None) -> str | None:
        """Why this backend cannot run ``spec`` on ``device``/``dtype`` (``None`` = it can).

        ``device``/``dtype`` are ``None`` for a configuration-only check made at construction time.
        """

    def forward(
        self,
        spec: RNNSpec,
        module: torch.nn.Module,
        x: Tensor,
        h0: Tensor,
        c0: Tensor | None,
        lengths: Tensor | None,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Run the stack over ``x`` (in the module's layout) from (h0, c0); return output, h_n, c_n."""


_REGISTRY: dict[str, Backend] = {}
_PRIORITY: dict[str, int] = {}


def register(backend: Backend, priority: int) -> None:
    """Add ``backend``; ``auto`` tries higher ``priority`` first."""
    _REGISTRY[backend.name] = backend
    _PRIORITY[backend.name] = priority


def names() -> list[str]:
    """Registered backend names, ``auto``'s order first."""
    return sorted(_REGISTRY, key=lambda n: -_PRIORITY[n])


def get(name: str) -> Backend:
    if name not in _REGISTRY:
        raise ValueError(f"backend={name!r} is unknown; use 'auto' or one of {names()}")
    return _REGISTRY[name]


def check_name(name: object) -> str:
    """Validate a user's ``backend=`` argument."""
    if not isinstance(name, str) or (name != "auto" and name not in _REGISTRY):
        raise ValueError(f"backend={name!r} is unknown; use 'auto' or one of {names()}")
    return name


def resolve(name: str, spec: RNNSpec, device: torch.device | None, dtype: torch.dtype | None) -> Backend:
    """The backend that will run ``spec``: ``name`` itself (checked) or, for ``auto``, the best one."""
    if name == "auto":
        for candidate in names():
            backend = _REGISTRY[candidate]
            if backend.unsupported(spec, device, dtype) is not None:
                continue
            # A backend can run a configuration and still be slower there than the next one (measured):
            declines = getattr(backend, "auto_declines", None)
            if declines is not None and device is not None and declines(spec, device, dtype):
                continue
            return backend
        raise RuntimeError("no registered backend can run this configuration")  # reference runs all
    backend = get(name)
    reason = backend.unsupported(spec, device, dtype)
    if reason is not None:
        raise ValueError(
            f"backend={name!r} cannot run this configuration: {reason}. "
            f"It supports {backend.supports}; use backend='auto' to fall back to one that can."
        )
    return backend


def _register_builtin() -> None:
    from lstmkit.core.backends.native import NativeBackend
    from lstmkit.core.backends.reference import ReferenceBackend

    register(ReferenceBackend(), priority=0)
    register(NativeBackend(), priority=100)
    # The fused kernels import their toolchains (Triton, the C++ compiler) only when first asked to run.
    try:
        from lstmkit.core.backends.cpu_fused import CPUFusedBackend
    except ImportError:
        pass
    else:
        register(CPUFusedBackend(), priority=50)
    try:
        from lstmkit.core.backends.triton_lstm import TritonBackend
    except ImportError:
        pass
    else:
        register(TritonBackend(), priority=200)


_register_builtin()
