// Number and time formatting shared by the pages; times in the battery's own timezone.
"use strict";
const fmt = {
  kwh: (v, digits = 2) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits)),
  signed: (v, digits = 2) =>
    v === null || v === undefined ? "–" : (v > 0 ? "+" : "") + Number(v).toFixed(digits),
  percent: (part, whole) => (whole ? ((100 * part) / whole).toFixed(1) + " %" : "–"),
  time: (iso, tz) =>
    iso
      ? new Intl.DateTimeFormat("en-GB", {
          timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit",
          hour: "2-digit", minute: "2-digit",
        }).format(new Date(iso))
      : "–",
};

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (response.status === 401) { window.location = "/dashboard/login"; throw new Error("401"); }
  if (!response.ok) throw new Error(url + ": HTTP " + response.status);
  return response.json();
}
