// The battery page: level gauge, power now, charts for a day/week/month/year, the days.
// The live state arrives over Server-Sent Events (/v1/batteries/{id}/live): the gauge, the
// power and today's chart move without a reload; provisional and stale values are marked.
"use strict";
(() => {
  const id = document.body.dataset.battery;
  const tz = document.body.dataset.timezone;
  const api = "/v1/batteries/" + encodeURIComponent(id);
  const $ = (sel) => document.querySelector(sel);
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  let battery = null, period = "day", day = null, lastSeries = null;
  let live = null, ledgerAt;  // the latest live state; the ledger's end it was computed on

  // local dates are plain "YYYY-MM-DD" strings; arithmetic on them in UTC never meets DST
  const toDate = (s) => new Date(s + "T00:00:00Z");
  const toText = (d) => d.toISOString().slice(0, 10);
  const localDate = (iso) =>
    new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" })
      .format(new Date(iso));
  const parts = (ms) => Object.fromEntries(
    new Intl.DateTimeFormat("en-GB", { timeZone: tz, hourCycle: "h23", year: "numeric", month: "short",
      day: "numeric", weekday: "short", hour: "2-digit", minute: "2-digit" })
      .formatToParts(new Date(ms)).map((p) => [p.type, p.value]));

  function shift(dateText, by) {
    const d = toDate(dateText);
    if (period === "day") d.setUTCDate(d.getUTCDate() + by);
    else if (period === "week") d.setUTCDate(d.getUTCDate() + 7 * by);
    else if (period === "month") { d.setUTCDate(1); d.setUTCMonth(d.getUTCMonth() + by); }
    else d.setUTCFullYear(d.getUTCFullYear() + by);
    return toText(d);
  }

  function gauge(level, capacity, scale) {
    const svg = $("#gauge");
    svg.innerHTML = "";
    const NS = "http://www.w3.org/2000/svg";
    const add = (name, attrs) => {
      const n = document.createElementNS(NS, name);
      Object.entries(attrs).forEach(([k, v]) => n.setAttribute(k, v));
      svg.appendChild(n);
      return n;
    };
    const frac = capacity > 0 ? level / capacity : scale > 0 ? level / scale : 0;
    const f = Math.max(0, Math.min(1, frac));
    const color = f < 0.15 ? css("--import") : f < 0.4 ? css("--discharge") : css("--charge");
    add("rect", { x: 6, y: 14, width: 184, height: 82, rx: 12, fill: "#fff", stroke: "#16324f", "stroke-width": 4 });
    add("rect", { x: 192, y: 40, width: 14, height: 30, rx: 3, fill: "#16324f" });
    add("rect", { id: "gauge-fill", x: 12, y: 20, width: (172 * f).toFixed(1), height: 70, rx: 7, fill: color });
    const label = add("text", { x: 98, y: 62, "text-anchor": "middle", "font-size": 20, "font-weight": 650, fill: "#1d2630" });
    label.textContent = capacity > 0 ? Math.round(100 * f) + " %" : "no limit";
    svg.dataset.fraction = f.toFixed(4);
  }

  const clock = (iso) =>
    new Intl.DateTimeFormat("en-GB", { timeZone: tz, hour: "2-digit", minute: "2-digit", second: "2-digit" })
      .format(new Date(iso));

  function badge(kind, text, title) {
    const span = document.createElement("span");
    span.className = "badge " + kind;
    span.textContent = text;
    span.title = title;
    $("#live-state").appendChild(span);
  }

  function scaleOf(level) {  // unlimited batteries: relative to the period's highest level
    const peak = lastSeries ? Math.max(0, ...lastSeries.points.map((p) => p.level_kwh)) : 0;
    return Math.max(peak, level);
  }

  function showLive(l) {
    live = l;
    $("#level").textContent = fmt.kwh(l.level_kwh);
    $("#power").textContent = fmt.signed(l.power_kw);
    $("#power-state").textContent = l.power_kw > 0 ? "charging" : l.power_kw < 0 ? "discharging" : "idle";
    $("#reading-at").textContent = l.provisional ? fmt.time(l.at, tz).slice(0, -5) + clock(l.at) : fmt.time(l.at, tz);
    $("#live-state").replaceChildren();
    if (l.provisional)
      badge("provisional", "provisional", "measured since the ledger's last quarter hour" +
        (l.ledger_at ? " (" + fmt.time(l.ledger_at, tz) + ")" : "") + "; the ledger replaces it");
    if (l.stale) badge("stale", "stale", "no new value since " + fmt.time(l.at, tz));
    document.body.dataset.live = l.stale ? "stale" : l.provisional ? "provisional" : "ledger";
    gauge(l.level_kwh, l.capacity_kwh, scaleOf(l.level_kwh));
    if (lastSeries) drawCharts(lastSeries);
  }

  // today's chart: the live quarter hours past the ledger, drawn as provisional
  function withLive(s) {
    if (!live || !live.steps.length || s.resolution_minutes !== 15) return s;
    const start = Date.parse(s.start), end = Date.parse(s.end);
    const have = new Set(s.points.map((p) => Date.parse(p.t)));
    const extra = live.steps
      .filter((st) => { const t = Date.parse(st.interval_start); return t >= start && t < end && !have.has(t); })
      .map((st) => ({ t: st.interval_start, import_kwh: st.import_kwh, export_kwh: st.export_kwh,
        charge_kwh: st.charge_kwh, discharge_kwh: st.discharge_kwh, power_kw: st.power_kw,
        level_kwh: st.level_kwh, intervals: 1, estimated_intervals: 0, provisional: true }));
    return extra.length ? { ...s, points: s.points.concat(extra) } : s;
  }

  function listen() {
    const source = new EventSource(api + "/live");
    source.addEventListener("live", (event) => {
      const l = JSON.parse(event.data);
      const caughtUp = l.ledger_at !== ledgerAt;
      ledgerAt = l.ledger_at;
      showLive(l);
      if (caughtUp) refresh();  // the ledger ran: totals, charts and days from it
      document.body.dataset.events = String(Number(document.body.dataset.events || 0) + 1);
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) return;
      $("#live-state").replaceChildren();
      badge("stale", "reconnecting", "the live connection was lost; the browser retries");
      document.body.dataset.live = "offline";
    });
  }

  async function refresh() {
    battery = await getJSON(api);
    showNow(battery);
    showLive(live || battery.live);
    await showPeriod();
  }

  function showNow(b) {
    $("#level").textContent = fmt.kwh(b.level_kwh);
    $("#capacity").textContent = b.capacity_kwh > 0 ? "of " + fmt.kwh(b.capacity_kwh, 1) + " kWh" : "unlimited capacity";
    $("#power").textContent = fmt.signed(b.active_power_kw);
    $("#power-state").textContent = b.active_power_kw > 0 ? "charging" : b.active_power_kw < 0 ? "discharging" : "idle";
    $("#reading-at").textContent = fmt.time(b.reading_at, tz);
    $("#charged-total").textContent = fmt.kwh(b.charged_total_kwh);
    $("#discharged-total").textContent = fmt.kwh(b.discharged_total_kwh);
    $("#estimated-share").textContent = fmt.percent(b.estimated_intervals, b.intervals);
    gauge(b.level_kwh || 0, b.capacity_kwh, 0);
  }

  function label(s) {
    const a = toDate(s.first_date), b = toDate(s.last_date);
    const opts = (o) => new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", ...o });
    if (period === "day") return opts({ weekday: "short", day: "numeric", month: "short", year: "numeric" }).format(a);
    if (period === "week") return opts({ day: "numeric", month: "short" }).format(a) + " – " + opts({ day: "numeric", month: "short", year: "numeric" }).format(b);
    if (period === "month") return opts({ month: "long", year: "numeric" }).format(a);
    return String(a.getUTCFullYear());
  }

  function xTicks(s) {
    const ticks = [], start = Date.parse(s.start), end = Date.parse(s.end);
    const step = period === "day" ? 3600e3 : 3600e3; // walk hours, keep the local ones we label
    for (let t = start; t < end; t += step) {
      const p = parts(t);
      const hour = Number(p.hour), dom = Number(p.day);
      if (period === "day" && p.minute === "00" && hour % 3 === 0) ticks.push({ t, label: p.hour });
      else if (period === "week" && hour === 0) ticks.push({ t, label: p.weekday + " " + p.day });
      else if (period === "month" && hour === 0 && (dom - 1) % 5 === 0 && dom < 30) ticks.push({ t, label: p.day });
      else if (period === "year" && hour === 0 && dom === 1) ticks.push({ t, label: p.month });
    }
    return ticks;
  }

  function drawCharts(s) {
    const points = withLive(s).points.map((p) => ({ ...p, t: Date.parse(p.t) }));
    const base = { start: Date.parse(s.start), end: Date.parse(s.end), resolutionMs: s.resolution_minutes * 60e3, xTicks: xTicks(s) };
    Charts.draw($("#chart-level"), points, { ...base, series: [{ key: "level_kwh", label: "level", color: css("--level"), kind: "area" }] });
    Charts.draw($("#chart-power"), points, { ...base, series: [{ key: "power_kw", label: "power",
      color: (v) => (v >= 0 ? css("--charge") : css("--discharge")), kind: "bar" }] });
    Charts.draw($("#chart-profile"), points, { ...base, series: [
      { key: "import_kwh", label: "import", color: css("--import"), kind: "line" },
      { key: "export_kwh", label: "export", color: css("--export"), kind: "line" },
      { key: "charge_kwh", label: "battery in", color: css("--charge"), kind: "bar" },
      { key: "discharge_kwh", label: "battery out", color: css("--discharge"), kind: "bar" },
    ] });
  }

  function showDays(days) {
    const body = $("#daily tbody");
    body.replaceChildren();
    days.slice().reverse().forEach((d) => {
      const tr = document.createElement("tr");
      tr.dataset.date = d.local_date;
      [d.local_date, fmt.kwh(d.import_kwh), fmt.kwh(d.export_kwh), fmt.kwh(d.charge_kwh),
       fmt.kwh(d.discharge_kwh), fmt.kwh(d.overflow_kwh), fmt.kwh(d.shortfall_kwh),
       fmt.kwh(d.level_end_kwh), d.estimated_intervals + " / " + d.intervals]
        .forEach((text, i) => {
          const td = document.createElement("td");
          td.textContent = text;
          if (i) td.className = "num";
          tr.appendChild(td);
        });
      body.appendChild(tr);
    });
  }

  async function showPeriod() {
    document.body.dataset.loaded = "false";
    document.querySelectorAll(".periods [data-period]").forEach((b) => b.classList.toggle("active", b.dataset.period === period));
    const s = await getJSON(`${api}/series?period=${period}&date=${day}`);
    lastSeries = s;
    $("#period-label").textContent = label(s);
    drawCharts(s);
    const after = toText(new Date(toDate(s.last_date).getTime() + 86400e3));
    const range = `start=${s.first_date}&end=${after}`;
    const days = await getJSON(`${api}/daily?${range}&limit=400`);
    showDays(days.items);
    $("#csv-intervals").href = `${api}/intervals?format=csv&${range}`;
    $("#csv-daily").href = `${api}/daily?format=csv&${range}`;
    $("#csv-settlements").href = `${api}/settlements?format=csv`;
    const level = live ? live.level_kwh : battery.level_kwh || 0;
    gauge(level, live ? live.capacity_kwh : battery.capacity_kwh, scaleOf(level));
    document.body.dataset.period = period;
    document.body.dataset.loaded = "true";
  }

  document.querySelectorAll(".periods [data-period]").forEach((button) =>
    button.addEventListener("click", () => { period = button.dataset.period; showPeriod(); }));
  $("#prev").addEventListener("click", () => { day = shift(day, -1); showPeriod(); });
  $("#next").addEventListener("click", () => { day = shift(day, 1); showPeriod(); });
  window.addEventListener("resize", () => lastSeries && drawCharts(lastSeries));

  (async () => {
    battery = await getJSON(api);
    showNow(battery);
    ledgerAt = battery.live.ledger_at;
    showLive(battery.live);
    const at = battery.live.at || battery.reading_at;
    const latest = at ? Date.parse(at) - (battery.live.provisional ? 0 : 15 * 60e3) : Date.now();
    day = localDate(new Date(latest).toISOString());
    await showPeriod();
    listen();
  })();
})();
