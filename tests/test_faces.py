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
