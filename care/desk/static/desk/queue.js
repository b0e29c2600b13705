// The queue page's script.
// - Keyboard: j / k move the focus between rows, x toggles the focused row's checkbox (supervisors),
//   Enter opens the focused row's ticket. Keys typed into form fields are left alone.
// - Live: the page follows the tenant streams it names (CareLive, live.js); a ticket created,
//   changed or assigned there re-reads the rows (a burst of events is one re-read). While a
//   supervisor has rows selected for a bulk action the rows stay as they are and the page says that
//   the queue changed; the re-read happens once nothing is selected.
(function () {
  "use strict";
  const table = document.getElementById("queue");
  if (!table) return;

  const REFRESH_DELAY_MS = 1000;
  const REFRESH_EVENTS = {"ticket.created": true, "ticket.updated": true, "ticket.assigned": true};

  function rows() {
    return Array.from(table.querySelectorAll("tr.queue-row"));
  }

  function current() {
    return rows().indexOf(document.activeElement && document.activeElement.closest("tr.queue-row"));
  }

  function focusRow(index) {
    const all = rows();
    if (!all.length) return;
    const row = all[Math.max(0, Math.min(all.length - 1, index))];
    all.forEach((r) => r.classList.toggle("is-focused", r === row));
    row.focus();
  }

  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    // A row's own checkbox (just clicked) keeps the shortcuts; other fields keep their keys.
    const rowBox = target.matches && target.matches('tr.queue-row input[type="checkbox"]');
    if (!rowBox && target.closest && target.closest("input, select, textarea, button, [contenteditable]")) {
      return;
    }
    const all = rows();
    if (!all.length) return;
    const index = current();
    if (event.key === "j") {
      focusRow(index + 1);
    } else if (event.key === "k") {
      focusRow(index < 0 ? 0 : index - 1);
    } else if (event.key === "x" && index >= 0) {
      const box = all[index].querySelector('input[type="checkbox"]');
      if (box) box.checked = !box.checked;
    } else if (event.key === "Enter" && index >= 0 && !target.closest("a")) {
      window.location.href = all[index].dataset.href;
    } else {
      return;
    }
    event.preventDefault();
  });

  // --- live ----------------------------------------------------------------------------------------

  const configNode = document.getElementById("queue-live-config");
  const status = document.getElementById("queue-live");
  const config = configNode ? JSON.parse(configNode.textContent) : {streams: []};
  let timer = null;
  let pending = false;

  function selecting() {
    return table.querySelector('tr.queue-row input[type="checkbox"]:checked') !== null;
  }

  function swap(doc, id) {
    const fresh = doc.getElementById(id);
    const here = document.getElementById(id);
    if (fresh && here) here.replaceWith(fresh);
  }

  function refresh() {
    if (selecting()) {
      pending = true;
      if (status) status.textContent = status.dataset.changed || "";
      return;
    }
    pending = false;
    const focused = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest("tr.queue-row")
      : null;
    const focusedId = focused ? focused.dataset.ticketId : null;
    window.fetch(window.location.pathname + window.location.search, {
      credentials: "same-origin",
      headers: {Accept: "text/html"}
    })
      .then((response) => (response.ok ? response.text() : null))
      .then((html) => {
        if (!html || selecting()) return;
        const doc = new window.DOMParser().parseFromString(html, "text/html");
        const freshTable = doc.getElementById("queue");
        if (!freshTable) return;
        table.querySelector("tbody").replaceWith(freshTable.querySelector("tbody"));
        table.querySelector("caption").replaceWith(freshTable.querySelector("caption"));
        swap(doc, "queue-pages");
        if (status) status.textContent = "";
        if (focusedId) {
          const row = table.querySelector('tr.queue-row[data-ticket-id="' + focusedId + '"]');
          if (row) {
            row.classList.add("is-focused");
            row.focus();
          }
        }
      })
      .catch(() => {});
  }

  function scheduleRefresh() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, REFRESH_DELAY_MS);
  }

  // A selection cleared after changes arrived: catch up then.
  table.addEventListener("change", () => {
    if (pending && !selecting()) scheduleRefresh();
  });

  if (config.streams.length && window.CareLive) {
    const live = new window.CareLive({});
    config.streams.forEach((stream) => {
      live.subscribe(
        stream,
        (event) => {
          if (REFRESH_EVENTS[event.type]) scheduleRefresh();
        },
        {onReload: scheduleRefresh}
      );
    });
    window.careLive = live; // for the console and the browser tests
    window.addEventListener("pagehide", () => live.close());
  }
})();
