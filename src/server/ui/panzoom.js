// @ts-check
// Pan and zoom over an SVG through its viewBox: the wheel zooms around the
// pointer, a drag pans (and is not taken for a click on a node), and the
// caller's buttons fit or zoom. Zoomed far out, node labels are hidden
// (class "far"): at that size they are unreadable and only slow the drawing.

const MAX_SCALE = 3;
/** Below this many screen pixels per SVG unit, labels are hidden. */
const LABEL_SCALE = 0.45;

/** @typedef {{ x: number, y: number, w: number, h: number }} View */

/**
 * @param {number} v
 * @param {number} lo
 * @param {number} hi
 */
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

/**
 * Calls `move(dx, dy)` as the pointer drags over `el`; a click that ends a drag is swallowed.
 * @param {SVGSVGElement} el
 * @param {(dx: number, dy: number) => void} move
 */
function onDrag(el, move) {
  /** @type {{ x: number, y: number, id: number } | null} */
  let start = null;
  let dragged = false;
  el.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    start = { x: e.clientX, y: e.clientY, id: e.pointerId };
    dragged = false;
  });
  el.addEventListener("pointermove", (e) => {
    if (!start || e.pointerId !== start.id) return;
    const dx = e.clientX - start.x;
    const dy = e.clientY - start.y;
    if (!dragged && Math.hypot(dx, dy) < 4) return;
    if (!dragged) {
      dragged = true;
      el.setPointerCapture(e.pointerId);
      el.classList.add("dragging");
    }
    start = { ...start, x: e.clientX, y: e.clientY };
    move(dx, dy);
  });
  const end = () => {
    start = null;
    el.classList.remove("dragging");
  };
  el.addEventListener("pointerup", end);
  el.addEventListener("pointercancel", end);
  el.addEventListener("dragstart", (e) => e.preventDefault());
  el.addEventListener("click", (e) => {
    if (!dragged) return;
    dragged = false;
    e.preventDefault();
    e.stopPropagation();
  }, true);
}

/**
 * Makes `svg` pannable and zoomable over content of the given size.
 * @param {SVGSVGElement} svg
 * @param {{ width: number, height: number }} content
 */
export function panZoom(svg, content) {
  /** @type {View} */
  let view = { x: 0, y: 0, w: content.width || 1, h: content.height || 1 };
  const screen = () => ({ w: svg.clientWidth || 1, h: svg.clientHeight || 1 });
  const scale = () => screen().w / view.w;
  /** The scale last drawn, kept when the element is resized. */
  let drawn = 1;
  const fitScale = () => Math.min(screen().w / (content.width || 1), screen().h / (content.height || 1));
  const apply = () => {
    svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
    svg.classList.toggle("far", scale() < LABEL_SCALE);
    drawn = scale();
    svg.dataset.scale = drawn.toFixed(4);
  };
  /** Centres on `at`, `k` screen pixels per unit. @param {{ x: number, y: number }} at @param {number} k */
  const centre = (at, k) => {
    const s = screen();
    view = { x: at.x - s.w / k / 2, y: at.y - s.h / k / 2, w: s.w / k, h: s.h / k };
    apply();
  };
  /** Shows `box` whole, at most `cap` pixels per unit. @param {View} box @param {number} cap */
  const show = (box, cap) => centre({ x: box.x + box.w / 2, y: box.y + box.h / 2 }, Math.min(screen().w / box.w, screen().h / box.h, cap));
  const fit = () => show({ x: 0, y: 0, w: content.width || 1, h: content.height || 1 }, 1);
  /** Zooms by `factor` keeping the point under (sx, sy) (screen pixels) in place. @param {number} factor @param {number} [sx] @param {number} [sy] */
  const zoom = (factor, sx = screen().w / 2, sy = screen().h / 2) => {
    const s = screen();
    const k = clamp(scale() * factor, Math.min(fitScale() / 2, MAX_SCALE), MAX_SCALE);
    const px = view.x + (sx / s.w) * view.w;
    const py = view.y + (sy / s.h) * view.h;
    view = { x: px - (sx / s.w) * (s.w / k), y: py - (sy / s.h) * (s.h / k), w: s.w / k, h: s.h / k };
    apply();
  };
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = svg.getBoundingClientRect();
    zoom(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  onDrag(svg, (dx, dy) => {
    const k = scale();
    view = { ...view, x: view.x - dx / k, y: view.y - dy / k };
    apply();
  });
  const resized = new ResizeObserver(() => centre({ x: view.x + view.w / 2, y: view.y + view.h / 2 }, drawn));
  resized.observe(svg);
  return { fit, zoom, show, centre, scale, fitScale, stop: () => resized.disconnect() };
}
