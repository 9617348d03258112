"""MS-COCO 2014 train: images per class, the reference profile of ``glyphs-coco``.

``COCO2014_TRAIN_IMAGES_PER_CLASS[name]`` is the number of train2014 images holding at
least one instance of the class (the positive labels of the multi-label task), for the
80 categories of ``instances_train2014.json``. The counts are the ``nums`` array of
``data/coco/coco_adj.pkl`` in the ML-GCN repository (Chen et al., "Multi-Label Image
Recognition with Graph Convolutional Networks", CVPR 2019;
https://github.com/megvii-research/ML-GCN, commit 5517d6f), computed there from
``instances_train2014.json`` with the categories in sorted name order (its ``coco.py``:
``categoty_to_idx(sorted(category_id.values()))``). Cross-checks: person 45,174 images;
toaster 151 and hair drier 128 are the two rarest classes; the counts sum to 241,035
positive labels over the 82,081 train2014 images that hold an annotation (see
:mod:`bmxlib.data.coco`), 2.94 labels per image and 26.2 negatives per positive — the
"≈ 2.9" and "≈ 27" usually quoted for COCO.
"""

from __future__ import annotations

import numpy as np

#: train2014 images holding an annotation (82,783 files minus 702 without one)
COCO2014_TRAIN_IMAGES = 82_081

COCO2014_TRAIN_IMAGES_PER_CLASS: dict[str, int] = {
    "airplane": 2243, "apple": 1171, "backpack": 3924, "banana": 1618,
    "baseball bat": 1804, "baseball glove": 1884, "bear": 668, "bed": 2539,
    "bench": 3844, "bicycle": 2287, "bird": 2241, "boat": 2098, "book": 3734,
    "bottle": 5968, "bowl": 5028, "broccoli": 1340, "bus": 2791, "cake": 2080,
    "car": 8606, "carrot": 1186, "cat": 2818, "cell phone": 3322, "chair": 8950,
    "clock": 3159, "couch": 3170, "cow": 1389, "cup": 6518, "dining table": 8378,
    "dog": 3041, "donut": 1062, "elephant": 1518, "fire hydrant": 1205, "fork": 2537,
    "frisbee": 1511, "giraffe": 1798, "hair drier": 128, "handbag": 4861, "horse": 2068,
    "hot dog": 821, "keyboard": 1471, "kite": 1625, "knife": 3097, "laptop": 2475,
    "microwave": 1089, "motorcycle": 2442, "mouse": 1290, "orange": 1216, "oven": 2003,
    "parking meter": 481, "person": 45174, "pizza": 2202, "potted plant": 3084,
    "refrigerator": 1671, "remote": 2180, "sandwich": 1645, "scissors": 673,
    "sheep": 1105, "sink": 3291, "skateboard": 2511, "skis": 2209, "snowboard": 1170,
    "spoon": 2493, "sports ball": 2986, "stop sign": 1214, "suitcase": 1631,
    "surfboard": 2343, "teddy bear": 1510, "tennis racket": 2368, "tie": 2667,
    "toaster": 151, "toilet": 2317, "toothbrush": 700, "traffic light": 2893,
    "train": 2464, "truck": 4321, "tv": 3191, "umbrella": 2749, "vase": 2530,
    "wine glass": 1771, "zebra": 1324,
}


def coco_profile() -> np.ndarray:
    """COCO 2014 train images per class, most frequent first: int64 (80,)."""
    return np.sort(np.fromiter(COCO2014_TRAIN_IMAGES_PER_CLASS.values(), dtype=np.int64))[::-1]


def coco_label_stats() -> dict[str, float]:
    """Label statistics of COCO 2014 train from the counts above.

    Returns
    -------
    dict
        ``classes``, ``labels_per_image``, ``negatives_per_positive``, ``rarest``
        (positives of the rarest class) and ``head_to_rarest`` (most / least frequent).
    """
    counts = coco_profile()
    positives = int(counts.sum())
    return {
        "classes": int(counts.size),
        "labels_per_image": positives / COCO2014_TRAIN_IMAGES,
        "negatives_per_positive": (COCO2014_TRAIN_IMAGES * counts.size - positives) / positives,
        "rarest": int(counts.min()),
        "head_to_rarest": float(counts.max() / counts.min()),
    }
