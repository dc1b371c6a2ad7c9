"""Training orchestration: runners, evaluation against the success criterion, logging, checkpoints."""

# Here rather than in .config, which imports torch: the command line lists them before it knows what it will run.
ALGORITHMS = ("ppo", "td3", "sac")
