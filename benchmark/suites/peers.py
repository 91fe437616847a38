"""The field's baselines (issue 20) beside U-LiRA: Deep Unlearn (arXiv 2410.01276) finds that the per-sample U-LiRA
(Hayes et al. 2024) separates methods that population attacks do not. One request of the digits peers' random track
(10 % of digits, seed 0), each baseline at the configuration of its leaderboard entry there (its official defaults with
the tuned learning rate or α, `configs/methods/<Method>/tuned-digits-peers-random10.yaml`), U-LiRA with 8 shadow
originals beside the population attacks. The original is the track's model and recipe (`narrow_cnn_bn`,
`digits_fewshot`), pretrained here as U-LiRA's shadow originals are (not the track's committed checkpoint: the attack
needs the target trained the way its shadows are). The track itself has no U-LiRA column: 8 shadow runs per method and
seed are beyond what CI verifies."""

from __future__ import annotations

from benchmark.metrics.evaluator import Evaluation
from benchmark.suites.base import SUITES, Row, Suite
from methods.base import load_defaults

PEERS = ("RL", "SalUn", "L1Sparse", "NegGrad", "FineTune", "IU", "BE", "BS", "SCRUB", "NegGradPlus", "SSD", "LFSSD", "BadTeaching",
         "Amnesiac", "Fisher", "CFk", "EUk", "MSG", "CT")
TRACK = "digits-peers-random10"

SUITES.register("peers_ulira")(Suite(
    title="The field's baselines on digits' random 10 % (k = 144, seed 0): U-LiRA (8 shadows) beside the population attacks",
    dataset="digits",
    ks=(144,),
    seeds=(0,),
    arch="narrow_cnn_bn",
    recipe="digits_fewshot",
    evaluation=Evaluation(mia=True, ulira=True, ulira_shadows=8),
    rows=(Row("Original", "Original"), Row("Retrain", "Retrain"),
          *(Row(name, name, load_defaults(f"configs/methods/{name}/tuned-{TRACK}.yaml")) for name in PEERS)),
    companion_metrics=("mia/ulira_acc", "mia/ulira_auc", "mia/efficacy", "mia/svm_asr", "mia/loss_auc", "cost/seconds"),
))
