"""Benchmark: the transfer families' cost, with random bases (weights=null: the same FLOPs as
ImageNet weights).

    python -m benchmarks.speed.transfer_bench flops
        Multiply-adds of the frozen part per face (conv, depthwise and dense layers, from the
        layers' shapes) for vgg16 @128, vgg19 @70 and the modern candidates at 128 px
        (EfficientNetV2-B0, MobileNetV3-Large, ConvNeXt-Tiny), and the feature map each caches.
    python -m benchmarks.speed.transfer_bench features [--faces N] [--models vgg19,vgg16,efficientnetv2_b0]
        On the first N real faces of the archive (90 % train, 10 % val): the feature pass rate
        (faces/s, each face and its mirror image) and the wall time of one head epoch from the cache.
    python -m benchmarks.speed.transfer_bench batching [--model face_mobilenet] [--batch 64] [--rounds 5]
        The feature pass's batching: the frozen part (random weights, random pixels) over --batch
        faces and their mirror images, as the two calls of --batch the features stage makes and as
        one call of 2 x --batch (tried 2026-12-06: no faster, docs/log.md), in one process, each
        first every other round; images/s of each and their ratio, round by round, then the
        median ratio.
    python -m benchmarks.speed.transfer_bench top [--model face_mobilenet] [--top conv_dw_13,conv_pw_13
                                                  --top conv_pw_13] [--faces 1280] [--epochs 2] [--rounds 4]
                                                  [--batch 64] [--steps 15]
        What a ``cached_top`` costs to train: for each --top list (the base's last layers trained
        from the cache; default: the last pair and its pointwise layer alone), random base weights,
        in one process, float32, one untimed run of each first, then the lists' order turned every
        round: the training step the train stage compiles (its losses and optimizer) on one random
        batch of features (--steps steps), then --epochs epochs as the train stage runs them
        (``train_model``: its input pipeline from a features cache of --faces random faces, val
        each epoch); faces/s of each, the ratios to the first list and their median; the trainable
        parameters and the step's FLOPs per face counted from the model.
    python -m benchmarks.speed.transfer_bench e2e [--faces N] [--model vgg19] [-S key=value ...]
        `dvc exp run -S model=M -S models.M.architecture.weights=null ...` end to end in a scratch
        clone of this repository (HEAD), on the whole archive or (--faces N) its first N faces,
        printing the wall time of every stage and the total; with --again k=v (and --again-env
        VAR=VALUE) a second experiment in the same clone, e.g. a head-only change after the first.

--source (default /work/shared/data/UTKFace.tar.gz or data/raw/UTKFace.tar.gz). Figures depend on
the machine (printed first) and on its load: say both when quoting them.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SOURCES = [Path("/work/shared/data/UTKFace.tar.gz"), ROOT / "data/raw/UTKFace.tar.gz"]
TRANSFER = ["vgg19", "vgg16", "efficientnetv2_b0"]
CANDIDATES = {"vgg16": ("VGG16", 128), "vgg19": ("VGG19", 70), "efficientnetv2-b0": ("EfficientNetV2B0", 128),
              "mobilenetv3-large": ("MobileNetV3Large", 128), "convnext-tiny": ("ConvNeXtTiny", 128)}


def machine() -> str:
    from agegender import hardware

    cpu = hardware.cpu_info()
    return (f"{hardware.device_name(cpu, hardware.gpu_info())}; ISA {' '.join(hardware.isa_flags(cpu))}; "
            f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}")


def macs(model) -> int:
    """Multiply-adds of one input through ``model``'s conv / depthwise conv / dense layers."""
    import keras

    total = 0
    for layer in _all_layers(model):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            out = layer.output.shape
            kernel = layer.kernel.shape
            positions = 1
            for d in out[1:-1]:
                positions *= d
            if isinstance(layer, keras.layers.DepthwiseConv2D):
                total += positions * out[-1] * kernel[0] * kernel[1]
            else:  # Conv2D: (kh, kw, cin, cout); Dense: (cin, cout)
                size = 1
                for d in kernel:
                    size *= d
                total += positions * size
    return total


def _all_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
        else:
            yield layer


def flops() -> None:
    import keras

    print("base @ input: GFLOP per face (2 x multiply-adds), feature map cached, KiB per face (float16)")
    for name, (app, size) in CANDIDATES.items():
        model = getattr(keras.applications, app)(include_top=False, weights=None, input_shape=(size, size, 3))
        shape = model.output.shape[1:]
        units = shape[0] * shape[1] * shape[2]
        print(f"{name:18s} @ {size:3d} px: {2 * macs(model) / 1e9:6.2f} GFLOP, {tuple(shape)}, "
              f"{units * 2 / 1024:.0f} KiB")


def _source(path: str | None) -> Path:
    for candidate in ([Path(path)] if path else SOURCES):
        if candidate.exists():
            return candidate
    raise SystemExit(f"no UTKFace archive at {path or [str(s) for s in SOURCES]}")


def _faces(source: Path, n: int, folder: Path) -> Path:
    """The first ``n`` well-named faces of the archive, unpacked into ``folder``."""
    from agegender.data.source import iter_images

    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for name, data in iter_images(source):
        if count >= n:
            break
        if re.match(r"^\d+_[01]_\d_", Path(name).name):
            (folder / Path(name).name).write_bytes(data)
            count += 1
    return folder


def _random_base_block(raw: dict, name: str) -> dict:
    """params.yaml's block of transfer family ``name`` (``raw``: the params as a dict) with a random
    base (the same FLOPs, nothing to fetch), training from cached features whatever it says."""
    block = dict(raw["models"].get(name, {}))
    block["architecture"] = {**block.get("architecture", {}), "weights": None}
    block["features"] = "cached"
    return block


def features(source: Path, n: int, models: list[str]) -> None:
    import numpy as np

    from agegender.data.arrays import load_split
    from agegender.data.images import decode, get_profile, to_array
    from agegender.model.families import get_family
    from agegender.params import load_params, parse_params
    from agegender.training.features import FeatureCache, compute_features, feature_spec
    from agegender.training.fit import train_model
    from benchmarks.common.face_arrays import write_splits

    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = sorted(_faces(source, n, tmp / "faces").iterdir())
        labels = np.array([[int(f.name.split("_")[0]), int(f.name.split("_")[1]), 0] for f in files], np.int16)
        raw = load_params(ROOT / "params.yaml").model_dump(exclude_unset=True, mode="json")
        for name in models:
            family = get_family(name)
            profile = get_profile(family.profile)
            data = tmp / profile.name
            if not data.exists():
                write_splits(data, np.stack([to_array(decode(f.read_bytes(), f.name), profile) for f in files]),
                             labels)
            block = {**_random_base_block(raw, name), "epochs": 1}
            if block.get("fine_tune"):
                block["fine_tune"] = {**block["fine_tune"], "frozen_epochs": 1}
            params = parse_params({"data": {"source": str(source)}, "model": name, "models": {name: block}})
            out = tmp / f"features_{name}"
            done = compute_features(params, data, out, feature_spec(params))
            faces = sum(s["faces"] for s in done["splits"].values())
            start = time.perf_counter()
            _, summary = train_model(name, params.recipe, 0, load_split(data, "train"), load_split(data, "val"),
                                     tmp / f"live_{name}", verbose=0, features=FeatureCache(out))
            wall = time.perf_counter() - start
            size = sum(f.stat().st_size for f in out.glob("*_features*.npy"))
            print(f"{name}: feature pass {faces / done['seconds']:.1f} faces/s ({faces} faces x 2 in "
                  f"{done['seconds']} s, {done['precision_used']}); head epoch {summary.train_seconds} s "
                  f"({wall:.1f} s with set-up) on {summary.train_images} faces; cache {size / 2 ** 20:.1f} MiB "
                  f"= {size / faces / 1024:.1f} KiB per face (face + mirror)")


def batching(model: str, batch: int, rounds: int) -> None:
    import numpy as np

    from agegender.model.build import build_model
    from agegender.model.families import get_family
    from agegender.params import load_params, parse_params
    from agegender.training.features import frozen_model
    from agegender.training.feature_spec import feature_spec

    family = get_family(model)
    if family.pretrained is None:
        raise SystemExit(f"{model} has no pretrained base, so no feature pass: name a transfer family")
    print(machine())
    raw = load_params(ROOT / "params.yaml").model_dump(exclude_unset=True, mode="json")
    params = parse_params({**raw, "model": model, "models": {**raw["models"], model: _random_base_block(raw, model)}})
    net = build_model(family, params.recipe, 0, "float32")
    frozen = frozen_model(net, family.pretrained, feature_spec(params).get("cut"))
    size = frozen.input.shape[1]
    x = np.random.default_rng(0).integers(0, 256, (batch, size, size, 3), dtype=np.uint8)

    def two_calls():  # the features stage's
        frozen.predict_on_batch(x)
        frozen.predict_on_batch(x[:, :, ::-1])

    def one_call():  # the alternative, its concatenation included
        frozen.predict_on_batch(np.concatenate([x, x[:, :, ::-1]]))

    for run in (two_calls, one_call):  # traced once per batch shape, before any timing
        run()
    print(f"{model}, {size} px, {2 * batch} images a round (faces and mirror images), float32:")
    ratios = []
    for r in range(rounds):
        rates = {}
        for run in _turned((two_calls, one_call), r):
            start = time.perf_counter()
            run()
            rates[run.__name__] = 2 * batch / (time.perf_counter() - start)
        print(f"  round {r + 1}: two calls of {batch} {rates['two_calls']:.1f} images/s, one call of "
              f"{2 * batch} {rates['one_call']:.1f} images/s, ratio {rates['one_call'] / rates['two_calls']:.2f}",
              flush=True)
        ratios.append(rates["one_call"] / rates["two_calls"])
    print("one call against two: " + _ratios_line(ratios, "one call faster"))


def _turned(items, round_index: int) -> list:
    """``items`` in the order of round ``round_index``: each goes first in turn, so neither a warm
    cache nor a cold one favours the same one every round."""
    k = round_index % len(items)
    return [*items[k:], *items[:k]]


def _ratios_line(ratios: list[float], faster: str = "faster") -> str:
    """The rounds' ratios (one over another) summed up: median, range, rounds above 1."""
    import numpy as np

    return (f"median ratio {np.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f}), "
            f"{faster} in {sum(q > 1 for q in ratios)} of {len(ratios)} rounds")


def top(model: str, tops: list[list[str]], batch: int, steps: int, rounds: int, faces: int, epochs: int) -> None:
    import numpy as np

    from agegender.data.arrays import load_split
    from agegender.data.images import get_profile
    from agegender.model.build import build_model
    from agegender.model.families import get_family
    from agegender.model.targets import keras_targets
    from agegender.params import load_params, parse_params
    from agegender.training.features import FeatureCache, check_cached_top, compute_features, head_model
    from agegender.training.feature_spec import feature_spec
    from agegender.training.fit import train_model
    from agegender.training.flops import train_step_flops
    from agegender.training.phases import compile_model, set_trainable
    from agegender.training.setup import batches_per_epoch
    from benchmarks.common.face_arrays import write_random_splits

    family = get_family(model)
    if family.pretrained is None:
        raise SystemExit(f"{model} has no pretrained base, so no cached_top: name a transfer family")
    keys = [",".join(names) for names in tops]
    if len(set(keys)) < len(keys):
        raise SystemExit(f"--top names the same list twice: {', '.join(keys)}")
    print(machine())
    raw = load_params(ROOT / "params.yaml").model_dump(exclude_unset=True, mode="json")
    steps_of, stages_of = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = write_random_splits(tmp / "faces", get_profile(family.profile).shape, faces)
        train, val = load_split(data, "train"), load_split(data, "val")
        # the step's one batch of targets: the first train faces' labels (repeated if fewer)
        y = keras_targets(np.resize(train[1], (batch, train[1].shape[1])), family.age_output)
        for key, names in zip(keys, tops):
            # what the train stage runs whatever params.yaml says of these: float32, a val split
            block = {**_random_base_block(raw, model), "cached_top": names, "epochs": epochs,
                     "early_stopping_patience": epochs + 1, "precision": "float32", "final_fit": False}
            params = parse_params({**raw, "model": model, "models": {**raw["models"], model: block}})
            net = build_model(family, params.recipe, 0, "float32")
            check_cached_top(net, family.pretrained, names)
            head = head_model(net, family.pretrained, names[0])
            set_trainable(net, None, "frozen", family.pretrained, names)  # as the train stage's frozen phase
            # the steps of an epoch of the stage run below: the learning-rate schedule's length
            compile_model(head, family, params.recipe, batches_per_epoch(len(train[1]), batch))
            # the cache's features are the output of a ReLU: non-negative
            x = np.random.default_rng(0).uniform(0, 3, (batch, *head.input_shape[1:])).astype(np.float32)
            trainable = sum(int(np.prod(w.shape)) for w in head.trainable_weights)
            steps_of[key] = (head, x, y, train_step_flops(head, batch).total / batch, trainable)
            cache = tmp / f"features_{len(stages_of)}"
            compute_features(params, data, cache, feature_spec(params))
            stages_of[key] = (params.recipe, FeatureCache(cache))

        def step(key):  # --steps training steps on one batch, in Python: the step alone
            head, x, y = steps_of[key][:3]
            start = time.perf_counter()
            for _ in range(steps):
                head.train_on_batch(x, y)
            return steps * batch / (time.perf_counter() - start)

        def stage(key):  # --epochs epochs as the train stage runs them: its input pipeline, val, callbacks
            recipe, cache = stages_of[key]
            _, summary = train_model(model, recipe, 0, train, val, tmp / "live", verbose=0, features=cache)
            return summary.train_images_per_second

        print(f"{model}, from the cache, float32, random base and faces; faces/s and ratios to [{keys[0]}]:")
        for name, run in (("the step alone", step), ("the train stage's epochs", stage)):
            print(f"{name}:" + (f" batches of {batch}, {steps} steps a round" if run is step else
                                f" {epochs} epochs of {len(train[1])} faces (val {len(val[1])}) a round"))
            for key in keys:  # untimed: each list's first run pays the tracing and the process's first fit
                run(key)
            ratios = {k: [] for k in keys[1:]}
            for r in range(rounds):
                rates = {key: run(key) for key in _turned(keys, r)}
                for k in keys[1:]:
                    ratios[k].append(rates[k] / rates[keys[0]])
                print(f"  round {r + 1}: " + ", ".join(f"[{k}] {rates[k]:.0f} faces/s" for k in keys), flush=True)
            for k, rs in ratios.items():
                print(f"  [{k}] against [{keys[0]}]: " + _ratios_line(rs))
    for k in keys:
        print(f"[{k}]: {steps_of[k][4]:,} trainable parameters, {steps_of[k][3] / 1e9:.4f} GFLOP a face a step")


def e2e(source: Path, n: int | None, model: str, settings: list[str], again: list[str],
        again_env: list[str]) -> None:
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        raw = clone / "data" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        if n:
            data = _faces(source, n, Path(tmp) / "UTKFace")
            settings = [f"data.source={data}", *settings]
        else:
            (raw / "UTKFace.tar.gz").symlink_to(source.resolve())
        dvc = [sys.executable, "-m", "dvc"]
        if not (clone / ".dvc").exists():
            subprocess.run([*dvc, "init", "-q"], cwd=clone, check=True)
        base = ["-S", f"model={model}", "-S", f"models.{model}.architecture.weights=null"]
        for s in settings:
            base += ["-S", s]
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        _timed_exp_run([*dvc, "exp", "run", *base], clone, env)
        if again:  # a second experiment in the same clone: what a head-only change costs after the first
            extra = [x for s in again for x in ("-S", s)]
            env2 = {**env, **dict(kv.split("=", 1) for kv in again_env)}
            print(f"again, with {' '.join(again_env) or 'the same environment'}:")
            _timed_exp_run([*dvc, "exp", "run", *base, *extra], clone, env2)


def _timed_exp_run(cmd: list[str], clone: Path, env: dict) -> None:
    """Runs ``dvc exp run ...`` in ``clone``, printing each stage's wall time (and stages DVC
    skipped or restored from its run cache) and the total."""
    print(" ".join(cmd[2:]), flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    last, stage = start, None
    for line in proc.stdout:
        found = re.match(r"Running stage '(\w+)'", line)
        if found or line.startswith("Ran experiment"):
            now = time.perf_counter()
            if stage:
                print(f"  {stage}: {now - last:.1f} s", flush=True)
            stage, last = (found.group(1) if found else None), now
        if "error" in line.lower() or re.match(r"Stage '\w+' (is cached|didn't change)", line):
            print("  " + line.rstrip(), flush=True)
    proc.wait()
    if stage:
        print(f"  {stage}: {time.perf_counter() - last:.1f} s")
    print(f"total {time.perf_counter() - start:.1f} s (exit {proc.returncode})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("flops")
    f = sub.add_parser("features")
    f.add_argument("--faces", type=int, default=500)
    f.add_argument("--models", default=",".join(TRANSFER))
    f.add_argument("--source")
    b = sub.add_parser("batching")
    b.add_argument("--model", default="face_mobilenet")
    b.add_argument("--batch", type=int, default=64)
    b.add_argument("--rounds", type=int, default=5)
    t = sub.add_parser("top")
    t.add_argument("--model", default="face_mobilenet")
    t.add_argument("--top", action="append", default=None, metavar="LAYER[,LAYER...]",
                   help="a cached_top list; repeat to compare (default: conv_dw_13,conv_pw_13 and conv_pw_13)")
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--steps", type=int, default=15)
    t.add_argument("--rounds", type=int, default=4)
    t.add_argument("--faces", type=int, default=1280, help="random faces of the train stage's rounds (10 %% val)")
    t.add_argument("--epochs", type=int, default=2, help="epochs of each train stage's round")
    e = sub.add_parser("e2e")
    e.add_argument("--faces", type=int, default=None, help="first N faces only (default: the whole archive)")
    e.add_argument("--model", default="vgg19", choices=TRANSFER)
    e.add_argument("--source")
    e.add_argument("-S", dest="settings", action="append", default=[], help="more -S settings of dvc exp run")
    e.add_argument("--again", action="append", default=[], metavar="KEY=VALUE",
                   help="then a second experiment in the same clone with these -S settings added")
    e.add_argument("--again-env", action="append", default=[], metavar="VAR=VALUE",
                   help="environment of the second experiment, e.g. ONEDNN_MAX_CPU_ISA=AVX2")
    args = parser.parse_args()
    if args.command == "flops":
        flops()
    elif args.command == "batching":
        batching(args.model, args.batch, args.rounds)
    elif args.command == "top":
        tops = args.top or ["conv_dw_13,conv_pw_13", "conv_pw_13"]
        top(args.model, [t.split(",") for t in tops], args.batch, args.steps, args.rounds, args.faces,
            args.epochs)
    elif args.command == "features":
        features(_source(args.source), args.faces, args.models.split(","))
    else:
        e2e(_source(args.source), args.faces, args.model, args.settings, args.again, args.again_env)


if __name__ == "__main__":
    main()
