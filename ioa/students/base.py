"""The Learner and Student protocols.

A Learner answers problems with free text (teacher and student are both learners when probed).
A Student is a learner that can also be fine-tuned on examples and saved.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

from ioa.types import Example, Problem

# The file every Student's save_state writes last into its state folder: present means the state is whole.
STATE_FILE = "ioa_student.json"


def state_saved(path: Path) -> bool:
    """Whether `path` holds a whole student state (save_state finished writing it)."""
    return (Path(path) / STATE_FILE).exists()


def world_size() -> int:
    """Training processes (accelerate/torchrun set WORLD_SIZE); each takes a batch per optimizer step."""
    return int(os.environ.get("WORLD_SIZE", "1"))


@runtime_checkable
class Learner(Protocol):
    name: str

    def respond(self, problems: Sequence[Problem]) -> list[str]:
        """A free-text response per problem (a worked solution ending in an `Answer:` line)."""
        ...


@runtime_checkable
class Student(Learner, Protocol):
    def train(self, examples: Sequence[Example], out_dir: Path, max_steps: int | None = None,
              lr_window: tuple[int, int] | None = None) -> dict[str, Any]:
        """Fine-tune on examples (at most `max_steps` optimizer steps); write checkpoints under out_dir;
        return metrics (`steps`, `tokens_seen`, losses). `lr_window` (start, horizon): the learning rate
        follows one decay over the run's `horizon` steps from step `start` (None: one decay per round)."""
        ...

    def count_tokens(self, examples: Sequence[Example]) -> list[int]:
        """Tokens each example is trained on (prompt + completion, as `tokens_seen` counts them)."""
        ...

    def save_state(self, path: Path) -> None:
        """Write the trainable state (LoRA adapter or full weights) into the folder `path`, STATE_FILE
        last, so that `state_saved(path)` means it is whole."""
        ...

    def load_state(self, path: Path) -> None:
        """Restore what `save_state` wrote into `path`."""
        ...

    def save(self, path: Path) -> None:
        """Write a merged model loadable by `AutoModelForCausalLM.from_pretrained(path)`."""
        ...


@runtime_checkable
class Generator(Protocol):
    """What benchmark evaluation (ioa.evaluation.runner) needs of a model: free-form completions."""

    def generate(self, prompts: Sequence[str], **options: Any) -> list[str]:
        """One completion per prompt, in order (options: max_new_tokens, sampling, resume hooks)."""
        ...


@runtime_checkable
class TakesTrainingSettings(Protocol):
    """Optional: a student built from the run's settings takes the ones the method runs with (`Method.configure`:
    IOA's cumulative stages carry one AdamW across rounds) before it trains."""

    def use_training_settings(self, cfg: Any) -> None:
        """Train from now on with `cfg` (a StudentConfig: the same model, precision and paths)."""
        ...


@runtime_checkable
class ReportsSource(Protocol):
    """Optional: what was actually loaded (a hub id, or the folder a GGUF was converted into)."""

    source: str


@runtime_checkable
class ReportsPrecision(Protocol):
    """Optional: the precision the model computes in (fp32, bf16)."""

    precision: str


@runtime_checkable
class ReportsGeneration(Protocol):
    """Optional: counts and speed of the latest `generate` call (prompts, new_tokens, seconds, ...)."""

    last_generation: dict[str, float]


@runtime_checkable
class ScoresCompletions(Protocol):
    """Optional: how hard each worked example is for the student now, without training on it
    (`synthesis.candidates_per_example` picks IOA's examples by it)."""

    def completion_losses(self, examples: Sequence[Example]) -> list[float]:
        """The mean loss per completion token of each example, as training would compute it."""
        ...
