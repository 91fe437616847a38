"""Every random generator a run draws from (torch, CUDA, numpy, Python), as tensors, so a Lightning checkpoint holding
them loads with `weights_only=True`; a resumed fit sets them back (`UnlearningMethod.on_fit_start`)."""

from __future__ import annotations

import math
import random

import numpy as np
import torch


def random_state() -> dict[str, torch.Tensor]:
    """This process's generators now."""
    _, mt, position, has_gauss, gauss = np.random.get_state()
    _, python, python_gauss = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": torch.tensor([*mt.tolist(), position, has_gauss], dtype=torch.int64),
             "python": torch.tensor(python, dtype=torch.int64),
             "gauss": torch.tensor([gauss, math.nan if python_gauss is None else python_gauss], dtype=torch.float64)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_random_state(state: dict[str, torch.Tensor]) -> None:
    """Set this process's generators to `state` (`random_state`'s)."""
    torch.set_rng_state(state["torch"].cpu().clone())  # (a row of a gathered tensor, a view at an offset, crashes it: torch 2.14)
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu().clone())
    numpy, (gauss, python_gauss) = state["numpy"].tolist(), state["gauss"].tolist()
    np.random.set_state(("MT19937", np.array(numpy[:-2], dtype=np.uint32), numpy[-2], numpy[-1], gauss))
    random.setstate((3, tuple(state["python"].tolist()), None if math.isnan(python_gauss) else python_gauss))
