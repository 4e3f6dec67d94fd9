"""Fine-tuning the agents: `data` builds per-agent chat datasets from trajectory collections."""
