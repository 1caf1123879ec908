"""fer_utils: the helper package behind the FER notebook suite.

Modules follow the pipeline stages (see README): datasets → video → faces → preprocess (face cache)
→ splits → model/train → evaluate → plots/reports. Heavy dependencies (TensorFlow, dlib) are imported
inside the functions that need them, so ``import fer_utils`` and ``fer --help`` stay fast.
"""

__version__ = "0.1.0"
