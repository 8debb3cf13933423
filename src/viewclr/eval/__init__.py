"""Evaluation of encoders on cross-view protocols."""
