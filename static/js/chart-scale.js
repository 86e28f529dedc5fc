// The volume chart's arithmetic: totals per severity, a round top for the y axis, and where
// every bar, grid line and label goes. No DOM here: Node's test runner imports it.
import { parseTs } from './format.js';
import { SEVERITIES } from './vocabulary.js';

export const PADDING = Object.freeze({ left: 34, right: 4, top: 6, bottom: 18 });
const MIN_WIDTH = 200;
const MIN_HEIGHT = 100;
const LABEL_SPACING = 70; // px between bucket labels at least

// The smallest 1, 2, 2.5 or 5 x 10^n at or above `value` (4 below that): round axis labels.
export function niceCeil(value) {
  if (value <= 0) return 0;
  if (value <= 4) return 4;
  const exp = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= value) return m * exp;
  return 10 * exp;
}

// "per hour", "per 15 min": one bucket's width in words.
export function bucketLabel(seconds) {
  if (seconds % 86400 === 0) return seconds === 86400 ? 'day' : `${seconds / 86400} days`;
  if (seconds % 3600 === 0) return seconds === 3600 ? 'hour' : `${seconds / 3600} hours`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

const countOf = (bucket, severity) => Number(bucket[severity]) || 0;
export const bucketTotal = (bucket) => SEVERITIES.reduce((acc, s) => acc + countOf(bucket, s), 0);

// Signals per severity over all buckets, the tallest bucket and the sum of everything.
export function volumeTotals(buckets) {
  const totals = Object.fromEntries(SEVERITIES.map((s) => [s, 0]));
  let max = 0;
  for (const b of buckets) {
    for (const s of SEVERITIES) totals[s] += countOf(b, s);
    max = Math.max(max, bucketTotal(b));
  }
  const grand = SEVERITIES.reduce((acc, s) => acc + totals[s], 0);
  return { totals, max, grand };
}

// A bucket's start and end in ms since the epoch.
export function bucketSpan(bucket, bucketSeconds) {
  const start = parseTs(bucket.start);
  return { start, end: start + (Number(bucketSeconds) || 3600) * 1000 };
}

// Everything the chart draws for `buckets` on a canvas of this size, in SVG user units: grid
// lines with their labels (top * fraction), one slot per bucket with its stacked segments
// (most urgent at the bottom), and which buckets get a time label on the x axis.
export function chartLayout(buckets, canvasWidth, canvasHeight) {
  const width = Math.max(canvasWidth, MIN_WIDTH);
  const height = Math.max(canvasHeight, MIN_HEIGHT);
  const plotW = width - PADDING.left - PADDING.right;
  const plotH = height - PADDING.top - PADDING.bottom;
  const base = PADDING.top + plotH;
  const { max } = volumeTotals(buckets);
  const top = niceCeil(max);

  // Lines at 0, half and the top; labelled only when there is something to count.
  const grid = [0, 0.5, 1].map((frac) => {
    const y = base - frac * plotH;
    return {
      x1: PADDING.left, x2: width - PADDING.right, y: Math.round(y) + 0.5,
      label: top > 0 && frac > 0 ? Math.round(top * frac) : null, labelX: PADDING.left - 6, labelY: y + 3.5,
    };
  });

  const n = buckets.length;
  const slot = n ? plotW / n : 0;
  const gap = slot > 6 ? Math.min(2, slot * 0.2) : 0;
  const barWidth = Math.max(slot - gap, 0.8);
  const bars = buckets.map((b, index) => {
    const x = PADDING.left + index * slot;
    let y = base;
    const segments = [];
    for (const severity of SEVERITIES) {
      const count = countOf(b, severity);
      if (!count || !top) continue;
      const h = (count / top) * plotH;
      y -= h;
      segments.push({ severity, x: x + gap / 2, y, width: barWidth, height: Math.max(h, 1) });
    }
    return { index, x, width: slot, segments };
  });

  const labelEvery = n ? Math.max(1, Math.ceil(n / Math.max(2, Math.floor(plotW / LABEL_SPACING)))) : 1;
  const labels = [];
  for (let index = 0; index < n; index += labelEvery) {
    labels.push({
      index,
      x: index === 0 ? PADDING.left : PADDING.left + index * slot + slot / 2,
      y: height - 4,
      anchor: index === 0 ? 'start' : 'middle',
    });
  }

  return { width, height, plotTop: PADDING.top, plotHeight: plotH, top, grid, bars, labels };
}
