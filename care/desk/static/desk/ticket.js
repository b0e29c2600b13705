/*
 * The live ticket page: subscribes to the ticket's stream through CareLive (live.js) and keeps the
 * page current without reloading it: new timeline entries, status, priority and assignee, who else
 * is on the ticket and who is typing, SLA warnings. Replies and notes are posted with fetch; without
 * script the form posts and the server redirects back.
 *
 * Entries are rendered by the server (the same template as the page) and fetched by id when an
 * event announces them, so a note written elsewhere looks exactly like one that was there at load.
 * Every entry carries its interaction id: whatever arrives twice (the POST's answer and the event,
 * a replay after a reconnect) is shown once.
 *
 * Changes of the ticket (status, assignment, priority, links, merges) are timeline entries too, with
 * their audit event's id. The live `ticket.updated` and `ticket.assigned` events carry no such id, so
 * they make the page fetch `entries?events_after=<the newest change it shows>` (batched with the
 * interactions wanted at the same moment); after a reload `entries?all=1&events_after=0` brings
 * every interaction and every change.
 *
 * The SLA clocks count down every second from their due time (data-due); the server's answers
 * replace the list (a reply meets a target, a status change pauses a clock), and the live
 * `sla.warning` and `sla.breach` events colour the clock of their target like the banner.
 */
(function (window, document) {
  "use strict";

  var TYPING_REPEAT_MS = 3000; // "I am typing" again at most this often while keys keep coming
  var TYPING_STOP_MS = 4000; // "not typing any more" after this long without a key
  var FETCH_BATCH_MS = 30; // events arriving together are fetched in one request

  var config = JSON.parse(document.getElementById("ticket-live-config").textContent);
  var text = config.text;
  var labels = config.labels;
  var stream = config.stream;

  function byId(id) {
    return document.getElementById(id);
  }

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (match, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : match;
    });
  }

  // --- times in the reader's own zone -------------------------------------------------------------

  var timeFormat = new window.Intl.DateTimeFormat(document.documentElement.lang || undefined, {
    dateStyle: "medium",
    timeStyle: "short"
  });

  // A call's times are read to the second (data-precision="seconds").
  var secondsFormat = new window.Intl.DateTimeFormat(document.documentElement.lang || undefined, {
    dateStyle: "medium",
    timeStyle: "medium"
  });

  function localiseTimes(root) {
    var times = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i += 1) {
      var when = new Date(times[i].getAttribute("datetime"));
      if (!isNaN(when.getTime())) {
        var precise = times[i].getAttribute("data-precision") === "seconds";
        times[i].textContent = (precise ? secondsFormat : timeFormat).format(when);
        times[i].title = when.toISOString();
      }
    }
  }

  // --- the timeline ---------------------------------------------------------------------------------

  var timeline = byId("timeline");

  function entryNode(id) {
    return timeline.querySelector('[data-interaction-id="' + Number(id) + '"]');
  }

  function eventNode(id) {
    return timeline.querySelector('[data-event-id="' + Number(id) + '"]');
  }

  /* The order of the timeline: the moment, then interactions before changes, then the id. */
  function sortKey(node) {
    var isEvent = node.hasAttribute("data-event-id");
    return {
      order: Number(node.getAttribute("data-order")),
      rank: isEvent ? 1 : 0,
      id: Number(node.getAttribute(isEvent ? "data-event-id" : "data-interaction-id"))
    };
  }

  function comesBefore(node, order, id, rank) {
    var key = sortKey(node);
    rank = rank || 0;
    if (key.order !== order) {
      return key.order < order;
    }
    if (key.rank !== rank) {
      return key.rank < rank;
    }
    return key.id < id;
  }

  /* Put `node` where (occurred, kind, id) says: usually last, but an email may carry an earlier date. */
  function place(node, order, id, rank) {
    var empty = byId("timeline-empty");
    if (empty) {
      empty.parentNode.removeChild(empty);
    }
    var entries = timeline.querySelectorAll("[data-interaction-id], [data-event-id]");
    for (var i = entries.length - 1; i >= 0; i -= 1) {
      if (comesBefore(entries[i], order, id, rank)) {
        timeline.insertBefore(node, entries[i].nextSibling);
        return;
      }
    }
    timeline.insertBefore(node, timeline.firstChild);
  }

  /* Add a server-rendered entry ({id, order, html}) unless it is there; replaces a preview. */
  function addEntry(entry, isNew) {
    var existing = entryNode(entry.id);
    if (existing && !existing.hasAttribute("data-preview")) {
      return;
    }
    var holder = document.createElement("template");
    holder.innerHTML = entry.html.trim();
    var node = holder.content.firstElementChild;
    localiseTimes(node);
    if (existing) {
      existing.parentNode.replaceChild(node, existing);
    } else {
      place(node, entry.order, entry.id);
    }
    if (isNew) {
      node.classList.add("is-new");
    }
  }

  /* Add a server-rendered change ({id, order, html}) unless it is there. */
  function addEvent(entry, isNew) {
    if (eventNode(entry.id)) {
      return;
    }
    var holder = document.createElement("template");
    holder.innerHTML = entry.html.trim();
    var node = holder.content.firstElementChild;
    localiseTimes(node);
    place(node, entry.order, entry.id, 1);
    if (isNew) {
      node.classList.add("is-new");
    }
  }

  /* The id of the newest change the page shows (0: none). */
  function newestEventId() {
    var nodes = timeline.querySelectorAll("[data-event-id]");
    var newest = 0;
    for (var i = 0; i < nodes.length; i += 1) {
      newest = Math.max(newest, Number(nodes[i].getAttribute("data-event-id")));
    }
    return newest;
  }

  /* When the entry cannot be fetched: what the event says (the first 200 characters). */
  function addPreview(interaction) {
    if (entryNode(interaction.id)) {
      return;
    }
    var node = document.createElement("li");
    node.className = "entry entry-" + interaction.direction + " is-new";
    node.id = "interaction-" + interaction.id;
    node.setAttribute("data-interaction-id", interaction.id);
    node.setAttribute("data-preview", "1");
    var occurred = new Date(interaction.occurred_at);
    var order = occurred.getTime() * 1000;
    node.setAttribute("data-order", order);
    var meta = document.createElement("p");
    meta.className = "entry-meta";
    var kind = document.createElement("span");
    kind.className = "entry-kind";
    kind.textContent = labels.direction[interaction.direction] || interaction.direction;
    var author = document.createElement("span");
    author.className = "entry-author";
    author.textContent = interaction.author.name || "";
    var time = document.createElement("time");
    time.className = "muted";
    time.setAttribute("datetime", interaction.occurred_at);
    meta.appendChild(kind);
    meta.appendChild(author);
    meta.appendChild(document.createTextNode(" · "));
    meta.appendChild(time);
    var body = document.createElement("div");
    body.className = "entry-body";
    body.textContent = interaction.preview + " " + text.preview;
    node.appendChild(meta);
    node.appendChild(body);
    localiseTimes(node);
    place(node, order, Number(interaction.id));
  }

  // --- fetching what events announce ----------------------------------------------------------------

  var wanted = {}; // interaction id -> its event's interaction (for the preview fallback)
  var changesWanted = false; // a change of the ticket was announced: fetch the newer changes
  /* The entries endpoint's answer to ``query`` (a rejected promise on an HTTP error). */
  function getEntries(query) {
    return window
      .fetch(config.urls.entries + "?" + query, {
        credentials: "same-origin",
        headers: {Accept: "application/json"}
      })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      });
  }

  /* Place the interactions and changes of an answer (each once, wherever they belong). */
  function addAll(data, isNew) {
    for (var i = 0; i < data.entries.length; i += 1) {
      addEntry(data.entries[i], isNew);
    }
    var events = data.events || [];
    for (var k = 0; k < events.length; k += 1) {
      addEvent(events[k], isNew);
    }
  }

  // --- older entries: a long ticket opens with its newest part -----------------------------------

  var earlier = byId("load-earlier");
  if (earlier) {
    earlier.addEventListener("click", function (event) {
      event.preventDefault();
      if (earlier.getAttribute("aria-busy") === "true") {
        return;
      }
      earlier.setAttribute("aria-busy", "true");
      getEntries("before=" + encodeURIComponent(earlier.getAttribute("data-before")))
        .then(function (data) {
          addAll(data, false);
          if (data.earlier) {
            earlier.setAttribute("data-before", String(data.earlier));
          } else {
            earlier.parentNode.parentNode.removeChild(earlier.parentNode);
          }
        })
        .catch(function (error) {
          // The link still works without script: it opens the page with the whole timeline.
          window.console.warn("Could not fetch earlier entries", error);
          window.location.href = earlier.href;
        })
        .then(function () {
          earlier.setAttribute("aria-busy", "false");
        });
    });
  }

  var fetchTimer = null;
  var fetchCount = 0;
  var appliedFetch = 0;

  function refresh(query, previews) {
    fetchCount += 1;
    var number = fetchCount;
    return getEntries(query)
      .then(function (data) {
        addAll(data, true);
        // Answers may overtake each other: the banner and header of an older request are older.
        if (number > appliedFetch) {
          appliedFetch = number;
          showSlaHtml(data.sla);
          showClocksHtml(data.clocks);
          showTicket(data.ticket);
        }
      })
      .catch(function (error) {
        window.console.warn("Could not fetch timeline entries", error);
        for (var j = 0; j < previews.length; j += 1) {
          addPreview(previews[j]);
        }
      });
  }

  function want(interaction) {
    if (entryNode(interaction.id) || wanted[interaction.id]) {
      return;
    }
    wanted[interaction.id] = interaction;
    scheduleFetch();
  }

  function wantChanges() {
    changesWanted = true;
    scheduleFetch();
  }

  function scheduleFetch() {
    if (fetchTimer === null) {
      fetchTimer = window.setTimeout(fetchWanted, FETCH_BATCH_MS);
    }
  }

  function fetchWanted() {
    fetchTimer = null;
    var query = [];
    var previews = [];
    for (var id in wanted) {
      if (Object.prototype.hasOwnProperty.call(wanted, id)) {
        query.push("id=" + encodeURIComponent(id));
        previews.push(wanted[id]);
      }
    }
    wanted = {};
    if (changesWanted) {
      changesWanted = false;
      query.push("events_after=" + newestEventId());
    }
    if (query.length) {
      refresh(query.join("&"), previews);
    }
  }

  // --- the header, the SLA banner, the people here -------------------------------------------------

  function showTicket(ticket) {
    if (!ticket) {
      return;
    }
    var status = byId("ticket-status");
    status.textContent = labels.status[ticket.status] || ticket.status;
    status.setAttribute("data-value", ticket.status);
    var priority = byId("ticket-priority");
    priority.textContent = labels.priority[String(ticket.priority)] || ticket.priority;
    priority.setAttribute("data-value", ticket.priority);
    if (ticket.subject !== undefined) {
      byId("ticket-subject").textContent = ticket.subject;
    }
    if (ticket.assignee !== undefined) {
      showAssignee(ticket.assignee);
    }
  }

  function showAssignee(person) {
    byId("ticket-assignee").textContent = person ? person.name : text.unassigned;
  }

  var slaBanner = byId("sla-banner");

  function showSlaHtml(html) {
    slaBanner.innerHTML = html; // rendered (and escaped) by the server's template
    localiseTimes(slaBanner);
  }

  function showSla(kind, data) {
    var current = slaBanner.querySelector(".sla-alert");
    if (kind === "warning" && current && current.classList.contains("sla-breach")) {
      return; // a breach outranks a warning
    }
    var alert = document.createElement("p");
    alert.className = "sla-alert sla-" + kind;
    var target = labels.target[data.target] || data.target;
    alert.appendChild(document.createTextNode(format(text["sla_" + kind], {target: target}) + " "));
    var due = document.createElement("time");
    due.setAttribute("datetime", data.due_at);
    alert.appendChild(due);
    alert.appendChild(document.createTextNode("."));
    localiseTimes(alert);
    slaBanner.textContent = "";
    slaBanner.appendChild(alert);
  }

  // --- the SLA clocks' countdowns ------------------------------------------------------------------

  var clockBox = byId("sla-clocks");

  function showClocksHtml(html) {
    if (!clockBox || typeof html !== "string") {
      return;
    }
    clockBox.innerHTML = html; // rendered (and escaped) by the server's template
    localiseTimes(clockBox);
    tickClocks();
  }

  function pad(number) {
    return number < 10 ? "0" + number : String(number);
  }

  /* As the server writes it (care/desk/ticket_panels.py countdown_text): 1:02:03, 2 d 01:02:03. */
  function countdownText(seconds) {
    seconds = Math.abs(seconds);
    var days = Math.floor(seconds / 86400);
    var hours = Math.floor((seconds % 86400) / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    var secs = seconds % 60;
    var clock = (days ? pad(hours) : String(hours)) + ":" + pad(minutes) + ":" + pad(secs);
    return days ? format(text.sla_days, {days: days}) + " " + clock : clock;
  }

  function setMood(node, mood) {
    var moods = ["ok", "warned", "breached", "idle"];
    for (var i = 0; i < moods.length; i += 1) {
      node.classList.toggle("sla-clock-" + moods[i], moods[i] === mood);
    }
  }

  /* Every running clock: the time left, amber once warned, red and "overdue by" once due. */
  function tickClocks() {
    if (!clockBox) {
      return;
    }
    var clocks = clockBox.querySelectorAll(".sla-clock[data-due]");
    var now = Date.now();
    for (var i = 0; i < clocks.length; i += 1) {
      var node = clocks[i];
      var due = new Date(node.getAttribute("data-due")).getTime();
      var output = node.querySelector("[data-countdown]");
      if (isNaN(due) || !output) {
        continue;
      }
      var left = Math.floor((due - now) / 1000);
      var overdue = left < 0;
      output.textContent = format(overdue ? text.sla_overdue : text.sla_left, {time: countdownText(left)});
      if (overdue || node.hasAttribute("data-breached")) {
        setMood(node, "breached");
      } else if (node.hasAttribute("data-warned")) {
        setMood(node, "warned");
      } else {
        setMood(node, "ok");
      }
    }
  }

  /* A live SLA event for `target`: that clock is warned (or breached) now, as the banner says. */
  function markClock(target, state) {
    if (!clockBox) {
      return;
    }
    var node = clockBox.querySelector('.sla-clock[data-target="' + String(target).replace(/[^a-z_]/g, "") + '"]');
    if (node) {
      node.setAttribute("data-" + state, "1");
      tickClocks();
    }
  }

  window.setInterval(tickClocks, 1000);

  function showViewers(viewers) {
    var list = byId("viewers");
    var typing = [];
    var others = 0;
    list.textContent = "";
    for (var i = 0; i < viewers.length; i += 1) {
      var viewer = viewers[i];
      if (viewer.user === config.user) {
        continue;
      }
      others += 1;
      var item = document.createElement("li");
      item.className = "viewer" + (viewer.typing ? " is-typing" : "");
      item.setAttribute("data-user", viewer.user);
      item.textContent = viewer.name;
      list.appendChild(item);
      if (viewer.typing) {
        typing.push(viewer.name);
      }
    }
    byId("viewers-none").hidden = others > 0;
    var line = "";
    if (typing.length === 1) {
      line = format(text.typing_one, {name: typing[0]});
    } else if (typing.length > 1) {
      line = format(text.typing_many, {names: typing.join(", ")});
    }
    byId("typing").textContent = line;
  }

  function showLiveState(message) {
    var box = byId("live-state");
    box.textContent = message;
    box.hidden = !message;
  }

  var refusal = ""; // the server's refusal of the ticket's stream, shown until the page is reloaded

  function showConnection(state) {
    showLiveState({reconnecting: text.reconnecting, denied: text.denied}[state] || refusal);
  }

  // --- the live feed --------------------------------------------------------------------------------

  var handlers = {
    "interaction.added": function (data) {
      want(data.interaction);
    },
    "ticket.updated": function (data) {
      showTicket(data.ticket);
      if (data.kind === "merged") {
        // Another ticket's entries moved here (or this one's away): re-read the whole timeline.
        refresh("all=1&events_after=0", []);
        return;
      }
      wantChanges();
    },
    "ticket.assigned": function (data) {
      showTicket(data.ticket);
      showAssignee(data.assignee);
      wantChanges();
    },
    "ticket.viewers": function (data) {
      showViewers(data.viewers);
    },
    "sla.warning": function (data) {
      showSla("warning", data);
      markClock(data.target, "warned");
    },
    "sla.breach": function (data) {
      showSla("breach", data);
      markClock(data.target, "breached");
    }
  };

  var live = new window.CareLive({onState: showConnection});
  window.careLive = live; // for the console and the browser tests
  live.subscribe(
    stream,
    function (event) {
      var handler = handlers[event.type];
      if (handler) {
        handler(event.data);
      }
    },
    {
      // Too much was missed: re-read the timeline, the header and the banner instead of the page,
      // which would lose the reply being written.
      onReload: function () {
        refresh("all=1&events_after=0", []);
      },
      // Access withdrawn since the page was rendered (or the ticket is gone): say so, keep the page.
      onRefused: function (message) {
        refusal = format(text.refused, {reason: message.message});
        showLiveState(refusal);
      }
    }
  );
  window.addEventListener("pagehide", function () {
    live.close();
  });

  // --- typing notices and drafts ----------------------------------------------------------------

  var form = byId("reply-form");
  var textarea = byId("reply-text");
  var errorBox = byId("reply-error");
  var draftKey = "care.draft.ticket." + config.ticket.id;
  var typingSentAt = 0;
  var typingOn = false;
  var typingTimer = null;

  function stopTyping() {
    window.clearTimeout(typingTimer);
    typingTimer = null;
    if (typingOn) {
      typingOn = false;
      live.typing(stream, false);
    }
  }

  textarea.addEventListener("input", function () {
    var now = Date.now();
    if (!typingOn || now - typingSentAt >= TYPING_REPEAT_MS) {
      typingOn = true;
      typingSentAt = now;
      live.typing(stream, true);
    }
    window.clearTimeout(typingTimer);
    typingTimer = window.setTimeout(stopTyping, TYPING_STOP_MS);
    try {
      window.sessionStorage.setItem(draftKey, textarea.value);
    } catch (error) {
      // Storage full or disabled: the draft just is not kept across reloads.
    }
  });

  function restoreDraft() {
    try {
      var draft = window.sessionStorage.getItem(draftKey);
      if (draft && !textarea.value) {
        textarea.value = draft;
      }
    } catch (error) {
      // No storage: nothing to restore.
    }
  }

  function clearDraft() {
    try {
      window.sessionStorage.removeItem(draftKey);
    } catch (error) {
      // No storage: nothing was kept.
    }
  }

  // --- posting ----------------------------------------------------------------------------------

  function setBusy(busy) {
    var buttons = form.querySelectorAll("button");
    for (var i = 0; i < buttons.length; i += 1) {
      buttons[i].disabled = busy;
    }
    form.setAttribute("aria-busy", busy ? "true" : "false");
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var button = event.submitter || byId("send-reply");
    var url = button.getAttribute("formaction") || form.getAttribute("action");
    var body = new window.FormData(form);
    errorBox.textContent = "";
    setBusy(true);
    stopTyping();
    window
      .fetch(url, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: {Accept: "application/json", "X-CSRFToken": form.elements.csrfmiddlewaretoken.value}
      })
      .then(function (response) {
        return response.json().then(
          function (data) {
            return {ok: response.ok, data: data};
          },
          function () {
            return {ok: false, data: {}}; // not JSON: a login page after the session ended, a proxy's error
          }
        );
      })
      .then(
        function (result) {
          if (!result.ok) {
            errorBox.textContent = result.data.error || text.send_failed;
            return;
          }
          addEntry(result.data.entry, true);
          textarea.value = "";
          clearDraft();
          form.dispatchEvent(new window.CustomEvent("care:sent", {detail: result.data})); // composer.js
        },
        function () {
          errorBox.textContent = text.send_failed;
        }
      )
      .then(function () {
        setBusy(false);
      });
  });

  restoreDraft();
  localiseTimes(document);
  tickClocks();
})(window, document);
