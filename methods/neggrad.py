"""NegGrad: gradient ascent on the forget set (seed 000 eq. 3, after Golatkar et al. 2020)."""

from datamodules.access import FORGET_ONLY
from methods.base import UnlearningMethod, register_method
from methods.blocks.objectives import GOAL_SPLIT, Goal, unlearning_loss


@register_method
class NegGrad(UnlearningMethod):
    """Minimise L_UL^MS(D_f; θ) = −L_CE(g_θ(x_f), y_f) (seed 000 eq. 3) until D_f is misclassified.

    Defaults (`configs/methods/NegGrad/seed000.yaml`) are seed 000's (§Experimental details): SGD, lr 1e-3,
    momentum 0.9, weight decay 1e-5, early stop when D_f accuracy is 0 %, at most 100 epochs (seed 001
    Algorithm 3). The papers do not give a batch size; 64 is our choice. Algorithm 3 checks after each epoch
    (`budget.stop_check=epoch`); the authors' code checks after every step (`step`). With `goal="relabel"` it
    is `Correct` (eq. 4).
    """

    data_access = FORGET_ONLY
    defaults = "configs/methods/NegGrad/seed000.yaml"

    def __init__(self, *, goal: Goal = "misclassify", **kwargs) -> None:
        """
        Args:
            goal: `misclassify` D_f (L_UL^MS, eq. 3) or `relabel` it to the request's new labels (L_UL^Cor, eq. 4);
                also the stop criterion unless `budget.stop` says otherwise.
        """
        super().__init__(**kwargs)
        self.goal = goal
        self.train_splits = (GOAL_SPLIT[goal],)

    def training_step(self, batch, batch_idx):
        x, y = batch[self.train_splits[0]]
        loss = unlearning_loss(self.model(x), y, self.goal)
        self.log_train("train/loss", loss)
        return loss
