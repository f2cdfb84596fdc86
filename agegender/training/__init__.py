"""Training a network: the recipe's set-up (optimizer, losses, data), the fit engine and its resume,
tf.data pipelines, the transfer families' cached features, and the FLOPs a training step costs."""
