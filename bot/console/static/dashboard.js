// Dashboard charts (ECharts, vendored). Each bar links to the tickets behind it.
(function () {
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var charts = [];
  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var spec = data[el.dataset.chart];
    if (!spec) return;
    var chart = echarts.init(el, null, { renderer: "svg" });
    var horizontal = el.dataset.chart === "station" || el.dataset.chart === "category";
    var category = { type: "category", data: spec.labels, axisLabel: { fontSize: 15, color: "#111", interval: 0,
      width: horizontal ? 150 : 90, overflow: "truncate" }, inverse: horizontal };
    var value = { type: "value", minInterval: 1, axisLabel: { fontSize: 14, color: "#111" } };
    chart.setOption({
      title: { text: spec.title, textStyle: { fontSize: 18, color: "#111" } },
      tooltip: { trigger: "axis", textStyle: { fontSize: 16 } },
      grid: { left: horizontal ? 160 : 48, right: 24, top: 48, bottom: horizontal ? 24 : 60 },
      xAxis: horizontal ? value : category,
      yAxis: horizontal ? category : value,
      series: [{ type: "bar", data: spec.values, itemStyle: { color: "#1f5fa8" }, cursor: "pointer",
        label: { show: true, position: horizontal ? "right" : "top", fontSize: 14, color: "#111" } }]
    });
    chart.on("click", function (params) {
      var url = spec.links[params.dataIndex];
      if (url) window.location.href = url;
    });
    el.dataset.ready = "1";
    charts.push(chart);
  });
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
})();
