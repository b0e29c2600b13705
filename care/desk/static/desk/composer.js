/*
 * The reply composer on the ticket page: reply or internal-note mode, the macro picker (button or
 * "m"; filter by title or keyword, arrow keys, Enter inserts the pre-rendered text at the cursor),
 * @mention suggestions in notes (fetched from the server: only colleagues who may see the ticket's
 * client), Ctrl/Cmd+Enter to send, and a check of email attachments against the limits before
 * they are uploaded. Posting itself is ticket.js's: it sends the form as FormData (files included).
 * Without script the form still works: both buttons post it.
 */
(function (window, document) {
  "use strict";

  var MENTION_DELAY_MS = 150; // keys typed within this time are one suggestion request
  var config = JSON.parse(document.getElementById("composer-config").textContent);
  var text = config.text;

  function byId(id) {
    return document.getElementById(id);
  }

  var form = byId("reply-form");
  var textarea = byId("reply-text");
  var errorBox = byId("reply-error");
  var sendButton = byId("send-reply");
  var noteButton = byId("add-note");
  var hint = byId("composer-hint");
  var fileInput = byId("reply-attachments");

  function isTyping(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  /* Put `value` at the cursor (replacing a selection, or the characters from `from`) and tell the
     other scripts (drafts, typing notices) that the text changed. */
  function insertText(value, from) {
    var start = from === undefined ? textarea.selectionStart : from;
    var end = textarea.selectionEnd;
    var before = textarea.value.slice(0, start);
    var after = textarea.value.slice(end);
    textarea.value = before + value + after;
    var caret = before.length + value.length;
    textarea.focus();
    textarea.setSelectionRange(caret, caret);
    textarea.dispatchEvent(new window.Event("input", {bubbles: true}));
  }

  // --- reply or note ------------------------------------------------------------------------------

  function mode() {
    return form.getAttribute("data-mode") === "note" ? "note" : "reply";
  }

  function setMode(value) {
    form.setAttribute("data-mode", value);
    var radios = form.querySelectorAll('input[name="composer_mode"]');
    for (var i = 0; i < radios.length; i += 1) {
      radios[i].checked = radios[i].value === value;
    }
    hint.hidden = value !== "note";
    if (value !== "note") {
      closeMentions();
    }
  }

  form.addEventListener("change", function (event) {
    if (event.target.name === "composer_mode") {
      setMode(event.target.value);
    }
  });

  function send() {
    var button = mode() === "note" ? noteButton : sendButton;
    if (button.disabled) {
      return;
    }
    if (form.requestSubmit) {
      form.requestSubmit(button);
    } else {
      button.click();
    }
  }

  // --- macros -------------------------------------------------------------------------------------

  var macroButton = byId("macro-button");
  var picker = byId("macro-picker");
  var filter = byId("macro-filter");
  var macroList = byId("macro-list");
  var macroEmpty = byId("macro-empty");
  var activeMacro = null;

  function visibleMacros() {
    return Array.prototype.filter.call(macroList.querySelectorAll("[data-macro-id]"), function (node) {
      return !node.hidden;
    });
  }

  function markMacro(node) {
    if (activeMacro) {
      activeMacro.setAttribute("aria-selected", "false");
      activeMacro.classList.remove("is-active");
    }
    activeMacro = node;
    if (node) {
      node.setAttribute("aria-selected", "true");
      node.classList.add("is-active");
      node.scrollIntoView({block: "nearest"});
      filter.setAttribute("aria-activedescendant", node.id);
    } else {
      filter.removeAttribute("aria-activedescendant");
    }
  }

  function filterMacros() {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    var nodes = macroList.querySelectorAll("[data-macro-id]");
    var shown = 0;
    for (var i = 0; i < nodes.length; i += 1) {
      var haystack = nodes[i].getAttribute("data-search");
      var match = words.every(function (word) {
        return haystack.indexOf(word) !== -1;
      });
      nodes[i].hidden = !match;
      shown += match ? 1 : 0;
    }
    macroEmpty.hidden = shown > 0;
    var visible = visibleMacros();
    markMacro(visible.length ? visible[0] : null);
  }

  var savedSelection = [0, 0];

  function openPicker() {
    if (macroButton.disabled) {
      return;
    }
    savedSelection = [textarea.selectionStart, textarea.selectionEnd];
    picker.hidden = false;
    macroButton.setAttribute("aria-expanded", "true");
    filter.value = "";
    filterMacros();
    filter.focus();
  }

  function closePicker(refocus) {
    picker.hidden = true;
    macroButton.setAttribute("aria-expanded", "false");
    if (refocus) {
      textarea.focus();
      textarea.setSelectionRange(savedSelection[0], savedSelection[1]);
    }
  }

  function chooseMacro(node) {
    var value = config.macros[node.getAttribute("data-macro-id")];
    closePicker(true);
    if (value !== undefined) {
      insertText(value);
    }
  }

  macroButton.addEventListener("click", function () {
    if (picker.hidden) {
      openPicker();
    } else {
      closePicker(true);
    }
  });
  filter.addEventListener("input", filterMacros);
  filter.addEventListener("keydown", function (event) {
    var visible = visibleMacros();
    var index = visible.indexOf(activeMacro);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (visible.length) {
        var step = event.key === "ArrowDown" ? 1 : -1;
        markMacro(visible[(index + step + visible.length) % visible.length]);
      }
      event.preventDefault();
    } else if (event.key === "Enter") {
      event.preventDefault(); // never submit the reply from the filter
      if (activeMacro && !activeMacro.hidden) {
        chooseMacro(activeMacro);
      }
    } else if (event.key === "Escape") {
      event.preventDefault();
      closePicker(true);
    }
  });
  macroList.addEventListener("click", function (event) {
    var node = event.target.closest("[data-macro-id]");
    if (node) {
      chooseMacro(node);
    }
  });
  macroList.addEventListener("mousemove", function (event) {
    var node = event.target.closest("[data-macro-id]");
    if (node && node !== activeMacro) {
      markMacro(node);
    }
  });
  document.addEventListener("click", function (event) {
    if (!picker.hidden && !picker.contains(event.target) && !macroButton.contains(event.target)) {
      closePicker(false);
    }
  });

  // --- @mentions ------------------------------------------------------------------------------------

  var mentionList = byId("mention-list");
  var mentionTimer = null;
  var mentionStart = -1; // where the "@" of the handle being typed is
  var mentionRequest = 0;
  var activeMention = null;

  /* The handle being typed just before the cursor: "@" at the start or after a space or bracket. */
  function typedHandle() {
    if (mode() !== "note" || textarea.selectionStart !== textarea.selectionEnd) {
      return null;
    }
    var before = textarea.value.slice(0, textarea.selectionStart);
    var match = /(^|[\s(\[{"'])@([A-Za-z0-9._%+\-]*)$/.exec(before);
    if (!match) {
      return null;
    }
    return {start: before.length - match[2].length - 1, query: match[2]};
  }

  function closeMentions() {
    window.clearTimeout(mentionTimer);
    mentionList.hidden = true;
    mentionList.textContent = "";
    mentionStart = -1;
    activeMention = null;
    textarea.removeAttribute("aria-activedescendant");
  }

  function markMention(node) {
    if (activeMention) {
      activeMention.setAttribute("aria-selected", "false");
      activeMention.classList.remove("is-active");
    }
    activeMention = node;
    if (node) {
      node.setAttribute("aria-selected", "true");
      node.classList.add("is-active");
      textarea.setAttribute("aria-activedescendant", node.id);
    }
  }

  function showPeople(people) {
    mentionList.textContent = "";
    activeMention = null;
    if (!people.length) {
      var none = document.createElement("li");
      none.className = "mention-none muted";
      none.textContent = text.no_people;
      mentionList.appendChild(none);
    }
    for (var i = 0; i < people.length; i += 1) {
      var item = document.createElement("li");
      item.id = "mention-option-" + i;
      item.className = "mention-option";
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", "false");
      item.setAttribute("data-handle", people[i].handle);
      var name = document.createElement("span");
      name.className = "mention-name";
      name.textContent = people[i].name;
      var handle = document.createElement("span");
      handle.className = "mention-handle muted";
      handle.textContent = "@" + people[i].handle;
      item.appendChild(name);
      item.appendChild(document.createTextNode(" "));
      item.appendChild(handle);
      mentionList.appendChild(item);
    }
    mentionList.hidden = false;
    var first = mentionList.querySelector("[data-handle]");
    if (first) {
      markMention(first);
    }
  }

  function suggest() {
    var typed = typedHandle();
    if (!typed) {
      closeMentions();
      return;
    }
    mentionStart = typed.start;
    mentionRequest += 1;
    var number = mentionRequest;
    window
      .fetch(config.urls.mentions + "?q=" + encodeURIComponent(typed.query), {
        credentials: "same-origin",
        headers: {Accept: "application/json"}
      })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        if (number === mentionRequest && mentionStart !== -1) {
          showPeople(data.people);
        }
      })
      .catch(function () {
        closeMentions();
      });
  }

  function chooseMention(node) {
    var start = mentionStart;
    closeMentions();
    if (start !== -1) {
      insertText("@" + node.getAttribute("data-handle") + " ", start);
    }
  }

  textarea.addEventListener("input", function () {
    window.clearTimeout(mentionTimer);
    if (!typedHandle()) {
      closeMentions();
      return;
    }
    mentionTimer = window.setTimeout(suggest, MENTION_DELAY_MS);
  });
  textarea.addEventListener("blur", function () {
    // Later, so that a click on a suggestion still counts; not if the focus came back meanwhile.
    window.setTimeout(function () {
      if (document.activeElement !== textarea) {
        closeMentions();
      }
    }, 200);
  });
  mentionList.addEventListener("mousedown", function (event) {
    var node = event.target.closest("[data-handle]");
    if (node) {
      event.preventDefault(); // keep the focus (and the cursor) in the text
      chooseMention(node);
    }
  });

  textarea.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      closeMentions();
      send();
      return;
    }
    if (mentionList.hidden) {
      return;
    }
    var options = Array.prototype.slice.call(mentionList.querySelectorAll("[data-handle]"));
    var index = options.indexOf(activeMention);
    if ((event.key === "ArrowDown" || event.key === "ArrowUp") && options.length) {
      var step = event.key === "ArrowDown" ? 1 : -1;
      markMention(options[(index + step + options.length) % options.length]);
      event.preventDefault();
    } else if ((event.key === "Enter" || event.key === "Tab") && activeMention) {
      event.preventDefault();
      chooseMention(activeMention);
    } else if (event.key === "Escape") {
      event.preventDefault();
      closeMentions();
    }
  });

  // --- attachments ----------------------------------------------------------------------------------

  function attachmentProblem() {
    if (!fileInput || !fileInput.files) {
      return "";
    }
    var files = fileInput.files;
    if (files.length > config.limits.count) {
      return text.too_many;
    }
    var total = 0;
    for (var i = 0; i < files.length; i += 1) {
      if (files[i].size > config.limits.each) {
        return text.too_big.replace("%(name)s", files[i].name);
      }
      total += files[i].size;
    }
    return total > config.limits.total ? text.too_big_total : "";
  }

  if (fileInput) {
    fileInput.addEventListener("change", function () {
      errorBox.textContent = attachmentProblem();
    });
  }

  // Checked before ticket.js (registered later) uploads: a file over the limit is not sent at all.
  form.addEventListener(
    "submit",
    function (event) {
      var problem = attachmentProblem();
      if (problem) {
        event.preventDefault();
        event.stopImmediatePropagation();
        errorBox.textContent = problem;
      }
    },
    true
  );

  // ticket.js tells when a reply or note was stored: the files went with it.
  form.addEventListener("care:sent", function () {
    if (fileInput) {
      fileInput.value = "";
    }
  });

  // --- keys -----------------------------------------------------------------------------------------

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || event.defaultPrevented || isTyping(event.target)) {
      return;
    }
    if (event.key === "m") {
      event.preventDefault();
      openPicker();
    } else if (event.key === "r" || event.key === "n") {
      event.preventDefault();
      setMode(event.key === "n" ? "note" : "reply");
      textarea.focus();
    }
  });

  setMode(mode());
})(window, document);
