// Small SVG charts written for the dashboard: a time axis over a whole period, lines and
// bars, y ticks on round numbers. No library, nothing loaded from elsewhere.
"use strict";
const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const el = (name, attrs, parent) => {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  };

  function niceTicks(lo, hi, count = 4) {
    if (hi - lo < 1e-9) { hi = lo + 1; }
    const raw = (hi - lo) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    const ticks = [];
    for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-6; v += step) ticks.push(+v.toFixed(10));
    if (ticks[ticks.length - 1] < hi) ticks.push(ticks[ticks.length - 1] + step);
    return ticks;
  }

  // opts: {start, end (ms), resolutionMs, series:[{key,label,color,kind}], xTicks:[{t,label}]}
  function draw(container, points, opts) {
    container.replaceChildren();
    const legend = document.createElement("div");
    legend.className = "legend";
    opts.series.forEach((s) => {
      const span = document.createElement("span");
      const dot = document.createElement("i");
      dot.style.background = s.color;
      span.append(dot, s.label);
      legend.appendChild(span);
    });
    if (opts.series.length > 1) container.appendChild(legend);
    const W = Math.max(container.clientWidth, 300), H = 220;
    const m = { l: 46, r: 10, t: 10, b: 24 };
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" }, container);
    const values = points.flatMap((p) => opts.series.map((s) => p[s.key]));
    const lo = Math.min(0, ...values), hi = Math.max(0, ...values);
    const ticks = niceTicks(lo, hi);
    const y0 = ticks[0], y1 = ticks[ticks.length - 1];
    const X = (t) => m.l + ((t - opts.start) / (opts.end - opts.start)) * (W - m.l - m.r);
    const Y = (v) => H - m.b - ((v - y0) / (y1 - y0)) * (H - m.t - m.b);
    ticks.forEach((v) => {
      el("line", { x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v), class: "axis",
                   "stroke-dasharray": v === 0 ? "" : "2 3" }, svg);
      el("text", { x: m.l - 6, y: Y(v) + 4, "text-anchor": "end" }, svg).textContent =
        Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(v % 1 ? 2 : 0);
    });
    (opts.xTicks || []).forEach((tick) => {
      el("line", { x1: X(tick.t), x2: X(tick.t), y1: H - m.b, y2: H - m.b + 4, class: "axis" }, svg);
      el("text", { x: X(tick.t), y: H - 6, "text-anchor": "middle" }, svg).textContent = tick.label;
    });
    if (!points.length) {
      el("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, svg).textContent = "no data in this period";
      return;
    }
    const bars = opts.series.filter((s) => s.kind === "bar");
    const slot = (X(opts.start + opts.resolutionMs) - X(opts.start)) * 0.9;
    bars.forEach((s, i) => {
      const w = Math.max(slot / bars.length, 0.6);
      points.forEach((p) => {
        const v = p[s.key];
        const top = Y(Math.max(v, 0)), bottom = Y(Math.min(v, 0));
        const bar = el("rect", { x: X(p.t) + i * w, y: top, width: w, height: Math.max(bottom - top, 0.5),
                     fill: typeof s.color === "function" ? s.color(v) : s.color }, svg);
        if (p.provisional) { bar.setAttribute("class", "provisional"); bar.setAttribute("fill-opacity", 0.45); }
      });
    });
    opts.series.filter((s) => s.kind !== "bar").forEach((s) => {
      const half = opts.resolutionMs / 2;
      const d = points.map((p, i) => `${i ? "L" : "M"}${X(p.t + half).toFixed(1)},${Y(p[s.key]).toFixed(1)}`).join("");
      if (s.kind === "area") {
        const first = X(points[0].t + half), last = X(points[points.length - 1].t + half);
        el("path", { d: `${d}L${last},${Y(0)}L${first},${Y(0)}Z`, fill: s.color, "fill-opacity": 0.15 }, svg);
      }
      el("path", { d, fill: "none", stroke: s.color, "stroke-width": 1.8 }, svg);
    });
  }

  return { draw, niceTicks };
})();
