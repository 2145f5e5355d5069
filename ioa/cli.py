"""The `ioa` command line. Run `ioa --help`, or `ioa COMMAND --help` for one command.

Commands:
  identify  attempts (a JSONL file, or probes of a built-in domain) -> DIR/diagnosis.json
  plan      diagnosis.json -> DIR/curriculum.json
  run       the whole staged distillation into a run directory
  resume    continue a stopped run
  report    report.md / report.html for a run directory
  compare   methods side by side from finished run directories
  eval      generate and score a model on standard benchmarks (GSM8K, MATH-500, HumanEval, ...)
  score     score pre-generated samples the way the field does

Every error the user can fix is one line on stderr naming the file, line or field, and exit code 2.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from ioa.chat import BudgetExceeded, TeacherCallError
from ioa.config import PRESETS, ConfigError, RunConfig, load_config
from ioa.io import InputError, atomic_write_json, atomic_write_jsonl, no_space, read_json
from ioa.rundir import RunDir

USER_ERRORS = (ConfigError, InputError, ValueError)


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML configuration file")
    p.add_argument("--preset", help="named preset: " + ", ".join(PRESETS))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override, e.g. --set identifier.tau_gap=0.25 (repeatable)")


def add_budget_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-cost", type=float, metavar="DOLLARS",
                   help="stop (resumably) before teacher calls would cost more")
    p.add_argument("--max-tokens", type=int, metavar="N",
                   help="stop (resumably) before teacher calls would use more tokens")


def config_from(args: argparse.Namespace) -> RunConfig:
    return load_config(args.config, args.preset, args.overrides)


def cmd_identify(args: argparse.Namespace) -> int:
    from ioa.identify import CycleWarning, diagnose

    cfg = config_from(args)
    if args.outcomes:
        from ioa.attempts import read_attempts

        frame, attempts_rows = read_attempts(args.outcomes), None
    else:
        attempts = probe_builtin(cfg, args.domain, args.seed)
        frame, attempts_rows = attempts, [a.to_dict() for a in attempts]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CycleWarning)
        diagnosis = diagnose(frame, cfg.identifier)
    for w in caught:
        print(f"ioa: warning: {w.message}", file=sys.stderr)
    out = RunDir(args.out)  # the run directory's names, for the files a run would have
    if attempts_rows is not None:
        atomic_write_jsonl(out.attempts, attempts_rows)
    atomic_write_json(out.diagnosis, diagnosis.to_dict())
    print_diagnosis(diagnosis)
    print(f"wrote {out.diagnosis}")
    return 0


def probe_builtin(cfg: RunConfig, domain_name: str, seed: int):
    """Probe the procedural teacher and a simulated student (random mastery) on a built-in domain."""
    from ioa.domains import load_domain
    from ioa.probe import expand_groups, probe, probe_problems
    from ioa.students.simulated import SimulatedLearner, random_mastery
    from ioa.teachers import load_teacher

    domain = load_domain(domain_name)
    modules = cfg.modules or [m.id for m in domain.modules()]
    items = expand_groups(probe_problems(domain, modules, cfg.probe.items_per_module,
                                         cfg.probe.difficulty, cfg.probe.difficulty_spread, seed))
    teacher = load_teacher(cfg.teacher.kind, domain)
    student = SimulatedLearner(random_mastery([m.id for m in domain.modules()], seed, low=0.4),
                               domain.declared_prerequisites(), seed=seed)
    t_attempts, _ = probe(domain, teacher, items, "teacher")
    s_attempts, _ = probe(domain, student, items, "student")
    return t_attempts + s_attempts


def print_diagnosis(diagnosis) -> None:
    print(f"{'module':28} {'P_T':>6} {'P_S':>6} {'gap':>6} {'sev':>6}  deficient")
    for m in sorted(diagnosis.modules, key=lambda m: -m.severity):
        gap = "  n/a" if m.gap is None else f"{m.gap:6.2f}"
        print(f"{m.id:28} {m.p_teacher:6.2f} {m.p_student:6.2f} {gap} {m.severity:6.2f}  "
              f"{'yes' if m.deficient else ''}")
    print(f"{len(diagnosis.edges)} prerequisite edges: "
          + ", ".join(f"{e.source}->{e.target}" for e in diagnosis.edges[:20])
          + (" ..." if len(diagnosis.edges) > 20 else ""))


def cmd_plan(args: argparse.Namespace) -> int:
    from ioa.identify import parse_diagnosis
    from ioa.organize import organize

    cfg = config_from(args)
    diagnosis = parse_diagnosis(read_json(args.diagnosis), str(args.diagnosis))
    curriculum = organize(diagnosis, cfg.organizer, cfg.identifier.coverage, cfg.budget.max_steps)
    out = RunDir(args.out)
    atomic_write_json(out.curriculum, curriculum.to_dict())
    for s in curriculum.stages:
        tag = " (bridge)" if s.bridge else ""
        print(f"stage {s.index}: difficulty {s.difficulty:.2f}{tag}: {', '.join(s.modules)}")
    print(f"wrote {out.curriculum}")
    return 0


def open_run(cfg: RunConfig, run_dir: Path, progress: bool, quiet: bool = False):
    """Everything that can fail on bad input fails here, before the run directory is touched."""
    from ioa.context import Context
    from ioa.lock import acquire
    from ioa.loop import run_modules
    from ioa.students import load_student
    from ioa.teachers import load_domain_and_teacher

    rd = RunDir(run_dir)
    check_run_dir(rd, cfg)
    if rd.root.exists():  # before loading anything: a second process on a live run stops at once
        acquire(rd.root)
    domain, teacher, _ = load_domain_and_teacher(cfg, rd.cache, rd.teacher_calls, rd.root)
    run_modules(cfg, domain)
    # The folder and its config.yaml exist before the student loads (the slow part, up to half a minute on
    # a busy machine), so a run killed while loading can be resumed; input errors have all been raised above.
    acquire(rd.root)  # creates the folder
    if not rd.config.exists():
        from ioa.config import config_to_yaml
        from ioa.io import atomic_write_text

        atomic_write_text(rd.config, config_to_yaml(cfg))
    from ioa import distributed

    if distributed.launched():  # rank 0; the other ranks load their replicas while it loads its own
        from ioa.students.sharded import start_replicas

        start_replicas("hf", cfg.student, rd.cache, cfg.seed)
    student = load_student("hf", cfg.student, rd.cache, progress=progress, seed=cfg.seed)
    if distributed.launched():
        from ioa.students.sharded import ShardedStudent

        student = ShardedStudent(student)
    return Context(cfg=cfg, rd=rd, domain=domain, teacher=teacher, student=student, progress=progress and not quiet,
                   quiet=quiet)


def check_run_dir(rd, cfg: RunConfig) -> None:
    """A run directory holds one configuration; continuing it with another is an error."""
    if not rd.config.exists():
        if rd.root.exists() and any(rd.root.iterdir()):
            raise InputError(f"{rd.root}: exists, is not empty and holds no config.yaml; choose another --run-dir")
        return
    stored = load_config(rd.config)
    if stored != cfg:
        a, b = stored.model_dump(), cfg.model_dump()
        diff = sorted(_diff_keys(a, b))
        raise InputError(f"{rd.root} belongs to a different configuration (differs in: {', '.join(diff)}); "
                         f"use `ioa resume {rd.root}` or a new --run-dir")


def _diff_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            out += _diff_keys(a[k], b[k], f"{prefix}{k}.")
        elif a.get(k) != b.get(k):
            out.append(f"{prefix}{k}")
    return out


def execute(ctx) -> int:
    from ioa.methods.registry import run

    summary = run(ctx)
    write_report_for(ctx.rd.root)
    d = summary["deficient"]
    print(f"finished: {ctx.rd.root}")
    if d["count"]:
        print(f"deficient modules ({d['count']}): mean accuracy {d['mean_before']:.3f} -> {d['mean_after']:.3f} "
              f"({d['gain_points']:+.1f} points)")
    u = summary.get("not_taught") or {}
    if u.get("modules") and u.get("change_points") is not None:
        print(f"modules not taught ({len(u['modules'])}: {', '.join(u['modules'])}): mean accuracy "
              f"{u['mean_before']:.3f} -> {u['mean_after']:.3f} ({u['change_points']:+.1f} points)")
    return 0


def write_report_for(root: Path) -> None:
    from ioa.report import write_report

    paths = write_report(root)
    print("report: " + ", ".join(str(p) for p in paths))


def budget_overrides(args: argparse.Namespace) -> list[str]:
    out = []
    if getattr(args, "max_cost", None) is not None:
        out.append(f"budget.max_cost={args.max_cost}")
    if getattr(args, "max_tokens", None) is not None:
        out.append(f"budget.max_tokens={args.max_tokens}")
    return out


def dry_run(cfg: RunConfig) -> int:
    """What the planned run would ask of its teacher, before anything is spent."""
    import json

    from ioa.domains import DOMAINS, load_domain
    from ioa.teachers.estimate import estimate_run

    if cfg.domain in DOMAINS:
        from ioa.domains.builtin_view import BuiltinDomainView

        domain = load_domain(cfg.domain)
        spec, n_modules = BuiltinDomainView(domain).spec, len(cfg.modules or domain.modules())
    else:
        from ioa.domains.spec import load_domain_spec

        spec, n_modules = load_domain_spec(cfg.domain), None
    est = estimate_run(cfg, spec, n_modules)
    if cfg.teacher.kind == "procedural":
        print("teacher: procedural (built in): no API calls, no cost; the figures below are what an LLM teacher "
              "would need")
    print(f"{'phase':12} {'calls':>8} {'prompt tok':>12} {'compl. tok (max)':>17} {'cost (max)':>12}")
    for phase, row in [*est["phases"].items(), ("total", est["total"])]:
        cost = row.get("cost_max") if est.get("priced") else None
        print(f"{phase:12} {row['calls']:>8} {row['prompt_tokens']:>12} {row['completion_tokens_max']:>17} "
              f"{'n/a' if cost is None else f'${cost:,.2f}':>12}")
    if not est.get("priced"):
        print(f"no price configured for model {cfg.teacher.model!r}: set teacher.prices to get costs")
    print(json.dumps({"dry_run": True, **{k: est[k] for k in ("total", "phases", "n_modules")}}))
    return 0


def implied_preset(args: argparse.Namespace) -> str | None:
    """The preset a run takes: the named one; with neither --config nor --preset, "default", which is
    the built-in arithmetic domain's (its module list names arithmetic modules), so a run that only
    `--set`s another domain starts from the plain defaults instead."""
    if args.preset or args.config:
        return args.preset
    return "default" if load_config(None, None, args.overrides).domain == "arithmetic" else None


def cmd_run(args: argparse.Namespace) -> int:
    preset = implied_preset(args)
    cfg = load_config(args.config, preset, args.overrides + budget_overrides(args))
    if args.dry_run:
        return dry_run(cfg)
    if args.run_dir is None:
        args.run_dir = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    return execute(open_run(cfg, args.run_dir, not args.no_progress and not args.quiet, args.quiet))


def cmd_resume(args: argparse.Namespace) -> int:
    rd = RunDir(args.run_dir)
    if not rd.config.exists():
        raise InputError(f"{rd.root}: not a run directory (no config.yaml)")
    cfg = load_config(rd.config)
    if args.config or args.preset or args.overrides:
        check_run_dir(rd, load_config(args.config, args.preset, args.overrides))
    raised = budget_overrides(args)
    if raised:  # a budget stop is continued with a larger budget: the one setting resume may change
        from ioa.config import config_to_yaml
        from ioa.io import atomic_write_text

        cfg = load_config(rd.config, None, raised)
        atomic_write_text(rd.config, config_to_yaml(cfg))
    return execute(open_run(cfg, rd.root, not args.no_progress and not args.quiet, args.quiet))


def cmd_report(args: argparse.Namespace) -> int:
    if not RunDir(args.run_dir).diagnosis.exists():
        raise InputError(f"{args.run_dir}: not a run directory with a diagnosis (diagnosis.json missing)")
    from ioa.lock import acquire

    acquire(args.run_dir)
    write_report_for(args.run_dir)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ioa.compare import write_comparison

    out = args.out or Path(args.run_dirs[0]).parent / "compare"
    paths = write_comparison(args.run_dirs, out)
    print((out / "compare.md").read_text())
    print("wrote " + ", ".join(str(p) for p in paths[:3]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ioa", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("identify", help="diagnose gaps and prerequisites from attempts")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--outcomes", type=Path, help="JSONL of attempts {learner, module, group, role, correct}")
    src.add_argument("--domain", help="probe a built-in domain (teacher: procedural, student: simulated)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0)
    add_config_args(p)
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser("plan", help="turn a diagnosis into a staged curriculum")
    p.add_argument("--diagnosis", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    add_config_args(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("run", help="the whole staged distillation (default: built-in arithmetic, SmolLM2-135M)")
    p.add_argument("--run-dir", type=Path, help="run directory (default: runs/<timestamp>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--quiet", action="store_true",
                   help="no phase messages: errors and the final lines only (implies --no-progress)")
    p.add_argument("--dry-run", action="store_true",
                   help="estimate teacher calls, tokens and cost of the planned run; spend nothing")
    add_budget_args(p)
    add_config_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("resume", help="continue a stopped run without redoing finished work")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no phase messages (implies --no-progress)")
    add_budget_args(p)
    add_config_args(p)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("report", help="write report.md and report.html for a run directory")
    p.add_argument("run_dir", type=Path)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("compare",
                       help="table and plots comparing finished runs of different methods (mean ± std over seeds)")
    p.add_argument("run_dirs", type=Path, nargs="+", help="finished run directories")
    p.add_argument("--out", type=Path, help="output directory (default: <parent of the first run>/compare)")
    p.set_defaults(func=cmd_compare)

    from ioa.cli_eval import add_eval_parsers

    add_eval_parsers(sub)  # eval, score
    return parser


def main(argv: list[str] | None = None) -> int:
    from ioa import distributed

    args = build_parser().parse_args(argv)
    if distributed.launched() and args.func in (cmd_run, cmd_resume):
        # Under `accelerate launch`/torchrun rank 0 runs the method and the other ranks follow it
        # (ioa.distributed); any other command runs on every rank as it would alone.
        distributed.start()
        if distributed.rank() != 0:
            return distributed.serve()
    try:
        return args.func(args)
    except USER_ERRORS as e:
        print(f"ioa: error: {e}", file=sys.stderr)
        return 2
    except BudgetExceeded as e:
        print(f"ioa: stopped: {e}", file=sys.stderr)
        return 3
    except TeacherCallError as e:
        print(f"ioa: error: {e}\nioa: the run directory is resumable with `ioa resume DIR` "
              "(answers already paid for are cached)", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        print("ioa: interrupted; the run directory is resumable with `ioa resume DIR`", file=sys.stderr)
        return 130
    except OSError as e:
        full = no_space(e)
        if full is None:
            raise
        print(f"ioa: stopped: {full}; free space, then `ioa resume DIR` continues from the last finished step",
              file=sys.stderr)
        return 5
    finally:
        from ioa.lock import release_all

        distributed.stop_workers()
        release_all()


if __name__ == "__main__":
    sys.exit(main())
