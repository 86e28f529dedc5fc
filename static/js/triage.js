// Triaging one signal (acknowledge, resolve, reopen, with an optional note) from its detail
// or the keyboard.
import { ApiError, advice, api, canWrite } from './api.js';
import * as cards from './cards.js';
import { toast } from './dom.js';
import * as filters from './filters.js';
import { statusVerb } from './format.js';
import { statusInView } from './query.js';
import * as queue from './queue.js';

// True when the server took the change.
export async function setStatus(id, status, note) {
  if (!canWrite()) {
    toast('Your key is read-only (viewer): it cannot triage.', true);
    return false;
  }
  const body = { signal_ids: [id], status };
  if (note) body.note = note;
  try {
    // Not PATCH /signals/{id}/status: a URL path cannot name the signals `.` and `..`.
    const res = await api('POST', '/signals/status', body);
    if (res && Array.isArray(res.not_found) && res.not_found.includes(id)) throw new ApiError(404, 'no such signal', res);
  } catch (err) {
    if (err.status !== 401) toast(`Could not set the status. ${advice(err)}`, true);
    return false;
  }
  queue.applyStatus([id], status);
  toast(`${statusVerb(status)} 1 signal${statusInView(filters.current(), status) ? '' : ' — it leaves this view on the next refresh'}`);
  cards.load();
  return true;
}
