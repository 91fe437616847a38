"""CFk: catastrophic forgetting of the last k blocks (Goel et al. 2022, *Towards Adversarial Evaluations for Inexact
Machine Unlearning*, arXiv 2201.06640, "CF-k"), a baseline of SCRUB and of the OPTML papers."""

from datamodules.access import RETAIN_FULL
from methods.base import register_method
from methods.blocks.layers import TrainsLastBlocks


@register_method
class CFk(TrainsLastBlocks):
    """Fine-tune the original's last `k` blocks on D_r with cross-entropy, everything below frozen; the forget set is
    forgotten only through the catastrophic forgetting of those blocks (`methods.blocks.layers` says which modules
    the last k blocks are, and how the frozen ones are kept unchanged).

    As SCRUB's code (meghdadk/SCRUB @ resnet50_cifar100.ipynb cell 21, `cfk_unlearn` with `fk_fientune`): SGD lr 0.01,
    no momentum, no weight decay, 10 epochs, batch 64; its step decay at epochs [10, 15, 20] is never reached in 10
    epochs, so the rate is constant. The OPTML papers use k = 1 and 10 epochs (Unlearn-WorstCase issue #1).
    Defaults: `configs/methods/CFk/scrub.yaml`.

    Readings of what the sources leave open or disagree on:
    - the paper's "last k layers" include the classifier (its code counts from it), so the head trains by default
      (`head="train"`); SCRUB's code trains `layer4` alone, its `fc` frozen (`head="frozen"`);
    - the frozen modules run in evaluation mode (`frozen_mode="eval"`); SCRUB's code keeps the whole model in train
      mode, so the frozen blocks' BatchNorm running statistics drift to D_r's (`frozen_mode="train"`). The base
      setting `batchnorm="reestimate"` re-estimates every BatchNorm, the frozen ones included.
    """

    data_access = RETAIN_FULL
    defaults = "configs/methods/CFk/scrub.yaml"
