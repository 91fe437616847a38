"""Seed 004 (Yoon et al., *Few-shot Unlearning by Model Inversion*) as CPU variants, a suite per table.

- `fewshot_table4` (App. C, Table 4): erase a whole class (9, 8, 7 of scikit-learn's digits, for MNIST's) given all of it
  or 3 % of it; `fewshot_table6` (App. D.2) Ours_neg on class 9 with BatchNorm (`--arch narrow_cnn_ln` / `narrow_cnn_in`:
  LayerNorm / InstanceNorm), `fewshot_table7` (App. D.3) the scrubbing ablation on class 9, `fewshot_table8` (App. E) the
  attack success rates and penultimate feature norms on class 9; they share records.
- `fewshot_table1` (§5.1-5.3, Table 1) on `fashion_sub` (Fashion-MNIST, sandals merged into sneakers as Footwear, the
  sandals the subclass, as 7̄ inside 7): the mislabelled subclass (trained as Ankle boot, D_e scored against Footwear,
  as 7̄-noisyMNIST), the subclass (7̄-MNIST) and the class Ankle boot (Truck-CIFAR10's analogue, from the clean
  9-class original); `fewshot_table2` (§5.2) its attacks and feature norms on the subclass; `fewshot_table5` (App. D.1)
  the subclass given 100 / 30 / 10 / 3 % or one image.

D_r / D_e are the test accuracies on the images outside / inside what is erased (`test_retain/acc`,
`test_forget/acc`); the rows are the paper's, with its names. The originals are trained with Φ's shift and weight
decay (`digits_fewshot`, `fashion_sub` recipes): the paper gives only that f_o was trained under Φ.
"""

from __future__ import annotations

from dataclasses import replace

from benchmark.metrics.evaluator import Evaluation
from benchmark.suites.base import MIA_SAMPLES, SUITES, Request, Row, Suite
from datamodules.datasets.fashion_sub import ANKLE_BOOT, FOOTWEAR

FEW = {"fraction": 0.03}
"""The paper's few-shot rows: 3 % of D_e given (the rest of it stays in the training set)."""
SEED004 = Evaluation(mia=True, mia_attacks=["mia/svm_asr"], mia_samples=MIA_SAMPLES, relearn=False, representations=True)
"""Test accuracies, the SVM attack success rate (§5.2) and the penultimate feature norms (`{split}/feature_norm`, §5.2's
watermark) in every run, so the accuracy, privacy and ablation tables share their records."""
LABELS = {"test_retain/acc": "D_r, test (↑)", "test_forget/acc": "D_e, test", "mia/svm_asr": "ASR on D_e (↓)",
          "retain/feature_norm": "L2 norm, D_r", "forget/feature_norm": "L2 norm, D_e"}


def ours(intention: str, few: bool = False, **init) -> Row:
    return Row(f"Ours_{intention}{' (3%)' if few else ''}", "FewShotInversion", {"intention": intention, **init}, FEW if few else {})


def oracle(intention: str, seeds: tuple[int, ...] | None = None, **init) -> Row:
    return Row(f"Oracle_{intention}", "Retrain", {}, seeds=seeds) if intention == "std" else \
        Row(f"Oracle_{intention}", "IntentionOracle", {"intention": intention, **init}, seeds=seeds)


FASHION_INVERSION = {"inversion": {"steps": 500, "batch_size": 64, "width": 32}}
"""The fashion_sub suites' inversion: a step of the default G (width 64, 128 images of 28 × 28) takes 1.1 s of one core
(37 min for 2,000 steps); at a quarter of G's width and half the batch 0.21 s, so 500 steps take 105 s and Table 1's 18
inversions 32 min (CPU time, measured with the `fashion_sub` original). On digits the default runs."""
ONCE = (0,)
"""On fashion_sub the Oracles (training from scratch, 10 min each) run for seed 0 only, as the paper's single numbers."""

CLASS_ROWS = (
    Row("Original", "Original"),
    oracle("std"), oracle("unt"), oracle("neg"),
    Row("Incompetent", "Incompetent"), Row("Neutralized", "Neutralized"), Row("Fisher", "Fisher"),
    ours("std"), ours("unt"), ours("neg"),
    ours("std", few=True), ours("unt", few=True), ours("neg", few=True),
)
"""Table 4's rows (App. C): Oracles from scratch, the baselines on the full D and D_e, Ours on D_e and on 3 % of it."""

TABLE4 = SUITES.register("fewshot_table4")(Suite(
    title="Seed 004 (ICML) Table 4, CPU variant: erase a whole class of digits (9 / 8 / 7) from its images alone, all of them or 3 %",
    dataset="digits",
    ks=(),
    classes=((9,), (8,), (7,)),
    recipe="digits_fewshot",
    rows=CLASS_ROWS,
    evaluation=SEED004,
    main_metrics=("test_retain/acc", "test_forget/acc"),
    companion_metrics=("forget/acc", "mia/svm_asr", "retain/feature_norm", "forget/feature_norm", "cost/filtered", "cost/filtered_e",
                       "cost/plus_share", "cost/knee_found", "cost/seconds"),
    metric_labels=LABELS,
))

SUITES.register("fewshot_table7")(replace(
    TABLE4,
    title="Seed 004 (ICML) Table 7, CPU variant: Ours_std with and without scrubbing, erasing class 9 of digits; and with "
          "train-mode BatchNorm while relearning (alone, and with the authors' code's scrub loader mixing in D̃_r)",
    classes=((9,),),
    rows=(Row("Original", "Original"), oracle("std"), ours("std"), Row("Ours_std-scrub", "FewShotInversion", {"intention": "std", "scrub": False}),
          ours("std", few=True), Row("Ours_std-scrub (3%)", "FewShotInversion", {"intention": "std", "scrub": False}, FEW),
          Row("Ours_std, train-mode BN", "FewShotInversion", {"intention": "std", "batchnorm": "train"}),
          Row("Ours_std, train-mode BN, scrub with D̃_r", "FewShotInversion", {"intention": "std", "batchnorm": "train", "scrub_set": "all"})),
    records="fewshot_table4",
))

SUITES.register("fewshot_table6")(replace(
    TABLE4,
    title="Seed 004 (ICML) Table 6, CPU variant: Ours_neg erasing class 9 of digits from an original with BatchNorm; "
          "`--arch narrow_cnn_ln` / `narrow_cnn_in` for LayerNorm / InstanceNorm (ℓ_bn off, ℓ_tar on their inputs)",
    classes=((9,),),
    rows=(Row("Original", "Original"), oracle("neg"), ours("neg"), ours("neg", few=True)),
    records="fewshot_table4",
))

SUITES.register("fewshot_table8")(replace(
    TABLE4,
    title="Seed 004 (ICML) Table 8, CPU variant: attack success rate and penultimate feature norms after erasing class 9 of digits",
    classes=((9,),),
    rows=tuple(r for r in CLASS_ROWS if "(3%)" not in r.label),
    main_metrics=("mia/svm_asr", "retain/feature_norm", "forget/feature_norm"),
    companion_metrics=("test_retain/acc", "test_forget/acc", "cost/seconds"),
    records="fewshot_table4",
))

NOISY = Request("sandals mislabelled (7̄-noisy)", "Subclass", {"mislabelled": True})
SUB = Request("sandals (7̄)", "Subclass", {})
CLASS = Request("Ankle boot (Truck)", "WholeClasses", {"classes": [ANKLE_BOOT]})

TABLE1 = SUITES.register("fewshot_table1")(Suite(
    title="Seed 004 (ICML) Table 1, CPU variant on fashion_sub: correct a mislabelled subclass, erase a subclass, erase a class",
    dataset="fashion_sub",
    ks=(),
    requests=(NOISY, SUB, CLASS),
    recipe="fashion_sub",
    rows=(
        Row("Original", "Original"),
        oracle("std", ONCE), oracle("unt", ONCE), oracle("neg", ONCE),
        Row("Oracle_cor", "IntentionOracle", {"intention": "cor", "correct_label": FOOTWEAR}, columns=(NOISY.label,), seeds=ONCE),
        Row("Incompetent", "Incompetent"), Row("Neutralized", "Neutralized"), Row("Fisher", "Fisher"),
        ours("std", **FASHION_INVERSION), ours("unt", **FASHION_INVERSION), ours("neg", **FASHION_INVERSION),
        Row("Ours_cor", "FewShotInversion", {"intention": "cor", "correct_label": FOOTWEAR, **FASHION_INVERSION}, columns=(NOISY.label,)),
        ours("std", few=True, **FASHION_INVERSION), ours("unt", few=True, **FASHION_INVERSION), ours("neg", few=True, **FASHION_INVERSION),
        Row("Ours_cor (3%)", "FewShotInversion", {"intention": "cor", "correct_label": FOOTWEAR, **FASHION_INVERSION}, FEW, columns=(NOISY.label,)),
    ),
    evaluation=SEED004,
    main_metrics=("test_retain/acc", "test_forget/acc"),
    companion_metrics=TABLE4.companion_metrics,
    metric_labels=LABELS,
))
"""The mislabelled twin's D_e is scored against Footwear, its correct label (`test_forget` holds the true labels)."""

SUITES.register("fewshot_table2")(replace(
    TABLE1,
    title="Seed 004 (ICML) Table 2, CPU variant: attack success rate and penultimate feature norms after erasing the sandals subclass",
    requests=(SUB,),
    rows=tuple(r for r in TABLE1.rows if not r.columns),
    main_metrics=("mia/svm_asr", "retain/feature_norm", "forget/feature_norm"),
    companion_metrics=("test_retain/acc", "test_forget/acc", "cost/seconds"),
    records="fewshot_table1",
))

SUITES.register("fewshot_table5")(replace(
    TABLE1,
    title="Seed 004 (ICML) Table 5, CPU variant: erase the sandals subclass given 100 / 30 / 10 / 3 % of it or one image",
    requests=(SUB,),
    rows=(Row("Original", "Original"),
          *(Row(f"{name} ({label})", method, init, change, seeds=ONCE if name.startswith("Oracle") else None) for name, method, init in (
              ("Oracle_std", "Retrain", {}), ("Oracle_unt", "IntentionOracle", {"intention": "unt"}),
              ("Oracle_neg", "IntentionOracle", {"intention": "neg"}), ("Ours_std", "FewShotInversion", {"intention": "std", **FASHION_INVERSION}),
              ("Ours_unt", "FewShotInversion", {"intention": "unt", **FASHION_INVERSION}),
              ("Ours_neg", "FewShotInversion", {"intention": "neg", **FASHION_INVERSION}))
            for label, change in (("100%", {}), ("30%", {"fraction": 0.3}), ("10%", {"fraction": 0.1}), ("3%", FEW), ("1", {"one_image": True})))),
    records="fewshot_table1",
))
"""At p < 100 % the rest of the subclass stays in D_r, so the Oracles train on it (App. D.1)."""
