/* Ticks the password rules as the person types. The server's check when the form is sent is what counts and
   the page works without this script; the data come from the server's policy (idp.core.passwords): the page's
   data-checklist (minimum length, the words and years to avoid for this person) and the cached common-password
   list (data-common). The tests below follow idp/core/passwords/policy.py and blocklist.py step by step. */
(function () {
  "use strict";
  var input = document.getElementById("mot_de_passe");
  var list = document.getElementById("regles");
  if (!input || !list) { return; }
  var data = JSON.parse(list.getAttribute("data-checklist") || "{}");
  var common = null;  // the server's list and tables, once loaded
  var specials = "!?@#$(){}[]_&=+-%*<>£/;:,.µ\u03bc";

  function chars(text) { return Array.from(text); }

  /* identifiers.fold_text: lower case, ligatures spelt out, accents removed. */
  function fold(text, letters) {
    var lowered = chars(text.toLowerCase()).map(function (c) { return letters[c] || c; }).join("");
    return lowered.normalize("NFKD").replace(/\p{M}/gu, "");
  }

  function deleet(text) {
    var mapped = chars(text).map(function (c) { return common.leet[c] || c; }).join("");
    if (mapped.indexOf("1") < 0) { return [mapped]; }
    return common.leet_one.map(function (l) { return mapped.split("1").join(l); });
  }

  function isRun(text) {
    var cs = chars(text);
    if (cs.length < common.min_run) { return false; }
    var steps = {};
    for (var i = 1; i < cs.length; i++) { steps[cs[i].codePointAt(0) - cs[i - 1].codePointAt(0)] = true; }
    var keys = Object.keys(steps);
    return keys.length === 1 && ["-1", "0", "1"].indexOf(keys[0]) >= 0;
  }

  function isRepeatedUnit(text, listed) {
    var cs = chars(text);
    if (cs.length < common.min_run) { return false; }
    for (var size = 1; size <= Math.floor(cs.length / 2); size++) {
      var unit = cs.slice(0, size).join("");
      if (cs.length % size === 0 && unit.repeat(cs.length / size) === text && (size <= 2 || listed.has(unit))) {
        return true;
      }
    }
    return false;
  }

  function isTrivial(part, listed) {
    return chars(part).length <= 2 || listed.has(part) || isRun(part) || isRepeatedUnit(part, listed);
  }

  /* blocklist.is_common */
  function isCommon(password) {
    var compact = fold(password, common.letters).replace(/[\s\-_.]+/gu, "");
    if (!compact) { return false; }
    var listed = common.set;
    var letters = chars(compact).filter(function (c) { return /\p{L}/u.test(c); }).join("");
    var digits = chars(compact).filter(function (c) { return /\p{Nd}/u.test(c); }).join("");
    if (isTrivial(letters, listed) && isTrivial(digits, listed)) { return true; }
    var trailing = compact.replace(/[^a-z]+$/, "");
    var cores = [compact, trailing, compact.replace(/^[^a-z]+/, ""), trailing.replace(/^[^a-z]+/, "")];
    var forms = [];
    cores.forEach(function (core) { forms.push(core); forms.push.apply(forms, deleet(core)); });
    return forms.some(function (f) { return f && (listed.has(f) || isRun(f) || isRepeatedUnit(f, listed)); });
  }

  /* policy.contains_context */
  function containsContext(password) {
    var folded = fold(password, common.letters);
    if (data.identifier && folded.indexOf(data.identifier) >= 0) { return true; }
    if (data.years.some(function (y) { return folded.indexOf(y) >= 0; })) { return true; }
    var readings = [folded].concat(deleet(folded)).map(function (r) { return r.replace(/[^a-z]+/g, ""); });
    return data.words.some(function (w) { return readings.some(function (r) { return r.indexOf(w) >= 0; }); });
  }

  var checks = {
    too_short: function (v) { return chars(v).length >= (data.min || 8); },
    no_upper: function (v) { return /\p{Lu}/u.test(v); },
    no_lower: function (v) { return /\p{Ll}/u.test(v); },
    no_digit: function (v) { return /\p{Nd}/u.test(v); },
    no_special: function (v) {
      return chars(v).some(function (c) { return specials.indexOf(c) >= 0 || !/[\p{L}\p{N}\s]/u.test(c); });
    },
    common: function (v) { return common ? v !== "" && !isCommon(v) : null; },
    context: function (v) { return common && data.words ? v !== "" && !containsContext(v) : null; }
  };
  var items = list.querySelectorAll("li[data-rule]");
  items.forEach(function (li) { li.setAttribute("data-text", li.textContent); });
  function update() {
    var value = input.value.normalize("NFKC");
    items.forEach(function (li) {
      var check = checks[li.getAttribute("data-rule")];
      var result = check ? check(value) : null;
      var state = result === null ? "later" : (result ? "ok" : "ko");
      li.classList.toggle("ok", state === "ok");
      li.setAttribute("data-state", state);
      li.setAttribute("aria-label", li.getAttribute("data-text") + " : " + list.getAttribute("data-" + state));
    });
  }
  input.addEventListener("input", update);
  update();
  var url = list.getAttribute("data-common");
  if (url && window.fetch) {
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.ok ? r.json() : null; }).then(function (c) {
      if (!c) { return; }
      c.set = new Set(c.list);
      common = c;
      update();
    }).catch(function () { /* the list stays "vérifié à l'envoi" */ });
  }
})();
