"""Layout bleed on the arithmetic domain's own solutions: the case the compare runs showed."""
from __future__ import annotations

from ioa.adapt import adapt_solution
from ioa.config import AdapterConfig
from ioa.domains import load_domain
from ioa.layouts import bleed_share, bleeds, line_shape, module_layouts

DOMAIN = load_domain("arithmetic")
MODULES = {m.id: m for m in DOMAIN.modules()}
IDS = ["addition_facts", "multiplication_facts", "multi_digit_addition"]


def examples(cfg):
    out = []
    for m in IDS:
        for seed in range(6):
            p = DOMAIN.generate(m, 0.3, seed)
            raw = f"{p.solution}\nAnswer: {p.answer}"
            out.append({"module": m, "completion": adapt_solution(p, p.solution, raw, MODULES[m], cfg), "raw": raw})
    return out


def test_line_shape_keeps_the_words_and_hides_the_numbers():
    assert line_shape("Ones: 8 + 5 = 13. Write 3 and carry 1.") == "ones: # +"
    assert line_shape("  Count by 2s, 2 times: 2, 4.") == "count by #s,"


def test_an_answer_in_another_modules_layout_bleeds():
    layouts = module_layouts(examples(AdapterConfig()))
    column = "Ones: 7 + 4 = 11. Write 1 and carry 1.\nTens: 0 + 1 = 1. Write 1.\nAnswer: 11"
    assert bleeds("multiplication_facts", column, layouts)  # the column-addition layout for a times-table fact
    assert not bleeds("multi_digit_addition", column, layouts)  # its own layout
    assert not bleeds("multiplication_facts", "Count by 3s, 2 times: 3, 6.\nSo 3 × 2 = 6.\nAnswer: 6", layouts)
    assert not bleeds("multiplication_facts", "I think it is six.\nAnswer: 6", layouts)  # no known layout at all
    items = [{"module": "multiplication_facts", "response": column},
             {"module": "multiplication_facts", "response": "6"}, {"module": "unknown", "response": column}]
    assert bleed_share(items, layouts) == {"multiplication_facts": 0.5}


def test_the_structured_layout_shares_its_lines_across_modules():
    # the shared lines (Given/Plan/Step/Check) are in every module's layout, so they are nobody's own:
    # a structured answer to a fact bleeds only where it carries another module's solving lines
    layouts = module_layouts(examples(AdapterConfig(layout="structured")))
    assert "given: the numbers" in layouts["addition_facts"] & layouts["multi_digit_addition"]
    plan = "Plan: Use addition facts, then place value.\nStep 1: Ones: 2 + 2 = 4. Write 4.\nAnswer: 4"
    assert bleeds("multiplication_facts", plan, layouts)
