"""custscore.training."""
