// format.js: the server's timestamps (nanoseconds, any offset) and how times read on the page.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  basename, fmtAgo, fmtBucketLabel, fmtClock, fmtDuration, fmtNum, fmtShort, fmtSilent, fmtUtc,
  isoSeconds, parseTs, shellJoin, statusVerb,
} from '../../static/js/format.js';

const at = (iso) => Date.parse(iso);

describe('parseTs', () => {
  test('keeps the milliseconds of the stored nanosecond UTC form', () => {
    assert.equal(parseTs('2026-11-03T22:22:07.120934551Z'), at('2026-11-03T22:22:07.120Z'));
  });

  test('truncates below the millisecond instead of rounding', () => {
    assert.equal(parseTs('2026-11-03T22:22:07.999999999Z'), at('2026-11-03T22:22:07.999Z'));
  });

  test('applies the offset of an agent timestamp', () => {
    assert.equal(parseTs('2026-11-03T10:00:00.123456789+01:00'), at('2026-11-03T09:00:00.123Z'));
    assert.equal(parseTs('2026-11-03T08:00:00.5-02:00'), at('2026-11-03T10:00:00.500Z'));
    assert.equal(parseTs('2026-11-03T05:30:00+05:30'), at('2026-11-03T00:00:00Z'));
  });

  test('reads a missing zone and a space separator as UTC', () => {
    assert.equal(parseTs('2026-11-03 22:22:07'), at('2026-11-03T22:22:07Z'));
    assert.equal(parseTs('2026-11-03T22:22:07.1'), at('2026-11-03T22:22:07.100Z'));
  });

  test('leaves other forms to Date.parse', () => {
    assert.equal(parseTs('2026-11-03'), at('2026-11-03T00:00:00Z'));
    assert.equal(parseTs('Tue, 03 Nov 2026 22:22:07 GMT'), at('2026-11-03T22:22:07Z'));
  });

  test('is NaN for garbage and for what is not a string', () => {
    for (const value of ['', 'yesterday', '2026-13-45T99:99:99Z', null, undefined, 1700000000000, {}]) {
      assert.ok(Number.isNaN(parseTs(value)), String(value));
    }
  });

  test('orders instants across offsets, not strings', () => {
    const early = parseTs('2026-11-03T10:00:00+01:00');
    const late = parseTs('2026-11-03T09:30:00Z');
    assert.ok(early < late);
  });
});

describe('absolute times, always UTC', () => {
  const ms = parseTs('2026-03-04T05:06:07.890123Z');

  test('fmtUtc with and without seconds', () => {
    assert.equal(fmtUtc(ms), '2026-03-04 05:06:07');
    assert.equal(fmtUtc(ms, false), '2026-03-04 05:06');
    assert.equal(fmtUtc(NaN), '—');
  });

  test('fmtClock', () => {
    assert.equal(fmtClock(ms), '05:06:07');
  });

  test('fmtShort says "today" only for the same UTC day', () => {
    assert.equal(fmtShort(ms, at('2026-03-04T23:59:59Z')), 'today 05:06:07');
    assert.equal(fmtShort(ms, at('2026-03-05T00:00:00Z')), 'Mar 04 05:06:07');
    assert.equal(fmtShort(ms, at('2025-03-04T05:06:07Z')), 'Mar 04 05:06:07');
    assert.equal(fmtShort(NaN), '—');
  });

  test('fmtBucketLabel shows the time for buckets under a day, else the date', () => {
    assert.equal(fmtBucketLabel(at('2026-11-03T07:05:00Z'), 300), '07:05');
    assert.equal(fmtBucketLabel(at('2026-11-03T00:00:00Z'), 86400), 'Nov 3');
  });

  test('isoSeconds drops the milliseconds', () => {
    assert.equal(isoSeconds(at('2026-11-03T07:05:09.999Z')), '2026-11-03T07:05:09Z');
    assert.equal(isoSeconds(at('2026-11-03T07:05:00Z')), '2026-11-03T07:05:00Z');
  });
});

describe('relative times', () => {
  const now = at('2026-11-03T12:00:00Z');
  const before = (seconds) => now - seconds * 1000;

  test('fmtAgo from seconds to days', () => {
    const cases = [
      [0, '0s ago'], [44, '44s ago'], [45, '1 min ago'], [89, '1 min ago'], [90, '2 min ago'],
      [3599, '60 min ago'], [3600, '1 h 0 min ago'], [5400, '1 h 30 min ago'],
      [86399, '23 h 60 min ago'], [86400, '1 d 0 h ago'], [3 * 86400 + 7200, '3 d 2 h ago'],
    ];
    for (const [seconds, text] of cases) assert.equal(fmtAgo(before(seconds), now), text, `${seconds}s`);
  });

  test('fmtAgo never says a time in the future is ahead, and knows "never"', () => {
    assert.equal(fmtAgo(now + 60000, now), '0s ago');
    assert.equal(fmtAgo(NaN, now), 'never');
  });

  test('fmtAgo of a nanosecond timestamp with an offset', () => {
    assert.equal(fmtAgo(parseTs('2026-11-03T12:55:00.999999999+01:00'), now), '5 min ago');
  });

  test('fmtSilent in minutes, then hours, then days', () => {
    assert.equal(fmtSilent(before(45 * 60 + 59), now), 'silent for 45 min');
    assert.equal(fmtSilent(before(119 * 60), now), 'silent for 119 min');
    assert.equal(fmtSilent(before(120 * 60), now), 'silent for 2 h 0 min');
    assert.equal(fmtSilent(before(47 * 3600 + 59 * 60), now), 'silent for 47 h 59 min');
    assert.equal(fmtSilent(before(50 * 3600), now), 'silent for 2 d 2 h');
    assert.equal(fmtSilent(now + 1000, now), 'silent for 0 min');
  });
});

describe('durations and words', () => {
  test('fmtDuration of an uptime', () => {
    assert.equal(fmtDuration(59), '0 min');
    assert.equal(fmtDuration(61.9), '1 min');
    assert.equal(fmtDuration(3600), '1 h 0 min');
    assert.equal(fmtDuration(7380), '2 h 3 min');
    assert.equal(fmtDuration(90061), '1 d 1 h');
  });

  test('fmtDuration has nothing to say about no uptime', () => {
    for (const value of [0, -5, NaN, Infinity, '3600', null, undefined]) assert.equal(fmtDuration(value), null);
  });

  test('fmtNum groups thousands and shows a dash for what is not a number', () => {
    assert.equal(fmtNum(1234567), '1,234,567');
    assert.equal(fmtNum(0), '0');
    for (const value of [NaN, Infinity, '12', null, undefined]) assert.equal(fmtNum(value), '–');
  });

  test('statusVerb', () => {
    assert.deepEqual(['acknowledged', 'resolved', 'open'].map(statusVerb), ['Acknowledged', 'Resolved', 'Reopened']);
  });

  test('basename of a process path', () => {
    assert.equal(basename('/usr/local/bin/python3.12'), 'python3.12');
    assert.equal(basename('/Applications/Terminal.app/'), 'Terminal.app');
    assert.equal(basename('launchd'), 'launchd');
    assert.equal(basename('/'), '/');
    assert.equal(basename(''), '');
    assert.equal(basename(undefined), '');
  });

  test('shellJoin quotes only what a shell would split or expand', () => {
    assert.equal(shellJoin(['python3', 'exfil.py', '--out=/tmp/a,b']), 'python3 exfil.py --out=/tmp/a,b');
    assert.equal(shellJoin(['sh', '-c', 'curl x | sh']), 'sh -c "curl x | sh"');
    assert.equal(shellJoin(['echo', '', "it's"]), `echo "" "it's"`);
    assert.equal(shellJoin(['n', 42, null]), 'n 42 null');
  });
});
