"""The original model, unchanged: the papers' BEFORE row."""

from datamodules.access import CLASS_IDS_ONLY
from methods.base import UnlearningMethod, register_method


@register_method
class Original(UnlearningMethod):
    """No unlearning at all (BEFORE in seed 000 Table 1, "Original Model" in seed 002 Table I)."""

    data_access = CLASS_IDS_ONLY
    train_splits = ()

    def __init__(self) -> None:
        super().__init__()

    def num_epochs(self) -> int:
        return 0

    def training_step(self, batch, batch_idx):  # never called: zero epochs
        raise RuntimeError("Original does not train")
