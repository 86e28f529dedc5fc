// query.js, the view beside the filters: grouped repeats, silenced signals and the page,
// kept in the URL; the groups query and the triage filter of a grouped view.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  DEFAULT_VIEW, defaultFilters, filtersFromQuery, groupListQuery, pageQuery, triageFilter, viewFromQuery,
} from '../../static/js/query.js';

const NOW = Date.parse('2026-11-03T12:00:00Z');
const filters = (changes) => ({ ...defaultFilters(), ...changes });
const view = (changes) => ({ ...DEFAULT_VIEW, ...changes });

describe('the view in the page URL', () => {
  test('no query is the default view, and the plain URL is /ui', () => {
    assert.deepEqual(viewFromQuery(''), DEFAULT_VIEW);
    assert.equal(pageQuery(defaultFilters(), DEFAULT_VIEW), '');
  });

  test('unknown values fall back to the defaults', () => {
    assert.deepEqual(viewFromQuery('?group=yes&silenced=maybe&page=admin'), DEFAULT_VIEW);
  });

  const cases = [
    [filters({}), view({ grouped: true })],
    [filters({ status: 'all', host_id: 'build mac' }), view({ grouped: true, silenced: 'all' })],
    [filters({ severity: ['high'] }), view({ silenced: 'true' })],
    [filters({ window: '7d' }), view({ page: 'silences' })],
  ];
  for (const [f, v] of cases) {
    test(`round trip: ${pageQuery(f, v)}`, () => {
      const query = pageQuery(f, v);
      assert.deepEqual(viewFromQuery(query), v);
      assert.deepEqual(filtersFromQuery(query), f);
    });
  }
});

describe('the API for a grouped view', () => {
  test('groups take the filters of the signal list, and silenced when not the default', () => {
    const f = filters({ severity: ['high'], host_id: 'mbp-1', window: '1h' });
    assert.deepEqual(Object.fromEntries(new URLSearchParams(groupListQuery(f, view({ silenced: 'all' }), { limit: 50 }, NOW))), {
      severity: 'high', status: 'open', host_id: 'mbp-1', since: '2026-11-03T11:00:00.000Z', silenced: 'all', limit: '50',
    });
    assert.equal(new URLSearchParams(groupListQuery(f, DEFAULT_VIEW, {}, NOW)).has('silenced'), false);
  });

  test('triaging a group acts on what the view shows of it', () => {
    assert.deepEqual(triageFilter(filters({ window: '24h' }), DEFAULT_VIEW, NOW), {
      status: 'open', silenced: 'false', since: '2026-11-02T12:00:00.000Z',
    });
    assert.deepEqual(triageFilter(filters({ status: 'all', window: 'all', severity: ['critical', 'high'], search: 'curl' }),
      view({ silenced: 'all' }), NOW), {
      status: 'all', silenced: 'all', severity: ['critical', 'high'], search: 'curl',
    });
  });
});
