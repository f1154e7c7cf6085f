/* The proposal form's help, on top of a form that works without it (docs/form.md):
   - a live character count beside each limited field,
   - the error summary focused when the page opens, its links focusing their field,
   - a confirmation page sent once, however often its button is pressed. */
(function () {
  "use strict";

  // Count as the server does (Python's len after web.forms._newlines): code
  // points, a line break as one. String.length would count an emoji as two.
  function count(text) {
    return Array.from(text.replace(/\r\n?/g, "\n")).length;
  }

  function format(n) {
    return n.toLocaleString("ja-JP");
  }

  function counterText(n, max) {
    var text = "（いま" + format(n) + "文字";
    if (n > max) {
      text += "：" + format(n - max) + "文字多すぎます";
    }
    return text + "）";
  }

  var status = document.getElementById("counter-status");
  var pause = null;

  // The visible count follows every key; a screen reader hears it once typing pauses.
  function announce(label, n, max) {
    if (!status) {
      return;
    }
    window.clearTimeout(pause);
    pause = window.setTimeout(function () {
      status.textContent = label + "、" + format(max) + "文字以内" + counterText(n, max);
    }, 1000);
  }

  document.querySelectorAll("[data-counter-for]").forEach(function (counter) {
    var field = document.getElementById(counter.getAttribute("data-counter-for"));
    var max = parseInt(counter.getAttribute("data-max"), 10);
    if (!field || !max) {
      return;
    }
    var label = document.querySelector('label[for="' + field.id + '"]');
    function update(spoken) {
      var n = count(field.value);
      counter.textContent = counterText(n, max);
      counter.classList.toggle("over", n > max);
      if (spoken) {
        announce(label ? label.textContent : "", n, max);
      }
    }
    field.addEventListener("input", function () { update(true); });
    update(false);
  });

  var summary = document.getElementById("error-summary");
  if (summary) {
    summary.focus();
    summary.addEventListener("click", function (event) {
      var link = event.target.closest("a[href^='#']");
      var target = link && document.getElementById(link.getAttribute("href").slice(1));
      if (!target) {
        return;
      }
      // A fragment only scrolls: focus the field, and show its label above it.
      event.preventDefault();
      var label = document.querySelector('label[for="' + target.id + '"]') || target;
      var legend = target.closest("fieldset") && target.type === "radio" ? target.closest("fieldset") : label;
      legend.scrollIntoView();
      target.focus({ preventScroll: true });
    });
  }

  // Sent once: a second press (a double click) is ignored here, and the server
  // keeps one proposal per confirmation page anyway. The button is not disabled:
  // a disabled button's name and value would not be sent.
  document.querySelectorAll("form[data-once]").forEach(function (form) {
    var sent = false;
    // Back to this page from the browser's cache: a press must do something again
    // (the server then shows the receipt of the first).
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) {
        sent = false;
        form.removeAttribute("aria-busy");
      }
    });
    form.addEventListener("submit", function (event) {
      if (sent) {
        event.preventDefault();
        return;
      }
      sent = true;
      form.setAttribute("aria-busy", "true");
    });
  });
})();
