"""Isolated code execution. Knows nothing of RL: requests in, results out."""
