"""DVC stage check_params, the first of every pipeline: params.yaml is valid, the raw data is
where it says, and a transfer family's pretrained weights can be had, checked before any other
stage runs.

DVC removes a stage's outputs before running it, so a mistake found by the stage itself (a typo
planted in params.yaml by hand) would cost the workspace what that stage made before, the
trained model included. Every other stage depends on this stage's output, so a bad setting stops
``dvc repro`` here with one line naming the key, and nothing else has run. The output's bytes
never change: a valid edit re-runs this stage, and downstream only the stages that use the
edited setting (their ``params:``).

Its second output, ``--features-spec``, is what the cached features of a transfer family depend
on (agegender/training/features.py: feature_spec), written after the weights check: the features
stage depends on it instead of on params, so a head-only change leaves it byte for byte the same
and DVC does not recompute the features.
"""
import sys
from pathlib import Path

from agegender import commands
from agegender.data.source import check_source
from agegender.model.families import get_family, load_family_params
from agegender.pretrained.weights import check_stage_package, ensure_weights, fetched_by_stage
from agegender.training.feature_spec import feature_spec, write_spec

# the whole output: constant, so that downstream stages see no change when params.yaml changes
CHECKED = "params.yaml valid, raw data found (stages/check_params.py)\n"


def main(argv=None) -> int:
    parser = commands.parser("check_params", __doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True, help="the constant file every other stage depends on")
    parser.add_argument("--features-spec", default=None,
                        help="where to write what the cached features depend on (the features stage's dep)")
    args = parser.parse_args(argv)
    commands.setup_logging(args)
    params = load_family_params(args.params)
    # the README's missing-data message, here rather than DVC's missing-dependency error for ingest
    check_source(params.data.source)
    family = get_family(params.model)
    if family.pretrained:  # e.g. -S model=vgg19 offline: one line now, not after train's outputs are gone
        weights = family.settings(params.recipe)["weights"]
        if fetched_by_stage(weights, params.paths.get("pretrained")):  # the pretrained stage makes it
            check_stage_package(family.pretrained, params.pretrained.package, params.pretrained.version)
        else:
            ensure_weights(family.pretrained, weights, family.name)
    if args.features_spec:
        write_spec(args.features_spec, feature_spec(params))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(CHECKED)
    print(f"check_params: {args.params} is valid; raw data at {params.data.source}")
    return 0


if __name__ == "__main__":
    sys.exit(commands.run("check_params", main))
