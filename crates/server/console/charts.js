// Small SVG charts drawn from the API's numbers. Each carries a text summary for screen
// readers and its numbers in a table under "Show the numbers".

import { h, table } from './ui.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 480;
const H = 160;
const PAD = { left: 44, right: 8, top: 10, bottom: 22 };

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const fmt = (v) => (Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(2));
const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

function frame(title, max, labels) {
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const g = svg('g', {});
  for (const f of [0, 0.5, 1]) {
    const y = PAD.top + plotH * (1 - f);
    g.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: 'grid' }));
    g.append(svg('text', { x: PAD.left - 4, y: y + 4, 'text-anchor': 'end', class: 'axis' }, fmt(max * f)));
  }
  if (labels.length) {
    g.append(svg('text', { x: PAD.left, y: H - 4, class: 'axis' }, labels[0]));
    g.append(svg('text', { x: W - PAD.right, y: H - 4, 'text-anchor': 'end', class: 'axis' }, labels[labels.length - 1]));
  }
  return { g, plotW, plotH };
}

function wrap(title, summary, chart, rows, columns) {
  return h('figure', { class: 'chart' },
    h('figcaption', {}, title),
    chart,
    h('details', {}, h('summary', {}, `Show the numbers: ${title}`), table(title, columns, rows)),
    h('p', { class: 'visually-hidden' }, summary));
}

/** A line over time: `points` are {at (ms), value (number|null)}. */
export function lineChart(title, unit, points) {
  const values = points.map((p) => p.value).filter((v) => v !== null && v !== undefined);
  const max = niceMax(Math.max(0, ...values));
  const { g, plotW, plotH } = frame(title, max, points.length ? [clock(points[0].at), clock(points[points.length - 1].at)] : []);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title, class: 'plot' }, g);
  const n = Math.max(points.length - 1, 1);
  let d = '';
  points.forEach((p, i) => {
    if (p.value === null || p.value === undefined) return;
    const x = PAD.left + (plotW * i) / n;
    const y = PAD.top + plotH * (1 - p.value / max);
    d += `${d ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`;
  });
  if (d) root.append(svg('path', { d, class: 'line' }));
  const last = values.length ? values[values.length - 1] : null;
  const summary = values.length
    ? `${title}: ${values.length} readings, latest ${fmt(last)} ${unit}, highest ${fmt(Math.max(...values))} ${unit}.`
    : `${title}: no readings yet.`;
  const rows = points.slice(-30).reverse();
  return wrap(title, summary, values.length ? root : h('p', { class: 'empty' }, 'No readings yet: the chart fills as the server works.'),
    rows, [['Time', (p) => clock(p.at)], [`Value (${unit})`, (p) => (p.value === null ? '—' : fmt(p.value))]]);
}

/** Stacked bars per interval: `buckets` are {label, parts: {name: count}}; `kinds` name the
 * parts in order with their CSS class. */
export function barChart(title, buckets, kinds) {
  const totals = buckets.map((b) => kinds.reduce((s, [k]) => s + (b.parts[k] || 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const { g, plotW, plotH } = frame(title, max, buckets.length ? [buckets[0].label, buckets[buckets.length - 1].label] : []);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title, class: 'plot' }, g);
  const bw = plotW / Math.max(buckets.length, 1);
  buckets.forEach((b, i) => {
    let y = PAD.top + plotH;
    for (const [k, cls] of kinds) {
      const v = b.parts[k] || 0;
      if (!v) continue;
      const bh = (plotH * v) / max;
      y -= bh;
      root.append(svg('rect', { x: PAD.left + i * bw + 1, y, width: Math.max(bw - 2, 1), height: bh, class: cls },
        svg('title', {}, `${b.label}: ${v} ${k}`)));
    }
  });
  const sums = kinds.map(([k]) => `${buckets.reduce((s, b) => s + (b.parts[k] || 0), 0)} ${k}`);
  const legend = h('ul', { class: 'legend' }, kinds.map(([k, cls]) => h('li', {}, h('span', { class: `key ${cls}`, 'aria-hidden': 'true' }), k)));
  return h('div', {}, wrap(title, `${title}: ${sums.join(', ')}.`, root, buckets.filter((b, i) => totals[i] > 0).reverse(),
    [['From', (b) => b.label], ...kinds.map(([k]) => [k, (b) => String(b.parts[k] || 0)])]), legend);
}
