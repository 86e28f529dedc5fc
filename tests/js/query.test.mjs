// query.js: filters <-> the page URL (a shared link opens the same view) and the API queries.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  DEFAULT_FILTERS, defaultFilters, describeFilters, filtersFromQuery, isoToLocalInput,
  localInputToIso, patchFilters, qs, queryFromFilters, signalListQuery, statusInView,
  volumeQuery, windowRange,
} from '../../static/js/query.js';

const NOW = Date.parse('2026-11-03T12:00:00Z');
const filters = (changes) => ({ ...defaultFilters(), ...changes });

describe('qs', () => {
  test('leaves out empty values and joins lists with commas', () => {
    assert.equal(qs({ a: '', b: null, c: undefined, d: 0, e: ['high', 'low'], f: 'x y&z' }),
      '?d=0&e=high%2Clow&f=x+y%26z');
    assert.equal(qs({ a: '' }), '');
  });
});

describe('filters from the page URL', () => {
  test('no query is the default view', () => {
    assert.deepEqual(filtersFromQuery(''), defaultFilters());
  });

  test('every filter is read', () => {
    assert.deepEqual(filtersFromQuery('?severity=high,critical&status=all&host_id=mbp-1&rule_id=SM-1&search=ssh+keys&window=7d'), {
      severity: ['critical', 'high'], status: 'all', host_id: 'mbp-1', rule_id: 'SM-1', search: 'ssh keys',
      window: '7d', since: '', until: '',
    });
  });

  test('unknown values fall back to the defaults', () => {
    const f = filtersFromQuery('?severity=urgent,%20low%20,LOW&status=closed&window=2y');
    assert.deepEqual(f.severity, ['low']);
    assert.equal(f.status, 'open');
    assert.equal(f.window, '24h');
  });

  test('bounds without a window mean a custom window; other windows drop them', () => {
    const custom = filtersFromQuery('?since=2026-11-03T00:00:00Z');
    assert.equal(custom.window, 'custom');
    assert.equal(custom.since, '2026-11-03T00:00:00Z');
    const dropped = filtersFromQuery('?window=7d&since=2026-11-03T00:00:00Z&until=2026-11-04T00:00:00Z');
    assert.deepEqual([dropped.window, dropped.since, dropped.until], ['7d', '', '']);
  });

  test('accepts URLSearchParams as well as a string', () => {
    assert.equal(filtersFromQuery(new URLSearchParams({ host_id: 'a b' })).host_id, 'a b');
  });
});

describe('filters to the page URL', () => {
  test('the default view is plain /ui', () => {
    assert.equal(queryFromFilters(defaultFilters()), '');
  });

  test('severity keeps display order; bounds only with a custom window', () => {
    assert.equal(queryFromFilters(filters({ severity: ['critical', 'high'], since: 'x' })), '?severity=critical%2Chigh');
    assert.equal(queryFromFilters(filters({ window: 'custom', since: '2026-11-03T00:00:00Z', until: '' })),
      '?window=custom&since=2026-11-03T00%3A00%3A00Z');
  });

  const views = [
    filters({}),
    filters({ status: 'all', window: 'all' }),
    filters({ severity: ['critical', 'high'], status: 'open', window: 'all' }),
    filters({ rule_id: 'AGENT-STALE', status: 'open', window: 'all' }),
    filters({ host_id: 'mbp evil & co', search: '“quotes” %20 ü', status: 'resolved', window: '1h' }),
    filters({ window: 'custom', since: '2026-11-03T00:00:00.123456789+01:00', until: '2026-11-04T00:00:00Z' }),
    filters({ severity: ['medium', 'info'], status: 'acknowledged', window: '7d' }),
  ];
  for (const view of views) {
    test(`round trip: ${queryFromFilters(view) || '(default)'}`, () => {
      assert.deepEqual(filtersFromQuery(queryFromFilters(view)), view);
    });
  }
});

describe('changing the filters', () => {
  test('a new window drops custom bounds; a custom one keeps them', () => {
    const custom = filters({ window: 'custom', since: 'a', until: 'b' });
    assert.deepEqual(patchFilters(custom, { window: '1h' }), filters({ window: '1h' }));
    assert.deepEqual(patchFilters(custom, { host_id: 'h' }), { ...custom, host_id: 'h' });
  });

  test('the defaults cannot be changed through a copy', () => {
    const copy = defaultFilters();
    copy.severity.push('high');
    assert.deepEqual(DEFAULT_FILTERS.severity, []);
    assert.ok(Object.isFrozen(DEFAULT_FILTERS));
  });
});

describe('the API queries', () => {
  test('windows end now and start that long before', () => {
    assert.deepEqual(windowRange(filters({ window: '1h' }), NOW), { since: '2026-11-03T11:00:00.000Z', until: '' });
    assert.deepEqual(windowRange(filters({ window: '24h' }), NOW), { since: '2026-11-02T12:00:00.000Z', until: '' });
    assert.deepEqual(windowRange(filters({ window: '7d' }), NOW), { since: '2026-10-27T12:00:00.000Z', until: '' });
    assert.deepEqual(windowRange(filters({ window: 'all' }), NOW), { since: '', until: '' });
    assert.deepEqual(windowRange(filters({ window: 'custom', since: 's', until: 'u' }), NOW), { since: 's', until: 'u' });
  });

  test('GET /signals always names the status and passes limit and cursor', () => {
    const f = filters({ severity: ['high'], host_id: 'mbp-1', window: '1h' });
    const params = new URLSearchParams(signalListQuery(f, { limit: 50, cursor: 'abc' }, NOW));
    assert.deepEqual(Object.fromEntries(params), {
      severity: 'high', status: 'open', host_id: 'mbp-1', since: '2026-11-03T11:00:00.000Z', limit: '50', cursor: 'abc',
    });
  });

  test('the chart buckets fit the window', () => {
    const bucket = (window) => new URLSearchParams(volumeQuery(filters({ window }), NOW)).get('bucket');
    assert.deepEqual(['1h', '24h', '7d', 'all', 'custom'].map(bucket), ['5m', '1h', '1h', 'auto', 'auto']);
    assert.equal(volumeQuery(filters({ window: 'all' }), NOW), '?bucket=auto');
  });

  test('statusInView', () => {
    assert.equal(statusInView(filters({ status: 'open' }), 'open'), true);
    assert.equal(statusInView(filters({ status: 'open' }), 'resolved'), false);
    assert.equal(statusInView(filters({ status: 'all' }), 'resolved'), true);
  });

  test('describeFilters for an empty queue', () => {
    assert.deepEqual(describeFilters(filters({ status: 'all' })), []);
    assert.deepEqual(describeFilters(filters({ severity: ['critical', 'high'], host_id: 'h', rule_id: 'r', search: 's' })),
      ['open', 'critical+high', 'host h', 'rule r', '“s”']);
  });
});

describe('the custom window inputs mean UTC', () => {
  test('from a stored timestamp with nanoseconds and an offset', () => {
    assert.equal(isoToLocalInput('2026-11-03T10:00:00.123456789+01:00'), '2026-11-03T09:00:00');
    assert.equal(isoToLocalInput(''), '');
    assert.equal(isoToLocalInput('nonsense'), '');
  });

  test('to ISO, with or without seconds', () => {
    assert.equal(localInputToIso('2026-11-03T09:00'), '2026-11-03T09:00:00.000Z');
    assert.equal(localInputToIso('2026-11-03T09:00:30'), '2026-11-03T09:00:30.000Z');
    assert.equal(localInputToIso(''), '');
    assert.equal(localInputToIso('2026-11-03T25:00'), '');
  });

  test('round trip', () => {
    const iso = '2026-02-28T23:59:59.000Z';
    assert.equal(localInputToIso(isoToLocalInput(iso)), iso);
  });
});
