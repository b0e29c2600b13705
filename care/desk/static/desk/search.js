// Search: "/" focuses the search box (the page's own, else the header's) unless a field has the
// keys; on the results page j / k move between results, Enter opens the focused one, and
// "More results" appends the next page without a reload (the link still works without script).
(function () {
  "use strict";

  function typing(target) {
    return target && target.closest && target.closest("input, select, textarea, [contenteditable]");
  }

  function searchBox() {
    return document.getElementById("search-q") || document.getElementById("header-search-q");
  }

  function hits() {
    return Array.from(document.querySelectorAll("#search-results .search-hit"));
  }

  function focusHit(list, index) {
    const hit = list[Math.max(0, Math.min(list.length - 1, index))];
    list.forEach(function (h) { h.classList.toggle("is-focused", h === hit); });
    hit.focus();
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) return;
    if (event.key === "/") {
      const box = searchBox();
      if (!box) return;
      event.preventDefault();
      box.focus();
      box.select();
      return;
    }
    const list = hits();
    if (!list.length) return;
    const index = list.indexOf(document.activeElement && document.activeElement.closest(".search-hit"));
    if (event.key === "j") {
      focusHit(list, index + 1);
    } else if (event.key === "k") {
      focusHit(list, index < 0 ? 0 : index - 1);
    } else if (event.key === "Enter" && index >= 0 && !event.target.closest("a")) {
      window.location.href = list[index].querySelector("a.search-ref").href;
    } else {
      return;
    }
    event.preventDefault();
  });

  const more = document.getElementById("search-more");
  const results = document.getElementById("search-results");
  const status = document.getElementById("search-status");
  if (!more || !results) return;
  more.addEventListener("click", function (event) {
    event.preventDefault();
    more.setAttribute("aria-busy", "true");
    fetch(more.href, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) throw new Error(data.error || response.statusText);
          return data;
        });
      })
      .then(function (data) {
        const first = results.children.length;
        results.insertAdjacentHTML("beforeend", data.rows);
        if (status) status.textContent = more.dataset.loaded || "";
        if (data.more_url) {
          more.href = data.more_url;
          more.removeAttribute("aria-busy");
        } else {
          more.parentNode.removeChild(more);
        }
        const added = results.children[first];
        if (added) focusHit(hits(), first);
      })
      .catch(function (error) {
        // Fall back to the plain link: a full page load shows whatever went wrong.
        if (status) status.textContent = String(error.message || error);
        window.location.href = more.href;
      });
  });
})();
