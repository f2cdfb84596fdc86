"""Models: families, networks, training, the fit engine, saving and inference."""
