// The console's only script: behaviour that would otherwise need inline handlers, which the
// Content-Security-Policy forbids.
(function () {
  "use strict";
  document.querySelectorAll("[data-console-print]").forEach(function (button) {
    button.addEventListener("click", function () {
      window.print();
    });
  });
})();
