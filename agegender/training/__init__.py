"""Training a network: the recipe's set-up (optimizer, losses, data), the fit engine and its resume,
tf.data pipelines, the hardware it runs on, and the transfer families' cached features."""
