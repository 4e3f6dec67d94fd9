"""Fine-tuning the agents: `data` builds per-agent chat datasets from trajectory collections, `train` trains
one LoRA adapter per agent on them (`mapcoder-lite finetune`, `cli`), and `manifest` records how."""
