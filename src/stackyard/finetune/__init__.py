"""Fine-tuning: datasets, LoRA training jobs, evaluation against the base model, and serving
the tuned model through the gateway. Training needs the ``finetune`` extra."""
