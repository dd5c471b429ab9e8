"""Training: one recipe per method (slam, full, two-stage, lora, attention, random) on one Trainer set-up.

- :mod:`.recipes`: what each method trains (through a freezing plan) and its stages;
- :mod:`.trainer`: the one Transformers ``Trainer`` set-up every method shares;
- :mod:`.engines`: DDP, DeepSpeed ZeRO-2/3 and FSDP2 under that Trainer (CPU processes too);
- :mod:`.train`: ``slam train`` (``TrainOptions``, ``train(options)``): stages, resume, accounting;
- :mod:`.delta`: delta checkpoints (only the trained tensors + a manifest);
- :mod:`.merge`: ``slam merge`` (base + delta -> a full model);
- :mod:`.report`: loss curve, plot and README of a run.
"""
