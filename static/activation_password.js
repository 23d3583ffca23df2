/* Ticks the password rules as the person types (the server's check is what counts; the page works without). */
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
  function update() {
    items.forEach(function (li) {
      var check = checks[li.getAttribute("data-rule")];
      var ok = check ? check(input.value) : false;
      li.classList.toggle("ok", ok);
      li.setAttribute("aria-label", li.textContent + (ok ? " : respecté" : " : non respecté"));
    });
  }
  input.addEventListener("input", update);
  update();
})();
