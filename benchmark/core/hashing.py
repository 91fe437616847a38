"""Content hashes of tensors: the identity of an original model (tracks) and of cached one-off work (adversarial sets)."""

from __future__ import annotations

import hashlib

import torch


def tensors_sha256(tensors: dict[str, torch.Tensor], extra: str = "") -> str:
    """SHA-256 over (name, dtype, shape, bytes) of every tensor in sorted name order, then `extra`: independent of
    device, memory layout and how a file was saved."""
    digest = hashlib.sha256()
    for name, tensor in sorted(tensors.items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")  # reshape: 0-d tensors (BatchNorm counts)
    digest.update(extra.encode())
    return digest.hexdigest()


def state_dict_sha256(model: torch.nn.Module) -> str:
    """`tensors_sha256` of the model's state dict (weights and buffers)."""
    return tensors_sha256(model.state_dict())
