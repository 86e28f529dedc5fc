// glob.js: the console's preview of what a silence matches agrees with the server's rule,
// checked on the same cases as tests/test_silence_domain.py.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { describeMatchers, globMatches, silenceBody, silenceMatches } from '../../static/js/glob.js';

const SAMPLES = join(dirname(fileURLToPath(import.meta.url)), '..', 'samples');
const { cases } = JSON.parse(readFileSync(join(SAMPLES, 'title-globs.json'), 'utf8'));

describe('title globs, as the server matches them', () => {
  for (const [glob, title, matches] of cases) {
    test(`${JSON.stringify(glob)} ${matches ? 'matches' : 'does not match'} ${JSON.stringify(title)}`, () => {
      assert.equal(globMatches(glob, title), matches);
    });
  }

  test('anything but two strings matches nothing', () => {
    assert.equal(globMatches('*', null), false);
    assert.equal(globMatches(undefined, 'x'), false);
  });
});

describe('silences', () => {
  const signal = { rule_id: 'SM-008', host_id: 'build-mac', severity: 'high', title: 'curl x | sh' };

  test('every given matcher must hold; empty ones are ignored', () => {
    assert.equal(silenceMatches({ rule_id: 'SM-008', host_id: 'build-mac', title: 'curl * | sh' }, signal), true);
    assert.equal(silenceMatches({ rule_id: 'SM-008', host_id: 'other' }, signal), false);
    assert.equal(silenceMatches({ rule_id: 'SM-008', severity: '', title: null }, signal), true);
    assert.equal(silenceMatches({ title: 'curl * | bash' }, signal), false);
  });

  test('described in words', () => {
    assert.equal(describeMatchers({ rule_id: 'SM-008', host_id: 'build-mac', severity: null, title: 'curl * | sh' }),
      'rule SM-008 · host build-mac · title “curl * | sh”');
    assert.equal(describeMatchers({}), '');
  });

  test('the request body carries only the matchers that are on', () => {
    const body = silenceBody({
      matchers: { rule_id: 'SM-008', host_id: 'build-mac', severity: 'high', title: 'curl * | sh' },
      use: { rule_id: true, host_id: true, severity: false, title: true },
      comment: '  CI build  ', duration: '7d', resolve: 1,
    });
    assert.deepEqual(body, {
      comment: 'CI build', duration: '7d', resolve_matching: true,
      rule_id: 'SM-008', host_id: 'build-mac', title: 'curl * | sh',
    });
  });
});
