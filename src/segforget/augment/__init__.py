"""Forgetting-aware training methods."""
