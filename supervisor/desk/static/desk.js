// The desk's small behaviours (no inline scripts: the pages carry none).
// - The navigation row scrolls sideways on a phone: bring the current page's entry into view.
// - A wide table's scroll hint shows only while its table is wider than its box.
(function () {
  "use strict";
  function hints() {
    document.querySelectorAll(".scroll-hint").forEach(function (hint) {
      var box = hint.nextElementSibling;
      if (!box || !box.classList.contains("scroll")) return;
      hint.classList.toggle("fits", box.scrollWidth <= box.clientWidth + 1);
    });
  }
  function ready() {
    var on = document.querySelector("header.top nav a.on");
    if (on && on.scrollIntoView) on.scrollIntoView({ block: "nearest", inline: "center" });
    hints();
  }
  document.addEventListener("DOMContentLoaded", ready);
  window.addEventListener("resize", hints);
  document.addEventListener("htmx:afterSwap", hints);
})();
