"""Weak supervision: labeling functions, their votes, analysis, and label models."""
