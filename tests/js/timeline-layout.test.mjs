// timeline-layout.js: an agent's timeline as the page lays it out.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { currentVersion, fmtPercent, fmtSpan, stripSegments } from '../../static/js/timeline-layout.js';

const since = '2026-11-03T00:00:00.000000000Z';
const until = '2026-11-03T10:00:00.000000000Z';

describe('stripSegments', () => {
  test('places each interval as a share of the window', () => {
    const segments = stripSegments([
      { state: 'online', start: since, end: '2026-11-03T05:00:00.000000000Z' },
      { state: 'offline', start: '2026-11-03T05:00:00.000000000Z', end: until },
    ], since, until);
    assert.deepEqual(segments.map(({ state, x, width }) => [state, x, width]),
      [['online', 0, 0.5], ['offline', 0.5, 0.5]]);
  });

  test('clips to the window and drops what falls outside or is empty', () => {
    const segments = stripSegments([
      { state: 'online', start: '2026-11-02T00:00:00Z', end: '2026-11-03T01:00:00Z' },
      { state: 'offline', start: '2026-11-03T11:00:00Z', end: '2026-11-03T12:00:00Z' },
      { state: 'online', start: '2026-11-03T02:00:00Z', end: '2026-11-03T02:00:00Z' },
    ], since, until);
    assert.deepEqual(segments.map(({ x, width }) => [x, width]), [[0, 0.1]]);
  });

  test('anything but online is drawn as offline, and nonsense draws nothing', () => {
    assert.equal(stripSegments([{ state: '<b>', start: since, end: until }], since, until)[0].state, 'offline');
    assert.deepEqual(stripSegments(null, since, until), []);
    assert.deepEqual(stripSegments([], until, since), []);
  });
});

describe('fmtPercent', () => {
  test('one decimal, rounded down so a gap never reads 100 %', () => {
    assert.equal(fmtPercent(0.9736), '97.3 %');
    assert.equal(fmtPercent(0.99999), '99.9 %');
    assert.equal(fmtPercent(1), '100 %');
    assert.equal(fmtPercent(0.5), '50 %');
    assert.equal(fmtPercent(0), '0 %');
  });

  test('unknown availability is a dash', () => {
    assert.equal(fmtPercent(null), '–');
    assert.equal(fmtPercent(Number.NaN), '–');
  });
});

describe('fmtSpan', () => {
  test('the largest whole unit that reads naturally', () => {
    assert.equal(fmtSpan('2026-11-01T00:00:00Z', '2026-11-08T00:00:00Z'), '7 d');
    assert.equal(fmtSpan(since, until), '10 h');
    assert.equal(fmtSpan(since, '2026-11-03T00:45:00Z'), '45 min');
    assert.equal(fmtSpan(until, since), '–');
  });
});

describe('currentVersion', () => {
  test('the period without an end, else the latest', () => {
    const old = { version: 'v1', until: '2026-11-03T05:00:00Z' };
    const now = { version: 'v2', until: null };
    assert.equal(currentVersion([old, now]), now);
    assert.equal(currentVersion([old]), old);
    assert.equal(currentVersion([]), null);
  });
});
