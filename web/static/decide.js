// Deciding with the keyboard on a proposal page (progressive: every button
// works without this script). j/k move between suggestions, a/r/d decide the
// focused one (採用 / 見送り / 保留), x rejects every suggestion still
// undecided, u undoes, n opens the next 未判断 proposal. A decision is sent
// with fetch and answered as JSON, so the page does not reload; once the
// proposal is 判断済み the next one opens by itself.
(function () {
  "use strict";
  var cards = Array.prototype.slice.call(document.querySelectorAll("[data-testid=suggestion]"));
  var status = document.getElementById("keyboard-status");
  if (!document.getElementById("keyboard-help")) return;
  var current = 0;
  var busy = false;

  function say(text) { if (status) status.textContent = text; }
  function focusCard(i) {
    if (!cards.length) return;
    current = Math.max(0, Math.min(cards.length - 1, i));
    cards.forEach(function (c, n) { c.classList.toggle("focused", n === current); });
    cards[current].focus();
  }
  function setVersion(v) {
    document.querySelectorAll("input[name=version]").forEach(function (el) { el.value = v; });
  }
  function undecided(card) { return !card.querySelector("[data-testid=current-verdict]"); }
  function mark(programId, verdict) {
    var card = document.querySelector("[data-program-id='" + programId + "']");
    if (!card) return;
    var label = {accepted: "採用", rejected: "見送り", deferred: "保留"}[verdict] || verdict;
    var badge = card.querySelector("[data-testid=current-verdict]");
    if (!badge) {
      badge = document.createElement("span");
      badge.setAttribute("data-testid", "current-verdict");
      card.querySelector("h3").appendChild(badge);
    }
    badge.className = "badge badge-" + verdict;
    badge.textContent = label;
  }
  function post(form, extra) {
    if (busy) return;
    busy = true;
    var body = new FormData(form);
    Object.keys(extra || {}).forEach(function (k) { body.set(k, extra[k]); });
    fetch(form.action, {method: "POST", body: body, headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.json().then(function (data) { return {ok: r.ok, data: data}; }); })
      .then(function (res) {
        busy = false;
        if (!res.ok) { say(res.data.message || "記録できませんでした。"); return; }
        setVersion(res.data.version);
        res.data.decided.forEach(function (d) { mark(d.program_id, d.verdict); });
        if (res.data.reviewed) {
          say("判断済みになりました。次の提案を開きます。");
          window.location.assign(res.data.next);
          return;
        }
        say("記録しました。");
        var next = cards.findIndex(function (c, n) { return n > current && undecided(c); });
        if (next < 0) next = cards.findIndex(undecided);
        if (next >= 0) focusCard(next);
      })
      .catch(function () { busy = false; say("通信できませんでした。ボタンから操作してください。"); });
  }
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey || (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)))) return;
    var card = cards[current];
    var verdicts = {a: "accepted", r: "rejected", d: "deferred"};
    if (e.key === "j" || e.key === "ArrowDown") { focusCard(current + 1); }
    else if (e.key === "k" || e.key === "ArrowUp") { focusCard(current - 1); }
    else if (verdicts[e.key] && card) { post(card.querySelector("form.decision"), {verdict: verdicts[e.key]}); }
    else if (e.key === "x") { var rest = document.getElementById("reject-rest"); if (rest) post(rest); }
    else if (e.key === "u") { var undo = document.getElementById("undo-form"); if (undo) undo.submit(); }
    else if (e.key === "n") { window.location.assign(document.getElementById("keyboard-help").dataset.next); }
    else { return; }
    e.preventDefault();
  });
  var first = cards.findIndex(undecided);
  focusCard(first >= 0 ? first : 0);
})();
