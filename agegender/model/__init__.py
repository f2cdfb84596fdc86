"""Model families, networks, age outputs, tf.data input, training and saved-model information."""
