"""The anchor of ``benchmarks.finetune``: TRL's ``SFTTrainer`` with PEFT, run in its own venv
(``benchmarks/.venvs/trl``). Prints one JSON line."""

from __future__ import annotations

import subprocess
from pathlib import Path

from benchmarks._procs import torch_venv

PACKAGES = ("trl", "peft", "transformers>=5.24,<6", "gguf", "accelerate", "datasets")

SCRIPT = r"""
import json, os, resource, sys, time
os.environ["HF_HUB_OFFLINE"] = "1"
import torch, transformers, trl
from datasets import Dataset
from peft import LoraConfig
from trl import SFTConfig, SFTTrainer

directory, gguf, data_path, out, batch, max_length, lr, seed = sys.argv[1:9]
torch.manual_seed(int(seed))
tokenizer = transformers.AutoTokenizer.from_pretrained(directory, gguf_file=gguf)
model = transformers.AutoModelForCausalLM.from_pretrained(
    directory, gguf_file=gguf, dtype=torch.float32
)
# The GGUF weights are dequantized to fp32 on load (as for Stackyard); only the marker remains,
# and the Trainer refuses "quantized" models without it cleared.
model.hf_quantizer = None
model.is_quantized = False
rows = [json.loads(line) for line in open(data_path)]
dataset = Dataset.from_list(rows)  # conversational prompt/completion: loss on the completion
config = SFTConfig(
    output_dir=out, per_device_train_batch_size=int(batch), num_train_epochs=1,
    learning_rate=float(lr), lr_scheduler_type="linear", max_length=int(max_length),
    logging_steps=1000, save_strategy="no", report_to=[], use_cpu=True, seed=int(seed),
    dataloader_num_workers=0, bf16=False, fp16=False,
    gradient_checkpointing=False,  # Stackyard does not checkpoint activations either
)
peft = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                  target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                     peft_config=peft)
started = time.perf_counter()
trainer.train()
seconds = time.perf_counter() - started
trainer.model.save_pretrained(os.path.join(out, "adapter"))
print(json.dumps({"seconds": seconds, "version": trl.__version__,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def python() -> Path:
    return torch_venv("trl", PACKAGES)


def run(*args: str) -> str:
    result = subprocess.run(
        [str(python()), "-c", SCRIPT, *args], check=False, capture_output=True, text=True
    )
    if result.returncode:
        raise RuntimeError(f"TRL failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1]
