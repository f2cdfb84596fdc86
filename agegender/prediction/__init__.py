"""Prediction on photos: the Predictor API, safe input reading, streamed output, --annotate and the
agegender-predict command line."""
