"""Which model families convert to TensorFlow Lite, and how closely the export follows Keras.

    python -m benchmarks.speed.tflite_families [FAMILY ...]      # default: every family

Per family: the network as its builder makes it (random weights, float32; the VGG bases without
ImageNet weights; heads x30 so random images get distinct outputs), converted by
agegender.serving.export.to_tflite, then 32 random uint8 images through both, decoded by the
project's decoder: the largest age difference (years) and P(female) difference, the spread of the
Keras ages (a spread near 0 means the age check says little), file size, conversion time and
images/s of each runtime (one pass, no TTA). Figures only; tests/unit/serving/test_export.py holds the bounds.
"""
import argparse
import tempfile
import time
import warnings

import numpy as np


def main() -> None:
    from agegender.model.families import FAMILIES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("families", nargs="*", default=sorted(FAMILIES))
    parser.add_argument("--images", type=int, default=32)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import keras

    from agegender import hardware
    from agegender.model.build import build_model
    from agegender.params import Recipe
    from agegender.serving.export import TFLiteModel, to_tflite
    from agegender.serving.inference import predict
    from agegender.serving.saved import ModelInfo

    cpu = hardware.cpu_info()
    print(f"cpu: {cpu.model}, {cpu.cores} cores")
    for name in args.families:
        keras.utils.set_random_seed(0)
        arch = {"weights": None} if name.startswith("vgg") else {}
        model = build_model(name, Recipe.model_validate({"architecture": arch}), seed=0,
                            precision="float32")
        for head in ("age", "gender"):
            kernel, bias = model.get_layer(head).get_weights()
            model.get_layer(head).set_weights([kernel * 30, bias])
        info = ModelInfo.for_family(name, "float32")
        start = time.perf_counter()
        data = to_tflite(model)
        convert = time.perf_counter() - start
        images = np.random.default_rng(0).integers(0, 256, (args.images, *info.profile.shape), np.uint8)
        with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
            f.write(data)
            f.flush()
            lite = TFLiteModel(f.name, info)
            predict(model, info.age_output, images[:2])  # warm-up: tracing is not speed
            lite.predict(images[:2])
            start = time.perf_counter()
            want = predict(model, info.age_output, images, batch_size=args.images)
            keras_s = time.perf_counter() - start
            start = time.perf_counter()
            got = lite.predict(images, batch_size=args.images)
            lite_s = time.perf_counter() - start
        print(f"{name}: {info.profile.name}, {len(data) / 2**20:.1f} MB, converted in {convert:.0f} s; "
              f"max |age diff| {np.abs(want['pred_age'] - got['pred_age']).max():.2g} years, "
              f"max |P(female) diff| {np.abs(want['gender_prob'] - got['gender_prob']).max():.2g}, "
              f"Keras age spread {np.ptp(want['pred_age']):.1f} years; images/s Keras "
              f"{args.images / keras_s:.0f}, TFLite {args.images / lite_s:.0f}", flush=True)


if __name__ == "__main__":
    main()
