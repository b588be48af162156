"""Dataset building from conversation logs, LoRA fine-tuning and evaluation."""
