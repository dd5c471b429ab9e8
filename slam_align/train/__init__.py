"""Training: one recipe per method (slam, full, two-stage, lora, attention, random) on one Trainer set-up."""
