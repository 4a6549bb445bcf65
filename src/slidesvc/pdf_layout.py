"""Reading and adjusting the box tree WeasyPrint lays a slide out into.

Render_pdf lays slides out as plain blocks (WeasyPrint's flexbox costs
several layouts per slide), on pages taller than a slide. From the tree this
module finds which slide a page shows, how far a slide's content overflows
its box, and then moves the content where the theme's flex
``justify-content`` would have put it. It works on the boxes duck-typed and
imports nothing from WeasyPrint.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def walk(box: Any) -> Iterator[Any]:
    yield box
    for child in getattr(box, "children", ()):
        yield from walk(child)


def page_marker(page_box: Any) -> str | None:
    for box in walk(page_box):
        element = getattr(box, "element", None)
        if element is not None and element.get("data-page"):
            return str(element.get("data-page"))
    return None


def _has_class(box: Any, name: str) -> bool:
    element = getattr(box, "element", None)
    if element is None or getattr(box, "element_tag", None) is None:
        return False
    return name in (element.get("class") or "").split()


def overflow(page_box: Any) -> tuple[float, float]:
    """(vertical, horizontal) px by which the slide's content leaves its content box."""
    section = next((b for b in walk(page_box) if _has_class(b, "slide")), None)
    if section is None:
        return (0.0, 0.0)
    content = next((b for b in walk(section) if _has_class(b, "content")), section)
    top, left = section.content_box_y(), section.content_box_x()
    bottom, right = top + section.height, left + section.width
    dy = dx = 0.0
    for box in walk(content):
        if box is content or not hasattr(box, "border_box_y"):
            continue
        y, x = box.border_box_y(), box.border_box_x()
        dy = max(dy, y + box.border_height() - bottom, top - y)
        dx = max(dx, x + box.border_width() - right, left - x)
    return (round(dy, 1), round(dx, 1))


def justify_content(page_box: Any) -> None:
    """Place the content as the theme's flex ``justify-content`` would have.

    The print stylesheet lays slides out as blocks (WeasyPrint's flexbox costs
    several layouts per slide); the content then sits at the top of its box,
    and here moves down by the free space (all of it for ``end``, half for
    ``center``), like a flex column whose items are its children.
    """
    section = next((b for b in walk(page_box) if _has_class(b, "slide")), None)
    if section is None:
        return
    content = next((b for b in section.children if _has_class(b, "content")), None)
    if content is None:
        return
    flow = [c for c in content.children if c.is_in_normal_flow()]
    justify = content.style["justify_content"]
    mode = justify[-1] if justify else "normal"
    if not flow or mode not in ("center", "end", "flex-end"):
        return
    # Flex items' margins add up where block margins collapse: re-space them.
    offsets, extra = [], 0.0
    for previous, child in zip([None, *flow], flow, strict=False):
        if previous is not None and previous.margin_bottom > 0 and child.margin_top > 0:
            extra += min(previous.margin_bottom, child.margin_top)
        offsets.append(extra)
    available = section.content_box_y() + section.height - content.position_y
    used = flow[-1].position_y + flow[-1].margin_height() - flow[0].position_y + extra
    free = available - used
    shift = free / 2 if mode == "center" else free
    for child, offset in zip(flow, offsets, strict=True):
        child.translate(0, shift + offset)
        _shift_backgrounds(child, shift + offset)
    content.height = max(content.height, available)


def _shift_backgrounds(box: Any, dy: float) -> None:
    """Backgrounds are laid out with the boxes; `translate` leaves them behind."""
    for b in walk(box):
        background = getattr(b, "background", None)
        if background is None:
            continue
        layers = [
            layer._replace(
                painting_area=_shift_rect(layer.painting_area, dy),
                positioning_area=_shift_rect(layer.positioning_area, dy),
                clipped_boxes=[_shift_rect(r, dy) for r in layer.clipped_boxes],
            )
            for layer in background.layers
        ]
        b.background = background._replace(layers=layers)


def _shift_rect(rect: Any, dy: float) -> Any:
    if isinstance(rect, str):  # 'unused'
        return rect
    x, y, *rest = rect
    return (x, y + dy, *rest)
