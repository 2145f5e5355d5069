"""IOA: Identifier -> Organizer -> Adapter, the method this package is about, and its ablations.

The engine (ioa.loop) has probed the student and the Identifier has diagnosed it; IOA then teaches
the Organizer's curriculum stage by stage. Each stage's round 0 synthesizes Adapter-rewritten
examples, the student trains, a mastery gate (P_S/P_T >= tau on held-out probes) decides whether to
advance or to remediate the modules it failed (remedial rounds, rehearsal of the stage's own
examples), replay keeps what the student knew and what earlier stages taught, and the stage ends on
the round that did best (`choose_round`). Ablations are IOA with one part switched off.
"""
from __future__ import annotations

import dataclasses
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from tqdm.auto import tqdm

from ioa.calibrate import calibrate, chosen_examples, module_adapters
from ioa.config import AdapterConfig, RunConfig
from ioa.context import Context
from ioa.evaluate import evaluate, gate
from ioa.grading import mastered
from ioa.io import atomic_write_json, read_json, read_jsonl
from ioa.layouts import bleed_share, module_layouts
from ioa.loop import as_replay, probe_band, single_stage, teacher_usage, train_round, usage_delta, write_round_data
from ioa.methods.base import raw_solutions
from ioa.methods.budget import Usage, examples_left, spent, steps_left, trim_counts
from ioa.organize import organize, step_shares
from ioa.records import Evaluation, GateDecision, RoundEval, SelectedRound
from ioa.rundir import RoundDir
from ioa.select import hardest_per_module, repeat_targets, with_candidates
from ioa.stats import item_changes, sign_test_p
from ioa.students.base import ScoresCompletions, state_saved
from ioa.synthesize import (
    Synthesis,
    own_answers,
    remedial_targets,
    replay_counts,
    replay_shares,
    shared_shortfall,
    shortfalls,
    stage_difficulties,
    step_up_band,
    synthesize,
)
from ioa.types import Curriculum, Diagnosis, Example, Module, Stage


@dataclass(frozen=True)
class IOA:
    """The full method, or one of its ablations with a part switched off:

      identify=False  ioa-no-identifier: no gap targeting, every teachable module is taught
      organize=False  ioa-no-organizer: the targeted modules in one shuffled stage, with no gates (no
                      remedial rounds) and no difficulty ramp; under an equal budget that one stage gets
                      every example and step the budget allows (as the one-stage baselines do) instead
                      of a stage's share, so the comparison measures the curriculum, not a smaller budget
      (`organizer.interleave` gives the full method the same one interleaved stage, measured in
      bench/results/2026-12-05-one-interleaved-stage.md; `organizer.cumulative` keeps the stages in dependency
      order, each teaching its new modules with every module introduced before, also without gates' remedial
      rounds; see `example_share`, `steps_for_made` and `carried_rehearsal`)
      adapt=False     ioa-no-adapter: the teacher's raw solutions (no decompose, template, simplify,
                      analogies or expand_steps); the load ramp stays, as it orders difficulty rather
                      than rewriting text
    """

    name: str = "ioa"
    identify: bool = True
    organize: bool = True
    adapt: bool = True
    counts_probing = True  # the Identifier's probing is part of the method, so it spends the method's budget

    def one_stage(self, cfg: RunConfig) -> bool:
        """Whether the targets are taught in one interleaved stage that takes the whole budget: without the
        Organizer (the ablation), or with `organizer.interleave`."""
        return not self.organize or cfg.organizer.interleave

    def configure(self, cfg: RunConfig) -> RunConfig:
        if not self.adapt:
            cfg = raw_solutions(cfg)
        if self.one_stage(cfg) or (self.organize and cfg.organizer.cumulative):
            cfg = cfg.model_copy(update={
                "adapter": cfg.adapter.model_copy(update={"load_ramp": False}),
                "synthesis": cfg.synthesis.model_copy(update={"max_remedial_rounds": 0}),
            })
        if self.organize and cfg.organizer.cumulative:  # the stages train as one run: one AdamW, one decay
            schedule = "run" if cfg.budget.max_steps is not None else cfg.student.lr_schedule
            cfg = cfg.model_copy(update={"student": cfg.student.model_copy(
                update={"carry_optimizer": True, "lr_schedule": schedule})})
        return cfg

    def targeted(self, diagnosis: Diagnosis) -> Diagnosis:
        """Without the Identifier every teachable module counts as deficient (applied on reading:
        diagnosis.json stays the Identifier's finding, the same for every method)."""
        if self.identify:
            return diagnosis
        return dataclasses.replace(diagnosis, modules=tuple(
            dataclasses.replace(m, deficient=m.teachable) for m in diagnosis.modules))

    def run(self, ctx: Context, diagnosis: Diagnosis) -> Curriculum:
        """The Organizer's curriculum, stage by stage with gates."""
        curriculum = self.curriculum(ctx, diagnosis)
        known = known_before(diagnosis, ctx.cfg.organizer.tau_mastery,
                             curriculum if ctx.cfg.synthesis.replay_untaught else None)
        unmastered = frozenset(m.id for m in diagnosis.modules
                               if not mastered(m.p_student, m.p_teacher, ctx.cfg.organizer.tau_mastery))
        log = StageLog(mastered=dict(known), known=list(known), unmastered=unmastered)
        if self.adapt and ctx.cfg.adapter.calibrate.enabled:  # each taught module in the form it learned best
            taught = [m for s in curriculum.stages if not s.bridge for m in s.modules]
            choice = calibrate(ctx, list(dict.fromkeys(taught)))
            log.adapters = module_adapters(ctx.cfg.adapter, choice)
            log.pilot = chosen_examples(ctx, choice)
        for stage in tqdm(curriculum.stages, desc="stages", unit="stage", disable=not ctx.progress):
            self.run_stage(ctx, curriculum, stage, log)
        return curriculum

    def curriculum(self, ctx: Context, diagnosis: Diagnosis) -> Curriculum:
        """The Organizer's curriculum (curriculum.json); without the Organizer, the modules it would teach
        in one shuffled stage."""
        if not ctx.rd.curriculum.exists():
            cur = organize(diagnosis, ctx.cfg.organizer, ctx.cfg.identifier.coverage, ctx.cfg.budget.max_steps)
            if self.one_stage(ctx.cfg):
                cur = single_stage([m for s in cur.stages if not s.bridge for m in s.modules], ctx.cfg, shuffle=True)
            atomic_write_json(ctx.rd.curriculum, cur.to_dict())
        cur = Curriculum.from_dict(read_json(ctx.rd.curriculum))
        ctx.say(f"curriculum: {len(cur.stages)} stage(s): " + " -> ".join(
            f"[{', '.join(s.modules)}]" + (" (bridge)" if s.bridge else "") for s in cur.stages))
        return cur

    def run_stage(self, ctx: Context, curriculum: Curriculum, stage: Stage, log: StageLog) -> None:
        reach = bridge_reach(curriculum, stage)
        last_eval: RoundEval | None = None
        failing: list[str] = list(stage.modules)
        rounds = 1 if stage.bridge else ctx.cfg.synthesis.max_remedial_rounds + 1
        tried: list[tuple[float, int, RoundEval]] = []  # (mean accuracy over evaluated modules, round, eval) per gate
        for rnd in range(rounds):
            rdir = ctx.rd.round(stage.index, rnd)
            steps = self.round_steps(ctx, curriculum, stage)
            if steps == 0 and not state_saved(rdir.state):
                break  # the stage's share of the step budget is spent
            share = self.example_share(ctx, curriculum, stage)
            examples = ctx.timed("synthesize", lambda: self.round_examples(
                ctx, stage, rnd, reach, last_eval, failing, log, share))  # noqa: B023 (called at once)
            if not examples:  # nothing left to remediate (e.g. the teacher could not verify any answer)
                break
            new = [e for e in examples if e.kind != "replay"]
            per_step = ctx.cfg.student.batch_size * ctx.cfg.student.grad_accum
            if rnd > 0 and len(new) < per_step and not state_saved(rdir.state):
                # A default-preset seed's remedial round found 1 new division fact (the band's others are
                # probes): one step on 3 examples from a fresh AdamW at the full rate took division facts
                # 70 -> 40% and subtraction facts 95 -> 65%. It was rolled back; now it is not trained.
                ctx.say(f"stage {stage.index} round {rnd}: {len(new)} new example(s), fewer than one step's "
                        f"{per_step}: not trained")
                break
            log.examples.extend(new)
            log.replayed.extend(e for e in examples if e.kind == "replay")
            kinds: dict[str, int] = {}
            for e in examples:
                kinds[e.kind] = kinds.get(e.kind, 0) + 1
            ctx.say(f"stage {stage.index} round {rnd}: training on {len(examples)} examples ("
                    + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ")")
            # no remedial rounds to spend them on: the one stage may take every step the budget has left
            whole = self.one_stage(ctx.cfg)
            if share is not None and stage.index != curriculum.stages[-1].index:
                steps = steps_for_made(rdir, steps)
            train_round(ctx, rdir, examples, steps_left(ctx.cfg.budget, spent(ctx.rd)) if whole else steps)
            if stage.bridge:
                return
            last_eval = eval_round(ctx, rdir, stage, log)
            acc = last_eval.accuracy  # the stage's modules and the retention modules alike
            log.latest.update(acc)
            tried.append((sum(acc.values()) / len(acc), rnd, last_eval))
            decision_path = rdir.gate
            if not decision_path.exists():
                decision = gate(last_eval.accuracy, ctx.p_teacher, stage.modules, stage.mastery_threshold)
                # no steps of its share left to remediate
                share_spent = self.stage_steps_left(ctx, curriculum, stage) == 0
                final = decision.passed or rnd == rounds - 1 or share_spent
                action = "advance" if decision.passed else "advance-unmastered" if final else "remediate"
                atomic_write_json(decision_path, dataclasses.replace(decision, action=action).to_dict())
            decision = GateDecision.from_dict(read_json(decision_path))
            ratios = ", ".join(f"{m} {r:.2f}" for m, r in decision.ratios.items())
            ctx.say(f"gate: min P_S/P_T {decision.min_ratio:.2f} {'>=' if decision.passed else '<'} "
                    f"{decision.threshold:.2f} -> {decision.action} ({ratios})")
            failing = decision.failing
            if decision.action != "remediate":
                break
        if tried:
            last_eval = keep_best_round(ctx, stage, tried, {m: log.mastered[m] for m in log.known if m in log.mastered})
            log.latest.update(last_eval.accuracy)
        log.taught.extend(m for m in stage.modules if m not in log.taught)
        if last_eval is not None:
            for m, acc in last_eval.accuracy.items():
                if m in stage.modules and mastered(acc, ctx.p_teacher.get(m, 0.0), stage.mastery_threshold):
                    log.mastered[m] = acc

    def example_share(self, ctx: Context, curriculum: Curriculum, stage: Stage) -> float | None:
        """The share of the examples left that a cumulative stage's round 0 may make (`organizer.cumulative`): its
        steps over the steps left; None (no share, the round's own counts) otherwise or without a step budget."""
        if not (self.organize and ctx.cfg.organizer.cumulative):
            return None
        used = spent(ctx.rd)
        own = self.stage_steps_left(ctx, curriculum, stage, used)
        left = steps_left(ctx.cfg.budget, used)
        return None if own is None or not left else min(1.0, own / left)

    def round_examples(self, ctx: Context, stage: Stage, rnd: int, reach: float, last_eval: RoundEval | None,
                       failing: Sequence[str], log: StageLog, share: float | None = None) -> list[Example]:
        """The round's training data: synthesized (round 0) or remedial (later), plus replay. With `share` (a
        cumulative stage) round 0 makes that share of the examples the budget has left."""
        rdir = ctx.rd.round(stage.index, rnd)
        path = rdir.train
        if path.exists():
            examples = [Example.from_dict(r) for r in read_jsonl(path)]
            ctx.seen.update(e.prompt for e in examples)
            return examples
        syn = ctx.cfg.synthesis
        low, high = probe_band(ctx.cfg)
        modules = [m for m in ctx.domain.modules() if m.id in stage.modules]
        prefix = f"s{stage.index}r{rnd}"
        used = spent(ctx.rd)
        allowed = examples_left(ctx.cfg.budget, used)
        if allowed == 0 or steps_left(ctx.cfg.budget, used) == 0:
            return []  # the equal budget is spent: the method stops here
        before = teacher_usage(ctx.teacher)
        if rnd == 0:
            n = syn.examples_per_module if not stage.bridge else max(4, syn.examples_per_module // 4)
            if (self.one_stage(ctx.cfg) or share is not None) and allowed is not None:
                # no remedial rounds to spend it on: the one stage gets it all (a cumulative stage its share),
                # less the replay share made on top of the new examples (which would otherwise take the run
                # past the cap; unspent when the stage has nothing to replay)
                allowed = round(allowed * share) if share is not None else allowed
                allowed -= round(allowed * syn.replay_fraction)
                n = -(-allowed // len(modules))
            ramp = ctx.cfg.adapter.load_ramp
            # the calibration pilot's problems in the chosen form, paid for already: that many fewer new ones
            reuse = ({m.id: log.pilot.pop(m.id, []) for m in modules}
                     if not stage.bridge and syn.candidates_per_example == 1 else {})
            asked = trim_counts({m.id: stage_difficulties(max(0, n - len(reuse.get(m.id, []))), low, high, reach, ramp,
                                                          ctx.cfg.seed) for m in modules}, allowed)
            counts = with_candidates(asked, syn.candidates_per_example)
            kind = "bridge" if stage.bridge else "synth"
            made = synthesize(ctx.teacher, ctx.domain, modules, counts, ctx.cfg.adapter, ctx.seen, prefix, kind,
                              ctx.cfg.seed, progress=ctx.progress, expand=log.unmastered, adapters=log.adapters)
            if syn.step_up_when_exhausted and not stage.bridge:
                made = self.step_up(ctx, log, modules, counts, made, prefix, kind)
            if syn.share_shortfall and not stage.bridge:
                made = self.share_shortfall(ctx, log, modules, counts, made, prefix, kind)
            pilot = [dataclasses.replace(e, id=f"{prefix}-pilot-{i:05d}", kind=kind)
                     for i, e in enumerate(e for m in modules for e in reuse.get(m.id, []))]
            made = dataclasses.replace(made, examples=pilot + made.examples, reused=len(pilot),
                                       planned=sum(len(ds) for ds in asked.values()))
        else:
            correct = {it["id"]: it["correct"] for it in last_eval.items}
            wrong = [x for x in ctx.probe_items(failing) if not correct.get(x.id, True)]
            counts, targets = remedial_targets(wrong, syn.remedial_examples_per_module)
            counts = trim_counts(counts, allowed)
            targets = {m: targets[m][: len(ds)] for m, ds in counts.items()}
            counts = with_candidates(counts, syn.candidates_per_example)
            targets = repeat_targets(targets, syn.candidates_per_example)
            remediated = [m for m in modules if m.id in counts]
            made = synthesize(ctx.teacher, ctx.domain, remediated, counts, ctx.cfg.adapter, ctx.seen, prefix,
                              "remedial", ctx.cfg.seed, targets, progress=ctx.progress, expand=log.unmastered,
                              adapters=log.adapters)
        made = self.keep_hardest(ctx, made, syn.candidates_per_example)
        rehearsal: list[Example] = []
        if rnd == 0 and share is not None and stage.index > 0:
            rehearsal = carried_rehearsal(log, stage, shortfalls(asked, made.examples), ctx.cfg.seed, prefix)
        if rnd > 0:  # rehearse the stage's own earlier examples 1:1, so remediation does not narrow the student
            own = [e for e in log.examples if e.module in stage.modules and e.id.startswith(f"s{stage.index}r")]
            rng = random.Random(f"rehearse:{ctx.cfg.seed}:{prefix}")
            rehearsal = rng.sample(own, min(len(own), len(made.examples)))
        # Replay is its share of the whole round, rehearsal included: counted against the new examples
        # only, a remedial round's replay fell from 30% to 18% and the facts the student knew fell with it.
        n_taught = len(made.examples) + (len(rehearsal) if syn.replay_counts_rehearsal else 0)
        replayed = replay_examples(ctx, stage, log, n_taught, prefix) + as_replay(rehearsal, f"{prefix}-rehearse")
        examples = made.examples + replayed
        write_round_data(rdir, examples, made, usage_delta(before, ctx.teacher))
        return examples

    @staticmethod
    def step_up(ctx: Context, log: StageLog, modules: Sequence[Module], counts: dict[str, list[float]],
                made: Synthesis, prefix: str, kind: str) -> Synthesis:
        """`made` with the examples its modules' band could not give (`synthesis.step_up_when_exhausted`)
        drawn from the next band up, at difficulties spread over it."""
        short = shortfalls(counts, made.examples)
        if not short:
            return made
        low, high = step_up_band(*probe_band(ctx.cfg))
        ramp = ctx.cfg.adapter.load_ramp
        up = {m: stage_difficulties(n, low, high, 1.0, ramp, ctx.cfg.seed) for m, n in short.items()}
        more = synthesize(ctx.teacher, ctx.domain, [m for m in modules if m.id in short], up, ctx.cfg.adapter,
                          ctx.seen, f"{prefix}-up", kind, ctx.cfg.seed, expand=log.unmastered, adapters=log.adapters)
        return made.plus(more)

    @staticmethod
    def share_shortfall(ctx: Context, log: StageLog, modules: Sequence[Module], counts: dict[str, list[float]],
                        made: Synthesis, prefix: str, kind: str) -> Synthesis:
        """`made` with the examples its exhausted modules' band could not give (`synthesis.share_shortfall`)
        made for the stage's other modules instead, in the same band, split evenly over them."""
        more_counts = shared_shortfall(counts, made.examples, *probe_band(ctx.cfg), ctx.cfg.adapter.load_ramp,
                                       ctx.cfg.seed)
        if not more_counts:
            return made
        ctx.say(f"{sum(len(v) for v in more_counts.values())} examples the bands of exhausted modules could not "
                f"give go to {', '.join(more_counts)}")
        takers = [m for m in modules if m.id in more_counts]
        more = synthesize(ctx.teacher, ctx.domain, takers, more_counts, ctx.cfg.adapter, ctx.seen, f"{prefix}-share",
                          kind, ctx.cfg.seed, expand=log.unmastered, adapters=log.adapters)
        return made.plus(more)

    @staticmethod
    def keep_hardest(ctx: Context, made: Synthesis, k: int) -> Synthesis:
        """With k candidates per example, each module's hardest 1/k of them for the student now (ioa.select)."""
        if k <= 1 or not made.examples:
            return made
        if not (isinstance(ctx.student, ScoresCompletions) and callable(ctx.student.completion_losses)):
            raise ValueError(f"synthesis.candidates_per_example: {k} needs a student that scores completions "
                             f"({type(ctx.student).__name__} does not); set it to 1")
        ctx.sync_student()
        losses = ctx.student.completion_losses(made.examples)
        per_module = Counter(e.module for e in made.examples)
        keep = {m: -(-n // k) for m, n in per_module.items()}
        kept = hardest_per_module(made.examples, losses, keep)
        ctx.say(f"kept the {len(kept)} hardest of {len(made.examples)} candidates (mean loss "
                f"{sum(losses) / len(losses):.3f} over all)")
        return dataclasses.replace(made, examples=kept, candidates=len(made.examples))

    def stage_steps_left(self, ctx: Context, curriculum: Curriculum, stage: Stage,
                         used: Usage | None = None) -> int | None:
        """Steps this stage may still train under `organizer.step_plan: by-stage` (its share plus what earlier
        stages left unspent); None without a step budget or a plan."""
        total = ctx.cfg.budget.max_steps
        if total is None or ctx.cfg.organizer.step_plan != "by-stage" or self.one_stage(ctx.cfg):
            return None
        shares = step_shares(curriculum.stages, total)
        position = [s.index for s in curriculum.stages].index(stage.index)
        return max(0, sum(shares[: position + 1]) - (used or spent(ctx.rd)).steps)

    def round_steps(self, ctx: Context, curriculum: Curriculum, stage: Stage) -> int | None:
        """The step cap of the stage's next round: the per-round cap, the run's budget and the stage's share."""
        used = spent(ctx.rd)
        left = self.stage_steps_left(ctx, curriculum, stage, used)
        if left is None:
            return None
        return min(left, ctx.cfg.student.max_steps_per_stage, steps_left(ctx.cfg.budget, used))


@dataclass
class StageLog:
    """What IOA knows about its finished stages (their examples, gates and retention checks) and which
    modules the diagnosis found unmastered."""

    examples: list[Example] = field(default_factory=list)
    mastered: dict[str, float] = field(default_factory=dict)  # module -> accuracy when mastered
    taught: list[str] = field(default_factory=list)  # modules of finished (non-bridge) stages
    known: list[str] = field(default_factory=list)  # modules kept from before the run (not taught)
    replayed: list[Example] = field(default_factory=list)  # replay examples so far (reused for known modules)
    latest: dict[str, float] = field(default_factory=dict)  # module -> accuracy at the latest gate
    unmastered: frozenset[str] = frozenset()  # unmastered by the diagnosis: the Adapter writes their steps out
    adapters: dict[str, AdapterConfig] = field(default_factory=dict)  # module -> the calibration pilot's form
    pilot: dict[str, list[Example]] = field(default_factory=dict)  # module -> its pilot examples, not yet trained

    def dropped(self) -> list[str]:
        """Mastered or kept modules whose accuracy at the latest gate is below what it was."""
        return [m for m, acc in self.mastered.items() if m in self.latest and self.latest[m] < acc - 1e-9]


def carried_rehearsal(log: StageLog, stage: Stage, short: dict[str, int], seed: int, prefix: str) -> list[Example]:
    """For a later cumulative stage: each module an earlier stage introduced whose band gave fewer new problems
    than asked (`short`: module -> how many fewer) practises its earlier examples again, up to that many (reused
    data, trained as replay, not counted as new examples). Without it a fact taught in the first stage got no
    practice in the 130 steps after (its band was used up there) and fell (subtraction facts 100 -> 80,
    division facts 75 where one interleaved stage kept them at 100)."""
    rng = random.Random(f"carried:{seed}:{prefix}")
    out: list[Example] = []
    for module in stage.modules:
        if module not in log.taught or not short.get(module):
            continue
        earlier = [e for e in log.examples if e.module == module and e.kind != "replay"]
        out += rng.sample(earlier, min(short[module], len(earlier)))
    return out


def steps_for_made(rdir: RoundDir, steps: int | None) -> int | None:
    """A cumulative stage's step share shrunk by the share of its planned new examples that were made
    (synthesis.json), so its examples are not trained over more often than the run's plan has them; the
    steps it leaves carry to the next stage. A seed's first stage of three facts (prerequisites of the column
    procedures) found 43 new problems of the 110 planned, and its 51-step share would have gone over them
    nine times."""
    record = read_json(rdir.synthesis) if rdir.synthesis.exists() else {}
    planned, made = record.get("planned", 0), record.get("examples", 0)
    if steps is None or not planned or made >= planned:
        return steps
    return max(1, round(steps * made / planned))


def bridge_reach(curriculum: Curriculum, stage: Stage) -> float:
    """How far into the difficulty band a stage's examples go: 1, or a bridge's place in its jump."""
    if not stage.bridge:
        return 1.0
    stages = curriculum.stages
    before = next(s for s in reversed(stages[: stage.index]) if not s.bridge)
    after = next(s for s in stages[stage.index + 1:] if not s.bridge)
    span = after.difficulty - before.difficulty
    return round((stage.difficulty - before.difficulty) / span, 6) if span else 1.0


def known_before(diagnosis: Diagnosis, tau_mastery: float, curriculum: Curriculum | None = None) -> dict[str, float]:
    """Modules to keep, with their pre-run accuracy: replayed and checked at every gate so the student
    does not forget them. With a curriculum: every teachable, non-deficient module it does not teach (a
    module just below mastery but not deficient, e.g. subtraction facts at 75%, was neither taught nor
    protected and fell to 60% in a default run; deficient modules left for a later run are not kept);
    without: the modules mastered before the run."""
    if curriculum is not None:
        taught = {m for s in curriculum.stages for m in s.modules}
        return {m.id: m.p_student for m in diagnosis.modules if m.teachable and not m.deficient and m.id not in taught}
    return {m.id: m.p_student for m in diagnosis.modules
            if m.teachable and not m.deficient and mastered(m.p_student, m.p_teacher, tau_mastery)}


def fill_to(examples: list[Example], k: int) -> list[Example]:
    """`examples` repeated in order until there are k (none when there are none).

    A module of few distinct problems runs out of fresh ones: single-digit facts in the probe band are a
    few dozen problems, most of them held out as probes and test items, so a compare run's 30% replay
    share came out as 7 of 71 examples and the facts the student knew fell. Repeating what replay could
    make keeps the share; the copies are reused data, as every replay example is.
    """
    if not examples:
        return []
    return [examples[i % len(examples)] for i in range(k)]


def replay_for(ctx: Context, log: StageLog, module_id: str, k: int, prefix: str, rng: random.Random,
               low: float, high: float) -> list[Example]:
    """Up to k replay examples of one module: the run's earlier examples of it, else earlier replays,
    topped up with fresh ones (the teacher's, or the student's own answers for a kept module)."""
    pool = [e for e in log.examples if e.module == module_id and e.kind != "replay"]
    pool = pool or [e for e in log.replayed if e.module == module_id]  # never taught: earlier replays
    if len(pool) >= k:
        return rng.sample(pool, k)
    module = next(m for m in ctx.domain.modules() if m.id == module_id)
    need = k - len(pool)
    if module_id in log.known and ctx.cfg.synthesis.replay_source == "student":
        # twice the problems, since only the answers the checker accepts are kept
        difficulties = stage_difficulties(2 * need, low, high, 1.0, False, ctx.cfg.seed)
        ctx.sync_student()
        made = ctx.timed("replay_own", lambda: own_answers(
            ctx.teacher, ctx.domain, ctx.student.respond, module, difficulties, ctx.seen, f"{prefix}-own-{module_id}",
            ctx.cfg.seed, need))
        return pool + made.examples
    made: list[Example] = []
    # The probe band first; what it cannot give comes from the module's whole difficulty range: with 30
    # test items and 8 probes held out, the band's single-digit addition facts were all taken in one compare
    # seed, so the run replayed none of them (fill_to repeats only what exists).
    for band, tag in (((low, high), "fresh"), ((0.0, 1.0), "wide")):
        if len(made) >= need:
            break
        difficulties = {module_id: stage_difficulties(need - len(made), *band, 1.0, ctx.cfg.adapter.load_ramp,
                                                      ctx.cfg.seed)}
        made += synthesize(ctx.teacher, ctx.domain, [module], difficulties, ctx.cfg.adapter, ctx.seen,
                           f"{prefix}-{tag}-{module_id}", "replay", ctx.cfg.seed, expand=log.unmastered).examples
    return pool + made


def replay_examples(ctx: Context, stage: Stage, log: StageLog, n_new: int, prefix: str) -> list[Example]:
    """Examples of modules kept from before the run, mastered in an earlier stage and (`replay_taught:
    all`) taught in one without reaching mastery, `replay_fraction` of the round's data: sampled from
    the run's earlier examples of a module, or freshly made for modules the student knew before the run."""
    syn = ctx.cfg.synthesis
    boost = {m: syn.retention_boost for m in log.dropped()}  # forgetting gets more replay
    reviewed = list(log.mastered) + (log.taught if syn.replay_taught == "all" else [])
    reviewed = [m for m in dict.fromkeys(reviewed) if m not in stage.modules]
    kept = [m for m in reviewed if m in log.known]
    taught = [m for m in reviewed if m not in kept]
    taught_examples = Counter(e.module for e in log.examples if e.kind != "replay" and e.module in taught)
    share, weights = replay_shares(kept, taught, syn.replay_fraction, syn.taught_replay_fraction, boost,
                                   taught_examples, n_new)
    counts = replay_counts(list(weights), share, n_new, weights)
    rng = random.Random(f"replay:{ctx.cfg.seed}:{prefix}")
    low, high = probe_band(ctx.cfg)
    picked: list[Example] = []
    for module_id, k in counts.items():
        picked += fill_to(replay_for(ctx, log, module_id, k, prefix, rng, low, high), k)
    return as_replay(picked, f"{prefix}-replay")


def eval_round(ctx: Context, rdir: RoundDir, stage: Stage, log: StageLog) -> RoundEval:
    """Held-out accuracy on the stage's modules and, for retention, on every earlier stage's modules."""
    path = rdir.eval
    if not path.exists():
        retention = [m for m in list(log.taught) + list(log.known) if m not in stage.modules]
        retention = list(dict.fromkeys(retention))
        ctx.sync_student()
        result = ctx.timed("evaluate",
                           lambda: evaluate(ctx.domain, ctx.student, ctx.probe_items(list(stage.modules) + retention)))
        layouts = module_layouts(e.to_dict() for e in log.examples + log.replayed)
        record = RoundEval(accuracy=result.accuracy, items=result.items, stage_modules=list(stage.modules),
                           retention_modules=retention, layout_bleed=bleed_share(result.items, layouts))
        atomic_write_json(path, record.to_dict())
    return RoundEval.from_dict(read_json(path))


def known_drop(accuracy: dict[str, float], kept: dict[str, float]) -> float:
    """How far the kept modules' mean accuracy fell below their pre-run accuracy (0 when none was evaluated)."""
    shared = [m for m in kept if m in accuracy]
    if not shared:
        return 0.0
    return sum(kept[m] - accuracy[m] for m in shared) / len(shared)


def choose_round(tried: list[tuple[float, int, Evaluation]], kept: dict[str, float], max_drop: float | None,
                 rule: str = "best", alpha: float = 0.05) -> tuple[int, float]:
    """(index into `tried`, known drop) of the round a stage ends on.

    best: the best mean held-out accuracy over every module its gate evaluated, ties to the later
    round, among the rounds whose kept modules fell no more than `max_drop`; when every round fell
    more, the one that cost the kept modules least.
    last-unless-worse: the last round, unless an earlier one beats it on the same gated items by a
    one-sided paired sign test at `alpha`, over all items or over the kept modules' items; among such
    rounds, the `best` rule picks.
    """
    drops = [known_drop(t[2].accuracy, kept) for t in tried]
    candidates = list(range(len(tried)))
    if rule == "last-unless-worse":
        last = len(tried) - 1
        candidates = [i for i in range(last) if beats(tried[i][2], tried[last][2], set(kept), alpha)]
        if not candidates:
            return last, drops[last]
    eligible = [i for i in candidates if max_drop is None or drops[i] <= max_drop + 1e-9]
    if eligible:
        best = max(eligible, key=lambda i: (tried[i][0], tried[i][1]))
    else:
        best = min(candidates, key=lambda i: (drops[i], -tried[i][0], -tried[i][1]))
    return best, drops[best]


def beats(earlier: Evaluation, later: Evaluation, kept: set[str], alpha: float) -> bool:
    """Whether `later` (a gate's eval) lost significantly more of the items `earlier` got right than it
    gained, over all items or over the kept modules' items."""
    groups = [None, kept] if kept else [None]
    return any(sign_test_p(*item_changes(earlier.items, later.items, g)) < alpha for g in groups)


def keep_best_round(ctx: Context, stage: Stage, tried: list[tuple[float, int, RoundEval]],
                    kept: dict[str, float] | None = None) -> RoundEval:
    """The round the stage ends on, by `organizer.round_choice` over every module its gate evaluated
    (the stage's own and the retention modules: earlier stages, prior knowledge); see `choose_round`.

    A remedial round can make things worse (a narrow data mix, a fresh learning-rate schedule): a
    default run's remedial round raised the stage's modules from 48% to 53% while prior knowledge fell
    from 97.5% to 42.5%. But a rolled-back round's steps are lost, and on 8 probes a module most
    differences are one or two items, so `last-unless-worse` rolls back only on a significant loss.
    Measured over 5 paired compare seeds, `best` (the default) kept the known modules 13 points better:
    the remedial rounds it rolled back had mostly cost them. `selected.json` says which round and rule.
    """
    org = ctx.cfg.organizer
    i, drop = choose_round(tried, kept or {}, org.max_known_drop, org.round_choice, org.round_alpha)
    score, rnd, result = tried[i]
    ctx.say(f"stage {stage.index} ends on round {rnd} of {len(tried)} (mean held-out accuracy {100 * score:.1f}%, "
            f"kept modules {-100 * drop:+.1f} points)")
    ctx.latest_state = ctx.rd.round(stage.index, rnd).state
    path = ctx.rd.selected(stage.index)
    if not path.exists():
        atomic_write_json(path, SelectedRound(round=rnd, mean_accuracy=round(score, 6), rounds=len(tried),
                                              known_drop=round(drop, 6), max_known_drop=org.max_known_drop,
                                              rule=org.round_choice).to_dict())
    return result
