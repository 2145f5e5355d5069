"""Configuration: paper defaults, YAML + preset + dotted overrides, and one clear error per bad value."""
from __future__ import annotations

import pytest

from ioa.config import ConfigError, RunConfig, StudentConfig, config_to_yaml, load_config, parse_override


def test_defaults_are_the_papers():
    cfg = RunConfig()
    assert cfg.identifier.tau_gap == 0.3
    assert cfg.organizer.tau_zpd == 0.15
    assert cfg.organizer.tau_mastery == 0.9
    assert 0.2 <= cfg.identifier.coverage <= 0.3


def test_yaml_then_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("identifier:\n  tau_gap: 0.4\n  alpha: 0.5\nseed: 3\n")
    cfg = load_config(f, None, ["identifier.tau_gap=0.25", "modules=[a, b]"])
    assert cfg.identifier.tau_gap == 0.25 and cfg.identifier.alpha == 0.5
    assert cfg.seed == 3 and cfg.modules == ["a", "b"]


def test_preset_is_overridden_by_file_and_set(tmp_path):
    cfg = load_config(None, "smoke", ["student.max_steps_per_stage=7"])
    assert cfg.student.max_steps_per_stage == 7
    assert cfg.probe.items_per_module == 8


@pytest.mark.parametrize("override, field, allowed", [
    ("identifier.tau_gap=1.5", "identifier.tau_gap", "le 1.0"),
    ("organizer.tau_zpd=0", "organizer.tau_zpd", "gt 0.0"),
    ("identifier.min_support=0", "identifier.min_support", "ge 1"),
    ("organizer.tau_mastery=-0.1", "organizer.tau_mastery", "ge 0.0"),
])
def test_bad_value_names_field_and_range(override, field, allowed):
    with pytest.raises(ConfigError) as e:
        load_config(None, None, [override])
    assert field in str(e.value) and allowed in str(e.value)


def test_unknown_field_and_preset_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="identifier.bogus"):
        load_config(None, None, ["identifier.bogus=1"])
    with pytest.raises(ConfigError, match="unknown preset"):
        load_config(None, "nope", [])
    f = tmp_path / "bad.yaml"
    f.write_text("identifier: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(f, None, [])
    with pytest.raises(ConfigError, match="key.path=value"):
        parse_override("no-equals-sign")


def test_round_trip_through_yaml(tmp_path):
    cfg = load_config(None, "smoke", ["seed=5"])
    f = tmp_path / "c.yaml"
    f.write_text(config_to_yaml(cfg))
    assert load_config(f) == cfg


def test_every_run_shares_one_user_cache_wherever_its_directory_is(tmp_path, monkeypatch):
    from ioa.rundir import RunDir

    monkeypatch.setenv("IOA_CACHE", str(tmp_path / "cache"))
    assert (RunDir(tmp_path / "a" / "run").cache == RunDir(tmp_path / "elsewhere" / "deep" / "run").cache
            == tmp_path / "cache")
    monkeypatch.delenv("IOA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert RunDir(tmp_path / "r").cache == tmp_path / "xdg" / "ioa"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert RunDir(tmp_path / "r").cache == tmp_path / "home" / ".cache" / "ioa"


def test_only_the_default_preset_compiles_the_decoder_layers():
    """Measured there (bench/results/2026-12-06-compiled-layers.md); the smoke and compare presets and a bare
    StudentConfig keep the eager layers (a compile per process, minutes of CI for short runs)."""
    assert load_config(preset="default").student.compile_layers
    assert not load_config(preset="smoke").student.compile_layers
    assert not load_config(preset="compare").student.compile_layers
    assert not StudentConfig().compile_layers
