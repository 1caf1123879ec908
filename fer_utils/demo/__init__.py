"""Synthetic demo dataset: short RAVDESS-layout clips made from one real face photo (``fer demo-data``).

Above ``faces`` (it finds the photo's landmarks with the face detector); what marks a cache or run as
built from it lives below, in :mod:`fer_utils.data.synthetic`.

The photo is ``skimage.data.astronaut()`` (public domain, shipped with scikit-image). Its dlib 68 landmarks
are moved by one fixed recipe per emotion (mouth corners up/down, lips apart, brows raised/lowered/drawn
together, eyes widened/narrowed...) and the face is warped with a smooth thin-plate-spline displacement
field built from those landmark moves. Synthetic "actors" differ in identity only: face shape (a second
landmark warp), skin tone, size, position in the frame and background. Each clip rises from
neutral to the emotion's apex, with small head motion and sensor noise, and is written as
``OUT/Actor_XX/02-01-EE-II-SS-RR-XX.mp4`` (RAVDESS naming: video-only, speech channel) so the RAVDESS
dataset spec reads it like the real corpus.

The set is SYNTHETIC: every actor is the same photographed person with drawn-on expressions. It shows the
pipeline working end to end, offline, in minutes; it says nothing about accuracy on real faces.

Modules, in the order a clip is made:

- :mod:`.expressions`: landmark groups and one recipe of landmark moves per emotion (tables);
- :mod:`.face`: the photo's canvas, person mask and landmarks, and the landmark warp;
- :mod:`.actors`: each actor's identity and background;
- :mod:`.clips`: one clip's frames (``render_clip``);
- :mod:`.dataset`: RAVDESS names and layout, the mp4 writer, the manifest, ``fer demo-data``.
"""

from fer_utils.demo.dataset import demo_plan, ensure_demo_dataset, make_demo_dataset

__all__ = ["demo_plan", "ensure_demo_dataset", "make_demo_dataset"]
