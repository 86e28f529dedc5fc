// The signal-volume chart: bars per time bucket stacked by severity, the counts of a bucket
// on hover, and a click that lists that bucket's signals in the queue.
import { advice, api } from './api.js';
import { bucketLabel, bucketSpan, bucketTotal, chartLayout, volumeTotals } from './chart-scale.js';
import { $, $$, el, setText, svg } from './dom.js';
import * as filters from './filters.js';
import { fmtBucketLabel, fmtNum, fmtUtc, isoSeconds, parseTs } from './format.js';
import { volumeQuery } from './query.js';
import { SEVERITIES } from './vocabulary.js';

let volume = null; // the last answer of GET /signals/volume

function setReadout(index) {
  const readout = $('#chart-readout');
  for (const hit of $$('.bucket-hit.is-active')) hit.classList.remove('is-active');
  if (!volume || index < 0 || index >= volume.buckets.length) {
    const how = window.matchMedia('(hover: none)').matches ? 'Tap a bar to list its signals.' : 'Hover a bar for its counts; click it to list those signals.';
    readout.replaceChildren(el('span', { class: 'muted', text: how }));
    return;
  }
  const hit = $(`.bucket-hit[data-index="${index}"]`);
  if (hit) hit.classList.add('is-active');
  const b = volume.buckets[index];
  const { start, end } = bucketSpan(b, volume.bucket_seconds);
  const total = bucketTotal(b);
  const parts = SEVERITIES.filter((s) => Number(b[s]) > 0).map((s) => `${b[s]} ${s}`);
  readout.replaceChildren(
    el('b', { text: `${fmtUtc(start, false)} – ${fmtUtc(end, false).slice(11)}` }),
    `  ·  ${fmtNum(total)} signal${total === 1 ? '' : 's'}${parts.length ? `: ${parts.join(', ')}` : ''}`,
  );
}

function zoomToBucket(index) {
  if (!volume) return;
  const { start, end } = bucketSpan(volume.buckets[index], volume.bucket_seconds);
  filters.set({ window: 'custom', since: isoSeconds(start), until: isoSeconds(end) }, { chart: false });
  $('#queue-panel').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

function render() {
  const canvas = $('#chart-canvas');
  if (!volume) return;
  const { buckets } = volume;
  const bucketSeconds = Number(volume.bucket_seconds) || 3600;
  const { totals, grand } = volumeTotals(buckets);
  $('#volume-legend').replaceChildren(...SEVERITIES.map((s) => el('span', { class: `legend-item sev-${s}` }, s, ' ', el('b', { text: fmtNum(totals[s]) }))));
  setText('volume-meta', `${fmtNum(grand)} signals · per ${bucketLabel(bucketSeconds)} · event time, UTC`);
  setReadout(-1);

  const layout = chartLayout(buckets, canvas.clientWidth, canvas.clientHeight);
  const { width, height } = layout;
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `Signal volume, ${grand} signals` });
  for (const line of layout.grid) {
    root.append(svg('line', { class: 'grid-line', x1: line.x1, x2: line.x2, y1: line.y, y2: line.y }));
    if (line.label !== null) {
      const label = svg('text', { class: 'axis-label', x: line.labelX, y: line.labelY, 'text-anchor': 'end' });
      label.textContent = fmtNum(line.label);
      root.append(label);
    }
  }
  for (const bar of layout.bars) {
    for (const s of bar.segments) {
      root.append(svg('rect', { class: `bar sev-${s.severity}`, x: s.x.toFixed(2), y: s.y.toFixed(2), width: s.width.toFixed(2), height: s.height.toFixed(2) }));
    }
    const hit = svg('rect', { class: 'bucket-hit', x: bar.x.toFixed(2), y: layout.plotTop, width: bar.width.toFixed(2), height: layout.plotHeight, 'data-index': bar.index });
    hit.addEventListener('mouseenter', () => setReadout(bar.index));
    hit.addEventListener('mouseleave', () => setReadout(-1));
    hit.addEventListener('click', () => zoomToBucket(bar.index));
    root.append(hit);
  }
  for (const mark of layout.labels) {
    const label = svg('text', { class: 'axis-label', x: mark.x.toFixed(1), y: mark.y, 'text-anchor': mark.anchor });
    label.textContent = fmtBucketLabel(parseTs(buckets[mark.index].start), bucketSeconds);
    root.append(label);
  }

  const children = [root];
  if (grand === 0) children.push(el('div', { class: 'chart-empty', text: 'No signals in this window.' }));
  canvas.replaceChildren(...children);
}

// Resolves to false when the volume could not be loaded.
export async function load() {
  try {
    const data = await api('GET', `/signals/volume${volumeQuery(filters.current())}`);
    volume = data && Array.isArray(data.buckets) ? data : { bucket_seconds: 3600, buckets: [] };
  } catch (err) {
    if (err.status === 401) return false;
    volume = null;
    $('#chart-canvas').replaceChildren(el('div', { class: 'chart-empty', text: `Could not load the volume. ${advice(err)}` }));
    return false;
  }
  render();
  return true;
}

export function init() {
  if (!('ResizeObserver' in window)) return;
  let last = 0;
  new ResizeObserver((entries) => {
    const width = Math.round(entries[0].contentRect.width);
    if (width !== last) { last = width; if (volume) render(); }
  }).observe($('#chart-canvas'));
}
