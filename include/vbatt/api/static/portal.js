// The partner portal: the fleet summary, a battery's version history, and for a key that
// may write the forms "Add battery", "Change from date …" and "End battery". The forms
// post JSON to the write API with the page's CSRF token; the server's messages are shown
// next to the fields they name. Needs format.js (fmt, getJSON).
"use strict";
(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const holder = document.querySelector("[data-csrf]");
  const csrf = holder ? holder.dataset.csrf : "";

  function newKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function send(form, method, url, body) {
    // the same body sent again (a double click, a retry after a lost answer) keeps its
    // Idempotency-Key, so the server writes it once
    const text = JSON.stringify(body);
    if (form.dataset.body !== text) { form.dataset.body = text; form.dataset.idem = newKey(); }
    const response = await fetch(url, {
      method, credentials: "same-origin", body: text,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "Idempotency-Key": form.dataset.idem },
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { status: response.status, ok: response.ok, data };
  }

  function clearErrors(form) {
    form.querySelectorAll(".error").forEach((span) => { span.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    $(".form-error", form).textContent = "";
  }

  function showErrors(form, res) {
    const data = res.data || {};
    const rest = [];
    Object.entries(data.errors || {}).forEach(([field, message]) => {
      const span = form.querySelector(`.error[data-for="${field}"]`);
      const input = form.querySelector(`[name="${field}"]`);
      if (span) span.textContent = message; else rest.push(field + ": " + message);
      if (input) input.setAttribute("aria-invalid", "true");
    });
    form.querySelectorAll(".confirm").forEach((label) => {
      if (label.dataset.code === data.code) label.hidden = false;
    });
    const general = data.errors ? rest.join("; ") : (data.detail || "HTTP " + res.status);
    $(".form-error", form).textContent = general;
    form.dataset.state = "refused";
  }

  // a field's value as the API takes it: numbers as numbers (text it cannot read is sent
  // as typed, so the server names it), empty = null
  function value(form, name) {
    const input = form.querySelector(`[name="${name}"]`);
    if (!input) return undefined;
    if (input.type === "checkbox") return input.checked;
    const v = input.value.trim();
    if (v === "") return null;
    if (input.type === "number") return Number.isFinite(Number(v)) ? Number(v) : v;
    return v;
  }

  // A 409 shows the form's confirmation for its code ("replace" for version_exists,
  // "backdate" for backdated); a ticked one is sent as true with the next try, and a saved
  // form hides and clears them again.
  function confirmed(form, body) {
    form.querySelectorAll(".confirm input[type=checkbox]").forEach((box) => {
      if (box.checked) body[box.name] = true;
    });
  }

  function resetConfirms(form) {
    form.querySelectorAll(".confirm").forEach((label) => {
      label.hidden = true;
      label.querySelector("input").checked = false;
    });
  }

  function submitting(form, handler) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      form.dataset.state = "sending";
      const button = $("button[type=submit]", form);
      button.disabled = true;
      try { await handler(); } finally { button.disabled = false; }
    });
  }

  // -- the partner page: the fleet ---------------------------------------------------------
  const fleet = $("#fleet");
  if (fleet) {
    getJSON("/v1/fleet").then((f) => {
      $("#fleet-batteries").textContent = f.batteries + (f.active_batteries !== f.batteries ? ` (${f.active_batteries} running)` : "");
      $("#fleet-level").textContent = fmt.kwh(f.level_kwh);
      const c = f.current_periods;
      $("#fleet-charge").textContent = fmt.kwh(c.charge_kwh);
      $("#fleet-discharge").textContent = fmt.kwh(c.discharge_kwh);
      $("#fleet-overflow").textContent = fmt.kwh(c.overflow_kwh);
      $("#fleet-shortfall").textContent = fmt.kwh(c.shortfall_kwh);
      $("#fleet-forfeited").textContent = fmt.kwh(c.forfeited_kwh);
      $("#fleet-periods").textContent = c.periods;
      fleet.dataset.loaded = "true";
    });
  }

  // -- "Add battery" -------------------------------------------------------------------------
  const newForm = $("#new-form");
  if (newForm) {
    submitting(newForm, async () => {
      const body = {};
      ["battery_id", "name", "customer_id", "meter_id", "capacity_kwh", "start_date",
       "reset_date", "reset_repeat", "timezone", "initial_level_kwh"].forEach((name) => {
        const v = value(newForm, name);
        if (v !== null) body[name] = v;
      });
      confirmed(newForm, body);
      const res = await send(newForm, "POST", "/v1/batteries", body);
      if (res.status === 201) {
        newForm.dataset.state = "saved";
        window.location = "/dashboard/batteries/" + encodeURIComponent(res.data.battery_id);
      } else showErrors(newForm, res);
    });
  }

  // -- a battery page: versions, "Change from date …", "End battery" -----------------------
  const section = $("#portal");
  if (!section) return;
  const id = document.body.dataset.battery;
  const tz = document.body.dataset.timezone;
  const api = "/v1/batteries/" + encodeURIComponent(id);
  const changeForm = $("#change-form");
  const endForm = $("#end-form");
  const VERSIONED = ["name", "meter_id", "capacity_kwh", "reset_date", "reset_repeat"];
  let battery = null, versions = [], clipRun = 0;

  const localDate = (iso) =>
    new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" })
      .format(new Date(iso));
  const dayBefore = (s) => new Date(Date.parse(s + "T00:00:00Z") - 86400e3).toISOString().slice(0, 10);

  function showVersions(items) {
    const body = $("#versions tbody");
    body.replaceChildren();
    items.forEach((v) => {
      const tr = document.createElement("tr");
      tr.dataset.validFrom = v.valid_from;
      [v.valid_from, v.name, v.meter_id,
       v.capacity_kwh === 0 ? "unlimited" : fmt.kwh(v.capacity_kwh, 1),
       v.reset_date || "–", v.reset_repeat === "none" ? "once" : v.reset_repeat,
       v.recorded_at ? fmt.time(v.recorded_at, tz) : "", v.recorded_by || "", v.reason || ""]
        .forEach((text, i) => {
          const td = document.createElement("td");
          td.textContent = text;
          if (i === 3) td.className = "num";
          tr.appendChild(td);
        });
      body.appendChild(tr);
    });
  }

  // The version a change from `from` builds on. The server carries every field the form
  // leaves out over from the version in force before `from` (for the same date: from the
  // one it replaces), so the form shows that version and sends only what differs from it;
  // showing the latest instead would let a field the user saw carry over another value.
  // No date yet: the latest version.
  function baseVersion(from) {
    if (!versions.length) return null;
    if (!from) return versions[versions.length - 1];
    let base = versions[0];
    versions.forEach((v) => { if (v.valid_from <= from) base = v; }); // by valid_from
    return base;
  }

  // Show `v` in the change form; `was` remembers it, for what to send. A field the user
  // has edited keeps its value when the date (and so the base version) changes, unless
  // `force` (a form just reset).
  function prefill(v, force) {
    if (!changeForm || !v) return;
    VERSIONED.forEach((name) => {
      const input = changeForm.querySelector(`[name="${name}"]`);
      const text = v[name] === null || v[name] === undefined ? "" : String(v[name]);
      if (force || input.value.trim() === (input.dataset.was || "")) input.value = text;
      input.dataset.was = text;
    });
  }

  const chosenFrom = () => (changeForm ? value(changeForm, "valid_from") : null);

  async function refresh() {
    section.dataset.loaded = "false";
    const [b, v] = await Promise.all([getJSON(api), getJSON(api + "/versions")]);
    battery = b;
    showVersions(v.items);
    versions = v.items;
    prefill(baseVersion(chosenFrom()), true);
    $("#end-date-now").textContent = b.end_date || "none (the battery runs on)";
    if (endForm) endForm.querySelector("[name=end_date]").value = b.end_date || "";
    section.dataset.loaded = "true";
  }

  async function clipNote() {
    const run = ++clipRun; // only the latest input's answer is shown
    const note = $("#clip-note");
    const cap = value(changeForm, "capacity_kwh"), from = value(changeForm, "valid_from");
    note.hidden = true;
    if (typeof cap !== "number" || !(cap > 0) || !from || !battery) return;
    let level = null, when = "";
    const lastDay = battery.reading_at ? localDate(Date.parse(battery.reading_at) - 15 * 60e3) : null;
    if (lastDay && from <= lastDay) {
      const days = await getJSON(`${api}/daily?start=${dayBefore(from)}&end=${from}`);
      if (days.items.length) { level = days.items[0].level_end_kwh; when = `at ${from} 00:00`; }
    } else if (battery.level_kwh !== null) {
      level = battery.level_kwh; when = "now (the latest data)";
    }
    if (run !== clipRun) return;
    if (level !== null && level > cap + 1e-9) {
      note.textContent = `The battery holds ${fmt.kwh(level)} kWh ${when}: a capacity of ` +
        `${fmt.kwh(cap)} kWh clips it, and ${fmt.kwh(level - cap)} kWh would be forfeited ` +
        `at ${from} 00:00.`;
      note.hidden = false;
    }
    note.dataset.checked = cap + "@" + from;
  }

  if (changeForm) {
    ["input", "change"].forEach((type) => {
      // first the version in force at the new date, then the clip note on its capacity
      changeForm.querySelector("[name=valid_from]").addEventListener(type, () => {
        prefill(baseVersion(chosenFrom()), false);
      });
      changeForm.querySelector("[name=capacity_kwh]").addEventListener(type, clipNote);
      changeForm.querySelector("[name=valid_from]").addEventListener(type, clipNote);
    });
    submitting(changeForm, async () => {
      const body = { valid_from: value(changeForm, "valid_from") };
      // `was` holds the base version's values (prefill at this date): what differs is sent
      VERSIONED.forEach((name) => {
        const input = changeForm.querySelector(`[name="${name}"]`);
        if (input.value.trim() !== (input.dataset.was || "")) body[name] = value(changeForm, name);
      });
      confirmed(changeForm, body);
      const reason = value(changeForm, "reason");
      if (reason) body.reason = reason;
      const res = await send(changeForm, "POST", api + "/versions", body);
      if (res.status === 201) {
        changeForm.reset();
        resetConfirms(changeForm);
        await refresh();
        $("#clip-note").hidden = true;
        changeForm.dataset.state = "saved";
      } else showErrors(changeForm, res);
    });
  }

  if (endForm) {
    submitting(endForm, async () => {
      const body = { end_date: value(endForm, "end_date") };
      confirmed(endForm, body);
      const reason = value(endForm, "reason");
      if (reason) body.reason = reason;
      const res = await send(endForm, "PATCH", api, body);
      if (res.status === 200) {
        resetConfirms(endForm);
        await refresh();
        endForm.dataset.state = "saved";
      } else showErrors(endForm, res);
    });
  }

  refresh();
})();
