"""Re-hash the deps of every stage in dvc.lock that has run, keeping its recorded outputs.

Like `dvc commit -f`, but it needs no outputs in the workspace: for a code change shown not to
change any output (a short run before and after gives byte-identical files), so the recorded
run's dvc.lock can follow the code without a full re-run. A dep not in the workspace keeps the hash
this stage recorded, or (new) takes the hash another stage recorded for that output. Run from the repository root:

    python tools/refresh_lock_deps.py [STAGE ...]
"""
import argparse
import sys

from dvc.repo import Repo

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("stages", nargs="*", metavar="STAGE", help="only these stages (default: every stage)")
only = set(parser.parse_args().stages)
repo = Repo(".")
with repo.lock:
    stages = [s for s in repo.index.stages if s.cmd]
    unknown = sorted(only - {s.name for s in stages})
    if unknown:
        sys.exit(f"refresh_lock_deps: no stage named {', '.join(unknown)}; nothing re-hashed")
    recorded = {str(out): out.hash_info for s in stages for out in s.outs if out.hash_info}
    for stage in stages:
        if only and stage.name not in only:
            continue
        if not all(out.hash_info for out in stage.outs):  # never run: nothing recorded to keep
            print("skipped (no recorded outputs):", stage.addressing)
            continue
        for dep in stage.deps:
            if dep.exists:
                dep.save()
            elif dep.hash_info:  # not in this workspace: keep the hash this stage recorded
                pass
            elif str(dep) in recorded:  # a new dep on an upstream output not in this workspace
                dep.hash_info = recorded[str(dep)]
            else:
                sys.exit(f"{stage.addressing}: dependency {dep} is missing and no stage records it")
        stage.dvcfile.dump(stage, update_pipeline=False)
        print("re-hashed deps of", stage.addressing)
