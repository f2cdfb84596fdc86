"""Evaluation: metrics, fairness breakdown, scoring, figures, model card, k-fold, external sets."""
