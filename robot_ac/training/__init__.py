"""Training orchestration: runners, evaluation against the success criterion, logging, checkpoints."""
