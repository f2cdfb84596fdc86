"""Finding faces in photos and cutting them as UTKFace's chips: the detector interface, a name ->
detector registry, one module per detector, the alignment, and a chip cut again the predictor's way."""
