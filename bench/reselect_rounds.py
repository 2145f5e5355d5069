"""A finished one-stage IOA run re-decided under another round-choice rule, without training again.

    python bench/reselect_rounds.py SRC DST --label ioa-best --set organizer.round_choice=best

With a one-stage curriculum the round a stage ends on is the run's last decision: every round was
already trained and gated, so a run that differs only in `organizer.round_choice`, `round_alpha` or
`max_known_drop` would train exactly the same rounds. DST gets SRC's files up to the gates (probes,
diagnosis, every round's data, state, eval and gate), a config with the overrides and the label, and
`ioa resume` makes the choice and scores the chosen state on the test items. The paired comparison
then isolates the rule. Refuses runs with more than one stage (a later stage would have trained from
the other state) and overrides of any other key.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from ioa.config import config_to_yaml, load_config  # noqa: E402
from ioa.io import read_json  # noqa: E402

ROUND_KEYS = ("organizer.round_choice", "organizer.round_alpha", "organizer.max_known_drop")
AFTER_THE_CHOICE = ("summary.json", "final_eval.json", "report.md", "report.html", "model", "plots", ".lock",
                    "timings.json")


def reselect(src: Path, dst: Path, label: str, sets: list[str]) -> None:
    bad = [s for s in sets if s.split("=", 1)[0] not in ROUND_KEYS]
    if bad:
        raise SystemExit(f"only {', '.join(ROUND_KEYS)} can be re-decided; got {', '.join(bad)}")
    stages = read_json(src / "curriculum.json")["stages"]
    if len(stages) != 1:
        raise SystemExit(f"{src}: {len(stages)} stages; the round choice is the last decision only with one")
    if not (src / "summary.json").exists():
        raise SystemExit(f"{src} has not finished")
    if not (dst / "summary.json").exists():
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*AFTER_THE_CHOICE, "selected.json", "trainer"))
        cfg = load_config(src / "config.yaml", None, [*sets, f"label={label}"])
        (dst / "config.yaml").write_text(config_to_yaml(cfg))
        subprocess.run([sys.executable, "-m", "ioa.cli", "resume", str(dst), "--no-progress"], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
    print(f"{dst}: round {read_json(dst / 'stages' / '0' / 'selected.json')['round']} "
          f"(was {read_json(src / 'stages' / '0' / 'selected.json')['round']})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--label", required=True)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    reselect(args.src, args.dst, args.label, args.sets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
