"""CT, "Conv Transpose": a top solution of the NeurIPS 2023 Machine Unlearning challenge as Deep Unlearn re-implements
and ranks it (Cadet et al. 2024, arXiv 2410.01276; xcadet/deepunlearn @ munl/unlearning/kgltop5.py)."""

from __future__ import annotations

import torch

from benchmark.core.errors import UnlearnBenchError
from datamodules.access import RETAIN_FULL, DataView
from methods.base import TrainsOnRetain, register_method
from methods.blocks.layers import conv_layers
from methods.blocks.schedules import Schedule, cosine, scheduled


@register_method
class CT(TrainsOnRetain):
    """Transpose every convolution kernel (swap its height and width), then fine-tune on D_r.

    As kgltop5 (`KGLTop5.unlearn`): each `nn.Conv2d` weight [C_out, C_in, k, k] becomes `weight.swapaxes(2, 3)`, then
    cross-entropy on D_r with SGD and `CosineAnnealingLR(T_max=E)` stepped per epoch (factors (1 + cos(π e / E)) / 2:
    1, 0.75, 0.25 for E = 3). kgltop5's `vision_confuser` and `CustomCrossEntropyLoss` are never called: not part of it.

    Readings: the kernels are transposed in place (the authors assign a new Parameter, the same values), so the
    optimizer holds the transposed weights. Only square kernels: a k_h × k_w kernel would run as k_w × k_h with the
    layer's padding and stride unchanged (the authors' code does not check), so a non-square one is refused; every
    model `benchmark.models` builds has square kernels (1×1, 3×3, 4×4). `schedule="step"` follows the cosine at every
    step (our option; the authors step per epoch). `cost/transposed` counts the layers transposed.

    Data: the full retain set only. Defaults (`configs/methods/CT/deepunlearn.yaml`): kgltop5's `ORIGINAL_*`: SGD lr
    1e-3, momentum 0.9, weight decay 5e-4, 3 epochs, batch 64.
    """

    data_access = RETAIN_FULL
    defaults = "configs/methods/CT/deepunlearn.yaml"

    def __init__(self, *, schedule: Schedule = "epoch", **kwargs) -> None:
        """
        Args:
            schedule: the cosine factor stepped per `epoch` (kgltop5) or per optimizer `step`.
        """
        super().__init__(**kwargs)
        self.schedule = schedule

    def prepare(self, data: DataView) -> None:
        convs = conv_layers(self.model, type(self).__name__)
        rectangular = [f"{name} ({h}×{w})" for name, conv in convs for h, w in [conv.weight.shape[-2:]] if h != w]
        if rectangular:
            raise UnlearnBenchError(f"CT transposes square convolution kernels only; the model has non-square ones: {', '.join(rectangular)}")
        with torch.no_grad():
            for _, conv in convs:
                conv.weight.copy_(conv.weight.transpose(-1, -2).clone())
        self.cost["cost/transposed"] = float(len(convs))

    def configure_optimizers(self):
        return scheduled(self, cosine(self.num_epochs()), self.schedule)
