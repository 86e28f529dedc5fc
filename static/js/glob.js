// What a silence matches, as the server decides it (santamon/domain/silences.py): every given
// matcher must hold; a title is exact unless it holds `*`, which stands for any run of
// characters. Case-sensitive. No DOM here: Node's test runner imports it.

const WILDCARD = '*';
const MATCHERS = Object.freeze(['rule_id', 'host_id', 'severity', 'title']);

const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

export function globMatches(pattern, text) {
  if (typeof pattern !== 'string' || typeof text !== 'string') return false;
  if (!pattern.includes(WILDCARD)) return pattern === text;
  const body = pattern.split(WILDCARD).map(escapeRegExp).join('[\\s\\S]*');
  return new RegExp(`^${body}$`, 'u').test(text);
}

// Whether a signal (or any object with the four fields) meets every given matcher.
export function silenceMatches(matchers, signal) {
  return MATCHERS.every((key) => {
    const want = matchers[key];
    if (want === undefined || want === null || want === '') return true;
    return key === 'title' ? globMatches(want, signal.title) : want === signal[key];
  });
}

// The matchers in words: "rule SM-008 · host build-mac · title “curl * | sh”".
export function describeMatchers(matchers) {
  const words = { rule_id: 'rule', host_id: 'host', severity: 'severity', title: 'title' };
  return MATCHERS.filter((key) => matchers[key])
    .map((key) => (key === 'title' ? `title “${matchers.title}”` : `${words[key]} ${matchers[key]}`))
    .join(' · ');
}

// The body of POST /silences from the form's choices: only the matchers that are on.
export function silenceBody({ matchers, use, comment, duration, resolve }) {
  const body = { comment: String(comment || '').trim(), duration, resolve_matching: Boolean(resolve) };
  for (const key of MATCHERS) {
    if (use[key] && matchers[key]) body[key] = matchers[key];
  }
  return body;
}
