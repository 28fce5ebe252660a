// The payment code page: counts the code's validity down and fetches a new page when it ends.
// Without this script the page still renews itself (meta refresh) and says how long it is valid.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("countdown");
    if (!el) return;
    var left = parseInt(el.getAttribute("data-seconds"), 10);
    if (!(left > 0)) return;
    var end = Date.now() + left * 1000;
    function tick() {
      var s = Math.max(0, Math.round((end - Date.now()) / 1000));
      el.textContent = s + " 秒后自动刷新";
      if (s === 0) {
        window.location.reload();
        return;
      }
      setTimeout(tick, 1000);
    }
    tick();
  });
})();
