"""Widgets that keep working in the static HTML book, without a kernel.

Every frame is computed in advance (PNG bytes in an ``Image`` widget, or any displayable
object in an ``Output`` widget) and put in a ``Stack``; the control (an ``IntSlider``, a
``Dropdown`` or a ``Tab``) is linked to the stack's ``selected_index`` in the browser with
``jslink``. When a notebook runs under papermill/nbclient the widget state is saved in the
notebook's metadata (``store_widget_state``), and myst-nb writes it into the page, where the
vendored ipywidgets HTML manager renders it. Nothing here needs Python after execution.

What does *not* work in the static book: ``interact``/``interactive`` (callbacks need a
kernel), ``observe`` callbacks, and the ``Play`` widget. The book runner refuses notebooks
that use ``interact`` or ``Play``.

>>> from freqkit.book.widgets import image_slider, frames_from_images
>>> box = image_slider(frames_from_images(images), labels=["r <= 0.1", "r <= 0.2"],
...                    description="cut-off")   # doctest: +SKIP
"""
from __future__ import annotations

import io
import math
from typing import Any, Iterable, Sequence

import numpy as np

from .viz import figure_to_png

__all__ = ["frames_from_images", "image_slider", "image_dropdown", "image_tabs",
           "tabs", "FrameSlider", "FrameDropdown"]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_MIN_SIDE = 192  # default upscaling target (pixels) for small images


try:
    import ipywidgets
except ImportError as exc:  # pragma: no cover - ipywidgets is a requirement
    raise ImportError("freqkit.book.widgets needs ipywidgets>=8 (pip install ipywidgets)") from exc
if int(ipywidgets.__version__.split(".")[0]) < 8:  # pragma: no cover
    raise ImportError(f"freqkit.book.widgets needs ipywidgets>=8 (Stack, Tab titles); found {ipywidgets.__version__}")


def _widgets():
    return ipywidgets


# --------------------------------------------------------------------------- frames

def _to_numpy(x: Any, name: str) -> np.ndarray:
    """numpy array from an array-like or a torch tensor (CHW tensors become HWC)."""
    is_torch = type(x).__module__.startswith("torch")
    if is_torch:
        x = x.detach().cpu().numpy()
        if x.ndim == 3 and x.shape[0] in (1, 3) and x.shape[-1] not in (1, 3):
            x = np.moveaxis(x, 0, -1)  # freqkit's (C, H, W) -> (H, W, C)
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected an array of numbers (H, W) or (H, W, 3), got {type(x).__name__}") from exc
    if arr.ndim == 3 and arr.shape[-1] not in (1, 3) and arr.shape[0] in (1, 3):
        arr = np.moveaxis(arr, 0, -1)  # (C, H, W) array -> (H, W, C)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] != 3):
        raise ValueError(f"{name}: expected shape (H, W), (H, W, 1), (H, W, 3) or (C, H, W) with C in (1, 3); "
                         f"got {tuple(arr.shape)}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: empty image of shape {tuple(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def frames_from_images(images: Iterable[Any] | np.ndarray, scale: int | None = None, *,
                       normalize: str = "clip", cmap: str | None = None,
                       vmin: float | None = None, vmax: float | None = None) -> list[bytes]:
    """PNG bytes for each image, upscaled by pixel repetition (nearest) so that 32x32 is visible.

    Each image becomes an 8-bit PNG (grey for one channel, RGB for three, or RGB through a
    colour map): values in ``[0, 1]`` are mapped to ``round(255 * v)`` and every pixel is
    repeated ``scale`` times along both axes.  The frames are ready for
    :func:`image_slider`, :func:`image_dropdown` and :func:`image_tabs`.

    Args:
        images: a sequence of images, or one array/tensor whose first axis runs over the
            frames (see Shape).  Values are in ``[0, 1]`` unless ``normalize`` or ``cmap``
            says otherwise; NaN and infinity are refused.
        scale: integer upscaling factor ``>= 1``; default (None): the smallest that makes
            the longer side of the largest image at least 192 pixels (6 for CIFAR-10, 7 for
            MNIST).
        normalize: what to do with values outside ``[0, 1]`` (without ``cmap``): ``"clip"``
            (default), ``"minmax"`` (stretch each image to ``[0, 1]``, e.g. for high-pass
            residuals; a constant image becomes black) or ``"error"`` (refuse them).
        cmap: a matplotlib colour map name (e.g. ``"magma"`` for spectra, heat maps) to
            colour 2-D arrays; None (default): grey or RGB as given.
        vmin: with ``cmap``, the value mapped to the colour map's low end; default: the
            minimum over *all* frames, so frames compare.
        vmax: with ``cmap``, the value mapped to the high end; default: the maximum over all
            frames (a range of zero width is widened to ``vmin + 1``).

    Returns:
        A list of PNG ``bytes``, one per image, in order.

    Shape:
        - images: each ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(C, H, W)`` with C in 1, 3
          (torch tensors in freqkit's ``(C, H, W)`` layout are accepted), or one
          ``(F, ...)`` array or tensor of F such images.
        - output: PNGs of ``(scale * H, scale * W)`` pixels.

    Raises:
        TypeError: ``images`` is a string or bytes, or an image is not an array of numbers.
        ValueError: ``images`` is empty; an image has another shape, is empty or holds NaN or
            infinity; ``normalize`` is not ``"clip"``, ``"minmax"`` or ``"error"``; ``scale`` is
            not an integer ``>= 1``; ``cmap`` with an image that is not 2-D; or
            ``normalize="error"`` with a value outside ``[0, 1]``.
        KeyError: ``cmap`` is not a matplotlib colour map.
    """
    from PIL import Image as PILImage

    if isinstance(images, (str, bytes)):
        raise TypeError("images: expected a sequence of arrays, got a string/bytes")
    if isinstance(images, np.ndarray) or type(images).__module__.startswith("torch"):
        images = [images[i] for i in range(len(images))]
    arrays = [_to_numpy(im, f"images[{i}]") for i, im in enumerate(images)]
    if not arrays:
        raise ValueError("images: empty sequence, expected at least one image")
    if normalize not in ("clip", "minmax", "error"):
        raise ValueError(f"normalize: expected 'clip', 'minmax' or 'error', got {normalize!r}")
    if scale is None:
        side = max(max(a.shape[:2]) for a in arrays)
        scale = max(1, math.ceil(_MIN_SIDE / side))
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale: expected an integer >= 1, got {scale!r}")
    scale = int(scale)

    if cmap is not None:
        import matplotlib

        if any(a.ndim != 2 for a in arrays):
            raise ValueError("cmap: colour maps apply to 2-D (H, W) arrays only")
        lo = min(float(a.min()) for a in arrays) if vmin is None else float(vmin)
        hi = max(float(a.max()) for a in arrays) if vmax is None else float(vmax)
        if not hi > lo:
            hi = lo + 1.0
        colormap = matplotlib.colormaps[cmap]
        arrays = [colormap(np.clip((a - lo) / (hi - lo), 0.0, 1.0))[..., :3] for a in arrays]
    else:
        out = []
        for i, a in enumerate(arrays):
            if normalize == "minmax":
                lo, hi = float(a.min()), float(a.max())
                a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
            elif normalize == "error" and (a.min() < 0.0 or a.max() > 1.0):
                raise ValueError(f"images[{i}]: values outside [0, 1] (min {a.min():.3g}, max {a.max():.3g}); "
                                 "use normalize='clip' or 'minmax'")
            out.append(np.clip(a, 0.0, 1.0))
        arrays = out

    frames = []
    for a in arrays:
        u8 = np.round(a * 255.0).astype(np.uint8)
        if scale > 1:
            u8 = np.repeat(np.repeat(u8, scale, axis=0), scale, axis=1)
        buf = io.BytesIO()
        PILImage.fromarray(u8, mode="L" if u8.ndim == 2 else "RGB").save(buf, format="PNG", optimize=True)
        frames.append(buf.getvalue())
    return frames


def _image_format(data: bytes) -> str:
    if data.startswith(_PNG_MAGIC):
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data.lstrip()[:5] in (b"<?xml", b"<svg ") or data.lstrip()[:4] == b"<svg":
        return "svg+xml"
    raise ValueError("frame: bytes are not a PNG, JPEG, GIF or SVG image")


#: Frames keep at least this width (pixels, or their own width if smaller): on a phone a wide
#: figure scrolls sideways inside its widget instead of shrinking its text to a few pixels.
FRAME_MIN_WIDTH = 560


def _png_width(data: bytes) -> int | None:
    """The pixel width in a PNG's header (None for other formats)."""
    return int.from_bytes(data[16:20], "big") if data.startswith(_PNG_MAGIC) and len(data) >= 24 else None


def _image(w, data: bytes, fmt: str):
    width = _png_width(data)
    layout = {} if width is None else {"min_width": f"{min(width, FRAME_MIN_WIDTH)}px"}
    return w.Image(value=data, format=fmt, layout=w.Layout(**layout))


def _frame_widget(frame: Any, index: int):
    """One frame -> a widget: bytes -> Image, array/tensor -> Image, figure -> Image,
    widget -> itself, anything else -> Output holding its rich display."""
    w = _widgets()
    if isinstance(frame, w.Widget):
        return frame
    if isinstance(frame, (bytes, bytearray, memoryview)):
        data = bytes(frame)
        try:
            fmt = _image_format(data)
        except ValueError as exc:
            raise ValueError(f"frames[{index}]: {exc}") from None
        return _image(w, data, fmt)
    if type(frame).__name__ == "Figure" and hasattr(frame, "savefig"):
        return _image(w, figure_to_png(frame), "png")
    if isinstance(frame, np.ndarray) or type(frame).__module__.startswith("torch"):
        return w.Image(value=frames_from_images([frame])[0], format="png")
    if frame is None:
        raise ValueError(f"frames[{index}]: None is not a frame")
    out = w.Output()
    out.append_display_data(frame)
    return out


def _prepare(frames: Any, labels: Sequence[str] | None, what: str, index: int = 0):
    """Frames as widgets, labels as strings, and ``index`` checked: shared by every control."""
    if isinstance(frames, np.ndarray) or type(frames).__module__.startswith("torch"):
        frames = [frames[i] for i in range(len(frames))]
    elif isinstance(frames, (str, bytes, bytearray)) or not isinstance(frames, Iterable):
        raise TypeError(f"{what}: frames must be a list of frames (PNG bytes, arrays, figures, widgets), "
                        f"got {type(frames).__name__}")
    frames = list(frames)
    if not frames:
        raise ValueError(f"{what}: frames is empty, expected at least one frame")
    if labels is not None:
        labels = [str(lab) for lab in labels]
        if len(labels) != len(frames):
            raise ValueError(f"{what}: got {len(frames)} frames but {len(labels)} labels")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(frames):
        raise ValueError(f"{what}: index must be an int in [0, {len(frames) - 1}], got {index!r}")
    children = [_frame_widget(f, i) for i, f in enumerate(frames)]
    return children, labels


# --------------------------------------------------------------------------- controls

class FrameSlider(ipywidgets.VBox):
    """A VBox [slider, caption, frames]; the slider drives the frames in the browser.

    Made by :func:`image_slider` (build it with that function, not directly).  Its first
    child is an HBox of the slider and the captions, its second the Stack of frames.

    Attributes:
        slider: the ``IntSlider`` (its ``value`` is the frame shown).
        stack: the ``Stack`` of frame widgets.
        captions: a ``Stack`` of HTML labels, one per frame, or None without labels.
        links: the ``jslink`` objects that tie the slider to ``stack`` (and ``captions``).

    The attributes are for tests and tweaks; the browser sees a plain VBox.
    """

class FrameDropdown(ipywidgets.VBox):
    """A VBox [dropdown, frames]; the dropdown's index drives the frames in the browser.

    Made by :func:`image_dropdown` (build it with that function, not directly).

    Attributes:
        dropdown: the ``Dropdown`` (its ``index`` is the frame shown).
        stack: the ``Stack`` of frame widgets.
        links: the ``jslink`` tying ``dropdown.index`` to ``stack.selected_index``.
    """


def image_slider(frames: Any, labels: Sequence[str] | None = None, description: str = "frame",
                 *, index: int = 0, slider_width: str = "420px"):
    """A slider over precomputed frames that works in the static HTML.

    Every frame becomes a widget in a ``Stack`` (bytes: an ``Image``; arrays and tensors:
    a PNG through :func:`frames_from_images`; matplotlib figures: a PNG through
    :func:`freqkit.book.viz.figure_to_png`, which closes them; widgets: themselves;
    anything else: an ``Output`` holding its rich display), and the ``IntSlider`` is
    ``jslink``-ed to the stack's ``selected_index``, so it works without a kernel.

    Args:
        frames: a list of frames: PNG/JPEG/GIF/SVG bytes (see :func:`frames_from_images`),
            arrays ``(H, W[, 3])`` in ``[0, 1]``, matplotlib figures, widgets, or other
            displayable objects; or one array/tensor whose first axis runs over the frames.
        labels: one caption per frame, shown next to the slider (e.g. ``"cut-off r = 0.25"``);
            default None: the slider shows the frame number instead.
        description: the slider's label (default ``"frame"``).
        index: the frame shown first, in ``[0, len(frames) - 1]`` (default 0).
        slider_width: CSS width of the slider (default ``"420px"``).

    Returns:
        A :class:`FrameSlider` (an ipywidgets VBox): display it, or make it a cell's last line.

    Shape:
        - frames: arrays ``(H, W)`` or ``(H, W, 3)``, tensors ``(C, H, W)`` with C in 1, 3, or one
          ``(F, ...)`` array or tensor of F frames.

    Raises:
        TypeError: ``frames`` is a string, bytes or not iterable.
        ValueError: ``frames`` is empty; ``labels`` does not have one entry per frame;
            ``index`` is not an int in range; a frame is None, or bytes that are not a PNG,
            JPEG, GIF or SVG image (array frames: as :func:`frames_from_images`).
    """
    w = _widgets()
    children, labels = _prepare(frames, labels, "image_slider", index)
    slider = w.IntSlider(value=index, min=0, max=len(children) - 1, step=1, description=str(description),
                         continuous_update=True, readout=labels is None,
                         style={"description_width": "initial"}, layout=w.Layout(width=slider_width))
    stack = w.Stack(children=children, selected_index=index, layout=w.Layout(overflow="auto hidden", max_width="100%"))
    links = [w.jslink((slider, "value"), (stack, "selected_index"))]
    captions = None
    top: list = [slider]
    if labels is not None:
        captions = w.Stack(children=[w.HTML(value=f"<b>{_escape(lab)}</b>") for lab in labels],
                           selected_index=index)
        links.append(w.jslink((slider, "value"), (captions, "selected_index")))
        top.append(captions)
    box = FrameSlider(children=[w.HBox(top, layout=w.Layout(align_items="center")), stack])
    box.add_class("freqkit-slider")
    box.slider, box.stack, box.captions, box.links = slider, stack, captions, links
    return box


def image_dropdown(frames: Any, labels: Sequence[str] | None = None, description: str = "show",
                   *, index: int = 0):
    """A dropdown over precomputed frames that works in the static HTML.

    The frames are turned into widgets as in :func:`image_slider`; the ``Dropdown``'s
    ``index`` is ``jslink``-ed to the ``Stack``'s ``selected_index``.

    Args:
        frames: a list of frames, as in :func:`image_slider`.
        labels: one option label per frame; default None: ``"frame 0"``, ``"frame 1"``, ...
        description: the dropdown's label (default ``"show"``).
        index: the frame shown first, in ``[0, len(frames) - 1]`` (default 0).

    Returns:
        A :class:`FrameDropdown` (an ipywidgets VBox).

    Shape:
        - frames: as in :func:`image_slider`.

    Raises:
        TypeError: ``frames`` is a string, bytes or not iterable.
        ValueError: ``frames`` is empty; ``labels`` does not have one entry per frame;
            ``index`` is not an int in range; a frame is None or unreadable bytes.
    """
    w = _widgets()
    children, labels = _prepare(frames, labels, "image_dropdown", index)
    if labels is None:
        labels = [f"frame {i}" for i in range(len(children))]
    dropdown = w.Dropdown(options=[(lab, i) for i, lab in enumerate(labels)], index=index,
                          description=str(description), style={"description_width": "initial"})
    stack = w.Stack(children=children, selected_index=index, layout=w.Layout(overflow="auto hidden", max_width="100%"))
    links = [w.jslink((dropdown, "index"), (stack, "selected_index"))]
    box = FrameDropdown(children=[dropdown, stack])
    box.add_class("freqkit-dropdown")
    box.dropdown, box.stack, box.links = dropdown, stack, links
    return box


def image_tabs(frames: Any, labels: Sequence[str] | None = None, *, index: int = 0):
    """Tabs over precomputed frames (a ``Tab`` needs no link: it works statically).

    The frames are turned into widgets as in :func:`image_slider`.  Also available as
    ``tabs`` (the same function).

    Args:
        frames: a list of frames, as in :func:`image_slider`.
        labels: one tab title per frame; default None: ``"0"``, ``"1"``, ...
        index: the tab selected first, in ``[0, len(frames) - 1]`` (default 0).

    Returns:
        An ipywidgets ``Tab`` (with the CSS class ``freqkit-tabs``).

    Shape:
        - frames: as in :func:`image_slider`.

    Raises:
        TypeError: ``frames`` is a string, bytes or not iterable.
        ValueError: ``frames`` is empty; ``labels`` does not have one entry per frame;
            ``index`` is not an int in range; a frame is None or unreadable bytes.
    """
    w = _widgets()
    children, labels = _prepare(frames, labels, "image_tabs", index)
    if labels is None:
        labels = [f"{i}" for i in range(len(children))]
    tab = w.Tab(children=children, titles=tuple(labels), selected_index=index)
    tab.add_class("freqkit-tabs")
    return tab


tabs = image_tabs


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)
