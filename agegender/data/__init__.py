"""Data: UTKFace names and labels, image listing and decoding, ingest, the split, the .npy cache,
and the tf.data batches that training and prediction both read images through."""
