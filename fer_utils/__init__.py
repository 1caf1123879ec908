"""fer_utils: the helper package behind the FER notebook suite.

The subpackages follow the pipeline (see ARCHITECTURE.md): data → faces (face cache) → training (run
directory) → experiments → viz / deploy / bench. Heavy dependencies (TensorFlow, dlib) are imported inside
the functions that need them, so ``import fer_utils`` and ``fer --help`` stay fast.

``fer_utils.predict(path_or_array)`` gives every face's emotion with the bundled model (see
:func:`fer_utils.api.predict`).
"""

__version__ = "0.1.0"


def predict(source, model=None, **options):
    """Every face's emotion in a video, image, folder or NumPy image: one row per face per frame.

    See :func:`fer_utils.api.predict` (imported on first use, so ``import fer_utils`` stays light).
    """
    from fer_utils.api import predict as _predict

    return _predict(source, model, **options)
