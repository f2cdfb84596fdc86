"""Prediction on photos: face detectors, alignment, the Predictor API and its command line."""
