"""custscore.serving."""
