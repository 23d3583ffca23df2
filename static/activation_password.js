/* Ticks the password rules as the person types (the server's check is what counts; the page works without).
   "common" and "context" need the server's lists: they are checked when the form is sent. */
(function () {
  "use strict";
  var input = document.getElementById("mot_de_passe");
  var list = document.getElementById("regles");
  if (!input || !list) { return; }
  var specials = "!?@#$(){}[]_&=+-%*<>£/;:,.µ";
  var checks = {
    too_short: function (v) { return Array.from(v).length >= parseInt(list.getAttribute("data-min") || "8", 10); },
    no_upper: function (v) { return /\p{Lu}/u.test(v); },
    no_lower: function (v) { return /\p{Ll}/u.test(v); },
    no_digit: function (v) { return /\p{Nd}/u.test(v); },
    no_special: function (v) {
      return Array.from(v).some(function (c) { return specials.indexOf(c) >= 0 || !/[\p{L}\p{N}\s]/u.test(c); });
    }
  };
  var items = list.querySelectorAll("li[data-rule]");
  items.forEach(function (li) { li.setAttribute("data-text", li.textContent); });
  function update() {
    items.forEach(function (li) {
      var check = checks[li.getAttribute("data-rule")];
      var state = check ? (check(input.value) ? "ok" : "ko") : "later";
      li.classList.toggle("ok", state === "ok");
      li.setAttribute("aria-label", li.getAttribute("data-text") + " : " + list.getAttribute("data-" + state));
    });
  }
  input.addEventListener("input", update);
  update();
})();
