// Charts drawn as SVG in the page, each mark carrying its value (data-value and a <title>),
// so what a chart shows can be read by assistive technology and by tests.

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

/**
 * Stacked bars, one per bucket: `buckets` = [{label, values: {series: n}}], `series` =
 * [{key, name, className}].
 */
export function stackedBars(buckets, series, { testid = "chart", height = 160, title = "", max: fixedMax, className = "chart" } = {}) {
  const width = Math.max(buckets.length * 14, 280);
  const max = fixedMax ?? Math.max(1, ...buckets.map((b) => series.reduce((sum, s) => sum + (b.values[s.key] || 0), 0)));
  const step = width / Math.max(buckets.length, 1);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height + 4}`, role: "img", "data-testid": testid,
    "aria-label": title, preserveAspectRatio: "none", class: className });
  buckets.forEach((bucket, i) => {
    let y = height;
    for (const s of series) {
      const value = bucket.values[s.key] || 0;
      const h = (value / max) * height;
      y -= h;
      const bar = svg("rect", { x: i * step + 1, y, width: Math.max(step - 2, 1), height: h,
        class: `mark ${s.className}`, "data-series": s.key, "data-value": value, "data-bucket": bucket.label },
      svg("title", {}, document.createTextNode(`${bucket.label} — ${s.name}: ${value}`)));
      chart.append(bar);
    }
  });
  return chart;
}
