"""File-name labels, age bins, reading and listing the raw images, decoding, the split."""
