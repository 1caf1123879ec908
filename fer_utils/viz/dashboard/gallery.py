"""The gallery: the test faces behind one confusion-matrix cell, read from the run's face cache a page
at a time, captioned with the video, frame, time and confidence."""

from __future__ import annotations

import html

import pandas as pd

from fer_utils.faces.cache import FaceCache
from fer_utils.training.results import RunConfig
from fer_utils.viz.dashboard.cells import cell_faces, face_caption_html, face_png
from fer_utils.viz.dashboard.fragments import message_html

#: Faces shown per gallery page ("show more" adds another page).
GALLERY_PAGE = 48
FACE_DISPLAY_PX = 96


def open_run_cache(setup: RunConfig):
    """The run's face cache, or a sentence saying why it cannot be used."""

    cache_dir = str(setup.cache_dir)
    try:
        cache = FaceCache(cache_dir)
    except (ValueError, OSError) as error:
        return f"the run's face cache cannot be opened ({error})"
    if setup.cache_key and cache.key != setup.cache_key:
        return (
            f"the face cache at {cache_dir} was rebuilt with another config "
            f"(key {cache.key}, the run used {setup.cache_key})"
        )
    return cache


class FaceGallery:
    """The true / predicted menus, the gallery title, the faces and the "show more" button.

    Args:
        widgets: the ``ipywidgets`` module.
        status: the page's status widget (warnings about missing pixels go there).
        page_size: faces per page.
    """

    def __init__(self, widgets, status, page_size: int = GALLERY_PAGE):
        self.widgets = widgets
        self.status = status
        self.page_size = page_size
        self._caches: dict[str, object] = {}
        self.faces = pd.DataFrame()
        self.shown = 0
        self.true_menu = widgets.Dropdown(description="True", layout=widgets.Layout(width="230px"))
        self.pred_menu = widgets.Dropdown(description="Predicted", layout=widgets.Layout(width="230px"))
        self.title = widgets.HTML()
        self.title.add_class("fer-gallery-title")
        self.box = widgets.Box(
            layout=widgets.Layout(
                display="flex", flex_flow="row wrap", align_content="flex-start", width="100%"
            )
        )
        self.box.add_class("fer-gallery")
        self.more_button = widgets.Button(description="show more", layout=widgets.Layout(display="none"))
        self.more_button.on_click(lambda _: self.show_more())

    def panel(self):
        """The gallery's column of the page."""
        widgets = self.widgets
        return widgets.VBox(
            [
                widgets.HTML(
                    "<b>Faces behind a cell</b> — click a cell of the matrix or pick the pair here; "
                    "most confident first."
                ),
                widgets.HBox([self.true_menu, self.pred_menu]),
                self.title,
                self.box,
                self.more_button,
            ],
            layout=widgets.Layout(flex="1 1 380px", min_width="380px", padding="0 0 0 16px"),
        )

    def show(self, run, true_label: str, predicted_label: str, level: str) -> pd.DataFrame:
        """Fill the gallery with the first page of one cell's faces; returns the cell's table."""
        self.run = run
        self.faces = cell_faces(run.predictions, run.labels, true_label, predicted_label, level)
        count = len(self.faces)
        unit = ("video" if level == "video" else "face") + ("" if count == 1 else "s")
        verdict = "correct" if true_label == predicted_label else "mistaken"
        self.title.value = (
            f'<span class="fer-cell-count" data-count="{count}"><b>{count}</b> {unit}</span> '
            f"{verdict}: true <b>{html.escape(true_label)}</b> → predicted <b>{html.escape(predicted_label)}</b>"
        )
        self.box.children = ()
        self.shown = 0
        self.show_more()
        return self.faces

    def show_more(self) -> None:
        """Add the next page of faces to the gallery."""
        page = self.faces.iloc[self.shown : self.shown + self.page_size]
        if len(page):
            self.box.children = (*self.box.children, *self._items(page))
            self.shown += len(page)
        remaining = len(self.faces) - self.shown
        self.more_button.description = f"show {min(remaining, self.page_size)} more of {remaining}"
        self.more_button.layout.display = "" if remaining > 0 else "none"

    def _cache(self):
        key = str(self.run.setup.cache_dir)
        if key not in self._caches:
            self._caches[key] = open_run_cache(self.run.setup)
        return self._caches[key]

    def _pixels(self, page: pd.DataFrame):
        """The page's faces as arrays, or (None, why not)."""
        cache = self._cache()
        if isinstance(cache, str):
            return None, cache
        try:
            return cache.faces(page["face_id"].to_numpy()), None
        except (IndexError, ValueError, OSError) as error:
            return None, f"faces could not be read from the cache ({error})"

    def _items(self, page: pd.DataFrame) -> list:
        widgets = self.widgets
        pixels, problem = self._pixels(page)
        items = []
        for position, row in enumerate(page.itertuples()):
            if pixels is not None:
                image = widgets.Image(
                    value=face_png(pixels[position]),
                    format="png",
                    width=FACE_DISPLAY_PX,
                    height=FACE_DISPLAY_PX,
                )
            else:
                image = widgets.HTML(
                    f'<div style="width:{FACE_DISPLAY_PX}px;height:{FACE_DISPLAY_PX}px;background:#eee;'
                    f'font-size:10px;overflow:hidden" title="{html.escape(problem)}">no pixels</div>'
                )
            caption = widgets.HTML(face_caption_html(row))
            item = widgets.VBox([image, caption], layout=widgets.Layout(margin="3px", align_items="center"))
            item.add_class("fer-face")
            items.append(item)
        if problem:
            self.status.value = message_html(
                html.escape(problem) + " — faces are listed without pixels.", "warning"
            )
        return items
