/*
 * The ticket page's actions panel (templates/desk/ticket_actions.html): status, priority, tags,
 * assignment, links and merge. Every form posts with fetch (Accept: application/json); the server
 * answers with the panel rendered anew (the one rendering, the same as on the page) and the
 * ticket's facts, or {"error": message}. Without script the forms post and the server redirects.
 *
 * Changes made elsewhere: ticket.js keeps the header's facts (#ticket-status, #ticket-priority,
 * #ticket-assignee) current from the ticket's live stream; when it touches them, this panel re-reads
 * itself from the server, so its selects, tags and links follow too (one stream, one handler).
 *
 * Keys (not while typing in a field): a = assign to me, s = the status select, t = the tag input.
 */
(function (window, document) {
  "use strict";

  var REFRESH_DELAY_MS = 150; // a burst of live events is re-read once

  var root = document.getElementById("ticket-actions");
  if (!root) {
    return;
  }
  var panelUrl = root.getAttribute("data-panel-url");
  var configNode = document.getElementById("ticket-live-config");
  var config = configNode ? JSON.parse(configNode.textContent) : {};
  var labels = config.labels || null;
  var unassigned = config.text ? config.text.unassigned : "";
  var busy = false;
  var refreshTimer = null;
  var refreshWhenLeft = false;

  function byId(id) {
    return document.getElementById(id);
  }

  function say(message, isError) {
    var errorBox = byId("actions-error");
    var doneBox = byId("actions-done");
    if (errorBox) {
      errorBox.textContent = isError ? message : "";
    }
    if (doneBox) {
      doneBox.textContent = isError ? "" : message;
    }
  }

  // --- the header's facts (also kept by ticket.js from live events) ------------------------------

  var watched = ["ticket-status", "ticket-priority", "ticket-assignee"];
  var observer = null;

  function setFact(id, value, text) {
    var node = byId(id);
    if (!node) {
      return;
    }
    if (value !== null) {
      node.setAttribute("data-value", value);
    }
    node.textContent = text;
  }

  function showFacts(ticket) {
    if (!ticket) {
      return;
    }
    if (labels) {
      setFact("ticket-status", ticket.status, labels.status[ticket.status] || ticket.status);
      setFact("ticket-priority", String(ticket.priority), labels.priority[String(ticket.priority)] || ticket.priority);
    }
    setFact("ticket-assignee", null, ticket.assignee ? ticket.assignee.name : unassigned);
    if (observer) {
      observer.takeRecords(); // our own change: nothing to re-read
    }
  }

  // --- the panel ---------------------------------------------------------------------------------

  function focusedInside() {
    var active = document.activeElement;
    return Boolean(active && root.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName));
  }

  function showPanel(html, keepFocusId) {
    root.innerHTML = html; // rendered (and escaped) by the server's template
    var again = keepFocusId ? byId(keepFocusId) : null;
    if (again && typeof again.focus === "function") {
      again.focus();
    }
  }

  function refresh() {
    refreshTimer = null;
    if (busy) {
      scheduleRefresh();
      return;
    }
    if (focusedInside()) {
      refreshWhenLeft = true; // never pull a select or a half-typed tag from under the user
      return;
    }
    window
      .fetch(panelUrl, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        if (!busy && !focusedInside() && !byId("actions-merge-confirm")) {
          showPanel(data.html, null);
        }
      })
      .catch(function (error) {
        window.console.warn("Could not re-read the ticket's actions", error);
      });
  }

  function scheduleRefresh() {
    if (refreshTimer === null) {
      refreshTimer = window.setTimeout(refresh, REFRESH_DELAY_MS);
    }
  }

  root.addEventListener("focusout", function () {
    window.setTimeout(function () {
      if (refreshWhenLeft && !focusedInside()) {
        refreshWhenLeft = false;
        scheduleRefresh();
      }
    }, 0);
  });

  if (window.MutationObserver) {
    observer = new window.MutationObserver(scheduleRefresh);
    for (var i = 0; i < watched.length; i += 1) {
      var node = byId(watched[i]);
      if (node) {
        observer.observe(node, {childList: true, characterData: true, subtree: true, attributes: true});
      }
    }
  }

  // --- posting the forms -----------------------------------------------------------------------

  function post(form, submitter) {
    var body = new window.FormData(form);
    if (submitter && submitter.name) {
      body.append(submitter.name, submitter.value);
    }
    var focusId = document.activeElement && document.activeElement.id;
    busy = true;
    root.classList.add("is-busy");
    return window
      .fetch(form.action, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: {Accept: "application/json", "X-CSRFToken": body.get("csrfmiddlewaretoken") || ""}
      })
      .then(function (response) {
        return response.json().then(
          function (data) {
            return {ok: response.ok, data: data};
          },
          function () {
            throw new Error("HTTP " + response.status);
          }
        );
      })
      .then(function (answer) {
        if (!answer.ok || answer.data.error) {
          say(answer.data.error || root.getAttribute("data-text-failed"), true);
          return;
        }
        showPanel(answer.data.html, answer.data.confirm ? "actions-merge-yes" : focusId);
        showFacts(answer.data.ticket);
        if (!answer.data.confirm) {
          say(root.getAttribute("data-text-saved"), false);
        }
      })
      .catch(function (error) {
        window.console.warn("Ticket action failed", error);
        say(root.getAttribute("data-text-failed"), true);
      })
      .then(function () {
        busy = false;
        root.classList.remove("is-busy");
      });
  }

  root.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-action") || busy) {
      if (busy) {
        event.preventDefault();
      }
      return;
    }
    event.preventDefault();
    post(form, event.submitter || null);
  });

  // A select's choice is the action itself: no need to press "Set" as well.
  root.addEventListener("change", function (event) {
    var select = event.target;
    if (select.tagName === "SELECT" && (select.id === "actions-status" || select.id === "actions-priority")) {
      if (select.value !== select.getAttribute("data-value") && !busy) {
        post(select.form, null);
      }
    }
  });

  root.addEventListener("click", function (event) {
    var cancel = event.target.closest ? event.target.closest("[data-cancel]") : null;
    if (cancel) {
      event.preventDefault();
      say("", false);
      scheduleRefresh();
    }
  });

  // --- keyboard --------------------------------------------------------------------------------

  function typingIn(target) {
    if (!target || !target.tagName) {
      return false;
    }
    return /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName) || target.isContentEditable;
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || typingIn(event.target)) {
      return;
    }
    var key = event.key;
    var target = null;
    if (key === "a") {
      var assign = byId("actions-assign-me");
      if (assign && !busy) {
        event.preventDefault();
        post(assign.form, null);
      }
      return;
    }
    if (key === "s") {
      target = byId("actions-status");
    } else if (key === "t") {
      target = byId("actions-tag");
    }
    if (target && !target.disabled) {
      event.preventDefault(); // the letter is a command, not the field's first character
      target.focus();
    }
  });
})(window, document);
