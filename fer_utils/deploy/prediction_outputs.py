"""The files ``fer predict`` writes: output names that never collide, each media file's
``_summary.json`` / ``_faces.csv`` / ``_tracks.csv`` / figure / annotated photo, plotly.js beside them (one
copy on disk for every folder), and the rows of ``summary.csv``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from fer_utils.deploy.annotated_video import write_annotated_video
from fer_utils.deploy.media_prediction import MediaPrediction
from fer_utils.deploy.prediction_figures import annotated_image, faces_bar_figure, timeline_figure
from fer_utils.files import atomic_write_csv, atomic_write_json, atomic_write_with, writing
from fer_utils.paths import user_cache_dir

#: Longest output file name in bytes (most file systems allow 255; room is left for temporary names).
MAX_OUTPUT_NAME_BYTES = 200
OUTPUT_SUFFIXES = (
    "_summary.json",
    "_faces.csv",
    "_tracks.csv",
    "_timeline.html",
    "_annotated.png",
    "_annotated.mp4",
    "_faces.html",
)


def output_stem(media_path: str | os.PathLike) -> str:
    """What a media file's outputs are named after: its whole file name, extension included (``clip.mp4``
    and ``clip.jpg`` never collide). A name too long for ``<stem>_timeline.html`` to fit in
    :data:`MAX_OUTPUT_NAME_BYTES` is cut (at a character boundary) and given ``~<hash of the full name>``
    before its extension, so shortened names stay distinct."""
    name = Path(media_path).name
    budget = MAX_OUTPUT_NAME_BYTES - max(len(suffix) for suffix in OUTPUT_SUFFIXES)
    if len(name.encode()) <= budget:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    extension = Path(name).suffix if len(Path(name).suffix.encode()) <= 16 else ""
    room = budget - len(f"~{digest}{extension}".encode())
    prefix = name.encode()[:room].decode(errors="ignore")
    return f"{prefix}~{digest}{extension}"


#: Joins the folders of a media file's path below the inputs' common root in its output name.
FOLDER_SEPARATOR = "__"


def output_names(media: list[Path]) -> list[str]:
    """Output names of ``media`` (one per file, same order) that never collide: the file's path relative
    to the inputs' common folder, folders joined by ``__`` (``dirA/photo.jpg`` → ``dirA__photo.jpg``;
    files of one folder keep their bare names), cut to fit as :func:`output_stem` does. Names that would
    still meet (``a__b/x`` and ``a/b__x``, or ``X.JPG`` and ``x.jpg`` on a case-insensitive disk) get
    ``~<hash of the path>``."""
    absolute = [os.path.abspath(path) for path in media]
    root = os.path.commonpath([os.path.dirname(path) for path in absolute]) if absolute else ""
    names = [output_stem(FOLDER_SEPARATOR.join(Path(os.path.relpath(path, root)).parts)) for path in absolute]
    taken = [name.lower() for name in names]
    for position, (name, path) in enumerate(zip(names, absolute, strict=True)):
        if taken.count(name.lower()) > 1:
            digest = hashlib.sha256(path.encode()).hexdigest()[:10]
            names[position] = output_stem(f"{Path(name).stem}~{digest}{Path(name).suffix}")
    return names


def write_prediction(
    prediction: MediaPrediction,
    out_dir: str | os.PathLike,
    model_path: str = "",
    name: str | None = None,
    annotate: bool = False,
) -> dict:
    """Write a media file's outputs, named ``name`` (:func:`output_names`; default: its whole file name,
    :func:`output_stem`):
    ``_summary.json`` always; with faces ``_faces.csv`` (one row per face per frame, and one per frame
    without a face), ``_tracks.csv`` (a label per track) and, for a video, ``_timeline.html`` (one panel
    per track) or, for an image, ``_annotated.png`` (boxes and labels) and ``_faces.html`` (a bar chart
    per face). ``annotate``: a video with faces also gets ``_annotated.mp4`` (every frame, boxes, track ids
    and labels: :mod:`~fer_utils.deploy.annotated_video`). Figures load plotly.js from one ``plotly.min.js``
    beside them.

    Returns:
        The written paths by kind.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = name or output_stem(prediction.media_path)
    paths = {"summary": out_dir / f"{stem}_summary.json"}
    if prediction.status != "unreadable":
        paths["faces"] = out_dir / f"{stem}_faces.csv"
        with writing("the faces table", paths["faces"]):
            atomic_write_csv(paths["faces"], prediction.faces)
    if prediction.status == "ok":
        paths["tracks"] = out_dir / f"{stem}_tracks.csv"
        with writing("the tracks table", paths["tracks"]):
            atomic_write_csv(paths["tracks"], prediction.tracks)
        if prediction.is_image:
            paths["annotated"] = out_dir / f"{stem}_annotated.png"
            write_png(annotated_image(prediction), paths["annotated"])
            paths["figure"] = out_dir / f"{stem}_faces.html"
            write_figure(faces_bar_figure(prediction), paths["figure"])
        else:
            paths["figure"] = out_dir / f"{stem}_timeline.html"
            write_figure(timeline_figure(prediction), paths["figure"])
            if annotate:
                paths["annotated"] = out_dir / f"{stem}_annotated.mp4"
                write_annotated_video(prediction, paths["annotated"])
    with writing("the summary", paths["summary"]):
        atomic_write_json(paths["summary"], prediction_summary(prediction, model_path))
    prediction.outputs = {kind: str(path) for kind, path in paths.items()}
    return prediction.outputs


#: The plotly.js that every figure of an output folder loads, beside it (offline, and the folder can move).
PLOTLY_FILE = "plotly.min.js"
#: Output folders whose plotly.js this process has checked (it is read back once, not per figure).
_CHECKED_PLOTLY: set[Path] = set()


def ensure_plotly_js(out_dir: Path) -> str:
    """Make ``out_dir/plotly.min.js`` the bundled plotly.js, rewritten when the file there is not it (cut
    short by a full disk, or another version). Every folder's file is a hard link to one copy in the user's
    cache (:func:`shared_plotly_js`), so 4.8 MB are stored once however many output folders there are; a
    plain copy, written atomically, where no link can be made (another file system). Returns the name
    figures load."""
    from plotly.offline import get_plotlyjs

    path = Path(os.path.abspath(out_dir / PLOTLY_FILE))
    if path in _CHECKED_PLOTLY and path.exists():
        return PLOTLY_FILE
    script = get_plotlyjs().encode()
    if not _holds(path, script):
        shared = shared_plotly_js(script)
        if shared is None or not _hard_link(shared, path):
            with writing("plotly.js", path, len(script)):
                atomic_write_with(path, lambda tmp: tmp.write_bytes(script), "plotly.js", needed=len(script))
    _CHECKED_PLOTLY.add(path)
    return PLOTLY_FILE


def shared_plotly_js(script: bytes) -> Path | None:
    """The one copy of ``script`` in the user's cache (written when missing or damaged); None when the
    cache cannot be written."""
    digest = hashlib.sha256(script).hexdigest()[:12]
    path = user_cache_dir() / f"plotly-{digest}.min.js"
    if _holds(path, script):
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_with(path, lambda tmp: tmp.write_bytes(script), "plotly.js", needed=len(script))
    except OSError:
        return None
    return path


def _holds(path: Path, script: bytes) -> bool:
    return path.is_file() and path.stat().st_size == len(script) and path.read_bytes() == script


def _hard_link(shared: Path, path: Path) -> bool:
    """``path`` made a hard link to ``shared`` (a temporary link renamed onto it); False when not possible."""
    temporary = path.with_name(f".{path.name}.link-{os.getpid()}")
    try:
        temporary.unlink(missing_ok=True)
        os.link(shared, temporary)
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        return False
    return True


def write_figure(figure, path: Path) -> None:
    """A plotly figure as HTML loading the folder's :func:`ensure_plotly_js`, written atomically."""
    script = ensure_plotly_js(path.parent)
    with writing("the figure", path):
        atomic_write_with(
            path, lambda tmp: figure.write_html(tmp, include_plotlyjs=script), suffix=".tmp.html"
        )


def write_png(image: np.ndarray, path: Path) -> None:
    """An image as PNG, written atomically (``cv2.imwrite`` reports a full disk only as False)."""
    import cv2

    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"could not encode the annotated image {path.name} as PNG")
    with writing("the annotated image", path, encoded.nbytes):
        atomic_write_with(path, lambda tmp: tmp.write_bytes(encoded.tobytes()), needed=encoded.nbytes)


def prediction_summary(prediction: MediaPrediction, model_path: str = "") -> dict:
    """What ``_summary.json`` holds: status, message, counts and one entry per track."""
    tracks = [] if prediction.tracks is None else prediction.tracks.to_dict(orient="records")
    return {
        "media_path": prediction.media_path,
        "model": model_path,
        "status": prediction.status,
        "message": prediction.message(),
        "label": prediction.label,
        "confidence": prediction.confidence,
        "frames_sampled": prediction.frames_sampled,
        "frames_without_face": prediction.frames_without_face,
        "faces": int(len(prediction.face_rows)),
        **prediction.method,
        "tracks": tracks,
        "labels": prediction.labels,
    }


#: Columns of ``summary.csv``, in this order whatever the inputs: counts, then the files written.
SUMMARY_COLUMNS = (
    "media_path",
    "output_name",
    "status",
    "label",
    "confidence",
    "faces",
    "tracks",
    "frames_sampled",
    "frames_without_face",
    "message",
)
OUTPUT_KINDS = ("summary", "faces", "tracks", "figure", "annotated")


def summary_row(
    media_path, prediction: MediaPrediction | None, outputs: dict, message: str = "", output_name: str = ""
) -> dict:
    """One row of ``summary.csv``: :data:`SUMMARY_COLUMNS` (``faces`` and ``tracks`` are counts, as in
    ``_summary.json``), then ``<kind>_file`` for each of :data:`OUTPUT_KINDS` (empty when not written).
    ``output_name`` is what its files are named after (:func:`output_names`). ``prediction`` None: a path
    that could not be predicted at all (``status`` missing)."""
    if prediction is None:
        row = dict.fromkeys(SUMMARY_COLUMNS)
        row.update(media_path=str(media_path), status="missing", message=message)
    else:
        row = {
            "media_path": str(media_path),
            "output_name": output_name,
            "status": prediction.status,
            "label": prediction.label,
            "confidence": prediction.confidence,
            "faces": int(len(prediction.face_rows)),
            "tracks": 0 if prediction.tracks is None else int(len(prediction.tracks)),
            "frames_sampled": prediction.frames_sampled,
            "frames_without_face": prediction.frames_without_face,
            "message": prediction.message(),
        }
    return {**row, **{f"{kind}_file": outputs.get(kind, "") for kind in OUTPUT_KINDS}}


def summary_table(rows: list[dict]):
    """``summary.csv`` from :func:`summary_row` rows: counts as integers (empty for a skipped path)."""
    import pandas as pd

    table = pd.DataFrame(rows)
    for column in ("faces", "tracks", "frames_sampled", "frames_without_face"):
        table[column] = table[column].astype("Int64")
    return table
