"""The ``mtcnn`` detector (the default): MTCNN (Zhang et al., 2016) from the ``mtcnn`` wheel (MIT
licence), run on TensorFlow. It gives each face a box, a confidence and five landmarks (eyes,
nose, mouth corners), from which the chip is cut aligned
(:func:`~agegender.faces.alignment.aligned_chip`). It finds faces turned in the picture's
plane by up to about 30 degrees, and partly turned away.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from agegender.data.images import to_mode
from agegender.faces.detector import Box, DetectorUnavailable, Face, shrink_to

# Photos are searched at most this large: MTCNN finds faces down to 20 px there (3 % of the long
# side: 40 px in a 1280 x 720 photo). Its own min_face_size lever is broken in mtcnn 1.0.0 (any
# value but 20 builds pyramid levels under PNet's 12 px and finds nothing), so shrinking the photo
# is the lever: 640 runs at 1280 x 720 about twice as fast as the full size.
MTCNN_MAX_SIDE = 640


class MtcnnDetector:
    """MTCNN (Zhang et al., 2016) from the ``mtcnn`` wheel (MIT; its three networks' weights ship
    inside the wheel, nothing is downloaded): face boxes, a confidence and five landmarks each.

    Photos are shrunk to at most ``max_side`` pixels (area averaging) to search them; boxes and
    landmarks come back in pixels of the photo given, left to right.
    """

    def __init__(self, max_side: int = MTCNN_MAX_SIDE, min_confidence: float = 0.8):
        try:
            from mtcnn import MTCNN
        except ImportError as exc:
            raise DetectorUnavailable(f"face detection needs the mtcnn package ({exc}); install "
                                      "requirements.txt, or use --detector haar or --no-detect") from exc
        import tensorflow as tf

        self.max_side, self.min_confidence = max_side, min_confidence
        self._mtcnn = MTCNN(device="CPU:0")  # small networks: the CPU is fast enough, GPU or not
        # mtcnn calls its three Keras networks eagerly, once per pyramid level: as graphs (traced
        # once for any input size) the same landmarks came 2.7x faster (6.8 against 2.5 photos/s,
        # 16 pictures of 1280 x 720, both runs in one process on a loaded 2-core AMD EPYC)
        for stage in self._mtcnn.stages:
            stage._model = tf.function(stage._model, reduce_retracing=True)

    def __call__(self, img: Image.Image) -> list[Face]:
        rgb, scale = shrink_to(to_mode(img, 3), self.max_side)
        if min(rgb.size) < 24:  # PNet needs 12 px at the smallest of several pyramid levels
            return []
        found = self._mtcnn.detect_faces(np.asarray(rgb), output_type="numpy", box_format="xyxy",
                                         threshold_onet=self.min_confidence)
        faces = []
        for row in np.asarray(found, dtype=np.float64).reshape(-1, 16):
            x1, y1, x2, y2 = row[1:5] / scale
            box = Box(int(round(x1)), int(round(y1)), int(round(x2 - x1)), int(round(y2 - y1)))
            # landmarks come as the five x then the five y (mtcnn's parse_landmarks reads them so)
            faces.append(Face(box, float(row[5]), row[6:16].reshape(2, 5).T / scale))
        return sorted(faces, key=lambda f: (f.box.x, f.box.y))
