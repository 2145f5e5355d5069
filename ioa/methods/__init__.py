"""Methods a run can use (`method:` in the config): IOA, its ablations, and the baselines it is compared with.

All share the teacher, student, domain, training recipe and budget, and the engine that runs them
(ioa.loop). `base.py` is the Method protocol, `registry.py` maps each name to its Method, `ioa.py` is
IOA (its ablations are IOA with a part switched off), `vanilla.py`, `easy_to_hard.py`,
`self_instruct.py` and `error_targeted.py` are the baselines (what they share: `baselines.py`), and
`budget.py` is the equal budget they are held to.
"""
