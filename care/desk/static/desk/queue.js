// The queue's keyboard: j / k move the focus between rows, x toggles the focused row's checkbox
// (supervisors), Enter opens the focused row's ticket. Keys typed into form fields are left alone.
(function () {
  "use strict";
  const table = document.getElementById("queue");
  if (!table) return;
  const rows = Array.from(table.querySelectorAll("tr.queue-row"));
  if (!rows.length) return;

  function current() {
    return rows.indexOf(document.activeElement && document.activeElement.closest("tr.queue-row"));
  }

  function focusRow(index) {
    const row = rows[Math.max(0, Math.min(rows.length - 1, index))];
    rows.forEach((r) => r.classList.toggle("is-focused", r === row));
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
    const index = current();
    if (event.key === "j") {
      focusRow(index + 1);
    } else if (event.key === "k") {
      focusRow(index < 0 ? 0 : index - 1);
    } else if (event.key === "x" && index >= 0) {
      const box = rows[index].querySelector('input[type="checkbox"]');
      if (box) box.checked = !box.checked;
    } else if (event.key === "Enter" && index >= 0 && !target.closest("a")) {
      window.location.href = rows[index].dataset.href;
    } else {
      return;
    }
    event.preventDefault();
  });
})();
