// Parcours console behaviour, kept out of the pages so the console can forbid inline scripts.
// Charts are declared in HTML: an element with data-chart holding an ECharts option as JSON.
(function () {
  "use strict";

  function drawCharts(root) {
    if (!window.echarts) {
      return;
    }
    root.querySelectorAll("[data-chart]").forEach(function (element) {
      if (element.dataset.rendered) {
        return;
      }
      var chart = window.echarts.init(element);
      chart.setOption(JSON.parse(element.dataset.chart));
      element.dataset.rendered = "1";
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSwap", function (event) { drawCharts(event.target); });
})();
