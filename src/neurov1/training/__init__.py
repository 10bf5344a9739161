"""Training: the LightningModule, Free adversarial training, checkpoints and resume, loggers, callbacks."""
