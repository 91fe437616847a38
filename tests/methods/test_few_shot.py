"""FewShotInversion (seed 004's "Ours") on digits with a tiny budget: D_e-only access, the intentions' effects on D̃_e,
the scrub and relearn phases, the cost entries, one-line errors, the cache of G and D̃. G and D̃ are made once, by the
first run, and read from the cache by the others (the same original, request, settings and seed)."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.core.errors import UnlearnBenchError
from benchmark.experiment.runner import attach, run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from datamodules.scenarios import WholeClasses
from datamodules.datasets.augment import crop
from methods.few_shot import NEGATIVE, SOFT, FewShotInversion
from tests.methods import fixtures

SMALL = {"samples_per_condition": 40, "scrub_epochs": 2, "inversion": {"steps": 30, "batch_size": 32},
         "budget": {"max_epochs": 2, "batch_size": 64}, "optimizer": {"init_args": {"lr": 0.01}}}
"""30 inversion steps of 32 images, 11 × 40 samples, 2 scrub and 2 relearning epochs of batch 64 at lr 0.01 (the
paper's 10 epochs at 1e-3 would take longer)."""
BN = Pretrained(arch="narrow_cnn_bn")
Y_E, CORRECT = 9, 4
"""D_e: every training 9 of digits; `cor` pretends 4 is their correct label."""
SHARED: dict = {}


class Shared(FewShotInversion):
    """The phase of every step recorded; `made` counts the sets made, not read from the cache."""

    def generated_set(self, data):
        SHARED["made"] = SHARED.get("made", 0) + 1
        return super().generated_set(data)

    def training_step(self, batch, batch_idx):
        self.phases = [*getattr(self, "phases", []), self.phase]
        return super().training_step(batch, batch_idx)


RUNS: dict = {}


def unlearned(tmp_path_factory, intention: str, **kwargs) -> tuple[Shared, dict]:
    """One run per (intention, settings) per session."""
    key = (intention, tuple(sorted(kwargs.items())))
    if key not in RUNS:
        method = Shared(**SMALL, intention=intention, **kwargs)
        record = run(method, WholeClasses(classes=[Y_E]), BN, results_dir=str(tmp_path_factory.mktemp("few_shot")), progress=False,
                     evaluation=Evaluation(mia=False))
        RUNS[key] = method, record
    return RUNS[key]


def mean_probability(model: torch.nn.Module, x: torch.Tensor, label: int) -> float:
    with torch.no_grad():
        return torch.softmax(model.eval()(x), dim=-1)[:, label].mean().item()


def test_the_method_sees_only_d_e_and_reading_retain_data_fails(tmp_path):
    method = FewShotInversion(**SMALL)
    attach(method, WholeClasses(classes=[Y_E]), BN, progress=False)
    assert set(method.data["forget"].targets.tolist()) == {Y_E}
    fixtures.assert_reads_only(method, ("forget",))

    class Snooping(FewShotInversion):
        def cached_generated_set(self, data):
            data["retain"]

    fixtures.assert_a_snooping_run_writes_nothing(Snooping(**SMALL), WholeClasses(classes=[Y_E]), BN, "retain", tmp_path)


def test_cor_needs_the_correct_label_a_one_line_error_before_any_work(tmp_path):
    with pytest.raises(UnlearnBenchError, match="intention 'cor' relabels D̃_e to the correct label") as error:
        FewShotInversion(intention="cor")
    assert "\n" not in str(error.value)
    with pytest.raises(UnlearnBenchError, match="correct_label = 4 is only read by intention 'cor', not 'neg'"):
        FewShotInversion(intention="neg", correct_label=4)
    for label, message in ((Y_E, "is D_e's label y_e already"), (12, r"is not a class of digits \[0, 10\)")):
        method = FewShotInversion(**SMALL, intention="cor", correct_label=label)
        with pytest.raises(UnlearnBenchError, match=message):
            run(method, WholeClasses(classes=[Y_E]), BN, results_dir=str(tmp_path), progress=False)
        assert method.generated is None  # (checked before the inversion)
    assert not list(tmp_path.rglob("*.json"))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"augmentations": ["rotate"]}, r"unknown augmentation 'rotate'; known: crop, crop_flip, flip"),
    ({"augmentations": []}, "augmentations is empty"),
    ({"bandwidth": [1.0, -2.0]}, r"FewShotInversion\.bandwidth = \[1\.0, -2\.0\] is not allowed"),
    ({"inversion": {"steps": 0}}, r"inversion\.steps = 0 is not allowed"),
])
def test_bad_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(UnlearnBenchError, match=message) as error:
        FewShotInversion(**kwargs)
    assert "\n" not in str(error.value)


def test_crop_shifts_with_zero_fill_and_never_flips():
    x = torch.rand(64, 1, 8, 8)
    out = crop(x)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    shifts = [padded[..., dy : dy + 8, dx : dx + 8] for dy in range(3) for dx in range(3)]
    assert all(any(torch.equal(out[i], s[i]) for s in shifts) for i in range(64))
    assert not any(torch.equal(out[i], x[i].flip(-1)) for i in range(64))


def test_neg_lowers_p_ye_on_the_filtered_d_e(tmp_path_factory):
    method, _ = unlearned(tmp_path_factory, "neg")
    x = method.generated.erase_x
    before, after = mean_probability(method.original, x, Y_E), mean_probability(method.model, x, Y_E)
    assert before > 0.5 and after < before - 0.3
    assert method.phases == ["relearn"] * len(method.phases)  # no scrub (§4.3)
    assert (method.relearn_rows.kinds == NEGATIVE).sum() == len(x) + len(method.data["forget"])  # D̃_e and D_e


def test_cor_raises_the_correct_labels_probability_on_the_filtered_d_e(tmp_path_factory):
    method, _ = unlearned(tmp_path_factory, "cor", correct_label=CORRECT)
    x = method.generated.erase_x
    before, after = mean_probability(method.original, x, CORRECT), mean_probability(method.model, x, CORRECT)
    assert after > before + 0.3


@pytest.mark.parametrize("scrub", [True, False])
def test_std_scrubs_then_relearns_and_scrub_false_skips_the_scrub(tmp_path_factory, scrub):
    method, record = unlearned(tmp_path_factory, "std", scrub=scrub)
    f, batch = method.generated.filtration, SMALL["budget"]["batch_size"]
    erase, retain = f.n_erase + len(method.data["forget"]), int(f.retain.sum())
    assert len(method.scrub_rows) == erase and len(method.relearn_rows) == retain  # std relearns on D̃_r only
    scrub_steps, relearn_steps = math.ceil(erase / batch), math.ceil(retain / batch)
    expected = ["scrub"] * (2 * scrub_steps if scrub else 0) + ["relearn"] * (2 * relearn_steps)
    assert method.phases == expected
    assert record["timings"]["cost/epochs"] == (4 if scrub else 2) and record["timings"]["cost/steps"] == len(expected)
    labels = method.scrub_rows.targets
    assert torch.equal(labels.sum(1), torch.ones(erase)) and labels.max() == 1 and len(set(labels.argmax(1).tolist())) > 1  # one-hot, random


def test_scrubbing_erases_the_response_that_relearning_on_d_r_alone_keeps(tmp_path_factory):
    """Table 7 in small: Ours_std − scrub still answers y_e on D̃_e, Ours_std does not."""
    scrubbed, _ = unlearned(tmp_path_factory, "std", scrub=True)
    kept, _ = unlearned(tmp_path_factory, "std", scrub=False)
    x = scrubbed.generated.erase_x
    assert mean_probability(scrubbed.model, x, Y_E) < mean_probability(kept.model, x, Y_E) - 0.2


def test_the_cost_records_the_inversion_and_the_filtration(tmp_path_factory):
    method, record = unlearned(tmp_path_factory, "std", scrub=True)
    timings, f = record["timings"], method.generated.filtration
    assert timings["cost/generated"] == 11 * SMALL["samples_per_condition"] == f.n_generated
    assert timings["cost/filtered"] == f.n_kept == len(f.x) and 0 < timings["cost/filtered_e"] == f.n_erase < f.n_kept
    assert timings["cost/knee_found"] in (0.0, 1.0) and 0.0 <= timings["cost/plus_share"] <= 1.0
    assert timings["cost/inversion_seconds"] > 0 and timings["cost/filtration_seconds"] > 0
    assert timings["cost/prepare_seconds"] >= timings["cost/inversion_seconds"] + timings["cost/filtration_seconds"]


def test_the_intentions_share_one_cached_g_and_d_tilde_counted_as_spent(tmp_path_factory):
    (std, std_record), (neg, neg_record) = unlearned(tmp_path_factory, "std", scrub=True), unlearned(tmp_path_factory, "neg")
    assert SHARED["made"] == 1
    a, b = std.generated.filtration, neg.generated.filtration
    assert torch.equal(a.x, b.x) and torch.equal(a.erase, b.erase) and a.t_f == b.t_f
    for (name, pa), pb in zip(std.generated.generator.state_dict().items(), neg.generated.generator.state_dict().values()):
        assert torch.equal(pa, pb), name
    timings = [record["timings"] for _, record in RUNS.values()]  # (the runs of this process so far, one set among them)
    made = [t for t in timings if t["cost/reused_seconds"] == 0]
    assert len(made) == 1 and all(t["cost/reused_seconds"] == pytest.approx(made[0]["cost/inversion_seconds"] + made[0]["cost/filtration_seconds"])
                                  for t in timings if t is not made[0])
    other = Shared(**{**SMALL, "seed": 12345}, intention="std")
    attach(other, WholeClasses(classes=[Y_E]), BN, progress=False)
    other.generation_seed = 12345
    other.cached_generated_set(other.data)
    assert SHARED["made"] == 2


@pytest.mark.parametrize("intention", ["std", "unt", "neg", "cor"])
def test_every_intention_runs_end_to_end(tmp_path_factory, intention):
    method, record = unlearned(tmp_path_factory, intention, **({"correct_label": CORRECT} if intention == "cor" else {}))
    assert {"forget/acc", "retain/acc", "test/acc"} <= set(record["metrics"]) and record["diverged"] is None
    assert record["hparams"]["intention"] == intention
    rows, extra = method.relearn_rows, method.generated.filtration.n_erase + len(method.data["forget"])
    assert len(rows) == int(method.generated.filtration.retain.sum()) + (0 if intention == "std" else extra)
    if intention == "unt":  # the untrained model's softmax: soft, unlike f_o's confident labels
        ie = rows.targets[-extra:]
        assert torch.allclose(ie.sum(1), torch.ones(extra)) and ie.max() < 0.9 and (rows.kinds == SOFT).all()
        assert method.phases[0] == "scrub"


def test_hard_untrained_labels_are_one_hot_and_include_given_false_leaves_d_e_out(tmp_path_factory):
    method, _ = unlearned(tmp_path_factory, "unt", unt_labels="hard")
    n = method.generated.filtration.n_erase + len(method.data["forget"])
    ie = method.relearn_rows.targets[-n:]
    assert torch.equal(ie.sum(1), torch.ones(n)) and set(ie.unique().tolist()) == {0.0, 1.0}
    method, _ = unlearned(tmp_path_factory, "neg", include_given=False)
    assert (method.relearn_rows.kinds == NEGATIVE).sum() == method.generated.filtration.n_erase
    assert len(method.scrub_rows) == method.generated.filtration.n_erase


def test_without_batchnorm_the_bn_loss_is_switched_off_with_one_warning():
    """small_cnn has no normalisation layer: ℓ_bn and ℓ_tar are off, said once although the cache key and the inversion
    both ask for the settings."""
    method = FewShotInversion(**SMALL)
    attach(method, WholeClasses(classes=[Y_E]), Pretrained(), progress=False)
    with pytest.warns(UserWarning, match="no normalisation layers") as caught:
        first, again = method.settings_for(method.original), method.settings_for(method.original)
    assert len([w for w in caught if "FewShotInversion" in str(w.message)]) == 1
    assert first is again and first.w_bn == 0.0 and first.w_tar == 0.0


def test_the_bn_loss_asked_on_a_model_without_batchnorm_is_refused_in_one_line():
    """Table 6's LayerNorm original: ℓ_bn unset is off (and ℓ_tar hooks the LayerNorms, no warning); a w_bn > 0 given
    for it cannot be honoured and is refused, naming the setting."""
    for w_bn, outcome in ((None, 0.0), (0.0, 0.0), (0.5, "error")):
        method = FewShotInversion(**{**SMALL, "inversion": {**SMALL["inversion"], "w_bn": w_bn}})
        attach(method, WholeClasses(classes=[Y_E]), Pretrained("narrow_cnn_ln"), progress=False)
        if outcome == "error":
            with pytest.raises(UnlearnBenchError, match=r"^FewShotInversion: ℓ_bn \(w_bn = 0.5\) needs BatchNorm .* has none \(set w_bn to 0") as error:
                method.settings_for(method.original)
            assert "\n" not in str(error.value)
        else:
            settings = method.settings_for(method.original)
            assert settings.w_bn == outcome and settings.w_tar == SMALL["inversion"].get("w_tar", 1.0)


def test_a_fit_that_makes_g_and_d_tilde_ends_where_one_that_reads_them_from_the_cache_ends(tmp_path):
    """Making the set and reading it draw nothing from the global generators, so the fit goes on from the same random
    numbers (they differed: the filtration's augmentations, D_e's loader, G's initial weights)."""
    made_before = SHARED.get("made", 0)
    records = [run(Shared(**{**SMALL, "seed": 777}), WholeClasses(classes=[Y_E]), BN, results_dir=str(tmp_path / str(i)), progress=False,
                   evaluation=Evaluation(mia=False, curves=True)) for i in range(2)]
    assert SHARED["made"] == made_before + 1  # (the first made it, the second read it)
    assert records[0]["metrics"] == records[1]["metrics"] and records[0]["curves"] == records[1]["curves"]
    weights = [torch.load(r["weights"], weights_only=True)["state_dict"] for r in records]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
