"""Training: ``bireid.engine.trainer.train(cfg)`` and its parts.

``setup`` (device, seeds, data sets, the trained parts) · ``optim`` (parameter groups, optimizer, schedule) ·
``step`` (one training step) · ``evaluate`` (the evaluation hook) · ``resume`` (the resumable checkpoint) ·
``run_folder`` (logs, curves, final model and results) · ``trainer`` (the loop).
"""
