"""A trained model put to use: the saved file and its information, inference and decoding, the
gender temperature, and the TensorFlow Lite export."""
