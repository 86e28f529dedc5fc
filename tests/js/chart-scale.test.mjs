// chart-scale.js: the volume chart's y axis, bars and labels, computed without a browser.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  PADDING, bucketLabel, bucketSpan, bucketTotal, chartLayout, niceCeil, volumeTotals,
} from '../../static/js/chart-scale.js';

const hour = (h, counts = {}) => ({
  start: `2026-11-03T${String(h).padStart(2, '0')}:00:00Z`, critical: 0, high: 0, medium: 0, low: 0, info: 0, ...counts,
});

describe('the y axis', () => {
  test('niceCeil rounds up to 1, 2, 2.5 or 5 times a power of ten', () => {
    const cases = [[0, 0], [-3, 0], [1, 4], [4, 4], [5, 5], [6, 10], [11, 20], [21, 25], [26, 50],
      [51, 100], [100, 100], [101, 200], [240, 250], [999, 1000], [1001, 2000], [37000, 50000]];
    for (const [value, top] of cases) assert.equal(niceCeil(value), top, String(value));
  });

  test('niceCeil is never below its value', () => {
    for (let value = 1; value < 5000; value += 7) assert.ok(niceCeil(value) >= value, String(value));
  });
});

describe('buckets', () => {
  test('bucketLabel names the width', () => {
    const cases = [[60, '1 min'], [300, '5 min'], [3600, 'hour'], [10800, '3 hours'], [86400, 'day'],
      [604800, '7 days'], [90, '90 s']];
    for (const [seconds, text] of cases) assert.equal(bucketLabel(seconds), text);
  });

  test('bucketTotal and volumeTotals count every severity, ignoring junk', () => {
    const buckets = [hour(0, { critical: 1, high: 2 }), hour(1, { info: 7, low: 'x', medium: null }), hour(2)];
    assert.equal(bucketTotal(buckets[0]), 3);
    assert.deepEqual(volumeTotals(buckets), {
      totals: { critical: 1, high: 2, medium: 0, low: 0, info: 7 }, max: 7, grand: 10,
    });
    assert.deepEqual(volumeTotals([]), { totals: { critical: 0, high: 0, medium: 0, low: 0, info: 0 }, max: 0, grand: 0 });
  });

  test('bucketSpan from a nanosecond start with an offset', () => {
    const span = bucketSpan({ start: '2026-11-03T01:00:00.000000000+01:00' }, 900);
    assert.deepEqual(span, { start: Date.parse('2026-11-03T00:00:00Z'), end: Date.parse('2026-11-03T00:15:00Z') });
    assert.equal(bucketSpan({ start: '2026-11-03T00:00:00Z' }, undefined).end, Date.parse('2026-11-03T01:00:00Z'));
  });
});

describe('chartLayout', () => {
  test('a canvas too small (or not laid out) is drawn at the minimum size', () => {
    const layout = chartLayout([], 0, 0);
    assert.deepEqual([layout.width, layout.height], [200, 100]);
    assert.equal(layout.plotHeight, 100 - PADDING.top - PADDING.bottom);
  });

  test('grid lines at 0, half and the top, labelled with round numbers', () => {
    const layout = chartLayout([hour(0, { high: 7 }), hour(1, { low: 3 })], 600, 200);
    assert.equal(layout.top, 10);
    assert.deepEqual(layout.grid.map((g) => g.label), [null, 5, 10]);
    const plotH = 200 - PADDING.top - PADDING.bottom;
    assert.deepEqual(layout.grid.map((g) => g.y), [PADDING.top + plotH, PADDING.top + plotH / 2, PADDING.top].map((y) => Math.round(y) + 0.5));
    assert.ok(layout.grid.every((g) => g.x1 === PADDING.left && g.x2 === 600 - PADDING.right));
  });

  test('an empty window has no axis labels and no bars', () => {
    const layout = chartLayout([hour(0), hour(1)], 600, 200);
    assert.equal(layout.top, 0);
    assert.deepEqual(layout.grid.map((g) => g.label), [null, null, null]);
    assert.ok(layout.bars.every((b) => b.segments.length === 0));
  });

  test('bars stack from the most urgent at the bottom and fill the plot in proportion', () => {
    const layout = chartLayout([hour(0, { critical: 2, high: 1, info: 1 }), hour(1, { medium: 4 })], 434, 200);
    const [first, second] = layout.bars;
    assert.deepEqual(first.segments.map((s) => s.severity), ['critical', 'high', 'info']);
    const plotH = layout.plotHeight;
    const bottom = PADDING.top + plotH;
    assert.equal(first.segments[0].y + first.segments[0].height, bottom);
    for (let i = 1; i < first.segments.length; i++) {
      assert.equal(first.segments[i].y + first.segments[i].height, first.segments[i - 1].y);
    }
    assert.equal(layout.top, 4);
    assert.equal(second.segments[0].height, plotH); // the tallest bucket reaches the top
    assert.equal(first.segments[0].height, plotH / 2);
  });

  test('one slot per bucket across the plot, with a gap between wide bars', () => {
    const buckets = Array.from({ length: 4 }, (_, h) => hour(h, { low: 1 }));
    const layout = chartLayout(buckets, 438, 200); // plot 400 wide: slots of 100
    assert.deepEqual(layout.bars.map((b) => [b.x, b.width]), [[34, 100], [134, 100], [234, 100], [334, 100]]);
    const segment = layout.bars[1].segments[0];
    assert.deepEqual([segment.x, segment.width], [135, 98]);
  });

  test('narrow slots get no gap and bars stay visible', () => {
    const buckets = Array.from({ length: 2000 }, (_, i) => hour(0, { info: i % 2 }));
    const layout = chartLayout(buckets, 438, 200);
    const segment = layout.bars[1].segments[0];
    assert.equal(segment.width, 0.8);
    assert.equal(segment.x, layout.bars[1].x);
  });

  test('a tiny count is still one unit tall', () => {
    const layout = chartLayout([hour(0, { info: 1 }), hour(1, { info: 10000 })], 600, 200);
    assert.equal(layout.bars[0].segments[0].height, 1);
  });

  test('time labels at least 70 units apart, the first flush left', () => {
    const buckets = Array.from({ length: 24 }, (_, h) => hour(h));
    const layout = chartLayout(buckets, 438, 200); // 400 / 70: room for 5 labels
    assert.deepEqual(layout.labels.map((l) => l.index), [0, 5, 10, 15, 20]);
    assert.deepEqual([layout.labels[0].x, layout.labels[0].anchor], [PADDING.left, 'start']);
    const slot = 400 / 24;
    assert.equal(layout.labels[1].x, PADDING.left + 5 * slot + slot / 2);
    assert.equal(layout.labels[1].anchor, 'middle');
    assert.ok(layout.labels.every((l) => l.y === 196));
    const few = chartLayout(buckets.slice(0, 3), 438, 200);
    assert.deepEqual(few.labels.map((l) => l.index), [0, 1, 2]);
  });
});
