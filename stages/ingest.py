"""DVC stage ingest: UTKFace file names (and the labelled sets under data.extra) -> labels CSV with
the split, and the data-quality report (with the training-data coverage per race x gender x life
stage)."""
import sys

from agegender import commands
from agegender.data.ingest import ingest
from agegender.params import load_params


def main(argv=None) -> int:
    parser = commands.parser("ingest", __doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--labels-out", required=True)
    parser.add_argument("--report-out", required=True)
    args = parser.parse_args(argv)
    commands.setup_logging(args)
    params = load_params(args.params)
    s = params.split
    report = ingest(params.data.source, args.labels_out, args.report_out, s.val_fraction,
                    s.test_fraction, s.seed, extra=params.data.extra,
                    coverage_min_faces=params.data.coverage_min_faces)
    print(f"ingest: kept {report['images_kept']} of {report['images_seen']} images; "
          f"skipped {report['skipped_by_reason']}; split {report['split_counts']}; "
          f"{len(report['coverage']['train_val']['thin'])} thin race x gender x life-stage cells "
          f"in train + val (under {report['coverage']['min_faces']} faces)")
    return 0


if __name__ == "__main__":
    sys.exit(commands.run("ingest", main))
