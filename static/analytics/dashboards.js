// Draws every dashboard chart from the figure JSON embedded next to it, one after the
// other, replacing each "Loading…" placeholder once Plotly has rendered the chart.
// A drawn chart's container gets data-rendered="true" (browser tests wait for it).
"use strict";

(function () {
  function draw(container) {
    var source = document.getElementById(container.dataset.figure);
    var placeholder = container.querySelector(".chart-loading");
    var figure = JSON.parse(source.textContent);
    var config = { responsive: true, displaylogo: false };
    return Plotly.newPlot(container, figure.data, figure.layout || {}, config).then(
      function () {
        if (placeholder) placeholder.remove();
        container.removeAttribute("aria-busy");
        container.dataset.rendered = "true";
      },
      function (error) {
        container.removeAttribute("aria-busy");
        container.dataset.rendered = "error";
        if (placeholder) placeholder.textContent = "This chart could not be drawn: " + error;
      }
    );
  }

  function drawAll() {
    var containers = Array.prototype.slice.call(document.querySelectorAll("[data-chart][data-figure]"));
    // One at a time, yielding between charts, so the page stays responsive and the
    // placeholders of charts still to come stay visible.
    containers.reduce(function (previous, container) {
      return previous.then(function () {
        return new Promise(function (resolve) { window.requestAnimationFrame(resolve); });
      }).then(function () { return draw(container); });
    }, Promise.resolve());
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
