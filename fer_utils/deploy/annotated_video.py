"""``fer predict --annotate``: the clip again, every frame, with each face's box, track and label drawn.

The faces are those of the sampled frames (:class:`~fer_utils.deploy.media_prediction.MediaPrediction`'s
table); a frame between two samples shows the boxes of the last sample before it, so the video plays at the
clip's own rate and length. Written as MPEG-4 Part 2 (``mp4v``: the encoder OpenCV's wheels carry).
"""

from __future__ import annotations

from pathlib import Path

from fer_utils.deploy.media_prediction import MediaPrediction
from fer_utils.deploy.prediction_figures import draw_face
from fer_utils.faces.frames import open_video
from fer_utils.files import atomic_write_with, writing

#: Frame rate written when the container does not say its own.
FALLBACK_FPS = 25.0


def face_label(row) -> str:
    """What a face's box is labelled with in the video: its track, label and confidence."""
    return f"face {row.track_id}: {row.predicted_label} {row.confidence:.2f}"


def write_annotated_video(prediction: MediaPrediction, path: Path) -> None:
    """The clip with its faces drawn (see the module doc), written atomically to ``path`` (``.mp4``)."""
    import cv2

    sampled = {int(index) for index in prediction.faces["frame_index"]}
    rows_by_frame: dict[int, list] = {}
    for row in prediction.face_rows.itertuples():
        rows_by_frame.setdefault(int(row.frame_index), []).append(row)
    capture = open_video(prediction.media_path)
    if capture is None:
        raise ValueError(f"{Path(prediction.media_path).name}: the clip does not open again to annotate it")
    fps = capture.get(cv2.CAP_PROP_FPS) or FALLBACK_FPS

    def write(temporary: Path) -> None:
        writer, shown, index = None, [], 0
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                if writer is None:
                    size = (frame.shape[1], frame.shape[0])
                    writer = cv2.VideoWriter(str(temporary), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
                if index in sampled:
                    shown = rows_by_frame.get(index, [])  # a sampled frame: its faces, or none
                for row in shown:
                    draw_face(frame, row, face_label(row))
                writer.write(frame)
                index += 1
        finally:
            capture.release()
            if writer is not None:
                writer.release()
        if writer is None:
            raise ValueError(f"{Path(prediction.media_path).name}: no frame decodes to annotate")

    with writing("the annotated video", path):
        atomic_write_with(path, write, suffix=".tmp.mp4")
