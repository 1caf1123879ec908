"""What changes the faces of a cache: :class:`PreprocessConfig` (every field a flag of ``fer preprocess``
and ``fer run`` and a parameter of notebook 01) and :func:`cache_config`, the dict stored beside a cache
and hashed into its folder name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from fer_utils.data.synthetic import SYNTHETIC_MARKER
from fer_utils.faces.detection import DETECTORS, EQUALIZATIONS, PAPER_FACE_SIZE
from fer_utils.faces.frames import SAMPLING_METHODS
from fer_utils.settings import setting

#: Bumped when a code change alters the faces, so old caches are not reused.
PIPELINE_VERSION = 1


@dataclass(frozen=True)
class PreprocessConfig:
    """Everything that changes the faces in a cache (its hash names the cache folder).

    Each field is also a flag of ``fer preprocess`` and ``fer run`` (via :mod:`fer_utils.settings`)
    and a parameter of notebook 01; the defaults are the paper's pipeline.
    """

    face_size: int = setting(
        PAPER_FACE_SIZE,
        help=f"side of the square gray face crops in pixels (paper: {PAPER_FACE_SIZE})",
        renamed_from=("image_size",),
    )
    frames_per_video: int = setting(
        6, help="faces kept per video (paper: 6 evenly spaced frames)", aliases=("--frames",)
    )
    detector: str = setting(
        "hog",
        help="face detector: hog (dlib frontal HOG, the paper's), centerface (a small CNN, fer predict's: finds "
        "faces HOG misses), cnn (dlib MMOD, slow on CPU), none (the whole image is the face: already-cropped images)",
        choices=DETECTORS,
    )
    upsample: int = setting(0, help="dlib upsampling passes (1 finds faces half as small, ~4× slower)")
    detect_width: int | None = setting(
        640, help="detect on a copy downscaled to this width, boxes mapped back (none: full resolution)"
    )
    margin: float = setting(0.0, help="border added around the detector's box, as a fraction of its side")
    align: bool = setting(False, help="level the eyes with dlib's 68-landmark predictor before cropping")
    candidates_per_frame: int = setting(
        3,
        help="candidate frames decoded per kept frame; each kept frame is the candidate with a face nearest "
        "its evenly spaced position (1: exactly the evenly spaced frames)",
        aliases=("--candidates",),
    )
    min_faces: int = setting(1, help="a video with fewer faces is skipped")
    sampling: str = setting(
        "grab", help="frame decoding: grab (frame-accurate, sequential) or seek", choices=SAMPLING_METHODS
    )
    equalize: str = setting(
        "none",
        help="pixel step of each crop, recorded with every model trained on the cache and applied "
        "wherever the model is fed: none (the paper), hist (global histogram equalisation) or clahe",
        choices=EQUALIZATIONS,
    )

    def __post_init__(self):
        if self.detector not in DETECTORS:
            raise ValueError(f"unknown detector {self.detector!r}; choose one of {DETECTORS}")
        if self.equalize not in EQUALIZATIONS:
            raise ValueError(f"unknown equalize {self.equalize!r}; choose one of {EQUALIZATIONS}")
        if self.sampling not in SAMPLING_METHODS:
            raise ValueError(f"unknown sampling {self.sampling!r}; choose one of {SAMPLING_METHODS}")
        for name in ("face_size", "frames_per_video", "candidates_per_frame", "min_faces"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.min_faces > self.frames_per_video:
            raise ValueError(
                f"min_faces ({self.min_faces}) cannot exceed frames_per_video ({self.frames_per_video})"
            )
        if self.upsample < 0 or self.margin < 0:
            raise ValueError("upsample and margin must be ≥ 0")
        if self.detect_width is not None and self.detect_width < 32:
            raise ValueError(f"detect_width must be ≥ 32 pixels or None, got {self.detect_width}")

    def to_dict(self) -> dict:
        """The fields as a face cache's config.json stores them (hashed with ``face_size`` under its former
        name ``image_size``, :func:`~fer_utils.faces.cache.config_key`, so existing caches keep their keys)."""
        return asdict(self)


def cache_config(
    config: PreprocessConfig,
    dataset: str,
    dataset_options: dict | None = None,
    synthetic: bool = False,
    carried_step: str = "none",
) -> dict:
    """The dict stored beside a cache and hashed into its folder name (``synthetic``: the media are the
    synthetic demo set, recorded as :data:`fer_utils.data.synthetic.SYNTHETIC_MARKER`; ``carried_step``:
    the pixel step the source faces already carry, recorded as the cache's ``equalize`` with
    ``equalized_at_source``)."""
    stored = {"dataset": dataset, "pipeline_version": PIPELINE_VERSION, **config.to_dict()}
    if carried_step != "none":
        stored |= {"equalize": carried_step, "equalized_at_source": True}
    if synthetic:
        stored[SYNTHETIC_MARKER] = True
    if dataset_options:
        stored["dataset_options"] = {
            k: _plain(v) for k, v in sorted(dataset_options.items()) if v is not None
        }
    return stored


def _plain(value):
    if isinstance(value, list | tuple | set):
        return sorted(str(v) for v in value)
    return value
