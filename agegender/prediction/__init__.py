"""The predictor: input listing, face detection and alignment, streamed outputs."""
