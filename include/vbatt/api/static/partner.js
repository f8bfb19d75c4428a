// The partner page: the batteries a key may see, searched on the server, paged by "more".
"use strict";
(() => {
  const body = document.querySelector("#batteries tbody");
  const more = document.getElementById("more");
  const count = document.getElementById("count");
  const search = document.getElementById("search");
  let nextUrl = null, shown = 0, generation = 0;

  function row(b) {
    const tr = document.createElement("tr");
    tr.dataset.battery = b.battery_id;
    const cells = [
      null, b.name, b.customer_id,
      b.capacity_kwh === 0 ? "unlimited" : fmt.kwh(b.capacity_kwh, 1),
      fmt.kwh(b.level_kwh), fmt.signed(b.active_power_kw), fmt.time(b.reading_at, b.timezone),
      fmt.percent(b.estimated_intervals, b.intervals),
    ];
    const classes = ["", "", "", "num", "num level", "num", "reading-at", "num estimated"];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.className = classes[i];
      if (i === 0) {
        const a = document.createElement("a");
        a.href = "/dashboard/batteries/" + encodeURIComponent(b.battery_id);
        a.textContent = b.battery_id;
        td.appendChild(a);
      } else td.textContent = text;
      tr.appendChild(td);
    });
    return tr;
  }

  async function load(url, replace) {
    const mine = ++generation;
    const page = await getJSON(url);
    if (mine !== generation) return; // a newer search started meanwhile
    if (replace) { body.replaceChildren(); shown = 0; }
    page.items.forEach((b) => body.appendChild(row(b)));
    shown += page.items.length;
    nextUrl = page.next;
    more.hidden = !nextUrl;
    count.textContent = shown + (nextUrl ? "+" : "") + " batteries";
    document.body.dataset.loaded = "true";
  }

  const first = () => "/v1/batteries?limit=200" + (search.value ? "&q=" + encodeURIComponent(search.value) : "");
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    document.body.dataset.loaded = "false";
    timer = setTimeout(() => load(first(), true), 200);
  });
  more.addEventListener("click", () => nextUrl && load(nextUrl, false));
  load(first(), true);
})();
