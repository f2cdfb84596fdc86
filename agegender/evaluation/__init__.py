"""Metrics, fairness breakdown, scoring, figures, model card, k-fold and external scoring."""
