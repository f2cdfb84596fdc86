"""Where things are in this checkout, for a test at any depth of tests/ (a test file that moves to
another folder keeps working): the repository root, tests/helpers/ and its fixtures."""
from pathlib import Path

HELPERS = Path(__file__).resolve().parent
ROOT = HELPERS.parents[1]  # the repository root: agegender/, params.yaml, dvc.yaml
FIXTURES = HELPERS / "fixtures"  # files made once and committed (saved models, reference outputs)
