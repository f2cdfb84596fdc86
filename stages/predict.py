"""Predict age and gender on your pictures: ``python -m stages.predict PATH...`` (the same as the
``agegender-predict`` command; see agegender.prediction.cli)."""
import sys

from agegender.prediction.cli import console

if __name__ == "__main__":
    sys.exit(console())
