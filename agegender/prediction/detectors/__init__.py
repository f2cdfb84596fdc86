"""The face detectors, one module each, all meeting :data:`agegender.prediction.faces.Detector`;
choose one with :func:`agegender.prediction.faces.make_detector`."""
