"""Data: UTKFace names and labels, image listing and decoding, ingest, the split, the .npy cache."""
