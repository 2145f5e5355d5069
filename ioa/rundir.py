"""The run directory: where every artifact of a run lives, and the only state a resumed run reads.

Every file a run writes is named here once; the rest of the package asks `RunDir` / `RoundDir` for it.

    DIR/config.yaml                       the validated configuration of the run
    DIR/.lock                             held by the process working on the run (ioa.lock)
    DIR/probes.jsonl                      held-out composite problems per module (never trained on)
    DIR/test_items.jsonl                  the held-out test set (eval.test_items_per_module > 0)
    DIR/attempts.jsonl                    graded teacher + student attempts on probes and their steps
    DIR/responses_before.jsonl            the student's raw answers before any training
    DIR/probe_usage.json                  teacher calls spent on probing, and whether the budget counts them
    DIR/diagnosis.json                    Identifier output
    DIR/test_before.json                  accuracy on the test set before training (with a test set)
    DIR/benchmarks/<before|after>/        `ioa eval` output (results.json, samples) when eval.benchmarks is set
    DIR/curriculum.json                   Organizer output
    DIR/adapter.json                      the Adapter calibration pilot: candidate forms, pilot scores, choices
    DIR/calibration/pilot_items.jsonl     the pilot's held-out items (apart from probes, test items, training prompts)
    DIR/calibration/start/                the student's weights before the pilot (every form starts from them)
    DIR/calibration/<form>/               one form's pilot round: train.jsonl, synthesis.json, metrics.json,
                                          state/, eval.json (the same names as a stage's round)
    DIR/teacher_calls.jsonl               the LLM teacher's call ledger (ioa.llm.accounting)
    DIR/stages/<n>/round-<r>/train.jsonl  the round's training examples (synth | remedial | replay)
    DIR/stages/<n>/round-<r>/synthesis.json  the round's example counts and teacher usage (the budget reads them)
    DIR/stages/<n>/round-<r>/trainer/     trainer checkpoints (deleted once the round is trained)
    DIR/stages/<n>/round-<r>/state/       the student's trainable weights after the round (+ optimizer.pt: AdamW's
                                          moments, with student.carry_optimizer)
    DIR/stages/<n>/round-<r>/metrics.json training metrics
    DIR/stages/<n>/round-<r>/curve.json   accuracy on the reported items after the round (eval.curve)
    DIR/stages/<n>/round-<r>/eval.json    per-module accuracy on held-out probes (stage + earlier)
    DIR/stages/<n>/round-<r>/gate.json    the mastery gate decision
    DIR/stages/<n>/round-<r>/errors.json  error-targeted: the student's wrong answers on its training problems
    DIR/stages/<n>/round-<r>/self_instruct.json  self-instruct: task pool statistics
    DIR/stages/<n>/selected.json          the round the stage ended on (best held-out accuracy)
    DIR/final_eval.json                   per-module accuracy after the last stage
    DIR/model/                            the final merged model (from_pretrained / vLLM loadable)
    DIR/summary.json                      written last: {"status": "finished", "modules": [...], ...}
    DIR/timings.json                      wall seconds per phase
    DIR/memory.json                       peak resident MiB per phase (Linux; `other`: between phases)
    DIR/report.md, report.html, plots/    the report
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


def eval_results(out: Path) -> Path:
    """`ioa eval`'s OUT/results.json (every benchmark's status, metrics and settings), in a run directory
    or wherever `ioa eval --out` puts it."""
    return Path(out) / "results.json"


@dataclass(frozen=True)
class RoundDir:
    """DIR/stages/<n>/round-<r>/: one training round."""

    path: Path

    @classmethod
    def of_state(cls, state: Path) -> RoundDir:
        """The round whose `state` folder this is."""
        return cls(state.parent)

    @property
    def index(self) -> int:
        return int(self.path.name.split("-")[1])

    @property
    def stage(self) -> int:
        return int(self.path.parent.name)

    @property
    def train(self) -> Path:
        return self.path / "train.jsonl"

    @property
    def synthesis(self) -> Path:
        return self.path / "synthesis.json"

    @property
    def trainer(self) -> Path:
        return self.path / "trainer"

    @property
    def state(self) -> Path:
        return self.path / "state"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def curve(self) -> Path:
        return self.path / "curve.json"

    @property
    def eval(self) -> Path:
        return self.path / "eval.json"

    @property
    def gate(self) -> Path:
        return self.path / "gate.json"

    @property
    def errors(self) -> Path:
        return self.path / "errors.json"

    @property
    def self_instruct(self) -> Path:
        return self.path / "self_instruct.json"


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def probes(self) -> Path:
        return self.root / "probes.jsonl"

    @property
    def test_items(self) -> Path:
        return self.root / "test_items.jsonl"

    @property
    def attempts(self) -> Path:
        return self.root / "attempts.jsonl"

    @property
    def responses_before(self) -> Path:
        return self.root / "responses_before.jsonl"

    @property
    def probe_usage(self) -> Path:
        return self.root / "probe_usage.json"

    @property
    def diagnosis(self) -> Path:
        return self.root / "diagnosis.json"

    @property
    def test_before(self) -> Path:
        return self.root / "test_before.json"

    def benchmarks(self, when: str) -> Path:
        """`ioa eval`'s output folder for the benchmarks run `when` ("before" or "after") training."""
        return self.root / "benchmarks" / when

    def benchmark_results(self, when: str) -> Path:
        return eval_results(self.benchmarks(when))

    @property
    def curriculum(self) -> Path:
        return self.root / "curriculum.json"

    @property
    def teacher_calls(self) -> Path:
        return self.root / "teacher_calls.jsonl"

    @property
    def adapter_choice(self) -> Path:
        """The calibration pilot's record: candidate forms, their pilot scores, each module's chosen form."""
        return self.root / "adapter.json"

    @property
    def calibration(self) -> Path:
        return self.root / "calibration"

    @property
    def pilot_items(self) -> Path:
        return self.calibration / "pilot_items.jsonl"

    @property
    def pilot_start(self) -> Path:
        """The student's weights before the pilot: every form trains from them, and the curriculum starts from them."""
        return self.calibration / "start"

    def pilot_form(self, form: str) -> RoundDir:
        """One candidate form's pilot round: train.jsonl, synthesis.json (the shared problems' cost, on the first
        form only), metrics.json, state/, eval.json."""
        return RoundDir(self.calibration / form)

    def pilot_forms(self) -> list[RoundDir]:
        """The pilot rounds on disk."""
        if not self.calibration.is_dir():
            return []
        return sorted((RoundDir(p) for p in self.calibration.iterdir() if p.is_dir() and p != self.pilot_start),
                      key=lambda r: r.path.name)

    @property
    def stages(self) -> Path:
        return self.root / "stages"

    def stage(self, stage: int) -> Path:
        return self.stages / str(stage)

    def selected(self, stage: int) -> Path:
        return self.stage(stage) / "selected.json"

    def round(self, stage: int, rnd: int) -> RoundDir:
        return RoundDir(self.stage(stage) / f"round-{rnd}")

    def rounds(self, stage: int) -> list[RoundDir]:
        """The stage's rounds on disk, in order."""
        folder = self.stage(stage)
        if not folder.is_dir():
            return []
        return sorted((RoundDir(p) for p in folder.glob("round-*")), key=lambda r: r.index)

    def all_rounds(self) -> list[RoundDir]:
        """Every round on disk, by stage and then round."""
        if not self.stages.is_dir():
            return []
        found = (RoundDir(p) for p in self.stages.glob("*/round-*"))
        return sorted(found, key=lambda r: (r.stage, r.index))

    @property
    def final_eval(self) -> Path:
        return self.root / "final_eval.json"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def timings(self) -> Path:
        return self.root / "timings.json"

    @property
    def memory(self) -> Path:
        return self.root / "memory.json"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    def plot(self, name: str) -> Path:
        return self.root / "plots" / f"{name}.png"

    @property
    def cache(self) -> Path:
        """Shared across runs wherever they are: converted base models and the teacher cache (ioa.paths)."""
        from ioa.paths import user_cache_dir

        return user_cache_dir()
