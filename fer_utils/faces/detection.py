"""Face detection and cropping with dlib: box → (optional eye-level alignment) → gray crop, uint8.

Detectors: ``"hog"`` (dlib's frontal HOG detector, as the paper; the default of face caches),
``"centerface"`` (a small CNN, :mod:`fer_utils.faces.centerface`: ``fer predict``'s default, it finds the
faces HOG misses, e.g. behind sunglasses, at about HOG's cost), ``"cnn"`` (dlib's MMOD CNN from the
``face-recognition-models`` package; slow on CPU, more robust to pose) and ``"none"`` (the whole image
is the face: already-cropped datasets). dlib objects are not picklable, so each process builds its own
detector on first use (:func:`get_detector` caches them per process).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fer_utils.faces import centerface

DETECTORS = ("hog", "centerface", "cnn", "none")
#: The paper's face crop side in pixels (its CNN's published input): the one place the 180 is written.
PAPER_FACE_SIZE = 180

_MODELS: dict[str, object] = {}


@dataclass(frozen=True)
class FaceBox:
    """A face rectangle in the coordinates of the full-resolution frame."""

    x: int
    y: int
    w: int
    h: int
    score: float = 0.0

    @property
    def area(self) -> int:
        return self.w * self.h


def get_detector(name: str):
    """The detector ``"hog"``, ``"centerface"`` or ``"cnn"``, built once per process."""
    if name not in ("hog", "centerface", "cnn"):
        raise ValueError(f"unknown face detector {name!r}; choose one of {DETECTORS}")
    if name not in _MODELS:
        if name == "centerface":
            centerface.session()  # a missing package is said here, before any frame
            _MODELS[name] = centerface.detect
            return _MODELS[name]
        import dlib

        if name == "hog":
            _MODELS[name] = dlib.get_frontal_face_detector()
        else:
            import face_recognition_models

            _MODELS[name] = dlib.cnn_face_detection_model_v1(
                face_recognition_models.cnn_face_detector_model_location()
            )
    return _MODELS[name]


def get_landmark_predictor():
    """dlib's 68-point shape predictor (``face-recognition-models``), built once per process."""
    if "landmarks68" not in _MODELS:
        import dlib
        import face_recognition_models

        _MODELS["landmarks68"] = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    return _MODELS["landmarks68"]


def detect_faces(
    gray: np.ndarray, detector: str = "hog", upsample: int = 0, detect_width: int | None = None
) -> list[FaceBox]:
    """Face boxes in a gray (or BGR) frame, largest first.

    Args:
        gray: the frame, uint8.
        detector: ``"hog"``, ``"centerface"`` or ``"cnn"``.
        upsample: upsampling passes (each doubles the size the detector sees; finds smaller faces, ~4× slower).
        detect_width: detect on a copy downscaled to this width (boxes mapped back); None = full size.

    Returns:
        Boxes in full-frame coordinates, sorted by area, largest first.
    """
    import cv2

    if upsample < 0:
        raise ValueError(f"upsample must be ≥ 0, got {upsample}")
    model = get_detector(detector)
    scale = 1.0
    image = gray
    if detect_width and gray.shape[1] > detect_width:
        scale = detect_width / gray.shape[1]
        size = (detect_width, max(1, round(gray.shape[0] * scale)))
        image = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    image = np.ascontiguousarray(image)
    if detector == "centerface":
        return _boxes_by_size(
            [
                FaceBox(*(round(v / scale) for v in box[:4]), box[4])
                for box in model(image, centerface.INPUT_SIDE * 2**upsample)
            ]
        )
    if detector == "hog":
        rects, scores, _ = model.run(image, upsample, 0.0)
        found = list(zip(rects, scores, strict=True))
    else:
        found = [(d.rect, d.confidence) for d in model(image, upsample)]
    boxes = [
        FaceBox(
            round(rect.left() / scale),
            round(rect.top() / scale),
            round(rect.width() / scale),
            round(rect.height() / scale),
            float(score),
        )
        for rect, score in found
    ]
    return _boxes_by_size(boxes)


def _boxes_by_size(boxes: list[FaceBox]) -> list[FaceBox]:
    return sorted(boxes, key=lambda box: (-box.area, -box.score))


def eye_angle(gray: np.ndarray, box: FaceBox) -> float:
    """Angle (degrees) of the line between the eye centres, from the 68 dlib landmarks."""
    import dlib

    shape = get_landmark_predictor()(
        np.ascontiguousarray(gray), dlib.rectangle(box.x, box.y, box.x + box.w, box.y + box.h)
    )
    points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(36, 48)], dtype=float)
    left_eye, right_eye = points[:6].mean(axis=0), points[6:].mean(axis=0)
    return math.degrees(math.atan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0]))


def crop_face(
    gray: np.ndarray, box: FaceBox, image_size: int, margin: float = 0.0, angle: float = 0.0
) -> np.ndarray:
    """Square gray crop around ``box`` resized to ``image_size``², uint8.

    Args:
        gray: full frame (BGR frames are converted).
        box: the face box.
        image_size: side of the output.
        margin: extra border as a fraction of the box side on each side (0.1 = 10 %).
        angle: rotate by this angle (degrees) about the box centre first, levelling the eyes.

    Returns:
        (image_size, image_size) uint8; parts outside the frame are black.
    """
    import cv2

    if margin < 0:
        raise ValueError(f"margin must be ≥ 0, got {margin}")
    if gray.ndim == 3:
        gray = cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY)
    side = max(box.w, box.h) * (1.0 + 2.0 * margin)
    centre_x, centre_y = box.x + box.w / 2.0, box.y + box.h / 2.0
    if not angle:
        left, top = round(centre_x - side / 2), round(centre_y - side / 2)
        side_px = max(1, round(side))
        crop = _padded_crop(gray, left, top, side_px)
        interpolation = cv2.INTER_AREA if side_px > image_size else cv2.INTER_LINEAR
        return cv2.resize(crop, (image_size, image_size), interpolation=interpolation)
    # One affine warp: rotate about the box centre, scale the square to the output, translate.
    scale = image_size / side
    matrix = cv2.getRotationMatrix2D((centre_x, centre_y), angle, scale)
    matrix[0, 2] += image_size / 2.0 - centre_x
    matrix[1, 2] += image_size / 2.0 - centre_y
    source = gray
    if scale < 0.5:  # pre-shrink so the linear warp does not alias
        source = cv2.resize(gray, None, fx=2 * scale, fy=2 * scale, interpolation=cv2.INTER_AREA)
        shrink = np.array([[1 / (2 * scale), 0, 0], [0, 1 / (2 * scale), 0]])
        matrix = matrix @ np.vstack([shrink, [0, 0, 1]])
    return cv2.warpAffine(
        source, matrix, (image_size, image_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def _padded_crop(gray: np.ndarray, left: int, top: int, side: int) -> np.ndarray:
    height, width = gray.shape[:2]
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + side, width), min(top + side, height)
    crop = gray[y0:y1, x0:x1]
    if crop.shape[:2] == (side, side):
        return crop
    out = np.zeros((side, side), dtype=gray.dtype)
    out[y0 - top : y0 - top + crop.shape[0], x0 - left : x0 - left + crop.shape[1]] = crop
    return out


def to_gray_face(image: np.ndarray, image_size: int) -> np.ndarray:
    """A whole (already-cropped) image as a gray ``image_size``² face, uint8."""
    import cv2

    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    interpolation = cv2.INTER_AREA if min(image.shape[:2]) > image_size else cv2.INTER_LINEAR
    return cv2.resize(image, (image_size, image_size), interpolation=interpolation).astype(np.uint8)


#: The pixel step applied to a finished crop, the one intensity normalisation a model declares and every
#: path that feeds it applies (:func:`equalize_face`): none (the paper), hist (global histogram
#: equalisation, OpenCV's ``equalizeHist``: what the common FER2013 JPEG export did to every face) or clahe
#: (local histogram equalisation, which evens out lighting and brings out mouth and brow detail).
EQUALIZATIONS = ("none", "hist", "clahe")


def equalize_face(face: np.ndarray, method: str = "none") -> np.ndarray:
    """Apply a pixel step from :data:`EQUALIZATIONS` to a gray uint8 crop (the one function every path
    that feeds a model its faces uses: preprocessing, evaluation, prediction)."""
    if method not in EQUALIZATIONS:
        raise ValueError(f"unknown equalization {method!r}; choose one of {EQUALIZATIONS}")
    if method == "none":
        return face
    import cv2

    if method == "hist":
        return cv2.equalizeHist(np.ascontiguousarray(face, dtype=np.uint8))
    tiles = max(2, min(8, face.shape[0] // 16))
    return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(tiles, tiles)).apply(face)


def faces_for_model(faces: np.ndarray, model_step: str, carried: str = "none") -> np.ndarray:
    """Faces ``(n, s, s)`` that already carry the pixel step ``carried`` (a face cache's ``equalize``), as a
    model trained with ``model_step`` must see them: unchanged when the steps agree, else
    :func:`equalize_face` on each.

    Raises:
        ValueError: the faces carry another step than none and the model's (it cannot be undone).
    """
    if model_step == carried:
        return faces
    if carried != "none":
        raise ValueError(
            f"these faces were stored with the pixel step {carried!r} but the model expects {model_step!r}; "
            f"build a face cache with --equalize {model_step} (or none) to score it"
        )
    return np.stack([equalize_face(face, model_step) for face in faces]) if len(faces) else faces


@dataclass
class FaceCrop:
    """A face found in a frame: the crop, its box, and the alignment angle applied."""

    face: np.ndarray
    box: FaceBox
    angle: float = 0.0


def extract_face(
    gray: np.ndarray,
    image_size: int = PAPER_FACE_SIZE,
    detector: str = "hog",
    upsample: int = 0,
    detect_width: int | None = None,
    margin: float = 0.0,
    align: bool = False,
    equalize: str = "none",
) -> FaceCrop | None:
    """Detect the largest face of a frame and crop it (None when no face is found).

    Args:
        gray: the frame (gray or BGR uint8).
        image_size: side of the output crop.
        detector: ``"hog"``, ``"cnn"`` or ``"none"`` (the whole image is the face).
        upsample: dlib upsampling passes.
        detect_width: detect on a copy downscaled to this width; None = full resolution.
        margin: extra border around the box, fraction of its side.
        align: level the eyes with the 68-landmark predictor before cropping.
        equalize: contrast normalisation of the crop (:data:`EQUALIZATIONS`).

    Returns:
        A :class:`FaceCrop` or None.
    """
    faces = extract_faces(
        gray, image_size, detector, upsample, detect_width, margin, align, equalize, max_faces=1
    )
    return faces[0] if faces else None


def extract_faces(
    gray: np.ndarray,
    image_size: int = PAPER_FACE_SIZE,
    detector: str = "hog",
    upsample: int = 0,
    detect_width: int | None = None,
    margin: float = 0.0,
    align: bool = False,
    equalize: str = "none",
    max_faces: int | None = None,
    min_face_size: int = 0,
) -> list[FaceCrop]:
    """Every face of a frame (largest first), cropped as :func:`extract_face` crops the largest.

    Args:
        max_faces: keep at most this many (the largest); None = all.
        min_face_size: ignore faces whose box side is smaller than this many pixels; faces larger than
            the detector's window (:data:`HOG_MIN_FACE`) let it run on a downscaled frame
            (:func:`detect_width_for`).
        The other arguments are those of :func:`extract_face`.
    """
    if detector not in DETECTORS:
        raise ValueError(f"unknown face detector {detector!r}; choose one of {DETECTORS}")
    if max_faces is not None and max_faces < 1:
        raise ValueError(f"max_faces must be ≥ 1, got {max_faces}")
    if detector == "none":
        height, width = gray.shape[:2]
        return [
            FaceCrop(equalize_face(to_gray_face(gray, image_size), equalize), FaceBox(0, 0, width, height))
        ]
    width = detect_width_for(gray.shape[1], min_face_size, detect_width, upsample)
    boxes = detect_faces(gray, detector, upsample, width)
    return crops_of_boxes(gray, boxes, image_size, margin, align, equalize, max_faces, min_face_size)


#: The smallest face (box side, pixels) dlib's HOG detector finds without upsampling: its window.
HOG_MIN_FACE = 80


def detect_width_for(
    frame_width: int, min_face_size: int = 0, detect_width: int | None = None, upsample: int = 0
) -> int | None:
    """The width to detect at: the frame shrunk as far as faces of ``min_face_size`` pixels stay findable
    (to :data:`HOG_MIN_FACE` × 2^upsample), never wider than ``detect_width``. None = full width."""
    widths = [detect_width] if detect_width else []
    smallest = HOG_MIN_FACE / 2**upsample
    if min_face_size > smallest:
        widths.append(max(1, int(frame_width * smallest / min_face_size)))
    width = min(widths) if widths else None
    return width if width is not None and width < frame_width else None


def crops_of_boxes(
    gray: np.ndarray,
    boxes: list[FaceBox],
    image_size: int = PAPER_FACE_SIZE,
    margin: float = 0.0,
    align: bool = False,
    equalize: str = "none",
    max_faces: int | None = None,
    min_face_size: int = 0,
) -> list[FaceCrop]:
    """The crops of detected boxes (largest first), as :func:`extract_faces` makes them."""
    boxes = [box for box in boxes if min(box.w, box.h) >= min_face_size][:max_faces]
    crops = []
    for box in boxes:
        angle = eye_angle(gray, box) if align else 0.0
        crops.append(
            FaceCrop(equalize_face(crop_face(gray, box, image_size, margin, angle), equalize), box, angle)
        )
    return crops
