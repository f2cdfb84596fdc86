"""Age and gender estimation from face images: the library behind the DVC stages in ``stages/``.

- :mod:`agegender.data`: file-name labels, age bins, reading the raw images, decoding, the split.
- :mod:`agegender.model`: model families, networks, age outputs, ``tf.data`` input, training.
- :mod:`agegender.evaluation`: metrics, fairness breakdown, scoring, figures, model card, k-fold.
- :mod:`agegender.prediction`: face finding and the predictor for users' own photos.
- :mod:`agegender.params`: ``params.yaml``, read and validated once.
"""
