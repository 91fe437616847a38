"""BadTeaching: unlearning by bad teaching (Chundawat, Tarun, Mandal & Kankanhalli, *Can Bad Teaching Induce
Forgetting? Unlearning in Deep Networks using an Incompetent Teacher*, AAAI 2023, arXiv 2205.08096), the field's
"BadT" baseline, with its own defaults; the algorithm is `Incompetent`'s (seed 004's name for the same method)."""

from methods.base import register_method
from methods.incompetent import Incompetent


@register_method
class BadTeaching(Incompetent):
    """The student (from the original) distils the competent teacher (the frozen original) on retain rows and the
    incompetent teacher (a frozen, randomly initialised model of the same architecture) on forget rows: the KL of
    each row's tempered teacher softmax to the student's, the teacher picked by the row's unlearning label (§3 of the
    paper; `bad_teaching_loss`), over D_f joined with a random 30 % of D_r into one shuffled set. Everything but the
    defaults is `Incompetent`'s (its docstring gives the readings of the authors' code,
    vikram2000b/bad-teaching-unlearning @ unlearn.py, dataset.py, CIFARSuper20_Rocket_Unlearn.ipynb).

    Defaults (`configs/methods/BadTeaching/badt.yaml`): the authors' code's T = 1, Adam lr 1e-4, 1 epoch, batch 256,
    30 % of D_r (⌊0.3 · |D_r|⌋ rows), and one departure from it: `reduction=batchmean`, the KL averaged over rows as the
    paper's KL is defined; the code's `F.kl_div` default (`mean`, over rows × classes, a gradient about 1/K as large) is
    `reduction=mean`, `Incompetent`'s default.
    """

    defaults = "configs/methods/BadTeaching/badt.yaml"
