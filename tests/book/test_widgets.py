"""freqkit.book.widgets: precomputed frames and browser-side links (no kernel needed in the book)."""
from __future__ import annotations

import io

import ipywidgets as w
import numpy as np
import pytest
from PIL import Image

from freqkit.book import widgets as fw


def _png_size(data: bytes):
    return Image.open(io.BytesIO(data)).size


def test_frames_from_images_upscales_nearest_and_keeps_pixels():
    img = np.zeros((32, 32, 3))
    img[0, 0] = [1.0, 0.5, 0.0]
    frames = fw.frames_from_images([img, img[..., 0]], scale=4)
    assert [_png_size(f) for f in frames] == [(128, 128), (128, 128)]
    rgb = np.asarray(Image.open(io.BytesIO(frames[0])))
    assert rgb.shape == (128, 128, 3)
    assert (rgb[:4, :4] == [255, 128, 0]).all() and (rgb[4:, 4:] == 0).all()  # nearest: exact blocks
    gray = np.asarray(Image.open(io.BytesIO(frames[1])))
    assert gray.ndim == 2 and gray[0, 0] == 255


def test_frames_default_scale_makes_small_images_visible():
    assert _png_size(fw.frames_from_images([np.zeros((32, 32))])[0]) == (192, 192)
    assert _png_size(fw.frames_from_images([np.zeros((28, 28))])[0]) == (196, 196)
    assert _png_size(fw.frames_from_images([np.zeros((256, 300))])[0]) == (300, 256)


def test_frames_accept_torch_chw_and_batches():
    torch = pytest.importorskip("torch")
    frames = fw.frames_from_images(torch.rand(3, 3, 32, 32), scale=1)  # (N, C, H, W)
    assert len(frames) == 3 and _png_size(frames[0]) == (32, 32)
    assert np.asarray(Image.open(io.BytesIO(frames[0]))).shape == (32, 32, 3)
    assert len(fw.frames_from_images(np.random.rand(2, 28, 28), scale=1)) == 2


def test_frames_value_handling():
    x = np.array([[-0.5, 0.5], [1.5, 0.25]])
    clipped = np.asarray(Image.open(io.BytesIO(fw.frames_from_images([x], scale=1)[0])))
    assert clipped.tolist() == [[0, 128], [255, 64]]
    stretched = np.asarray(Image.open(io.BytesIO(fw.frames_from_images([x], scale=1, normalize="minmax")[0])))
    assert stretched.min() == 0 and stretched.max() == 255
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        fw.frames_from_images([x], normalize="error")
    cm = np.asarray(Image.open(io.BytesIO(fw.frames_from_images([x], scale=1, cmap="viridis")[0])))
    assert cm.shape == (2, 2, 3)


@pytest.mark.parametrize("bad, match", [
    ([np.zeros((4,))], "expected shape"),
    ([np.zeros((4, 4, 5))], "expected shape"),
    ([np.full((4, 4), np.nan)], "NaN"),
    ([], "empty"),
    ("image.png", "sequence of arrays"),
])
def test_frames_bad_input_is_a_clear_error(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fw.frames_from_images(bad)


def test_frames_bad_scale():
    for scale in (0, 1.5, True):
        with pytest.raises(ValueError, match="scale"):
            fw.frames_from_images([np.zeros((4, 4))], scale=scale)


def _link_pairs(links):
    return [((l.source[0], l.source[1]), (l.target[0], l.target[1])) for l in links]


def test_image_slider_links_slider_to_stack_in_the_browser():
    frames = fw.frames_from_images([np.zeros((8, 8)), np.ones((8, 8)), np.full((8, 8), 0.5)])
    box = fw.image_slider(frames, labels=["a", "b", "c"], description="cut-off", index=1)
    assert isinstance(box, w.VBox) and "freqkit-slider" in box._dom_classes
    assert isinstance(box.slider, w.IntSlider) and (box.slider.min, box.slider.max, box.slider.value) == (0, 2, 1)
    assert box.slider.description == "cut-off"
    assert isinstance(box.stack, w.Stack) and box.stack.selected_index == 1
    assert all(isinstance(c, w.Image) and c.format == "png" for c in box.stack.children)
    assert [c.value for c in box.captions.children] == ["<b>a</b>", "<b>b</b>", "<b>c</b>"]
    assert all(type(l).__name__ == "Link" and l._model_name == "LinkModel" for l in box.links)  # jslink, not a kernel link
    pairs = _link_pairs(box.links)
    assert ((box.slider, "value"), (box.stack, "selected_index")) in pairs
    assert ((box.slider, "value"), (box.captions, "selected_index")) in pairs


def test_image_slider_without_labels_shows_the_readout():
    box = fw.image_slider([np.zeros((4, 4)), np.ones((4, 4))])
    assert box.captions is None and box.slider.readout is True and len(box.links) == 1


def test_image_slider_frame_kinds():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    html = w.HTML("<i>widget</i>")
    box = fw.image_slider([fig, np.zeros((4, 4)), html, {"a": 1}])
    kinds = [type(c).__name__ for c in box.stack.children]
    assert kinds == ["Image", "Image", "HTML", "Output"]
    assert not plt.fignum_exists(fig.number), "figures are closed after conversion (not displayed twice)"
    assert box.stack.children[3].outputs, "an Output frame carries its display data in its state"


@pytest.mark.parametrize("kwargs, match", [
    (dict(frames=[]), "empty"),
    (dict(frames=[b"not an image"]), "not a PNG"),
    (dict(frames=[np.zeros((4, 4))], labels=["a", "b"]), "1 frames but 2 labels"),
    (dict(frames=[np.zeros((4, 4))], index=3), "index"),
    (dict(frames="abc"), "list of frames"),
    (dict(frames=[None]), "None"),
])
def test_image_slider_bad_input(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fw.image_slider(**kwargs)


def test_image_dropdown_and_tabs():
    frames = fw.frames_from_images([np.zeros((4, 4)), np.ones((4, 4))])
    dd = fw.image_dropdown(frames, labels=["dct", "dft"], description="basis")
    assert isinstance(dd.dropdown, w.Dropdown) and dd.dropdown.index == 0
    assert dd.dropdown.options == (("dct", 0), ("dft", 1))
    assert _link_pairs(dd.links) == [((dd.dropdown, "index"), (dd.stack, "selected_index"))]
    tabs = fw.image_tabs(frames, labels=["dct", "dft"])
    assert isinstance(tabs, w.Tab) and tabs.titles == ("dct", "dft") and len(tabs.children) == 2
    assert fw.tabs is fw.image_tabs
    for control in (fw.image_slider, fw.image_dropdown, fw.image_tabs):
        for bad in (2, -1, 1.0, True):
            with pytest.raises(ValueError, match=f"{control.__name__}: index must be an int"):
                control(frames, index=bad)
