"""The synthetic demo set (``fer demo-data``): RAVDESS-layout clips rendered from one photo
(:mod:`.render`). Above ``faces``: it uses the face detector to place the photo's landmarks."""

from fer_utils.demo.render import demo_plan, ensure_demo_dataset, make_demo_dataset

__all__ = ["demo_plan", "ensure_demo_dataset", "make_demo_dataset"]
