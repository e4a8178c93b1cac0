// Draws the Insight pages' charts with Chart.js (vendored: chart.umd.min.js, MIT, chart.LICENSE.md).
// Each <canvas data-chart="..."> carries its chart as JSON written by web/insight_pages.py; nothing
// is evaluated, so the pages keep their Content-Security-Policy of script-src 'self'.
(function () {
  "use strict";
  var COLOURS = ["#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];

  function draw(canvas) {
    var spec;
    try {
      spec = JSON.parse(canvas.getAttribute("data-chart"));
    } catch (error) {
      return;
    }
    spec.datasets.forEach(function (set, index) {
      var colour = COLOURS[index % COLOURS.length];
      set.backgroundColor = colour;
      set.borderColor = colour;
      set.spanGaps = true;
    });
    new window.Chart(canvas, {
      type: spec.type,
      data: { labels: spec.labels, datasets: spec.datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: spec.datasets.length > 1, position: "bottom" } },
        scales: { y: { beginAtZero: true } },
      },
    });
  }

  function start() {
    if (!window.Chart) return;
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
