"""The run directory: where every artifact of a run lives, and the only state a resumed run reads.

    DIR/config.yaml                       the validated configuration of the run
    DIR/probes.jsonl                      held-out composite problems per module (never trained on)
    DIR/attempts.jsonl                    graded teacher + student attempts on probes and their steps
    DIR/responses_before.jsonl            the student's raw answers before any training
    DIR/diagnosis.json                    Identifier output
    DIR/curriculum.json                   Organizer output
    DIR/stages/<n>/round-<r>/train.jsonl  the round's training examples (synth | remedial | replay)
    DIR/stages/<n>/round-<r>/trainer/     trainer checkpoints (deleted once the round is trained)
    DIR/stages/<n>/round-<r>/state/       the student's trainable weights after the round
    DIR/stages/<n>/round-<r>/metrics.json training metrics
    DIR/stages/<n>/round-<r>/eval.json    per-module accuracy on held-out probes (stage + earlier)
    DIR/stages/<n>/round-<r>/gate.json    the mastery gate decision
    DIR/stages/<n>/selected.json          the round the stage ended on (best held-out accuracy)
    DIR/final_eval.json                   per-module accuracy after the last stage
    DIR/model/                            the final merged model (from_pretrained / vLLM loadable)
    DIR/summary.json                      written last: {"status": "finished", "modules": [...], ...}
    DIR/timings.json                      wall seconds per phase
    DIR/report.md, report.html, plots/    the report
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
    def attempts(self) -> Path:
        return self.root / "attempts.jsonl"

    @property
    def responses_before(self) -> Path:
        return self.root / "responses_before.jsonl"

    @property
    def diagnosis(self) -> Path:
        return self.root / "diagnosis.json"

    @property
    def curriculum(self) -> Path:
        return self.root / "curriculum.json"

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
    def cache(self) -> Path:
        """Shared across runs wherever they are: converted base models and the teacher cache (ioa.paths)."""
        from ioa.paths import user_cache_dir

        return user_cache_dir()

    def round(self, stage: int, rnd: int) -> Path:
        return self.root / "stages" / str(stage) / f"round-{rnd}"

    def rounds(self, stage: int) -> list[Path]:
        folder = self.root / "stages" / str(stage)
        if not folder.is_dir():
            return []
        return sorted(folder.glob("round-*"), key=lambda p: int(p.name.split("-")[1]))
